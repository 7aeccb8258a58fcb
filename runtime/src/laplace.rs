//! The Laplace approximation around trained parameters: predictive covariances of the
//! outputs at new inputs, and the log evidence with its maximiser (docs/math.md sections 8.6 and 8.7).
//!
//! - [`output_jacobian`]: the rows of `J* = d u(x*) / d w` at one input (`O x N`), one
//!   recorded forward pass at batch 1 and one backward pass per output row.
//! - [`predictive_cov`]: `J* (A + eps I)^{-1} J*'` (`O x O`) for any factorisation: per
//!   output `k` one backward pass (`J*' e_k`), one solve and one forward tangent pass
//!   (`J* s`), which gives the whole column `k`; so `O` solves, two `N`-vectors of caller
//!   storage, no `O x N` Jacobian. [`predictive_cov_all`] does it for a slice of queries.
//! - [`Evidence`]: the log evidence of a trained net under an isotropic Gaussian prior of
//!   precision `alpha` and (for MSE) a Gaussian noise of precision `beta`, its derivatives in
//!   `log alpha` and `log beta` (exact: the trace of the inverse comes from the selected
//!   inversion), and [`Evidence::maximise`], MacKay's fixed-point updates with an iteration
//!   cap and a tolerance.
//!
//! Nothing here allocates; the storages' factorisations do the linear algebra.

use core::fmt;

use nalgebra::SMatrix;

use crate::chain::{Chain, ConstZero, StageStack};
use crate::curvature::Curvature;
use crate::error::{NetError, SolveError};
use crate::layer::{batch_matrix, zero_mat};
use crate::net::check_params;
use crate::real::{all_finite, Real};
use crate::solver::Factorization;
use crate::woodbury::Woodbury;
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// Checks one query input.
fn check_query<T: Real, const I: usize>(sample: usize, x: &[T; I]) -> Result<(), NetError> {
    match x.iter().position(|v| !v.finite()) {
        Some(index) => Err(NetError::NonFiniteInput { sample, index }),
        None => Ok(()),
    }
}

/// The outputs `u(x)` of one input and the rows of the parameter Jacobian
/// `J*[k] = d u_k(x) / d w` (in the flat parameter order) into `jac`: one recorded forward
/// pass at batch 1 and one backward pass seeded with the output cotangent `e_k` per row.
pub fn output_jacobian<T, Ls, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    x: &[T; I],
    jac: &mut [[T; N]; O],
) -> Result<[T; O], NetError>
where
    T: Real,
    Ls: Chain<T, 1, I, O>,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    check_query(0, x)?;
    check_params(layers)?;
    let mut tapes = <Ls::Tapes as ConstZero>::ZERO;
    let z = batch_matrix(&[*x]);
    let u = layers.record(&mut tapes, &z);
    if !all_finite(u.as_slice()) {
        return Err(NetError::NonFiniteResult);
    }
    for (k, row) in jac.iter_mut().enumerate() {
        let mut beta: SMatrix<T, O, 1> = zero_mat();
        beta[(k, 0)] = T::ONE;
        let _ = layers.jtv(&tapes, &z, &beta, row);
        if !all_finite(row) {
            return Err(NetError::NonFiniteResult);
        }
    }
    Ok(u.data.0[0])
}

/// The outputs `u(x)` of one input and the predictive covariance
/// `cov = J* (A + eps I)^{-1} J*'` (`O x O`, symmetric; `cov[j][k]`) under the
/// factorisation `fact` (with `A = G`, the Gauss-Newton matrix, this is the Laplace
/// posterior's covariance of the linearised outputs when `eps` is the prior precision in the
/// loss's units; docs/math.md sections 8.6 and 8.7). Column `k` is `J* s_k` with `s_k = (A + eps
/// I)^{-1} J*' e_k`: one backward pass, one solve and one forward tangent pass per output.
/// `work` is scratch for the two parameter-sized vectors. Errors: a non-finite input or
/// parameter ([`SolveError::Net`]), the solve's own errors, a non-finite result.
pub fn predictive_cov<T, Ls, F, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    fact: &mut F,
    x: &[T; I],
    work: &mut [[T; N]; 2],
    cov: &mut [[T; O]; O],
) -> Result<[T; O], SolveError>
where
    T: Real,
    Ls: Chain<T, 1, I, O>,
    F: Factorization<Scalar = T, Vector = [T; N]> + ?Sized,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    check_params(layers)?;
    one_query(layers, fact, 0, x, work, cov)
}

/// [`predictive_cov`] after the parameter check; `sample` names the query in errors.
fn one_query<T, Ls, F, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    fact: &mut F,
    sample: usize,
    x: &[T; I],
    work: &mut [[T; N]; 2],
    cov: &mut [[T; O]; O],
) -> Result<[T; O], SolveError>
where
    T: Real,
    Ls: Chain<T, 1, I, O>,
    F: Factorization<Scalar = T, Vector = [T; N]> + ?Sized,
{
    check_query(sample, x)?;
    let mut tapes = <Ls::Tapes as ConstZero>::ZERO;
    let z = batch_matrix(&[*x]);
    let u = layers.record(&mut tapes, &z);
    if !all_finite(u.as_slice()) {
        return Err(SolveError::NonFiniteResult);
    }
    let [g, s] = work;
    #[allow(clippy::needless_range_loop)]
    for k in 0..O {
        let mut beta: SMatrix<T, O, 1> = zero_mat();
        beta[(k, 0)] = T::ONE;
        let _ = layers.jtv(&tapes, &z, &beta, g);
        fact.solve(g, s)?;
        let y = layers.jv(&mut tapes, &z, None, s);
        for j in 0..O {
            cov[j][k] = y[(j, 0)];
        }
    }
    #[allow(clippy::needless_range_loop)]
    for j in 0..O {
        for k in 0..j {
            let m = (cov[j][k] + cov[k][j]) * T::c(0.5);
            cov[j][k] = m;
            cov[k][j] = m;
        }
    }
    if !all_finite(cov.as_flattened()) {
        return Err(SolveError::NonFiniteResult);
    }
    Ok(u.data.0[0])
}

/// [`predictive_cov`] for every query of `xs`: outputs into `outputs[q]`, covariances into
/// `covs[q]` (both of `xs`'s length; another length is a [`NetError::LengthMismatch`]).
/// `O` solves per query.
pub fn predictive_cov_all<T, Ls, F, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    fact: &mut F,
    xs: &[[T; I]],
    work: &mut [[T; N]; 2],
    outputs: &mut [[T; O]],
    covs: &mut [[[T; O]; O]],
) -> Result<(), SolveError>
where
    T: Real,
    Ls: Chain<T, 1, I, O>,
    F: Factorization<Scalar = T, Vector = [T; N]> + ?Sized,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    for len in [outputs.len(), covs.len()] {
        if len != xs.len() {
            return Err(NetError::LengthMismatch {
                samples: xs.len(),
                len,
            }
            .into());
        }
    }
    check_params(layers)?;
    for (q, x) in xs.iter().enumerate() {
        outputs[q] = one_query(layers, fact, q, x, work, &mut covs[q])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// MAP fit

/// Settings of [`fit_map`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MapConfig {
    /// Step cap (each step fills the Gauss-Newton storage once).
    pub max_steps: usize,
    /// Damping trials per step (each one factorisation and one solve).
    pub max_trials: usize,
    /// Initial damping `lambda` (added to `eps`).
    pub lambda: f64,
    /// Stop when an accepted step lowers the objective by less than this, relatively.
    pub rel_gain: f64,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            max_steps: 200,
            max_trials: 12,
            lambda: 1e-3,
            rel_gain: 1e-13,
        }
    }
}

/// Why [`fit_map`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MapStop {
    /// An accepted step gained less than `rel_gain`.
    Converged,
    /// No damping of `max_trials` lowered the objective (the parameters are those of the
    /// last accepted step: a minimum to the precision of the solve).
    NoDecrease,
    /// `max_steps` steps were taken.
    MaxSteps,
}

/// What [`fit_map`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapReport<T> {
    /// `L(w) + eps |w|^2 / 2` at the returned parameters.
    pub objective: T,
    /// The batch loss `L(w)` there (what [`Evidence::loss`] wants).
    pub loss: T,
    /// `|w|^2` there (what [`Evidence::weight_sq`] wants).
    pub weight_sq: T,
    /// Accepted steps.
    pub steps: usize,
    /// Why it stopped.
    pub stop: MapStop,
}

/// The MAP parameters under the prior `N(0, 1 / alpha)`: minimises `L(w) + eps |w|^2 / 2`
/// (`eps = alpha / (beta n)`, docs/math.md section 8.7) from the net's current parameters by
/// Levenberg-Marquardt with the exact solve of `G + (eps + lambda) I` in the net's
/// Gauss-Newton form, `G` the curvature of `L` (so at the answer `gn` holds the Laplace
/// posterior's precision, up to `eps`, at parameters one accepted step before the last:
/// refill it before [`Evidence::at`] or [`predictive_cov`]). A step is accepted when it
/// lowers the objective; the damping falls by 0.3 after an accepted step and rises tenfold
/// after a rejected trial. `work` holds four parameter vectors. On success the net holds
/// the best parameters found; on error it holds the last accepted ones. Errors: a
/// non-positive or non-finite `eps` or setting ([`SolveError::Config`]), a failed
/// curvature fill or solve.
#[allow(clippy::too_many_arguments)]
pub fn fit_map<M: crate::optim::Model>(
    net: &mut M,
    gn: &mut M::GaussNewton,
    scratch: &mut M::GnScratch,
    work: &mut [M::Vector; 4],
    x: &M::Input,
    t: &M::Target,
    eps: M::Scalar,
    config: MapConfig,
) -> Result<MapReport<M::Scalar>, SolveError> {
    use crate::optim::{positive, require};
    let check = || -> Result<(), crate::error::ConfigError> {
        positive("eps", eps)?;
        positive("lambda", config.lambda)?;
        positive("rel_gain", config.rel_gain)?;
        let trials = config.max_trials as f64;
        require("max_trials", trials, config.max_trials > 0, "at least 1")
    };
    check().map_err(SolveError::Config)?;
    let half = M::Scalar::c(0.5);
    let sq = |v: &M::Vector| v.as_ref().iter().fold(M::Scalar::ZERO, |a, &b| a + b * b);
    let [g, w, step, trial] = work;
    let mut lambda = M::Scalar::c(config.lambda);
    let mut steps = 0;
    let report = |net: &M, steps, stop| -> Result<MapReport<M::Scalar>, SolveError> {
        let mut p = M::Vector::ZERO;
        net.get_params(&mut p);
        let loss = net.loss_at(x, t)?;
        let weight_sq = sq(&p);
        Ok(MapReport {
            objective: loss + half * eps * weight_sq,
            loss,
            weight_sq,
            steps,
            stop,
        })
    };
    for _ in 0..config.max_steps {
        let loss = net.gradient_gauss_newton_into(scratch, gn, x, t, g)?;
        net.get_params(w);
        let obj = loss + half * eps * sq(w);
        // step = (G + (eps + lambda) I)^{-1} (-(g + eps w))
        for (gi, &wi) in g.as_mut().iter_mut().zip(w.as_ref()) {
            *gi = -(*gi + eps * wi);
        }
        let mut gained = None;
        for _ in 0..config.max_trials {
            let solved = net
                .factor_current(gn, eps + lambda)
                .and_then(|mut f| f.solve(g, step));
            if solved.is_ok() {
                for ((ti, &wi), &si) in trial.as_mut().iter_mut().zip(w.as_ref()).zip(step.as_ref())
                {
                    *ti = wi + si;
                }
                if net.put_params(trial).is_ok() {
                    match net.loss_at(x, t) {
                        Ok(tl) if tl + half * eps * sq(trial) < obj => {
                            gained = Some(obj - (tl + half * eps * sq(trial)));
                            break;
                        }
                        _ => net.put_params(w)?,
                    }
                }
            }
            // a failed solve, a non-finite step or no decrease: more damping
            lambda *= M::Scalar::c(10.0);
        }
        match gained {
            None => return report(net, steps, MapStop::NoDecrease),
            Some(gain) => {
                steps += 1;
                lambda = (lambda * M::Scalar::c(0.3)).max(M::Scalar::c(1e-12));
                if gain <= M::Scalar::c(config.rel_gain) * obj.abs() {
                    return report(net, steps, MapStop::Converged);
                }
            }
        }
    }
    report(net, steps, MapStop::MaxSteps)
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// A Gauss-Newton storage the evidence can query: `log det(G + eps I)` and
/// `trace (G + eps I)^{-1}` at any `eps > 0`, from one factorisation (the selected inversion
/// of docs/math.md section 8; the determinant lemma for the Woodbury form). Implemented by
/// [`Curvature`] (filled with the Gauss-Newton blocks) and [`Woodbury`].
pub trait LaplaceCurvature {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// Number of parameters.
    fn params(&self) -> usize;
    /// `(log det(G + eps I), trace (G + eps I)^{-1})`. A matrix that is not positive
    /// definite at this eps (a negative determinant, or an exact Hessian's storage with
    /// negative eigenvalues) is [`SolveError::Singular`]; the factorisation's own errors pass
    /// through.
    fn log_det_trace_inv(
        &mut self,
        eps: Self::Scalar,
    ) -> Result<(Self::Scalar, Self::Scalar), SolveError>;
}

impl<S: StageStack, const N: usize> LaplaceCurvature for Curvature<S, N> {
    type Scalar = S::Scalar;
    fn params(&self) -> usize {
        N
    }
    fn log_det_trace_inv(&mut self, eps: S::Scalar) -> Result<(S::Scalar, S::Scalar), SolveError> {
        let mut f = self.factor(eps)?;
        if f.inertia().negative > 0 || f.inertia().zero > 0 {
            return Err(SolveError::Singular { stage: 0 });
        }
        let ld = f.log_det()?;
        Ok((ld.log_abs, f.trace_inv()?))
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    LaplaceCurvature for Woodbury<W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
{
    type Scalar = T;
    fn params(&self) -> usize {
        N
    }
    fn log_det_trace_inv(&mut self, eps: T) -> Result<(T, T), SolveError> {
        let f = self.factor(eps)?;
        let ld = f.log_det()?;
        if ld.sign < 0 {
            return Err(SolveError::Singular { stage: 0 });
        }
        Ok((ld.log_abs, f.trace_inv_gram()?))
    }
}

/// The likelihood the net's batch loss `L` stands for (docs/math.md sections 8.6 and 8.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Likelihood {
    /// `Mse`: `L = 1/(2n) sum |u_n - t_n|^2`, Gaussian noise of precision `beta` on each of
    /// the `n O` outputs, so `log p(D | w) = -beta n L + (n O / 2) log(beta / 2 pi)`.
    Gaussian,
    /// The loss is the mean negative log-likelihood (softmax cross-entropy):
    /// `log p(D | w) = -n L`; no noise precision (`beta` is fixed at 1).
    MeanNegLogLikelihood,
}

/// The data the evidence of a trained net needs besides its curvature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence<T> {
    /// What the loss stands for.
    pub likelihood: Likelihood,
    /// `n`: samples the batch loss and the Gauss-Newton matrix are means over.
    pub samples: usize,
    /// Outputs per sample (`O`; the observations per sample of the Gaussian likelihood).
    pub outputs: usize,
    /// The batch loss `L` at the trained parameters (a mean over the `n` samples).
    pub loss: T,
    /// `|w|^2` of the trained parameters.
    pub weight_sq: T,
}

/// Prior precision `alpha` and noise precision `beta` (1 for
/// [`Likelihood::MeanNegLogLikelihood`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper<T> {
    /// Prior precision of every parameter.
    pub alpha: T,
    /// Noise precision (Gaussian likelihood).
    pub beta: T,
}

/// The log evidence at one `(alpha, beta)` and what comes with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvidenceValue<T> {
    /// `log p(D | alpha, beta)` in the Laplace approximation at the trained parameters.
    pub log_evidence: T,
    /// `d log p / d log alpha = (gamma - alpha |w|^2) / 2`.
    pub d_log_alpha: T,
    /// `d log p / d log beta = (n O - gamma) / 2 - beta n L` (0 for
    /// [`Likelihood::MeanNegLogLikelihood`]).
    pub d_log_beta: T,
    /// The number of well-determined parameters `gamma = N - alpha tr(A^{-1})`.
    pub gamma: T,
    /// The damping the Gauss-Newton storage was factored at: `eps = alpha / (beta n)`.
    pub eps: T,
}

/// Settings of [`Evidence::maximise`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaximiseConfig {
    /// Iteration cap.
    pub max_iter: usize,
    /// Stop when `alpha` and `beta` change by less than this, relatively.
    pub tol: f64,
}

impl Default for MaximiseConfig {
    fn default() -> Self {
        MaximiseConfig {
            max_iter: 500,
            tol: 1e-10,
        }
    }
}

/// Why the evidence or its maximiser cannot vouch for an answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EvidenceError {
    /// Factoring `G + eps I` or the selected inversion failed.
    Solve(SolveError),
    /// A setting or datum out of range (a non-positive or non-finite `alpha`, `beta`,
    /// `samples`, a negative or non-finite loss or `|w|^2`).
    Invalid(&'static str),
    /// The fixed point degenerated: `|w|^2 = 0` or `L = 0` (a precision would be infinite),
    /// or `gamma >= n O` (no degrees of freedom left for the noise).
    Degenerate(&'static str),
    /// A value overflowed.
    NonFinite,
    /// The iteration cap was reached before the tolerance.
    NotConverged {
        /// Iterations done.
        iterations: usize,
        /// The last relative change of `(alpha, beta)`.
        change: f64,
    },
}

impl From<SolveError> for EvidenceError {
    fn from(e: SolveError) -> Self {
        EvidenceError::Solve(e)
    }
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::Solve(e) => write!(f, "evidence: {e}"),
            EvidenceError::Invalid(what) => write!(f, "evidence: invalid {what}"),
            EvidenceError::Degenerate(what) => {
                write!(f, "evidence: degenerate fixed point: {what}")
            }
            EvidenceError::NonFinite => write!(f, "evidence: a value overflowed"),
            EvidenceError::NotConverged { iterations, change } => write!(
                f,
                "evidence: not converged after {iterations} iterations (relative change {change:e})"
            ),
        }
    }
}

impl core::error::Error for EvidenceError {}

/// The result of [`Evidence::maximise`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Maximum<T> {
    /// The maximising precisions.
    pub hyper: Hyper<T>,
    /// The evidence there.
    pub value: EvidenceValue<T>,
    /// Fixed-point iterations done.
    pub iterations: usize,
}

impl<T: Real> Evidence<T> {
    fn check(&self) -> Result<(), EvidenceError> {
        if self.samples == 0 || self.outputs == 0 {
            return Err(EvidenceError::Invalid("samples or outputs (zero)"));
        }
        if !self.loss.finite() || self.loss < T::ZERO {
            return Err(EvidenceError::Invalid("loss"));
        }
        if !self.weight_sq.finite() || self.weight_sq < T::ZERO {
            return Err(EvidenceError::Invalid("weight_sq"));
        }
        Ok(())
    }

    fn beta_of(&self, h: &Hyper<T>) -> T {
        match self.likelihood {
            Likelihood::Gaussian => h.beta,
            Likelihood::MeanNegLogLikelihood => T::ONE,
        }
    }

    /// The log evidence at `hyper` (docs/math.md sections 8.6 and 8.7), with its derivatives in
    /// `log alpha` and `log beta`:
    ///
    /// `log p(D) = -beta n L - alpha |w|^2 / 2 + (N/2) log alpha + (n O / 2) log(beta / 2 pi)
    ///   - (1/2) log det(beta n (G + eps I))`, `eps = alpha / (beta n)`
    ///
    /// (the `log(beta / 2 pi)` term only for the Gaussian likelihood). One factorisation of `curv` (which must hold the Gauss-Newton matrix of
    /// the batch loss at the trained parameters).
    pub fn at<C: LaplaceCurvature<Scalar = T> + ?Sized>(
        &self,
        curv: &mut C,
        hyper: Hyper<T>,
    ) -> Result<EvidenceValue<T>, EvidenceError> {
        self.check()?;
        let beta = self.beta_of(&hyper);
        let alpha = hyper.alpha;
        if !(alpha > T::ZERO) || !alpha.finite() {
            return Err(EvidenceError::Invalid("alpha"));
        }
        if !(beta > T::ZERO) || !beta.finite() {
            return Err(EvidenceError::Invalid("beta"));
        }
        let n = T::c(self.samples as f64);
        let np = T::c(curv.params() as f64);
        let d = n * T::c(self.outputs as f64);
        let s = beta * n;
        let eps = alpha / s;
        let (ld, tr) = curv.log_det_trace_inv(eps)?;
        let half = T::c(0.5);
        let mut le = -s * self.loss - half * alpha * self.weight_sq + half * np * alpha.ln()
            - half * (np * s.ln() + ld);
        let gamma = np - eps * tr;
        let d_log_alpha = half * (gamma - alpha * self.weight_sq);
        let d_log_beta = match self.likelihood {
            Likelihood::Gaussian => {
                le += half * d * (beta / T::c(2.0 * core::f64::consts::PI)).ln();
                half * (d - gamma) - s * self.loss
            }
            Likelihood::MeanNegLogLikelihood => T::ZERO,
        };
        let out = EvidenceValue {
            log_evidence: le,
            d_log_alpha,
            d_log_beta,
            gamma,
            eps,
        };
        if !all_finite(&[le, d_log_alpha, d_log_beta, gamma]) {
            return Err(EvidenceError::NonFinite);
        }
        Ok(out)
    }

    /// Maximises the evidence over `alpha` (and `beta`, Gaussian likelihood) at the trained
    /// parameters from `start`, by MacKay's fixed-point updates
    /// `alpha <- gamma / |w|^2`, `beta <- (n O - gamma) / (2 n L)` (both derivatives of
    /// [`Self::at`] vanish at the fixed point), each taken in log space as a Newton step on
    /// the fixed-point equation: the MacKay step scaled by the secant of the last two
    /// iterates (clipped so the step never exceeds MacKay's; docs/math.md section 8.7). One
    /// factorisation per iteration. Stops when MacKay's update would change both by less
    /// than `config.tol` relatively (and returns that update);
    /// [`EvidenceError::NotConverged`] at `config.max_iter`.
    pub fn maximise<C: LaplaceCurvature<Scalar = T> + ?Sized>(
        &self,
        curv: &mut C,
        start: Hyper<T>,
        config: MaximiseConfig,
    ) -> Result<Maximum<T>, EvidenceError> {
        self.check()?;
        if !(config.tol > 0.0) || !config.tol.is_finite() {
            return Err(EvidenceError::Invalid("tol"));
        }
        if !(self.weight_sq > T::ZERO) {
            return Err(EvidenceError::Degenerate("|w|^2 = 0"));
        }
        let gaussian = self.likelihood == Likelihood::Gaussian;
        if gaussian && !(self.loss > T::ZERO) {
            return Err(EvidenceError::Degenerate("loss = 0"));
        }
        let n = T::c(self.samples as f64);
        let d = n * T::c(self.outputs as f64);
        let mut h = Hyper {
            alpha: start.alpha,
            beta: self.beta_of(&start),
        };
        let mut change = f64::INFINITY;
        // In log space MacKay's update is x <- g(x) with g(x) = ln gamma - ln |w|^2 for
        // x = ln alpha (y <- ln(nO - gamma) - ln(2nL) for y = ln beta). Its fixed point is the
        // root of phi(x) = g(x) - x, and -1 <= g'(x) <= 0 (gamma falls as alpha grows, and
        // |d ln gamma / d ln alpha| <= 1), so Newton's step on phi is the MacKay step times
        // t = 1 / (1 - g') in [1/2, 1]. t comes from the secant of the last two iterates,
        // clipped to that range (to (0, 1] for beta, whose g' may be below -1): near a slow,
        // oscillating fixed point (g' near -1) the plain update takes hundreds of iterations,
        // the secant-damped one a few. The first step, and any step without a usable secant,
        // is MacKay's (t = 1).
        let mut prev: Option<(f64, f64, f64, f64)> = None; // (x, phi, y, psi)
        for it in 0..config.max_iter {
            let v = self.at(curv, h)?;
            let alpha = v.gamma / self.weight_sq;
            let beta = if gaussian {
                if !(d > v.gamma) {
                    return Err(EvidenceError::Degenerate("gamma >= n O"));
                }
                (d - v.gamma) / (T::c(2.0) * n * self.loss)
            } else {
                T::ONE
            };
            if !(alpha > T::ZERO) || !alpha.finite() || !(beta > T::ZERO) || !beta.finite() {
                return Err(EvidenceError::NonFinite);
            }
            let rel = |a: T, b: T| ((a - b).abs() / b.abs()).to_f64();
            change = rel(alpha, h.alpha).max(rel(beta, h.beta));
            if change < config.tol {
                h = Hyper { alpha, beta };
                let value = self.at(curv, h)?;
                return Ok(Maximum {
                    hyper: h,
                    value,
                    iterations: it + 1,
                });
            }
            let (x, y) = (h.alpha.to_f64().ln(), h.beta.to_f64().ln());
            let (phi, psi) = (alpha.to_f64().ln() - x, beta.to_f64().ln() - y);
            // t = (x - x_prev) / (phi_prev - phi): the secant's -1/phi'.
            let secant = |dx: f64, dphi: f64, lo: f64| {
                let t = dx / dphi;
                if t.is_finite() && dphi != 0.0 {
                    t.clamp(lo, 1.0)
                } else {
                    1.0
                }
            };
            let (ta, tb) = match prev {
                Some((xp, phip, yp, psip)) => (
                    secant(x - xp, phip - phi, 0.5),
                    secant(y - yp, psip - psi, 0.05),
                ),
                None => (1.0, 1.0),
            };
            prev = Some((x, phi, y, psi));
            let next = Hyper {
                alpha: T::c((x + ta * phi).exp()),
                beta: if gaussian {
                    T::c((y + tb * psi).exp())
                } else {
                    T::ONE
                },
            };
            if !(next.alpha > T::ZERO)
                || !next.alpha.finite()
                || !(next.beta > T::ZERO)
                || !next.beta.finite()
            {
                return Err(EvidenceError::NonFinite);
            }
            h = next;
        }
        Err(EvidenceError::NotConverged {
            iterations: config.max_iter,
            change,
        })
    }
}
