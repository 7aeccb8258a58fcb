//! What every curvature storage offers, whatever its form: factor at an eps, then solve with
//! the factorisation. The optimizers are written against these traits, so they work with the
//! exact Hessian's storage ([`Curvature`](crate::curvature::Curvature)) and both
//! Gauss-Newton forms (the same storage filled with the Gauss-Newton blocks, or
//! [`Woodbury`](crate::woodbury::Woodbury)).
//!
//! The factorisation is a handle that borrows the storage: while it lives, the storage
//! cannot be refilled or factored again (the borrow checker says so), so a solve always
//! uses a complete, current factorisation, at the eps the handle reports.

use crate::error::SolveError;
use crate::linalg::ldlt::Inertia;
use crate::real::Real;
use crate::refine::Refinement;

/// A curvature storage that factors `A + eps I` into a [`Factorization`].
pub trait Factorable {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// A flat parameter-sized vector (`[T; N_PARAMS]`).
    type Vector;
    /// The factorisation handle, borrowing the storage.
    type Factored<'a>: Factorization<Scalar = Self::Scalar, Vector = Self::Vector>
    where
        Self: 'a;

    /// Factors `A + eps I`. Errors: [`SolveError::NoCurvature`] when the storage was never
    /// filled or its last fill failed, [`SolveError::NonFiniteEps`], and
    /// [`SolveError::Singular`] when the matrix is singular or numerically singular at this
    /// eps.
    fn factor(&mut self, eps: Self::Scalar) -> Result<Self::Factored<'_>, SolveError>;

    /// The fingerprint of the parameters the storage was filled at (`None` when it holds no
    /// curvature); compare with the network's `fingerprint()` to detect a stale storage.
    fn fingerprint(&self) -> Option<u64>;

    /// Factors `A + eps D^2` with `D = diag(scale)` (every entry positive and finite). Only
    /// the Woodbury Gauss-Newton form takes a diagonal scaling (exactly, at the cost of the
    /// unscaled one); the block forms (the Hessian's and the Riccati Gauss-Newton storage)
    /// cannot, and return [`SolveError::Config`] naming `scaling`.
    fn factor_scaled<'a>(
        &'a mut self,
        eps: Self::Scalar,
        scale: &'a Self::Vector,
    ) -> Result<Self::Factored<'a>, SolveError> {
        let _ = (eps, scale);
        Err(SolveError::Config(scaling_unsupported()))
    }

    /// The diagonal of `A` into `out` (the Woodbury Gauss-Newton form: the squared column
    /// norms of the Jacobian `C'J`); [`SolveError::Config`] naming `scaling` for the block
    /// forms, which do not offer it.
    fn diag_into(&mut self, out: &mut Self::Vector) -> Result<(), SolveError> {
        let _ = out;
        Err(SolveError::Config(scaling_unsupported()))
    }
}

/// The error of a diagonal scaling asked of a block (Riccati or Hessian) storage.
pub(crate) fn scaling_unsupported() -> crate::error::ConfigError {
    crate::error::ConfigError {
        field: "scaling",
        value: 1.0,
        requirement: "the identity for this storage: a diagonal scaling needs the Woodbury Gauss-Newton form (GgnMethod::Woodbury), the Riccati and Hessian block forms cannot take one",
    }
}

/// A storage whose matrix can also be applied without a factorisation: `(A + shift I) v`
/// from the stored blocks.
pub trait Product: Factorable {
    /// `out = (A + shift I) v`. Errors: [`SolveError::NoCurvature`], a non-finite `v`
    /// ([`SolveError::Net`]), [`SolveError::NonFiniteResult`].
    fn product(
        &mut self,
        shift: Self::Scalar,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), SolveError>;
}

/// A factored `A + eps I`.
pub trait Factorization {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// A flat parameter-sized vector.
    type Vector;

    /// The eps this factorisation is of.
    fn eps(&self) -> Self::Scalar;
    /// How many eigenvalues of `A + eps I` are negative, zero and positive.
    fn inertia(&self) -> Inertia;
    /// `x = (A + eps I)^{-1} b` (no refinement; errors on a non-finite `b` or result).
    fn solve(&mut self, b: &Self::Vector, x: &mut Self::Vector) -> Result<(), SolveError>;
    /// The solve followed by at most `max_steps` steps of iterative refinement with the
    /// exact product ([`crate::refine`]): returns the relative residual of the returned `x`
    /// and a bound on its normwise backward error, or [`SolveError::Inaccurate`] when the
    /// residual is above `sqrt(EPSILON)` and the backward error above `N EPSILON`.
    fn solve_refined(
        &mut self,
        b: &Self::Vector,
        x: &mut Self::Vector,
        max_steps: usize,
    ) -> Result<Refinement<Self::Scalar>, SolveError>;
    /// `out = (A + eps I) v` with the exact product.
    fn apply(&mut self, v: &Self::Vector, out: &mut Self::Vector) -> Result<(), SolveError>;
    /// `x = (A + eps D^2)^{-1} g` for `g` the gradient the storage was filled with, by a
    /// route that knows `g` (the Woodbury Gauss-Newton form: `g = U w`, solved without
    /// dividing by eps), with the quadratic model's terms. `Ok(None)` when the storage has
    /// no such route or `g` is not its gradient (the default): solve with
    /// [`Self::solve_refined`] instead.
    fn solve_gradient(
        &mut self,
        g: &Self::Vector,
        x: &mut Self::Vector,
    ) -> Result<Option<GradientSolve<Self::Scalar>>, SolveError> {
        let _ = (g, x);
        Ok(None)
    }
    /// Geodesic acceleration's solve (Transtrum and Sethna 2012): `x = (A + eps D^2)^{-1} J'Hl
    /// u''` for the Gauss-Newton matrix `A = J'Hl J`, with the outputs' second directional
    /// derivative along `v` by the finite difference `u'' = (2/h) (du/h - J v)`, `du =
    /// u(p + h v) - u(p)` the change of the outputs (`O * B` scalars, sample after sample)
    /// and `J v` from the storage's own record. The acceleration is `-x`. `Ok(false)` (and
    /// `x` untouched) when the storage has no such route (the default; the Woodbury form
    /// has one, which does not divide by eps).
    fn solve_geodesic(
        &mut self,
        v: &Self::Vector,
        du: &[Self::Scalar],
        h: Self::Scalar,
        x: &mut Self::Vector,
    ) -> Result<bool, SolveError> {
        let _ = (v, du, h, x);
        Ok(false)
    }
}

/// What [`Factorization::solve_gradient`] measured of its solution `x = (A + eps D^2)^{-1}
/// g` in the storage's small space (`D = I` for an unscaled factorisation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientSolve<T> {
    /// `x'A x` (the quadratic model's curvature term).
    pub curvature: T,
    /// `|D x|^2`.
    pub metric: T,
    /// `(D^2 x)'(A + eps D^2)^{-1}(D^2 x)`: minus half the derivative of `|D x|^2` with
    /// respect to eps (what a secular-equation iteration on `|D x|` needs).
    pub secular: T,
    /// The normwise backward error of the small system solved, `|w - A z| / (|A| |z| +
    /// |w|)`.
    pub residual: T,
}
