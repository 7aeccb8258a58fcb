//! Levenberg-Marquardt on the exact Gauss-Newton matrix.

use super::{damped_trial, nielsen, positive, require, FlatOutputs, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::ggn::GgnMethod;
use crate::linalg::kernels::dot;
use crate::real::{norm, Real};
use crate::solver::{Factorable, Factorization};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`LevenbergMarquardt`]; the defaults are those of [`LmConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// Refinement steps of each solve (default 2). Unused where the Woodbury form solves for
    /// the gradient directly ([`Factorization::solve_gradient`], every LM step on a Woodbury
    /// net with a built-in loss), which needs none.
    pub refine_steps: u32,
    /// How `lambda` is chosen (default [`LmDamping::Nielsen`]).
    pub damping: LmDamping,
    /// Initial step bound `Delta` as a multiple of the parameters' norm (`Delta = factor
    /// |x0|`, or `factor` at `x0 = 0`), MINPACK's `factor` (default 100; positive, finite).
    /// Only for [`LmDamping::StepBound`].
    pub radius_factor: T,
    /// Relative tolerance on the step length: `lambda` solves `| |p(lambda)| - Delta | <=
    /// tol Delta` (default 0.1, MINPACK's; in `(0, 1)`). Only for [`LmDamping::StepBound`].
    pub boundary_tol: T,
    /// Factorisations per step-bound subproblem (default 10, MINPACK's; at least 1). Only
    /// for [`LmDamping::StepBound`].
    pub max_subproblem: u32,
    /// The damping's metric (default [`LmScaling::Identity`]): `G + lambda D^2`, and the
    /// step bound on `|D p|`. [`LmScaling::ColumnNorms`] takes 2.5x to 4x fewer steps on
    /// `examples/fit_regression` (24 instead of 59 with Nielsen's damping, 16 instead of 65
    /// with the step bound) but each step costs `3 M` more passes (the column norms and the
    /// scaled Gram matrix), up to 2x the wall time there; it needs the Woodbury form.
    pub scaling: LmScaling,
    /// Geodesic acceleration of each trial step (default `None`): see [`Geodesic`]. Only
    /// for [`LmDamping::Nielsen`] on a net with the Woodbury Gauss-Newton form.
    pub geodesic: Option<Geodesic<T>>,
}

/// Geodesic acceleration (Transtrum and Sethna 2012) of a [`LevenbergMarquardt`] trial:
/// with the velocity `v = -(G + lambda D^2)^{-1} g`, the outputs' second directional
/// derivative along `v` by one more forward pass, `u'' = (2/h) ((u(p + h v) - u(p))/h -
/// J v)`, the acceleration `a = -(G + lambda D^2)^{-1} J'Hl u''` (the same factorisation,
/// in the Woodbury form that does not divide by lambda), and the trial step `v + a/2` when
/// `2 |D a| / |D v| <= alpha`. When the test fails (or the point `p + h v` or the solve
/// is unusable) the trial is `v` alone: Transtrum's rule, which rejects the trial and
/// raises lambda instead, took more steps on `examples/lm_geodesic` (median 25 against 19
/// with column norms). The predicted reduction is the Gauss-Newton model's at the step
/// taken, with its curvature measured by the exact product.
///
/// Cost per trial: two forward passes, one tangent and one adjoint pass and an `M x M`
/// solve, and one more exact product.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Geodesic<T> {
    /// Largest ratio `2 |D a| / |D v|` of the acceleration's term to the velocity that is
    /// taken (default 0.75, Transtrum's; positive and finite).
    pub alpha: T,
    /// The finite-difference step along `v` (default 0.1, Transtrum's; in `(0, 1]`).
    pub h: T,
}

impl<T: Real> Default for Geodesic<T> {
    /// `alpha` 0.75, `h` 0.1.
    fn default() -> Self {
        Geodesic {
            alpha: T::c(0.75),
            h: T::c(0.1),
        }
    }
}

/// The diagonal `D` of [`LevenbergMarquardt`]'s damping `G + lambda D^2` (and of its step
/// bound `|D p| <= Delta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LmScaling {
    /// `D = I` (MINPACK's `mode = 2` with `diag = 1`).
    Identity,
    /// MINPACK's `mode = 1`: `D_j` the largest norm of column `j` of the Jacobian `C'J`
    /// seen so far (`sqrt(G_jj)`, the row norms of the Woodbury `U`; a column that was zero
    /// at the first step gets 1). Needs the Woodbury Gauss-Newton form (a Riccati net is
    /// refused with a [`ConfigError`] naming `scaling`) and storage for `D` (the default
    /// [`ColumnScale`]; [`NoScale`] has none).
    ColumnNorms,
    /// Marquardt's (1963) scaling: `D_j` the norm of column `j` of the Jacobian at the
    /// current step (`D^2 = diag G`, not the running maximum; a column that is zero keeps its
    /// previous entry, or 1). Same requirements as [`LmScaling::ColumnNorms`].
    Marquardt,
}

/// Where a [`LevenbergMarquardt`] keeps its scaling `D` (`N` scalars): [`ColumnScale`]
/// (the default) or [`NoScale`] (zero bytes, [`LmScaling::Identity`] only), for a
/// RAM-bounded target that cannot spare them.
pub trait ScaleStorage<V>: ConstZero + bytemuck::Zeroable {
    /// The vector, if this storage has one.
    fn vector(&self) -> Option<&V>;
    /// The vector, mutably, if this storage has one.
    fn vector_mut(&mut self) -> Option<&mut V>;
}

/// Storage for the column scaling `D` of [`LmScaling::ColumnNorms`].
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct ColumnScale<V>(pub V);

/// No storage for a scaling: the optimizer runs with [`LmScaling::Identity`] only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScale;

// SAFETY: a transparent wrapper of a `Zeroable` vector; a unit struct.
unsafe impl<V: bytemuck::Zeroable> bytemuck::Zeroable for ColumnScale<V> {}
unsafe impl bytemuck::Zeroable for NoScale {}

impl<V: ConstZero> ConstZero for ColumnScale<V> {
    const ZERO: Self = ColumnScale(V::ZERO);
}
impl ConstZero for NoScale {
    const ZERO: Self = NoScale;
}
impl<V: ConstZero + bytemuck::Zeroable> ScaleStorage<V> for ColumnScale<V> {
    fn vector(&self) -> Option<&V> {
        Some(&self.0)
    }
    fn vector_mut(&mut self) -> Option<&mut V> {
        Some(&mut self.0)
    }
}
impl<V> ScaleStorage<V> for NoScale {
    fn vector(&self) -> Option<&V> {
        None
    }
    fn vector_mut(&mut self) -> Option<&mut V> {
        None
    }
}

/// How [`LevenbergMarquardt`] chooses its damping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LmDamping {
    /// Nielsen's (1999) multiplicative update of `lambda` from the ratio of actual to
    /// predicted reduction.
    Nielsen,
    /// MINPACK's `lmder` (More 1978): a step bound `Delta` updated from the ratio (halved
    /// or cut by quadratic interpolation below 0.25, doubled to `2 |p|` above 0.75), and
    /// `lambda` the root of the secular equation `|D p(lambda)| = Delta` by Newton on
    /// `1/|D p| - 1/Delta` (one factorisation and two solves per iterate, safeguarded in
    /// `[0, |D^{-1} g|/Delta]`); the Gauss-Newton step (`lambda = lambda_min`, tried first
    /// as MINPACK's `lmpar` does) when `|D p| <= (1 + boundary_tol) Delta`. `D` is [`LmConfig::scaling`]'s (MINPACK's `mode = 1` with
    /// [`LmScaling::ColumnNorms`], `mode = 2` with `diag = 1` with [`LmScaling::Identity`]).
    StepBound,
}

impl<T: Real> Default for LmConfig<T> {
    /// `lambda` 1e-3, `lambda_min` 1e-12, `lambda_max` 1e12, `eta` 1e-4, `max_trials` 4,
    /// `refine_steps` 2, `damping` [`LmDamping::Nielsen`], `radius_factor` 100,
    /// `boundary_tol` 0.1, `max_subproblem` 10, `scaling` [`LmScaling::Identity`],
    /// `geodesic` `None`.
    fn default() -> Self {
        LmConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-12),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_trials: 4,
            refine_steps: 2,
            damping: LmDamping::Nielsen,
            radius_factor: T::c(100.0),
            boundary_tol: T::c(0.1),
            max_subproblem: 10,
            scaling: LmScaling::Identity,
            geodesic: None,
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
    /// With this damping control.
    pub fn with_damping(mut self, damping: LmDamping) -> Self {
        self.damping = damping;
        self
    }
    /// With this initial step bound factor.
    pub fn with_radius_factor(mut self, factor: T) -> Self {
        self.radius_factor = factor;
        self
    }
    /// With this step-length tolerance.
    pub fn with_boundary_tol(mut self, tol: T) -> Self {
        self.boundary_tol = tol;
        self
    }
    /// With this many factorisations per step-bound subproblem.
    pub fn with_max_subproblem(mut self, n: u32) -> Self {
        self.max_subproblem = n;
        self
    }
    /// With this damping metric.
    pub fn with_scaling(mut self, scaling: LmScaling) -> Self {
        self.scaling = scaling;
        self
    }
    /// With geodesic acceleration of each trial ([`Geodesic::default`] for Transtrum's
    /// settings).
    pub fn with_geodesic(mut self, geodesic: Geodesic<T>) -> Self {
        self.geodesic = Some(geodesic);
        self
    }

    /// Checks every setting: positive finite dampings with `lambda_min <= lambda <=
    /// lambda_max`, `eta` in `[0, 1)`, at least one trial; a positive finite
    /// `radius_factor`, `boundary_tol` in `(0, 1)`, at least one subproblem factorisation;
    /// with [`Self::geodesic`], Nielsen's damping, a positive finite `alpha` and `h` in
    /// `(0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::damping_range(self.lambda_min, self.lambda, self.lambda_max)?;
        super::unit("eta", self.eta)?;
        super::at_least_one("max_trials", self.max_trials)?;
        positive("radius_factor", self.radius_factor)?;
        require(
            "boundary_tol",
            self.boundary_tol,
            self.boundary_tol > T::ZERO && self.boundary_tol < T::ONE,
            "in (0, 1)",
        )?;
        super::at_least_one("max_subproblem", self.max_subproblem)?;
        if let Some(geo) = self.geodesic {
            positive("geodesic.alpha", geo.alpha)?;
            require(
                "geodesic.h",
                geo.h,
                geo.h > T::ZERO && geo.h <= T::ONE,
                "in (0, 1]",
            )?;
            if self.damping != LmDamping::Nielsen {
                return Err(ConfigError {
                    field: "geodesic",
                    value: 1.0,
                    requirement: "None with LmDamping::StepBound: the step-bound control solves for |D p| = Delta, which an accelerated step would not keep (use LmDamping::Nielsen)",
                });
            }
        }
        Ok(())
    }
}

/// Levenberg-Marquardt: `d = -(G + lambda I)^{-1} g` with the net's exact Gauss-Newton
/// solve, accepted when the ratio of actual to predicted reduction exceeds `eta`; `lambda`
/// follows Nielsen's update. The predicted reduction is the Gauss-Newton model's own,
/// `-(g'd + d'G d / 2)` with `d'G d` from the exact product, so a refined solve that cannot
/// vouch for its result ([`SolveError::Inaccurate`]: neither its relative residual within
/// `sqrt(EPSILON)` nor its backward error within `N EPSILON`) is still tried as a step when
/// its relative residual is below 1/2 (Nielsen's control; the step-bound control needs
/// `|d|` to working accuracy and keeps such a solve a failed iterate); a solve that is
/// singular, overflows or misses by more is a failed trial that raises `lambda`.
///
/// Owns the Gauss-Newton storage of `M` and the scratch its fill needs ([`Model::GnScratch`]:
/// nothing for the Woodbury form, which lends its own records), nothing of the exact Hessian.
///
/// ```
/// use tall_skinny::prelude::*;
/// use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
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
/// let mut net = Fit::init(1);
/// let mut lm = LevenbergMarquardt::<Fit>::new(LmConfig::default())?;
/// let first = lm.step(&mut net, &x, &t)?;
/// for _ in 0..30 {
///     lm.step(&mut net, &x, &t)?;
/// }
/// assert!(net.loss(&x, &t)? < 1e-3 * first.loss_before);
/// assert!(lm.lambda() > 0.0); // the damping it ended at
/// // Out-of-range settings are refused when the optimizer is built.
/// assert!(LevenbergMarquardt::<Fit>::new(LmConfig::default().with_eta(2.0)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LevenbergMarquardt<M: Model, S = ColumnScale<<M as Model>::Vector>> {
    config: LmConfig<M::Scalar>,
    lambda: M::Scalar,
    nu: M::Scalar,
    /// Step bound (step-bound control; 0 until the first step sets it from the parameters).
    radius: M::Scalar,
    /// `d'G d` of the solved step, measured with the exact product.
    curvature: M::Scalar,
    scratch: M::GnScratch,
    ggn: M::GaussNewton,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
    /// The scaling `D` ([`LmScaling::ColumnNorms`]; zero until the first step sets it).
    scale: S,
    /// Whether the last trial took a geodesic acceleration.
    accelerated: bool,
}

// SAFETY: every field is `Zeroable` (the configs are scalars and integers; the storages and
// vectors by `Model`'s bounds, the scale by `ScaleStorage`'s); an all-zero optimizer is
// unconfigured and its `step` fails.
unsafe impl<M: Model, S: ScaleStorage<M::Vector>> bytemuck::Zeroable for LevenbergMarquardt<M, S> where
    M::Scalar: bytemuck::Zeroable
{
}

impl<M: Model, S: ScaleStorage<M::Vector>> LevenbergMarquardt<M, S> {
    /// Size in bytes of this optimizer with the storage it owns, at compile time
    /// (`size_of::<Self>()`): what a `static` of it costs in RAM, for a budget checked by
    /// `const _: () = assert!(...)`.
    pub const BYTES: usize = core::mem::size_of::<Self>();

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
            damping: LmDamping::Nielsen,
            radius_factor: M::Scalar::ZERO,
            boundary_tol: M::Scalar::ZERO,
            max_subproblem: 0,
            scaling: LmScaling::Identity,
            geodesic: None,
        },
        lambda: M::Scalar::ZERO,
        nu: M::Scalar::ZERO,
        radius: M::Scalar::ZERO,
        curvature: M::Scalar::ZERO,
        scratch: M::GnScratch::ZERO,
        ggn: M::GaussNewton::ZERO,
        g: M::Vector::ZERO,
        d: M::Vector::ZERO,
        base: M::Vector::ZERO,
        trial: M::Vector::ZERO,
        scale: S::ZERO,
        accelerated: false,
    };

    /// Validates and takes the settings, and restarts (damping from `config.lambda`, the
    /// scaling `D` from the next step's column norms). Besides [`LmConfig::validate`]:
    /// [`LmScaling::ColumnNorms`] needs the Woodbury Gauss-Newton form and a
    /// [`ColumnScale`] storage (a [`ConfigError`] naming `scaling` otherwise).
    pub fn configure(&mut self, config: LmConfig<M::Scalar>) -> Result<(), ConfigError> {
        self.check(&config)?;
        self.config = config;
        self.lambda = config.lambda;
        self.nu = M::Scalar::c(2.0);
        self.radius = M::Scalar::ZERO;
        if let Some(d) = self.scale.vector_mut() {
            *d = M::Vector::ZERO;
        }
        Ok(())
    }

    /// [`LmConfig::validate`] and the scaling's requirements on the net and the storage.
    fn check(&self, config: &LmConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        if config.geodesic.is_some() && M::GGN_METHOD == GgnMethod::Riccati {
            return Err(ConfigError {
                field: "geodesic",
                value: 1.0,
                requirement: "None for this net: its Gauss-Newton form is Riccati, for which the acceleration's solve is not built (geodesic acceleration needs GgnMethod::Woodbury)",
            });
        }
        if config.scaling != LmScaling::Identity {
            if M::GGN_METHOD == GgnMethod::Riccati {
                return Err(ConfigError {
                    field: "scaling",
                    value: 1.0,
                    requirement: "Identity for this net: its Gauss-Newton form is Riccati, whose blocks cannot take a diagonal scaling D (ColumnNorms needs GgnMethod::Woodbury)",
                });
            }
            if self.scale.vector().is_none() {
                return Err(ConfigError {
                    field: "scaling",
                    value: 1.0,
                    requirement: "Identity for LevenbergMarquardt<M, NoScale>, which has no storage for D (a scaling needs the default ColumnScale)",
                });
            }
        }
        Ok(())
    }

    /// The scaling `D` ([`LmScaling::ColumnNorms`]; `None` with [`NoScale`] or the identity).
    pub fn scale(&self) -> Option<&M::Vector> {
        active(&self.scale, self.config.scaling)
    }

    /// The settings.
    pub fn config(&self) -> &LmConfig<M::Scalar> {
        &self.config
    }

    /// The current damping.
    pub fn lambda(&self) -> M::Scalar {
        self.lambda
    }

    /// The current step bound `Delta` ([`LmDamping::StepBound`]; 0 before the first step).
    pub fn radius(&self) -> M::Scalar {
        self.radius
    }

    /// The gradient at the start of the last step.
    pub fn gradient(&self) -> &M::Vector {
        &self.g
    }

    /// Whether the last trial step was geodesically accelerated ([`LmConfig::geodesic`]).
    pub fn accelerated(&self) -> bool {
        self.accelerated
    }

    /// One step on the batch `(x, t)`: gradient, Gauss-Newton curvature, then up to
    /// `max_trials` damped solves until one is accepted.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        self.check(&self.config).map_err(SolveError::Config)?;
        let c = self.config;
        let loss0 =
            net.gradient_gauss_newton_into(&mut self.scratch, &mut self.ggn, x, t, &mut self.g)?;
        net.get_params(&mut self.base);
        let mut report = StepReport::start(loss0, norm(self.g.as_ref()));
        if c.scaling != LmScaling::Identity {
            self.update_scale(c.scaling == LmScaling::Marquardt)?;
        }
        if c.damping == LmDamping::StepBound {
            return self.step_bound(net, x, t, report);
        }
        for k in 0..c.max_trials {
            let lambda = self.lambda;
            report.factorizations = k + 1;
            report.damping = Some(lambda);
            let scale = active(&self.scale, c.scaling);
            self.accelerated = false;
            let solved = match factor(net, &mut self.ggn, scale, lambda) {
                Ok(mut f) => trial_solve(
                    &mut f,
                    &self.g,
                    &mut self.d,
                    &mut self.trial,
                    lambda,
                    scale,
                    c.refine_steps,
                    USABLE_RESIDUAL,
                )
                .and_then(|plain| {
                    let Some(geo) = c.geodesic else {
                        return Ok(plain);
                    };
                    let (d, trial) = (&mut self.d, &mut self.trial);
                    let acc = accelerate(net, x, &mut f, geo, &self.base, d, trial, lambda, scale)?;
                    self.accelerated = acc.is_some();
                    Ok(acc.map_or(plain, |curvature| Solved {
                        curvature,
                        secular: None,
                    }))
                }),
                Err(e) => Err(e),
            };
            let solved = match solved {
                Ok(s) => s,
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
            };
            self.curvature = solved.curvature;
            self.try_step(net, x, t, &mut report);
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

    /// `D = max(D, sqrt(diag G))` entrywise (MINPACK's `mode = 1`), or `D = sqrt(diag G)`
    /// where it is positive (`current`, Marquardt's); an entry still zero, a Jacobian column
    /// zero from the start, becomes 1. `trial` is the scratch.
    fn update_scale(&mut self, current: bool) -> Result<(), SolveError> {
        self.ggn.diag_into(&mut self.trial)?;
        if let Some(d) = self.scale.vector_mut() {
            for (di, gi) in d.as_mut().iter_mut().zip(self.trial.as_ref()) {
                let n = gi.max(M::Scalar::ZERO).sqrt();
                if n > *di || (current && n > M::Scalar::ZERO) {
                    *di = n;
                }
                if !(*di > M::Scalar::ZERO) {
                    *di = M::Scalar::ONE;
                }
            }
        }
        Ok(())
    }

    /// The trial of the solved step `d` at the damping in `report.damping`, with `d'G d =
    /// self.curvature` (both damping controls): [`damped_trial`] on the optimizer's vectors.
    fn try_step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
        report: &mut StepReport<M::Scalar>,
    ) {
        let lambda = report.damping.unwrap_or(self.lambda);
        damped_trial(
            net,
            x,
            t,
            report,
            lambda,
            self.config.eta,
            &self.g,
            &mut self.d,
            &self.base,
            &mut self.trial,
            Some(self.curvature),
        );
    }

    /// The trials of one [`LmDamping::StepBound`] step (gradient, curvature and `base` are
    /// set): each solves the step-bound subproblem, tries the step and updates `Delta`.
    fn step_bound(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
        mut report: StepReport<M::Scalar>,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        let c = self.config;
        let (half, two, tenth) = (M::Scalar::c(0.5), M::Scalar::c(2.0), M::Scalar::c(0.1));
        let first = !(self.radius > M::Scalar::ZERO);
        if first {
            let xn = scaled_norm(&self.base, active(&self.scale, c.scaling));
            self.radius = if xn > M::Scalar::ZERO {
                c.radius_factor * xn
            } else {
                c.radius_factor
            };
            if !self.radius.finite() {
                self.radius = M::Scalar::MAX;
            }
        }
        for k in 0..c.max_trials {
            report.radius = Some(self.radius);
            if !self.bounded_step(net, &mut report)? {
                // No damping up to lambda_max gave a usable solve: a failed trial.
                self.radius *= M::Scalar::c(0.25);
                self.lambda = c.lambda_max;
                continue;
            }
            let lambda = self.lambda;
            report.damping = Some(lambda);
            self.try_step(net, x, t, &mut report);
            // MINPACK's update of the step bound and of lambda (on |D p|).
            let pn = scaled_norm(&self.d, active(&self.scale, c.scaling));
            let pn = if pn.finite() { pn } else { M::Scalar::MAX };
            if first && k == 0 && pn < self.radius {
                // MINPACK: the first iteration's bound is at most its step's length.
                self.radius = pn;
            }
            match report.ratio {
                Some(r) if r >= M::Scalar::c(0.25) => {
                    if r >= M::Scalar::c(0.75) || lambda <= c.lambda_min {
                        self.radius = two * pn;
                        self.lambda = half * lambda;
                    }
                }
                _ => {
                    // Quadratic interpolation of the loss along the step when it rose.
                    let gd = dot(self.g.as_ref(), self.d.as_ref());
                    let mut temp = match report.actual() {
                        Some(a) if a < M::Scalar::ZERO => {
                            let t = gd / (two * (a + gd));
                            if t.finite() {
                                t
                            } else {
                                tenth
                            }
                        }
                        Some(_) => half,
                        None => tenth,
                    };
                    if let Some(l) = report.loss_trial {
                        // MINPACK's `p1 * fnorm1 >= fnorm` on the residual norms: the loss
                        // (their square) rose at least 100-fold.
                        if M::Scalar::c(0.01) * l >= report.loss_before {
                            temp = tenth;
                        }
                    }
                    let temp = temp.max(tenth).min(half);
                    self.radius = temp * self.radius.min(M::Scalar::c(10.0) * pn);
                    self.lambda = lambda / temp;
                }
            }
            self.lambda = self.lambda.max(c.lambda_min).min(c.lambda_max);
            self.radius = self.radius.max(M::Scalar::MIN_POSITIVE);
            if report.accepted {
                return Ok(report);
            }
            net.put_params(&self.base)?;
        }
        Ok(report)
    }

    /// Solves the step-bound subproblem at `Delta = self.radius`: `d = (G + lambda D^2)^{-1}
    /// g` with `| |D d| - Delta | <= boundary_tol Delta`, or `lambda = lambda_min` when that
    /// step is shorter than `Delta` (Newton on `1/|D d| - 1/Delta` from the previous
    /// `lambda`, its derivative from `(D^2 d)'(G + lambda D^2)^{-1} (D^2 d)`, safeguarded in
    /// `[lo, hi]`, `hi = |D^{-1} g| / Delta`). Sets `self.lambda` and `self.d` to the last
    /// usable iterate; `false` when no iterate was usable.
    fn bounded_step(
        &mut self,
        net: &mut M,
        report: &mut StepReport<M::Scalar>,
    ) -> Result<bool, SolveError> {
        let c = self.config;
        let delta = self.radius;
        let ten = M::Scalar::c(10.0);
        let mut lo = M::Scalar::ZERO;
        let gn = match active(&self.scale, c.scaling) {
            None => report.gradient_norm,
            Some(s) => {
                let mut acc = M::Scalar::ZERO;
                for (gi, di) in self.g.as_ref().iter().zip(s.as_ref()) {
                    let v = *gi / *di;
                    acc += v * v;
                }
                acc.sqrt()
            }
        };
        let mut hi = (gn / delta).max(c.lambda_min).min(c.lambda_max);
        if !hi.finite() {
            hi = c.lambda_max;
        }
        let guess = self.lambda.max(c.lambda_min).min(hi);
        // MINPACK's lmpar first tries the Gauss-Newton step (lambda_min here), taken when
        // |D p| <= (1 + tol) Delta; otherwise the iteration starts from the previous lambda.
        let mut gauss_newton = guess > c.lambda_min;
        let mut lam = if gauss_newton { c.lambda_min } else { guess };
        let fits = (M::Scalar::ONE + c.boundary_tol) * delta;
        let mut have = false;
        for _ in 0..c.max_subproblem {
            report.factorizations += 1;
            let scale = active(&self.scale, c.scaling);
            let solved = match factor(net, &mut self.ggn, scale, lam) {
                Ok(mut f) => {
                    let mut p = self.d;
                    match trial_solve(
                        &mut f,
                        &self.g,
                        &mut p,
                        &mut self.trial,
                        lam,
                        scale,
                        c.refine_steps,
                        // MINPACK's secular iteration needs |p(lambda)| to working accuracy:
                        // a solve that cannot vouch for it stays a failed iterate.
                        0.0,
                    ) {
                        Ok(
                            solved @ Solved {
                                secular: Some(qq), ..
                            },
                        ) => {
                            self.d = p;
                            self.curvature = solved.curvature;
                            Ok(Some(qq))
                        }
                        Ok(solved) => {
                            self.d = p;
                            self.curvature = solved.curvature;
                            // q = (G + lambda D^2)^{-1} D^2 d for the secular equation's
                            // derivative (p is free again: it receives q).
                            self.trial = self.d;
                            if let Some(s) = scale {
                                for (v, di) in self.trial.as_mut().iter_mut().zip(s.as_ref()) {
                                    *v *= *di * *di;
                                }
                            }
                            Ok(f.solve(&self.trial, &mut p)
                                .ok()
                                .map(|()| dot(self.trial.as_ref(), p.as_ref())))
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let qq = match solved {
                Ok(qq) => qq,
                Err(
                    SolveError::Singular { .. }
                    | SolveError::NonFiniteResult
                    | SolveError::Inaccurate { .. },
                ) if gauss_newton => {
                    // No usable Gauss-Newton step: the iteration from the previous lambda.
                    gauss_newton = false;
                    lo = lam;
                    lam = guess;
                    continue;
                }
                Err(
                    SolveError::Singular { .. }
                    | SolveError::NonFiniteResult
                    | SolveError::Inaccurate { .. },
                ) => {
                    // Not solvable to working accuracy at this damping: raise it.
                    if lam >= c.lambda_max {
                        break;
                    }
                    lo = lam;
                    if lam * ten > hi {
                        hi = (lam * ten).min(c.lambda_max);
                    }
                    lam = (lam * ten).min(hi);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let dn = scaled_norm(&self.d, active(&self.scale, c.scaling));
            if gauss_newton {
                gauss_newton = false;
                if dn.finite() && dn <= fits {
                    have = true;
                    self.lambda = lam;
                    break;
                }
                lo = lo.max(lam);
                lam = guess;
                continue;
            }
            have = true;
            self.lambda = lam;
            if !dn.finite() {
                break;
            }
            if (dn - delta).abs() <= c.boundary_tol * delta || (dn <= fits && lam <= c.lambda_min) {
                break;
            }
            if dn > delta {
                lo = lo.max(lam);
            } else {
                hi = hi.min(lam);
            }
            let newton = qq.and_then(|qq| {
                let next = lam + (dn / qq) * dn * ((dn - delta) / delta);
                (qq > M::Scalar::ZERO && next.finite()).then_some(next)
            });
            let mut next = newton.unwrap_or(M::Scalar::ZERO);
            if !(next > lo && next < hi) {
                next = if dn < delta && lo <= c.lambda_min {
                    // The Gauss-Newton step may fit.
                    c.lambda_min
                } else {
                    (lo.max(c.lambda_min) * hi).sqrt()
                };
            }
            let next = next.max(c.lambda_min).min(c.lambda_max);
            if next == lam {
                break;
            }
            lam = next;
        }
        Ok(have)
    }
}

/// The largest relative residual `|g - (G + lambda I) d| / |g|` of a refined solve that
/// cannot vouch for its result ([`SolveError::Inaccurate`]) that LM still tries as a step.
/// Refinement cannot take the residual below the rounding level of computing it, about
/// `u |G| |d| / |g|` (in f32 near a minimum 1e-3 to 1e-1 with `lambda` 1e-3, although the
/// step is accurate to 1e-5; the solve vouches for most such steps by their backward error):
/// such a step is tried, its predicted reduction measured with the exact product, and the
/// ratio test decides. Beyond this bound the step is a failed trial.
const USABLE_RESIDUAL: f64 = 0.5;

/// The scaling vector when `scaling` uses one (and the storage has it).
fn active<V, S: ScaleStorage<V>>(storage: &S, scaling: LmScaling) -> Option<&V> {
    match scaling {
        LmScaling::ColumnNorms | LmScaling::Marquardt => storage.vector(),
        LmScaling::Identity => None,
    }
}

/// `|D v|` (`|v|` without a scaling).
fn scaled_norm<T: Real, V: AsRef<[T]>>(v: &V, scale: Option<&V>) -> T {
    match scale {
        None => norm(v.as_ref()),
        Some(s) => {
            let mut acc = T::ZERO;
            for (vi, di) in v.as_ref().iter().zip(s.as_ref()) {
                let p = *vi * *di;
                acc += p * p;
            }
            acc.sqrt()
        }
    }
}

/// Factors `G + lambda D^2` (`G + lambda I` without a scaling) after the freshness check.
fn factor<'s, M: Model>(
    net: &M,
    ggn: &'s mut M::GaussNewton,
    scale: Option<&'s M::Vector>,
    lambda: M::Scalar,
) -> Result<<M::GaussNewton as Factorable>::Factored<'s>, SolveError> {
    match scale {
        None => net.factor_current(ggn, lambda),
        Some(s) => net.factor_current_scaled(ggn, lambda, s),
    }
}

/// Solves `(G + lambda D^2) d = g` into `d` for a trial step and returns `d'G d` measured
/// with the exact product (`scratch` receives `(G + lambda D^2) d`), and the secular term
/// `(D^2 d)'(G + lambda D^2)^{-1}(D^2 d)` when the solve measured it. The Woodbury form
/// solves for its own gradient without dividing by lambda
/// ([`Factorization::solve_gradient`], which also gives the secular term from its small
/// space); otherwise the solve is refined (at most `steps` corrections), and one that
/// cannot vouch for its result ([`SolveError::Inaccurate`]) but whose residual is below
/// `usable` ([`USABLE_RESIDUAL`] for Nielsen's control, 0 for the step-bound one) is still
/// a usable step. (`d'G d` is not taken from the small space: in f32 its terms lose digits
/// where lambda is below `u |U'U|`, the product's do not.)
#[allow(clippy::too_many_arguments)]
fn trial_solve<F: Factorization>(
    f: &mut F,
    g: &F::Vector,
    d: &mut F::Vector,
    scratch: &mut F::Vector,
    lambda: F::Scalar,
    scale: Option<&F::Vector>,
    steps: u32,
    usable: f64,
) -> Result<Solved<F::Scalar>, SolveError>
where
    F::Vector: AsRef<[F::Scalar]>,
{
    let secular = match f.solve_gradient(g, d)? {
        Some(terms) => Some(terms.secular),
        None => {
            match f.solve_refined(g, d, steps as usize) {
                Ok(_) => {}
                Err(SolveError::Inaccurate { residual, .. }) if residual < usable => {}
                Err(e) => return Err(e),
            }
            None
        }
    };
    Ok(Solved {
        curvature: curvature(f, d, scratch, lambda, scale)?,
        secular,
    })
}

/// Geodesic acceleration ([`Geodesic`]) of the solved step `d = (G + lambda D^2)^{-1} g`
/// (the velocity is `v = -d`; the net holds `base`): `Ok(Some(d'G d))` with `d` replaced by
/// `d + A/2`, `A = (G + lambda D^2)^{-1} J'Hl u''` (the trial step `v + a/2`, `a = -A`);
/// `Ok(None)` with `d` unchanged when there is no acceleration (the point `base + h v` or
/// its outputs are rejected, the solve has no route or fails, or `2 |D A| / |D v| >
/// alpha`); `Err` when the accelerated step's product overflows (a failed trial). The net
/// holds `base` again on return. Out of line: its two output buffers are on its own stack
/// frame, paid only when acceleration is on.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn accelerate<M: Model, F: Factorization<Scalar = M::Scalar, Vector = M::Vector>>(
    net: &mut M,
    x: &M::Input,
    f: &mut F,
    geo: Geodesic<M::Scalar>,
    base: &M::Vector,
    d: &mut M::Vector,
    scratch: &mut M::Vector,
    lambda: M::Scalar,
    scale: Option<&M::Vector>,
) -> Result<Option<M::Scalar>, SolveError> {
    // The outputs' change along v = -d: u(base + h v) - u(base).
    let mut u0 = M::Outputs::ZERO;
    let mut du = M::Outputs::ZERO;
    if net.outputs_at(x, &mut u0).is_err() {
        return Ok(None);
    }
    for ((p, b), di) in scratch
        .as_mut()
        .iter_mut()
        .zip(base.as_ref())
        .zip(d.as_ref())
    {
        *p = *b - geo.h * *di;
    }
    let moved = net.put_params(scratch).is_ok() && net.outputs_at(x, &mut du).is_ok();
    net.put_params(base)?;
    if !moved {
        return Ok(None);
    }
    for (o, z) in du.flat_mut().iter_mut().zip(u0.flat()) {
        *o -= *z;
    }
    // A = (G + lambda D^2)^{-1} J'Hl u'' with the velocity v = -d (negated in place and
    // back: exact).
    let negate = |d: &mut M::Vector| d.as_mut().iter_mut().for_each(|v| *v = -*v);
    negate(d);
    let solved = f.solve_geodesic(d, du.flat(), geo.h, scratch);
    negate(d);
    if !matches!(solved, Ok(true)) {
        return Ok(None);
    }
    let (an, vn) = (scaled_norm(scratch, scale), scaled_norm(d, scale));
    let half = M::Scalar::c(0.5);
    let fits = M::Scalar::c(2.0) * an <= geo.alpha * vn;
    let finite = d
        .as_ref()
        .iter()
        .zip(scratch.as_ref())
        .all(|(di, ai)| (*di + half * *ai).finite());
    if !(fits && finite) {
        return Ok(None);
    }
    for (di, ai) in d.as_mut().iter_mut().zip(scratch.as_ref()) {
        *di += half * *ai;
    }
    curvature(f, d, scratch, lambda, scale).map(Some)
}

/// `d'G d = d'(G + lambda D^2) d - lambda |D d|^2` with the exact product (`scratch`
/// receives `(G + lambda D^2) d`), clamped at 0; [`SolveError::NonFiniteResult`] when it
/// overflows.
fn curvature<F: Factorization>(
    f: &mut F,
    d: &F::Vector,
    scratch: &mut F::Vector,
    lambda: F::Scalar,
    scale: Option<&F::Vector>,
) -> Result<F::Scalar, SolveError>
where
    F::Vector: AsRef<[F::Scalar]>,
{
    f.apply(d, scratch)?;
    let dn = scaled_norm(d, scale);
    let dgd = dot(d.as_ref(), scratch.as_ref()) - lambda * dn * dn;
    if !dgd.finite() {
        return Err(SolveError::NonFiniteResult);
    }
    Ok(dgd.max(F::Scalar::ZERO))
}

/// What [`trial_solve`] measured of its step `d`.
#[derive(Clone, Copy, Debug)]
struct Solved<T> {
    /// `d'G d`, measured with the exact product.
    curvature: T,
    /// `(D^2 d)'(G + lambda D^2)^{-1}(D^2 d)`, when the solve measured it in its small
    /// space (the Woodbury gradient solve).
    secular: Option<T>,
}

impl<M: Model, S: ScaleStorage<M::Vector>> Optimizer<M> for LevenbergMarquardt<M, S> {
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
