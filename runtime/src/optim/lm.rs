//! Levenberg-Marquardt on the exact Gauss-Newton matrix.

use super::{damped_trial, nielsen, positive, require, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::linalg::kernels::dot;
use crate::real::{norm, Real};
use crate::solver::Factorization;
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
    /// Refinement steps of each solve (default 2).
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
    /// `lambda` the root of the secular equation `|p(lambda)| = Delta` by Newton on
    /// `1/|p| - 1/Delta` (one factorisation and two solves per iterate, safeguarded in
    /// `[0, |g|/Delta]`); the Gauss-Newton step (`lambda = lambda_min`) when it is shorter
    /// than `Delta`. The scaling is the identity (MINPACK's `mode = 2` with `diag = 1`).
    StepBound,
}

impl<T: Real> Default for LmConfig<T> {
    /// `lambda` 1e-3, `lambda_min` 1e-12, `lambda_max` 1e12, `eta` 1e-4, `max_trials` 4,
    /// `refine_steps` 2, `damping` [`LmDamping::Nielsen`], `radius_factor` 100,
    /// `boundary_tol` 0.1, `max_subproblem` 10.
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

    /// Checks every setting: positive finite dampings with `lambda_min <= lambda <=
    /// lambda_max`, `eta` in `[0, 1)`, at least one trial; a positive finite
    /// `radius_factor`, `boundary_tol` in `(0, 1)`, at least one subproblem factorisation.
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
        positive("radius_factor", self.radius_factor)?;
        require(
            "boundary_tol",
            self.boundary_tol,
            self.boundary_tol > T::ZERO && self.boundary_tol < T::ONE,
            "in (0, 1)",
        )?;
        require(
            "max_subproblem",
            T::c(f64::from(self.max_subproblem)),
            self.max_subproblem >= 1,
            "at least 1",
        )?;
        Ok(())
    }
}

/// Levenberg-Marquardt: `d = -(G + lambda I)^{-1} g` with the net's exact Gauss-Newton
/// solve, accepted when the ratio of actual to predicted reduction exceeds `eta`; `lambda`
/// follows Nielsen's update. The predicted reduction is the Gauss-Newton model's own,
/// `-(g'd + d'G d / 2)` with `d'G d` from the exact product, so a refined solve that cannot
/// vouch for its last digits ([`SolveError::Inaccurate`], common in f32 near a minimum,
/// where the residual's own rounding level is above `sqrt(EPSILON)`) is still tried as a
/// step when its relative residual is below 1/2 (Nielsen's control; the step-bound control
/// needs `|d|` to working accuracy and keeps such a solve a failed iterate); a solve that is
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
pub struct LevenbergMarquardt<M: Model> {
    config: LmConfig<M::Scalar>,
    lambda: M::Scalar,
    nu: M::Scalar,
    /// Step bound (step-bound control; 0 until the first step sets it from the parameters).
    radius: M::Scalar,
    /// `d'G d` of the last usable step-bound iterate (step-bound control).
    curvature: M::Scalar,
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
            damping: LmDamping::Nielsen,
            radius_factor: M::Scalar::ZERO,
            boundary_tol: M::Scalar::ZERO,
            max_subproblem: 0,
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
    };

    /// Validates and takes the settings, and restarts (damping from `config.lambda`).
    pub fn configure(&mut self, config: LmConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.lambda = config.lambda;
        self.nu = M::Scalar::c(2.0);
        self.radius = M::Scalar::ZERO;
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

    /// The current step bound `Delta` ([`LmDamping::StepBound`]; 0 before the first step).
    pub fn radius(&self) -> M::Scalar {
        self.radius
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
        if c.damping == LmDamping::StepBound {
            return self.step_bound(net, x, t, report);
        }
        for k in 0..c.max_trials {
            let lambda = self.lambda;
            report.factorizations = k + 1;
            report.damping = Some(lambda);
            let solved = match net.factor_current(&mut self.ggn, lambda) {
                Ok(mut f) => trial_solve(
                    &mut f,
                    &self.g,
                    &mut self.d,
                    &mut self.trial,
                    lambda,
                    c.refine_steps,
                    USABLE_RESIDUAL,
                ),
                Err(e) => Err(e),
            };
            let curvature = match solved {
                Ok(dgd) => dgd,
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
                Some(curvature),
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

impl<M: Model> LevenbergMarquardt<M> {
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
        if !(self.radius > M::Scalar::ZERO) {
            let xn = norm(self.base.as_ref());
            self.radius = if xn > M::Scalar::ZERO {
                c.radius_factor * xn
            } else {
                c.radius_factor
            };
            if !self.radius.finite() {
                self.radius = M::Scalar::MAX;
            }
        }
        for _ in 0..c.max_trials {
            report.radius = Some(self.radius);
            if !self.bounded_step(net, &mut report)? {
                // No damping up to lambda_max gave a usable solve: a failed trial.
                self.radius *= M::Scalar::c(0.25);
                self.lambda = c.lambda_max;
                continue;
            }
            let lambda = self.lambda;
            let curvature = self.curvature;
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
                Some(curvature),
            );
            // MINPACK's update of the step bound and of lambda.
            let pn = report.step_norm;
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
                        if tenth * l >= report.loss_before {
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

    /// Solves the step-bound subproblem at `Delta = self.radius`: `d = (G + lambda I)^{-1} g`
    /// with `| |d| - Delta | <= boundary_tol Delta`, or `lambda = lambda_min` when that step
    /// is shorter than `Delta` (Newton on `1/|d| - 1/Delta` from the previous `lambda`, its
    /// derivative from `d'(G + lambda I)^{-1} d`, safeguarded in `[lo, hi]`, `hi = |g| /
    /// Delta`). Sets `self.lambda` and `self.d` to the last usable iterate; `false` when no
    /// iterate was usable.
    fn bounded_step(
        &mut self,
        net: &mut M,
        report: &mut StepReport<M::Scalar>,
    ) -> Result<bool, SolveError> {
        let c = self.config;
        let delta = self.radius;
        let ten = M::Scalar::c(10.0);
        let mut lo = M::Scalar::ZERO;
        let mut hi = (report.gradient_norm / delta)
            .max(c.lambda_min)
            .min(c.lambda_max);
        if !hi.finite() {
            hi = c.lambda_max;
        }
        let mut lam = self.lambda.max(c.lambda_min).min(hi);
        let mut have = false;
        for _ in 0..c.max_subproblem {
            report.factorizations += 1;
            let solved = match net.factor_current(&mut self.ggn, lam) {
                Ok(mut f) => {
                    let mut p = self.d;
                    match trial_solve(
                        &mut f,
                        &self.g,
                        &mut p,
                        &mut self.trial,
                        lam,
                        c.refine_steps,
                        // MINPACK's secular iteration needs |p(lambda)| to working accuracy:
                        // a solve that cannot vouch for it stays a failed iterate.
                        0.0,
                    ) {
                        Ok(dgd) => {
                            self.d = p;
                            self.curvature = dgd;
                            // q = (G + lambda I)^{-1} d for the secular equation's derivative.
                            Ok(f.solve(&self.d, &mut self.trial)
                                .ok()
                                .map(|()| dot(self.d.as_ref(), self.trial.as_ref())))
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
            have = true;
            self.lambda = lam;
            let dn = norm(self.d.as_ref());
            if !dn.finite() {
                break;
            }
            if (dn - delta).abs() <= c.boundary_tol * delta || (dn < delta && lam <= c.lambda_min) {
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

/// The largest relative residual `|g - (G + lambda I) d| / |g|` of a refined solve that LM
/// still tries as a step. Refinement cannot take the residual below the rounding level of
/// computing it, about `u |G| |d| / |g|` (in f32 near a minimum 1e-3 to 1e-1 with `lambda`
/// 1e-3, above the solve's `sqrt(EPSILON)` vouch bound although the step is accurate to
/// 1e-5): such a step is tried, its predicted reduction measured with the exact product, and
/// the ratio test decides. Beyond this bound the step is a failed trial.
const USABLE_RESIDUAL: f64 = 0.5;

/// Solves `(G + lambda I) d = g` (refined, at most `steps` corrections) into `d` for a trial
/// step and returns `d'G d` measured with the exact product (`scratch` receives `(G +
/// lambda I) d`). A solve that cannot vouch for its result ([`SolveError::Inaccurate`]) but
/// whose residual is below `usable` ([`USABLE_RESIDUAL`] for Nielsen's control, 0 for the
/// step-bound one) is still a usable step.
fn trial_solve<F: Factorization>(
    f: &mut F,
    g: &F::Vector,
    d: &mut F::Vector,
    scratch: &mut F::Vector,
    lambda: F::Scalar,
    steps: u32,
    usable: f64,
) -> Result<F::Scalar, SolveError>
where
    F::Vector: AsRef<[F::Scalar]>,
{
    match f.solve_refined(g, d, steps as usize) {
        Ok(_) => {}
        Err(SolveError::Inaccurate { residual }) if residual < usable => {}
        Err(e) => return Err(e),
    }
    f.apply(d, scratch)?;
    let dn = norm(d.as_ref());
    let dgd = dot(d.as_ref(), scratch.as_ref()) - lambda * dn * dn;
    if !dgd.finite() {
        return Err(SolveError::NonFiniteResult);
    }
    Ok(dgd.max(F::Scalar::ZERO))
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
