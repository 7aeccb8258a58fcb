//! Iterative refinement, once for every solve that offers it (the exact Hessian's factors,
//! the Gauss-Newton Riccati and Woodbury forms; docs/math.md section 7).
//!
//! Given a solve `x ~ A^{-1} b` and the exact product `A v`, each step solves for the
//! correction of the current residual. The rule: a step is kept only when it lowers the
//! residual; refinement stops at a zero residual, when a step gains less than a factor of
//! two, or after `max_steps` steps. So the returned `x` is never worse than the plain
//! solve's, and the reported residual is the one of the returned `x`, measured with the
//! exact product. A result whose relative residual is above [`vouch_bound`] is an error:
//! the solve cannot vouch for it.

use crate::error::SolveError;
use crate::real::{all_finite, norm, Real};

/// What iterative refinement achieved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refinement<T> {
    /// Relative residual `|b - A x| / |b|` of the returned `x` (0 for `b = 0`), with the
    /// exact product `A x`.
    pub residual: T,
    /// Correction steps kept.
    pub steps: usize,
}

impl<T: Real> core::fmt::Display for Refinement<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "relative residual {:.3e} after {} refinement steps",
            self.residual.to_f64(),
            self.steps
        )
    }
}

/// The largest relative residual a refined solve returns as `Ok`: `sqrt(EPSILON)` (about
/// 1.5e-8 in `f64`, 3.5e-4 in `f32`). Above it, half the digits of `b` are not reproduced
/// by the solution: [`SolveError::Inaccurate`].
pub fn vouch_bound<T: Real>() -> T {
    T::EPSILON.sqrt()
}

/// A linear operator with an approximate inverse, for [`refine`].
pub(crate) trait Refinable<T> {
    /// `out = A v`.
    fn product(&mut self, v: &[T], out: &mut [T]);
    /// `x ~ A^{-1} b`.
    fn approx_solve(&mut self, b: &[T], x: &mut [T]);
}

/// Refines `x` (the plain solve of `b`, already in `x`) with at most `max_steps` corrections;
/// `r` and `d` are scratch of the same length.
pub(crate) fn refine<T: Real, Op: Refinable<T>>(
    op: &mut Op,
    b: &[T],
    x: &mut [T],
    r: &mut [T],
    d: &mut [T],
    max_steps: usize,
) -> Result<Refinement<T>, SolveError> {
    if !all_finite(x) {
        return Err(SolveError::NonFiniteResult);
    }
    let b_norm = norm(b);
    if b_norm == T::ZERO {
        // The unique solution of a nonsingular system.
        x.fill(T::ZERO);
        return Ok(Refinement {
            residual: T::ZERO,
            steps: 0,
        });
    }
    let residual = |op: &mut Op, x: &[T], r: &mut [T]| -> T {
        op.product(x, r);
        for (ri, bi) in r.iter_mut().zip(b) {
            *ri = *bi - *ri;
        }
        norm(r) / b_norm
    };
    let mut res = residual(op, x, r);
    if !res.finite() {
        return Err(SolveError::NonFiniteResult);
    }
    let mut steps = 0;
    while steps < max_steps && res > T::ZERO {
        // Candidate x + A^{-1} r, built in `d`; `r` is then the candidate's residual.
        op.approx_solve(r, d);
        for (di, xi) in d.iter_mut().zip(x.iter()) {
            *di += *xi;
        }
        let new = residual(op, d, r);
        if !(new < res) {
            break; // no better (or not finite): keep x and its residual
        }
        x.copy_from_slice(d);
        steps += 1;
        let stalled = new > res * T::c(0.5);
        res = new;
        if stalled {
            break;
        }
    }
    if res > vouch_bound::<T>() {
        return Err(SolveError::Inaccurate {
            residual: res.to_f64(),
        });
    }
    Ok(Refinement {
        residual: res,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `A = diag(a)` with a perturbed inverse `diag(1 / (a (1 + e)))`.
    struct Diag<'a> {
        a: &'a [f64],
        e: f64,
        solves: usize,
    }

    impl Refinable<f64> for Diag<'_> {
        fn product(&mut self, v: &[f64], out: &mut [f64]) {
            for ((o, vi), ai) in out.iter_mut().zip(v).zip(self.a) {
                *o = ai * vi;
            }
        }
        fn approx_solve(&mut self, b: &[f64], x: &mut [f64]) {
            self.solves += 1;
            for ((xi, bi), ai) in x.iter_mut().zip(b).zip(self.a) {
                *xi = bi / (ai * (1.0 + self.e));
            }
        }
    }

    fn run(
        e: f64,
        max_steps: usize,
        b: &[f64; 3],
    ) -> (Result<Refinement<f64>, SolveError>, [f64; 3], usize) {
        let a = [2.0, -3.0, 0.5];
        let mut op = Diag {
            a: &a,
            e,
            solves: 0,
        };
        let mut x = [0.0; 3];
        op.approx_solve(b, &mut x);
        let (mut r, mut d) = ([0.0; 3], [0.0; 3]);
        let out = refine(&mut op, b, &mut x, &mut r, &mut d, max_steps);
        (out, x, op.solves - 1)
    }

    #[test]
    fn converges_and_reports_the_residual_of_x() {
        let b = [1.0, 2.0, -1.0];
        let (out, x, _) = run(1e-3, 10, &b);
        let out = out.unwrap();
        assert!(out.residual < 1e-15, "{out:?}");
        assert!(out.steps >= 2);
        for ((xi, bi), ai) in x.iter().zip(&b).zip([2.0, -3.0, 0.5]) {
            assert!((xi - bi / ai).abs() < 1e-14);
        }
    }

    #[test]
    fn stops_at_a_zero_residual_whatever_the_step_bound() {
        // An exact inverse: the residual is 0 after the plain solve, so no correction is tried,
        // even with an unbounded step budget.
        let (out, _, solves) = run(0.0, usize::MAX, &[0.5, 3.0, -2.0]);
        assert_eq!(
            out.unwrap(),
            Refinement {
                residual: 0.0,
                steps: 0
            }
        );
        assert_eq!(solves, 0);
    }

    #[test]
    fn never_returns_a_worse_x_and_errs_when_it_cannot_vouch() {
        // A diverging "inverse" (e = -3: each correction overshoots by a factor 2): no step is
        // kept, and the plain solve's residual (3/2) is too large to vouch for.
        let (out, x, solves) = run(-3.0, 50, &[1.0, 1.0, 1.0]);
        assert_eq!(solves, 1, "one rejected candidate, then stop");
        match out {
            Err(SolveError::Inaccurate { residual }) => {
                assert!((residual - 1.5).abs() < 1e-12, "{residual}")
            }
            other => panic!("{other:?}"),
        }
        // x is still the plain solve's
        assert!((x[0] - 1.0 / (2.0 * -2.0)).abs() < 1e-15);
    }

    #[test]
    fn zero_right_hand_side_gives_zero() {
        let (out, x, _) = run(0.1, 3, &[0.0; 3]);
        assert_eq!(out.unwrap().residual, 0.0);
        assert_eq!(x, [0.0; 3]);
    }
}
