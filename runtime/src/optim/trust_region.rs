//! Trust-region Newton on the exact Hessian. The subproblem
//! `min g'p + p'Hp/2, |p| <= Delta` is solved by More and Sorensen's method: Newton on the
//! secular equation `1/|p(lambda)| - 1/Delta = 0` with `p(lambda) = -(H + lambda I)^{-1} g`,
//! many `factor(lambda)` calls on one curvature, the inertia of `H + lambda I` saying when it
//! is positive definite, a safeguarded bracket `[lo, hi]` on `lambda`, a lower bound from
//! inverse iteration (`lambda - z'(H + lambda I) z` for a unit `z` near the lowest
//! eigenvector), and the hard case (`g` orthogonal to that eigenvector) handled by moving to
//! the boundary along `z`.

use super::{dot, try_point, Model, StepReport};
use crate::error::SolveError;
use crate::real::Real;
use crate::rng::SplitMix64;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`TrustRegion`].
#[derive(Clone, Copy, Debug)]
pub struct TrustRegionConfig<T> {
    /// Initial radius.
    pub radius: T,
    /// Largest radius.
    pub radius_max: T,
    /// A step is accepted when `actual / predicted > eta`.
    pub eta: T,
    /// Boundary tolerance: a step with `| |p| - Delta | <= tol Delta` solves the subproblem.
    pub tol: T,
    /// Relative bracket width at which `lambda` is taken as `-lambda_min(H)` (hard case).
    pub hard_case_tol: T,
    /// Factorisations per subproblem.
    pub max_iterations: u32,
}

impl<T: Real> Default for TrustRegionConfig<T> {
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

/// The solution of one trust-region subproblem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subproblem<T> {
    /// The shift `lambda >= 0` with `(H + lambda I) p = -g` (up to the hard-case component).
    pub lambda: T,
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
#[derive(Clone, Debug)]
pub struct TrustRegion<M: Model> {
    /// Settings.
    pub config: TrustRegionConfig<M::Scalar>,
    /// Current radius.
    pub radius: M::Scalar,
    /// The last subproblem's shift: the first shift the next step tries (warm start).
    pub lambda: M::Scalar,
    g: M::Vector,
    p: M::Vector,
    w: M::Vector,
    z: M::Vector,
    hz: M::Vector,
    base: M::Vector,
    trial: M::Vector,
}

struct Bufs<'a, V> {
    p: &'a mut V,
    w: &'a mut V,
    z: &'a mut V,
    hz: &'a mut V,
}

impl<M: Model> TrustRegion<M> {
    /// A fresh optimizer.
    pub fn new(config: TrustRegionConfig<M::Scalar>) -> Self {
        TrustRegion {
            radius: config.radius,
            lambda: M::Scalar::ZERO,
            config,
            g: M::zero_vector(),
            p: M::zero_vector(),
            w: M::zero_vector(),
            z: M::zero_vector(),
            hz: M::zero_vector(),
            base: M::zero_vector(),
            trial: M::zero_vector(),
        }
    }

    /// The step of the last subproblem solved.
    pub fn last_step(&self) -> &M::Vector {
        &self.p
    }

    /// Solves the subproblem with gradient `g` and radius `radius` on the Hessian the caller
    /// prepared (`hessian_prepare`); the step is then [`Self::last_step`].
    pub fn subproblem(
        &mut self,
        net: &M,
        s: &mut M::Scratch,
        g: &M::Vector,
        radius: M::Scalar,
    ) -> Result<Subproblem<M::Scalar>, SolveError> {
        let b = Bufs {
            p: &mut self.p,
            w: &mut self.w,
            z: &mut self.z,
            hz: &mut self.hz,
        };
        solve_subproblem(net, s, g, radius, M::Scalar::ZERO, &self.config, b)
    }

    /// One step on the batch `(x, t)`: gradient, Hessian blocks, subproblem, ratio test and
    /// radius update (quarter it below ratio 1/4, double it above 3/4 on the boundary).
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
        let radius = self.radius;
        let b = Bufs {
            p: &mut self.p,
            w: &mut self.w,
            z: &mut self.z,
            hz: &mut self.hz,
        };
        let sub = solve_subproblem(net, s, &self.g, radius, self.lambda, &c, b)?;
        if sub.converged && sub.lambda.finite() {
            self.lambda = sub.lambda;
        }
        let trial = try_point(net, s, x, t, &self.base, &self.p, &mut self.trial);
        let (loss1, actual) = match trial {
            Some(l) => (l, loss0 - l),
            None => (M::Scalar::MAX, -M::Scalar::MAX),
        };
        let pred = sub.predicted;
        let ratio = if pred > M::Scalar::ZERO {
            actual / pred
        } else {
            -M::Scalar::ONE
        };
        let accepted = trial.is_some() && pred > M::Scalar::ZERO && ratio > c.eta;
        if ratio < M::Scalar::c(0.25) {
            self.radius = M::Scalar::c(0.25) * sub.step_norm.min(radius);
        } else if ratio > M::Scalar::c(0.75) && sub.on_boundary {
            self.radius = (radius * M::Scalar::c(2.0)).min(c.radius_max);
        }
        if !accepted {
            net.put_params(&self.base)?;
        }
        Ok(StepReport {
            accepted,
            loss_before: loss0,
            loss_trial: loss1,
            loss_after: if accepted { loss1 } else { loss0 },
            predicted: pred,
            actual,
            ratio,
            damping: sub.lambda,
            radius,
            step_norm: sub.step_norm,
            factorizations: sub.factorizations,
        })
    }
}

fn norm<T: Real>(v: &[T]) -> T {
    dot(v, v).sqrt()
}

/// `Ok(true)` when `H + lambda I` is positive definite (a `Singular` stage counts as not).
fn factor_pd<M: Model>(net: &M, s: &mut M::Scratch, lambda: M::Scalar) -> Result<bool, SolveError> {
    match net.hessian_factor(s, lambda) {
        Ok(inertia) => Ok(inertia.is_positive_definite()),
        Err(SolveError::Singular { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

fn solve_subproblem<M: Model>(
    net: &M,
    s: &mut M::Scratch,
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
        lambda: zero,
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
    let (mut lo, mut hi) = (zero, T::<M>::MAX);
    let next = |lo: T<M>, hi: T<M>| -> T<M> {
        if hi == T::<M>::MAX {
            (lo * T::<M>::c(4.0)).max(gnorm / delta * T::<M>::c(0.1))
        } else {
            (lo * hi).sqrt().max(lo + T::<M>::c(0.05) * (hi - lo))
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
    while out.factorizations < c.max_iterations.max(1) {
        out.factorizations += 1;
        if !factor_pd(net, s, lam)? {
            lo = lo.max(lam);
            lam = next(lo, hi);
            continue;
        }
        net.hessian_solve(s, g, p)?;
        for v in p.as_mut() {
            *v = -*v;
        }
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
            hi = hi.min(lam);
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
                net.hessian_solve(s, z, w)?;
                core::mem::swap(z, w);
            }
            let nz = norm(z.as_ref());
            for v in z.as_mut() {
                *v /= nz;
            }
            net.hessian_apply(s, z, hz)?;
            let zhz = dot(z.as_ref(), hz.as_ref());
            lo = lo.max(-zhz);
            if hi - lo <= c.hard_case_tol * hi {
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
        net.hessian_solve(s, p, w)?;
        let pw = dot(p.as_ref(), w.as_ref());
        let mut lam_new = lam + (np - delta) / delta * (np * np / pw);
        if !(lam_new > lo && lam_new < hi) || !lam_new.finite() {
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
        out.lambda = T::<M>::MAX;
        out.step_norm = delta;
        // m(p) with p = -a g: -a|g|^2 + a^2 g'Hg/2; g'Hg from the Hessian at the last shift.
        net.hessian_apply(s, p, hz)?;
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
    out.lambda = p_lam;
    out.step_norm = norm(p.as_ref());
    // Exact prediction with p'Hp from the stored blocks.
    net.hessian_apply(s, p, hz)?;
    let php = dot(p.as_ref(), hz.as_ref());
    out.predicted = -(dot(g.as_ref(), p.as_ref()) + half * php);
    Ok(out)
}
