//! First-order baselines with the same step API: SGD (with momentum) and Adam.

use super::{positive, require, unit, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::real::{all_finite, norm, Real};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`Sgd`]; the defaults are those of [`SgdConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SgdConfig<T> {
    /// Learning rate (default 1e-2; positive and finite).
    pub lr: T,
    /// Heavy-ball momentum (default 0.9; in `[0, 1)`, 0 = plain gradient descent).
    pub momentum: T,
}

impl<T: Real> Default for SgdConfig<T> {
    /// `lr` 1e-2, `momentum` 0.9.
    fn default() -> Self {
        SgdConfig {
            lr: T::c(1e-2),
            momentum: T::c(0.9),
        }
    }
}

impl<T: Real> SgdConfig<T> {
    /// With this learning rate.
    pub fn with_lr(mut self, lr: T) -> Self {
        self.lr = lr;
        self
    }
    /// With this momentum.
    pub fn with_momentum(mut self, momentum: T) -> Self {
        self.momentum = momentum;
        self
    }
    /// Checks every setting: a positive finite `lr`, `momentum` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("lr", self.lr)?;
        unit("momentum", self.momentum)
    }
}

/// Gradient descent with heavy-ball momentum: `v = momentum v - lr g`, `p += v`. Every step
/// with finite new parameters is taken; one that would overflow them is an error and leaves
/// the parameters (and the velocity) unchanged.
pub struct Sgd<M: Model> {
    config: SgdConfig<M::Scalar>,
    ws: M::Workspace,
    g: M::Vector,
    v: M::Vector,
    v_new: M::Vector,
    p: M::Vector,
}

// SAFETY: every field is `Zeroable`; an all-zero optimizer is unconfigured and its `step`
// fails.
unsafe impl<M: Model> bytemuck::Zeroable for Sgd<M> where M::Scalar: bytemuck::Zeroable {}

impl<M: Model> Sgd<M> {
    /// An unconfigured optimizer (all zeros): [`Self::configure`] it before the first step.
    pub const ZERO: Self = Sgd {
        config: SgdConfig {
            lr: M::Scalar::ZERO,
            momentum: M::Scalar::ZERO,
        },
        ws: M::Workspace::ZERO,
        g: M::Vector::ZERO,
        v: M::Vector::ZERO,
        v_new: M::Vector::ZERO,
        p: M::Vector::ZERO,
    };

    /// Validates and takes the settings, and restarts (zero velocity).
    pub fn configure(&mut self, config: SgdConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.v = M::Vector::ZERO;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig<M::Scalar> {
        &self.config
    }

    /// One step on the batch `(x, t)`; the report's losses are the loss before the step.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        self.config.validate().map_err(SolveError::Config)?;
        let c = self.config;
        let loss = net.gradient_into(&mut self.ws, x, t, &mut self.g)?;
        net.get_params(&mut self.p);
        for ((p, (vn, v)), g) in self
            .p
            .as_mut()
            .iter_mut()
            .zip(self.v_new.as_mut().iter_mut().zip(self.v.as_ref()))
            .zip(self.g.as_ref())
        {
            *vn = c.momentum * *v - c.lr * *g;
            *p += *vn;
        }
        let step_norm = norm(self.v_new.as_ref());
        if !all_finite(self.p.as_ref()) || !step_norm.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        net.put_params(&self.p)?;
        self.v = self.v_new;
        Ok(first_order(loss, norm(self.g.as_ref()), c.lr, step_norm))
    }
}

impl<M: Model> Optimizer<M> for Sgd<M> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        Sgd::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "SGD"
    }
}

/// Settings of [`Adam`]; the defaults are those of [`AdamConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamConfig<T> {
    /// Learning rate (default 1e-3; positive and finite).
    pub lr: T,
    /// First-moment decay (default 0.9; in `[0, 1)`).
    pub beta1: T,
    /// Second-moment decay (default 0.999; in `[0, 1)`).
    pub beta2: T,
    /// Denominator guard (default 1e-8; positive and finite).
    pub eps: T,
}

impl<T: Real> Default for AdamConfig<T> {
    /// `lr` 1e-3, `beta1` 0.9, `beta2` 0.999, `eps` 1e-8.
    fn default() -> Self {
        AdamConfig {
            lr: T::c(1e-3),
            beta1: T::c(0.9),
            beta2: T::c(0.999),
            eps: T::c(1e-8),
        }
    }
}

impl<T: Real> AdamConfig<T> {
    /// With this learning rate.
    pub fn with_lr(mut self, lr: T) -> Self {
        self.lr = lr;
        self
    }
    /// With these moment decays.
    pub fn with_betas(mut self, beta1: T, beta2: T) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// With this denominator guard.
    pub fn with_eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }
    /// Checks every setting: positive finite `lr` and `eps`, `beta1` and `beta2` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("lr", self.lr)?;
        unit("beta1", self.beta1)?;
        unit("beta2", self.beta2)?;
        positive("eps", self.eps)?;
        require("eps", self.eps, self.eps.finite(), "finite")
    }
}

/// Adam (Kingma and Ba) with bias correction. Every step with finite new parameters is
/// taken; one that would overflow them is an error and leaves the parameters and the
/// moments unchanged.
pub struct Adam<M: Model> {
    config: AdamConfig<M::Scalar>,
    steps: u64,
    b1t: M::Scalar,
    b2t: M::Scalar,
    ws: M::Workspace,
    g: M::Vector,
    m: M::Vector,
    v: M::Vector,
    d: M::Vector,
    p: M::Vector,
}

// SAFETY: every field is `Zeroable`; an all-zero optimizer is unconfigured and its `step`
// fails.
unsafe impl<M: Model> bytemuck::Zeroable for Adam<M> where M::Scalar: bytemuck::Zeroable {}

impl<M: Model> Adam<M> {
    /// An unconfigured optimizer (all zeros): [`Self::configure`] it before the first step.
    pub const ZERO: Self = Adam {
        config: AdamConfig {
            lr: M::Scalar::ZERO,
            beta1: M::Scalar::ZERO,
            beta2: M::Scalar::ZERO,
            eps: M::Scalar::ZERO,
        },
        steps: 0,
        b1t: M::Scalar::ZERO,
        b2t: M::Scalar::ZERO,
        ws: M::Workspace::ZERO,
        g: M::Vector::ZERO,
        m: M::Vector::ZERO,
        v: M::Vector::ZERO,
        d: M::Vector::ZERO,
        p: M::Vector::ZERO,
    };

    /// Validates and takes the settings, and restarts (zero moments).
    pub fn configure(&mut self, config: AdamConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.steps = 0;
        self.b1t = M::Scalar::ONE;
        self.b2t = M::Scalar::ONE;
        self.m = M::Vector::ZERO;
        self.v = M::Vector::ZERO;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &AdamConfig<M::Scalar> {
        &self.config
    }

    /// Steps taken since the last restart.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step on the batch `(x, t)`; the report's losses are the loss before the step.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        self.config.validate().map_err(SolveError::Config)?;
        let c = self.config;
        let one = M::Scalar::ONE;
        let loss = net.gradient_into(&mut self.ws, x, t, &mut self.g)?;
        net.get_params(&mut self.p);
        let (b1t, b2t) = (self.b1t * c.beta1, self.b2t * c.beta2);
        let (bc1, bc2) = (one - b1t, one - b2t);
        // The new moments are computed into `d` (first) and `m`/`v` only once the step is
        // known to be finite: first the step itself.
        for (((d, m), v), g) in self
            .d
            .as_mut()
            .iter_mut()
            .zip(self.m.as_ref())
            .zip(self.v.as_ref())
            .zip(self.g.as_ref())
        {
            let m1 = c.beta1 * *m + (one - c.beta1) * *g;
            let v1 = c.beta2 * *v + (one - c.beta2) * *g * *g;
            *d = c.lr * (m1 / bc1) / ((v1 / bc2).sqrt() + c.eps);
        }
        for (p, d) in self.p.as_mut().iter_mut().zip(self.d.as_ref()) {
            *p -= *d;
        }
        let step_norm = norm(self.d.as_ref());
        if !all_finite(self.p.as_ref()) || !step_norm.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        net.put_params(&self.p)?;
        for ((m, v), g) in self
            .m
            .as_mut()
            .iter_mut()
            .zip(self.v.as_mut())
            .zip(self.g.as_ref())
        {
            *m = c.beta1 * *m + (one - c.beta1) * *g;
            *v = c.beta2 * *v + (one - c.beta2) * *g * *g;
        }
        self.b1t = b1t;
        self.b2t = b2t;
        self.steps += 1;
        Ok(first_order(loss, norm(self.g.as_ref()), c.lr, step_norm))
    }
}

impl<M: Model> Optimizer<M> for Adam<M> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        Adam::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "Adam"
    }
}

fn first_order<T: Real>(loss: T, gradient_norm: T, lr: T, step_norm: T) -> StepReport<T> {
    let mut r = StepReport::start(loss, gradient_norm);
    r.accepted = true;
    r.loss_after = None;
    r.learning_rate = Some(lr);
    r.step_norm = step_norm;
    r
}
