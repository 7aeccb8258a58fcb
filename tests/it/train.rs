//! The training driver (`runtime::train`): each stopping rule ends the run for the reason it
//! names (checked against the step reports the observer saw, recomputed here), patience and
//! restore-best put back exactly the parameters of the best validation (compared bit for bit
//! with a second, deterministic run stopped at that step), seeded runs repeat, bad configs
//! are errors naming the field, NaN data ends the run with an error and keeps what was
//! learnt, and the driver works through `Optimizer` with LM, Adam and SGD, also as `dyn`.

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::{MiniBatches, Remainder};
use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::real::norm;
use tall_skinny::runtime::train::*;
use tall_skinny::runtime::SplitMix64;

/// N 103.
#[tall_skinny_net(batch = 8)]
struct Reg {
    a: Dense<2, 6, Tanh>,
    b: [Residual<6, Tanh>; 2],
    c: Dense<6, 1, Identity>,
    loss: Mse<1>,
}

#[tall_skinny_net(batch = 30)]
struct Cls {
    a: Dense<2, 6, Tanh>,
    b: Residual<6, Tanh>,
    c: Dense<6, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// `n` samples of `t = sin(2 x0) + x1^2 / 2 + noise * N(0,1)-ish`.
fn reg_data(n: usize, noise: f64, seed: u64) -> (Vec<[f64; 2]>, Vec<[f64; 1]>) {
    let mut rng = SplitMix64::new(seed);
    let mut u = || 2.0 * rng.next_f64() - 1.0;
    let xs: Vec<[f64; 2]> = (0..n).map(|_| [u(), u()]).collect();
    let ts = xs
        .iter()
        .map(|x| [(2.0 * x[0]).sin() + 0.5 * x[1] * x[1] + noise * (u() + u() + u())])
        .collect();
    (xs, ts)
}

/// Three classes by angle around the origin.
fn cls_data(n: usize, seed: u64) -> (Vec<[f64; 2]>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let xs: Vec<[f64; 2]> = (0..n)
        .map(|_| [2.0 * rng.next_f64() - 1.0, 2.0 * rng.next_f64() - 1.0])
        .collect();
    let ts = xs
        .iter()
        .map(|x| {
            let a = x[1].atan2(x[0]) + std::f64::consts::PI;
            ((a / (2.0 * std::f64::consts::PI / 3.0)) as usize).min(2)
        })
        .collect();
    (xs, ts)
}

/// Records every step report and validation.
#[derive(Default)]
struct Record {
    steps: Vec<StepInfo<f64>>,
    vals: Vec<ValidationInfo<f64>>,
    stop_at: Option<u64>,
    ended: bool,
}

impl Observer<f64> for Record {
    fn on_step(&mut self, info: &StepInfo<f64>) -> Control {
        self.steps.push(*info);
        if Some(info.step) == self.stop_at {
            Control::Stop
        } else {
            Control::Continue
        }
    }
    fn on_validation(&mut self, info: &ValidationInfo<f64>) -> Control {
        self.vals.push(*info);
        Control::Continue
    }
    fn on_end(&mut self, _report: &TrainReport<f64>) {
        self.ended = true;
    }
}

/// Every tolerance off, so only the rule under test can end the run.
fn no_tol() -> TrainConfig<f64> {
    TrainConfig::default()
        .with_ftol(0.0)
        .with_xtol(0.0)
        .with_gtol(0.0)
}

fn params(net: &Reg) -> [f64; Reg::N_PARAMS] {
    let mut p = [0.0; Reg::N_PARAMS];
    net.params(&mut p);
    p
}

fn lm() -> LevenbergMarquardt<Reg> {
    LevenbergMarquardt::new(LmConfig::default()).unwrap()
}

#[test]
fn max_steps_and_max_epochs() {
    let (xs, ts) = reg_data(24, 0.0, 1);
    // 24 samples at batch 8: 3 steps per epoch.
    for (cfg, steps, epochs, reason) in [
        (
            no_tol().with_max_steps(7),
            7,
            2,
            TerminationReason::MaxSteps,
        ),
        (
            no_tol().with_max_epochs(2),
            6,
            2,
            TerminationReason::MaxEpochs,
        ),
    ] {
        let mut net = Reg::init(3);
        let mut opt = lm();
        let mut batches = MiniBatches::with_vec(&xs, &ts, 5, Remainder::Carry).unwrap();
        let mut rec = Record::default();
        let r = Trainer::new(cfg)
            .unwrap()
            .fit(&mut net, &mut opt, &mut batches, None, &mut rec);
        println!("{r}");
        assert_eq!(r.reason, reason);
        assert_eq!((r.steps, r.epochs), (steps, epochs));
        assert_eq!(r.accepted + r.rejected, steps);
        assert_eq!(rec.steps.len() as u64, steps);
        assert_eq!(
            r.factorizations,
            rec.steps
                .iter()
                .map(|s| u64::from(s.report.factorizations))
                .sum::<u64>()
        );
        assert_eq!(
            rec.steps.iter().filter(|s| s.epoch_end).count() as u64,
            epochs
        );
        assert!(rec.ended);
        // The reported training loss is the exact loss over the data at the final params.
        assert_eq!(r.train_loss, Some(net.loss_all(&xs, &ts).unwrap()));
        assert_eq!(r.best_step, None);
        assert!(!r.restored);
    }
}

#[test]
fn loss_tolerance() {
    // One batch per epoch: the epoch loss is the batch loss before each step.
    let (xs, ts) = reg_data(8, 0.0, 2);
    let ftol = 1e-3;
    let mut net = Reg::init(4);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Carry).unwrap();
    let mut rec = Record::default();
    let cfg = no_tol().with_ftol(ftol).with_max_steps(500);
    let r = Trainer::new(cfg)
        .unwrap()
        .fit(&mut net, &mut opt, &mut batches, None, &mut rec);
    println!("{r}");
    assert_eq!(r.reason, TerminationReason::LossConverged);
    assert!(r.reason.converged() && !r.reason.is_error());
    // Recompute the rule from the reports: it holds at the last step and at no earlier one.
    let l: Vec<f64> = rec.steps.iter().map(|s| s.report.loss_before).collect();
    let holds =
        |k: usize| rec.steps[k].report.accepted && (l[k - 1] - l[k]).abs() <= ftol * l[k - 1].abs();
    let last = l.len() - 1;
    assert!(last >= 2, "converged after {} steps", l.len());
    assert!(holds(last));
    assert!((1..last).all(|k| !holds(k)));
}

#[test]
fn gradient_tolerance() {
    let (xs, ts) = reg_data(8, 0.0, 2);
    let gtol = 1e-3;
    let mut net = Reg::init(4);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Carry).unwrap();
    let mut rec = Record::default();
    let r = Trainer::new(no_tol().with_gtol(gtol).with_max_steps(500))
        .unwrap()
        .fit(&mut net, &mut opt, &mut batches, None, &mut rec);
    println!("{r}");
    assert_eq!(r.reason, TerminationReason::GradientConverged);
    let g: Vec<f64> = rec.steps.iter().map(|s| s.report.gradient_norm).collect();
    assert!(g.len() > 1);
    assert!(*g.last().unwrap() <= gtol);
    assert!(g[..g.len() - 1].iter().all(|&v| v > gtol));
    // The gradient at the point where it was measured, recomputed independently: the run
    // stopped after that step, so re-run the steps before it.
    let mut net2 = Reg::init(4);
    let mut opt2 = lm();
    let mut b2 = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Carry).unwrap();
    let _ = Trainer::new(no_tol().with_max_steps(g.len() as u64 - 1))
        .unwrap()
        .fit(&mut net2, &mut opt2, &mut b2, None, ());
    let mut grad = [0.0; Reg::N_PARAMS];
    let x: [[f64; 2]; 8] = core::array::from_fn(|k| xs[k]);
    let t: [[f64; 1]; 8] = core::array::from_fn(|k| ts[k]);
    net2.gradient(&x, &t, &mut grad).unwrap();
    assert!(norm(&grad) <= gtol, "|g| = {:e}", norm(&grad));
}

#[test]
fn step_tolerance() {
    let (xs, ts) = reg_data(8, 0.0, 2);
    let xtol = 1e-4;
    let mut net = Reg::init(4);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Carry).unwrap();
    let mut rec = Record::default();
    let r = Trainer::new(no_tol().with_xtol(xtol).with_max_steps(500))
        .unwrap()
        .fit(&mut net, &mut opt, &mut batches, None, &mut rec);
    println!("{r}");
    assert_eq!(r.reason, TerminationReason::StepConverged);
    let last = rec.steps.last().unwrap().report;
    assert!(last.accepted);
    // The net holds the parameters after the last step.
    let pn = norm(&params(&net));
    assert!(last.step_norm <= xtol * (pn + xtol));
    assert!(rec.steps.len() > 1);
    // No earlier accepted step was that short relative to |params| (which only grows
    // slowly here: the bound with the final |params| and a margin of 2 is a fair check).
    for s in &rec.steps[..rec.steps.len() - 1] {
        if s.report.accepted {
            assert!(s.report.step_norm > 0.5 * xtol * (pn + xtol));
        }
    }
}

#[test]
fn observer_stops() {
    let (xs, ts) = reg_data(24, 0.0, 1);
    let mut net = Reg::init(3);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 5, Remainder::Carry).unwrap();
    let mut rec = Record {
        stop_at: Some(5),
        ..Record::default()
    };
    let r = Trainer::new(no_tol())
        .unwrap()
        .fit(&mut net, &mut opt, &mut batches, None, &mut rec);
    assert_eq!(r.reason, TerminationReason::Stopped);
    assert_eq!(r.steps, 5);
}

/// A noisy, small training set: LM overfits, and the validation loss turns up.
fn overfit(
    max_steps: u64,
    patience: u32,
    restore: bool,
    record: &mut Record,
) -> (TrainReport<f64>, [f64; Reg::N_PARAMS]) {
    let (xs, ts) = reg_data(16, 0.3, 7);
    let (vx, vt) = reg_data(64, 0.0, 8);
    let mut net = Reg::init(11);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
    let cfg = no_tol()
        .with_max_steps(max_steps)
        .with_patience(patience)
        .with_restore_best(restore)
        .with_validate_every(ValidateEvery::Steps(1));
    let mut trainer = Trainer::new(cfg).unwrap();
    let r = trainer.fit(&mut net, &mut opt, &mut batches, Some((&vx, &vt)), record);
    let p = params(&net);
    if restore && r.restored {
        assert_eq!(trainer.best_params(), &p);
    }
    assert_eq!(r.val_loss, Some(net.loss_all(&vx, &vt).unwrap()));
    (r, p)
}

#[test]
fn patience_and_restore_best() {
    let patience = 5;
    let mut rec = Record::default();
    let (r, p) = overfit(2000, patience, true, &mut rec);
    println!("{r}");
    assert_eq!(r.reason, TerminationReason::PatienceExhausted);
    let best_step = r.best_step.unwrap();
    assert!(best_step > 0, "the first validation was the best");
    // Validations at step 0, 1, ..., steps; the last `patience` did not improve on the best.
    assert_eq!(rec.vals.len() as u64, r.steps + 1);
    let best = rec
        .vals
        .iter()
        .map(|v| v.loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r.best_val_loss, Some(best));
    assert_eq!(rec.vals[best_step as usize].loss, best);
    assert_eq!(r.steps, best_step + u64::from(patience));
    assert!(rec.vals[rec.vals.len() - patience as usize..]
        .iter()
        .all(|v| !v.improved && v.loss >= best));
    // Restored: the net's validation loss is the best one, below the last one seen...
    assert!(r.restored);
    assert_eq!(r.val_loss, Some(best));
    assert!(rec.vals.last().unwrap().loss > best);
    // ... and the parameters are exactly those after step `best_step` of the same run.
    let mut rec2 = Record::default();
    let (r2, p2) = overfit(best_step, 1000, false, &mut rec2);
    assert_eq!(r2.reason, TerminationReason::MaxSteps);
    assert_eq!(p, p2);
    // Without restore-best the net keeps the last parameters.
    let mut rec3 = Record::default();
    let (r3, p3) = overfit(2000, patience, false, &mut rec3);
    assert!(!r3.restored);
    assert_ne!(p3, p);
    assert_eq!(r3.val_loss, Some(rec3.vals.last().unwrap().loss));
}

#[test]
fn the_final_parameters_compete_for_the_best() {
    // Validation once per epoch (3 steps) and max_steps 4: the last step's parameters are
    // validated at the end before restore-best decides.
    let (xs, ts) = reg_data(24, 0.0, 1);
    let (vx, vt) = reg_data(32, 0.0, 9);
    let mut net = Reg::init(3);
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, 5, Remainder::Carry).unwrap();
    let mut rec = Record::default();
    let r = Trainer::new(no_tol().with_max_steps(4)).unwrap().fit(
        &mut net,
        &mut opt,
        &mut batches,
        Some((&vx, &vt)),
        &mut rec,
    );
    assert_eq!(r.reason, TerminationReason::MaxSteps);
    let steps: Vec<u64> = rec.vals.iter().map(|v| v.step).collect();
    assert_eq!(steps, [0, 3, 4]);
    assert_eq!(
        r.best_val_loss,
        Some(
            rec.vals
                .iter()
                .map(|v| v.loss)
                .fold(f64::INFINITY, f64::min)
        )
    );
    assert_eq!(r.val_loss, r.best_val_loss);
}

#[test]
fn seeded_runs_repeat() {
    let (xs, ts) = reg_data(40, 0.1, 3);
    let run = |seed| {
        let mut net = Reg::init(3);
        let mut opt = lm();
        let mut batches = MiniBatches::with_vec(&xs, &ts, seed, Remainder::Carry).unwrap();
        let r = Trainer::new(no_tol().with_max_steps(12)).unwrap().fit(
            &mut net,
            &mut opt,
            &mut batches,
            None,
            (),
        );
        (r, params(&net))
    };
    let (a, pa) = run(1);
    let (b, pb) = run(1);
    let (c, pc) = run(2);
    assert_eq!(a, b);
    assert_eq!(pa, pb);
    assert_ne!(pa, pc);
    assert_ne!(a.train_loss, c.train_loss);
}

#[test]
fn config_errors_name_the_field() {
    let d = TrainConfig::<f64>::default();
    assert!(d.validate().is_ok());
    assert_eq!(d.max_steps, 1000);
    assert_eq!(d.max_epochs, 100);
    assert_eq!(d.ftol, f64::EPSILON.sqrt());
    assert_eq!(d.xtol, f64::EPSILON.sqrt());
    assert_eq!(d.gtol, 0.0);
    assert_eq!(d.patience, 10);
    assert_eq!(d.validate_every, ValidateEvery::Epoch);
    assert!(d.restore_best);
    let cases: Vec<(TrainConfig<f64>, &str)> = vec![
        (d.with_max_steps(0), "max_steps"),
        (d.with_max_epochs(0), "max_epochs"),
        (d.with_ftol(-1.0), "ftol"),
        (d.with_ftol(f64::NAN), "ftol"),
        (d.with_gtol(f64::INFINITY), "gtol"),
        (d.with_xtol(-1e-9), "xtol"),
        (
            d.with_validate_every(ValidateEvery::Steps(0)),
            "validate_every",
        ),
        (d.with_patience(0), "patience"),
        (d.with_min_improvement(1.0), "min_improvement"),
        (d.with_min_improvement(f64::NAN), "min_improvement"),
    ];
    for (cfg, field) in cases {
        let e = Trainer::<Reg>::new(cfg).err().expect(field);
        assert_eq!(e.field, field);
        let mut t = Trainer::<Reg>::new(d).unwrap();
        assert_eq!(t.configure(cfg).unwrap_err().field, field);
        assert_eq!(t.config(), &d, "a rejected config is not taken");
    }
    assert_eq!(
        TrainConfig::<f32>::default().ftol,
        f32::EPSILON.sqrt(),
        "f32 default"
    );
}

#[test]
fn nan_training_data_ends_with_an_error_and_keeps_the_best() {
    let (mut xs, ts) = reg_data(24, 0.0, 1);
    let (vx, vt) = reg_data(32, 0.0, 9);
    xs[13][1] = f64::NAN;
    // A batch seed whose first batch does not hold the NaN sample (so that something is
    // learnt before the failing step).
    let seed = (0..)
        .find(|&s| {
            let mut b = MiniBatches::with_vec(&xs, &ts, s, Remainder::Carry).unwrap();
            let (x, _): ([[f64; 2]; 8], [[f64; 1]; 8]) = b.next_batch().unwrap();
            x.iter().flatten().all(|v| v.is_finite())
        })
        .unwrap();
    let mut net = Reg::init(3);
    let before = net.loss_all(&vx, &vt).unwrap();
    let mut opt = lm();
    let mut batches = MiniBatches::with_vec(&xs, &ts, seed, Remainder::Carry).unwrap();
    let cfg = no_tol().with_validate_every(ValidateEvery::Steps(1));
    let mut rec = Record::default();
    let mut trainer = Trainer::new(cfg).unwrap();
    let r = trainer.fit(&mut net, &mut opt, &mut batches, Some((&vx, &vt)), &mut rec);
    println!("{r}");
    assert!(
        matches!(
            r.reason,
            TerminationReason::StepFailed(SolveError::Net(NetError::NonFiniteInput { .. }))
        ),
        "{:?}",
        r.reason
    );
    assert!(r.reason.is_error());
    // The NaN sample was not in the first batch: something was learnt, and kept.
    assert!(r.steps >= 1 && r.steps < 3, "{} steps", r.steps);
    let best = r.best_val_loss.unwrap();
    assert!(best < before, "{best} vs {before}");
    assert_eq!(r.val_loss, Some(best));
    let p = params(&net);
    assert!(p.iter().all(|v| v.is_finite()));
    assert_eq!(trainer.best_params(), &p);
    // The training set holds a NaN: its loss cannot be evaluated.
    assert_eq!(r.train_loss, None);

    // Without validation the net keeps the parameters from before the failed step: those
    // after `r.steps` steps of an identical run on clean data.
    let mut net2 = Reg::init(3);
    let mut b2 = MiniBatches::with_vec(&xs, &ts, seed, Remainder::Carry).unwrap();
    let r2 = Trainer::new(no_tol())
        .unwrap()
        .fit(&mut net2, &mut lm(), &mut b2, None, ());
    assert!(matches!(r2.reason, TerminationReason::StepFailed(_)));
    assert_eq!(r2.steps, r.steps);
    let mut clean = xs.clone();
    clean[13][1] = 0.0;
    let mut net3 = Reg::init(3);
    let mut b3 = MiniBatches::with_vec(&clean, &ts, seed, Remainder::Carry).unwrap();
    let _ = Trainer::new(no_tol().with_max_steps(r.steps)).unwrap().fit(
        &mut net3,
        &mut lm(),
        &mut b3,
        None,
        (),
    );
    assert_eq!(params(&net2), params(&net3));
}

#[test]
fn nan_validation_data_and_bad_batches_are_errors() {
    let (xs, ts) = reg_data(24, 0.0, 1);
    let (mut vx, vt) = reg_data(32, 0.0, 9);
    vx[5][0] = f64::NAN;
    let mut net = Reg::init(3);
    let p0 = params(&net);
    let mut batches = MiniBatches::with_vec(&xs, &ts, 4, Remainder::Carry).unwrap();
    let r = Trainer::new(no_tol()).unwrap().fit(
        &mut net,
        &mut lm(),
        &mut batches,
        Some((&vx, &vt)),
        (),
    );
    assert_eq!(
        r.reason,
        TerminationReason::ValidationFailed(NetError::NonFiniteInput {
            sample: 5,
            index: 0
        })
    );
    assert_eq!(r.steps, 0);
    assert_eq!(params(&net), p0);

    // Fewer samples than a batch with Remainder::Drop.
    let mut few = MiniBatches::with_vec(&xs[..5], &ts[..5], 4, Remainder::Drop).unwrap();
    let r = Trainer::new(no_tol())
        .unwrap()
        .fit(&mut net, &mut lm(), &mut few, None, ());
    assert!(
        matches!(r.reason, TerminationReason::Data(_)),
        "{:?}",
        r.reason
    );
    assert_eq!(r.steps, 0);
    assert_eq!(params(&net), p0);
}

/// Through the trait only.
fn train_with<M: Model, O: Optimizer<M> + ?Sized>(
    net: &mut M,
    opt: &mut O,
    xs: &[M::Sample],
    ts: &[M::SampleTarget],
    steps: u64,
) -> TrainReport<M::Scalar> {
    let mut batches = MiniBatches::with_vec(xs, ts, 1, Remainder::Carry).unwrap();
    Trainer::new(
        TrainConfig::default()
            .with_max_steps(steps)
            .with_max_epochs(u64::MAX),
    )
    .unwrap()
    .fit(net, opt, &mut batches, None, ())
}

#[test]
fn any_optimizer_through_the_trait() {
    let (xs, ts) = reg_data(48, 0.0, 5);
    let l0 = Reg::init(2).loss_all(&xs, &ts).unwrap();
    let mut results = vec![];
    let mut run = |name: &str, opt: &mut dyn Optimizer<Reg>, steps| {
        let mut net = Reg::init(2);
        let r = train_with(&mut net, opt, &xs, &ts, steps);
        println!("{name}: {r}");
        results.push((name.to_string(), r.train_loss.unwrap()));
        r
    };
    let r = run("lm", &mut lm(), 60);
    assert!(r.factorizations >= r.steps);
    let r = run(
        "adam",
        &mut Adam::new(AdamConfig::default().with_lr(1e-2)).unwrap(),
        600,
    );
    assert_eq!(r.factorizations, 0);
    run(
        "sgd",
        &mut Sgd::new(SgdConfig::default().with_lr(0.05)).unwrap(),
        600,
    );
    for (name, l) in &results {
        assert!(*l < 0.2 * l0, "{name}: {l} vs initial {l0}");
    }
    // LM in 60 steps below the first-order methods in 600.
    assert!(results[0].1 < results[1].1 && results[0].1 < results[2].1);

    // A classifier, with LM and Adam.
    let (cx, ct) = cls_data(120, 6);
    let acc = |net: &Cls| net.evaluate(&cx, &ct).unwrap().accuracy().unwrap();
    let a0 = acc(&Cls::init(1));
    let mut net = Cls::init(1);
    let mut opt = LevenbergMarquardt::<Cls>::new(LmConfig::default()).unwrap();
    let r = train_with(&mut net, &mut opt, &cx, &ct, 100);
    println!("cls lm: {r}, accuracy {:.3} (initial {a0:.3})", acc(&net));
    assert!(acc(&net) > 0.9);
    let mut net = Cls::init(1);
    let mut opt = Adam::<Cls>::new(AdamConfig::default().with_lr(1e-2)).unwrap();
    let r = train_with(&mut net, &mut opt, &cx, &ct, 1000);
    println!("cls adam: {r}, accuracy {:.3}", acc(&net));
    assert!(acc(&net) > 0.85);
}
