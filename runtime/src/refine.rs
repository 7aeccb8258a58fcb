//! Iterative refinement, once for every solve that offers it (the exact Hessian's factors,
//! the Gauss-Newton Riccati and Woodbury forms; docs/math.md section 7).
//!
//! Given a solve `x ~ A^{-1} b` and the exact product `A v`, each step solves for the
//! correction of the current residual. The rule: a step is kept only when it lowers the
//! residual; refinement stops once the relative residual is at most `2 EPSILON` (LAPACK's
//! `xGERFS` test, backward error at most `EPSILON`: with `|A| |x| >= |A x|` close to `|b|`,
//! the normwise backward error `|r| / (|A| |x| + |b|)` is then at most about half the
//! relative residual: the solution of a system within `EPSILON` of the one given, which a
//! further step in working precision cannot improve on), when a step gains less than a factor of
//! two, or after `max_steps` steps. So the returned `x` is never worse than the plain
//! solve's, and the reported residual is the one of the returned `x`, measured with the
//! exact product.
//!
//! The returned `x` is vouched for in either of two ways. Its relative residual
//! `|b - A x| / |b|` is at most [`vouch_bound`] (`sqrt(EPSILON)`: `A x` reproduces half
//! the digits of `b`); or its normwise backward error `|b - A x| / (|A| |x| + |b|)` is at
//! most [`backward_bound`] (`N EPSILON`, capped at `sqrt(EPSILON)`: `x` is the exact
//! solution of a system within that fraction of `A` and `b`, as a backward-stable solve
//! gives, so its error is as small as the conditioning allows). The second is checked only
//! when the first fails, with `|A|` estimated from below by a few power-iteration steps with
//! the exact product, which overstates the backward error and never understates it. So an
//! ill-conditioned system solved backward stably (relative residual up to `cond * u`) is
//! vouched for, and a solve that lost digits of `b` is not: [`SolveError::Inaccurate`].

use crate::error::SolveError;
use crate::real::{all_finite, norm, Real};
use crate::rng::SplitMix64;

/// What iterative refinement achieved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refinement<T> {
    /// Relative residual `|b - A x| / |b|` of the returned `x` (0 for `b = 0`), with the
    /// exact product `A x`.
    pub residual: T,
    /// An upper bound on the normwise backward error `|b - A x| / (|A| |x| + |b|)` of the
    /// returned `x` (2-norms): [`Self::residual`] itself when that is within
    /// [`vouch_bound`] (no norm estimate is made then), otherwise the backward error with
    /// `|A|` estimated from below by the power iteration, at most [`backward_bound`].
    pub backward_error: T,
    /// Correction steps kept.
    pub steps: usize,
}

impl<T: Real> core::fmt::Display for Refinement<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "relative residual {:.3e} (backward error at most {:.3e}) after {} refinement steps",
            self.residual.to_f64(),
            self.backward_error.to_f64(),
            self.steps
        )
    }
}

/// The largest relative residual a refined solve returns as `Ok` without a norm estimate:
/// `sqrt(EPSILON)` (about 1.5e-8 in `f64`, 3.5e-4 in `f32`).
pub fn vouch_bound<T: Real>() -> T {
    T::EPSILON.sqrt()
}

/// The largest normwise backward error a refined solve of `n` unknowns returns as `Ok`
/// when its relative residual is above [`vouch_bound`]: `n EPSILON` (the order of a
/// backward-stable factorisation's bound), capped at `sqrt(EPSILON)`. Above both, the
/// solve lost digits no backward-stable solve loses: [`SolveError::Inaccurate`].
pub fn backward_bound<T: Real>(n: usize) -> T {
    (T::c(n as f64) * T::EPSILON).min(T::EPSILON.sqrt())
}

/// Power-iteration steps at most behind the norm estimate of [`backward_error`].
const NORM_STEPS: usize = 8;

/// An upper bound on the backward error `r_norm / (|A| x_norm + b_norm)`, with `|A|_2`
/// estimated from below by at most [`NORM_STEPS`] power-iteration steps from a fixed
/// pseudo-random sign vector (`|A v| / |v|` never exceeds `|A|_2`, and for a symmetric `A`
/// it grows toward the largest eigenvalue magnitude step by step); stops as soon as the
/// bound is within `target`. `v` and `w` are scratch.
fn backward_error<T: Real, Op: Refinable<T>>(
    op: &mut Op,
    r_norm: T,
    x_norm: T,
    b_norm: T,
    target: T,
    v: &mut [T],
    w: &mut [T],
) -> T {
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    for vi in v.iter_mut() {
        *vi = if rng.next_u64() >> 63 == 0 {
            T::ONE
        } else {
            -T::ONE
        };
    }
    let mut v_norm = T::c(v.len() as f64).sqrt();
    let mut bound = r_norm / b_norm;
    for _ in 0..NORM_STEPS {
        op.product(v, w);
        let w_norm = norm(w);
        if !(w_norm.finite() && w_norm > T::ZERO) {
            break;
        }
        let a_norm = w_norm / v_norm;
        bound = bound.min(r_norm / (a_norm * x_norm + b_norm));
        if bound <= target {
            break;
        }
        let inv = T::ONE / w_norm;
        for (vi, wi) in v.iter_mut().zip(w.iter()) {
            *vi = *wi * inv;
        }
        v_norm = T::ONE;
    }
    bound
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
            backward_error: T::ZERO,
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
    // Backward stable to working precision already: a step would only chase rounding.
    let done = T::c(2.0) * T::EPSILON;
    while steps < max_steps && res > done {
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
    let (backward, vouched) = if res <= vouch_bound::<T>() {
        (res, true)
    } else {
        let target = backward_bound::<T>(x.len());
        let eta = backward_error(op, res * b_norm, norm(x), b_norm, target, r, d);
        (eta, eta <= target)
    };
    if !vouched {
        return Err(SolveError::Inaccurate {
            residual: res.to_f64(),
            backward_error: backward.to_f64(),
        });
    }
    Ok(Refinement {
        residual: res,
        backward_error: backward,
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
        run_on(&[2.0, -3.0, 0.5], e, max_steps, b)
    }

    fn run_on(
        a: &[f64; 3],
        e: f64,
        max_steps: usize,
        b: &[f64; 3],
    ) -> (Result<Refinement<f64>, SolveError>, [f64; 3], usize) {
        let mut op = Diag { a, e, solves: 0 };
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
                backward_error: 0.0,
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
            Err(SolveError::Inaccurate { residual, .. }) => {
                assert!((residual - 1.5).abs() < 1e-12, "{residual}")
            }
            other => panic!("{other:?}"),
        }
        // x is still the plain solve's
        assert!((x[0] - 1.0 / (2.0 * -2.0)).abs() < 1e-15);
        // and its backward error (about 0.5) is far above the bound too
        let Err(SolveError::Inaccurate { backward_error, .. }) = out else {
            unreachable!()
        };
        let eta = true_backward_error(&[2.0, -3.0, 0.5], &x, &[1.0, 1.0, 1.0]);
        assert!(
            eta > 0.4 && backward_error >= eta * (1.0 - 1e-12),
            "{backward_error} {eta}"
        );
    }

    /// `|b - A x| / (|A|_2 |x| + |b|)` for `A = diag(a)` (whose 2-norm is `max |a_i|`).
    fn true_backward_error(a: &[f64; 3], x: &[f64; 3], b: &[f64; 3]) -> f64 {
        let r: std::vec::Vec<f64> = (0..3).map(|i| b[i] - a[i] * x[i]).collect();
        let a_norm = a.iter().fold(0.0f64, |m, ai| m.max(ai.abs()));
        norm(&r) / (a_norm * norm(x) + norm(b))
    }

    #[test]
    fn vouches_for_a_large_residual_that_is_a_small_backward_error() {
        // A = diag(1e12, 1, -1) (cond 1e12) and an inverse off by 1e-4 in every entry, not
        // refined: the relative residual is 1e-4, far above sqrt(EPSILON), but x solves a
        // system within about 1e-16 of A and b (the residual is tiny against |A| |x|), below
        // the backward-stable bound 3 EPSILON.
        let a = [1e12, 1.0, -1.0];
        let b = [1.0, 1.0, 1.0];
        let (out, x, solves) = run_on(&a, 1e-4, 0, &b);
        assert_eq!(solves, 0);
        let out = out.unwrap();
        assert!(
            (out.residual - 1e-4 / (1.0 + 1e-4)).abs() < 1e-15,
            "{out:?}"
        );
        let eta = true_backward_error(&a, &x, &b);
        assert!(eta < 2e-16, "{eta}");
        // an upper bound, and a tight one here (the power iteration finds |A| = 1e12 at once)
        assert!(
            out.backward_error >= eta * (1.0 - 1e-12) && out.backward_error <= 2.0 * eta,
            "{} against {eta}",
            out.backward_error
        );
    }

    #[test]
    fn errs_on_a_backward_error_above_the_backward_stable_bound() {
        // The same inverse on A = diag(1e8, 1, -1): backward error about 1.2e-12, far below
        // sqrt(EPSILON) but 1800 times 3 EPSILON: digits a backward-stable solve keeps are
        // lost, and the relative residual (1e-4) does not vouch either.
        let a = [1e8, 1.0, -1.0];
        let b = [1.0, 1.0, 1.0];
        let (out, x, _) = run_on(&a, 1e-4, 0, &b);
        let eta = true_backward_error(&a, &x, &b);
        match out {
            Err(SolveError::Inaccurate {
                residual,
                backward_error,
            }) => {
                assert!((residual - 1e-4 / (1.0 + 1e-4)).abs() < 1e-15);
                assert!(
                    eta > 1e-12 && backward_error >= eta * (1.0 - 1e-12),
                    "{backward_error} {eta}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_residual_within_the_bound_is_its_own_backward_error_bound() {
        let (out, x, _) = run_on(&[1e8, 1.0, -1.0], 1e-10, 0, &[1.0, 1.0, 1.0]);
        let out = out.unwrap();
        assert_eq!(out.backward_error, out.residual);
        assert!(out.residual >= true_backward_error(&[1e8, 1.0, -1.0], &x, &[1.0; 3]));
    }

    #[test]
    fn zero_right_hand_side_gives_zero() {
        let (out, x, _) = run(0.1, 3, &[0.0; 3]);
        assert_eq!(out.unwrap().residual, 0.0);
        assert_eq!(x, [0.0; 3]);
    }
}
