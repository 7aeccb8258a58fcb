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
    /// Sample `n`'s Gauss-Newton coordinates of the loss gradient: `w` with `C_n w =
    /// dl/du_n` (`C_n` = [`Self::ggn_factor`], `grad_n` = column `n` of `dl/du`), so that the
    /// network's gradient is `U w` with `U = J'C` (docs/math.md section 5.3). `None` when
    /// no such `w` is known (the gradient leaves the range of `C_n`). The Woodbury form
    /// checks `C_n w = grad_n` to rounding before it uses `w`. By default a solution by
    /// elimination with complete pivoting ([`crate::ggn::range_solve`]); the built-in losses
    /// give it in closed form.
    fn ggn_coords(
        u: &SMatrix<T, O, B>,
        t: &Self::Target,
        n: usize,
        c: &SMatrix<T, O, O>,
        grad_n: &nalgebra::SVector<T, O>,
    ) -> Option<nalgebra::SVector<T, O>> {
        let _ = (u, t, n);
        crate::ggn::range_solve(c, grad_n)
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
    /// `C_n = I / sqrt(B)`: `w = sqrt(B) dl/du_n = (u_n - t_n) / sqrt(B)`.
    fn ggn_coords(
        _u: &SMatrix<T, O, B>,
        _t: &Self::Target,
        _n: usize,
        _c: &SMatrix<T, O, O>,
        grad_n: &nalgebra::SVector<T, O>,
    ) -> Option<nalgebra::SVector<T, O>> {
        Some(grad_n * T::c(B as f64).sqrt())
    }
    fn ggn_block(u: &SMatrix<T, O, B>, t: &Self::Target, n: usize) -> SMatrix<T, O, O> {
        Self::hess_block(u, t, n)
    }
    fn ggn_apply(u: &SMatrix<T, O, B>, t: &Self::Target, y: &SMatrix<T, O, B>) -> SMatrix<T, O, B> {
        Self::hess_apply(u, t, y)
    }
}

/// One sample's softmax, in the form that keeps every digit when it saturates.
///
/// With `m` the largest logit (at `top`), `e_j = exp(u_j - m)` (so `e_top = 1`):
/// `p_j = e_j / s`, `s = sum_j e_j`, and `q_j = 1 - p_j` computed as `sum_{i != j} p_i`
/// (from prefix and suffix sums of the `e_i`, never as a difference), so that `p_j (1 - p_j)`,
/// `p_t - 1` and the loss `log1p(sum_{j != t} exp(u_j - u_t))` keep their relative accuracy
/// when one class takes almost all the mass (logits hundreds apart in f64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SoftmaxParts<T, const C: usize> {
    /// `p_j`.
    pub p: [T; C],
    /// `1 - p_j`, as the sum of the other classes' probabilities.
    pub q: [T; C],
    /// The largest logit.
    pub m: T,
    /// `s = sum_j exp(u_j - m)` (between 1 and `C`).
    pub s: T,
    /// `log(s) = log1p(sum_{j != top} e_j)`: the log-sum-exp is `m + log_s`.
    pub log_s: T,
}

/// [`SoftmaxParts`] of column `n` of `u`, computed without overflow or cancellation.
#[inline]
pub(crate) fn softmax_parts<T: Real, const C: usize, const B: usize>(
    u: &SMatrix<T, C, B>,
    n: usize,
) -> SoftmaxParts<T, C> {
    let mut top = 0;
    let mut m = u[(0, n)];
    for k in 1..C {
        if u[(k, n)] > m {
            m = u[(k, n)];
            top = k;
        }
    }
    let mut e = [T::ZERO; C];
    for (k, ek) in e.iter_mut().enumerate() {
        *ek = if k == top {
            T::ONE
        } else {
            (u[(k, n)] - m).exp()
        };
    }
    // rest[k] = sum_{j != k} e_j from prefix and suffix sums (all terms positive).
    let mut rest = [T::ZERO; C];
    let mut acc = T::ZERO;
    for k in 0..C {
        rest[k] = acc;
        acc += e[k];
    }
    let s = acc;
    let mut acc = T::ZERO;
    for k in (0..C).rev() {
        rest[k] += acc;
        acc += e[k];
    }
    let inv_s = T::ONE / s;
    let mut p = [T::ZERO; C];
    let mut q = [T::ZERO; C];
    for k in 0..C {
        p[k] = e[k] * inv_s;
        q[k] = rest[k] * inv_s;
    }
    SoftmaxParts {
        p,
        q,
        m,
        s,
        log_s: rest[top].ln_1p(),
    }
}

impl<T: Real, const C: usize> SoftmaxParts<T, C> {
    /// The sample's loss `logsumexp(u) - u_t = (m - u_t) + log1p(sum_{j != top} e_j)`: two
    /// non-negative terms; for `t = top` it is `log1p(sum_{j != t} exp(u_j - u_t))`.
    #[inline]
    pub(crate) fn loss(&self, u_t: T) -> T {
        (self.m - u_t) + self.log_s
    }
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
            acc += softmax_parts(u, n).loss(u[(t[n], n)]);
        }
        acc / T::c(B as f64)
    }

    /// `dl/du_n = (p_n - e_t) / B`, with `p_t - 1 = -q_t` (no cancellation).
    fn gradient(u: &SMatrix<T, C, B>, t: &Self::Target) -> (T, SMatrix<T, C, B>) {
        let inv_b = T::ONE / T::c(B as f64);
        let mut g = zero_mat::<T, C, B>();
        let mut acc = T::ZERO;
        for n in 0..B {
            let sp = softmax_parts(u, n);
            acc += sp.loss(u[(t[n], n)]);
            for k in 0..C {
                g[(k, n)] = sp.p[k] * inv_b;
            }
            g[(t[n], n)] = -sp.q[t[n]] * inv_b;
        }
        (acc * inv_b, g)
    }

    /// `(Hl y)_k = p_k (q_k y_k - sum_{j != k} p_j y_j) / B` (the sum from prefix and suffix
    /// sums, so the saturated class's own term never cancels).
    fn hess_apply(
        u: &SMatrix<T, C, B>,
        _t: &Self::Target,
        y: &SMatrix<T, C, B>,
    ) -> SMatrix<T, C, B> {
        let inv_b = T::ONE / T::c(B as f64);
        let mut r = zero_mat::<T, C, B>();
        for n in 0..B {
            let sp = softmax_parts(u, n);
            let mut others = [T::ZERO; C];
            let mut acc = T::ZERO;
            for k in 0..C {
                others[k] = acc;
                acc += sp.p[k] * y[(k, n)];
            }
            let mut acc = T::ZERO;
            for k in (0..C).rev() {
                others[k] += acc;
                acc += sp.p[k] * y[(k, n)];
            }
            for k in 0..C {
                r[(k, n)] = sp.p[k] * (sp.q[k] * y[(k, n)] - others[k]) * inv_b;
            }
        }
        r
    }

    /// `(diag(p) - p p') / B` with the diagonal as `p_k q_k`.
    fn hess_block(u: &SMatrix<T, C, B>, _t: &Self::Target, n: usize) -> SMatrix<T, C, C> {
        let inv_b = T::ONE / T::c(B as f64);
        let sp = softmax_parts(u, n);
        SMatrix::from_fn(|i, j| {
            if i == j {
                sp.p[i] * sp.q[i] * inv_b
            } else {
                -(sp.p[i] * sp.p[j]) * inv_b
            }
        })
    }

    fn ggn_factor(u: &SMatrix<T, C, B>, _t: &Self::Target, n: usize) -> SMatrix<T, C, C> {
        <Self as crate::ggn::GgnLoss<T, C, B>>::hess_factor(u, n)
    }
    /// Column `t` of `C_n` is `sqrt(p_t) (e_t - p) / sqrt(B)`, so `w = -e_t / sqrt(p_t B)`
    /// (`C_n w = (p - e_t) / B`), with `1 / sqrt(p_t) = sqrt(s) exp((m - u_t) / 2)`
    /// (`None` if that overflows: a label whose probability is below the range's square).
    fn ggn_coords(
        u: &SMatrix<T, C, B>,
        t: &Self::Target,
        n: usize,
        _c: &SMatrix<T, C, C>,
        _grad_n: &nalgebra::SVector<T, C>,
    ) -> Option<nalgebra::SVector<T, C>> {
        let sp = softmax_parts(u, n);
        let label = t[n];
        let inv_sqrt_p = sp.s.sqrt() * ((sp.m - u[(label, n)]) * T::c(0.5)).exp();
        let v = -inv_sqrt_p / T::c(B as f64).sqrt();
        let mut w = nalgebra::SVector::<T, C>::zeros();
        w[label] = v;
        v.finite().then_some(w)
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
