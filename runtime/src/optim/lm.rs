//! Levenberg-Marquardt on the exact Gauss-Newton matrix.

use super::{damped_trial, nielsen, Model, StepReport};
use crate::error::SolveError;
use crate::real::Real;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`LevenbergMarquardt`].
#[derive(Clone, Copy, Debug)]
pub struct LmConfig<T> {
    /// Initial damping.
    pub lambda: T,
    /// Smallest damping (kept positive: `G` is singular whenever parameters outnumber
    /// outputs times batch).
    pub lambda_min: T,
    /// Largest damping.
    pub lambda_max: T,
    /// A step is accepted when `actual / predicted > eta`.
    pub eta: T,
    /// Trials per call: after a rejection the step is re-solved with a larger damping on the
    /// same curvature, at most this many solves in one call (1 = exactly one solve).
    pub max_trials: u32,
}

impl<T: Real> Default for LmConfig<T> {
    fn default() -> Self {
        LmConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-12),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_trials: 4,
        }
    }
}

/// Levenberg-Marquardt: `d = -(G + lambda I)^{-1} g` with the net's exact Gauss-Newton
/// solve, accepted when the ratio of actual to predicted reduction exceeds `eta`; `lambda`
/// follows Nielsen's update.
#[derive(Clone, Debug)]
pub struct LevenbergMarquardt<M: Model> {
    /// Settings.
    pub config: LmConfig<M::Scalar>,
    /// Current damping.
    pub lambda: M::Scalar,
    nu: M::Scalar,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

impl<M: Model> LevenbergMarquardt<M> {
    /// A fresh optimizer.
    pub fn new(config: LmConfig<M::Scalar>) -> Self {
        LevenbergMarquardt {
            lambda: config.lambda,
            config,
            nu: M::Scalar::c(2.0),
            g: M::zero_vector(),
            d: M::zero_vector(),
            base: M::zero_vector(),
            trial: M::zero_vector(),
        }
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
        s: &mut M::Scratch,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        let c = self.config;
        let loss0 = net.gradient_into(s, x, t, &mut self.g)?;
        net.get_params(&mut self.base);
        net.ggn_prepare(s, x, t)?;
        let mut report = StepReport::first_order(loss0, self.lambda, M::Scalar::ZERO);
        report.accepted = false;
        for k in 0..c.max_trials.max(1) {
            let lambda = self.lambda;
            match net.ggn_solve(s, lambda, &self.g, &mut self.d) {
                Ok(()) => {}
                Err(SolveError::Singular { .. } | SolveError::NonFiniteResult) => {
                    // Numerically singular at this damping: a failed trial, raise lambda.
                    nielsen(
                        &mut self.lambda,
                        &mut self.nu,
                        false,
                        M::Scalar::ZERO,
                        c.lambda_min,
                        c.lambda_max,
                    );
                    report.damping = lambda;
                    report.factorizations = k + 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            report = damped_trial(
                net,
                s,
                x,
                t,
                loss0,
                lambda,
                c.eta,
                &self.g,
                &mut self.d,
                &self.base,
                &mut self.trial,
                k + 1,
            );
            nielsen(
                &mut self.lambda,
                &mut self.nu,
                report.accepted,
                report.ratio,
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
