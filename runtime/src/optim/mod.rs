//! Optimizers built on the generated curvatures: Levenberg-Marquardt on Gauss-Newton, Newton
//! with adaptive damping and a trust-region Newton step (More-Sorensen) on the exact Hessian,
//! and Adam and SGD as baselines.
//!
//! All of them are `no_std` and never allocate: one call of `step` is one optimizer step on
//! one batch, so a real-time loop decides how many steps it can afford. State (the damping or
//! radius, moment estimates, work vectors) lives in the optimizer value the caller owns; the
//! net's scratch (workspaces, curvature storage) is the net's [`Model::Scratch`].
//!
//! Every net declared with `#[tall_skinny_net]` implements [`Model`], except a `pub` net
//! with a custom `#[loss]` (its loss type may be private, and the impl's `Target` names it).

mod first_order;
mod lm;
mod newton;
mod trust_region;

pub use first_order::{Adam, AdamConfig, Sgd, SgdConfig};
pub use lm::{LevenbergMarquardt, LmConfig};
pub use newton::{DampedNewton, NewtonConfig};
pub use trust_region::{Subproblem, TrustRegion, TrustRegionConfig};

use crate::error::{NetError, SolveError};
use crate::ggn::GgnMethod;
use crate::linalg::ldlt::Inertia;
use crate::real::Real;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// What the optimizers need from a network: loss, gradient, the Gauss-Newton solve and the
/// Hessian's factor/solve/inertia, all on caller-owned scratch. Implemented by the code
/// `#[tall_skinny_net]` generates (`Vector = [T; N_PARAMS]`, `Scratch = <Net>Scratch`).
///
/// The `*_prepare` methods compute a curvature at `(x, t)` into the scratch; the
/// solve/factor methods that follow use it and must see the same parameters.
pub trait Model {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// A batch of inputs.
    type Input;
    /// A batch of targets (or labels).
    type Target;
    /// A flat parameter-sized vector (`[T; N_PARAMS]`).
    type Vector: AsRef<[Self::Scalar]> + AsMut<[Self::Scalar]> + Clone;
    /// Workspaces and curvature storage.
    type Scratch;
    /// Number of parameters.
    const N_PARAMS: usize;
    /// Which Gauss-Newton solve [`Model::ggn_solve`] uses.
    const GGN_METHOD: GgnMethod;

    /// A zero vector.
    fn zero_vector() -> Self::Vector;
    /// Writes the flat parameters to `out`.
    fn get_params(&self, out: &mut Self::Vector);
    /// Sets the flat parameters (rejects non-finite ones, leaving the net unchanged).
    fn put_params(&mut self, p: &Self::Vector) -> Result<(), NetError>;
    /// The batch loss.
    fn loss_in(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
    ) -> Result<Self::Scalar, NetError>;
    /// The batch loss and its gradient.
    fn gradient_into(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
        g: &mut Self::Vector,
    ) -> Result<Self::Scalar, NetError>;
    /// The exact Hessian-vector product `H v` at `(x, t)` (one forward-tangent and one
    /// backward pass; no curvature storage).
    fn hvp_into(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), NetError>;
    /// The Gauss-Newton-vector product `G v` at `(x, t)`.
    fn ggn_vp_into(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), NetError>;
    /// Prepares the Gauss-Newton curvature `G` at `(x, t)`.
    fn ggn_prepare(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
    ) -> Result<(), NetError>;
    /// `out = (G + lambda I)^{-1} b` with the prepared curvature (refined to working accuracy).
    fn ggn_solve(
        &self,
        s: &mut Self::Scratch,
        lambda: Self::Scalar,
        b: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), SolveError>;
    /// Prepares the exact Hessian's per-stage blocks at `(x, t)`.
    fn hessian_prepare(
        &self,
        s: &mut Self::Scratch,
        x: &Self::Input,
        t: &Self::Target,
    ) -> Result<(), NetError>;
    /// Factors `H + lambda I` (the prepared Hessian) and returns its inertia.
    fn hessian_factor(
        &self,
        s: &mut Self::Scratch,
        lambda: Self::Scalar,
    ) -> Result<Inertia, SolveError>;
    /// `out = (H + lambda I)^{-1} b` with the last factorisation (refined).
    fn hessian_solve(
        &self,
        s: &mut Self::Scratch,
        b: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), SolveError>;
    /// `out = H v` (no shift) from the prepared Hessian's stored blocks.
    fn hessian_apply(
        &self,
        s: &mut Self::Scratch,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), SolveError>;
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport<T> {
    /// Whether the step was taken (otherwise the parameters are unchanged).
    pub accepted: bool,
    /// Loss before the step.
    pub loss_before: T,
    /// Loss at the trial point (the new loss when accepted).
    pub loss_trial: T,
    /// Loss at the parameters the net holds after the call.
    pub loss_after: T,
    /// Reduction the local model predicted (0 for the first-order methods).
    pub predicted: T,
    /// Actual reduction `loss_before - loss_trial`.
    pub actual: T,
    /// `actual / predicted` (0 for the first-order methods).
    pub ratio: T,
    /// Damping `lambda` the step was solved with (the shift of the trust-region
    /// subproblem; the learning rate for first-order methods).
    pub damping: T,
    /// Trust radius used for the step (0 for the other methods).
    pub radius: T,
    /// Euclidean norm of the trial step.
    pub step_norm: T,
    /// Curvature factorisations / solves with a new damping this call made.
    pub factorizations: u32,
}

impl<T: Real> StepReport<T> {
    pub(crate) fn first_order(loss: T, lr: T, step_norm: T) -> Self {
        StepReport {
            accepted: true,
            loss_before: loss,
            loss_trial: loss,
            loss_after: loss,
            predicted: T::ZERO,
            actual: T::ZERO,
            ratio: T::ZERO,
            damping: lr,
            radius: T::ZERO,
            step_norm,
            factorizations: 0,
        }
    }
}

pub(crate) use crate::linalg::kernels::dot;

/// The trial shared by Levenberg-Marquardt and damped Newton once `d = (A + lambda I)^{-1} g`
/// is solved (`A` = G or H): the step `-d` (written back into `d`) is tried from `base`; it
/// is accepted when the ratio of the actual to the predicted reduction exceeds `eta`. The
/// trial point stays in the net either way; the caller restores `base` on rejection.
#[allow(clippy::too_many_arguments)]
pub(crate) fn damped_trial<M: Model>(
    net: &mut M,
    s: &mut M::Scratch,
    x: &M::Input,
    t: &M::Target,
    loss0: M::Scalar,
    lambda: M::Scalar,
    eta: M::Scalar,
    g: &M::Vector,
    d: &mut M::Vector,
    base: &M::Vector,
    trial: &mut M::Vector,
    factorizations: u32,
) -> StepReport<M::Scalar> {
    for v in d.as_mut() {
        *v = -*v;
    }
    let gd = dot(g.as_ref(), d.as_ref());
    let dd = dot(d.as_ref(), d.as_ref());
    // With (A + lambda I) d = -g: -(g'd + d'Ad/2) = (-g'd + lambda |d|^2) / 2.
    let pred = (lambda * dd - gd) * M::Scalar::c(0.5);
    let trial_loss = try_point(net, s, x, t, base, d, trial);
    let (loss1, actual) = match trial_loss {
        Some(l) => (l, loss0 - l),
        None => (M::Scalar::MAX, -M::Scalar::MAX),
    };
    let ratio = if pred > M::Scalar::ZERO {
        actual / pred
    } else {
        -M::Scalar::ONE
    };
    let accepted = trial_loss.is_some() && pred > M::Scalar::ZERO && ratio > eta;
    StepReport {
        accepted,
        loss_before: loss0,
        loss_trial: loss1,
        loss_after: if accepted { loss1 } else { loss0 },
        predicted: pred,
        actual,
        ratio,
        damping: lambda,
        radius: M::Scalar::ZERO,
        step_norm: dd.sqrt(),
        factorizations,
    }
}

/// The trial point `p + d` is written into the net; returns its loss or `None` when the net
/// rejects it or its loss is not finite (a failed trial).
pub(crate) fn try_point<M: Model>(
    net: &mut M,
    s: &mut M::Scratch,
    x: &M::Input,
    t: &M::Target,
    base: &M::Vector,
    d: &M::Vector,
    trial: &mut M::Vector,
) -> Option<M::Scalar> {
    for ((o, b), di) in trial.as_mut().iter_mut().zip(base.as_ref()).zip(d.as_ref()) {
        *o = *b + *di;
    }
    net.put_params(trial).ok()?;
    match net.loss_in(s, x, t) {
        Ok(l) if l.finite() => Some(l),
        _ => None,
    }
}

/// The damping update of Nielsen (1999) used by LM and damped Newton: on acceptance
/// `lambda *= max(1/3, 1 - (2 rho - 1)^3)`, on rejection `lambda *= nu, nu *= 2`.
pub(crate) fn nielsen<T: Real>(
    lambda: &mut T,
    nu: &mut T,
    accepted: bool,
    ratio: T,
    min: T,
    max: T,
) {
    let two = T::c(2.0);
    if accepted {
        let x = two * ratio - T::ONE;
        let f = (T::ONE - x * x * x).max(T::c(1.0 / 3.0));
        *lambda *= f;
        *nu = two;
    } else {
        *lambda *= *nu;
        *nu *= two;
    }
    *lambda = lambda.max(min).min(max);
}
