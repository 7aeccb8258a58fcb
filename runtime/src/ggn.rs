//! Gauss-Newton curvature `G = J' Hl J` (docs/math.md section 5): kernels for the batch-by-outputs
//! (Woodbury) solve and the loss-Hessian factors it needs.
//!
//! Two exact ways to solve `(G + eps I) x = b` are generated for every net:
//!
//! - **Riccati** (`ggn_curvature_into` + the Hessian solve's `factor`/`solve`): the Hessian's
//!   per-stage blocks with every adjoint (`beta`) term dropped, i.e. `c = d = 0` in each
//!   stage and the loss Hessian `Hl` as terminal value. Per stage `O((R O)^3)`.
//! - **Woodbury** (`ggn_woodbury_into` + `ggn_woodbury_solve`): with `Hl = C C'` (`C`
//!   block diagonal over samples, `M = outputs * batch` columns) and `U = J' C`,
//!   `(G + eps I)^{-1} b = (b - U (eps I + U'U)^{-1} U' b) / eps`. `U'U` is accumulated stage
//!   by stage from `M` back-propagated adjoints (`runtime/src/stage/gram.rs`), then factored by
//!   Cholesky (`M x M`); a solve is one forward-tangent and one backward pass. Per stage
//!   `O(M^2 O)`, plus `O(M^3)` once.
//!
//! The generated `GGN_METHOD` constant names the one a net's `ggn_solve_in` uses (chosen at
//! compile time from an operation count; see [`GgnMethod`]).

use nalgebra::SMatrix;

use crate::loss::{softmax_parts, Loss, Mse, SoftmaxCrossEntropy};
use crate::real::Real;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Which exact Gauss-Newton solve a net uses by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgnMethod {
    /// The Riccati sweep on the stage blocks with the adjoint terms dropped.
    Riccati,
    /// The batch-by-outputs (Woodbury) form.
    Woodbury,
}

/// A loss whose Hessian `Hl` (block diagonal over samples) has an explicit factor
/// `Hl_n = C_n C_n'` per sample.
pub trait GgnLoss<T: Real, const O: usize, const B: usize>: Loss<T, O, B> {
    /// `C_n` (`O x O`) with `C_n C_n' = Hl_n` at the outputs `u`.
    fn hess_factor(u: &SMatrix<T, O, B>, n: usize) -> SMatrix<T, O, O>;
}

impl<T: Real, const O: usize, const B: usize> GgnLoss<T, O, B> for Mse<O> {
    fn hess_factor(_u: &SMatrix<T, O, B>, _n: usize) -> SMatrix<T, O, O> {
        SMatrix::identity() * (T::ONE / T::c(B as f64).sqrt())
    }
}

impl<T: Real, const C: usize, const B: usize> GgnLoss<T, C, B> for SoftmaxCrossEntropy<C> {
    /// `C_n = (diag(sqrt p) - p sqrt(p)') / sqrt(B)`: `C C' = diag(p) - p p'` since
    /// `sum p = 1`. Column `j` is `sqrt(p_j) (e_j - p)`, its diagonal entry
    /// `sqrt(p_j) (1 - p_j)` taken with `1 - p_j` as the other classes' probability sum
    /// (exact to rounding however saturated the softmax is), and `sqrt(p_j)` as
    /// `exp((u_j - m) / 2) / sqrt(s)`, which stays accurate where `p_j` itself is subnormal.
    fn hess_factor(u: &SMatrix<T, C, B>, n: usize) -> SMatrix<T, C, C> {
        let sp = softmax_parts(u, n);
        let scale = T::ONE / T::c(B as f64).sqrt();
        let inv_sqrt_s = T::ONE / sp.s.sqrt();
        let half = T::c(0.5);
        let sqrt_p: [T; C] =
            core::array::from_fn(|j| ((u[(j, n)] - sp.m) * half).exp() * inv_sqrt_s);
        SMatrix::from_fn(|i, j| {
            let sj = sqrt_p[j];
            if i == j {
                sj * sp.q[j] * scale
            } else {
                -(sp.p[i] * sj) * scale
            }
        })
    }
}

/// A factor `C` (`O x O`) with `C C'` the positive semi-definite part of the symmetric `h`
/// (eigenvalues below zero dropped): the loss-Hessian factor of the Gauss-Newton matrix for a
/// custom loss, whose Hessian need not be positive semi-definite (for `Mse` and
/// `SoftmaxCrossEntropy` it is, and [`GgnLoss`] gives `C` in closed form).
pub fn psd_factor<T: Real, const O: usize>(h: &SMatrix<T, O, O>) -> SMatrix<T, O, O> {
    // Cyclic Jacobi: a = V' h V diagonal, V orthogonal (O is a loss width: small).
    let mut a = (h + h.transpose()) * T::c(0.5);
    let mut v = SMatrix::<T, O, O>::identity();
    for _sweep in 0..64 {
        let mut off = T::ZERO;
        let mut diag = T::ZERO;
        for i in 0..O {
            diag += a[(i, i)] * a[(i, i)];
            for j in 0..O {
                if i != j {
                    off += a[(i, j)] * a[(i, j)];
                }
            }
        }
        // (also stops on a NaN)
        if off.partial_cmp(&(T::EPSILON * T::EPSILON * diag)) != Some(core::cmp::Ordering::Greater)
        {
            break;
        }
        for p in 0..O {
            for q in p + 1..O {
                let apq = a[(p, q)];
                if apq == T::ZERO {
                    continue;
                }
                let theta = (a[(q, q)] - a[(p, p)]) / (T::c(2.0) * apq);
                let sign = if theta >= T::ZERO { T::ONE } else { -T::ONE };
                let tan = sign / (theta.abs() + (theta * theta + T::ONE).sqrt());
                let cos = T::ONE / (tan * tan + T::ONE).sqrt();
                let sin = tan * cos;
                for k in 0..O {
                    let (akp, akq) = (a[(k, p)], a[(k, q)]);
                    a[(k, p)] = cos * akp - sin * akq;
                    a[(k, q)] = sin * akp + cos * akq;
                }
                for k in 0..O {
                    let (apk, aqk) = (a[(p, k)], a[(q, k)]);
                    a[(p, k)] = cos * apk - sin * aqk;
                    a[(q, k)] = sin * apk + cos * aqk;
                }
                for k in 0..O {
                    let (vkp, vkq) = (v[(k, p)], v[(k, q)]);
                    v[(k, p)] = cos * vkp - sin * vkq;
                    v[(k, q)] = sin * vkp + cos * vkq;
                }
            }
        }
    }
    for j in 0..O {
        let l = a[(j, j)];
        let s = if l > T::ZERO { l.sqrt() } else { T::ZERO };
        for i in 0..O {
            v[(i, j)] *= s;
        }
    }
    v
}

/// `out = C y` per sample (`C` block diagonal, blocks `c[n]`), for an `O x B` matrix `y`.
/// A solution `w` of `C w = l` (`C` small and square, possibly singular) by Gaussian
/// elimination with complete pivoting: pivots below `O u max|C|` end the elimination and
/// the remaining unknowns are set to zero. `None` for a non-finite result. Whether `C w =
/// l` actually holds (`l` in the range of `C`) is for the caller to check.
pub fn range_solve<T: Real, const O: usize>(
    c: &SMatrix<T, O, O>,
    l: &nalgebra::SVector<T, O>,
) -> Option<nalgebra::SVector<T, O>> {
    let mut a = *c;
    let mut b = *l;
    let mut cols: [usize; O] = core::array::from_fn(|j| j);
    let tol = c.amax() * T::EPSILON * T::c(O as f64);
    let mut rank = 0;
    for k in 0..O {
        let (mut pi, mut pj, mut best) = (k, k, T::ZERO);
        for i in k..O {
            for j in k..O {
                if a[(i, j)].abs() > best {
                    (pi, pj, best) = (i, j, a[(i, j)].abs());
                }
            }
        }
        if !(best > tol) {
            break;
        }
        a.swap_rows(k, pi);
        b.swap_rows(k, pi);
        a.swap_columns(k, pj);
        cols.swap(k, pj);
        for i in k + 1..O {
            let f = a[(i, k)] / a[(k, k)];
            for j in k..O {
                let v = a[(k, j)];
                a[(i, j)] -= f * v;
            }
            let v = b[k];
            b[i] -= f * v;
        }
        rank = k + 1;
    }
    let mut y = nalgebra::SVector::<T, O>::zeros();
    for k in (0..rank).rev() {
        let mut acc = b[k];
        for j in k + 1..rank {
            acc -= a[(k, j)] * y[j];
        }
        y[k] = acc / a[(k, k)];
    }
    let mut w = nalgebra::SVector::<T, O>::zeros();
    for (k, &j) in cols.iter().enumerate() {
        w[j] = y[k];
    }
    crate::real::all_finite(w.as_slice()).then_some(w)
}

pub(crate) fn factor_apply<T: Real, const O: usize, const B: usize>(
    c: &[SMatrix<T, O, O>; B],
    y: &SMatrix<T, O, B>,
    transpose: bool,
) -> SMatrix<T, O, B> {
    let mut out = SMatrix::<T, O, B>::zeros();
    for (n, cn) in c.iter().enumerate() {
        let col = y.column(n);
        let r = if transpose { cn.tr_mul(&col) } else { cn * col };
        out.set_column(n, &r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psd_factor_keeps_the_positive_part() {
        let mut rng = crate::rng::SplitMix64::new(5);
        let x = SMatrix::<f64, 4, 4>::from_fn(|_, _| rng.symmetric());
        let h = x + x.transpose();
        let c = psd_factor(&h);
        let eig = nalgebra::SymmetricEigen::new(h);
        let mut lp = eig.eigenvalues;
        lp.apply(|l| *l = l.max(0.0));
        let hp = eig.eigenvectors
            * SMatrix::<f64, 4, 4>::from_diagonal(&lp)
            * eig.eigenvectors.transpose();
        assert!((c * c.transpose() - hp).norm() < 1e-12 * h.norm());
        assert!(
            eig.eigenvalues.min() < 0.0,
            "the test needs an indefinite h"
        );
    }

    #[test]
    fn softmax_factor_reproduces_hessian() {
        let u = SMatrix::<f64, 4, 2>::from_fn(|i, j| (i as f64) * 0.3 - (j as f64) * 0.7 + 0.1);
        for n in 0..2 {
            let c = <SoftmaxCrossEntropy<4> as GgnLoss<f64, 4, 2>>::hess_factor(&u, n);
            let h = <SoftmaxCrossEntropy<4> as Loss<f64, 4, 2>>::hess_block(&u, &[0, 1], n);
            assert!((c * c.transpose() - h).norm() < 1e-15);
        }
    }
}
