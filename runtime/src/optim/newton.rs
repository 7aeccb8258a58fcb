//! Newton on the exact Hessian with adaptive damping: `lambda` is raised until the inertia
//! says `H + lambda I` is positive definite, then adapted from the reduction ratio.

use super::{damped_trial, nielsen, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::real::{norm, Real};
use crate::solver::Factorization;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`DampedNewton`]; the defaults are those of [`NewtonConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NewtonConfig<T> {
    /// Initial damping (default 1e-3).
    pub lambda: T,
    /// Smallest damping (default 1e-10).
    pub lambda_min: T,
    /// Largest damping (default 1e12).
    pub lambda_max: T,
    /// A step is accepted when `actual / predicted > eta` (default 1e-4; in `[0, 1)`).
    pub eta: T,
    /// Factorisations per call, including those that found `H + lambda I` indefinite
    /// (default 12).
    pub max_factorizations: u32,
    /// Refinement steps of each solve (default 2).
    pub refine_steps: u32,
}

impl<T: Real> Default for NewtonConfig<T> {
    /// `lambda` 1e-3, `lambda_min` 1e-10, `lambda_max` 1e12, `eta` 1e-4,
    /// `max_factorizations` 12, `refine_steps` 2.
    fn default() -> Self {
        NewtonConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-10),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_factorizations: 12,
            refine_steps: 2,
        }
    }
}

impl<T: Real> NewtonConfig<T> {
    /// With this initial damping.
    pub fn with_lambda(mut self, lambda: T) -> Self {
        self.lambda = lambda;
        self
    }
    /// With these damping bounds.
    pub fn with_lambda_bounds(mut self, min: T, max: T) -> Self {
        self.lambda_min = min;
        self.lambda_max = max;
        self
    }
    /// With this acceptance threshold.
    pub fn with_eta(mut self, eta: T) -> Self {
        self.eta = eta;
        self
    }
    /// With this many factorisations per call.
    pub fn with_max_factorizations(mut self, n: u32) -> Self {
        self.max_factorizations = n;
        self
    }

    /// Checks every setting: positive finite dampings with `lambda_min <= lambda <=
    /// lambda_max`, `eta` in `[0, 1)`, at least one factorisation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::damping_range(self.lambda_min, self.lambda, self.lambda_max)?;
        super::unit("eta", self.eta)?;
        super::at_least_one("max_factorizations", self.max_factorizations)?;
        Ok(())
    }
}

/// Damped Newton on the exact Hessian: `d = -(H + lambda I)^{-1} g` with `lambda` large
/// enough that `H + lambda I` is positive definite (checked by its inertia), so `d` is a
/// descent direction even where `H` is indefinite.
///
/// Owns a workspace and the exact Hessian's storage of `M`.
///
/// ```
/// use tall_skinny::prelude::*;
/// use tall_skinny::runtime::optim::{DampedNewton, NewtonConfig};
///
/// #[tall_skinny_net(batch = 4)]
/// struct Fit {
///     inp: Dense<1, 6, Tanh>,
///     body: [Residual<6, Tanh>; 2],
///     head: Dense<6, 1, Identity>,
///     loss: Mse<1>,
/// }
///
/// let x = [[-1.0], [-0.3], [0.4], [1.0]];
/// let t = [[0.5], [-0.2], [0.1], [0.9]];
/// let mut net = Fit::init(2);
/// let mut newton = DampedNewton::<Fit>::new(NewtonConfig::default())?;
/// let first = newton.step(&mut net, &x, &t)?;
/// for _ in 0..30 {
///     let r = newton.step(&mut net, &x, &t)?;
///     // Every accepted step decreases the loss.
///     if let (true, Some(after)) = (r.accepted, r.loss_after) {
///         assert!(after <= r.loss_before);
///     }
/// }
/// assert!(net.loss(&x, &t)? < 1e-2 * first.loss_before);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DampedNewton<M: Model> {
    config: NewtonConfig<M::Scalar>,
    lambda: M::Scalar,
    nu: M::Scalar,
    ws: M::Workspace,
    hess: M::Hessian,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

// SAFETY: every field is `Zeroable`; an all-zero optimizer is unconfigured and its `step`
// fails.
unsafe impl<M: Model> bytemuck::Zeroable for DampedNewton<M> where M::Scalar: bytemuck::Zeroable {}

impl<M: Model> DampedNewton<M> {
    /// An unconfigured optimizer (all zeros, for a `static`): [`Self::configure`] it
    /// before the first step.
    pub const ZERO: Self = DampedNewton {
        config: NewtonConfig {
            lambda: M::Scalar::ZERO,
            lambda_min: M::Scalar::ZERO,
            lambda_max: M::Scalar::ZERO,
            eta: M::Scalar::ZERO,
            max_factorizations: 0,
            refine_steps: 0,
        },
        lambda: M::Scalar::ZERO,
        nu: M::Scalar::ZERO,
        ws: M::Workspace::ZERO,
        hess: M::Hessian::ZERO,
        g: M::Vector::ZERO,
        d: M::Vector::ZERO,
        base: M::Vector::ZERO,
        trial: M::Vector::ZERO,
    };

    /// Validates and takes the settings, and restarts (damping from `config.lambda`).
    pub fn configure(&mut self, config: NewtonConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.lambda = config.lambda;
        self.nu = M::Scalar::c(2.0);
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &NewtonConfig<M::Scalar> {
        &self.config
    }

    /// The current damping.
    pub fn lambda(&self) -> M::Scalar {
        self.lambda
    }

    /// One step on the batch `(x, t)`.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        self.config.validate().map_err(SolveError::Config)?;
        let c = self.config;
        let loss0 = net.gradient_into(&mut self.ws, x, t, &mut self.g)?;
        net.get_params(&mut self.base);
        net.hessian_into(&mut self.hess, x, t)?;
        let mut report = StepReport::start(loss0, norm(self.g.as_ref()));
        let mut k = 0;
        while k < c.max_factorizations {
            k += 1;
            let lambda = self.lambda;
            report.factorizations = k;
            report.damping = Some(lambda);
            let solved = match net.factor_current(&mut self.hess, lambda) {
                Ok(mut f) if f.inertia().is_positive_definite() => f
                    .solve_refined(&self.g, &mut self.d, c.refine_steps as usize)
                    .map(|_| true),
                Ok(_) | Err(SolveError::Singular { .. }) => Ok(false),
                Err(e) => Err(e),
            };
            let pd = match solved {
                Ok(pd) => pd,
                Err(SolveError::NonFiniteResult | SolveError::Inaccurate { .. }) => false,
                Err(e) => return Err(e),
            };
            if !pd {
                // Indefinite (or not solvable here): raise the shift geometrically.
                self.lambda = (lambda * M::Scalar::c(4.0))
                    .max(c.lambda_min)
                    .min(c.lambda_max);
                if lambda >= c.lambda_max {
                    break;
                }
                continue;
            }
            damped_trial(
                net,
                x,
                t,
                &mut report,
                lambda,
                c.eta,
                &self.g,
                &mut self.d,
                &self.base,
                &mut self.trial,
                None,
            );
            nielsen(
                &mut self.lambda,
                &mut self.nu,
                report.ratio,
                report.accepted,
                c.lambda_min,
                c.lambda_max,
            );
            if report.accepted {
                return Ok(report);
            }
            net.put_params(&self.base)?;
        }
        Ok(report)
    }
}

impl<M: Model> Optimizer<M> for DampedNewton<M> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        DampedNewton::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "damped Newton"
    }
}
