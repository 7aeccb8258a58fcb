//! Baseline solvers for `(A + eps I) x = b`, given only a matrix-vector product, to compare
//! the structured solves against (`examples/perf_report.rs`) and to check them in tests.
//!
//! The operator is any closure `FnMut(&[f64], &mut [f64])` writing `A v` into its second
//! argument (typically a network's `hvp`); `A` must be symmetric for the Krylov methods.
//!
//! * [`dense_solve`]: builds `A` column by column from `n` products, then solves with
//!   nalgebra's LU with partial (row) pivoting. O(n) products plus O(n^3) flops and O(n^2)
//!   memory: only for small `n`.
//! * [`cg`]: conjugate gradients. Exact in exact arithmetic for symmetric positive definite
//!   `A + eps I`; on an indefinite one it can break down (a direction of non-positive
//!   curvature), which it reports instead of returning a meaningless iterate.
//! * [`minres`]: MINRES (Paige and Saunders, 1975), for any symmetric `A + eps I`, definite
//!   or not: minimises the residual norm over the Krylov space.
//!
//! Only with the `std` feature. Nothing here is used by generated code.

use std::vec;

use nalgebra::DMatrix;

/// What can go wrong in a baseline solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineError {
    /// A slice argument has the wrong length (`b` or `x` against the dimension).
    LengthMismatch { expected: usize, found: usize },
    /// `eps` is NaN or infinite.
    NonFiniteEps,
    /// An entry of the right-hand side `b` is NaN or infinite.
    NonFiniteRhs { index: usize },
    /// The operator returned a NaN or infinite entry.
    NonFiniteProduct { index: usize },
    /// LU met an exactly zero pivot: `A + eps I` is singular.
    Singular,
    /// The solution overflowed although every input was finite.
    NonFiniteResult,
}

impl core::fmt::Display for BaselineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            BaselineError::LengthMismatch { expected, found } => {
                write!(f, "slice of length {found}, expected {expected}")
            }
            BaselineError::NonFiniteEps => f.write_str("eps is not finite"),
            BaselineError::NonFiniteRhs { index } => {
                write!(f, "entry {index} of the right-hand side is not finite")
            }
            BaselineError::NonFiniteProduct { index } => {
                write!(f, "entry {index} of an operator product is not finite")
            }
            BaselineError::Singular => f.write_str("A + eps I is singular (zero LU pivot)"),
            BaselineError::NonFiniteResult => f.write_str("the solution is not finite"),
        }
    }
}

impl std::error::Error for BaselineError {}

/// How an iterative solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The residual estimate reached the requested relative tolerance.
    Converged,
    /// CG met a direction `p` with `p' (A + eps I) p <= 0`: the matrix is not positive
    /// definite (or is numerically singular) and CG cannot continue. `x` is the last iterate.
    Breakdown,
    /// The iteration cap was reached first. `x` is the last iterate.
    MaxIterations,
}

/// Result of [`cg`] or [`minres`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KrylovReport {
    pub outcome: Outcome,
    /// Operator products used (one per iteration; the final residual check is not counted).
    pub iterations: usize,
    /// `|b - (A + eps I) x| / |b|`, recomputed from `x` with one more product (not the
    /// recursively updated estimate, which can drift from it in floating point).
    pub relative_residual: f64,
}

impl KrylovReport {
    pub fn converged(&self) -> bool {
        self.outcome == Outcome::Converged
    }
}

fn check_len(expected: usize, found: usize) -> Result<(), BaselineError> {
    if expected == found {
        Ok(())
    } else {
        Err(BaselineError::LengthMismatch { expected, found })
    }
}

fn check_inputs(b: &[f64], x: &[f64], eps: f64) -> Result<(), BaselineError> {
    check_len(b.len(), x.len())?;
    if !eps.is_finite() {
        return Err(BaselineError::NonFiniteEps);
    }
    if let Some(index) = b.iter().position(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteRhs { index });
    }
    Ok(())
}

fn check_product(y: &[f64]) -> Result<(), BaselineError> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(BaselineError::NonFiniteProduct { index }),
        None => Ok(()),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `out = (A + eps I) v`.
fn apply<F: FnMut(&[f64], &mut [f64])>(
    op: &mut F,
    eps: f64,
    v: &[f64],
    out: &mut [f64],
) -> Result<(), BaselineError> {
    op(v, out);
    check_product(out)?;
    for (o, vi) in out.iter_mut().zip(v) {
        *o += eps * vi;
    }
    Ok(())
}

/// `|b - (A + eps I) x| / |b|` (0 for `b = 0`, `x = 0`).
fn true_relative_residual<F: FnMut(&[f64], &mut [f64])>(
    op: &mut F,
    eps: f64,
    b: &[f64],
    x: &[f64],
) -> Result<f64, BaselineError> {
    let mut ax = vec![0.0; b.len()];
    apply(op, eps, x, &mut ax)?;
    let r: f64 = ax.iter().zip(b).map(|(a, bi)| (bi - a) * (bi - a)).sum::<f64>().sqrt();
    let nb = norm(b);
    Ok(if nb == 0.0 { r } else { r / nb })
}

/// The `n x n` matrix of the operator, column `j` = `A e_j` (`n` products). Not symmetrised.
pub fn dense_matrix<F: FnMut(&[f64], &mut [f64])>(
    n: usize,
    mut op: F,
) -> Result<DMatrix<f64>, BaselineError> {
    let mut a = DMatrix::<f64>::zeros(n, n);
    let mut e = vec![0.0; n];
    for j in 0..n {
        e[j] = 1.0;
        // nalgebra is column-major: column j is a contiguous slice.
        let col = &mut a.as_mut_slice()[j * n..(j + 1) * n];
        op(&e, col);
        check_product(col)?;
        e[j] = 0.0;
    }
    Ok(a)
}

/// Solves `(A + eps I) x = b` densely: builds `A` from `b.len()` products
/// ([`dense_matrix`]), adds `eps` to the diagonal, factors with LU with partial pivoting
/// and solves. Works for indefinite `A`; fails only if a pivot is exactly zero.
pub fn dense_solve<F: FnMut(&[f64], &mut [f64])>(
    op: F,
    eps: f64,
    b: &[f64],
    x: &mut [f64],
) -> Result<(), BaselineError> {
    check_inputs(b, x, eps)?;
    let n = b.len();
    let mut a = dense_matrix(n, op)?;
    for i in 0..n {
        a[(i, i)] += eps;
    }
    let lu = a.lu();
    let mut sol = nalgebra::DVector::from_column_slice(b);
    if !lu.solve_mut(&mut sol) {
        return Err(BaselineError::Singular);
    }
    if sol.iter().any(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteResult);
    }
    x.copy_from_slice(sol.as_slice());
    Ok(())
}

/// Conjugate gradients for `(A + eps I) x = b` from `x = 0`, until the recursively updated
/// residual satisfies `|r| <= rtol |b|` or `max_iter` products. Stops with
/// [`Outcome::Breakdown`] at a direction of non-positive curvature (`A + eps I` not positive
/// definite). `x` holds the last iterate in every case.
pub fn cg<F: FnMut(&[f64], &mut [f64])>(
    mut op: F,
    eps: f64,
    b: &[f64],
    x: &mut [f64],
    rtol: f64,
    max_iter: usize,
) -> Result<KrylovReport, BaselineError> {
    check_inputs(b, x, eps)?;
    let n = b.len();
    x.fill(0.0);
    let nb = norm(b);
    if nb == 0.0 {
        return Ok(KrylovReport { outcome: Outcome::Converged, iterations: 0, relative_residual: 0.0 });
    }
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut ap = vec![0.0; n];
    let mut rr = dot(&r, &r);
    let mut outcome = Outcome::MaxIterations;
    let mut it = 0;
    while it < max_iter {
        apply(&mut op, eps, &p, &mut ap)?;
        it += 1;
        let pap = dot(&p, &ap);
        if pap.is_nan() || pap <= 0.0 {
            outcome = Outcome::Breakdown;
            break;
        }
        let alpha = rr / pap;
        for i in 0..n {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let rr_new = dot(&r, &r);
        if rr_new.sqrt() <= rtol * nb {
            outcome = Outcome::Converged;
            break;
        }
        let beta = rr_new / rr;
        rr = rr_new;
        for i in 0..n {
            p[i] = r[i] + beta * p[i];
        }
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteResult);
    }
    let relative_residual = true_relative_residual(&mut op, eps, b, x)?;
    Ok(KrylovReport { outcome, iterations: it, relative_residual })
}

/// MINRES for symmetric, possibly indefinite `(A + eps I) x = b` from `x = 0` (Paige and
/// Saunders' recurrences, unpreconditioned: Lanczos plus Givens rotations), until the
/// residual-norm estimate satisfies `|r| <= rtol |b|`, the Krylov space is exhausted, or
/// `max_iter` products. `x` holds the last iterate in every case.
pub fn minres<F: FnMut(&[f64], &mut [f64])>(
    mut op: F,
    eps: f64,
    b: &[f64],
    x: &mut [f64],
    rtol: f64,
    max_iter: usize,
) -> Result<KrylovReport, BaselineError> {
    check_inputs(b, x, eps)?;
    let n = b.len();
    x.fill(0.0);
    let beta1 = norm(b);
    if beta1 == 0.0 {
        return Ok(KrylovReport { outcome: Outcome::Converged, iterations: 0, relative_residual: 0.0 });
    }
    // Lanczos vectors, unnormalised: r1 = beta_{k-1} v_{k-1}, r2 = beta_k v_k.
    let mut r1 = b.to_vec();
    let mut r2 = b.to_vec();
    let mut y = b.to_vec();
    let mut v = vec![0.0; n];
    // Search directions w_{k-2}, w_{k-1}, w_k.
    let mut w = vec![0.0; n];
    let mut w1 = vec![0.0; n];
    let mut w2 = vec![0.0; n];
    let (mut oldb, mut beta) = (0.0f64, beta1);
    let (mut dbar, mut epsln) = (0.0f64, 0.0f64);
    let mut phibar = beta1;
    let (mut cs, mut sn) = (-1.0f64, 0.0f64);
    let mut outcome = Outcome::MaxIterations;
    let mut it = 0;
    while it < max_iter {
        // Lanczos step: v_k = r2 / beta_k, y = A v_k - alpha_k v_k - beta_k v_{k-1}.
        let s = 1.0 / beta;
        for i in 0..n {
            v[i] = s * y[i];
        }
        apply(&mut op, eps, &v, &mut y)?;
        it += 1;
        if it >= 2 {
            let c = beta / oldb;
            for i in 0..n {
                y[i] -= c * r1[i];
            }
        }
        let alfa = dot(&v, &y);
        let c = alfa / beta;
        for i in 0..n {
            y[i] -= c * r2[i];
        }
        core::mem::swap(&mut r1, &mut r2);
        r2.copy_from_slice(&y);
        oldb = beta;
        beta = norm(&r2);

        // Apply the previous rotation, then make the one that annihilates beta_{k+1}.
        let oldeps = epsln;
        let delta = cs * dbar + sn * alfa;
        let gbar = sn * dbar - cs * alfa;
        epsln = sn * beta;
        dbar = -cs * beta;
        let gamma = gbar.hypot(beta).max(f64::MIN_POSITIVE);
        cs = gbar / gamma;
        sn = beta / gamma;
        let phi = cs * phibar;
        phibar *= sn;

        // w_k = (v_k - oldeps w_{k-2} - delta w_{k-1}) / gamma; x += phi w_k.
        core::mem::swap(&mut w1, &mut w2); // w1 = old w2 (w_{k-2})
        core::mem::swap(&mut w2, &mut w); // w2 = old w (w_{k-1}); w is overwritten below
        let dg = 1.0 / gamma;
        for i in 0..n {
            w[i] = (v[i] - oldeps * w1[i] - delta * w2[i]) * dg;
            x[i] += phi * w[i];
        }

        if phibar.abs() <= rtol * beta1 {
            outcome = Outcome::Converged;
            break;
        }
        if beta == 0.0 {
            // Invariant subspace found: x is the exact solution in it.
            outcome = Outcome::Converged;
            break;
        }
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteResult);
    }
    let relative_residual = true_relative_residual(&mut op, eps, b, x)?;
    Ok(KrylovReport { outcome, iterations: it, relative_residual })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A closure applying the dense row-major `n x n` matrix `a`, counting products.
    fn matvec<'a>(a: &'a [f64], n: usize, count: &'a mut usize) -> impl FnMut(&[f64], &mut [f64]) + 'a {
        move |v, out| {
            *count += 1;
            for i in 0..n {
                out[i] = (0..n).map(|j| a[i * n + j] * v[j]).sum();
            }
        }
    }

    /// `Q diag(d) Q'` for a fixed orthogonal `Q` (product of Householder reflections built
    /// from a deterministic pseudo-random sequence), row-major.
    fn sym_with_eigs(d: &[f64], seed: u64) -> Vec<f64> {
        let n = d.len();
        let mut rng = tall_skinny_runtime::SplitMix64::new(seed);
        let mut q = DMatrix::<f64>::identity(n, n);
        for _ in 0..3 {
            let u = nalgebra::DVector::from_fn(n, |_, _| rng.symmetric());
            let u = u.normalize();
            let h = DMatrix::<f64>::identity(n, n) - 2.0 * &u * u.transpose();
            q = h * q;
        }
        let a = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(d)) * q.transpose();
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                out[i * n + j] = 0.5 * (a[(i, j)] + a[(j, i)]);
            }
        }
        out
    }

    fn residual(a: &[f64], n: usize, eps: f64, b: &[f64], x: &[f64]) -> f64 {
        let mut r2 = 0.0;
        for i in 0..n {
            let ax: f64 = (0..n).map(|j| a[i * n + j] * x[j]).sum::<f64>() + eps * x[i];
            r2 += (b[i] - ax).powi(2);
        }
        r2.sqrt() / norm(b)
    }

    const N: usize = 12;
    const EPS: f64 = 1e-3;

    fn rhs() -> Vec<f64> {
        (0..N).map(|i| ((i as f64) * 0.7).sin() + 0.1).collect()
    }

    /// Eigenvalues in [0.5, 6]: SPD, condition 12.
    fn spd() -> Vec<f64> {
        sym_with_eigs(&(0..N).map(|i| 0.5 + 0.5 * i as f64).collect::<Vec<_>>(), 1)
    }

    /// Eigenvalues of both signs, none closer to -eps than 0.2.
    fn indefinite() -> Vec<f64> {
        let d: Vec<f64> = (0..N).map(|i| if i % 3 == 0 { -0.2 - 0.4 * i as f64 } else { 0.3 + 0.25 * i as f64 }).collect();
        sym_with_eigs(&d, 2)
    }

    /// Checked independently of nalgebra's LU: the residual of the returned x, computed
    /// from the explicit matrix (condition numbers here are at most ~30, so 1e-13 is a
    /// meaningful bound and a wrong solve fails it by orders of magnitude).
    #[test]
    fn dense_solve_spd_and_indefinite() {
        for a in [spd(), indefinite()] {
            let b = rhs();
            let mut x = vec![0.0; N];
            let mut count = 0;
            dense_solve(matvec(&a, N, &mut count), EPS, &b, &mut x).unwrap();
            assert_eq!(count, N, "one product per column");
            let res = residual(&a, N, EPS, &b, &x);
            assert!(res < 1e-13, "dense residual {res:e}");
        }
    }

    #[test]
    fn dense_matrix_reproduces_columns() {
        let a = indefinite();
        let mut count = 0;
        let m = dense_matrix(N, matvec(&a, N, &mut count)).unwrap();
        for i in 0..N {
            for j in 0..N {
                assert_eq!(m[(i, j)], a[i * N + j]);
            }
        }
    }

    #[test]
    fn cg_converges_on_spd() {
        let a = spd();
        let b = rhs();
        let mut x = vec![0.0; N];
        let mut count = 0;
        let rep = cg(matvec(&a, N, &mut count), EPS, &b, &mut x, 1e-12, 100).unwrap();
        assert_eq!(rep.outcome, Outcome::Converged);
        // n distinct eigenvalues: CG terminates in at most n steps in exact arithmetic;
        // condition 12 gives 1e-12 well within that.
        assert!(rep.iterations <= N, "{} iterations", rep.iterations);
        assert_eq!(count, rep.iterations + 1, "iterations plus the final residual check");
        let res = residual(&a, N, EPS, &b, &x);
        assert!(res < 1e-11, "cg residual {res:e}");
        assert!((res - rep.relative_residual).abs() < 1e-14);
        let mut xd = vec![0.0; N];
        dense_solve(matvec(&a, N, &mut count), EPS, &b, &mut xd).unwrap();
        for (u, w) in x.iter().zip(&xd) {
            assert!((u - w).abs() < 1e-10 * norm(&xd), "{u} vs {w}");
        }
    }

    #[test]
    fn cg_reports_breakdown_on_indefinite() {
        // Diagonal with eigenvalues -1 and 1 and b along (1, 1): p' A p = 0 at the first step.
        let a = [1.0, 0.0, 0.0, -1.0];
        let b = [1.0, 1.0];
        let mut x = [0.0; 2];
        let mut count = 0;
        let rep = cg(matvec(&a, 2, &mut count), 0.0, &b, &mut x, 1e-12, 10).unwrap();
        assert_eq!(rep.outcome, Outcome::Breakdown);
        assert_eq!(rep.iterations, 1);
        assert!(rep.relative_residual > 0.5, "not solved: {}", rep.relative_residual);
    }

    #[test]
    fn minres_converges_on_indefinite() {
        let a = indefinite();
        let b = rhs();
        let mut x = vec![0.0; N];
        let mut count = 0;
        let rep = minres(matvec(&a, N, &mut count), EPS, &b, &mut x, 1e-12, 100).unwrap();
        assert_eq!(rep.outcome, Outcome::Converged, "{rep:?}");
        // Exact in at most n steps in exact arithmetic; allow a few more for rounding.
        assert!(rep.iterations <= N + 3, "{} iterations", rep.iterations);
        let res = residual(&a, N, EPS, &b, &x);
        assert!(res < 1e-10, "minres residual {res:e}");
        let mut xd = vec![0.0; N];
        dense_solve(matvec(&a, N, &mut count), EPS, &b, &mut xd).unwrap();
        for (u, w) in x.iter().zip(&xd) {
            assert!((u - w).abs() < 1e-9 * norm(&xd), "{u} vs {w}");
        }
    }

    #[test]
    fn minres_matches_cg_on_spd() {
        let a = spd();
        let b = rhs();
        let (mut x1, mut x2) = (vec![0.0; N], vec![0.0; N]);
        let mut count = 0;
        let r1 = minres(matvec(&a, N, &mut count), EPS, &b, &mut x1, 1e-12, 100).unwrap();
        let r2 = cg(matvec(&a, N, &mut count), EPS, &b, &mut x2, 1e-12, 100).unwrap();
        assert!(r1.converged() && r2.converged());
        for (u, w) in x1.iter().zip(&x2) {
            assert!((u - w).abs() < 1e-10 * norm(&x2));
        }
    }

    #[test]
    fn minres_max_iterations_reports_partial() {
        let a = indefinite();
        let b = rhs();
        let mut x = vec![0.0; N];
        let mut count = 0;
        let rep = minres(matvec(&a, N, &mut count), EPS, &b, &mut x, 1e-12, 2).unwrap();
        assert_eq!(rep.outcome, Outcome::MaxIterations);
        assert_eq!(rep.iterations, 2);
        // MINRES residuals are monotone and the true one must be reported: strictly between 0 and 1.
        assert!(rep.relative_residual > 1e-6 && rep.relative_residual <= 1.0, "{rep:?}");
        assert!((rep.relative_residual - residual(&a, N, EPS, &b, &x)).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        let a = spd();
        let mut count = 0;
        let mut x = vec![0.0; N];
        let mut b = rhs();
        assert_eq!(
            dense_solve(matvec(&a, N, &mut count), f64::NAN, &b, &mut x),
            Err(BaselineError::NonFiniteEps)
        );
        assert_eq!(
            cg(matvec(&a, N, &mut count), EPS, &b[..N - 1], &mut x, 1e-10, 10),
            Err(BaselineError::LengthMismatch { expected: N - 1, found: N })
        );
        b[3] = f64::INFINITY;
        assert_eq!(
            minres(matvec(&a, N, &mut count), EPS, &b, &mut x, 1e-10, 10),
            Err(BaselineError::NonFiniteRhs { index: 3 })
        );
        let b = rhs();
        let nan_op = |_: &[f64], out: &mut [f64]| out.fill(f64::NAN);
        assert_eq!(cg(nan_op, EPS, &b, &mut x, 1e-10, 10), Err(BaselineError::NonFiniteProduct { index: 0 }));
        // Exactly singular: A = -eps I.
        let sing = |v: &[f64], out: &mut [f64]| {
            for (o, vi) in out.iter_mut().zip(v) {
                *o = -EPS * vi;
            }
        };
        assert_eq!(dense_solve(sing, EPS, &b, &mut x), Err(BaselineError::Singular));
    }
}
