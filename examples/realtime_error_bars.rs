//! Error bars on identified dynamics: the damped pendulum of `realtime_loop`, identified from
//! 128 noisy transitions logged along one excited trajectory (measurement noise sd 0.05 on
//! each derivative), with the exact Laplace posterior of the net (Gauss-Newton, Woodbury form,
//! linear in depth, no diagonal or last-layer approximation).
//!
//! 1. MAP fit: Levenberg-Marquardt on `loss + eps |w|^2 / 2` for each prior precision `alpha`
//!    on a grid (each fit from the same initial parameters), the noise precision `beta` re-estimated (MacKay) between fits; the log
//!    evidence chooses `alpha`.
//! 2. The predictive sd of every output, `sqrt(1/beta + J* (G + eps I)^{-1} J*' / (beta n))`,
//!    at held-out states: (a) later on the same kind of trajectory (in distribution), where the
//!    measured coverage of the 68% / 95% intervals is printed, and (b) off the training
//!    distribution (torques 1.5-2x beyond any seen), where the error bars must widen with the
//!    error.
//!
//! Exits non-zero if the in-distribution 95% coverage falls below 0.85 or the off-distribution
//! error bars do not exceed the in-distribution ones.
//!
//! `cargo run --release --example realtime_error_bars`

use tall_skinny::boxed_zeroed;
use tall_skinny::prelude::*;
use tall_skinny::runtime::laplace::{Evidence, Hyper, Likelihood};
use tall_skinny::runtime::SplitMix64;

const TRAIN: usize = 128;
const NOISE: f64 = 0.05;

/// Depth 8, width 8: (theta, omega, torque) -> (dtheta/dt, domega/dt), the whole log as one
/// batch.
#[tall_skinny_net(batch = 128)]
struct Pendulum {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// The damped pendulum: theta'' = -(g/l) sin(theta) - c theta' + u.
fn derivative([theta, omega, u]: [f64; 3]) -> [f64; 2] {
    [omega, -9.81 * theta.sin() - 0.3 * omega + u]
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = rng.next_f64().max(1e-300);
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
}

/// `count` states of an excited trajectory sampled every `every` ticks (dt 0.01 s), the
/// excitation scaled by `gain`; the phase offset makes each log a different trajectory.
fn trajectory(count: usize, every: usize, gain: f64, phase: f64) -> Vec<[f64; 3]> {
    let (mut theta, mut omega) = (1.0f64, 0.0f64);
    let mut out = Vec::with_capacity(count);
    for k in 0..count * every {
        let time = k as f64 * 0.01 + phase;
        let u = gain
            * (2.0 * (0.7 * time).sin()
                + 1.5 * (1.9 * time + 0.5).sin()
                + 0.8 * (4.3 * time).sin());
        let x = [theta, omega, u];
        if k % every == 0 {
            out.push(x);
        }
        let d = derivative(x);
        omega += 0.01 * d[1];
        theta += 0.01 * omega;
    }
    out
}

const N: usize = Pendulum::N_PARAMS;

/// The MAP parameters at `eps` from `net`'s current ones (Levenberg-Marquardt with the exact
/// Woodbury solve of `G + (eps + lambda) I`, stopping when a step gains less than 1e-13
/// relatively).
fn map_fit(
    net: &mut Pendulum,
    x: &[[f64; 3]; TRAIN],
    t: &[[f64; 2]; TRAIN],
    eps: f64,
    wood: &mut PendulumGgn,
) {
    let (mut g, mut w, mut rhs, mut step, mut trial) =
        ([0.0; N], [0.0; N], [0.0; N], [0.0; N], [0.0; N]);
    let mut lambda = 1e-3;
    for _ in 0..200 {
        let loss = net.gradient(x, t, &mut g).expect("gradient");
        net.params(&mut w);
        let obj = loss + 0.5 * eps * w.iter().map(|v| v * v).sum::<f64>();
        for q in 0..N {
            rhs[q] = -(g[q] + eps * w[q]);
        }
        net.ggn_woodbury_into(wood, x, t).expect("curvature");
        let mut gained = false;
        for _ in 0..12 {
            let mut f = wood.factor(eps + lambda).expect("factor");
            f.solve(&rhs, &mut step).expect("solve");
            for q in 0..N {
                trial[q] = w[q] + step[q];
            }
            net.set_params(&trial).expect("finite step");
            let tobj = net.loss(x, t).expect("loss")
                + 0.5 * eps * trial.iter().map(|v| v * v).sum::<f64>();
            if tobj < obj {
                lambda = (lambda * 0.3).max(1e-12);
                gained = obj - tobj > 1e-13 * obj;
                break;
            }
            net.set_params(&w).unwrap();
            lambda *= 10.0;
        }
        if !gained {
            return;
        }
    }
}

struct Fitted {
    net: Box<Pendulum>,
    hyper: Hyper<f64>,
    log_evidence: f64,
    gamma: f64,
}

fn main() {
    let mut rng = SplitMix64::new(2026);
    // The log: 128 states 12 ticks apart (about 15 s), noisy measured derivatives.
    let states = trajectory(TRAIN, 12, 1.0, 0.0);
    let mut x: Box<[[f64; 3]; TRAIN]> = boxed_zeroed();
    let mut t: Box<[[f64; 2]; TRAIN]> = boxed_zeroed();
    for (n, s) in states.iter().enumerate() {
        let d = derivative(*s);
        x[n] = *s;
        t[n] = [
            d[0] + NOISE * normal(&mut rng),
            d[1] + NOISE * normal(&mut rng),
        ];
    }
    let umax = states.iter().fold(0.0f64, |m, s| m.max(s[2].abs()));
    let n = TRAIN as f64;
    let mut wood = boxed_zeroed::<PendulumGgn>();

    // 1. The evidence over alpha, MAP parameters and beta re-fitted at each alpha.
    println!(
        "Pendulum: depth {}, width 8, {} parameters, {TRAIN} noisy transitions (noise sd {NOISE}), Gauss-Newton {:?}",
        Pendulum::DEPTH,
        N,
        Pendulum::GGN_METHOD
    );
    println!(
        "\n| alpha | beta | noise sd (1/sqrt beta) | gamma | log evidence |\n|---|---|---|---|---|"
    );
    let mut best: Option<Fitted> = None;
    for alpha in [3.0, 10.0, 30.0, 100.0, 300.0] {
        let mut net = Box::new(Pendulum::init(7));
        let mut hyper = Hyper { alpha, beta: 1.0 };
        let mut value = None;
        for _round in 0..6 {
            map_fit(&mut net, &x, &t, hyper.alpha / (hyper.beta * n), &mut wood);
            let mut w = [0.0; N];
            net.params(&mut w);
            let ev = Evidence {
                likelihood: Likelihood::Gaussian,
                samples: TRAIN,
                outputs: 2,
                loss: net.loss(&x, &t).unwrap(),
                weight_sq: w.iter().map(|v| v * v).sum(),
            };
            net.ggn_woodbury_into(&mut wood, &x, &t).unwrap();
            let v = ev.at(&mut *wood, hyper).expect("evidence");
            let beta = (2.0 * n - v.gamma) / (2.0 * n * ev.loss);
            let change = ((beta - hyper.beta) / hyper.beta).abs();
            hyper.beta = beta;
            let v = ev.at(&mut *wood, hyper).expect("evidence");
            value = Some(v);
            if change < 1e-6 {
                break;
            }
        }
        let v = value.unwrap();
        println!(
            "| {alpha:e} | {:.1} | {:.4} | {:.1} | {:.2} |",
            hyper.beta,
            1.0 / hyper.beta.sqrt(),
            v.gamma,
            v.log_evidence
        );
        if best
            .as_ref()
            .is_none_or(|b| v.log_evidence > b.log_evidence)
        {
            best = Some(Fitted {
                net,
                hyper,
                log_evidence: v.log_evidence,
                gamma: v.gamma,
            });
        }
    }
    let Fitted {
        net,
        hyper,
        log_evidence,
        gamma,
    } = best.unwrap();
    println!(
        "\nchosen: alpha {:e}, beta {:.1} (noise sd {:.4}; true {NOISE}), gamma {gamma:.1} of {N}, log evidence {log_evidence:.2}",
        hyper.alpha,
        hyper.beta,
        1.0 / hyper.beta.sqrt()
    );

    // 2. Error bars at held-out states.
    net.ggn_woodbury_into(&mut wood, &x, &t).unwrap();
    let mut f = wood.factor(hyper.alpha / (hyper.beta * n)).unwrap();
    let mut work: Box<[[f64; N]; 2]> = boxed_zeroed();
    let sets = [
        (
            "in distribution (a later stretch of trajectory)",
            trajectory(200, 7, 1.0, 40.0),
        ),
        (
            "off distribution (torques 1.5-2x the largest seen)",
            trajectory(200, 7, 1.0, 40.0)
                .into_iter()
                .map(|[th, om, u]| {
                    [
                        th,
                        om,
                        u.signum() * umax * (1.5 + 0.5 * (u.abs() / umax).min(1.0)),
                    ]
                })
                .collect(),
        ),
    ];
    println!("\n| held-out states | RMS error (noise-free truth) | mean predictive sd of the model (no noise) | 68% coverage (noisy) | 95% coverage (noisy) |\n|---|---|---|---|---|");
    let mut summary = Vec::new();
    for (name, xs) in &sets {
        let mut outs = vec![[0.0; 2]; xs.len()];
        let mut covs = vec![[[0.0; 2]; 2]; xs.len()];
        net.predictive_cov_all(&mut f, xs, &mut work, &mut outs, &mut covs)
            .expect("predictive covariance");
        let (mut se, mut model_sd, mut c68, mut c95) = (0.0, 0.0, 0usize, 0usize);
        for (q, s) in xs.iter().enumerate() {
            let truth = derivative(*s);
            for k in 0..2 {
                let model_var = covs[q][k][k] / (hyper.beta * n);
                let sd = (1.0 / hyper.beta + model_var).sqrt();
                let measured = truth[k] + NOISE * normal(&mut rng);
                let r = (measured - outs[q][k]).abs();
                c68 += (r <= sd) as usize;
                c95 += (r <= 1.959964 * sd) as usize;
                se += (truth[k] - outs[q][k]).powi(2);
                model_sd += model_var.sqrt();
            }
        }
        let m = 2 * xs.len();
        let row = (
            (se / m as f64).sqrt(),
            model_sd / m as f64,
            c68 as f64 / m as f64,
            c95 as f64 / m as f64,
        );
        println!(
            "| {name} | {:.4} | {:.4} | {:.3} | {:.3} |",
            row.0, row.1, row.2, row.3
        );
        summary.push(row);
    }
    let (inside, outside) = (summary[0], summary[1]);
    println!(
        "\noff distribution: the model's error is {:.1}x and its error bar {:.1}x the in-distribution ones",
        outside.0 / inside.0,
        outside.1 / inside.1
    );
    if inside.3 < 0.85 || outside.1 <= inside.1 {
        eprintln!(
            "error bars fail their check (95% coverage {:.3}; off/in sd {:.2})",
            inside.3,
            outside.1 / inside.1
        );
        std::process::exit(1);
    }
}
