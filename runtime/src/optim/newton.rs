//! Newton on the exact Hessian with adaptive damping: `lambda` is raised until the inertia
//! says `H + lambda I` is positive definite, then adapted from the reduction ratio.

use super::{damped_trial, nielsen, Model, StepReport};
use crate::error::SolveError;
use crate::real::Real;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`DampedNewton`].
#[derive(Clone, Copy, Debug)]
pub struct NewtonConfig<T> {
    /// Initial damping.
    pub lambda: T,
    /// Smallest damping.
    pub lambda_min: T,
    /// Largest damping.
    pub lambda_max: T,
    /// A step is accepted when `actual / predicted > eta`.
    pub eta: T,
    /// Factorisations per call (including those that found `H + lambda I` indefinite).
    pub max_factorizations: u32,
}

impl<T: Real> Default for NewtonConfig<T> {
    fn default() -> Self {
        NewtonConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-10),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_factorizations: 12,
        }
    }
}

/// Damped Newton on the exact Hessian: `d = -(H + lambda I)^{-1} g` with `lambda` large
/// enough that `H + lambda I` is positive definite (checked by its inertia), so `d` is a
/// descent direction even where `H` is indefinite.
#[derive(Clone, Debug)]
pub struct DampedNewton<M: Model> {
    /// Settings.
    pub config: NewtonConfig<M::Scalar>,
    /// Current damping.
    pub lambda: M::Scalar,
    nu: M::Scalar,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

impl<M: Model> DampedNewton<M> {
    /// A fresh optimizer.
    pub fn new(config: NewtonConfig<M::Scalar>) -> Self {
        DampedNewton {
            lambda: config.lambda,
            config,
            nu: M::Scalar::c(2.0),
            g: M::zero_vector(),
            d: M::zero_vector(),
            base: M::zero_vector(),
            trial: M::zero_vector(),
        }
    }

    /// One step on the batch `(x, t)`.
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
        net.hessian_prepare(s, x, t)?;
        let mut report = StepReport::first_order(loss0, self.lambda, M::Scalar::ZERO);
        report.accepted = false;
        let mut k = 0;
        while k < c.max_factorizations.max(1) {
            k += 1;
            let lambda = self.lambda;
            let pd = match net.hessian_factor(s, lambda) {
                Ok(inertia) => inertia.is_positive_definite(),
                Err(SolveError::Singular { .. }) => false,
                Err(e) => return Err(e),
            };
            if !pd {
                // Indefinite: raise the shift (geometrically, from at least lambda_min).
                self.lambda = (lambda * M::Scalar::c(4.0))
                    .max(c.lambda_min)
                    .min(c.lambda_max);
                report.factorizations = k;
                report.damping = lambda;
                if lambda >= c.lambda_max {
                    break;
                }
                continue;
            }
            net.hessian_solve(s, &self.g, &mut self.d)?;
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
                k,
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
