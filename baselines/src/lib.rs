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
//! * [`paper_solve`]: the paper's own method (Rahimi, arXiv 2601.06096; docs/math.md section 3,
//!   "The paper's form"): not from products but from the per-stage derivative blocks
//!   ([`PaperBlocks`]), the unknowns interleaved stage by stage into a block-tridiagonal
//!   system solved by block LU with a partially pivoted dense LU per stage,
//!   O(L (p + 2a)^3).
//!
//! * [`minpack::lmder`]: MINPACK's `lmder` (the `levenberg-marquardt` crate's port) for a
//!   nonlinear least-squares problem with its Jacobian, the baseline of
//!   `examples/fit_regression`.
//!
//! A crate of its own, not published: nothing here is used by generated code.

use std::vec;
use std::vec::Vec;

pub mod minpack;

use nalgebra::{DMatrix, DVector};
use tall_skinny_runtime::__private::StageView;
use tall_skinny_runtime::Real;

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
    /// [`PaperBlocks`] without any stage.
    NoStages,
    /// A derivative block of stage `stage` has the wrong shape, or the stage's input does
    /// not chain to the previous stage's output. `stage` = the number of stages: the loss
    /// Hessian.
    BlockShape { stage: usize },
    /// A derivative block of stage `stage` has a NaN or infinite entry (`stage` = the number
    /// of stages: the loss Hessian).
    NonFiniteBlock { stage: usize },
    /// [`paper_solve`]: the pivoted LU of the stage's Schur complement met an exactly zero
    /// pivot (the trailing principal block of `H + eps I` from this stage on is singular).
    SingularStage { stage: usize },
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
            BaselineError::NoStages => f.write_str("no stages"),
            BaselineError::BlockShape { stage } => {
                write!(f, "a derivative block of stage {stage} has the wrong shape")
            }
            BaselineError::NonFiniteBlock { stage } => {
                write!(f, "a derivative block of stage {stage} is not finite")
            }
            BaselineError::SingularStage { stage } => {
                write!(f, "the block LU pivot of stage {stage} is singular")
            }
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
    let r: f64 = ax
        .iter()
        .zip(b)
        .map(|(a, bi)| (bi - a) * (bi - a))
        .sum::<f64>()
        .sqrt();
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
        return Ok(KrylovReport {
            outcome: Outcome::Converged,
            iterations: 0,
            relative_residual: 0.0,
        });
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
    Ok(KrylovReport {
        outcome,
        iterations: it,
        relative_residual,
    })
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
        return Ok(KrylovReport {
            outcome: Outcome::Converged,
            iterations: 0,
            relative_residual: 0.0,
        });
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
    Ok(KrylovReport {
        outcome,
        iterations: it,
        relative_residual,
    })
}

// ---------------------------------------------------------------------------------------
// The paper's form: interleaved block-tridiagonal system, block LU

/// The dense derivative blocks of one stage (docs/math.md section 1), column-major nalgebra
/// matrices: activations sample-major, parameters in the flat layout.
#[derive(Clone, Debug)]
pub struct StageBlocks {
    a: DMatrix<f64>,
    b: DMatrix<f64>,
    hxx: DMatrix<f64>,
    hxz: DMatrix<f64>,
    hzz: DMatrix<f64>,
}

impl StageBlocks {
    /// `A` (out x in), `B` (out x p), `Hxx` (p x p), `Hxz` (p x in), `Hzz` (in x in). Shapes
    /// are checked by [`PaperBlocks::new`].
    pub fn new(
        a: DMatrix<f64>,
        b: DMatrix<f64>,
        hxx: DMatrix<f64>,
        hxz: DMatrix<f64>,
        hzz: DMatrix<f64>,
    ) -> Self {
        StageBlocks {
            a,
            b,
            hxx,
            hxz,
            hzz,
        }
    }
    /// Rows of the stage input (`a_{l-1}`).
    pub fn input_len(&self) -> usize {
        self.a.ncols()
    }
    /// Rows of the stage output (`a_l`).
    pub fn output_len(&self) -> usize {
        self.a.nrows()
    }
    /// Parameters of the stage (`p_l`).
    pub fn param_len(&self) -> usize {
        self.b.ncols()
    }
    /// `A = df/dz_{l-1}` (out x in).
    pub fn a(&self) -> &DMatrix<f64> {
        &self.a
    }
    /// `B = df/dx_l` (out x p).
    pub fn b(&self) -> &DMatrix<f64> {
        &self.b
    }
    /// `Hxx` (p x p).
    pub fn hxx(&self) -> &DMatrix<f64> {
        &self.hxx
    }
    /// `Hxz` (p x in).
    pub fn hxz(&self) -> &DMatrix<f64> {
        &self.hxz
    }
    /// `Hzz` (in x in).
    pub fn hzz(&self) -> &DMatrix<f64> {
        &self.hzz
    }

    fn shapes_ok(&self) -> bool {
        let (i, o, p) = (self.input_len(), self.output_len(), self.param_len());
        self.b.nrows() == o
            && self.hxx.shape() == (p, p)
            && self.hxz.shape() == (p, i)
            && self.hzz.shape() == (i, i)
    }

    fn finite(&self) -> bool {
        [&self.a, &self.b, &self.hxx, &self.hxz, &self.hzz]
            .iter()
            .all(|m| m.iter().all(|v| v.is_finite()))
    }
}

/// Every stage's dense derivative blocks plus the loss Hessian `Hl` (the terminal condition
/// `r_L = Hl y_L`): the input of [`paper_solve`]. Dense, so only for modest widths.
#[derive(Clone, Debug)]
pub struct PaperBlocks {
    stages: Vec<StageBlocks>,
    hl: DMatrix<f64>,
}

impl PaperBlocks {
    /// Checks shapes (each stage's input chains to the previous output, `Hl` is
    /// `a_L x a_L`) and finiteness. Error indices are 0-based stages; index `stages.len()`
    /// is the loss Hessian.
    pub fn new(stages: Vec<StageBlocks>, hl: DMatrix<f64>) -> Result<Self, BaselineError> {
        if stages.is_empty() {
            return Err(BaselineError::NoStages);
        }
        for (l, st) in stages.iter().enumerate() {
            if !st.shapes_ok() || (l > 0 && st.input_len() != stages[l - 1].output_len()) {
                return Err(BaselineError::BlockShape { stage: l });
            }
            if !st.finite() {
                return Err(BaselineError::NonFiniteBlock { stage: l });
            }
        }
        let (ns, out) = (stages.len(), stages[stages.len() - 1].output_len());
        if hl.shape() != (out, out) {
            return Err(BaselineError::BlockShape { stage: ns });
        }
        if hl.iter().any(|v| !v.is_finite()) {
            return Err(BaselineError::NonFiniteBlock { stage: ns });
        }
        Ok(PaperBlocks { stages, hl })
    }

    /// Copies the dense blocks out of a visitor over [`StageView`]s, in stage order (an `f32`
    /// net's blocks are widened to `f64`); the last stage's `output_hessian` is the loss
    /// Hessian. With generated code:
    ///
    /// ```ignore
    /// let curv = net.curvature(&x, &t)?;
    /// let blocks = PaperBlocks::collect(|f| curv.stages.for_each_stage(f))?;
    /// ```
    pub fn collect<T, F>(visit: F) -> Result<Self, BaselineError>
    where
        T: Real,
        F: FnOnce(&mut dyn FnMut(&dyn StageView<T>)),
    {
        let mut stages = Vec::new();
        let mut hl = DMatrix::<f64>::zeros(0, 0);
        visit(&mut |s: &dyn StageView<T>| {
            let (i, o, p) = (s.input_len(), s.output_len(), s.param_len());
            let mut a = DMatrix::<T>::zeros(o, i);
            let mut b = DMatrix::<T>::zeros(o, p);
            let mut hxx = DMatrix::<T>::zeros(p, p);
            let mut hxz = DMatrix::<T>::zeros(p, i);
            let mut hzz = DMatrix::<T>::zeros(i, i);
            s.dense_blocks(
                a.as_mut_slice(),
                b.as_mut_slice(),
                hxx.as_mut_slice(),
                hxz.as_mut_slice(),
                hzz.as_mut_slice(),
            );
            // Only the last stage's is kept: the loss Hessian.
            let mut h = DMatrix::<T>::zeros(o, o);
            s.output_hessian(h.as_mut_slice());
            let wide = |m: DMatrix<T>| m.map(|v| v.to_f64());
            hl = wide(h);
            stages.push(StageBlocks {
                a: wide(a),
                b: wide(b),
                hxx: wide(hxx),
                hxz: wide(hxz),
                hzz: wide(hzz),
            });
        });
        Self::new(stages, hl)
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[StageBlocks] {
        &self.stages
    }

    /// The loss Hessian `Hl` (`a_L x a_L`).
    pub fn hl(&self) -> &DMatrix<f64> {
        &self.hl
    }

    /// Total number of parameters.
    pub fn n_params(&self) -> usize {
        self.stages.iter().map(StageBlocks::param_len).sum()
    }

    /// The dense `N x N` Hessian through the quadratic-form identity (docs/math.md section 3),
    /// with `Y_l = dy_l/dv = A_l Y_{l-1} + B_l E_l` (`E_l` selects stage `l`'s parameters):
    ///
    /// `H = sum_l [E_l'Hxx_l E_l + E_l'Hxz_l Y_{l-1} + Y_{l-1}'Hxz_l'E_l + Y_{l-1}'Hzz_l Y_{l-1}]
    ///      + Y_L'Hl Y_L`.
    ///
    /// O(L a N^2) work and O(a N + N^2) memory: for tests on small nets.
    pub fn dense_hessian(&self) -> DMatrix<f64> {
        let n = self.n_params();
        let mut h = DMatrix::<f64>::zeros(n, n);
        let mut y = DMatrix::<f64>::zeros(self.stages[0].input_len(), n);
        let mut off = 0;
        for st in &self.stages {
            let p = st.param_len();
            let mut hv = h.view_mut((off, off), (p, p));
            hv += &st.hxx;
            let c = &st.hxz * &y; // p x n
            let mut rows = h.rows_mut(off, p);
            rows += &c;
            let mut cols = h.columns_mut(off, p);
            cols += c.transpose();
            h += y.transpose() * (&st.hzz * &y);
            let mut ynew = &st.a * &y;
            let mut yc = ynew.columns_mut(off, p);
            yc += &st.b;
            y = ynew;
            off += p;
        }
        h += y.transpose() * (&self.hl * &y);
        h
    }
}

/// `x = (H + eps I)^{-1} g` by the paper's method (docs/math.md section 3, "The paper's form").
///
/// Unknowns per stage `l` (0-based here, `L` stages): `u_l = [x_l; y_l; r_l]`, the parameter
/// step, the forward tangent `y_l = A_l y_{l-1} + B_l x_l` (`y_{-1} = 0`) and the backward
/// adjoint. Block row `l` holds stage `l`'s gradient equation, its forward equation, and the
/// backward equation that defines `r_l`:
///
/// ```text
/// (Hxx_l + eps I) x_l + B_l' r_l + Hxz_l y_{l-1}                  = g_l
/// -B_l x_l + y_l - A_l y_{l-1}                                    = 0
/// Hzz_{l+1} y_l - r_l + Hxz_{l+1}' x_{l+1} + A_{l+1}' r_{l+1}     = 0   (l < L-1)
/// Hl y_L - r_L                                                    = 0   (l = L-1)
/// ```
///
/// so `K u = [g; 0; 0]` is block tridiagonal with diagonal blocks of size `p_l + 2 a_l`: the
/// sub-diagonal block of row `l` is nonzero only in the `y_{l-1}` columns (`[Hxz_l; -A_l; 0]`),
/// the super-diagonal one only in the `r_l` rows (`[Hxz_{l+1}', 0, A_{l+1}']`); both are
/// stored and multiplied as those panels.
///
/// Block LU, eliminating from the last stage to the first: `T_{L-1} = D_{L-1}` and
/// `T_l = D_l - U_l T_{l+1}^{-1} L_{l+1}`, each `T_l` factored by dense LU with partial
/// pivoting (nalgebra), then `u_0 = T_0^{-1} c_0` and `u_l = T_l^{-1} (c_l - L_l u_{l-1})`.
/// O(L (p + 2a)^3) work, O(L (p + 2a) a) memory. The order matters for which pivots can
/// be singular: last-first, `T_l` is singular exactly when the trailing principal block of
/// `H + eps I` (parameters of stages `l..L`) is (the same condition as the Riccati sweep,
/// so never when `H + eps I` is definite); first-first, the pivots are truncated problems
/// with terminal curvature `Hzz_{l+1}` instead of the tail's, which `H + eps I` does not
/// control.
///
/// Errors: wrong `g` length, non-finite `eps` or `g`, an exactly zero LU pivot
/// ([`BaselineError::SingularStage`]), or a non-finite result.
pub fn paper_solve(blocks: &PaperBlocks, eps: f64, g: &[f64]) -> Result<Vec<f64>, BaselineError> {
    let n = blocks.n_params();
    check_len(n, g.len())?;
    if !eps.is_finite() {
        return Err(BaselineError::NonFiniteEps);
    }
    if let Some(index) = g.iter().position(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteRhs { index });
    }
    let st = &blocks.stages;
    let ns = st.len();
    let mut offsets = Vec::with_capacity(ns);
    let mut off = 0;
    for s in st {
        offsets.push(off);
        off += s.param_len();
    }
    // Per stage: X_l = T_l^{-1} P_l (P_l the sub-diagonal panel; none for l = 0) and
    // w_l = T_l^{-1} c_l, so that u_l = w_l - X_l y_{l-1}.
    let mut xs: Vec<Option<DMatrix<f64>>> = vec![None; ns];
    let mut ws: Vec<DVector<f64>> = vec![DVector::zeros(0); ns];
    for l in (0..ns).rev() {
        let s = &st[l];
        let (p, a) = (s.param_len(), s.output_len());
        let nb = p + 2 * a;
        let (xr, yr, rr) = (0, p, p + a);
        let mut t = DMatrix::<f64>::zeros(nb, nb);
        let mut txx = t.view_mut((xr, xr), (p, p));
        txx += &s.hxx;
        for i in 0..p {
            t[(xr + i, xr + i)] += eps;
        }
        t.view_mut((xr, rr), (p, a)).tr_copy_from(&s.b);
        t.view_mut((yr, xr), (a, p)).copy_from(&(-&s.b));
        for i in 0..a {
            t[(yr + i, yr + i)] = 1.0;
            t[(rr + i, rr + i)] = -1.0;
        }
        let mut c = DVector::<f64>::zeros(nb);
        c.rows_mut(xr, p)
            .copy_from_slice(&g[offsets[l]..offsets[l] + p]);
        if l + 1 < ns {
            // Schur update of the (r_l, y_l) block and of c's r_l rows with the eliminated
            // stage l + 1: U_l T_{l+1}^{-1} L_{l+1} and U_l w_{l+1}, U_l's panel
            // Q = [Hxz_{l+1}', 0, A_{l+1}'] acting on the x and r rows of stage l + 1.
            let nx = &st[l + 1];
            let (pn, an) = (nx.param_len(), nx.output_len());
            let xn = xs[l + 1].as_ref().expect("stage l + 1 is eliminated first");
            let wn = &ws[l + 1];
            let qx = nx.hxz.tr_mul(&xn.rows(0, pn)) + nx.a.tr_mul(&xn.rows(pn + an, an));
            let qw = nx.hxz.tr_mul(&wn.rows(0, pn)) + nx.a.tr_mul(&wn.rows(pn + an, an));
            let mut try_ = t.view_mut((rr, yr), (a, a));
            try_ += &nx.hzz;
            try_ -= qx;
            let mut cr = c.rows_mut(rr, a);
            cr -= qw;
        } else {
            let mut try_ = t.view_mut((rr, yr), (a, a));
            try_ += &blocks.hl;
        }
        let lu = t.lu();
        if !lu.is_invertible() {
            return Err(BaselineError::SingularStage { stage: l });
        }
        if l > 0 {
            // P_l = [Hxz_l; -A_l; 0] (columns: y_{l-1}).
            let mut pl = DMatrix::<f64>::zeros(nb, s.input_len());
            pl.rows_mut(xr, p).copy_from(&s.hxz);
            pl.rows_mut(yr, a).copy_from(&(-&s.a));
            let x = lu
                .solve(&pl)
                .ok_or(BaselineError::SingularStage { stage: l })?;
            xs[l] = Some(x);
        }
        ws[l] = lu
            .solve(&c)
            .ok_or(BaselineError::SingularStage { stage: l })?;
    }
    let mut x = vec![0.0; n];
    let mut y_prev: Option<DVector<f64>> = None;
    for l in 0..ns {
        let (p, a) = (st[l].param_len(), st[l].output_len());
        let mut u = ws[l].clone();
        if let (Some(y), Some(xl)) = (&y_prev, &xs[l]) {
            u -= xl * y;
        }
        x[offsets[l]..offsets[l] + p].copy_from_slice(&u.as_slice()[..p]);
        y_prev = Some(u.rows(p, a).into_owned());
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(BaselineError::NonFiniteResult);
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A closure applying the dense row-major `n x n` matrix `a`, counting products.
    fn matvec<'a>(
        a: &'a [f64],
        n: usize,
        count: &'a mut usize,
    ) -> impl FnMut(&[f64], &mut [f64]) + 'a {
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
        let a =
            &q * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(d)) * q.transpose();
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
        let d: Vec<f64> = (0..N)
            .map(|i| {
                if i % 3 == 0 {
                    -0.2 - 0.4 * i as f64
                } else {
                    0.3 + 0.25 * i as f64
                }
            })
            .collect();
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
        assert_eq!(
            count,
            rep.iterations + 1,
            "iterations plus the final residual check"
        );
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
        assert!(
            rep.relative_residual > 0.5,
            "not solved: {}",
            rep.relative_residual
        );
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
        assert!(
            rep.relative_residual > 1e-6 && rep.relative_residual <= 1.0,
            "{rep:?}"
        );
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
            cg(
                matvec(&a, N, &mut count),
                EPS,
                &b[..N - 1],
                &mut x,
                1e-10,
                10
            ),
            Err(BaselineError::LengthMismatch {
                expected: N - 1,
                found: N
            })
        );
        b[3] = f64::INFINITY;
        assert_eq!(
            minres(matvec(&a, N, &mut count), EPS, &b, &mut x, 1e-10, 10),
            Err(BaselineError::NonFiniteRhs { index: 3 })
        );
        let b = rhs();
        let nan_op = |_: &[f64], out: &mut [f64]| out.fill(f64::NAN);
        assert_eq!(
            cg(nan_op, EPS, &b, &mut x, 1e-10, 10),
            Err(BaselineError::NonFiniteProduct { index: 0 })
        );
        // Exactly singular: A = -eps I.
        let sing = |v: &[f64], out: &mut [f64]| {
            for (o, vi) in out.iter_mut().zip(v) {
                *o = -EPS * vi;
            }
        };
        assert_eq!(
            dense_solve(sing, EPS, &b, &mut x),
            Err(BaselineError::Singular)
        );
    }
}

#[cfg(test)]
mod paper_tests {
    use super::*;
    use tall_skinny_runtime::SplitMix64;

    fn random(rows: usize, cols: usize, rng: &mut SplitMix64) -> DMatrix<f64> {
        DMatrix::from_fn(rows, cols, |_, _| rng.symmetric())
    }

    fn random_sym(n: usize, rng: &mut SplitMix64) -> DMatrix<f64> {
        let m = random(n, n, rng);
        (&m + m.transpose()) * 0.5
    }

    /// Stages with unequal widths and parameter counts: (input, output, params) per stage.
    fn random_blocks(dims: &[(usize, usize, usize)], seed: u64) -> PaperBlocks {
        let mut rng = SplitMix64::new(seed);
        let stages = dims
            .iter()
            .map(|&(i, o, p)| {
                StageBlocks::new(
                    random(o, i, &mut rng),
                    random(o, p, &mut rng),
                    random_sym(p, &mut rng),
                    random(p, i, &mut rng),
                    random_sym(i, &mut rng),
                )
            })
            .collect();
        let out = dims[dims.len() - 1].1;
        PaperBlocks::new(stages, random_sym(out, &mut rng)).unwrap()
    }

    /// `H v` by the Pearlmutter recursions of docs/math.md section 2 (terminal `r_L = Hl y_L`),
    /// written independently of `dense_hessian`.
    fn hvp(bl: &PaperBlocks, v: &DVector<f64>) -> DVector<f64> {
        let st = bl.stages();
        let mut ys = vec![DVector::<f64>::zeros(st[0].input_len())];
        let mut off = 0;
        for s in st {
            let vl = v.rows(off, s.param_len());
            let y = s.a() * ys.last().unwrap() + s.b() * vl;
            ys.push(y);
            off += s.param_len();
        }
        let mut out = DVector::<f64>::zeros(v.len());
        let mut r = bl.hl() * ys.last().unwrap();
        for (l, s) in st.iter().enumerate().rev() {
            off -= s.param_len();
            let vl = v.rows(off, s.param_len()).into_owned();
            let yp = &ys[l];
            let o = s.b().transpose() * &r + s.hxx() * &vl + s.hxz() * yp;
            out.rows_mut(off, s.param_len()).copy_from(&o);
            r = s.a().transpose() * &r + s.hzz() * yp + s.hxz().transpose() * &vl;
        }
        out
    }

    const DIMS: &[(usize, usize, usize)] = &[(3, 4, 5), (4, 2, 3), (2, 3, 7), (3, 3, 2)];

    #[test]
    fn dense_hessian_matches_pearlmutter_columns() {
        for seed in 0..5 {
            let bl = random_blocks(DIMS, seed);
            let n = bl.n_params();
            assert_eq!(n, 5 + 3 + 7 + 2);
            let h = bl.dense_hessian();
            for j in 0..n {
                let mut e = DVector::<f64>::zeros(n);
                e[j] = 1.0;
                let col = hvp(&bl, &e);
                let err = (h.column(j) - &col).amax();
                assert!(err <= 1e-13 * (1.0 + h.amax()), "column {j}: {err:e}");
            }
            // Symmetric blocks give a symmetric H.
            assert!((&h - h.transpose()).amax() <= 1e-13 * h.amax());
        }
    }

    #[test]
    fn paper_solve_matches_dense_on_random_blocks() {
        for seed in 0..10 {
            for dims in [
                DIMS,
                &[(2, 3, 4)][..],
                &[(4, 4, 1), (4, 4, 1), (4, 1, 9)][..],
            ] {
                let bl = random_blocks(dims, 100 + seed);
                let n = bl.n_params();
                let h = bl.dense_hessian();
                let mut rng = SplitMix64::new(seed);
                let g: Vec<f64> = (0..n).map(|_| rng.symmetric()).collect();
                for eps in [1.0, 1e-2, 0.0] {
                    let k = &h + DMatrix::<f64>::identity(n, n) * eps;
                    let xd = k
                        .clone()
                        .full_piv_lu()
                        .solve(&DVector::from_column_slice(&g))
                        .unwrap();
                    let x = DVector::from_vec(paper_solve(&bl, eps, &g).unwrap());
                    // Backward error against the explicit matrix (independent of either LU).
                    // Block LU does not pivot across stages: a nearly singular trailing block
                    // grows the error (worst here: 2.4e-14 at seed 5, eps 0; typical 3e-16).
                    let res = (&k * &x - DVector::from_column_slice(&g)).norm();
                    let berr = res / (k.norm() * x.norm());
                    assert!(
                        berr < 1e-13,
                        "seed {seed} eps {eps}: backward error {berr:e}"
                    );
                    let cond = {
                        let sv = k.clone().singular_values();
                        sv.max() / sv.min()
                    };
                    let rel = (&x - &xd).norm() / xd.norm();
                    assert!(
                        rel < 1e-13 * cond.max(1.0),
                        "seed {seed} eps {eps}: {rel:e} (cond {cond:e})"
                    );
                }
            }
        }
    }

    #[test]
    fn paper_blocks_reject_bad_shapes_and_values() {
        let mut rng = SplitMix64::new(3);
        let st = |i, o, p, rng: &mut SplitMix64| {
            StageBlocks::new(
                random(o, i, rng),
                random(o, p, rng),
                random_sym(p, rng),
                random(p, i, rng),
                random_sym(i, rng),
            )
        };
        assert_eq!(
            PaperBlocks::new(vec![], DMatrix::zeros(0, 0)).err(),
            Some(BaselineError::NoStages)
        );
        // Stage 1's input (3) does not chain to stage 0's output (4).
        let s = vec![st(2, 4, 3, &mut rng), st(3, 2, 2, &mut rng)];
        assert_eq!(
            PaperBlocks::new(s, DMatrix::zeros(2, 2)).err(),
            Some(BaselineError::BlockShape { stage: 1 })
        );
        // Hl of the wrong size: reported as stage 2 (= the number of stages).
        let s = vec![st(2, 4, 3, &mut rng), st(4, 2, 2, &mut rng)];
        assert_eq!(
            PaperBlocks::new(s.clone(), DMatrix::zeros(3, 3)).err(),
            Some(BaselineError::BlockShape { stage: 2 })
        );
        // Hxz with a wrong column count.
        let mut bad = s.clone();
        bad[0].hxz = DMatrix::zeros(3, 3);
        assert_eq!(
            PaperBlocks::new(bad, DMatrix::zeros(2, 2)).err(),
            Some(BaselineError::BlockShape { stage: 0 })
        );
        let mut bad = s.clone();
        bad[1].hzz[(1, 2)] = f64::NAN;
        assert_eq!(
            PaperBlocks::new(bad, DMatrix::zeros(2, 2)).err(),
            Some(BaselineError::NonFiniteBlock { stage: 1 })
        );
        let mut hl = DMatrix::zeros(2, 2);
        hl[(0, 1)] = f64::INFINITY;
        assert_eq!(
            PaperBlocks::new(s.clone(), hl).err(),
            Some(BaselineError::NonFiniteBlock { stage: 2 })
        );

        let bl = PaperBlocks::new(s, DMatrix::identity(2, 2)).unwrap();
        let g = vec![0.5; 5];
        assert_eq!(
            paper_solve(&bl, 1.0, &g[..4]).err(),
            Some(BaselineError::LengthMismatch {
                expected: 5,
                found: 4
            })
        );
        assert_eq!(
            paper_solve(&bl, f64::NAN, &g).err(),
            Some(BaselineError::NonFiniteEps)
        );
        let mut gn = g.clone();
        gn[4] = f64::NAN;
        assert_eq!(
            paper_solve(&bl, 1.0, &gn).err(),
            Some(BaselineError::NonFiniteRhs { index: 4 })
        );
    }

    #[test]
    fn paper_solve_reports_a_singular_stage() {
        // Last stage with no curvature and no influence (B = 0, Hxx = 0) at eps = 0: its
        // parameter rows of K are zero, so the first pivot (the last stage's) is singular.
        let mut rng = SplitMix64::new(5);
        let s0 = StageBlocks::new(
            random(3, 2, &mut rng),
            random(3, 2, &mut rng),
            random_sym(2, &mut rng),
            random(2, 2, &mut rng),
            random_sym(2, &mut rng),
        );
        let s1 = StageBlocks::new(
            random(2, 3, &mut rng),
            DMatrix::zeros(2, 4),
            DMatrix::zeros(4, 4),
            DMatrix::zeros(4, 3),
            random_sym(3, &mut rng),
        );
        let bl = PaperBlocks::new(vec![s0, s1], DMatrix::identity(2, 2)).unwrap();
        assert_eq!(
            paper_solve(&bl, 0.0, &[1.0; 6]).err(),
            Some(BaselineError::SingularStage { stage: 1 })
        );
        // Any eps != 0 makes it solvable (H's last-stage block is exactly zero).
        let x = paper_solve(&bl, 0.5, &[1.0; 6]).unwrap();
        for v in &x[2..] {
            assert!(
                (v - 2.0).abs() < 1e-14,
                "x = g / eps on the decoupled stage: {v}"
            );
        }
    }
}
