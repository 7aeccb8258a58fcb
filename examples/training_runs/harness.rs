//! The two protocols, generic over the net: every optimizer of the crate runs through the
//! training driver (`Trainer::fit` over `MiniBatches`) with default settings (plus the
//! learning rate for the first-order methods); argmin's L-BFGS is driven one iteration at a
//! time (see `lbfgs.rs`). Wall time is `std::time::Instant`, measured by the driver's
//! observer from the start of `fit` to the step that crosses the time budget; held-out
//! losses are evaluated between `fit` calls with the clock paused.

use std::time::{Duration, Instant};

use tall_skinny::runtime::data::{MiniBatches, Remainder};
use tall_skinny::runtime::optim::{
    Adam, AdamConfig, DampedNewton, LevenbergMarquardt, LmConfig, Model, NewtonConfig, Optimizer,
    SaddleFreeConfig, SaddleFreeNewton, Sgd, SgdConfig, TrustRegion, TrustRegionConfig,
};
use tall_skinny::runtime::train::{Control, Observer, StepInfo, TrainConfig, Trainer};
use tall_skinny::runtime::SolveError;

use crate::tasks::Task;

/// One optimizer with its setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Levenberg-Marquardt on the exact Gauss-Newton matrix, mini-batch, acceptance test on
    /// the same batch (`LmConfig::default()`).
    Lm,
    /// Damped Newton on the exact Hessian (`NewtonConfig::default()`).
    Newton,
    /// Trust region on the exact Hessian (`TrustRegionConfig::default()`).
    Trust,
    /// Saddle-free Newton on the exact Hessian (`SaddleFreeConfig::default()`, 32 pairs).
    SaddleFree,
    /// Adam at this learning rate (`AdamConfig::default().with_lr(lr)`).
    Adam(f64),
    /// SGD with heavy-ball momentum 0.9 at this learning rate.
    Sgd(f64),
    /// argmin's L-BFGS (memory 10, More-Thuente line search), full batch.
    Lbfgs,
    /// [`Method::Lm`] with this damping floor `lambda_min` (protocol 2 only: on noisy
    /// mini-batches the floor is LM's step-size control, as the learning rate is SGD's).
    LmFloor(f64),
    /// [`Method::Lm`] on the small-batch twin of the net (protocol 2 only).
    LmSmall,
    /// [`Method::Newton`] on the small-batch twin (protocol 2 only).
    NewtonSmall,
    /// [`Method::Trust`] on the small-batch twin (protocol 2 only).
    TrustSmall,
}

impl Method {
    /// The family's name.
    pub fn family(&self) -> &'static str {
        match self {
            Method::Lm => "LM",
            Method::Newton => "damped Newton",
            Method::Trust => "trust region",
            Method::SaddleFree => "saddle-free Newton",
            Method::Adam(_) => "Adam",
            Method::Sgd(_) => "SGD+momentum",
            Method::Lbfgs => "L-BFGS (argmin)",
            Method::LmFloor(_) => "LM, damping floor",
            Method::LmSmall => "LM, small batch",
            Method::NewtonSmall => "damped Newton, small batch",
            Method::TrustSmall => "trust region, small batch",
        }
    }

    /// Runs on the small-batch twin.
    pub fn small(&self) -> bool {
        matches!(
            self,
            Method::LmSmall | Method::NewtonSmall | Method::TrustSmall
        )
    }

    /// The family and its setting.
    pub fn label(&self) -> String {
        match self {
            Method::Adam(lr) | Method::Sgd(lr) => format!("{} lr {lr:.1e}", self.family()),
            Method::LmFloor(l) => format!("LM lambda_min {l:.0e}"),
            _ => self.family().to_string(),
        }
    }

    /// LM, damped Newton or trust region.
    pub fn second_order(&self) -> bool {
        matches!(
            self,
            Method::Lm
                | Method::LmFloor(_)
                | Method::Newton
                | Method::Trust
                | Method::SaddleFree
                | Method::LmSmall
                | Method::NewtonSmall
                | Method::TrustSmall
        )
    }

    /// Adam or SGD (a divergent grid point is a result of the tuning, not a broken run).
    pub fn first_order(&self) -> bool {
        matches!(self, Method::Adam(_) | Method::Sgd(_))
    }

    fn build<M: Model<Scalar = f64> + 'static>(&self) -> Result<Box<dyn Optimizer<M>>, String> {
        let e = |e: tall_skinny::runtime::ConfigError| e.to_string();
        Ok(match *self {
            Method::Lm | Method::LmSmall => {
                LevenbergMarquardt::<M>::boxed(LmConfig::default()).map_err(e)?
            }
            Method::LmFloor(l) => {
                let c = LmConfig::default();
                // The floor, and the initial damping not below it.
                LevenbergMarquardt::<M>::boxed(
                    c.with_lambda_bounds(l, c.lambda_max)
                        .with_lambda(c.lambda.max(l)),
                )
                .map_err(e)?
            }
            Method::Newton | Method::NewtonSmall => {
                DampedNewton::<M>::boxed(NewtonConfig::default()).map_err(e)?
            }
            Method::Trust | Method::TrustSmall => {
                TrustRegion::<M>::boxed(TrustRegionConfig::default()).map_err(e)?
            }
            Method::SaddleFree => {
                SaddleFreeNewton::<M>::boxed(SaddleFreeConfig::default()).map_err(e)?
            }
            Method::Adam(lr) => Adam::<M>::boxed(AdamConfig::default().with_lr(lr)).map_err(e)?,
            Method::Sgd(lr) => {
                Sgd::<M>::boxed(SgdConfig::default().with_lr(lr).with_momentum(0.9)).map_err(e)?
            }
            Method::Lbfgs => return Err("L-BFGS runs through argmin".into()),
        })
    }
}

/// A stopwatch that can be paused.
#[derive(Default)]
pub struct Clock {
    acc: Duration,
    since: Option<Instant>,
}

impl Clock {
    pub fn start(&mut self) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }
    pub fn pause(&mut self) {
        if let Some(s) = self.since.take() {
            self.acc += s.elapsed();
        }
    }
    pub fn secs(&self) -> f64 {
        (self.acc + self.since.map_or(Duration::ZERO, |s| s.elapsed())).as_secs_f64()
    }
}

/// A point of a running-minimum trace: (seconds, steps, loss).
pub type TracePoint = (f64, u64, f64);

/// A held-out sample: seconds of optimizer time, steps, validation and test loss.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub secs: f64,
    pub val: f64,
    pub test: f64,
}

/// What one run did.
#[derive(Clone, Debug)]
pub struct Run {
    pub method: Method,
    /// Steps (L-BFGS: iterations).
    pub steps: u64,
    /// Optimizer wall time, seconds (evaluations excluded).
    pub secs: f64,
    /// Curvature factorisations (second-order methods), function+gradient evaluations
    /// (L-BFGS: full-batch gradients).
    pub work: u64,
    /// Rejected steps (second-order methods).
    pub rejected: u64,
    /// The run ended on an error (first-order: divergence).
    pub error: Option<String>,
    /// Protocol 1: running minimum of the batch loss against time (starts at t = 0).
    pub trace: Vec<TracePoint>,
    /// Protocol 2: held-out losses against time (starts at t = 0).
    pub curve: Vec<Sample>,
}

impl Run {
    pub fn new(method: Method) -> Self {
        Run {
            method,
            steps: 0,
            secs: 0.0,
            work: 0,
            rejected: 0,
            error: None,
            trace: Vec::new(),
            curve: Vec::new(),
        }
    }

    /// Protocol 1: the lowest loss reached.
    pub fn floor(&self) -> f64 {
        self.trace.last().map_or(f64::NAN, |p| p.2)
    }

    /// Protocol 1: the first point of the trace within `factor` of the floor.
    pub fn reach(&self, factor: f64) -> Option<TracePoint> {
        let f = self.floor();
        self.trace.iter().copied().find(|p| p.2 <= f * factor)
    }

    /// Protocol 1: the first point at or below `loss`.
    pub fn time_to(&self, loss: f64) -> Option<TracePoint> {
        self.trace.iter().copied().find(|p| p.2 <= loss)
    }

    /// Protocol 2: the last sample.
    pub fn last(&self) -> Option<Sample> {
        self.curve.last().copied()
    }

    /// Protocol 2: the lowest test loss along the curve.
    pub fn best_test(&self) -> f64 {
        self.curve
            .iter()
            .map(|s| s.test)
            .fold(f64::INFINITY, f64::min)
    }

    /// Microseconds per step.
    pub fn us_per_step(&self) -> f64 {
        if self.steps == 0 {
            f64::NAN
        } else {
            self.secs / self.steps as f64 * 1e6
        }
    }
}

/// The driver's observer: times the run on `clock`, stops after the step that crosses
/// `until` seconds, records a running minimum of the batch loss (protocol 1).
struct Watch<'a> {
    clock: &'a mut Clock,
    until: f64,
    steps: u64,
    record: Option<&'a mut Vec<TracePoint>>,
    /// Time at the end of the previous step (the loss before this step was reached then).
    last_t: f64,
}

impl Observer<f64> for Watch<'_> {
    fn on_start(&mut self, _config: &TrainConfig<f64>) {
        self.clock.start();
        self.last_t = self.clock.secs();
    }
    fn on_step(&mut self, info: &StepInfo<f64>) -> Control {
        let t = self.clock.secs();
        self.steps += 1;
        if let Some(trace) = self.record.as_deref_mut() {
            // The second-order methods report the loss at their new point; the first-order
            // ones only the loss before the step (reached at the end of the previous one).
            let (tt, steps, loss) = match info.report.loss_after {
                Some(l) => (t, self.steps, l),
                None => (self.last_t, self.steps - 1, info.report.loss_before),
            };
            if trace.last().is_none_or(|p| loss < p.2) {
                trace.push((tt, steps, loss));
            }
        }
        self.last_t = t;
        if t >= self.until {
            self.clock.pause();
            Control::Stop
        } else {
            Control::Continue
        }
    }
    fn on_end(&mut self, _report: &tall_skinny::runtime::train::TrainReport<f64>) {
        self.clock.pause();
    }
}

/// The driver's settings: run until the observer stops it (no tolerance ends a run early,
/// no validation inside the driver: the harness evaluates the held-out sets itself).
fn driver_config() -> TrainConfig<f64> {
    TrainConfig::default()
        .with_max_steps(u64::MAX)
        .with_max_epochs(u64::MAX)
        .with_ftol(0.0)
        .with_xtol(0.0)
        .with_restore_best(false)
}

/// One `fit` until `until` seconds on the clock; returns the error, if any.
#[allow(clippy::too_many_arguments)]
fn fit_until<M: Model<Scalar = f64> + 'static>(
    net: &mut M,
    opt: &mut dyn Optimizer<M>,
    batches: &mut MiniBatches<'_, M::Sample, M::SampleTarget, Vec<usize>>,
    clock: &mut Clock,
    until: f64,
    run: &mut Run,
    record: bool,
) -> Option<String> {
    let mut trainer = match Trainer::<M>::new(driver_config()) {
        Ok(t) => t,
        Err(e) => return Some(e.to_string()),
    };
    let mut trace = std::mem::take(&mut run.trace);
    let mut watch = Watch {
        clock,
        until,
        steps: run.steps,
        record: record.then_some(&mut trace),
        last_t: 0.0,
    };
    let report = trainer.fit(net, opt, batches, None, &mut watch);
    run.steps = watch.steps;
    run.trace = trace;
    run.work += report.factorizations;
    run.rejected += report.rejected;
    report.reason.is_error().then(|| match report.reason {
        tall_skinny::runtime::train::TerminationReason::StepFailed(SolveError::NonFiniteResult)
        | tall_skinny::runtime::train::TerminationReason::StepFailed(SolveError::Net(_)) => {
            format!("diverged ({})", report.reason)
        }
        r => r.to_string(),
    })
}

/// The first `M::BATCH` training samples: the fixed batch of protocol 1.
pub fn fixed_batch<M: Model>(task: &Task<M>) -> (&[M::Sample], &[M::SampleTarget]) {
    (&task.train.0[..M::BATCH], &task.train.1[..M::BATCH])
}

/// Protocol 1: steps on one fixed batch for `budget` seconds; the running minimum of its
/// loss against time.
pub fn memorise<M: Model<Scalar = f64> + 'static>(
    task: &Task<M>,
    method: Method,
    budget: f64,
) -> Run {
    let (bx, bt) = fixed_batch(task);
    if method == Method::Lbfgs {
        return crate::lbfgs::memorise(task, bx, bt, budget);
    }
    let mut run = Run::new(method);
    let mut net = (task.init)();
    match net.loss_all_at(bx, bt) {
        Ok(l) => run.trace.push((0.0, 0, l)),
        Err(e) => {
            run.error = Some(e.to_string());
            return run;
        }
    }
    let mut opt = match method.build::<M>() {
        Ok(o) => o,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    // A stream over the batch's own samples: every batch is the fixed batch (in a fresh
    // order, which the mean loss does not see).
    let mut batches = match MiniBatches::with_vec(bx, bt, 7, Remainder::Drop) {
        Ok(b) => b,
        Err(e) => {
            run.error = Some(e.to_string());
            return run;
        }
    };
    let mut clock = Clock::default();
    run.error = fit_until(
        &mut *net,
        &mut *opt,
        &mut batches,
        &mut clock,
        budget,
        &mut run,
        true,
    );
    run.secs = clock.secs();
    // The first-order methods never evaluate their last point.
    if let Ok(l) = net.loss_all_at(bx, bt) {
        if run.trace.last().is_none_or(|p| l < p.2) {
            run.trace.push((run.secs, run.steps, l));
        }
    }
    run
}

/// Sample times of protocol 2: 0, then log-spaced from `budget / 1000` to `budget`.
pub fn schedule(budget: f64, points: usize) -> Vec<f64> {
    (0..=points)
        .map(|j| budget * 10f64.powf(-3.0 * (1.0 - j as f64 / points as f64)))
        .collect()
}

/// Validation and test loss of `net`.
pub fn held_out<M: Model<Scalar = f64>>(net: &M, task: &Task<M>) -> Result<(f64, f64), String> {
    let v = net
        .loss_all_at(&task.val.0, &task.val.1)
        .map_err(|e| e.to_string())?;
    let t = net
        .loss_all_at(&task.test.0, &task.test.1)
        .map_err(|e| e.to_string())?;
    Ok((v, t))
}

/// Appends `net`'s held-out losses at `secs` to `run`'s curve, or keeps the evaluation's
/// error in `run.error` and returns false.
pub fn sample_held_out<M: Model<Scalar = f64>>(
    run: &mut Run,
    net: &M,
    task: &Task<M>,
    secs: f64,
) -> bool {
    match held_out(net, task) {
        Ok((val, test)) => {
            run.curve.push(Sample { secs, val, test });
            true
        }
        Err(e) => {
            run.error = Some(e);
            false
        }
    }
}

/// Protocol 2: mini-batch training on the training set for `budget` seconds, held-out
/// losses sampled at the times of [`schedule`] with the clock paused.
pub fn equal_clock<M: Model<Scalar = f64> + 'static>(
    task: &Task<M>,
    method: Method,
    budget: f64,
    points: usize,
) -> Run {
    if method == Method::Lbfgs {
        return crate::lbfgs::equal_clock(task, budget, points);
    }
    let mut run = Run::new(method);
    let mut net = (task.init)();
    if !sample_held_out(&mut run, &*net, task, 0.0) {
        return run;
    }
    let mut opt = match method.build::<M>() {
        Ok(o) => o,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    let mut batches = match MiniBatches::with_vec(&task.train.0, &task.train.1, 7, Remainder::Carry)
    {
        Ok(b) => b,
        Err(e) => {
            run.error = Some(e.to_string());
            return run;
        }
    };
    let mut clock = Clock::default();
    for &until in &schedule(budget, points)[1..] {
        if clock.secs() >= until {
            continue;
        }
        let err = fit_until(
            &mut *net,
            &mut *opt,
            &mut batches,
            &mut clock,
            until,
            &mut run,
            false,
        );
        // The clock is paused: evaluate.
        // (An evaluation error is kept; a failed step below replaces it with its own.)
        sample_held_out(&mut run, &*net, task, clock.secs());
        if err.is_some() {
            run.error = err;
            break;
        }
    }
    run.secs = clock.secs();
    run
}
