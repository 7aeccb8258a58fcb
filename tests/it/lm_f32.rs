//! Levenberg-Marquardt in f32 against the f32 floor (issue 16).
//!
//! The floor: the loss, evaluated in f64, at the f64 run's optimum rounded to f32 (what f32
//! parameters can represent). The f32 run (same start, same data, f32 throughout) must end
//! within a stated factor of it, its loss again evaluated in f64 at its f32 parameters. Before
//! the fix the f32 run stalled: its refined solves at small damping were rejected as
//! `Inaccurate` although their relative residual was at the rounding level of computing it,
//! so the damping could not fall and the iteration crawled.

use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::*;
use tall_skinny::SolveError;

const B: usize = 16;

/// A small deep regression net in f32 (parameters 1 + 4 + 3 x 20 + 5 = 70 > batch: the
/// Gauss-Newton matrix is singular, so LM's damping matters).
#[tall_skinny_net(batch = 16, scalar = f32)]
struct Fit32 {
    a: Dense<1, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

/// Its f64 twin.
#[tall_skinny_net(batch = 16)]
struct Fit64 {
    a: Dense<1, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

const N: usize = Fit64::N_PARAMS;

fn data() -> ([[f64; 1]; B], [[f64; 1]; B]) {
    let x: [[f64; 1]; B] = core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / (B - 1) as f64]);
    let t = x.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    (x, t)
}

fn loss64(p: &[f64; N]) -> f64 {
    let (x, t) = data();
    let mut n = Fit64::ZERO;
    n.set_params(p).unwrap();
    n.loss(&x, &t).unwrap()
}

/// Runs `steps` LM steps in f32 from `Fit64::init(seed)`; returns the parameters and the
/// number of calls that needed more than one solve or were rejected.
fn run32(seed: u64, steps: usize) -> ([f32; N], usize) {
    let (x64, t64) = data();
    let x = x64.map(|r| r.map(|v| v as f32));
    let t = t64.map(|r| r.map(|v| v as f32));
    let mut p = [0.0; N];
    Fit64::init(seed).params(&mut p);
    let mut net = Fit32::ZERO;
    net.set_params(&p.map(|v| v as f32)).unwrap();
    let mut lm = LevenbergMarquardt::<Fit32>::new(LmConfig::default()).unwrap();
    let mut rejected = 0;
    for _ in 0..steps {
        let r = lm.step(&mut net, &x, &t).unwrap();
        if !r.accepted || r.factorizations > 1 {
            rejected += 1;
        }
    }
    let mut out = [0.0f32; N];
    net.params(&mut out);
    (out, rejected)
}

fn run64(seed: u64, steps: usize) -> [f64; N] {
    let (x, t) = data();
    let mut net = Fit64::init(seed);
    let mut lm = LevenbergMarquardt::<Fit64>::new(LmConfig::default()).unwrap();
    for _ in 0..steps {
        lm.step(&mut net, &x, &t).unwrap();
    }
    let mut out = [0.0; N];
    net.params(&mut out);
    out
}

#[test]
fn f32_lm_approaches_the_f32_floor() {
    let mut worst: f64 = 0.0;
    for seed in [1, 2, 3] {
        let q = run64(seed, 2000);
        let floor = loss64(&q.map(|v| f64::from(v as f32)));
        let (p, rejected) = run32(seed, 400);
        let reached = loss64(&p.map(f64::from));
        let start = {
            let mut p0 = [0.0; N];
            Fit64::init(seed).params(&mut p0);
            loss64(&p0.map(|v| f64::from(v as f32)))
        };
        println!(
            "seed {seed}: start {start:.3e}, f64 optimum {:.3e}, f32 floor {floor:.3e}, f32 LM {reached:.3e} ({:.0}x the floor; {rejected} of 400 calls with a failed trial)",
            loss64(&q),
            reached / floor
        );
        worst = worst.max(reached / floor);
    }
    assert!(
        worst <= LIMIT,
        "f32 LM ended {worst:.0}x above the f32 floor"
    );
}

/// How far above the f32 floor the f32 run may end. Measured: 2350x, 34063x and 6761x for
/// seeds 1 to 3 (the floor is not reached: near a loss of 1e-8 the f32 loss's own rounding,
/// about 3e-11, is above the reductions the Gauss-Newton model predicts at the damping the
/// f32 solve supports, so the ratio test sees noise; docs/math.md section 7 and issue 16's
/// report). A regression guard, not the goal.
const LIMIT: f64 = 1e5;

/// `fit_regression`'s net (depth 16, batch 32) in f32 and f64.
#[tall_skinny_net(batch = 32, scalar = f32)]
struct Reg32 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

#[tall_skinny_net(batch = 32)]
struct Reg64 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

const RN: usize = Reg64::N_PARAMS;

/// The cause of the stall before the fix: near an f32 minimum the refined Gauss-Newton
/// solve's relative residual at a small damping cannot fall below the rounding level of
/// computing it, above `sqrt(EPSILON)` (the solve used to report `Inaccurate` there; it now
/// vouches by the backward error), yet the step is accurate.
/// LM must take a step at that damping (it used to count it a failed trial and raise the
/// damping; it now solves for its gradient in the Woodbury form without dividing by the
/// damping, `Factorization::solve_gradient`) and predict the reduction the f64 model gives
/// for it.
#[test]
fn f32_lm_tries_an_accurate_step_the_solve_cannot_vouch_for() {
    let x64: [[f64; 1]; 32] = core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / 31.0]);
    let t64 = x64.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    let x = x64.map(|r| r.map(|v| v as f32));
    let t = t64.map(|r| r.map(|v| v as f32));
    let (x64, t64) = (x.map(|r| r.map(f64::from)), t.map(|r| r.map(f64::from)));
    let mut p = [0.0; RN];
    Reg64::init(1).params(&mut p);
    let mut net = Reg32::ZERO;
    net.set_params(&p.map(|v| v as f32)).unwrap();
    let mut lm = LevenbergMarquardt::<Reg32>::boxed(LmConfig::default()).unwrap();
    for _ in 0..150 {
        lm.step(&mut net, &x, &t).unwrap();
    }
    let mut g = [0.0f32; RN];
    net.gradient(&x, &t, &mut g).unwrap();
    let mut w = tall_skinny::boxed_zeroed::<Reg32Ggn>();
    net.ggn_woodbury_into(&mut w, &x, &t).unwrap();
    let mut d = [0.0f32; RN];
    let lambda = [1e-2f32, 3e-3, 1e-3, 3e-4, 1e-4]
        .into_iter()
        .find(|&l| {
            let residual = match w.factor(l).and_then(|mut f| f.solve_refined(&g, &mut d, 2)) {
                Ok(r) => f64::from(r.residual),
                Err(SolveError::Inaccurate { residual, .. }) => residual,
                Err(_) => return false,
            };
            residual > f64::from(f32::EPSILON.sqrt()) && residual < 0.5
        })
        .expect("a damping whose refined solve's relative residual is above sqrt(EPSILON)");
    let mut base = [0.0f32; RN];
    net.params(&mut base);
    let cfg = LmConfig::default()
        .with_lambda_bounds(lambda, 1e12)
        .with_lambda(lambda)
        .with_max_trials(1);
    let mut one = LevenbergMarquardt::<Reg32>::boxed(cfg).unwrap();
    let r = one.step(&mut net, &x, &t).unwrap();
    let pred = r.predicted.expect("the step was tried");
    assert!(r.loss_trial.is_some(), "{r}");
    // the f64 model's reduction for the step LM took: -(g'd + d'G d / 2) in f64
    let mut trial = [0.0f32; RN];
    net.params(&mut trial);
    if !r.accepted {
        net.set_params(&base).unwrap();
        // the trial point is not kept; rebuild it from the solve at this damping
        w.factor(lambda)
            .and_then(|mut f| f.solve_refined(&g, &mut d, 2))
            .ok();
        trial = core::array::from_fn(|i| base[i] - d[i]);
    }
    let step: [f64; RN] = core::array::from_fn(|i| f64::from(trial[i]) - f64::from(base[i]));
    let mut n64 = Reg64::ZERO;
    n64.set_params(&base.map(f64::from)).unwrap();
    let mut g64 = [0.0; RN];
    n64.gradient(&x64, &t64, &mut g64).unwrap();
    let mut gs = [0.0; RN];
    n64.ggn_vp(&x64, &t64, &step, &mut gs).unwrap();
    let gd: f64 = g64.iter().zip(&step).map(|(a, b)| a * b).sum();
    let sgs: f64 = gs.iter().zip(&step).map(|(a, b)| a * b).sum();
    let pred64 = -(gd + 0.5 * sgs);
    println!("lambda {lambda:e}: {r}; f64 model reduction {pred64:.4e}");
    assert!(
        (f64::from(pred) - pred64).abs() <= 0.05 * pred64.abs(),
        "predicted {pred:e}, the f64 model {pred64:e}"
    );
}

/// `fit_regression`'s net and data (`examples/common/regression.rs`).
#[path = "../../examples/common/regression.rs"]
mod regression;

/// Issue 16's f32 figure on `fit_regression`'s problem (depth 16, N 1033, batch 32): with
/// MINPACK's column scaling, f32 Levenberg-Marquardt reaches MSE 1e-8 with fewer than 10% of
/// its steps up to there rejected (a step counts as rejected when any trial was). Measured:
/// step 48, 4 rejected.
#[test]
fn scaled_f32_lm_reaches_1e_8_on_fit_regression() {
    // With MINPACK's column scaling, and with geodesic acceleration on top (its finite
    // difference and second solve in f32: it must reach the target too).
    use regression::{data, Regressor32, Regressor64};
    let (x64, t64) = data();
    let x = x64.map(|r| r.map(|v| v as f32));
    let t = t64.map(|r| r.map(|v| v as f32));
    let mut p64 = [0.0f64; Regressor64::N_PARAMS];
    Regressor64::init(1).params(&mut p64);
    let scaled = LmConfig::<f32>::default().with_scaling(LmScaling::ColumnNorms);
    for (name, cfg) in [
        ("scaled", scaled),
        (
            "scaled, geodesic",
            scaled.with_geodesic(Geodesic::default()),
        ),
    ] {
        let mut net = tall_skinny::boxed_zeroed::<Regressor32>();
        net.set_params(&p64.map(|v| v as f32)).unwrap();
        let mut lm = LevenbergMarquardt::<Regressor32>::boxed(cfg).unwrap();
        let mut rejected = 0;
        let mut accelerated = 0;
        let mut reached = None;
        for k in 1..=150 {
            let r = lm.step(&mut *net, &x, &t).unwrap();
            if !r.accepted || r.factorizations > 1 {
                rejected += 1;
            }
            accelerated += usize::from(r.accepted && lm.accelerated());
            // the MSE evaluated in f64 at the f32 parameters (not the f32 loss's own rounding)
            let mut p = [0.0f32; Regressor64::N_PARAMS];
            net.params(&mut p);
            let mut twin = tall_skinny::boxed_zeroed::<Regressor64>();
            twin.set_params(&p.map(f64::from)).unwrap();
            let mse = 2.0 * twin.loss(&x64, &t64).unwrap();
            if mse < 1e-8 {
                reached = Some(k);
                break;
            }
        }
        let k =
            reached.unwrap_or_else(|| panic!("{name} f32 LM did not reach MSE 1e-8 in 150 steps"));
        println!(
            "{name} f32 LM: MSE < 1e-8 at step {k}, {rejected} rejected, {accelerated} accelerated"
        );
        if cfg.geodesic.is_none() {
            // Issue 16's figure: fewer than 10% of the steps rejected.
            assert!(
                (rejected as f64) < 0.1 * k as f64,
                "{name}: {rejected} of {k} steps rejected"
            );
        } else {
            // Accelerated steps are taken and the target is reached; near it the finite
            // difference `u(p + h v) - u(p)` falls to the f32 rounding of the outputs and
            // the noisy acceleration costs rejections (19 of 53 measured; README).
            assert!(accelerated > 0, "{name}: no accelerated step");
        }
    }
}
