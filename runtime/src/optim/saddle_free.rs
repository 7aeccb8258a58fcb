//! Saddle-free Newton on the exact Hessian: the step `d = -(|H| + eps I)^{-1} g`, with
//! `|H| = V |Lambda| V' + (H restricted to the complement of V)` where `V` holds the negative
//! eigenpairs of `H`, found by shift-and-invert on the per-stage factorisation and certified
//! by its inertia. Every factorisation and solve is linear in depth.
//!
//! One step:
//!
//! 1. **Count.** Factor `H + tau I` with `tau = count_shift * eps` and read `k`, the number
//!    of eigenvalues of `H` below `-tau`, from the inertia (Sylvester's law). Eigenvalues in
//!    `[-tau, 0)` are treated as non-negative: their coefficient in the step is
//!    `1 / (eps - |lambda|)` instead of `1 / (eps + |lambda|)`, a relative error of at most
//!    `2 count_shift / (1 - count_shift)` in those directions only (0.2% at the default
//!    1e-3). (`H` itself cannot be factored at shift 0 when a stage has a complement: its
//!    block there is exactly `eps I`.) A singular `H + tau I` is retried at `4 tau` and
//!    `16 tau`; [`SaddleFreeInfo::count_shift`] is the `tau` used.
//! 2. **Eigenpairs.** Block shift-and-invert iteration with locking on a block of
//!    `min(k + 2, K, N)` vectors (warm-started from the previous step's): each iteration
//!    factors `H - sigma I` once at a shift `sigma` just below the lowest unlocked Ritz value
//!    (minus its residual), and up to 3 times solves the unlocked columns, orthonormalises
//!    them against the locked ones, and does Rayleigh-Ritz with the exact product (a small
//!    Jacobi eigensolver). When the inertia at `sigma` counts more eigenvalues below it than
//!    the block has Ritz values, the next shift bisects toward the missing ones. A Ritz
//!    pair is locked when `|H v - theta v| <= eig_tol |H|` (`|H|` estimated by the largest
//!    `|H v|` seen). The pairs are **certified** when the number of locked pairs with
//!    `theta < -tau` equals the Sylvester count `k`.
//! 3. **More than `max_negative`.** Only the `m = max_negative` lowest pairs are sought
//!    (that they are the lowest is checked by the count just above `theta_m`); the rest of
//!    the negative spectrum is damped: the complement is solved with
//!    `H + e I`, `e = eps - theta_m` (`theta_m` the highest pair found), raised by 4 until
//!    the inertia of `H + e I` shows the complement positive definite. Counted in
//!    [`SaddleFreeNewton::truncated_steps`] and reported by [`SaddleFreeInfo::truncated`].
//!    The same damping covers an uncertified search.
//! 4. **Step.** `d = -[V diag(1 / (|theta_i| + eps)) V' g + P (H + e I)^{-1} P g]`,
//!    `P = I - V V'` (`e = eps` when certified), which equals `-(|H| + eps I)^{-1} g` when
//!    `V` holds every negative eigenpair, since `P` commutes with `H`. `H + eps I` is
//!    singular when an eigenvalue sits at `-eps`: `eps` is moved within `[eps, 4 eps]` to
//!    the point of largest relative distance `min_i |theta_i + e| / e` from the pairs found
//!    (the projection `P` removes what the near-singular directions add to the solve).
//! 5. **Accept.** By the ratio of the actual reduction to the reduction the `|H|` model
//!    predicts, `-(g'd + d' B d / 2)` with `d' B d = d'Hd + sum (|theta_i| - theta_i)
//!    (v_i'd)^2 + (e - eps) |P d|^2` (`d'Hd` from the exact product); `eps` adapted as in
//!    [`DampedNewton`](super::DampedNewton) (Nielsen).

use super::{damped_trial, nielsen, require, Model, Optimizer, StepReport};
use crate::chain::ConstZero;
use crate::error::{ConfigError, SolveError};
use crate::linalg::kernels::dot;
use crate::real::{norm, Real};
use crate::rng::SplitMix64;
use crate::solver::{Factorization, Product};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Settings of [`SaddleFreeNewton`]; the defaults are those of
/// [`SaddleFreeConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SaddleFreeConfig<T> {
    /// Initial damping `eps` (default 1e-3).
    pub lambda: T,
    /// Smallest damping (default 1e-10).
    pub lambda_min: T,
    /// Largest damping (default 1e12).
    pub lambda_max: T,
    /// A step is accepted when `actual / predicted > eta` (default 1e-4; in `[0, 1)`).
    pub eta: T,
    /// Trial factorisations per call (default 12; at least 1).
    pub max_factorizations: u32,
    /// Refinement steps of each solve (default 2).
    pub refine_steps: u32,
    /// Most negative eigenpairs sought (default 32; between 1 and the optimizer's `K`).
    pub max_negative: u32,
    /// `tau / eps`: eigenvalues below `-tau` count as negative (default 1e-3; in `(0, 1)`).
    pub count_shift: T,
    /// Relative residual `|H v - theta v| / |H|` at which a Ritz pair is locked (default
    /// `EPSILON^(3/4)`: 1.8e-12 in f64, 6.4e-6 in f32; in `(0, 1)`).
    pub eig_tol: T,
    /// Shift-and-invert iterations per step: one factorisation each, with up to 3 passes of
    /// solves and Rayleigh-Ritz at its shift (default 60; at least 1).
    pub eig_iterations: u32,
}

impl<T: Real> Default for SaddleFreeConfig<T> {
    /// `lambda` 1e-3, `lambda_min` 1e-10, `lambda_max` 1e12, `eta` 1e-4,
    /// `max_factorizations` 12, `refine_steps` 2, `max_negative` 32, `count_shift` 1e-3,
    /// `eig_tol` `EPSILON^(3/4)`, `eig_iterations` 60.
    fn default() -> Self {
        SaddleFreeConfig {
            lambda: T::c(1e-3),
            lambda_min: T::c(1e-10),
            lambda_max: T::c(1e12),
            eta: T::c(1e-4),
            max_factorizations: 12,
            refine_steps: 2,
            max_negative: 32,
            count_shift: T::c(1e-3),
            eig_tol: T::EPSILON.powf(T::c(0.75)),
            eig_iterations: 60,
        }
    }
}

impl<T: Real> SaddleFreeConfig<T> {
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
    /// With at most this many negative eigenpairs sought.
    pub fn with_max_negative(mut self, n: u32) -> Self {
        self.max_negative = n;
        self
    }
    /// With this eigenpair tolerance.
    pub fn with_eig_tol(mut self, tol: T) -> Self {
        self.eig_tol = tol;
        self
    }

    /// Checks every setting: positive finite dampings with `lambda_min <= lambda <=
    /// lambda_max`, `eta` in `[0, 1)`, at least one factorisation and one eigen iteration,
    /// `count_shift` and `eig_tol` in `(0, 1)`, `1 <= max_negative <= k` (`k` the
    /// optimizer's block size; [`SaddleFreeNewton::configure`] passes it).
    pub fn validate(&self, k: usize) -> Result<(), ConfigError> {
        super::damping_range(self.lambda_min, self.lambda, self.lambda_max)?;
        super::unit("eta", self.eta)?;
        super::at_least_one("max_factorizations", self.max_factorizations)?;
        super::at_least_one("eig_iterations", self.eig_iterations)?;
        require(
            "max_negative",
            T::c(f64::from(self.max_negative)),
            self.max_negative >= 1 && self.max_negative as usize <= k,
            "between 1 and the optimizer's K",
        )?;
        require(
            "count_shift",
            self.count_shift,
            self.count_shift > T::ZERO && self.count_shift < T::ONE,
            "in (0, 1)",
        )?;
        require(
            "eig_tol",
            self.eig_tol,
            self.eig_tol > T::ZERO && self.eig_tol < T::ONE,
            "in (0, 1)",
        )?;
        Ok(())
    }
}

/// What the eigen search of the last step found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SaddleFreeInfo<T> {
    /// The Sylvester count: eigenvalues of `H` below `-tau` (inertia of `H + tau I`);
    /// `None` when `H + tau I` could not be factored.
    pub negative: Option<usize>,
    /// `tau`, the count's shift.
    pub count_shift: T,
    /// Converged (locked) Ritz pairs with `theta < -tau`: the pairs the step uses.
    pub found: usize,
    /// `found` equals the Sylvester count and nothing was truncated: the step is
    /// `-(|H| + eps I)^{-1} g` (up to the `[-tau, 0)` band and the pairs' residuals).
    pub certified: bool,
    /// More than `max_negative` negative eigenvalues: only the lowest were sought.
    pub truncated: bool,
    /// Largest `|H v - theta v| / |H|` of the pairs used (0 when none).
    pub max_residual: T,
    /// The shift `e` of the complement's solve (`eps` when certified).
    pub complement_shift: T,
    /// Shift-and-invert iterations.
    pub iterations: u32,
    /// Factorisations of the count and the eigen search.
    pub factorizations: u32,
}

impl<T: Real> SaddleFreeInfo<T> {
    const NONE: Self = SaddleFreeInfo {
        negative: None,
        count_shift: T::ZERO,
        found: 0,
        certified: false,
        truncated: false,
        max_residual: T::ZERO,
        complement_shift: T::ZERO,
        iterations: 0,
        factorizations: 0,
    };
}

/// Saddle-free Newton on the exact Hessian: `d = -(|H| + eps I)^{-1} g` with the negative
/// eigenpairs of `H` found by shift-and-invert on its factorisation and certified by the
/// inertia (see the module docs of `optim::saddle_free`).
///
/// `K` (default 32) is the size of the eigenvector block: the optimizer owns `2 K`
/// parameter vectors and two `K x K` matrices besides the Hessian storage, so large ones are
/// built with `boxed`.
///
/// ```
/// use tall_skinny::prelude::*;
/// use tall_skinny::runtime::optim::{SaddleFreeConfig, SaddleFreeNewton};
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
/// let mut net = Fit::init(2);
/// let mut sfn = SaddleFreeNewton::<Fit, 8>::boxed(
///     SaddleFreeConfig::default().with_max_negative(8),
/// )?;
/// let first = sfn.step(&mut net, &x, &t)?;
/// for _ in 0..30 {
///     let r = sfn.step(&mut net, &x, &t)?;
///     if let (true, Some(after)) = (r.accepted, r.loss_after) {
///         assert!(after <= r.loss_before);
///     }
/// }
/// assert!(net.loss(&x, &t)? < 1e-2 * first.loss_before);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SaddleFreeNewton<M: Model, const K: usize = 32> {
    config: SaddleFreeConfig<M::Scalar>,
    lambda: M::Scalar,
    nu: M::Scalar,
    info: SaddleFreeInfo<M::Scalar>,
    truncated: u64,
    uncertified: u64,
    /// Columns of `blk.v` holding the previous step's block (warm start).
    carried: usize,
    ws: M::Workspace,
    hess: M::Hessian,
    g: M::Vector,
    d: M::Vector,
    base: M::Vector,
    trial: M::Vector,
    blk: Block<M, K>,
}

/// The eigenvector block and its Rayleigh-Ritz scratch.
struct Block<M: Model, const K: usize> {
    v: [M::Vector; K],
    w: [M::Vector; K],
    theta: [M::Scalar; K],
    resid: [M::Scalar; K],
    a: [[M::Scalar; K]; K],
    q: [[M::Scalar; K]; K],
}

// SAFETY: every field is `Zeroable`; an all-zero optimizer is unconfigured and its `step`
// fails.
unsafe impl<M: Model, const K: usize> bytemuck::Zeroable for SaddleFreeNewton<M, K> where
    M::Scalar: bytemuck::Zeroable
{
}

impl<M: Model, const K: usize> SaddleFreeNewton<M, K> {
    /// Size in bytes of this optimizer with the storage it owns (`size_of::<Self>()`).
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// An unconfigured optimizer (all zeros, for a `static`): [`Self::configure`] it
    /// before the first step.
    pub const ZERO: Self = SaddleFreeNewton {
        config: SaddleFreeConfig {
            lambda: M::Scalar::ZERO,
            lambda_min: M::Scalar::ZERO,
            lambda_max: M::Scalar::ZERO,
            eta: M::Scalar::ZERO,
            max_factorizations: 0,
            refine_steps: 0,
            max_negative: 0,
            count_shift: M::Scalar::ZERO,
            eig_tol: M::Scalar::ZERO,
            eig_iterations: 0,
        },
        lambda: M::Scalar::ZERO,
        nu: M::Scalar::ZERO,
        info: SaddleFreeInfo::NONE,
        truncated: 0,
        uncertified: 0,
        carried: 0,
        ws: M::Workspace::ZERO,
        hess: M::Hessian::ZERO,
        g: M::Vector::ZERO,
        d: M::Vector::ZERO,
        base: M::Vector::ZERO,
        trial: M::Vector::ZERO,
        blk: Block {
            v: [M::Vector::ZERO; K],
            w: [M::Vector::ZERO; K],
            theta: [M::Scalar::ZERO; K],
            resid: [M::Scalar::ZERO; K],
            a: [[M::Scalar::ZERO; K]; K],
            q: [[M::Scalar::ZERO; K]; K],
        },
    };

    /// Validates and takes the settings, and restarts (damping from `config.lambda`, no
    /// warm-start block, counters at 0).
    pub fn configure(&mut self, config: SaddleFreeConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate(K)?;
        self.config = config;
        self.lambda = config.lambda;
        self.nu = M::Scalar::c(2.0);
        self.info = SaddleFreeInfo::NONE;
        self.truncated = 0;
        self.uncertified = 0;
        self.carried = 0;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &SaddleFreeConfig<M::Scalar> {
        &self.config
    }

    /// The current damping.
    pub fn lambda(&self) -> M::Scalar {
        self.lambda
    }

    /// What the last step's eigen search found.
    pub fn info(&self) -> &SaddleFreeInfo<M::Scalar> {
        &self.info
    }

    /// Steps (since configuring) with more than `max_negative` negative eigenvalues.
    pub fn truncated_steps(&self) -> u64 {
        self.truncated
    }

    /// Steps (since configuring) whose pairs were not certified (truncated ones included).
    pub fn uncertified_steps(&self) -> u64 {
        self.uncertified
    }

    /// The eigenpairs the last step used: eigenvalues ascending and their unit eigenvectors.
    pub fn negative_pairs(&self) -> (&[M::Scalar], &[M::Vector]) {
        let n = self.info.found;
        (&self.blk.theta[..n], &self.blk.v[..n])
    }

    /// The last trial step `d` (the parameters moved by `d` when it was accepted).
    pub fn last_step(&self) -> &M::Vector {
        &self.d
    }

    /// Validates the settings, the block size included.
    fn check(&self) -> Result<(), SolveError> {
        self.config.validate(K).map_err(SolveError::Config)
    }

    /// One step on the batch `(x, t)`.
    pub fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        type T<M> = <M as Model>::Scalar;
        self.check()?;
        let c = self.config;
        let zero = T::<M>::ZERO;
        let loss0 = net.gradient_into(&mut self.ws, x, t, &mut self.g)?;
        net.get_params(&mut self.base);
        net.hessian_into(&mut self.hess, x, t)?;
        let mut report = StepReport::start(loss0, norm(self.g.as_ref()));
        let mut info = SaddleFreeInfo::NONE;

        // 1. The Sylvester count below -tau.
        let mut tau = c.count_shift * self.lambda;
        let mut count = None;
        for _ in 0..3 {
            info.factorizations += 1;
            match net.factor_current(&mut self.hess, tau) {
                Ok(f) => {
                    count = Some(f.inertia().negative);
                    break;
                }
                Err(SolveError::Singular { .. }) => tau *= T::<M>::c(4.0),
                Err(e) => return Err(e),
            }
        }
        info.negative = count;
        info.count_shift = tau;

        // 2. The negative eigenpairs.
        let wanted = count.unwrap_or(0).min(c.max_negative as usize);
        info.truncated = count.is_some_and(|k| k > c.max_negative as usize);
        // (wanted pairs beyond the count are never locked: at most `wanted` lie below -tau)
        if wanted > 0 {
            self.eigenpairs(net, wanted, tau, info.truncated, &mut info)?;
        } else {
            info.found = 0;
        }
        info.certified = count == Some(info.found) && !info.truncated;
        if info.truncated {
            self.truncated += 1;
        }
        if !info.certified {
            self.uncertified += 1;
        }
        let nv = info.found;
        info.max_residual = self.blk.resid[..nv].iter().fold(zero, |m, r| m.max(*r));

        // 3.-5. Trials.
        let mut trials = 0;
        while trials < c.max_factorizations {
            // eps, and the complement's shift e moved away from the pairs found.
            let eps = self.lambda;
            let (eps, e0) = if info.certified {
                let e = away_from(eps, &self.blk.theta[..nv]).min(c.lambda_max);
                (e, e)
            } else {
                let top = if nv > 0 { self.blk.theta[nv - 1] } else { zero };
                // the complement may hold negative eigenvalues down to about theta_m
                let e = away_from(eps - top.min(zero), &self.blk.theta[..nv]);
                (eps, e.min(c.lambda_max))
            };
            let mut e = e0;
            report.damping = Some(eps);
            // r = P g into trial
            self.trial = self.g;
            project(&self.blk.v[..nv], &mut self.trial);
            // the complement's solve, e raised until H + e I is definite off V
            let mut solved = false;
            while trials < c.max_factorizations {
                trials += 1;
                let expected = self.blk.theta[..nv]
                    .iter()
                    .filter(|th| **th + e < zero)
                    .count();
                let ok = match net.factor_current(&mut self.hess, e) {
                    Ok(mut f) => {
                        let i = f.inertia();
                        if i.negative == expected && i.zero == 0 {
                            match f.solve_refined(&self.trial, &mut self.d, c.refine_steps as usize)
                            {
                                Ok(_) => true,
                                Err(
                                    SolveError::NonFiniteResult | SolveError::Inaccurate { .. },
                                ) => false,
                                Err(err) => return Err(err),
                            }
                        } else {
                            false
                        }
                    }
                    Err(SolveError::Singular { .. }) => false,
                    Err(err) => return Err(err),
                };
                if ok {
                    solved = true;
                    break;
                }
                if e >= c.lambda_max {
                    break;
                }
                e = (e * T::<M>::c(4.0)).min(c.lambda_max);
            }
            if !solved {
                break;
            }
            info.complement_shift = e;
            // d = V diag(1/(|theta|+eps)) V'g + P y  (the step is -d)
            project(&self.blk.v[..nv], &mut self.d);
            for (vi, th) in self.blk.v[..nv].iter().zip(&self.blk.theta[..nv]) {
                let s = dot(vi.as_ref(), self.g.as_ref()) / (th.abs() + eps);
                for (di, vv) in self.d.as_mut().iter_mut().zip(vi.as_ref()) {
                    *di += s * *vv;
                }
            }
            // d'Bd of the |H| model (sign of d irrelevant)
            self.hess.product(zero, &self.d, &mut self.trial)?;
            let mut dbd = dot(self.d.as_ref(), self.trial.as_ref());
            let mut in_v = zero;
            for (vi, th) in self.blk.v[..nv].iter().zip(&self.blk.theta[..nv]) {
                let vd = dot(vi.as_ref(), self.d.as_ref());
                dbd += (th.abs() - *th) * vd * vd;
                in_v += vd * vd;
            }
            let dd = dot(self.d.as_ref(), self.d.as_ref());
            dbd += (e - eps) * (dd - in_v).max(zero);
            self.lambda = eps;
            damped_trial(
                net,
                x,
                t,
                &mut report,
                eps,
                c.eta,
                &self.g,
                &mut self.d,
                &self.base,
                &mut self.trial,
                Some(dbd),
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
                break;
            }
            net.put_params(&self.base)?;
        }
        report.factorizations = info.factorizations + trials;
        self.info = info;
        Ok(report)
    }

    /// Block shift-and-invert iteration with locking for the `wanted` lowest eigenpairs
    /// (module docs, step 2). Leaves the locked pairs with `theta < -tau`, ascending, in the
    /// first `info.found` columns of `v`, `theta`, `resid` (`resid` relative to `|H|`).
    /// `truncated`: fewer are wanted than lie below `-tau`, so the lowest `wanted` are
    /// confirmed by the inertia just above the highest of them.
    fn eigenpairs(
        &mut self,
        net: &M,
        wanted: usize,
        tau: M::Scalar,
        truncated: bool,
        info: &mut SaddleFreeInfo<M::Scalar>,
    ) -> Result<(), SolveError> {
        type T<M> = <M as Model>::Scalar;
        let zero = T::<M>::ZERO;
        let c = self.config;
        let b = (wanted + 2).min(K).min(M::N_PARAMS);
        let mut rng = SplitMix64::new(0x005a_dd1e_f4ee);
        // Start: the carried block, random columns beyond it.
        for j in self.carried.min(b)..b {
            for v in self.blk.v[j].as_mut() {
                *v = T::<M>::c(rng.symmetric());
            }
        }
        orthonormalise::<M>(&mut self.blk.v, 0, b, &mut rng);
        let mut hnorm = zero;
        let hess = &mut self.hess;
        self.blk
            .rayleigh_ritz(0, b, &mut hnorm, |v, out| hess.product(zero, v, out))?;
        let mut locked = 0;
        // Bracket of the shifts for the bisection on the inertia: every eigenvalue below
        // `lo` has a Ritz value below `lo` in the block; the inertia at `hi` showed more
        // eigenvalues below it than the block has Ritz values (`missing`).
        let mut lo_s: Option<T<M>> = None;
        let mut hi_s = -tau;
        let mut missing = false;
        loop {
            // lock the converged lowest unlocked pairs that are wanted
            while locked < b
                && self.blk.resid[locked] <= c.eig_tol * hnorm
                && self.blk.theta[locked] < -tau
            {
                locked += 1;
            }
            if locked >= wanted {
                self.sort_locked(locked);
                if !truncated {
                    break;
                }
                // The lowest `wanted`? The count just above the highest of them says.
                let s = self.blk.theta[wanted - 1]
                    + self.blk.resid[wanted - 1]
                    + T::<M>::EPSILON.sqrt() * hnorm;
                info.factorizations += 1;
                let confirmed = match net.factor_current(&mut self.hess, -s) {
                    Ok(f) => f.inertia().negative == wanted && f.inertia().zero == 0,
                    Err(SolveError::Singular { .. }) => false,
                    Err(e) => return Err(e),
                };
                if confirmed {
                    break;
                }
                missing = true;
                hi_s = hi_s.min(s);
                if locked == b {
                    // Room for the missing one: the highest pair gives way to a random
                    // column (an eigenvector would be a fixed point of the iteration).
                    locked -= 1;
                    for v in self.blk.v[locked].as_mut() {
                        *v = T::<M>::c(rng.symmetric());
                    }
                    orthonormalise::<M>(&mut self.blk.v, locked, b, &mut rng);
                    self.blk.theta[locked] = -tau;
                    self.blk.resid[locked] = hnorm;
                }
            }
            if locked == b || info.iterations >= c.eig_iterations {
                break;
            }
            info.iterations += 1;
            // Shift just below the lowest unlocked Ritz value while it is wanted and nothing
            // is missing; else bisect [lo, hi] on the inertia, solving at each midpoint.
            let th = self.blk.theta[locked];
            let r = self.blk.resid[locked].max(T::<M>::EPSILON.sqrt() * hnorm);
            let mut sigma = if th < -tau && !missing {
                th - r
            } else {
                let lo = lo_s.unwrap_or(-T::<M>::c(2.0) * hnorm - tau);
                T::<M>::c(0.5) * (lo + hi_s)
            };
            // One factorisation, then up to PASSES passes of solve, Gram-Schmidt,
            // Rayleigh-Ritz (with the factorisation's exact product, H v = (H - sigma I) v +
            // sigma v) and locking at this shift: solves are far cheaper than factorisations.
            let mut solved = false;
            for _ in 0..3 {
                info.factorizations += 1;
                match net.factor_current(&mut self.hess, -sigma) {
                    Ok(mut f) => {
                        let i = f.inertia();
                        let ritz = self.blk.theta[..b].iter().filter(|t| **t < sigma).count();
                        if i.zero == 0 {
                            if i.negative > ritz {
                                missing = true;
                                hi_s = hi_s.min(sigma);
                            } else {
                                missing = false;
                                lo_s = Some(lo_s.map_or(sigma, |l: T<M>| l.max(sigma)));
                            }
                        }
                        for _ in 0..PASSES {
                            let mut ok = true;
                            for j in locked..b {
                                match f.solve(&self.blk.v[j], &mut self.blk.w[j]) {
                                    Ok(()) => {}
                                    Err(SolveError::NonFiniteResult) => {
                                        ok = false;
                                        break;
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                            if !ok {
                                break;
                            }
                            solved = true;
                            for j in locked..b {
                                self.blk.v[j] = self.blk.w[j];
                            }
                            orthonormalise::<M>(&mut self.blk.v, locked, b, &mut rng);
                            self.blk.rayleigh_ritz(locked, b, &mut hnorm, |v, out| {
                                f.apply(v, out)?;
                                for (o, x) in out.as_mut().iter_mut().zip(v.as_ref()) {
                                    *o += sigma * *x;
                                }
                                Ok(())
                            })?;
                            while locked < b
                                && self.blk.resid[locked] <= c.eig_tol * hnorm
                                && self.blk.theta[locked] < -tau
                            {
                                locked += 1;
                            }
                            if locked >= wanted || locked == b {
                                break;
                            }
                        }
                        if solved {
                            break;
                        }
                    }
                    Err(SolveError::Singular { .. }) => {}
                    Err(e) => return Err(e),
                }
                sigma -= r;
            }
            if !solved {
                break;
            }
        }
        self.sort_locked(locked);
        let found = locked.min(wanted);
        for j in 0..found {
            self.blk.resid[j] /= hnorm.max(T::<M>::MIN_POSITIVE);
        }
        info.found = found;
        self.carried = b;
        Ok(())
    }

    /// Sorts the first `n` pairs by `theta` ascending.
    fn sort_locked(&mut self, n: usize) {
        for i in 0..n {
            let mut m = i;
            for j in i + 1..n {
                if self.blk.theta[j] < self.blk.theta[m] {
                    m = j;
                }
            }
            if m != i {
                self.blk.theta.swap(i, m);
                self.blk.resid.swap(i, m);
                self.blk.v.swap(i, m);
            }
        }
    }
}

impl<M: Model, const K: usize> Block<M, K> {
    /// Rayleigh-Ritz on columns `from..to` of `v` (orthonormal, orthogonal to the columns
    /// before): `w = H v`, the small eigenproblem, `v` and `w` rotated to the Ritz vectors,
    /// `theta` ascending, residual norms `|H v - theta v|` into `resid`; `hnorm` is raised
    /// to the largest `|H v|`.
    fn rayleigh_ritz(
        &mut self,
        from: usize,
        to: usize,
        hnorm: &mut M::Scalar,
        mut product: impl FnMut(&M::Vector, &mut M::Vector) -> Result<(), SolveError>,
    ) -> Result<(), SolveError> {
        type T<M> = <M as Model>::Scalar;
        let zero = T::<M>::ZERO;
        let n = to - from;
        for j in from..to {
            product(&self.v[j], &mut self.w[j])?;
        }
        for i in 0..n {
            for j in 0..=i {
                let s = dot(self.v[from + i].as_ref(), self.w[from + j].as_ref());
                let s2 = dot(self.v[from + j].as_ref(), self.w[from + i].as_ref());
                let s = T::<M>::c(0.5) * (s + s2);
                self.a[i][j] = s;
                self.a[j][i] = s;
            }
        }
        jacobi(&mut self.a, &mut self.q, n);
        rotate::<M, K>(&mut self.v, from, n, &self.q);
        rotate::<M, K>(&mut self.w, from, n, &self.q);
        for i in 0..n {
            let th = self.a[i][i];
            self.theta[from + i] = th;
            let mut r2 = zero;
            for (wi, vi) in self.w[from + i]
                .as_ref()
                .iter()
                .zip(self.v[from + i].as_ref())
            {
                let r = *wi - th * *vi;
                r2 += r * r;
            }
            self.resid[from + i] = r2.sqrt();
            *hnorm = hnorm.max(norm(self.w[from + i].as_ref()));
        }
        Ok(())
    }
}

/// Solve passes per factorisation of the eigen search.
const PASSES: usize = 3;

/// `x <- (I - V V') x` (twice, for orthogonality to rounding).
fn project<T: Real, V: AsRef<[T]> + AsMut<[T]>>(v: &[V], x: &mut V) {
    for _ in 0..2 {
        for vi in v {
            let s = dot(vi.as_ref(), x.as_ref());
            for (xi, vv) in x.as_mut().iter_mut().zip(vi.as_ref()) {
                *xi -= s * *vv;
            }
        }
    }
}

/// The shift in `[e, 4 e]` (`e * 2^(j/8)`, `j = 0..=16`) of largest relative distance
/// `min_i |theta_i + s| / s` from the pairs' `-theta_i` (the first with distance above 1/4).
fn away_from<T: Real>(e: T, theta: &[T]) -> T {
    let mut best = (e, T::ZERO);
    for j in 0..=16 {
        let s = e * T::c(2f64.powf(j as f64 / 8.0));
        let dist = theta
            .iter()
            .fold(T::MAX, |m, th| m.min((*th + s).abs() / s));
        if dist > T::c(0.25) {
            return s;
        }
        if dist > best.1 {
            best = (s, dist);
        }
    }
    best.0
}

/// Modified Gram-Schmidt (two passes) on columns `from..to` of `v` against all columns
/// before them; a column that vanishes is replaced by a random one.
fn orthonormalise<M: Model>(v: &mut [M::Vector], from: usize, to: usize, rng: &mut SplitMix64) {
    type T<M> = <M as Model>::Scalar;
    for j in from..to {
        for attempt in 0..4 {
            let (done, rest) = v.split_at_mut(j);
            let x = &mut rest[0];
            let before = norm(x.as_ref());
            project(done, x);
            let after = norm(x.as_ref());
            if after > T::<M>::c(1e-3) * before && after.finite() && after > T::<M>::ZERO {
                for xi in x.as_mut() {
                    *xi /= after;
                }
                break;
            }
            let _ = attempt;
            for xi in x.as_mut() {
                *xi = T::<M>::c(rng.symmetric());
            }
        }
    }
}

/// Columns `from..from + n` of `v` times the `n x n` matrix `q`, row by row.
fn rotate<M: Model, const K: usize>(
    v: &mut [M::Vector; K],
    from: usize,
    n: usize,
    q: &[[M::Scalar; K]; K],
) {
    let mut row = [M::Scalar::ZERO; K];
    for r in 0..M::N_PARAMS {
        for (i, x) in row[..n].iter_mut().enumerate() {
            *x = v[from + i].as_ref()[r];
        }
        for j in 0..n {
            let mut s = M::Scalar::ZERO;
            for (i, x) in row[..n].iter().enumerate() {
                s += *x * q[i][j];
            }
            v[from + j].as_mut()[r] = s;
        }
    }
}

/// Cyclic Jacobi on the leading `n x n` block of the symmetric `a`: on return its diagonal
/// holds the eigenvalues ascending and the columns of `q` the eigenvectors (`a = Q D Q'`).
#[allow(clippy::needless_range_loop)] // (two-index rotations of a small matrix)
fn jacobi<T: Real, const K: usize>(a: &mut [[T; K]; K], q: &mut [[T; K]; K], n: usize) {
    for (i, row) in q[..n].iter_mut().enumerate() {
        for (j, x) in row[..n].iter_mut().enumerate() {
            *x = if i == j { T::ONE } else { T::ZERO };
        }
    }
    for _ in 0..60 {
        let mut off = T::ZERO;
        let mut diag = T::ZERO;
        for i in 0..n {
            diag += a[i][i] * a[i][i];
            for j in 0..i {
                off += a[i][j] * a[i][j];
            }
        }
        if !(off > T::EPSILON * T::EPSILON * diag * T::c(1e-4)) {
            break;
        }
        for p in 0..n {
            for r in p + 1..n {
                let apr = a[p][r];
                if apr == T::ZERO {
                    continue;
                }
                let theta = (a[r][r] - a[p][p]) / (T::c(2.0) * apr);
                let at = theta.abs();
                let tt = if at > T::c(1e100f64.min(T::MAX.to_f64().sqrt())) {
                    T::ONE / (T::c(2.0) * at)
                } else {
                    T::ONE / (at + (at * at + T::ONE).sqrt())
                };
                let tt = if theta < T::ZERO { -tt } else { tt };
                let cs = T::ONE / (tt * tt + T::ONE).sqrt();
                let sn = tt * cs;
                for row in a[..n].iter_mut() {
                    let (x, y) = (row[p], row[r]);
                    row[p] = cs * x - sn * y;
                    row[r] = sn * x + cs * y;
                }
                for k in 0..n {
                    let (x, y) = (a[p][k], a[r][k]);
                    a[p][k] = cs * x - sn * y;
                    a[r][k] = sn * x + cs * y;
                }
                for row in q[..n].iter_mut() {
                    let (x, y) = (row[p], row[r]);
                    row[p] = cs * x - sn * y;
                    row[r] = sn * x + cs * y;
                }
            }
        }
    }
    // sort ascending (selection), permuting q's columns
    for i in 0..n {
        let mut m = i;
        for j in i + 1..n {
            if a[j][j] < a[m][m] {
                m = j;
            }
        }
        if m != i {
            let (x, y) = (a[i][i], a[m][m]);
            a[i][i] = y;
            a[m][m] = x;
            for row in q[..n].iter_mut() {
                row.swap(i, m);
            }
        }
    }
}

impl<M: Model, const K: usize> Optimizer<M> for SaddleFreeNewton<M, K> {
    fn step(
        &mut self,
        net: &mut M,
        x: &M::Input,
        t: &M::Target,
    ) -> Result<StepReport<M::Scalar>, SolveError> {
        SaddleFreeNewton::step(self, net, x, t)
    }
    fn name(&self) -> &'static str {
        "saddle-free Newton"
    }
}
