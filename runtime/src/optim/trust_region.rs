//! Trust-region Newton on the exact Hessian. The subproblem
//! `min g'p + p'Hp/2, |p| <= Delta` is solved by More and Sorensen's method: Newton on the
//! secular equation `1/|p(lambda)| - 1/Delta = 0` with `p(lambda) = -(H + lambda I)^{-1} g`,
//! many `factor(lambda)` calls on one curvature, the inertia of `H + lambda I` saying when it
//! is positive definite, a safeguarded bracket `[lo, hi]` on `lambda`, a lower bound from
//! inverse iteration (`lambda - z'(H + lambda I) z` for a unit `z` near the lowest
//! eigenvector), and the hard case (`g` orthogonal to that eigenvector) handled by moving to
//! the boundary along `z`.

use super::{positive, require, try_point, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::linalg::kernels::dot;
use crate::real::{norm, Real};
use crate::rng::SplitMix64;
use crate::solver::{Factorable, Factorization, Product};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`TrustRegion`]; the defaults are those of [`TrustRegionConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrustRegionConfig<T> {
    /// Initial radius (default 1; positive, at most `radius_max`).
    pub radius: T,
    /// Largest radius (default 1e3; positive and finite).
    pub radius_max: T,
    /// A step is accepted when `actual / predicted > eta` (default 1e-4; in `[0, 1)`).
    pub eta: T,
    /// Boundary tolerance: a step with `| |p| - Delta | <= tol Delta` solves the subproblem
    /// (default 1e-3; in `(0, 1)`).
    pub tol: T,
    /// Relative bracket width at which `lambda` is taken as `-lambda_min(H)` (hard case;
    /// default 1e-8; in `(0, 1)`).
    pub hard_case_tol: T,
    /// Factorisations per subproblem (default 40).
    pub max_iterations: u32,
}

impl<T: Real> Default for TrustRegionConfig<T> {
    /// `radius` 1, `radius_max` 1e3, `eta` 1e-4, `tol` 1e-3, `hard_case_tol` 1e-8,
    /// `max_iterations` 40.
    fn default() -> Self {
        TrustRegionConfig {
            radius: T::ONE,
            radius_max: T::c(1e3),
            eta: T::c(1e-4),
            tol: T::c(1e-3),
            hard_case_tol: T::c(1e-8),
            max_iterations: 40,
        }
    }
}

impl<T: Real> TrustRegionConfig<T> {
    /// With this initial radius.
    pub fn with_radius(mut self, radius: T) -> Self {
        self.radius = radius;
        self
    }
    /// With this largest radius.
    pub fn with_radius_max(mut self, radius_max: T) -> Self {
        self.radius_max = radius_max;
        self
    }
    /// With this acceptance threshold.
    pub fn with_eta(mut self, eta: T) -> Self {
        self.eta = eta;
        self
    }
    /// With this many factorisations per subproblem.
    pub fn with_max_iterations(mut self, n: u32) -> Self {
        self.max_iterations = n;
        self
    }

    /// Checks every setting: a positive finite `radius_max`, `0 < radius <= radius_max`,
    /// `eta` in `[0, 1)`, `tol` and `hard_case_tol` in `(0, 1)`, at least one iteration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("radius_max", self.radius_max)?;
        positive("radius", self.radius)?;
        require(
            "radius",
            self.radius,
            self.radius <= self.radius_max,
            "at most radius_max",
        )?;
        super::unit("eta", self.eta)?;
        require(
            "tol",
            self.tol,
            self.tol > T::ZERO && self.tol < T::ONE,
            "in (0, 1)",
        )?;
        require(
            "hard_case_tol",
            self.hard_case_tol,
            self.hard_case_tol > T::ZERO && self.hard_case_tol < T::ONE,
            "in (0, 1)",
        )?;
        require(
            "max_iterations",
            T::c(f64::from(self.max_iterations)),
            self.max_iterations >= 1,
            "at least 1",
        )?;
        Ok(())
    }
}

/// The solution of one trust-region subproblem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subproblem<T> {
    /// The shift `lambda >= 0` with `(H + lambda I) p = -g` (up to the hard-case
    /// component); `None` when no shift within the budget made `H + lambda I` positive
    /// definite (then `p` is a steepest-descent step to the boundary).
    pub lambda: Option<T>,
    /// `|p|`.
    pub step_norm: T,
    /// `|p|` is within `tol` of the radius.
    pub on_boundary: bool,
    /// The hard case: `p = p(lambda) + tau z` with `z` the lowest eigenvector.
    pub hard_case: bool,
    /// `-(g'p + p'Hp/2)`, evaluated with the exact product.
    pub predicted: T,
    /// Factorisations used.
    pub factorizations: u32,
    /// Whether the iteration met its tolerance (otherwise `p` is the last positive-definite
    /// iterate, scaled into the region).
    pub converged: bool,
}

/// Trust-region Newton on the exact Hessian (More-Sorensen subproblem solver).
///
/// Owns a workspace and the exact Hessian's storage of `M`.
///
/// ```
/// use tall_skinny::prelude::*;
/// use tall_skinny::runtime::optim::{TrustRegion, TrustRegionConfig};
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
/// let mut net = Fit::init(3);
/// let mut tr = TrustRegion::<Fit>::new(TrustRegionConfig::default().with_radius(0.5))?;
/// let first = tr.step(&mut net, &x, &t)?;
/// for _ in 0..30 {
///     let r = tr.step(&mut net, &x, &t)?;
///     // Inside the region, up to the subproblem's boundary tolerance `tol`.
///     assert!(r.step_norm <= r.radius.unwrap() * (1.0 + tr.config().tol));
/// }
/// assert!(net.loss(&x, &t)? < 1e-2 * first.loss_before);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TrustRegion<M: Model> {
    config: TrustRegionConfig<M::Scalar>,
    radius: M::Scalar,
    lambda: M::Scalar,
    ws: M::Workspace,
    hess: M::Hessian,
    g: M::Vector,
    p: M::Vector,
    w: M::Vector,
    z: M::Vector,
    hz: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

// SAFETY: every field is `Zeroable`; an all-zero optimizer is unconfigured and its `step`
// fails.
unsafe impl<M: Model> bytemuck::Zeroable for TrustRegion<M> where M::Scalar: bytemuck::Zeroable {}

struct Bufs<'a, V> {
    p: &'a mut V,
    w: &'a mut V,
    z: &'a mut V,
    hz: &'a mut V,
}

impl<M: Model> TrustRegion<M> {
    /// An unconfigured optimizer (all zeros, for a `static`): [`Self::configure`] it
    /// before the first step.
    pub const ZERO: Self = TrustRegion {
        config: TrustRegionConfig {
            radius: M::Scalar::ZERO,
            radius_max: M::Scalar::ZERO,
            eta: M::Scalar::ZERO,
            tol: M::Scalar::ZERO,
            hard_case_tol: M::Scalar::ZERO,
            max_iterations: 0,
        },
        radius: M::Scalar::ZERO,
        lambda: M::Scalar::ZERO,
        ws: M::Workspace::ZERO,
        hess: M::Hessian::ZERO,
        g: M::Vector::ZERO,
        p: M::Vector::ZERO,
        w: M::Vector::ZERO,
        z: M::Vector::ZERO,
        hz: M::Vector::ZERO,
        base: M::Vector::ZERO,
        trial: M::Vector::ZERO,
    };

    /// A fresh optimizer; the settings are validated.
    pub fn new(config: TrustRegionConfig<M::Scalar>) -> Result<Self, ConfigError> {
        let mut o = Self::ZERO;
        o.configure(config)?;
        Ok(o)
    }

    /// [`Self::new`] on the heap, without building it on the stack first.
    #[cfg(feature = "alloc")]
    pub fn boxed(
        config: TrustRegionConfig<M::Scalar>,
    ) -> Result<alloc::boxed::Box<Self>, ConfigError> {
        let mut o: alloc::boxed::Box<Self> = bytemuck::zeroed_box();
        o.configure(config)?;
        Ok(o)
    }

    /// Validates and takes the settings, and restarts (radius from `config.radius`, no warm
    /// shift).
    pub fn configure(&mut self, config: TrustRegionConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.radius = config.radius;
        self.lambda = M::Scalar::ZERO;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &TrustRegionConfig<M::Scalar> {
        &self.config
    }

    /// The current radius.
    pub fn radius(&self) -> M::Scalar {
        self.radius
    }

    /// The last subproblem's shift: the first shift the next step tries (warm start).
    pub fn lambda(&self) -> M::Scalar {
        self.lambda
    }

    /// The step of the last subproblem solved.
    pub fn last_step(&self) -> &M::Vector {
        &self.p
    }

    /// Fills the optimizer's Hessian storage at `(x, t)` and solves the subproblem with
    /// gradient `g` and radius `radius` on it; the step is then [`Self::last_step`].
    pub fn subproblem(
        &mut self,
        net: &M,
        x: &M::Input,
        t: &M::Target,
        g: &M::Vector,
        radius: M::Scalar,
    ) -> Result<Subproblem<M::Scalar>, SolveError> {
        self.config.validate().map_err(SolveError::Config)?;
        if !radius.finite() || !(radius >= M::Scalar::ZERO) {
            return Err(SolveError::Config(ConfigError {
                field: "radius",
                value: radius.to_f64(),
                requirement: "non-negative and finite",
            }));
        }
        crate::layer::check_vector(g.as_ref())?;
        net.hessian_into(&mut self.hess, x, t)?;
        let b = Bufs {
            p: &mut self.p,
            w: &mut self.w,
            z: &mut self.z,
            hz: &mut self.hz,
        };
        solve_subproblem(
            net,
            &mut self.hess,
            g,
            radius,
            M::Scalar::ZERO,
            &self.config,
            b,
        )
    }

    /// One step on the batch `(x, t)`: gradient, Hessian blocks, subproblem, ratio test and
    /// radius update (quarter it below ratio 1/4, double it above 3/4 on the boundary).
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
        let radius = self.radius;
        let b = Bufs {
            p: &mut self.p,
            w: &mut self.w,
            z: &mut self.z,
            hz: &mut self.hz,
        };
        let sub = solve_subproblem(net, &mut self.hess, &self.g, radius, self.lambda, &c, b)?;
        if let (true, Some(l)) = (sub.converged, sub.lambda) {
            self.lambda = l;
        }
        let loss_trial = try_point(net, x, t, &self.base, &self.p, &mut self.trial);
        let pred = Some(sub.predicted).filter(|p| p.finite());
        let ratio = match (loss_trial, pred) {
            (Some(l), Some(p)) if p > M::Scalar::ZERO => {
                Some((loss0 - l) / p).filter(|r| r.finite())
            }
            _ => None,
        };
        let accepted = ratio.is_some_and(|r| r > c.eta);
        match ratio {
            Some(r) if r >= M::Scalar::c(0.25) => {
                if r > M::Scalar::c(0.75) && sub.on_boundary {
                    self.radius = (radius * M::Scalar::c(2.0)).min(c.radius_max);
                }
            }
            _ => {
                // Poor or failed trial: shrink, but keep the radius positive.
                let shrunk = M::Scalar::c(0.25) * sub.step_norm.min(radius);
                self.radius = if shrunk > M::Scalar::ZERO {
                    shrunk
                } else {
                    radius * M::Scalar::c(0.25)
                };
            }
        }
        if !accepted {
            net.put_params(&self.base)?;
        }
        Ok(StepReport {
            accepted,
            loss_before: loss0,
            loss_after: Some(if accepted {
                loss_trial.unwrap_or(loss0)
            } else {
                loss0
            }),
            loss_trial,
            predicted: pred,
            ratio,
            damping: sub.lambda,
            learning_rate: None,
            radius: Some(radius),
            step_norm: sub.step_norm,
            gradient_norm: norm(self.g.as_ref()),
            factorizations: sub.factorizations,
        })
    }
}

impl<M: Model> Optimizer<M> for TrustRegion<M> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        TrustRegion::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "trust region"
    }
}

/// What factoring at one shift gave.
enum Shift<F> {
    /// `H + lambda I` is positive definite and `p = -(H + lambda I)^{-1} g` is solved; the
    /// factorisation for further solves.
    Solved(F),
    /// Indefinite or singular (`p` untouched).
    Indefinite,
    /// Positive definite but the solve overflowed or could not be vouched for (`p`
    /// overwritten).
    Failed,
}

/// Factors `H + lambda I` and, when it is positive definite, solves `p = -(H + lambda I)^{-1}
/// g` into `p`.
fn solve_at<'h, M: Model>(
    net: &M,
    hess: &'h mut M::Hessian,
    lambda: M::Scalar,
    g: &M::Vector,
    p: &mut M::Vector,
) -> Result<Shift<<M::Hessian as Factorable>::Factored<'h>>, SolveError> {
    let mut f = match net.factor_current(hess, lambda) {
        Ok(f) => f,
        Err(SolveError::Singular { .. }) => return Ok(Shift::Indefinite),
        Err(e) => return Err(e),
    };
    if !f.inertia().is_positive_definite() {
        return Ok(Shift::Indefinite);
    }
    match f.solve_refined(g, p, 2) {
        Ok(_) => {}
        Err(SolveError::NonFiniteResult | SolveError::Inaccurate { .. }) => {
            return Ok(Shift::Failed)
        }
        Err(e) => return Err(e),
    }
    for v in p.as_mut() {
        *v = -*v;
    }
    Ok(Shift::Solved(f))
}

fn solve_subproblem<M: Model>(
    net: &M,
    hess: &mut M::Hessian,
    g: &M::Vector,
    delta: M::Scalar,
    warm: M::Scalar,
    c: &TrustRegionConfig<M::Scalar>,
    b: Bufs<'_, M::Vector>,
) -> Result<Subproblem<M::Scalar>, SolveError> {
    type T<M> = <M as Model>::Scalar;
    let zero = T::<M>::ZERO;
    let half = T::<M>::c(0.5);
    let Bufs { p, w, z, hz } = b;
    let gnorm = norm(g.as_ref());
    let mut out = Subproblem {
        lambda: Some(zero),
        step_norm: zero,
        on_boundary: false,
        hard_case: false,
        predicted: zero,
        factorizations: 0,
        converged: true,
    };
    if gnorm == zero || !(delta > zero) {
        p.as_mut().fill(zero);
        return Ok(out);
    }
    // An upper end of the bracket not yet found: `None`.
    let (mut lo, mut hi): (T<M>, Option<T<M>>) = (zero, None);
    let next = |lo: T<M>, hi: Option<T<M>>| -> T<M> {
        match hi {
            None => (lo * T::<M>::c(4.0)).max(gnorm / delta * T::<M>::c(0.1)),
            Some(hi) => (lo * hi).sqrt().max(lo + T::<M>::c(0.05) * (hi - lo)),
        }
    };
    // Start from the warm shift (the previous step's), or from 0 (the Newton step).
    let mut lam = if warm > zero && warm.finite() {
        warm
    } else {
        zero
    };
    let mut tried_zero = lam == zero;
    // The last positive-definite shift and whether `p` holds its step.
    let mut have_p = false;
    let mut p_lam = zero;
    let mut done = false;
    while out.factorizations < c.max_iterations {
        out.factorizations += 1;
        let mut f = match solve_at(net, hess, lam, g, p)? {
            Shift::Solved(f) => f,
            other => {
                if matches!(other, Shift::Failed) {
                    have_p = false; // p no longer holds the last positive-definite step
                }
                lo = lo.max(lam);
                lam = next(lo, hi);
                if !lam.finite() {
                    break;
                }
                continue;
            }
        };
        have_p = true;
        p_lam = lam;
        let np = norm(p.as_ref());
        if lam == zero && np <= delta {
            done = true; // interior: the Newton step of a positive-definite H
            break;
        }
        if (np - delta).abs() <= c.tol * delta {
            out.on_boundary = true;
            done = true;
            break;
        }
        if np > delta {
            lo = lo.max(lam);
        } else {
            hi = Some(hi.map_or(lam, |h| h.min(lam)));
            // Lower bound on -lambda_min(H) (and so on lambda*): a unit vector z from two
            // steps of inverse iteration, lambda - z'(H + lambda I) z.
            let mut rng = SplitMix64::new(0x7a11_5e1f);
            for v in z.as_mut() {
                *v = T::<M>::c(rng.symmetric());
            }
            for _ in 0..2 {
                let nz = norm(z.as_ref());
                for v in z.as_mut() {
                    *v /= nz;
                }
                f.solve(z, w)?;
                core::mem::swap(z, w);
            }
            let nz = norm(z.as_ref());
            for v in z.as_mut() {
                *v /= nz;
            }
            // z'Hz = z'(H + lambda I) z - lambda (|z| = 1)
            f.apply(z, hz)?;
            let zhz = dot(z.as_ref(), hz.as_ref()) - lam;
            lo = lo.max(-zhz);
            let hi_now = hi.unwrap_or(lam);
            if hi_now - lo <= c.hard_case_tol * hi_now {
                // Hard case: lambda = -lambda_min(H) (to tolerance) and |p(lambda)| < Delta;
                // add tau z so that |p + tau z| = Delta, choosing the root with the lower
                // model value m(p + tau z) = m(p) - lambda tau p'z + tau^2 z'Hz / 2.
                let pz = dot(p.as_ref(), z.as_ref());
                let disc = (pz * pz + delta * delta - np * np).max(zero).sqrt();
                let model = |tau: T<M>| -lam * tau * pz + half * tau * tau * zhz;
                let (t1, t2) = (-pz + disc, -pz - disc);
                let tau = if model(t1) <= model(t2) { t1 } else { t2 };
                for (pi, zi) in p.as_mut().iter_mut().zip(z.as_ref()) {
                    *pi += tau * *zi;
                }
                out.hard_case = true;
                out.on_boundary = true;
                done = true;
                break;
            }
        }
        // Newton on 1/|p| - 1/Delta: lambda += (|p| - Delta)/Delta |p|^2 / p'(H + lambda I)^{-1} p.
        f.solve(p, w)?;
        let pw = dot(p.as_ref(), w.as_ref());
        let mut lam_new = lam + (np - delta) / delta * (np * np / pw);
        let inside = lam_new > lo && hi.is_none_or(|h| lam_new < h);
        if !inside || !lam_new.finite() {
            // Below the bracket from a warm start: the interior (lambda = 0) is still to be
            // tried.
            lam_new = if lo == zero && !tried_zero && lam_new <= lo {
                zero
            } else {
                next(lo, hi)
            };
        }
        tried_zero |= lam_new == zero;
        lam = lam_new;
    }
    if !have_p {
        // Never positive definite within the budget: a steepest-descent step to the boundary.
        for (pi, gi) in p.as_mut().iter_mut().zip(g.as_ref()) {
            *pi = -*gi * (delta / gnorm);
        }
        out.converged = false;
        out.on_boundary = true;
        out.lambda = None;
        out.step_norm = delta;
        // m(p) with p = -a g: -a|g|^2 + a^2 g'Hg/2, g'Hg from the stored blocks.
        hess.product(zero, p, hz)?;
        let php = dot(p.as_ref(), hz.as_ref());
        out.predicted = -(dot(g.as_ref(), p.as_ref()) + half * php);
        return Ok(out);
    }
    if !done {
        out.converged = false;
        // The last positive-definite iterate, pulled into the region if outside.
        let np = norm(p.as_ref());
        if np > delta {
            for v in p.as_mut() {
                *v *= delta / np;
            }
            out.on_boundary = true;
        }
    }
    out.lambda = Some(p_lam);
    out.step_norm = norm(p.as_ref());
    // Exact prediction with p'Hp from the stored blocks.
    hess.product(zero, p, hz)?;
    let php = dot(p.as_ref(), hz.as_ref());
    out.predicted = -(dot(g.as_ref(), p.as_ref()) + half * php);
    Ok(out)
}
