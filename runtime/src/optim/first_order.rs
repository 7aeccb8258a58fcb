//! First-order baselines with the same step API: SGD (with momentum) and Adam.

use super::{Model, StepReport};
use crate::error::SolveError;
use crate::real::Real;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`Sgd`].
#[derive(Clone, Copy, Debug)]
pub struct SgdConfig<T> {
    /// Learning rate.
    pub lr: T,
    /// Heavy-ball momentum (0 = plain gradient descent).
    pub momentum: T,
}

impl<T: Real> Default for SgdConfig<T> {
    fn default() -> Self {
        SgdConfig {
            lr: T::c(1e-2),
            momentum: T::c(0.9),
        }
    }
}

/// Gradient descent with heavy-ball momentum: `v = momentum v - lr g`, `p += v`. Every step
/// is taken.
#[derive(Clone, Debug)]
pub struct Sgd<M: Model> {
    /// Settings.
    pub config: SgdConfig<M::Scalar>,
    g: M::Vector,
    v: M::Vector,
    p: M::Vector,
}

impl<M: Model> Sgd<M> {
    /// A fresh optimizer (zero velocity).
    pub fn new(config: SgdConfig<M::Scalar>) -> Self {
        Sgd {
            config,
            g: M::zero_vector(),
            v: M::zero_vector(),
            p: M::zero_vector(),
        }
    }

    /// One step on the batch `(x, t)`; the report's losses are the loss before the step.
    pub fn step(
        &mut self,
        net: &mut M,
        s: &mut M::Scratch,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        let c = self.config;
        let loss = net.gradient_into(s, x, t, &mut self.g)?;
        net.get_params(&mut self.p);
        let mut n2 = M::Scalar::ZERO;
        for ((p, v), g) in self
            .p
            .as_mut()
            .iter_mut()
            .zip(self.v.as_mut())
            .zip(self.g.as_ref())
        {
            *v = c.momentum * *v - c.lr * *g;
            *p += *v;
            n2 += *v * *v;
        }
        net.put_params(&self.p)?;
        Ok(StepReport::first_order(loss, c.lr, n2.sqrt()))
    }
}

/// Settings of [`Adam`].
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig<T> {
    /// Learning rate.
    pub lr: T,
    /// First-moment decay.
    pub beta1: T,
    /// Second-moment decay.
    pub beta2: T,
    /// Denominator guard.
    pub eps: T,
}

impl<T: Real> Default for AdamConfig<T> {
    fn default() -> Self {
        AdamConfig {
            lr: T::c(1e-3),
            beta1: T::c(0.9),
            beta2: T::c(0.999),
            eps: T::c(1e-8),
        }
    }
}

/// Adam (Kingma and Ba) with bias correction. Every step is taken.
#[derive(Clone, Debug)]
pub struct Adam<M: Model> {
    /// Settings.
    pub config: AdamConfig<M::Scalar>,
    /// Steps taken.
    pub steps: u64,
    b1t: M::Scalar,
    b2t: M::Scalar,
    g: M::Vector,
    m: M::Vector,
    v: M::Vector,
    p: M::Vector,
}

impl<M: Model> Adam<M> {
    /// A fresh optimizer (zero moments).
    pub fn new(config: AdamConfig<M::Scalar>) -> Self {
        Adam {
            config,
            steps: 0,
            b1t: M::Scalar::ONE,
            b2t: M::Scalar::ONE,
            g: M::zero_vector(),
            m: M::zero_vector(),
            v: M::zero_vector(),
            p: M::zero_vector(),
        }
    }

    /// One step on the batch `(x, t)`; the report's losses are the loss before the step.
    pub fn step(
        &mut self,
        net: &mut M,
        s: &mut M::Scratch,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        let c = self.config;
        let loss = net.gradient_into(s, x, t, &mut self.g)?;
        net.get_params(&mut self.p);
        self.steps += 1;
        self.b1t *= c.beta1;
        self.b2t *= c.beta2;
        let (bc1, bc2) = (M::Scalar::ONE - self.b1t, M::Scalar::ONE - self.b2t);
        let mut n2 = M::Scalar::ZERO;
        let it = self
            .p
            .as_mut()
            .iter_mut()
            .zip(self.m.as_mut())
            .zip(self.v.as_mut())
            .zip(self.g.as_ref());
        for (((p, m), v), g) in it {
            *m = c.beta1 * *m + (M::Scalar::ONE - c.beta1) * *g;
            *v = c.beta2 * *v + (M::Scalar::ONE - c.beta2) * *g * *g;
            let d = c.lr * (*m / bc1) / ((*v / bc2).sqrt() + c.eps);
            *p -= d;
            n2 += d * d;
        }
        net.put_params(&self.p)?;
        Ok(StepReport::first_order(loss, c.lr, n2.sqrt()))
    }
}
