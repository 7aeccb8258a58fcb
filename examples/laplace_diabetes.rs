//! Predictive intervals and model choice by the Laplace evidence, on real data: the diabetes
//! data set (442 patients, 10 features, a disease-progression score; `linfa-datasets`).
//!
//! - Split 353 / 88 (seeded; linfa's copy has 441 rows), standardise features and target with the training split's
//!   statistics.
//! - For three depths of a width-8 residual tanh net and each prior precision `alpha` of a
//!   grid, fit the MAP parameters under the prior `N(0, 1/alpha)` and Gaussian noise of
//!   precision `beta` (Levenberg-Marquardt on `loss + eps |w|^2 / 2`, `eps = alpha / (beta
//!   n)`, with the exact Woodbury Gauss-Newton solve), alternating with MacKay's update of
//!   `beta`; the log evidence (`runtime::laplace::Evidence::at`) picks `alpha` and the
//!   depth. The fixed-point maximiser (`Evidence::maximise`, parameters held fixed) is run
//!   at the chosen MAP and printed next to it: at fixed parameters it drifts to a smaller
//!   alpha (the MAP moves with alpha, which it ignores), so the grid with re-fitted
//!   parameters is what chooses.
//! - Report the log evidence of each depth, and on the held-out split the RMSE and the
//!   coverage of the 68% and 95% predictive intervals, predictive variance
//!   `1/beta + J* (G + eps I)^{-1} J*' / (beta n)` (`predictive_cov`, exact).
//!
//! Exits non-zero if the result is clearly broken (a 95% coverage below 0.8, a 68% coverage
//! below 0.5, a non-finite number, the maximiser failing).
//!
//! `cargo run --release --example laplace_diabetes`

use tall_skinny::boxed_zeroed;
use tall_skinny::prelude::*;
use tall_skinny::runtime::data::shuffle_split;
use tall_skinny::runtime::laplace::{
    fit_map, Evidence, Hyper, Likelihood, MapConfig, MaximiseConfig,
};
use tall_skinny::runtime::optim::Model;

const TRAIN: usize = 353;
const F: usize = 10;

/// Depth 3 (one residual block), 169 parameters.
#[tall_skinny_net(batch = 353)]
struct Depth3 {
    inp: Dense<10, 8, Tanh>,
    body: [Residual<8, Tanh>; 1],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Depth 4, 241 parameters.
#[tall_skinny_net(batch = 353)]
struct Depth4 {
    inp: Dense<10, 8, Tanh>,
    body: [Residual<8, Tanh>; 2],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Depth 6, 385 parameters.
#[tall_skinny_net(batch = 353)]
struct Depth6 {
    inp: Dense<10, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

struct Data {
    xtr: Box<[[f64; F]; TRAIN]>,
    ttr: Box<[[f64; 1]; TRAIN]>,
    xte: Vec<[f64; F]>,
    tte: Vec<f64>,
    t_scale: f64,
}

fn data() -> Data {
    let ds = linfa_datasets::diabetes();
    let n = ds.records.nrows();
    assert!(n > TRAIN + 50, "diabetes has {n} samples");
    assert_eq!(ds.records.ncols(), F);
    let mut xs: Vec<[f64; F]> = (0..n)
        .map(|i| core::array::from_fn(|j| ds.records[[i, j]]))
        .collect();
    let mut ts: Vec<f64> = (0..n).map(|i| ds.targets[i]).collect();
    let split = shuffle_split(&mut xs, &mut ts, 13, 0, n - TRAIN).expect("split");
    let (xtr, ttr) = split.train;
    let (xte, tte) = split.test;
    // training-split statistics
    let mean: [f64; F] =
        core::array::from_fn(|j| xtr.iter().map(|x| x[j]).sum::<f64>() / TRAIN as f64);
    let sd: [f64; F] = core::array::from_fn(|j| {
        (xtr.iter().map(|x| (x[j] - mean[j]).powi(2)).sum::<f64>() / (TRAIN - 1) as f64).sqrt()
    });
    let tm = ttr.iter().sum::<f64>() / TRAIN as f64;
    let tsd = (ttr.iter().map(|t| (t - tm).powi(2)).sum::<f64>() / (TRAIN - 1) as f64).sqrt();
    let std_x = |x: &[f64; F]| -> [f64; F] { core::array::from_fn(|j| (x[j] - mean[j]) / sd[j]) };
    let mut xb: Box<[[f64; F]; TRAIN]> = boxed_zeroed();
    let mut tb: Box<[[f64; 1]; TRAIN]> = boxed_zeroed();
    for i in 0..TRAIN {
        xb[i] = std_x(&xtr[i]);
        tb[i] = [(ttr[i] - tm) / tsd];
    }
    Data {
        xtr: xb,
        ttr: tb,
        xte: xte.iter().map(std_x).collect(),
        tte: tte.iter().map(|t| (t - tm) / tsd).collect(),
        t_scale: tsd,
    }
}

/// What one depth gives.
struct Row {
    name: &'static str,
    depth: usize,
    params: usize,
    alpha: f64,
    beta: f64,
    gamma: f64,
    log_evidence: f64,
    train_rmse: f64,
    test_rmse: f64,
    cover68: f64,
    cover95: f64,
    mean_sd: f64,
    curve: Vec<(f64, f64)>,
    fixed_w: (f64, f64, f64, usize),
}

/// The prior precisions tried (the evidence curve).
const ALPHAS: [f64; 8] = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0];

/// Fits one net: MAP Levenberg-Marquardt alternating with the evidence maximiser, then the
/// held-out predictive intervals.
macro_rules! fit {
    ($net:ident, $ggn:ident, $d:expr) => {{
        const N: usize = $net::N_PARAMS;
        let d: &Data = $d;
        let (x, t) = (&*d.xtr, &*d.ttr);
        let n = TRAIN as f64;
        let mut wood = boxed_zeroed::<$ggn>();
        let mut scratch = boxed_zeroed::<<$net as Model>::GnScratch>();
        let mut work4 = [[0.0; N]; 4];
        // the evidence curve: for each alpha, the MAP parameters and beta re-fitted
        let mut curve: Vec<(f64, f64)> = Vec::new();
        let mut best: Option<($net, Evidence<f64>, Hyper<f64>, f64, f64)> = None;
        for alpha in ALPHAS {
            let mut net = $net::init(7);
            let mut hyper = Hyper { alpha, beta: 1.0 };
            let mut value = None;
            for _round in 0..8 {
                let eps = hyper.alpha / (hyper.beta * n);
                // MAP fit at this eps: minimise loss + eps |w|^2 / 2 (Levenberg-Marquardt on
                // the exact Gauss-Newton solve, damping lambda on top of the prior's eps)
                let cfg = MapConfig {
                    max_steps: 60,
                    ..MapConfig::default()
                };
                let map = fit_map(
                    &mut net,
                    &mut *wood,
                    &mut scratch,
                    &mut work4,
                    x,
                    t,
                    eps,
                    cfg,
                )
                .expect("MAP fit");
                let ev = Evidence {
                    likelihood: Likelihood::Gaussian,
                    samples: TRAIN,
                    outputs: 1,
                    loss: map.loss,
                    weight_sq: map.weight_sq,
                };
                net.ggn_woodbury_into(&mut wood, x, t).unwrap();
                let v = ev.at(&mut *wood, hyper).expect("evidence");
                let beta = (n - v.gamma) / (2.0 * n * ev.loss);
                let change = ((beta - hyper.beta) / hyper.beta).abs();
                hyper.beta = beta;
                value = Some((ev, v));
                if change < 1e-6 {
                    break;
                }
            }
            let (ev, _) = value.unwrap();
            net.ggn_woodbury_into(&mut wood, x, t).unwrap();
            let v = ev.at(&mut *wood, hyper).expect("evidence");
            curve.push((alpha, v.log_evidence));
            if best.as_ref().is_none_or(|b| v.log_evidence > b.3) {
                best = Some((net, ev, hyper, v.log_evidence, v.gamma));
            }
        }
        let (net, ev, hyper, log_evidence, gamma) = best.unwrap();
        net.ggn_woodbury_into(&mut wood, x, t).unwrap();
        // the maximiser at the chosen parameters (alpha and beta with the parameters fixed)
        let m = ev
            .maximise(
                &mut *wood,
                hyper,
                MaximiseConfig {
                    max_iter: 5000,
                    tol: 1e-9,
                },
            )
            .unwrap_or_else(|e| panic!("{}: {e}", stringify!($net)));
        let eps = hyper.alpha / (hyper.beta * n);
        // held-out predictive intervals
        let mut f = wood.factor(eps).unwrap();
        let mut work: Box<[[f64; N]; 2]> = boxed_zeroed();
        let test = d.xte.len();
        let mut outs = vec![[0.0; 1]; test];
        let mut covs = vec![[[0.0; 1]; 1]; test];
        net.predictive_cov_all(&mut f, &d.xte, &mut work, &mut outs, &mut covs)
            .unwrap();
        let (mut c68, mut c95, mut se, mut sds) = (0, 0, 0.0, 0.0);
        for q in 0..test {
            let var = 1.0 / hyper.beta + covs[q][0][0] / (hyper.beta * n);
            let sd = var.sqrt();
            let r = (d.tte[q] - outs[q][0]).abs();
            c68 += (r <= sd) as usize;
            c95 += (r <= 1.959964 * sd) as usize;
            se += r * r;
            sds += sd;
        }
        Row {
            name: stringify!($net),
            depth: $net::DEPTH,
            params: N,
            alpha: hyper.alpha,
            beta: hyper.beta,
            gamma,
            log_evidence,
            fixed_w: (
                m.hyper.alpha,
                m.hyper.beta,
                m.value.log_evidence,
                m.iterations,
            ),
            train_rmse: (2.0 * ev.loss).sqrt() * d.t_scale,
            test_rmse: (se / test as f64).sqrt() * d.t_scale,
            cover68: c68 as f64 / test as f64,
            cover95: c95 as f64 / test as f64,
            mean_sd: sds / test as f64 * d.t_scale,
            curve,
        }
    }};
}

fn main() {
    let d = data();
    println!(
        "diabetes: {TRAIN} training / {} held-out samples, {F} features, target sd {:.2}; width-8 residual tanh nets, Woodbury Gauss-Newton",
        d.xte.len(),
        d.t_scale
    );
    let rows = vec![
        fit!(Depth3, Depth3Ggn, &d),
        fit!(Depth4, Depth4Ggn, &d),
        fit!(Depth6, Depth6Ggn, &d),
    ];
    println!();
    println!("| net | depth | N | alpha | beta | gamma | log evidence | train RMSE | test RMSE | mean predictive sd | 68% coverage | 95% coverage |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.3e} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} |",
            r.name,
            r.depth,
            r.params,
            r.alpha,
            r.beta,
            r.gamma,
            r.log_evidence,
            r.train_rmse,
            r.test_rmse,
            r.mean_sd,
            r.cover68,
            r.cover95
        );
    }
    let best = rows
        .iter()
        .max_by(|a, b| a.log_evidence.total_cmp(&b.log_evidence))
        .unwrap();
    println!(
        "\nchosen by the evidence: {} (depth {}), alpha {:.3e}, beta {:.3}",
        best.name, best.depth, best.alpha, best.beta
    );
    println!("\nlog evidence against alpha (MAP parameters and beta re-fitted at each alpha):");
    print!("| alpha |");
    for r in &rows {
        print!(" {} |", r.name);
    }
    println!();
    println!("|---|{}", "---|".repeat(rows.len()));
    for (i, a) in ALPHAS.iter().enumerate() {
        print!("| {a} |");
        for r in &rows {
            print!(" {:.2} |", r.curve[i].1);
        }
        println!();
    }
    println!("\nthe evidence maximiser (MacKay's updates, secant-damped; parameters held at the chosen MAP):");
    for r in &rows {
        println!(
            "  {}: alpha {:.3e}, beta {:.3}, log evidence there {:.2} (at the grid point: {:.2}), {} iterations",
            r.name, r.fixed_w.0, r.fixed_w.1, r.fixed_w.2, r.log_evidence, r.fixed_w.3
        );
    }
    let mut broken = false;
    for r in &rows {
        let nums = [
            r.alpha,
            r.beta,
            r.gamma,
            r.log_evidence,
            r.test_rmse,
            r.mean_sd,
        ];
        if nums.iter().any(|v| !v.is_finite()) {
            println!("BROKEN: {} has a non-finite result", r.name);
            broken = true;
        }
        if r.cover95 < 0.8 || r.cover68 < 0.5 {
            println!(
                "BROKEN: {} coverage 68% {:.3}, 95% {:.3}",
                r.name, r.cover68, r.cover95
            );
            broken = true;
        }
    }
    if broken {
        std::process::exit(1);
    }
}
