//! Levenberg-Marquardt on the exact Gauss-Newton matrix.

use super::{damped_trial, nielsen, positive, require, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::real::{norm, Real};
use crate::solver::Factorization;

/// Settings of [`LevenbergMarquardt`]; the defaults are those of [`LmConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmConfig<T> {
    /// Initial damping (default 1e-3).
    pub lambda: T,
    /// Smallest damping (default 1e-12; kept positive: `G` is singular whenever parameters
    /// outnumber outputs times batch).
    pub lambda_min: T,
    /// Largest damping (default 1e12).
    pub lambda_max: T,
    /// A step is accepted when `actual / predicted > eta` (default 1e-4; in `[0, 1)`).
    pub eta: T,
    /// Solves per call (default 4): after a rejection the step is solved again with a larger
    /// damping on the same curvature (1 = exactly one solve).
    pub max_trials: u32,
    /// Refinement steps of each solve (default 2).
    pub refine_steps: u32,
}

impl<T: Real> Default for LmConfig<T> {
    /// `lambda` 1e-3, `lambda_min` 1e-12, `lambda_max` 1e12, `eta` 1e-4, `max_trials` 4,
    /// `refine_steps` 2.
    fn default() -> Self {
        LmConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-12),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_trials: 4,
            refine_steps: 2,
        }
    }
}

impl<T: Real> LmConfig<T> {
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
    /// With this many solves per call.
    pub fn with_max_trials(mut self, max_trials: u32) -> Self {
        self.max_trials = max_trials;
        self
    }
    /// With this many refinement steps per solve.
    pub fn with_refine_steps(mut self, refine_steps: u32) -> Self {
        self.refine_steps = refine_steps;
        self
    }

    /// Checks every setting: positive finite dampings with `lambda_min <= lambda <=
    /// lambda_max`, `eta` in `[0, 1)`, at least one trial.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("lambda_min", self.lambda_min)?;
        positive("lambda_max", self.lambda_max)?;
        require(
            "lambda_max",
            self.lambda_max,
            self.lambda_max >= self.lambda_min,
            "at least lambda_min",
        )?;
        positive("lambda", self.lambda)?;
        require(
            "lambda",
            self.lambda,
            self.lambda >= self.lambda_min && self.lambda <= self.lambda_max,
            "between lambda_min and lambda_max",
        )?;
        super::unit("eta", self.eta)?;
        require(
            "max_trials",
            T::c(f64::from(self.max_trials)),
            self.max_trials >= 1,
            "at least 1",
        )?;
        Ok(())
    }
}

/// Levenberg-Marquardt: `d = -(G + lambda I)^{-1} g` with the net's exact Gauss-Newton
/// solve, accepted when the ratio of actual to predicted reduction exceeds `eta`; `lambda`
/// follows Nielsen's update. A solve that is singular, overflows or cannot be vouched for
/// at a small damping is a failed trial that raises `lambda`.
///
/// Owns the Gauss-Newton storage of `M` and the scratch its fill needs ([`Model::GnScratch`]:
/// nothing for the Woodbury form, which lends its own records), nothing of the exact Hessian.
pub struct LevenbergMarquardt<M: Model> {
    config: LmConfig<M::Scalar>,
    lambda: M::Scalar,
    nu: M::Scalar,
    scratch: M::GnScratch,
    ggn: M::GaussNewton,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

// SAFETY: every field is `Zeroable` (the configs are scalars and integers; the storages and
// vectors by `Model`'s bounds); an all-zero optimizer is unconfigured and its `step` fails.
unsafe impl<M: Model> bytemuck::Zeroable for LevenbergMarquardt<M> where
    M::Scalar: bytemuck::Zeroable
{
}

impl<M: Model> LevenbergMarquardt<M> {
    /// An unconfigured optimizer (all zeros, for a `static`): [`Self::configure`] it
    /// before the first step.
    pub const ZERO: Self = LevenbergMarquardt {
        config: LmConfig {
            lambda: M::Scalar::ZERO,
            lambda_min: M::Scalar::ZERO,
            lambda_max: M::Scalar::ZERO,
            eta: M::Scalar::ZERO,
            max_trials: 0,
            refine_steps: 0,
        },
        lambda: M::Scalar::ZERO,
        nu: M::Scalar::ZERO,
        scratch: M::GnScratch::ZERO,
        ggn: M::GaussNewton::ZERO,
        g: M::Vector::ZERO,
        d: M::Vector::ZERO,
        base: M::Vector::ZERO,
        trial: M::Vector::ZERO,
    };

    /// A fresh optimizer; the settings are validated.
    pub fn new(config: LmConfig<M::Scalar>) -> Result<Self, ConfigError> {
        let mut lm = Self::ZERO;
        lm.configure(config)?;
        Ok(lm)
    }

    /// [`Self::new`] on the heap, without building it on the stack first.
    #[cfg(feature = "alloc")]
    pub fn boxed(config: LmConfig<M::Scalar>) -> Result<alloc::boxed::Box<Self>, ConfigError> {
        let mut lm: alloc::boxed::Box<Self> = bytemuck::zeroed_box();
        lm.configure(config)?;
        Ok(lm)
    }

    /// Validates and takes the settings, and restarts (damping from `config.lambda`).
    pub fn configure(&mut self, config: LmConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.lambda = config.lambda;
        self.nu = M::Scalar::c(2.0);
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &LmConfig<M::Scalar> {
        &self.config
    }

    /// The current damping.
    pub fn lambda(&self) -> M::Scalar {
        self.lambda
    }

    /// The gradient at the start of the last step.
    pub fn gradient(&self) -> &M::Vector {
        &self.g
    }

    /// One step on the batch `(x, t)`: gradient, Gauss-Newton curvature, then up to
    /// `max_trials` damped solves until one is accepted.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        self.config.validate().map_err(SolveError::Config)?;
        let c = self.config;
        let loss0 =
            net.gradient_gauss_newton_into(&mut self.scratch, &mut self.ggn, x, t, &mut self.g)?;
        net.get_params(&mut self.base);
        let mut report = StepReport::start(loss0, norm(self.g.as_ref()));
        for k in 0..c.max_trials {
            let lambda = self.lambda;
            report.factorizations = k + 1;
            report.damping = Some(lambda);
            let solved = match net.factor_current(&mut self.ggn, lambda) {
                Ok(mut f) => f
                    .solve_refined(&self.g, &mut self.d, c.refine_steps as usize)
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            match solved {
                Ok(()) => {}
                Err(
                    SolveError::Singular { .. }
                    | SolveError::NonFiniteResult
                    | SolveError::Inaccurate { .. },
                ) => {
                    // Numerically singular or not solvable to working accuracy at this
                    // damping: a failed trial, raise lambda.
                    nielsen(
                        &mut self.lambda,
                        &mut self.nu,
                        None,
                        false,
                        c.lambda_min,
                        c.lambda_max,
                    );
                    continue;
                }
                Err(e) => return Err(e),
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

impl<M: Model> Optimizer<M> for LevenbergMarquardt<M> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        LevenbergMarquardt::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "Levenberg-Marquardt"
    }
}
