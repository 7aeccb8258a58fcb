//! Loss heads. A loss is the last stage of the chain: it maps the network outputs `u`
//! (`O x B`, one column per sample) to a scalar, and supplies its gradient and its Hessian
//! `Hl` (block diagonal over samples), which seeds the backward sweeps.

use nalgebra::SMatrix;

use crate::error::NetError;
use crate::layer::zero_mat;
use crate::real::Real;

/// A loss over a batch of `B` outputs of width `O`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a loss of `{O}` outputs",
    label = "not a loss",
    note = "the last field of a network is a loss: `Mse<O>`, `SoftmaxCrossEntropy<C>`, or a type \
            made by `#[loss] fn name(y: f64, t: f64) -> f64 {{ .. }}` (written `Name<O>`)"
)]
pub trait Loss<T: Real, const O: usize, const B: usize> {
    /// What the caller passes as targets.
    type Target;
    /// Rejects non-finite targets or out-of-range labels.
    fn check(t: &Self::Target) -> Result<(), NetError>;
    /// The loss value.
    fn value(u: &SMatrix<T, O, B>, t: &Self::Target) -> T;
    /// The loss value and `dl/du`.
    fn gradient(u: &SMatrix<T, O, B>, t: &Self::Target) -> (T, SMatrix<T, O, B>);
    /// `Hl y`, with `Hl = d2 l / du2`.
    fn hess_apply(u: &SMatrix<T, O, B>, t: &Self::Target, y: &SMatrix<T, O, B>)
        -> SMatrix<T, O, B>;
    /// Sample `n`'s diagonal block of `Hl` (the off-diagonal blocks are zero).
    fn hess_block(u: &SMatrix<T, O, B>, t: &Self::Target, n: usize) -> SMatrix<T, O, O>;

    /// The Gauss-Newton factor `C_n` of sample `n`: `C_n C_n'` is the positive
    /// semi-definite part of its block of `Hl` (the block itself for the built-in losses,
    /// whose `Hl` is positive semi-definite). By default from the block's eigenvalues
    /// ([`crate::ggn::psd_factor`]).
    fn ggn_factor(u: &SMatrix<T, O, B>, t: &Self::Target, n: usize) -> SMatrix<T, O, O> {
        crate::ggn::psd_factor(&Self::hess_block(u, t, n))
    }
    /// Sample `n`'s Gauss-Newton block `C_n C_n'`.
    fn ggn_block(u: &SMatrix<T, O, B>, t: &Self::Target, n: usize) -> SMatrix<T, O, O> {
        let c = Self::ggn_factor(u, t, n);
        c * c.transpose()
    }
    /// `C C' y` (the Gauss-Newton loss Hessian applied to `y`).
    fn ggn_apply(u: &SMatrix<T, O, B>, t: &Self::Target, y: &SMatrix<T, O, B>) -> SMatrix<T, O, B> {
        let mut out = zero_mat::<T, O, B>();
        for n in 0..B {
            let c = Self::ggn_factor(u, t, n);
            out.set_column(n, &(c * c.tr_mul(&y.column(n))));
        }
        out
    }
}

/// Mean squared error: `l = 1/(2B) sum_n |u_n - t_n|^2`; targets `[[T; O]; B]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mse<const O: usize>;

/// Softmax cross-entropy with integer labels: `l = 1/B sum_n (logsumexp(u_n) - u_n[t_n])`;
/// targets `[usize; B]`, each below `C`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftmaxCrossEntropy<const C: usize>;

// SAFETY: zero-sized.
unsafe impl<const O: usize> bytemuck::Zeroable for Mse<O> {}
// SAFETY: zero-sized.
unsafe impl<const C: usize> bytemuck::Zeroable for SoftmaxCrossEntropy<C> {}

impl<T: Real, const O: usize, const B: usize> Loss<T, O, B> for Mse<O> {
    type Target = [[T; O]; B];

    fn check(t: &Self::Target) -> Result<(), NetError> {
        for (sample, row) in t.iter().enumerate() {
            if let Some(index) = row.iter().position(|v| !v.finite()) {
                return Err(NetError::NonFiniteTarget { sample, index });
            }
        }
        Ok(())
    }

    fn value(u: &SMatrix<T, O, B>, t: &Self::Target) -> T {
        let mut acc = T::ZERO;
        for n in 0..B {
            for k in 0..O {
                let e = u[(k, n)] - t[n][k];
                acc += e * e;
            }
        }
        acc / T::c(2.0 * B as f64)
    }

    fn gradient(u: &SMatrix<T, O, B>, t: &Self::Target) -> (T, SMatrix<T, O, B>) {
        let inv_b = T::ONE / T::c(B as f64);
        let mut g = zero_mat::<T, O, B>();
        let mut acc = T::ZERO;
        for n in 0..B {
            for k in 0..O {
                let e = u[(k, n)] - t[n][k];
                acc += e * e;
                g[(k, n)] = e * inv_b;
            }
        }
        (acc * inv_b * T::c(0.5), g)
    }

    fn hess_apply(
        _u: &SMatrix<T, O, B>,
        _t: &Self::Target,
        y: &SMatrix<T, O, B>,
    ) -> SMatrix<T, O, B> {
        y / T::c(B as f64)
    }

    fn hess_block(_u: &SMatrix<T, O, B>, _t: &Self::Target, _n: usize) -> SMatrix<T, O, O> {
        SMatrix::identity() / T::c(B as f64)
    }

    fn ggn_factor(u: &SMatrix<T, O, B>, _t: &Self::Target, n: usize) -> SMatrix<T, O, O> {
        <Self as crate::ggn::GgnLoss<T, O, B>>::hess_factor(u, n)
    }
    fn ggn_block(u: &SMatrix<T, O, B>, t: &Self::Target, n: usize) -> SMatrix<T, O, O> {
        Self::hess_block(u, t, n)
    }
    fn ggn_apply(u: &SMatrix<T, O, B>, t: &Self::Target, y: &SMatrix<T, O, B>) -> SMatrix<T, O, B> {
        Self::hess_apply(u, t, y)
    }
}

/// Softmax of column `n` of `u` and its log-sum-exp, computed without overflow.
#[inline]
pub(crate) fn softmax<T: Real, const C: usize, const B: usize>(
    u: &SMatrix<T, C, B>,
    n: usize,
) -> ([T; C], T) {
    let mut m = u[(0, n)];
    for k in 1..C {
        m = m.max(u[(k, n)]);
    }
    let mut p = [T::ZERO; C];
    let mut s = T::ZERO;
    for k in 0..C {
        p[k] = (u[(k, n)] - m).exp();
        s += p[k];
    }
    for pk in p.iter_mut() {
        *pk /= s;
    }
    (p, m + s.ln())
}

impl<T: Real, const C: usize, const B: usize> Loss<T, C, B> for SoftmaxCrossEntropy<C> {
    type Target = [usize; B];

    fn check(t: &Self::Target) -> Result<(), NetError> {
        match t.iter().position(|&label| label >= C) {
            Some(sample) => Err(NetError::LabelOutOfRange {
                sample,
                label: t[sample],
                classes: C,
            }),
            None => Ok(()),
        }
    }

    fn value(u: &SMatrix<T, C, B>, t: &Self::Target) -> T {
        let mut acc = T::ZERO;
        for n in 0..B {
            let (_, lse) = softmax(u, n);
            acc += lse - u[(t[n], n)];
        }
        acc / T::c(B as f64)
    }

    fn gradient(u: &SMatrix<T, C, B>, t: &Self::Target) -> (T, SMatrix<T, C, B>) {
        let inv_b = T::ONE / T::c(B as f64);
        let mut g = zero_mat::<T, C, B>();
        let mut acc = T::ZERO;
        for n in 0..B {
            let (p, lse) = softmax(u, n);
            acc += lse - u[(t[n], n)];
            for k in 0..C {
                g[(k, n)] = p[k] * inv_b;
            }
            g[(t[n], n)] -= inv_b;
        }
        (acc * inv_b, g)
    }

    fn hess_apply(
        u: &SMatrix<T, C, B>,
        _t: &Self::Target,
        y: &SMatrix<T, C, B>,
    ) -> SMatrix<T, C, B> {
        let inv_b = T::ONE / T::c(B as f64);
        let mut r = zero_mat::<T, C, B>();
        for n in 0..B {
            let (p, _) = softmax(u, n);
            let mut py = T::ZERO;
            for k in 0..C {
                py += p[k] * y[(k, n)];
            }
            for k in 0..C {
                r[(k, n)] = p[k] * (y[(k, n)] - py) * inv_b;
            }
        }
        r
    }

    fn hess_block(u: &SMatrix<T, C, B>, _t: &Self::Target, n: usize) -> SMatrix<T, C, C> {
        let inv_b = T::ONE / T::c(B as f64);
        let (p, _) = softmax(u, n);
        SMatrix::from_fn(|i, j| {
            let d = if i == j { p[i] } else { T::ZERO };
            (d - p[i] * p[j]) * inv_b
        })
    }

    fn ggn_factor(u: &SMatrix<T, C, B>, _t: &Self::Target, n: usize) -> SMatrix<T, C, C> {
        <Self as crate::ggn::GgnLoss<T, C, B>>::hess_factor(u, n)
    }
    fn ggn_block(u: &SMatrix<T, C, B>, t: &Self::Target, n: usize) -> SMatrix<T, C, C> {
        Self::hess_block(u, t, n)
    }
    fn ggn_apply(u: &SMatrix<T, C, B>, t: &Self::Target, y: &SMatrix<T, C, B>) -> SMatrix<T, C, B> {
        Self::hess_apply(u, t, y)
    }
}

/// A loss applied to each output separately, `l(y, t)` of one output `y` and its target
/// `t`, summed over the outputs and averaged over the batch:
/// `L = 1/B sum_n sum_k l(u[k][n], t[n][k])`, with targets `[[T; O]; B]`.
///
/// `#[loss]` implements it (and [`Loss`], through [`elementwise`]) for the type it makes from
/// a function; `value`, `d1` and `d2` are differentiated from the function's body at compile
/// time. Derivatives are with respect to `y`.
pub trait ElementwiseLoss: Copy + Default + core::fmt::Debug + 'static {
    /// The name used in declarations (`Huber`, ...).
    const NAME: &'static str;
    /// `l(y, t)`.
    fn value<T: Real>(y: T, t: T) -> T;
    /// `(l, dl/dy)`.
    fn d1<T: Real>(y: T, t: T) -> (T, T);
    /// `(l, dl/dy, d2l/dy2)`.
    fn d2<T: Real>(y: T, t: T) -> (T, T, T);
}

/// The batch kernels of an [`ElementwiseLoss`]: what its [`Loss`] implementation calls.
/// Its Hessian `Hl` is diagonal, `l''(u[k][n], t[n][k]) / B`.
pub mod elementwise {
    use nalgebra::SMatrix;

    use super::ElementwiseLoss;
    use crate::error::NetError;
    use crate::layer::zero_mat;
    use crate::real::Real;

    /// Rejects non-finite targets.
    pub fn check<T: Real, const O: usize, const B: usize>(t: &[[T; O]; B]) -> Result<(), NetError> {
        for (sample, row) in t.iter().enumerate() {
            if let Some(index) = row.iter().position(|v| !v.finite()) {
                return Err(NetError::NonFiniteTarget { sample, index });
            }
        }
        Ok(())
    }

    /// `1/B sum_n sum_k l(u[k][n], t[n][k])`.
    pub fn value<L: ElementwiseLoss, T: Real, const O: usize, const B: usize>(
        u: &SMatrix<T, O, B>,
        t: &[[T; O]; B],
    ) -> T {
        let mut acc = T::ZERO;
        for n in 0..B {
            for k in 0..O {
                acc += L::value(u[(k, n)], t[n][k]);
            }
        }
        acc / T::c(B as f64)
    }

    /// The loss value and `dL/du`.
    pub fn gradient<L: ElementwiseLoss, T: Real, const O: usize, const B: usize>(
        u: &SMatrix<T, O, B>,
        t: &[[T; O]; B],
    ) -> (T, SMatrix<T, O, B>) {
        let inv_b = T::ONE / T::c(B as f64);
        let mut g = zero_mat::<T, O, B>();
        let mut acc = T::ZERO;
        for n in 0..B {
            for k in 0..O {
                let (l, d) = L::d1(u[(k, n)], t[n][k]);
                acc += l;
                g[(k, n)] = d * inv_b;
            }
        }
        (acc * inv_b, g)
    }

    /// `Hl y`: `l''(u, t) y / B` entry by entry.
    pub fn hess_apply<L: ElementwiseLoss, T: Real, const O: usize, const B: usize>(
        u: &SMatrix<T, O, B>,
        t: &[[T; O]; B],
        y: &SMatrix<T, O, B>,
    ) -> SMatrix<T, O, B> {
        let inv_b = T::ONE / T::c(B as f64);
        let mut r = zero_mat::<T, O, B>();
        for n in 0..B {
            for k in 0..O {
                let (_, _, dd) = L::d2(u[(k, n)], t[n][k]);
                r[(k, n)] = dd * y[(k, n)] * inv_b;
            }
        }
        r
    }

    /// Sample `n`'s block of `Hl`: diagonal, `l''(u[k][n], t[n][k]) / B`.
    pub fn hess_block<L: ElementwiseLoss, T: Real, const O: usize, const B: usize>(
        u: &SMatrix<T, O, B>,
        t: &[[T; O]; B],
        n: usize,
    ) -> SMatrix<T, O, O> {
        let inv_b = T::ONE / T::c(B as f64);
        let mut h = zero_mat::<T, O, O>();
        for k in 0..O {
            let (_, _, dd) = L::d2(u[(k, n)], t[n][k]);
            h[(k, k)] = dd * inv_b;
        }
        h
    }
}
