//! Optimizers built on the generated curvatures: Levenberg-Marquardt on Gauss-Newton, Newton
//! with adaptive damping, a trust-region Newton step (More-Sorensen) and saddle-free Newton
//! (`|H| + eps I`, the negative eigenpairs by shift-and-invert) on the exact Hessian, and Adam
//! and SGD as baselines.
//!
//! All of them are `no_std` and never allocate: one call of [`Optimizer::step`] is one
//! optimizer step on one batch, so a real-time loop decides how many steps it can afford.
//! Each optimizer owns its state and exactly the storage its step needs (a workspace, and
//! the Gauss-Newton storage for Levenberg-Marquardt or the Hessian's for the Newton
//! methods); its size is the const `BYTES` (`size_of::<Self>()`), and large ones are built on the heap
//! without a stack copy with `boxed` (feature `alloc`) or in a `static` from `ZERO` and
//! [`LevenbergMarquardt::configure`] and its twins.
//!
//! Settings are validated when the optimizer is built or configured (a NaN, infinite,
//! negative or out-of-range value is a [`ConfigError`] naming the field), and every number
//! of a [`StepReport`] is finite.
//!
//! Each optimizer's page has a runnable example; the `tall-skinny` crate docs show the
//! real-time loop.
//!
//!
//! Every net declared with `#[tall_skinny_net]` implements [`Model`].

mod first_order;
mod lm;
mod newton;
mod saddle_free;
mod trust_region;

pub use first_order::{Adam, AdamConfig, Sgd, SgdConfig};
pub use lm::{
    ColumnScale, Geodesic, LevenbergMarquardt, LmConfig, LmDamping, LmScaling, NoScale,
    ScaleStorage,
};
pub use newton::{DampedNewton, NewtonConfig};
pub use saddle_free::{SaddleFreeConfig, SaddleFreeInfo, SaddleFreeNewton};
pub use trust_region::{Subproblem, TrustRegion, TrustRegionConfig};

use core::fmt;

use crate::chain::ConstZero;
use crate::data::{DataError, MiniBatches};
use crate::error::{ConfigError, NetError, SolveError};
use crate::ggn::GgnMethod;
use crate::linalg::kernels::dot;
use crate::real::{norm, Real};
use crate::solver::{Factorable, Product};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// What the optimizers need from a network: parameters, loss, gradient, products and the two
/// curvature storages. Implemented by the code `#[tall_skinny_net]` generates
/// (`Vector = [T; N_PARAMS]`, `Workspace = <Net>Workspace`, `Hessian = <Net>Curvature`,
/// `GaussNewton` = `<Net>Ggn` or `<Net>Curvature` as [`Model::GGN_METHOD`] says).
///
/// The storages are snapshots: a fill records the curvature at `(x, t)` and the current
/// parameters, and solving with it solves that problem. [`Model::factor_current`] factors a
/// storage after checking that it was filled at the parameters the network holds now.
///
/// Generic code over any declared net:
///
/// ```
/// use tall_skinny::prelude::*;
/// use tall_skinny::runtime::optim::Model;
/// use tall_skinny::runtime::ConstZero;
///
/// /// `|g|` at the net's current parameters, for any net.
/// fn gradient_norm<M: Model<Scalar = f64>>(net: &M, x: &M::Input, t: &M::Target) -> f64 {
///     let mut ws = tall_skinny::boxed_zeroed::<M::Workspace>();
///     let mut g = M::Vector::ZERO;
///     net.gradient_into(&mut ws, x, t, &mut g).unwrap();
///     g.as_ref().iter().map(|v| v * v).sum::<f64>().sqrt()
/// }
///
/// #[tall_skinny_net(batch = 2)]
/// struct Net {
///     inp: Dense<2, 4, Tanh>,
///     head: Dense<4, 1, Identity>,
///     loss: Mse<1>,
/// }
///
/// let net = Net::init(1);
/// let (x, t) = ([[0.1, 0.2], [0.3, -0.4]], [[1.0], [0.0]]);
/// let mut g = [0.0; Net::N_PARAMS];
/// net.gradient(&x, &t, &mut g)?;
/// let n = g.iter().map(|v| v * v).sum::<f64>().sqrt();
/// assert_eq!(gradient_norm(&net, &x, &t), n);
/// assert_eq!(<Net as Model>::N_PARAMS, Net::N_PARAMS);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Model {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// A batch of inputs (`[Self::Sample; BATCH]`).
    type Input: Copy + ConstZero;
    /// A batch of targets or labels (`[Self::SampleTarget; BATCH]`).
    type Target: Copy + ConstZero;
    /// One sample's inputs (`[T; I]`).
    type Sample: Copy;
    /// One sample's target (`[T; O]`) or label (`usize`).
    type SampleTarget: Copy;
    /// A flat parameter-sized vector (`[T; N_PARAMS]`).
    type Vector: AsRef<[Self::Scalar]>
        + AsMut<[Self::Scalar]>
        + Copy
        + ConstZero
        + bytemuck::Zeroable;
    /// The network's outputs for a batch, before the loss (`[[T; O]; BATCH]`).
    type Outputs: Copy + ConstZero + bytemuck::Zeroable + FlatOutputs<Self::Scalar>;
    /// Records of a forward pass (`gradient_into`, `hvp_into`, `ggn_vp_into`).
    type Workspace: ConstZero + bytemuck::Zeroable;
    /// Storage of the exact Hessian's curvature.
    type Hessian: Factorable<Scalar = Self::Scalar, Vector = Self::Vector>
        + Product
        + ConstZero
        + bytemuck::Zeroable;
    /// Storage of the Gauss-Newton curvature, in the form [`Model::GGN_METHOD`] names.
    type GaussNewton: Factorable<Scalar = Self::Scalar, Vector = Self::Vector>
        + ConstZero
        + bytemuck::Zeroable;
    /// Scratch of [`Model::gradient_gauss_newton_into`]: [`Model::Workspace`] when the
    /// Gauss-Newton storage keeps no forward records (Riccati), zero bytes
    /// ([`NoScratch`](crate::net::NoScratch)) when it lends its own (Woodbury).
    type GnScratch: ConstZero + bytemuck::Zeroable;
    /// Number of parameters.
    const N_PARAMS: usize;
    /// Which Gauss-Newton form [`Model::GaussNewton`] is.
    const GGN_METHOD: GgnMethod;
    /// Samples per batch (the declaration's `batch`).
    const BATCH: usize;

    /// Writes the flat parameters to `out`.
    fn get_params(&self, out: &mut Self::Vector);
    /// Sets the flat parameters (rejects non-finite ones, leaving the net unchanged).
    fn put_params(&mut self, p: &Self::Vector) -> Result<(), NetError>;
    /// A fingerprint of the current parameters (storages record the one they were filled at).
    fn fingerprint(&self) -> u64;
    /// The loss over a whole data set of any non-zero length, exact (the generated
    /// `loss_all`: the mean of the per-sample losses, no padding).
    fn loss_all_at(
        &self,
        xs: &[Self::Sample],
        ts: &[Self::SampleTarget],
    ) -> Result<Self::Scalar, NetError>;
    /// Fills the batch `(x, t)` with the next `BATCH` samples of `batches` (its
    /// [`MiniBatches::fill`]); true when the batch completed an epoch.
    fn fill_batch<Ix: AsRef<[usize]> + AsMut<[usize]>>(
        batches: &mut MiniBatches<'_, Self::Sample, Self::SampleTarget, Ix>,
        x: &mut Self::Input,
        t: &mut Self::Target,
    ) -> Result<bool, DataError>;
    /// The network's outputs for the batch `x` into `out` (the generated `forward`).
    fn outputs_at(&self, x: &Self::Input, out: &mut Self::Outputs) -> Result<(), NetError>;
    /// The batch loss.
    fn loss_at(&self, x: &Self::Input, t: &Self::Target) -> Result<Self::Scalar, NetError>;
    /// The batch loss and its gradient.
    fn gradient_into(
        &self,
        ws: &mut Self::Workspace,
        x: &Self::Input,
        t: &Self::Target,
        g: &mut Self::Vector,
    ) -> Result<Self::Scalar, NetError>;
    /// The exact Hessian-vector product `H v`.
    fn hvp_into(
        &self,
        ws: &mut Self::Workspace,
        x: &Self::Input,
        t: &Self::Target,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), NetError>;
    /// The Gauss-Newton-vector product `G v`.
    fn ggn_vp_into(
        &self,
        ws: &mut Self::Workspace,
        x: &Self::Input,
        t: &Self::Target,
        v: &Self::Vector,
        out: &mut Self::Vector,
    ) -> Result<(), NetError>;
    /// Fills `h` with the exact Hessian's curvature at `(x, t)`.
    fn hessian_into(
        &self,
        h: &mut Self::Hessian,
        x: &Self::Input,
        t: &Self::Target,
    ) -> Result<(), NetError>;
    /// Fills `g` with the Gauss-Newton curvature at `(x, t)`.
    fn gauss_newton_into(
        &self,
        g: &mut Self::GaussNewton,
        x: &Self::Input,
        t: &Self::Target,
    ) -> Result<(), NetError>;
    /// The batch loss and its gradient into `grad`, then the Gauss-Newton curvature at
    /// `(x, t)` into `g` (as [`Model::gradient_into`] then [`Model::gauss_newton_into`]),
    /// with `scratch` or `g`'s own forward records as the gradient's workspace.
    fn gradient_gauss_newton_into(
        &self,
        scratch: &mut Self::GnScratch,
        g: &mut Self::GaussNewton,
        x: &Self::Input,
        t: &Self::Target,
        grad: &mut Self::Vector,
    ) -> Result<Self::Scalar, NetError>;

    /// Factors `storage` at `eps` after checking that it was filled at the parameters this
    /// network holds now: [`SolveError::NoCurvature`] for an empty storage,
    /// [`SolveError::Stale`] for one filled at other parameters.
    fn factor_current<'s, S>(
        &self,
        storage: &'s mut S,
        eps: Self::Scalar,
    ) -> Result<S::Factored<'s>, SolveError>
    where
        S: Factorable<Scalar = Self::Scalar, Vector = Self::Vector>,
    {
        fresh(storage.fingerprint(), self.fingerprint())?;
        storage.factor(eps)
    }

    /// [`Model::factor_current`] of `A + eps D^2` ([`Factorable::factor_scaled`], `D =
    /// diag(scale)`).
    fn factor_current_scaled<'s, S>(
        &self,
        storage: &'s mut S,
        eps: Self::Scalar,
        scale: &'s Self::Vector,
    ) -> Result<S::Factored<'s>, SolveError>
    where
        S: Factorable<Scalar = Self::Scalar, Vector = Self::Vector>,
    {
        fresh(storage.fingerprint(), self.fingerprint())?;
        storage.factor_scaled(eps, scale)
    }
}

/// A batch of outputs read as one flat slice, sample after sample (`[[T; O]; B]` as `O * B`
/// scalars: the column-major `O x B` matrix the curvature storages use).
pub trait FlatOutputs<T> {
    /// The outputs, sample after sample.
    fn flat(&self) -> &[T];
    /// The outputs, sample after sample, mutably.
    fn flat_mut(&mut self) -> &mut [T];
}

impl<T, const O: usize, const B: usize> FlatOutputs<T> for [[T; O]; B] {
    fn flat(&self) -> &[T] {
        self.as_flattened()
    }
    fn flat_mut(&mut self) -> &mut [T] {
        self.as_flattened_mut()
    }
}

/// The freshness check of [`Model::factor_current`] and [`Model::factor_current_scaled`]:
/// [`SolveError::NoCurvature`] for a storage filled at nothing (`stored` `None`),
/// [`SolveError::Stale`] for one filled at other parameters than `now`.
fn fresh(stored: Option<u64>, now: u64) -> Result<(), SolveError> {
    match stored {
        None => Err(SolveError::NoCurvature),
        Some(f) if f != now => Err(SolveError::Stale),
        Some(_) => Ok(()),
    }
}

macro_rules! storage_bytes {
    ($($opt:ident),*) => {$(
        impl<M: Model> $opt<M> {
            /// Size in bytes of this optimizer with the storage it owns, at compile time
            /// (`size_of::<Self>()`): what a `static` of it costs in RAM, for a budget
            /// checked by `const _: () = assert!(...)`.
            pub const BYTES: usize = core::mem::size_of::<Self>();
        }
    )*};
}
// (LevenbergMarquardt's BYTES is in lm.rs: it is generic over its scale storage too.)
storage_bytes!(DampedNewton, TrustRegion, Adam, Sgd);

macro_rules! constructors {
    ($($opt:ident$(<const $k:ident>)?($config:ident)),*) => {$(
        impl<M: Model $(, const $k: usize)?> $opt<M $(, $k)?> {
            /// A fresh optimizer: [`Self::ZERO`] configured with `config` (validated; the
            /// state starts as [`Self::configure`] describes).
            pub fn new(config: $config<M::Scalar>) -> Result<Self, ConfigError> {
                let mut o = Self::ZERO;
                o.configure(config)?;
                Ok(o)
            }

            /// [`Self::new`] on the heap, without building it on the stack first.
            #[cfg(feature = "alloc")]
            pub fn boxed(config: $config<M::Scalar>) -> Result<alloc::boxed::Box<Self>, ConfigError> {
                let mut o: alloc::boxed::Box<Self> = bytemuck::zeroed_box();
                o.configure(config)?;
                Ok(o)
            }
        }
    )*};
}
constructors!(
    LevenbergMarquardt(LmConfig),
    DampedNewton(NewtonConfig),
    TrustRegion(TrustRegionConfig),
    SaddleFreeNewton<const K>(SaddleFreeConfig),
    Adam(AdamConfig),
    Sgd(SgdConfig)
);

/// One step of an optimizer on one batch: the common interface of the five optimizers, for
/// a training loop that does not name them.
pub trait Optimizer<M: Model> {
    /// One step on the batch `(x, t)`: on success the network holds the new parameters
    /// (unchanged when the step was rejected); on error it holds the parameters it had.
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError>;
    /// The optimizer's name (`"Levenberg-Marquardt"`, ...).
    fn name(&self) -> &'static str;
}

/// What one optimizer step did. Every number is finite; what a method does not have is
/// `None`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport<T> {
    /// Whether the step was taken (otherwise the parameters are unchanged).
    pub accepted: bool,
    /// Loss before the step.
    pub loss_before: T,
    /// Loss at the parameters the net holds after the call, for the methods that evaluate
    /// it (the second-order ones; the first-order methods do not evaluate the new point).
    pub loss_after: Option<T>,
    /// Loss at the (last) trial point; `None` when there was no trial or its loss was not
    /// finite (first-order methods do not evaluate one).
    pub loss_trial: Option<T>,
    /// Reduction the local model predicted for the (last) trial step.
    pub predicted: Option<T>,
    /// `actual / predicted` for the (last) trial step.
    pub ratio: Option<T>,
    /// Damping `lambda` (Levenberg-Marquardt, damped Newton) or shift (trust region) of the
    /// (last) trial step.
    pub damping: Option<T>,
    /// Learning rate (first-order methods).
    pub learning_rate: Option<T>,
    /// Trust radius used for the step (trust region).
    pub radius: Option<T>,
    /// Euclidean norm of the (last) trial step (0 when no step was solved).
    pub step_norm: T,
    /// Euclidean norm of the gradient at the start of the step.
    pub gradient_norm: T,
    /// Curvature factorisations this call made (0 for first-order methods).
    pub factorizations: u32,
}

impl<T: Real> StepReport<T> {
    /// `loss_before - loss_trial`, when there was a trial with a finite loss.
    pub fn actual(&self) -> Option<T> {
        self.loss_trial.map(|l| self.loss_before - l)
    }

    /// A report for a step that solved nothing yet (second-order methods start from it).
    pub(crate) fn start(loss: T, gradient_norm: T) -> Self {
        StepReport {
            accepted: false,
            loss_before: loss,
            loss_after: Some(loss),
            loss_trial: None,
            predicted: None,
            ratio: None,
            damping: None,
            learning_rate: None,
            radius: None,
            step_norm: T::ZERO,
            gradient_norm,
            factorizations: 0,
        }
    }
}

fn opt<T: Real>(f: &mut fmt::Formatter<'_>, name: &str, v: Option<T>) -> fmt::Result {
    match v {
        Some(v) => write!(f, ", {name} {:.3e}", v.to_f64()),
        None => Ok(()),
    }
}

impl<T: Real> fmt::Display for StepReport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} loss {:.6e}",
            if self.accepted {
                "accepted"
            } else {
                "rejected"
            },
            self.loss_before.to_f64(),
        )?;
        if let Some(after) = self.loss_after {
            write!(f, " -> {:.6e}", after.to_f64())?;
        }
        opt(f, "trial", self.loss_trial)?;
        opt(f, "predicted", self.predicted)?;
        opt(f, "ratio", self.ratio)?;
        opt(f, "damping", self.damping)?;
        opt(f, "lr", self.learning_rate)?;
        opt(f, "radius", self.radius)?;
        write!(
            f,
            ", |step| {:.3e}, |g| {:.3e}, {} factorizations",
            self.step_norm.to_f64(),
            self.gradient_norm.to_f64(),
            self.factorizations
        )
    }
}

/// `Err` naming `field` unless `ok`.
pub(crate) fn require<T: Real>(
    field: &'static str,
    value: T,
    ok: bool,
    requirement: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            value: value.to_f64(),
            requirement,
        })
    }
}

/// A positive finite value.
pub(crate) fn positive<T: Real>(field: &'static str, v: T) -> Result<(), ConfigError> {
    require(field, v, v.finite() && v > T::ZERO, "positive and finite")
}

/// A damping range: `lambda_min`, `lambda` and `lambda_max` positive and finite, with
/// `lambda_min <= lambda <= lambda_max` (the fields are named `lambda_min`, `lambda`,
/// `lambda_max`).
pub(crate) fn damping_range<T: Real>(
    lambda_min: T,
    lambda: T,
    lambda_max: T,
) -> Result<(), ConfigError> {
    positive("lambda_min", lambda_min)?;
    positive("lambda_max", lambda_max)?;
    require(
        "lambda_max",
        lambda_max,
        lambda_max >= lambda_min,
        "at least lambda_min",
    )?;
    positive("lambda", lambda)?;
    require(
        "lambda",
        lambda,
        lambda >= lambda_min && lambda <= lambda_max,
        "between lambda_min and lambda_max",
    )
}

/// A count of at least 1.
pub(crate) fn at_least_one(field: &'static str, n: u32) -> Result<(), ConfigError> {
    require(field, f64::from(n), n >= 1, "at least 1")
}

/// A value in `[0, 1)`.
pub(crate) fn unit<T: Real>(field: &'static str, v: T) -> Result<(), ConfigError> {
    require(field, v, v >= T::ZERO && v < T::ONE, "in [0, 1)")
}

/// The trial shared by Levenberg-Marquardt and damped Newton once `d = (A + lambda I)^{-1} g`
/// is solved (`A` = G or H): the step `-d` (written back into `d`) is tried from `base`; it
/// is accepted when the ratio of the actual to the predicted reduction exceeds `eta`. The
/// trial point stays in the net either way; the caller restores `base` on rejection.
/// `curvature` is `d'Ad` measured with the exact product when the caller has it (the
/// predicted reduction is then the model's own, not the one the solve's equation implies).
#[allow(clippy::too_many_arguments)]
pub(crate) fn damped_trial<M: Model>(
    net: &mut M,
    x: &M::Input,
    t: &M::Target,
    report: &mut StepReport<M::Scalar>,
    lambda: M::Scalar,
    eta: M::Scalar,
    g: &M::Vector,
    d: &mut M::Vector,
    base: &M::Vector,
    trial: &mut M::Vector,
    curvature: Option<M::Scalar>,
) {
    for v in d.as_mut() {
        *v = -*v;
    }
    let step_norm = norm(d.as_ref());
    let pred = if step_norm > M::Scalar::ZERO {
        let gd = dot(g.as_ref(), d.as_ref()) / step_norm;
        match curvature {
            // The model's own reduction -(g'd + d'Ad/2) with d'Ad measured by the exact
            // product: right whatever the solve's residual.
            Some(dad) => (-gd - M::Scalar::c(0.5) * (dad / step_norm)) * step_norm,
            // With (A + lambda I) d = -g: -(g'd + d'Ad/2) = (lambda |d|^2 - g'd) / 2,
            // evaluated as |d| (lambda |d| - g'd / |d|) / 2 so that a long step does not
            // overflow.
            None => (lambda * step_norm - gd) * step_norm * M::Scalar::c(0.5),
        }
    } else {
        M::Scalar::ZERO
    };
    let loss_trial = try_point(net, x, t, base, d, trial);
    let loss0 = report.loss_before;
    let pred = pred.finite().then_some(pred);
    let ratio = match (loss_trial, pred) {
        (Some(l), Some(p)) if p > M::Scalar::ZERO => Some((loss0 - l) / p).filter(|r| r.finite()),
        _ => None,
    };
    let accepted = ratio.is_some_and(|r| r > eta);
    report.accepted = accepted;
    report.loss_trial = loss_trial;
    report.loss_after = Some(if accepted {
        loss_trial.unwrap_or(loss0)
    } else {
        loss0
    });
    report.predicted = pred;
    report.ratio = ratio;
    report.damping = Some(lambda);
    report.step_norm = if step_norm.finite() {
        step_norm
    } else {
        M::Scalar::MAX
    };
}

/// The trial point `p + d` is written into the net; returns its loss or `None` when the net
/// rejects it or its loss is not finite (a failed trial).
pub(crate) fn try_point<M: Model>(
    net: &mut M,
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
    match net.loss_at(x, t) {
        Ok(l) if l.finite() => Some(l),
        _ => None,
    }
}

/// The damping update of Nielsen (1999) used by LM and damped Newton: on acceptance
/// `lambda *= max(1/3, 1 - (2 rho - 1)^3)`, on rejection `lambda *= nu, nu *= 2`.
pub(crate) fn nielsen<T: Real>(
    lambda: &mut T,
    nu: &mut T,
    ratio: Option<T>,
    accepted: bool,
    min: T,
    max: T,
) {
    let two = T::c(2.0);
    match ratio {
        Some(ratio) if accepted => {
            let x = two * ratio - T::ONE;
            let f = (T::ONE - x * x * x).max(T::c(1.0 / 3.0));
            *lambda *= f;
            *nu = two;
        }
        _ => {
            *lambda *= *nu;
            // (nu may grow to infinity after many rejections; lambda is clamped below)
            *nu *= two;
        }
    }
    *lambda = lambda.max(min).min(max);
}
