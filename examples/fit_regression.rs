//! A deep, narrow residual tanh net fits a nonlinear 1-D function on a fixed batch; every
//! optimizer of `runtime::optim` runs from the same initialisation, and the table gives the
//! steps and wall time to reach MSE 1e-6 (loss = MSE / 2 < 5e-7), or the best loss within the
//! budget (a step count, and at most 15 s of wall time per optimizer).
//!
//! Levenberg-Marquardt runs in nine variants (Nielsen's damping or MINPACK's step bound,
//! each with the identity, MINPACK's or Marquardt's column scaling `D`, and Nielsen's with
//! geodesic acceleration), next to MINPACK's `lmder` itself
//! (the `levenberg-marquardt` crate's port, default settings: `factor` 100, `mode = 1`
//! column scaling) on the same residuals with the exact Jacobian, timed in the same run.
//!
//! `cargo run --release --example fit_regression` (add `--features argmin` for argmin's
//! L-BFGS and Newton-CG on the same problem, through `tall_skinny::argmin_support`).
//! Environment: `FIT_LM_ONLY` skips the other optimizers, `FIT_SEEDS` adds a table of steps
//! to the target from eight initialisations (ours and lmder), `FIT_SWEEP` the scaled step
//! bound's sensitivity to its settings, `FIT_TRACE` every step's report.

use std::time::Instant;

use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::*;

const BATCH: usize = 32;

/// Depth 16, width 8, 1033 parameters.
#[tall_skinny_net(batch = 32)]
pub struct Regressor {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Target MSE (`2 * loss`, the loss being `1/(2B) sum |u - t|^2`).
const TARGET_MSE: f64 = 1e-6;

fn data() -> ([[f64; 1]; BATCH], [[f64; 1]; BATCH]) {
    let x: [[f64; 1]; BATCH] =
        core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / (BATCH - 1) as f64]);
    let t = x.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    (x, t)
}

struct Outcome {
    name: String,
    steps_to_target: Option<usize>,
    time_to_target: Option<f64>,
    best_mse: f64,
    steps_run: usize,
    total_time: f64,
}

/// Wall-time budget per optimizer.
const TIME_BUDGET_S: f64 = 15.0;

fn run(
    name: &str,
    budget: usize,
    step: impl FnMut(&mut Regressor) -> Result<StepReport<f64>, SolveError>,
) -> Outcome {
    run_from(1, name, budget, step)
}

/// [`run`] from the initialisation of this seed.
fn run_from(
    seed: u64,
    name: &str,
    budget: usize,
    mut step: impl FnMut(&mut Regressor) -> Result<StepReport<f64>, SolveError>,
) -> Outcome {
    let (x, t) = data();
    let mut net = Regressor::init(seed);
    let mut best = 2.0 * net.loss(&x, &t).unwrap();
    let start = Instant::now();
    let mut hit = None;
    let mut steps_run = 0;
    for k in 1..=budget {
        steps_run = k;
        match step(&mut net) {
            Ok(_) => {}
            Err(e) => {
                println!("  {name}: step {k} failed: {e}");
                break;
            }
        }
        let mse = 2.0 * net.loss(&x, &t).unwrap();
        best = best.min(mse);
        if mse < TARGET_MSE {
            hit = Some((k, start.elapsed().as_secs_f64()));
            break;
        }
        if start.elapsed().as_secs_f64() > TIME_BUDGET_S {
            break;
        }
    }
    let total = start.elapsed().as_secs_f64();
    Outcome {
        name: name.to_string(),
        steps_to_target: hit.map(|h| h.0),
        time_to_target: hit.map(|h| h.1),
        best_mse: best,
        steps_run,
        total_time: total,
    }
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.2} s", s)
    }
}

fn main() {
    let (x, t) = data();
    println!(
        "Regressor: depth {}, {} parameters, batch {}, Gauss-Newton solve {:?}; target MSE {TARGET_MSE:.0e}",
        Regressor::DEPTH,
        Regressor::N_PARAMS,
        Regressor::BATCH,
        Regressor::GGN_METHOD
    );
    println!(
        "initial MSE {:.3e}\n",
        2.0 * Regressor::init(1).loss(&x, &t).unwrap()
    );
    let mut rows = Vec::new();

    let trace = std::env::var_os("FIT_TRACE").is_some();
    let mut lm = LevenbergMarquardt::<Regressor>::boxed(LmConfig::default()).unwrap();
    let default = *lm.config();
    rows.push(run(
        &format!(
            "Levenberg-Marquardt (default: {:?}, {:?})",
            default.damping, default.scaling
        ),
        1000,
        |n| {
            let r = lm.step(n, &x, &t);
            if trace {
                if let Ok(r) = &r {
                    println!("  LM {r}");
                }
            }
            r
        },
    ));
    for (damping, geodesic) in [
        (LmDamping::Nielsen, None),
        (LmDamping::StepBound, None),
        (LmDamping::Nielsen, Some(Geodesic::default())),
    ] {
        for scaling in [
            LmScaling::Identity,
            LmScaling::ColumnNorms,
            LmScaling::Marquardt,
        ] {
            let mut config = LmConfig::default()
                .with_damping(damping)
                .with_scaling(scaling);
            config.geodesic = geodesic;
            if config == default {
                continue;
            }
            let mut lm = LevenbergMarquardt::<Regressor>::boxed(config).unwrap();
            let name = match damping {
                LmDamping::Nielsen => "Levenberg-Marquardt, Nielsen",
                LmDamping::StepBound => "Levenberg-Marquardt, MINPACK step bound",
            };
            let d = match scaling {
                LmScaling::Identity => "D = I",
                LmScaling::ColumnNorms => "D = running max of column norms (MINPACK)",
                LmScaling::Marquardt => "D = current column norms (Marquardt)",
            };
            let d = if geodesic.is_some() {
                format!("{d}, geodesic acceleration")
            } else {
                d.to_string()
            };
            rows.push(run(&format!("{name}, {d}"), 1000, |n| {
                let r = lm.step(n, &x, &t);
                if trace {
                    if let Ok(r) = &r {
                        println!("  {name}, {d}: {r}");
                    }
                }
                r
            }));
        }
    }
    if std::env::var_os("FIT_SWEEP").is_some() {
        sweep(&x, &t);
    }
    if std::env::var_os("FIT_SEEDS").is_some() {
        seeds(&x, &t);
    }
    rows.push(minpack::run());
    if std::env::var_os("FIT_LM_ONLY").is_none() {
        others(&x, &t, &mut rows);
    }
    report(&rows);
}

/// Sensitivity of the scaled step-bound LM to its settings (with `FIT_SWEEP`): steps to the
/// target for each.
fn sweep(x: &[[f64; 1]; BATCH], t: &[[f64; 1]; BATCH]) {
    let base = LmConfig::default()
        .with_damping(LmDamping::StepBound)
        .with_scaling(LmScaling::ColumnNorms);
    let nielsen = base.with_damping(LmDamping::Nielsen);
    let configs = [
        ("MINPACK settings", base),
        ("boundary_tol 0.05", base.with_boundary_tol(0.05)),
        ("boundary_tol 0.2", base.with_boundary_tol(0.2)),
        ("max_subproblem 20", base.with_max_subproblem(20)),
        ("lambda_min 1e-9", base.with_lambda_bounds(1e-9, 1e12)),
        ("D = I", base.with_scaling(LmScaling::Identity)),
        ("Nielsen", nielsen),
        ("Nielsen, D = I", nielsen.with_scaling(LmScaling::Identity)),
    ];
    // (refine_steps is not swept: this Woodbury net's LM solves for its gradient directly,
    // `Factorization::solve_gradient`, and does not refine.)
    for (name, c) in configs {
        let mut lm = LevenbergMarquardt::<Regressor>::boxed(c).unwrap();
        let r = run(name, 200, |n| lm.step(n, x, t));
        println!(
            "  sweep: {name}: {} steps, {}",
            r.steps_to_target.map_or("-".into(), |s| s.to_string()),
            r.time_to_target.map_or("-".into(), fmt_time)
        );
    }
}

/// Steps to the target from eight initialisations (with `FIT_SEEDS`): ours (four variants)
/// and lmder, each row a seed, and the medians.
fn seeds(x: &[[f64; 1]; BATCH], t: &[[f64; 1]; BATCH]) {
    let variants = [
        (
            "step bound, D = column norms",
            LmConfig::default()
                .with_damping(LmDamping::StepBound)
                .with_scaling(LmScaling::ColumnNorms),
        ),
        (
            "Nielsen, D = column norms",
            LmConfig::default().with_scaling(LmScaling::ColumnNorms),
        ),
        (
            "Nielsen, D = column norms, geodesic",
            LmConfig::default()
                .with_scaling(LmScaling::ColumnNorms)
                .with_geodesic(Geodesic::default()),
        ),
        ("Nielsen, D = I", LmConfig::default()),
    ];
    let mut steps: Vec<Vec<usize>> = vec![Vec::new(); variants.len() + 1];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len() + 1];
    println!(
        "| seed | {} | MINPACK lmder |",
        variants.map(|v| v.0).join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(variants.len()));
    for seed in 1..=8u64 {
        let mut cells = Vec::new();
        let mut outcomes = Vec::new();
        for (name, c) in variants {
            let mut lm = LevenbergMarquardt::<Regressor>::boxed(c).unwrap();
            outcomes.push(run_from(seed, name, 300, |n| lm.step(n, x, t)));
        }
        outcomes.push(minpack::run_from(seed, false));
        for (k, o) in outcomes.iter().enumerate() {
            match (o.steps_to_target, o.time_to_target) {
                (Some(s), Some(w)) => {
                    steps[k].push(s);
                    times[k].push(w);
                    cells.push(format!("{s} ({})", fmt_time(w)));
                }
                _ => cells.push(format!("- (best {:.1e})", o.best_mse)),
            }
        }
        println!("| {seed} | {} |", cells.join(" | "));
    }
    let median = |v: &mut Vec<usize>| {
        v.sort_unstable();
        v.get(v.len() / 2).map_or("-".into(), |m| m.to_string())
    };
    let median_t = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).map_or("-".into(), |m| fmt_time(*m))
    };
    let cells: Vec<String> = (0..steps.len())
        .map(|k| {
            format!(
                "{} of 8 reached, median {} ({})",
                steps[k].len(),
                median(&mut steps[k]),
                median_t(&mut times[k])
            )
        })
        .collect();
    println!("| median | {} |", cells.join(" | "));
}

/// The other optimizers of `runtime::optim` on the same problem (skipped with `FIT_LM_ONLY`).
fn others(x: &[[f64; 1]; BATCH], t: &[[f64; 1]; BATCH], rows: &mut Vec<Outcome>) {
    let mut newton = DampedNewton::<Regressor>::boxed(NewtonConfig::default()).unwrap();
    rows.push(run("Newton, adaptive damping (exact H)", 1000, |n| {
        newton.step(n, x, t)
    }));
    let mut tr = TrustRegion::<Regressor>::boxed(TrustRegionConfig::default()).unwrap();
    let mut tr_facts = Vec::new();
    rows.push(run("trust-region Newton (More-Sorensen)", 1000, |n| {
        let r = tr.step(n, x, t);
        if let Ok(r) = &r {
            tr_facts.push(r.factorizations); // one subproblem per step
        }
        r
    }));
    tr_facts.sort_unstable();
    if let (Some(med), Some(max)) = (tr_facts.get(tr_facts.len() / 2), tr_facts.last()) {
        println!(
            "  trust region: factorisations per subproblem median {med}, max {max}, total {} over {} subproblems",
            tr_facts.iter().sum::<u32>(),
            tr_facts.len()
        );
    }
    macro_rules! saddle_free {
        ($k:literal) => {{
            let c = SaddleFreeConfig::default().with_max_negative($k);
            let mut sfn = SaddleFreeNewton::<Regressor, $k>::boxed(c).unwrap();
            let mut facts = 0u32;
            let name = concat!("saddle-free Newton, |H| + eps I, ", $k, " lowest pairs");
            rows.push(run(name, 1000, |n| {
                let r = sfn.step(n, &x, &t);
                facts += r.as_ref().map_or(0, |r| r.factorizations);
                r
            }));
            let (steps, i) = (rows.last().unwrap().steps_run, sfn.info());
            println!(
                "  {name}: {facts} factorisations in {steps} steps, {} truncated, {} uncertified; last step {:?} negative, {} found",
                sfn.truncated_steps(), sfn.uncertified_steps(), i.negative, i.found
            );
        }};
    }
    saddle_free!(8);
    saddle_free!(32);
    for lr in [1e-3, 3e-3, 1e-2] {
        let mut adam = Adam::<Regressor>::boxed(AdamConfig::default().with_lr(lr)).unwrap();
        rows.push(run(&format!("Adam lr {lr:.0e}"), 50_000, |n| {
            adam.step(n, x, t)
        }));
    }
    for lr in [1e-2, 3e-2] {
        let mut sgd =
            Sgd::<Regressor>::boxed(SgdConfig::default().with_lr(lr).with_momentum(0.9)).unwrap();
        rows.push(run(
            &format!("SGD lr {lr:.0e}, momentum 0.9"),
            50_000,
            |n| sgd.step(n, x, t),
        ));
    }

    #[cfg(feature = "argmin")]
    rows.extend(argmin_baselines::run_all());
}

/// The table and the comparisons.
fn report(rows: &[Outcome]) {
    println!("| optimizer | steps to MSE 1e-6 | time to MSE 1e-6 | best MSE | steps run | time |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2e} | {} | {} |",
            r.name,
            r.steps_to_target.map_or("-".into(), |s| s.to_string()),
            r.time_to_target.map_or("-".into(), fmt_time),
            r.best_mse,
            r.steps_run,
            fmt_time(r.total_time)
        );
    }
    // Each of our LM variants against lmder, measured in this run.
    if let Some(mp) = rows.iter().find(|r| r.name.starts_with("MINPACK")) {
        if let (Some(ms), Some(mt)) = (mp.steps_to_target, mp.time_to_target) {
            println!(
                "\nagainst MINPACK lmder ({ms} Jacobians, {}):",
                fmt_time(mt)
            );
            for r in rows
                .iter()
                .filter(|r| r.name.starts_with("Levenberg-Marquardt"))
            {
                if let (Some(s), Some(t)) = (r.steps_to_target, r.time_to_target) {
                    println!(
                        "  {}: {s} steps ({}), lmder's wall time / ours {:.1}x",
                        r.name,
                        if s <= ms {
                            "<= lmder's"
                        } else {
                            "more than lmder's"
                        },
                        mt / t
                    );
                }
            }
        }
    }
    let lm_steps = rows[0].steps_to_target;
    let adam_best = rows
        .iter()
        .filter(|r| r.name.starts_with("Adam"))
        .map(|r| r.steps_to_target.unwrap_or(usize::MAX))
        .min()
        .unwrap_or(usize::MAX);
    match lm_steps {
        Some(s) => println!(
            "\nLevenberg-Marquardt: {s} steps; best Adam: {}",
            if adam_best == usize::MAX {
                "never within 50000 steps".to_string()
            } else {
                format!("{adam_best} steps ({:.0}x)", adam_best as f64 / s as f64)
            }
        ),
        None => println!("\nLevenberg-Marquardt did not reach the target"),
    }
}

#[cfg(feature = "argmin")]
mod argmin_baselines {
    use std::time::Instant;

    use argmin::core::{Executor, State};
    use argmin::solver::linesearch::MoreThuenteLineSearch;
    use argmin::solver::newton::NewtonCG;
    use argmin::solver::quasinewton::LBFGS;
    use tall_skinny::argmin_support::NetProblem;

    use super::{data, Outcome, Regressor, TARGET_MSE};

    fn outcome(name: &str, iters: u64, best_cost: f64, secs: f64) -> Outcome {
        let best = 2.0 * best_cost;
        let hit = best < TARGET_MSE;
        Outcome {
            name: name.to_string(),
            steps_to_target: hit.then_some(iters as usize),
            time_to_target: hit.then_some(secs),
            best_mse: best,
            steps_run: iters as usize,
            total_time: secs,
        }
    }

    pub fn run_all() -> Vec<Outcome> {
        let (x, t) = data();
        let mut rows = Vec::new();

        let problem = NetProblem::new(Regressor::init(1), x, t);
        let p0 = problem.params();
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
            .with_tolerance_grad(0.0)
            .unwrap()
            .with_tolerance_cost(0.0)
            .unwrap();
        let start = Instant::now();
        match Executor::new(problem, solver)
            .configure(|s| s.param(p0).max_iters(20_000).target_cost(TARGET_MSE / 2.0))
            .run()
        {
            Ok(r) => rows.push(outcome(
                "argmin L-BFGS (m 10, More-Thuente)",
                r.state().get_iter(),
                r.state().get_best_cost(),
                start.elapsed().as_secs_f64(),
            )),
            Err(e) => println!("  argmin L-BFGS failed: {e}"),
        }

        let problem = NetProblem::new(Regressor::init(1), x, t);
        let p0 = problem.params();
        let solver = NewtonCG::new(MoreThuenteLineSearch::new());
        let start = Instant::now();
        match Executor::new(problem, solver)
            .configure(|s| s.param(p0).max_iters(200).target_cost(TARGET_MSE / 2.0))
            .run()
        {
            Ok(r) => rows.push(outcome(
                "argmin Newton-CG (exact hvp, More-Thuente)",
                r.state().get_iter(),
                r.state().get_best_cost(),
                start.elapsed().as_secs_f64(),
            )),
            Err(e) => println!("  argmin Newton-CG failed: {e}"),
        }
        rows
    }
}

/// MINPACK's `lmder` through the `levenberg-marquardt` crate (its port over nalgebra): the
/// residuals `(u_n - t_n) / sqrt(B)` (so `|r|^2 / 2` is the net's loss) and their exact
/// Jacobian, rows `J_n / sqrt(B)` from the net's `output_jacobian` (one forward and one
/// backward pass per sample). The crate stops at its own tolerances; here the problem ends
/// the run (returns `None` from `jacobian`) once an accepted point is below the target, and
/// the time is that of the evaluation that reached it.
mod minpack {
    use std::time::Instant;

    use tall_skinny::runtime::optim::Model;
    use tall_skinny_baselines::minpack::{lmder, Residuals};

    use super::{data, Outcome, Regressor, BATCH, TARGET_MSE};

    struct Problem {
        net: Regressor,
        x: [[f64; 1]; BATCH],
        t: [[f64; 1]; BATCH],
        start: Instant,
        jacobians: usize,
        residual_evals: usize,
        /// (Jacobians so far, seconds) of the last trial below the target, not yet accepted.
        pending: Option<(usize, f64)>,
        hit: Option<(usize, f64)>,
        best: f64,
    }

    impl Problem {
        fn set(&mut self, p: &[f64]) -> bool {
            let mut v = [0.0; Regressor::N_PARAMS];
            v.copy_from_slice(p);
            self.net.put_params(&v).is_ok()
        }
    }

    impl Residuals for Problem {
        fn m(&self) -> usize {
            BATCH
        }

        fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
            self.residual_evals += 1;
            // A non-finite trial point ends the run (none occurs here).
            if !self.set(p) {
                return false;
            }
            let Ok(u) = self.net.forward(&self.x) else {
                return false;
            };
            let s = 1.0 / (BATCH as f64).sqrt();
            for (n, rn) in r.iter_mut().enumerate() {
                *rn = (u[n][0] - self.t[n][0]) * s;
            }
            let mse: f64 = r.iter().map(|v| v * v).sum();
            if std::env::var_os("FIT_TRACE").is_some() {
                println!("  lmder: Jacobian {}, trial MSE {mse:.6e}", self.jacobians);
            }
            self.best = self.best.min(mse);
            // A new trial replaces an unaccepted one.
            self.pending =
                (mse < TARGET_MSE).then(|| (self.jacobians, self.start.elapsed().as_secs_f64()));
            true
        }

        fn jacobian(&mut self, p: &[f64], j: &mut [f64]) -> bool {
            if let Some(h) = self.pending {
                // The point below the target was accepted (lmder asks for its Jacobian).
                self.hit = Some(h);
                return false;
            }
            self.jacobians += 1;
            if !self.set(p) {
                return false;
            }
            let s = 1.0 / (BATCH as f64).sqrt();
            let mut row = [[0.0; Regressor::N_PARAMS]; 1];
            for n in 0..BATCH {
                if self.net.output_jacobian(&self.x[n], &mut row).is_err() {
                    return false;
                }
                for (o, v) in j[n * Regressor::N_PARAMS..(n + 1) * Regressor::N_PARAMS]
                    .iter_mut()
                    .zip(&row[0])
                {
                    *o = v * s;
                }
            }
            true
        }
    }

    pub fn run() -> Outcome {
        run_from(1, true)
    }

    /// lmder from the initialisation of this seed.
    pub fn run_from(seed: u64, print: bool) -> Outcome {
        let (x, t) = data();
        let net = Regressor::init(seed);
        let mut p0 = [0.0; Regressor::N_PARAMS];
        net.get_params(&mut p0);
        let start = Instant::now();
        let problem = Problem {
            net,
            x,
            t,
            start,
            jacobians: 0,
            residual_evals: 0,
            pending: None,
            hit: None,
            best: f64::INFINITY,
        };
        let (p, report) = lmder(problem, &p0);
        let total = start.elapsed().as_secs_f64();
        let hit = p.hit;
        if print {
            println!(
                "  MINPACK lmder: {} Jacobians, {} residual evaluations, stopped: {}",
                p.jacobians, p.residual_evals, report.termination
            );
        }
        Outcome {
            name: format!(
                "MINPACK lmder (levenberg-marquardt crate, mode 1), {} residual evaluations",
                p.residual_evals
            ),
            steps_to_target: hit.map(|h| h.0),
            time_to_target: hit.map(|h| h.1),
            best_mse: p.best,
            steps_run: p.jacobians,
            total_time: total,
        }
    }
}
