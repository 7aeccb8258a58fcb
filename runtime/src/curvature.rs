//! The curvature storage of the exact Hessian (and of the Riccati form of Gauss-Newton): every
//! per-stage derivative block at one batch, the factorisation at one eps, and the handle
//! that solves with it (docs/math.md sections 3 to 5).
//!
//! A network's `curvature_into` fills a [`Curvature`] (nothing in it depends on eps);
//! [`Curvature::factor`] runs the eps-dependent sweep and returns a [`Factored`] handle that
//! borrows the storage: solve with it for any number of right-hand sides, then factor again
//! at another eps, reusing the blocks. The storage is a snapshot of the problem it was
//! filled with (the stages keep copies of the weights), so a solve never mixes two
//! problems; it also records the fingerprint of the parameters it was filled at.

use crate::chain::{ConstZero, StageStack};
use crate::error::{ConfigError, SolveError};
use crate::layer::check_vector;
use crate::linalg::ldlt::Inertia;
use crate::real::{all_finite, Real};
use crate::refine::{refine, Refinable, Refinement};
use crate::solver::{Factorable, Factorization, Product};
use crate::stage::selinv::LogDet;
use crate::stage::StageView;

/// What a curvature storage holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// Nothing usable: never filled, or the last fill failed.
    Empty,
    /// The exact Hessian's blocks (`curvature_into`).
    Hessian,
    /// The Gauss-Newton blocks (`ggn_curvature_into`): `G + eps I` is positive definite for
    /// eps > 0.
    GaussNewton,
}

/// Per-stage derivative blocks of a network's loss at one batch, storage for their
/// factorisation, and the refinement vectors: `S` is the list of the network's stages, `N`
/// its number of parameters. Generated code names it through a type alias
/// (`<Net>Curvature`); its size is [`Self::BYTES`].
#[repr(C)]
pub struct Curvature<S: StageStack, const N: usize> {
    pub(crate) stages: S,
    scratch: S::Scratch,
    residual: [S::Scalar; N],
    correction: [S::Scalar; N],
    fingerprint: u64,
    /// 0 = empty, 1 = Hessian, 2 = Gauss-Newton.
    contents: u8,
}

// SAFETY: every field is `Zeroable` (the stage list and its scratch by `StageStack`'s bound,
// arrays of scalars, integers); all-zero bytes are the empty storage.
unsafe impl<S: StageStack, const N: usize> bytemuck::Zeroable for Curvature<S, N> {}

impl<S: StageStack, const N: usize> Clone for Curvature<S, N> {
    fn clone(&self) -> Self {
        Curvature {
            stages: self.stages,
            scratch: self.scratch,
            residual: self.residual,
            correction: self.correction,
            fingerprint: self.fingerprint,
            contents: self.contents,
        }
    }
}

impl<S: StageStack, const N: usize> core::fmt::Debug for Curvature<S, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Curvature")
            .field("contents", &self.contents())
            .field("stages", &S::DEPTH)
            .field("params", &N)
            .field("bytes", &Self::BYTES)
            .finish()
    }
}

impl<S: StageStack, const N: usize> Curvature<S, N> {
    /// Empty storage; usable in `const` and `static` items (or on the heap without a stack
    /// copy: `tall_skinny::boxed_zeroed`).
    pub const ZERO: Self = {
        assert!(
            S::N_PARAMS == N,
            "the stage list and the parameter count disagree"
        );
        Curvature {
            stages: S::ZERO,
            scratch: <S::Scratch as ConstZero>::ZERO,
            residual: [<S::Scalar as Real>::ZERO; N],
            correction: [<S::Scalar as Real>::ZERO; N],
            fingerprint: 0,
            contents: 0,
        }
    };

    /// Size of this storage in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// What the storage holds.
    pub fn contents(&self) -> Contents {
        match self.contents {
            1 => Contents::Hessian,
            2 => Contents::GaussNewton,
            _ => Contents::Empty,
        }
    }

    /// Whether the storage holds a complete curvature.
    pub fn is_filled(&self) -> bool {
        self.contents() != Contents::Empty
    }

    /// Marks the storage empty and hands out the stages for a fill (generated code's
    /// `curvature_into`).
    pub(crate) fn begin_fill(&mut self) -> &mut S {
        self.contents = 0;
        &mut self.stages
    }

    /// Marks a completed fill.
    pub(crate) fn finish_fill(&mut self, contents: Contents, fingerprint: u64) {
        self.fingerprint = fingerprint;
        self.contents = match contents {
            Contents::Empty => 0,
            Contents::Hessian => 1,
            Contents::GaussNewton => 2,
        };
    }

    /// Factors `A + eps I` (`A` the Hessian or the Gauss-Newton matrix the storage was
    /// filled with): the eps-dependent sweep, reusing every derivative block. Fails with
    /// [`SolveError::NoCurvature`] when the storage was never filled or its last fill failed,
    /// [`SolveError::NonFiniteEps`] for a NaN or infinite eps, and
    /// [`SolveError::Singular`] when a stage matrix is singular or numerically singular at
    /// this eps (a failed factorisation leaves the blocks intact: factor again at another
    /// eps). The handle solves for any number of right-hand sides.
    pub fn factor(&mut self, eps: S::Scalar) -> Result<Factored<'_, S, N>, SolveError> {
        if !self.is_filled() {
            return Err(SolveError::NoCurvature);
        }
        if !eps.finite() {
            return Err(SolveError::NonFiniteEps);
        }
        let inertia = self
            .stages
            .factor(eps)
            .map_err(|stage| SolveError::Singular { stage })?;
        Ok(Factored {
            stages: &self.stages,
            scratch: &mut self.scratch,
            residual: &mut self.residual,
            correction: &mut self.correction,
            eps,
            inertia,
        })
    }

    /// `out = (A + shift I) v` from the stored blocks, without a factorisation (an exact
    /// Hessian-vector product that needs no network).
    pub fn product(
        &mut self,
        shift: S::Scalar,
        v: &[S::Scalar; N],
        out: &mut [S::Scalar; N],
    ) -> Result<(), SolveError> {
        if !self.is_filled() {
            return Err(SolveError::NoCurvature);
        }
        if !shift.finite() {
            return Err(SolveError::NonFiniteEps);
        }
        check_vector(v)?;
        self.stages.apply(&mut self.scratch, v, out, shift);
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// Calls `f` on every stage in order, as a dense view of its derivative blocks (for
    /// baselines and tests; the solve never forms them). Nothing is called on an empty
    /// storage. Not public API: the view writes into caller slices of the right lengths.
    #[doc(hidden)]
    pub fn for_each_stage(&self, f: &mut dyn FnMut(&dyn StageView<S::Scalar>)) {
        if self.is_filled() {
            self.stages.for_each_stage(f);
        }
    }

    /// The fingerprint of the parameters the storage was filled at, if it holds a curvature.
    pub fn fingerprint(&self) -> Option<u64> {
        self.is_filled().then_some(self.fingerprint)
    }
}

/// A factored `A + eps I`, borrowed from its [`Curvature`]: the factors are only read; the
/// handle owns the storage's solve scratch while it lives.
pub struct Factored<'a, S: StageStack, const N: usize> {
    stages: &'a S,
    scratch: &'a mut S::Scratch,
    residual: &'a mut [S::Scalar; N],
    correction: &'a mut [S::Scalar; N],
    eps: S::Scalar,
    inertia: Inertia,
}

impl<S: StageStack, const N: usize> core::fmt::Debug for Factored<'_, S, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Factored")
            .field("eps", &self.eps)
            .field("inertia", &self.inertia)
            .finish()
    }
}

/// The plain solve and the exact product of a factorisation, for [`refine`].
struct Op<'a, S: StageStack> {
    stages: &'a S,
    scratch: &'a mut S::Scratch,
    eps: S::Scalar,
}

impl<S: StageStack> Refinable<S::Scalar> for Op<'_, S> {
    fn product(&mut self, v: &[S::Scalar], out: &mut [S::Scalar]) {
        self.stages.apply(self.scratch, v, out, self.eps);
    }
    fn approx_solve(&mut self, b: &[S::Scalar], x: &mut [S::Scalar]) {
        self.stages.solve(self.scratch, b, x, self.eps);
    }
}

impl<S: StageStack, const N: usize> Factored<'_, S, N> {
    /// Solves `(A + eps I) x = b`: two sweeps over the stages, linear in depth. Call it as
    /// often as needed. For the last digits at small eps use [`Self::solve_refined`].
    pub fn solve(&mut self, b: &[S::Scalar; N], x: &mut [S::Scalar; N]) -> Result<(), SolveError> {
        check_vector(b)?;
        self.stages.solve(self.scratch, b, x, self.eps);
        if !all_finite(x) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// [`Self::solve`] followed by at most `max_steps` steps of iterative refinement with
    /// the exact product `(A + eps I) x` from the stored blocks (see [`crate::refine`]: it
    /// keeps only steps that lower the residual, and stops at a relative residual of at most
    /// `2 EPSILON` or when a step gains less than a factor of two). Returns the relative residual
    /// `|(A + eps I) x - b| / |b|` of the returned `x` and a bound on its backward error;
    /// [`SolveError::Inaccurate`] when the residual is above `sqrt(EPSILON)` and the
    /// backward error above `N EPSILON` (see [`crate::refine`]).
    pub fn solve_refined(
        &mut self,
        b: &[S::Scalar; N],
        x: &mut [S::Scalar; N],
        max_steps: usize,
    ) -> Result<Refinement<S::Scalar>, SolveError> {
        self.solve(b, x)?;
        let mut op = Op {
            stages: self.stages,
            scratch: self.scratch,
            eps: self.eps,
        };
        refine(&mut op, b, x, self.residual, self.correction, max_steps)
    }

    /// `out = (A + eps I) v` from the stored blocks: an exact Hessian-vector product without
    /// the network (for residual checks).
    pub fn apply(
        &mut self,
        v: &[S::Scalar; N],
        out: &mut [S::Scalar; N],
    ) -> Result<(), SolveError> {
        check_vector(v)?;
        self.stages.apply(self.scratch, v, out, self.eps);
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// How many eigenvalues of `A + eps I` are negative, zero and positive (Sylvester's law
    /// of inertia on the stage factorisations).
    pub fn inertia(&self) -> Inertia {
        self.inertia
    }

    /// The eps of this factorisation.
    pub fn eps(&self) -> S::Scalar {
        self.eps
    }

    /// `log|det(A + eps I)|` and its sign, from the stage pivots already computed (no extra
    /// sweep; docs/math.md section 8). The sign is `(-1)^negative` of [`Self::inertia`].
    /// [`SolveError::NonFiniteResult`] if the sum overflows.
    pub fn log_det(&self) -> Result<LogDet<S::Scalar>, SolveError> {
        let ld = self.stages.log_det(self.eps);
        if !ld.log_abs.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        debug_assert_eq!(
            ld.sign,
            if self.inertia.negative % 2 == 1 {
                -1
            } else {
                1
            }
        );
        Ok(ld)
    }

    /// The diagonal of `(A + eps I)^{-1}` into `out`: one forward recursion over the stored
    /// factors (selected inversion, docs/math.md section 8), linear in depth, no allocation.
    pub fn diag_inv(&self, out: &mut [S::Scalar; N]) -> Result<(), SolveError> {
        self.stages.selinv(self.eps, out, None);
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// `trace (A + eps I)^{-1}` (the sum of [`Self::diag_inv`]; uses the handle's own
    /// storage).
    pub fn trace_inv(&mut self) -> Result<S::Scalar, SolveError> {
        self.stages.selinv(self.eps, self.residual, None);
        if !all_finite(self.residual) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(self
            .residual
            .iter()
            .fold(<S::Scalar as Real>::ZERO, |a, v| a + *v))
    }

    /// Number of parameters of stage `stage` (0 = first layer), or `None` past the last.
    pub fn stage_params(&self, stage: usize) -> Option<usize> {
        let (mut i, mut found) = (0, None);
        self.stages.for_each_stage(&mut |v| {
            if i == stage {
                found = Some(v.param_len());
            }
            i += 1;
        });
        found
    }

    /// The diagonal block of `(A + eps I)^{-1}` belonging to stage `stage`'s parameters
    /// (`p x p`, `p` = [`Self::stage_params`], column-major, in the flat parameter order)
    /// into `out[..p * p]`, and the diagonal into `diag` on the way (the same recursion).
    /// Returns `p`. A stage past the last or an `out` shorter than `p * p` is a
    /// [`SolveError::Config`] error.
    pub fn diag_block(
        &self,
        stage: usize,
        diag: &mut [S::Scalar; N],
        out: &mut [S::Scalar],
    ) -> Result<usize, SolveError> {
        let Some(p) = self.stage_params(stage) else {
            return Err(SolveError::Config(ConfigError {
                field: "stage",
                value: stage as f64,
                requirement: "below the number of stages",
            }));
        };
        if out.len() < p * p {
            return Err(SolveError::Config(ConfigError {
                field: "out.len()",
                value: out.len() as f64,
                requirement: "at least the square of the stage's parameter count",
            }));
        }
        self.stages
            .selinv(self.eps, diag, Some((stage, &mut out[..p * p])));
        if !all_finite(diag) || !all_finite(&out[..p * p]) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(p)
    }
}

impl<S: StageStack, const N: usize> Factorable for Curvature<S, N> {
    type Scalar = S::Scalar;
    type Vector = [S::Scalar; N];
    type Factored<'a>
        = Factored<'a, S, N>
    where
        Self: 'a;

    fn factor(&mut self, eps: S::Scalar) -> Result<Factored<'_, S, N>, SolveError> {
        Curvature::factor(self, eps)
    }
    fn fingerprint(&self) -> Option<u64> {
        Curvature::fingerprint(self)
    }
}

impl<S: StageStack, const N: usize> Product for Curvature<S, N> {
    fn product(
        &mut self,
        shift: S::Scalar,
        v: &[S::Scalar; N],
        out: &mut [S::Scalar; N],
    ) -> Result<(), SolveError> {
        Curvature::product(self, shift, v, out)
    }
}

impl<S: StageStack, const N: usize> Factorization for Factored<'_, S, N> {
    type Scalar = S::Scalar;
    type Vector = [S::Scalar; N];

    fn eps(&self) -> S::Scalar {
        self.eps
    }
    fn inertia(&self) -> Inertia {
        self.inertia
    }
    fn solve(&mut self, b: &[S::Scalar; N], x: &mut [S::Scalar; N]) -> Result<(), SolveError> {
        Factored::solve(self, b, x)
    }
    fn solve_refined(
        &mut self,
        b: &[S::Scalar; N],
        x: &mut [S::Scalar; N],
        max_steps: usize,
    ) -> Result<Refinement<S::Scalar>, SolveError> {
        Factored::solve_refined(self, b, x, max_steps)
    }
    fn apply(&mut self, v: &[S::Scalar; N], out: &mut [S::Scalar; N]) -> Result<(), SolveError> {
        Factored::apply(self, v, out)
    }
}

impl<S: StageStack, const N: usize> ConstZero for Curvature<S, N> {
    const ZERO: Self = Curvature::ZERO;
}
