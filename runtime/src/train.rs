//! A training driver: a loop of optimizer steps over shuffled mini-batches, with
//! tolerances, validation on the exact whole-set loss, patience and restore-best, a
//! termination reason and a final report.
//!
//! [`Trainer::fit`] is generic over the network (any [`Model`]) and the optimizer (any
//! [`Optimizer`]): it draws each batch from a [`MiniBatches`] stream (its seed and
//! [`Remainder`](crate::data::Remainder) choose the order), calls
//! [`Optimizer::step`], checks the stopping rules of its [`TrainConfig`], and every
//! [`TrainConfig::validate_every`] evaluates the loss over the whole validation set
//! ([`Model::loss_all_at`], no padding). The best validation loss's parameters are kept in
//! the trainer and put back at the end ([`TrainConfig::restore_best`]), also when a step
//! fails: an error ends the run with its [`TerminationReason`], never a panic, and nothing
//! learnt is lost.
//!
//! `no_std`, and nothing allocates: the trainer owns a batch buffer and two parameter
//! vectors. An [`Observer`] sees every step and validation and can stop the run; with the
//! `log` feature [`LogObserver`] writes `log` records, with the `progress` feature
//! [`ProgressObserver`] draws an `indicatif` progress bar.
//!
//! The stopping rules, checked in this order after every step:
//! 1. the step failed ([`TerminationReason::StepFailed`]);
//! 2. the gradient norm at the start of the step is at most `gtol`
//!    ([`TerminationReason::GradientConverged`]);
//! 3. the step was accepted and `|step| <= xtol (|params| + xtol)`
//!    ([`TerminationReason::StepConverged`]);
//! 4. at the end of an epoch with an accepted step, the epoch's training loss (the mean of
//!    its batch losses before each step) changed by at most `ftol` times the previous
//!    epoch's ([`TerminationReason::LossConverged`]);
//! 5. validation (when due): an error or a non-finite loss
//!    ([`TerminationReason::ValidationFailed`]), or `patience` validations in a row without
//!    improvement ([`TerminationReason::PatienceExhausted`]);
//! 6. the observer asked to stop ([`TerminationReason::Stopped`]);
//! 7. `max_epochs` epochs or `max_steps` steps ([`TerminationReason::MaxEpochs`],
//!    [`TerminationReason::MaxSteps`]).

use core::fmt;

use crate::chain::ConstZero;
use crate::data::{DataError, MiniBatches, Part};
use crate::error::{ConfigError, NetError, SolveError};
use crate::optim::{require, Model, Optimizer, StepReport};
use crate::real::{norm, Real};
#[allow(unused_imports)]
use nalgebra::{ComplexField, RealField};

/// When the trainer evaluates the validation set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ValidateEvery {
    /// At the end of every epoch.
    Epoch,
    /// Every `n` steps (`n >= 1`).
    Steps(u64),
}

/// Settings of [`Trainer`]; the defaults are those of [`TrainConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrainConfig<T> {
    /// Most optimizer steps (default 1000; at least 1).
    pub max_steps: u64,
    /// Most epochs (default 100; at least 1).
    pub max_epochs: u64,
    /// Relative change of the epoch's training loss at which training has converged
    /// (default `sqrt(EPSILON)`: 1.49e-8 for `f64`, 3.45e-4 for `f32`, MINPACK's; 0 turns
    /// the test off; finite, at least 0).
    pub ftol: T,
    /// Gradient norm (at the start of a step) at which training has converged (default 0:
    /// only an exactly zero gradient; finite, at least 0).
    pub gtol: T,
    /// Relative step length at which training has converged: an accepted step with `|step|
    /// <= xtol (|params| + xtol)` (default `sqrt(EPSILON)`; 0 turns it off; finite, at least
    /// 0).
    pub xtol: T,
    /// When to evaluate the validation set (default [`ValidateEvery::Epoch`]).
    pub validate_every: ValidateEvery,
    /// Validations in a row without improvement after which training stops (default 10; at
    /// least 1).
    pub patience: u32,
    /// A validation loss improves on the best when it is below `best - min_improvement
    /// |best|` (default 0: any decrease; in `[0, 1)`).
    pub min_improvement: T,
    /// Put the parameters of the best validation loss back at the end (default true).
    pub restore_best: bool,
}

impl<T: Real> Default for TrainConfig<T> {
    /// `max_steps` 1000, `max_epochs` 100, `ftol` sqrt(eps), `gtol` 0, `xtol` sqrt(eps),
    /// `validate_every` [`ValidateEvery::Epoch`], `patience` 10, `min_improvement` 0,
    /// `restore_best` true.
    fn default() -> Self {
        let sqrt_eps = T::EPSILON.sqrt();
        TrainConfig {
            max_steps: 1000,
            max_epochs: 100,
            ftol: sqrt_eps,
            gtol: T::ZERO,
            xtol: sqrt_eps,
            validate_every: ValidateEvery::Epoch,
            patience: 10,
            min_improvement: T::ZERO,
            restore_best: true,
        }
    }
}

impl<T: Real> TrainConfig<T> {
    /// With at most this many steps.
    pub fn with_max_steps(mut self, n: u64) -> Self {
        self.max_steps = n;
        self
    }
    /// With at most this many epochs.
    pub fn with_max_epochs(mut self, n: u64) -> Self {
        self.max_epochs = n;
        self
    }
    /// With this loss tolerance.
    pub fn with_ftol(mut self, ftol: T) -> Self {
        self.ftol = ftol;
        self
    }
    /// With this gradient-norm tolerance.
    pub fn with_gtol(mut self, gtol: T) -> Self {
        self.gtol = gtol;
        self
    }
    /// With this step tolerance.
    pub fn with_xtol(mut self, xtol: T) -> Self {
        self.xtol = xtol;
        self
    }
    /// With this validation schedule.
    pub fn with_validate_every(mut self, every: ValidateEvery) -> Self {
        self.validate_every = every;
        self
    }
    /// With this patience.
    pub fn with_patience(mut self, patience: u32) -> Self {
        self.patience = patience;
        self
    }
    /// With this relative improvement threshold.
    pub fn with_min_improvement(mut self, min_improvement: T) -> Self {
        self.min_improvement = min_improvement;
        self
    }
    /// Restoring the best parameters at the end, or not.
    pub fn with_restore_best(mut self, restore_best: bool) -> Self {
        self.restore_best = restore_best;
        self
    }

    /// Checks every setting: at least one step and one epoch, finite tolerances `>= 0`, a
    /// validation period and a patience of at least 1, `min_improvement` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let count = |field, n: u64| require(field, T::c(n as f64), n >= 1, "at least 1");
        count("max_steps", self.max_steps)?;
        count("max_epochs", self.max_epochs)?;
        for (field, v) in [
            ("ftol", self.ftol),
            ("gtol", self.gtol),
            ("xtol", self.xtol),
        ] {
            require(
                field,
                v,
                v.finite() && v >= T::ZERO,
                "finite and at least 0",
            )?;
        }
        if let ValidateEvery::Steps(n) = self.validate_every {
            count("validate_every", n)?;
        }
        count("patience", u64::from(self.patience))?;
        crate::optim::unit("min_improvement", self.min_improvement)?;
        Ok(())
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TerminationReason {
    /// The epoch's training loss changed by at most `ftol` (relative).
    LossConverged,
    /// The gradient norm fell to `gtol`.
    GradientConverged,
    /// An accepted step was at most `xtol` relative to the parameters.
    StepConverged,
    /// `max_steps` steps were made.
    MaxSteps,
    /// `max_epochs` epochs were completed.
    MaxEpochs,
    /// `patience` validations in a row did not improve on the best.
    PatienceExhausted,
    /// The observer asked to stop.
    Stopped,
    /// An optimizer step failed (the net kept its parameters from before that step, or the
    /// best ones with restore-best).
    StepFailed(SolveError),
    /// The validation loss could not be evaluated or was not finite.
    ValidationFailed(NetError),
    /// The data could not be batched.
    Data(DataError),
}

impl TerminationReason {
    /// One of the three tolerances was met.
    pub fn converged(&self) -> bool {
        matches!(
            self,
            Self::LossConverged | Self::GradientConverged | Self::StepConverged
        )
    }

    /// The run ended on an error.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Self::StepFailed(_) | Self::ValidationFailed(_) | Self::Data(_)
        )
    }
}

impl fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LossConverged => f.write_str("converged: loss change within ftol"),
            Self::GradientConverged => f.write_str("converged: gradient norm within gtol"),
            Self::StepConverged => f.write_str("converged: step length within xtol"),
            Self::MaxSteps => f.write_str("reached max_steps"),
            Self::MaxEpochs => f.write_str("reached max_epochs"),
            Self::PatienceExhausted => {
                f.write_str("early stop: validation loss did not improve for `patience` checks")
            }
            Self::Stopped => f.write_str("stopped by the observer"),
            Self::StepFailed(e) => write!(f, "step failed: {e}"),
            Self::ValidationFailed(e) => write!(f, "validation failed: {e}"),
            Self::Data(e) => write!(f, "data error: {e}"),
        }
    }
}

/// What a run did (see [`Trainer::fit`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainReport<T> {
    /// Why it ended.
    pub reason: TerminationReason,
    /// Optimizer steps that returned a report.
    pub steps: u64,
    /// Epochs completed.
    pub epochs: u64,
    /// Steps accepted.
    pub accepted: u64,
    /// Steps rejected (the parameters were left unchanged).
    pub rejected: u64,
    /// Curvature factorisations over all steps.
    pub factorizations: u64,
    /// Exact loss over the whole training set at the parameters the net holds at the end
    /// (`None` if it could not be evaluated).
    pub train_loss: Option<T>,
    /// Exact validation loss at the parameters the net holds at the end (`None` without a
    /// validation set).
    pub val_loss: Option<T>,
    /// Best validation loss seen (step 0 is the initial parameters).
    pub best_val_loss: Option<T>,
    /// The step after which the best validation loss was seen.
    pub best_step: Option<u64>,
    /// Whether the best parameters were put back at the end.
    pub restored: bool,
    /// Batch loss before the last step.
    pub last_batch_loss: Option<T>,
}

fn opt_loss<T: Real>(f: &mut fmt::Formatter<'_>, name: &str, v: Option<T>) -> fmt::Result {
    match v {
        Some(v) => write!(f, ", {name} {:.6e}", v.to_f64()),
        None => Ok(()),
    }
}

impl<T: Real> fmt::Display for TrainReport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} steps ({} accepted, {} rejected), {} epochs, {} factorizations",
            self.reason, self.steps, self.accepted, self.rejected, self.epochs, self.factorizations
        )?;
        opt_loss(f, "train loss", self.train_loss)?;
        opt_loss(f, "val loss", self.val_loss)?;
        if let (Some(b), Some(s)) = (self.best_val_loss, self.best_step) {
            write!(f, ", best val loss {:.6e} at step {s}", b.to_f64())?;
        }
        if self.restored {
            f.write_str(" (restored)")?;
        }
        Ok(())
    }
}

/// One step as the observer sees it.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo<T> {
    /// Steps made so far, this one included (1 for the first).
    pub step: u64,
    /// Epochs completed before this step's batch.
    pub epoch: u64,
    /// Whether this step's batch completed an epoch.
    pub epoch_end: bool,
    /// The optimizer's report.
    pub report: StepReport<T>,
}

/// One validation as the observer sees it.
#[derive(Clone, Copy, Debug)]
pub struct ValidationInfo<T> {
    /// Steps made before it (0: the initial parameters).
    pub step: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// The exact validation loss.
    pub loss: T,
    /// The best so far (this one included).
    pub best: T,
    /// Whether this one is the new best.
    pub improved: bool,
    /// Validations in a row without improvement.
    pub bad: u32,
}

/// What the observer tells the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// End the run ([`TerminationReason::Stopped`]).
    Stop,
}

/// Hooks called by [`Trainer::fit`]; every method has a no-op default. `()` observes
/// nothing.
pub trait Observer<T> {
    /// Before the first step.
    fn on_start(&mut self, _config: &TrainConfig<T>) {}
    /// After every step.
    fn on_step(&mut self, _info: &StepInfo<T>) -> Control {
        Control::Continue
    }
    /// After every validation.
    fn on_validation(&mut self, _info: &ValidationInfo<T>) -> Control {
        Control::Continue
    }
    /// With the final report.
    fn on_end(&mut self, _report: &TrainReport<T>) {}
}

impl<T> Observer<T> for () {}

impl<T, O: Observer<T> + ?Sized> Observer<T> for &mut O {
    fn on_start(&mut self, config: &TrainConfig<T>) {
        (**self).on_start(config)
    }
    fn on_step(&mut self, info: &StepInfo<T>) -> Control {
        (**self).on_step(info)
    }
    fn on_validation(&mut self, info: &ValidationInfo<T>) -> Control {
        (**self).on_validation(info)
    }
    fn on_end(&mut self, report: &TrainReport<T>) {
        (**self).on_end(report)
    }
}

/// The training loop's state and buffers: a batch, the best parameters and a scratch
/// parameter vector. Its size is `size_of::<Trainer<M>>()` (two parameter vectors and one
/// batch); nothing allocates.
pub struct Trainer<M: Model> {
    config: TrainConfig<M::Scalar>,
    x: M::Input,
    t: M::Target,
    best: M::Vector,
    params: M::Vector,
    /// The step of the last validation of the current run.
    last_val: Option<u64>,
}

impl<M: Model> Trainer<M> {
    /// A trainer; the settings are validated.
    pub fn new(config: TrainConfig<M::Scalar>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Trainer {
            config,
            x: M::Input::ZERO,
            t: M::Target::ZERO,
            best: M::Vector::ZERO,
            params: M::Vector::ZERO,
            last_val: None,
        })
    }

    /// Validates and takes new settings.
    pub fn configure(&mut self, config: TrainConfig<M::Scalar>) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig<M::Scalar> {
        &self.config
    }

    /// The parameters of the best validation loss of the last run (meaningful when its
    /// report has a `best_step`).
    pub fn best_params(&self) -> &M::Vector {
        &self.best
    }

    /// Trains `net` with `opt` on the batches of `batches` until a stopping rule of the
    /// config holds (see the [module docs](self)), validating on `val` (the exact loss over
    /// the whole set) when given. Always returns a report; on error its reason says what
    /// failed, and the net holds the best parameters (restore-best) or those from before
    /// the failed step.
    pub fn fit<O, Ix, Obs>(
        &mut self,
        net: &mut M,
        opt: &mut O,
        batches: &mut MiniBatches<'_, M::Sample, M::SampleTarget, Ix>,
        val: Option<Part<'_, M::Sample, M::SampleTarget>>,
        mut observer: Obs,
    ) -> TrainReport<M::Scalar>
    where
        O: Optimizer<M> + ?Sized,
        Ix: AsRef<[usize]> + AsMut<[usize]>,
        Obs: Observer<M::Scalar>,
    {
        let c = self.config;
        let mut report = TrainReport {
            reason: TerminationReason::MaxSteps,
            steps: 0,
            epochs: 0,
            accepted: 0,
            rejected: 0,
            factorizations: 0,
            train_loss: None,
            val_loss: None,
            best_val_loss: None,
            best_step: None,
            restored: false,
            last_batch_loss: None,
        };
        observer.on_start(&c);
        self.last_val = None;
        let mut bad = 0u32;
        let reason = 'run: {
            if let Some((vx, vt)) = val {
                match self.validate(net, vx, vt, &mut report, &mut bad, &mut observer) {
                    Ok(Control::Continue) => {}
                    Ok(Control::Stop) => break 'run TerminationReason::Stopped,
                    Err(reason) => break 'run reason,
                }
            }
            let (mut epoch_sum, mut epoch_steps, mut epoch_accepted) =
                (M::Scalar::ZERO, 0u64, 0u64);
            let mut prev_epoch: Option<M::Scalar> = None;
            loop {
                let epoch_end = match M::fill_batch(batches, &mut self.x, &mut self.t) {
                    Ok(e) => e,
                    Err(e) => break 'run TerminationReason::Data(e),
                };
                let step = match opt.step(net, &self.x, &self.t) {
                    Ok(s) => s,
                    Err(e) => break 'run TerminationReason::StepFailed(e),
                };
                if !step.loss_before.finite() {
                    break 'run TerminationReason::StepFailed(SolveError::Net(
                        NetError::NonFiniteResult,
                    ));
                }
                report.steps += 1;
                report.factorizations += u64::from(step.factorizations);
                report.last_batch_loss = Some(step.loss_before);
                if step.accepted {
                    report.accepted += 1;
                } else {
                    report.rejected += 1;
                }
                epoch_sum += step.loss_before;
                epoch_steps += 1;
                epoch_accepted += u64::from(step.accepted);
                let mut loss_converged = false;
                if epoch_end {
                    report.epochs += 1;
                    let mean = epoch_sum / M::Scalar::c(epoch_steps as f64);
                    if let Some(prev) = prev_epoch {
                        loss_converged = epoch_accepted > 0
                            && c.ftol > M::Scalar::ZERO
                            && (prev - mean).abs() <= c.ftol * prev.abs();
                    }
                    prev_epoch = Some(mean);
                    (epoch_sum, epoch_steps, epoch_accepted) = (M::Scalar::ZERO, 0, 0);
                }
                let info = StepInfo {
                    step: report.steps,
                    epoch: report.epochs,
                    epoch_end,
                    report: step,
                };
                let control = observer.on_step(&info);
                if step.gradient_norm <= c.gtol {
                    break 'run TerminationReason::GradientConverged;
                }
                if step.accepted && c.xtol > M::Scalar::ZERO {
                    net.get_params(&mut self.params);
                    let xn = norm(self.params.as_ref());
                    if step.step_norm <= c.xtol * (xn + c.xtol) {
                        break 'run TerminationReason::StepConverged;
                    }
                }
                if loss_converged {
                    break 'run TerminationReason::LossConverged;
                }
                let due = match c.validate_every {
                    ValidateEvery::Epoch => epoch_end,
                    ValidateEvery::Steps(n) => report.steps % n == 0,
                };
                if let (true, Some((vx, vt))) = (due, val) {
                    match self.validate(net, vx, vt, &mut report, &mut bad, &mut observer) {
                        Ok(Control::Continue) => {}
                        Ok(Control::Stop) => break 'run TerminationReason::Stopped,
                        Err(reason) => break 'run reason,
                    }
                    if bad >= c.patience {
                        break 'run TerminationReason::PatienceExhausted;
                    }
                }
                if control == Control::Stop {
                    break 'run TerminationReason::Stopped;
                }
                if report.epochs >= c.max_epochs {
                    break 'run TerminationReason::MaxEpochs;
                }
                if report.steps >= c.max_steps {
                    break 'run TerminationReason::MaxSteps;
                }
            }
        };
        report.reason = reason;
        // The parameters the run ends with compete for the best too.
        if let Some((vx, vt)) = val {
            if self.last_val != Some(report.steps)
                && !matches!(reason, TerminationReason::ValidationFailed(_))
            {
                let _ = self.validate(net, vx, vt, &mut report, &mut bad, &mut observer);
            }
        }
        if c.restore_best && report.best_step.is_some() {
            net.get_params(&mut self.params);
            if self.params.as_ref() != self.best.as_ref() {
                report.restored = net.put_params(&self.best).is_ok();
            }
        }
        let (tx, tt) = batches.data();
        report.train_loss = net.loss_all_at(tx, tt).ok();
        if let Some((vx, vt)) = val {
            report.val_loss = net.loss_all_at(vx, vt).ok();
        }
        observer.on_end(&report);
        report
    }

    /// One validation: the exact loss, the best so far and its parameters, the count of
    /// validations without improvement.
    fn validate<Obs: Observer<M::Scalar>>(
        &mut self,
        net: &M,
        vx: &[M::Sample],
        vt: &[M::SampleTarget],
        report: &mut TrainReport<M::Scalar>,
        bad: &mut u32,
        observer: &mut Obs,
    ) -> Result<Control, TerminationReason> {
        self.last_val = Some(report.steps);
        let loss = match net.loss_all_at(vx, vt) {
            Ok(l) if l.finite() => l,
            Ok(_) => {
                return Err(TerminationReason::ValidationFailed(
                    NetError::NonFiniteResult,
                ))
            }
            Err(e) => return Err(TerminationReason::ValidationFailed(e)),
        };
        let improved = match report.best_val_loss {
            None => true,
            Some(b) => loss < b - self.config.min_improvement * b.abs(),
        };
        if improved {
            report.best_val_loss = Some(loss);
            report.best_step = Some(report.steps);
            net.get_params(&mut self.best);
            *bad = 0;
        } else {
            *bad = bad.saturating_add(1);
        }
        Ok(observer.on_validation(&ValidationInfo {
            step: report.steps,
            epoch: report.epochs,
            loss,
            best: report.best_val_loss.unwrap_or(loss),
            improved,
            bad: *bad,
        }))
    }
}

/// An observer writing `log` records (feature `log`): every validation and the final
/// report at `info`, every `every`-th step at `debug` (0: no step records).
///
/// ```
/// use tall_skinny_runtime::train::{Control, LogObserver, Observer, ValidationInfo};
///
/// let mut obs = LogObserver { every: 10 };
/// let v = ValidationInfo { step: 3, epoch: 1, loss: 0.5, best: 0.5, improved: true, bad: 0 };
/// assert_eq!(Observer::<f64>::on_validation(&mut obs, &v), Control::Continue);
/// ```
#[cfg(feature = "log")]
#[derive(Clone, Copy, Debug)]
pub struct LogObserver {
    /// Steps between two step records (0: none).
    pub every: u64,
}

#[cfg(feature = "log")]
impl<T: Real> Observer<T> for LogObserver {
    fn on_step(&mut self, info: &StepInfo<T>) -> Control {
        if self.every > 0 && info.step % self.every == 0 {
            log::debug!("step {} (epoch {}): {}", info.step, info.epoch, info.report);
        }
        Control::Continue
    }
    fn on_validation(&mut self, info: &ValidationInfo<T>) -> Control {
        log::info!(
            "step {} (epoch {}): validation loss {:.6e}{} (best {:.6e})",
            info.step,
            info.epoch,
            info.loss.to_f64(),
            if info.improved { ", improved" } else { "" },
            info.best.to_f64()
        );
        Control::Continue
    }
    fn on_end(&mut self, report: &TrainReport<T>) {
        log::info!("{report}");
    }
}

/// An observer drawing an `indicatif` progress bar over `max_steps` (feature `progress`),
/// with the last batch loss and the best validation loss as its message.
///
/// ```
/// use tall_skinny_runtime::train::{Observer, ProgressObserver, TrainConfig};
///
/// let mut bar = ProgressObserver::new();
/// Observer::<f64>::on_start(&mut bar, &TrainConfig::default().with_max_steps(250));
/// assert_eq!(bar.bar().length(), Some(250));
/// ```
#[cfg(feature = "progress")]
#[derive(Debug)]
pub struct ProgressObserver {
    bar: indicatif::ProgressBar,
    best: Option<f64>,
}

#[cfg(feature = "progress")]
impl ProgressObserver {
    /// A bar drawn to stderr (hidden when stderr is not a terminal).
    pub fn new() -> Self {
        Self::with_bar(indicatif::ProgressBar::new(0))
    }

    /// On a bar of your own (its length is set to `max_steps` at the start).
    pub fn with_bar(bar: indicatif::ProgressBar) -> Self {
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps [{elapsed_precise}<{eta_precise}] {msg}",
        ) {
            bar.set_style(style);
        }
        ProgressObserver { bar, best: None }
    }

    /// The bar.
    pub fn bar(&self) -> &indicatif::ProgressBar {
        &self.bar
    }
}

#[cfg(feature = "progress")]
impl Default for ProgressObserver {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "progress")]
impl<T: Real> Observer<T> for ProgressObserver {
    fn on_start(&mut self, config: &TrainConfig<T>) {
        self.bar.set_length(config.max_steps);
        self.bar.set_position(0);
    }
    fn on_step(&mut self, info: &StepInfo<T>) -> Control {
        self.bar.set_position(info.step);
        let loss = info.report.loss_before.to_f64();
        match self.best {
            Some(b) => self
                .bar
                .set_message(alloc::format!("loss {loss:.4e}, best val {b:.4e}")),
            None => self.bar.set_message(alloc::format!("loss {loss:.4e}")),
        }
        Control::Continue
    }
    fn on_validation(&mut self, info: &ValidationInfo<T>) -> Control {
        self.best = Some(info.best.to_f64());
        Control::Continue
    }
    fn on_end(&mut self, report: &TrainReport<T>) {
        self.bar
            .finish_with_message(alloc::format!("{}", report.reason));
    }
}
