//! A deep, narrow residual tanh net fits a nonlinear 1-D function on a fixed batch; every
//! optimizer of `runtime::optim` runs from the same initialisation, and the table gives the
//! steps and wall time to reach MSE 1e-6 (loss = MSE / 2 < 5e-7), or the best loss within the
//! budget (a step count, and at most 15 s of wall time per optimizer).
//!
//! `cargo run --release --example fit_regression` (add `--features argmin` for argmin's
//! L-BFGS and Newton-CG on the same problem, through `tall_skinny::argmin_support`).

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
    mut step: impl FnMut(&mut Regressor) -> Result<StepReport<f64>, SolveError>,
) -> Outcome {
    let (x, t) = data();
    let mut net = Regressor::init(1);
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

    let mut lm = LevenbergMarquardt::<Regressor>::boxed(LmConfig::default()).unwrap();
    let trace = std::env::var_os("FIT_TRACE").is_some();
    rows.push(run("Levenberg-Marquardt (Gauss-Newton)", 1000, |n| {
        let r = lm.step(n, &x, &t);
        if trace {
            if let Ok(r) = &r {
                println!("  LM {r}");
            }
        }
        r
    }));
    let mut lmb = LevenbergMarquardt::<Regressor>::boxed(
        LmConfig::default().with_damping(LmDamping::StepBound),
    )
    .unwrap();
    rows.push(run("Levenberg-Marquardt, MINPACK step bound", 1000, |n| {
        lmb.step(n, &x, &t)
    }));
    let mut newton = DampedNewton::<Regressor>::boxed(NewtonConfig::default()).unwrap();
    rows.push(run("Newton, adaptive damping (exact H)", 1000, |n| {
        newton.step(n, &x, &t)
    }));
    let mut tr = TrustRegion::<Regressor>::boxed(TrustRegionConfig::default()).unwrap();
    let mut tr_facts = Vec::new();
    rows.push(run("trust-region Newton (More-Sorensen)", 1000, |n| {
        let r = tr.step(n, &x, &t);
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
            adam.step(n, &x, &t)
        }));
    }
    for lr in [1e-2, 3e-2] {
        let mut sgd =
            Sgd::<Regressor>::boxed(SgdConfig::default().with_lr(lr).with_momentum(0.9)).unwrap();
        rows.push(run(
            &format!("SGD lr {lr:.0e}, momentum 0.9"),
            50_000,
            |n| sgd.step(n, &x, &t),
        ));
    }

    #[cfg(feature = "argmin")]
    rows.extend(argmin_baselines::run_all());

    println!("| optimizer | steps to MSE 1e-6 | time to MSE 1e-6 | best MSE | steps run | time |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
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
    let lm_steps = rows[0].steps_to_target;
    let adam_best = rows
        .iter()
        .filter(|r| r.name.starts_with("Adam"))
        .map(|r| r.steps_to_target.unwrap_or(usize::MAX))
        .min()
        .unwrap();
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
