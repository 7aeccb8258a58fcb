//! Overhead of the training driver: `Trainer::fit` against a hand-written loop of the same
//! Levenberg-Marquardt steps on the same batches (same net, data and batch seed; both end
//! with bit-identical parameters, which is checked). The two run interleaved, `REPS` times
//! each, and the medians of the time per step are printed side by side.
//!
//! `cargo run --release --example train_overhead [-- steps reps]` (defaults 200 and 15).

use std::time::Instant;

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::{MiniBatches, Remainder};
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
use tall_skinny::runtime::train::{TrainConfig, Trainer};
use tall_skinny::runtime::SplitMix64;

/// Depth 16, width 8, batch 32 (the README's regression net).
#[tall_skinny_net(batch = 32)]
struct Net {
    inp: Dense<2, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (steps, reps) = (
        args.first().copied().unwrap_or(200),
        args.get(1).copied().unwrap_or(15),
    );
    let mut rng = SplitMix64::new(1);
    let xs: Vec<[f64; 2]> = (0..200)
        .map(|_| [rng.symmetric(), rng.symmetric()])
        .collect();
    let ts: Vec<[f64; 1]> = xs.iter().map(|x| [(3.0 * x[0]).sin() * x[1]]).collect();
    // Every tolerance off: both run exactly `steps` steps.
    let config = TrainConfig::default()
        .with_max_steps(steps)
        .with_max_epochs(u64::MAX)
        .with_ftol(0.0)
        .with_xtol(0.0);

    let hand = || {
        let mut net = Net::init(2);
        let mut lm = LevenbergMarquardt::<Net>::boxed(LmConfig::default()).unwrap();
        let mut batches = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
        let t0 = Instant::now();
        for _ in 0..steps {
            let (x, t) = batches.next_batch().unwrap();
            if lm.step(&mut net, &x, &t).is_err() {
                break;
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        let mut p = [0.0; Net::N_PARAMS];
        net.params(&mut p);
        (dt, p)
    };
    let driver = || {
        let mut net = Net::init(2);
        let mut lm = LevenbergMarquardt::<Net>::boxed(LmConfig::default()).unwrap();
        let mut batches = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
        let mut trainer = Trainer::new(config).unwrap();
        let t0 = Instant::now();
        let report = trainer.fit(&mut net, &mut *lm, &mut batches, None, ());
        let dt = t0.elapsed().as_secs_f64();
        assert_eq!(report.steps, steps, "{report}");
        let mut p = [0.0; Net::N_PARAMS];
        net.params(&mut p);
        (dt, p)
    };

    let (mut th, mut td) = (vec![], vec![]);
    for _ in 0..reps {
        let (a, pa) = hand();
        let (b, pb) = driver();
        assert_eq!(pa, pb, "the driver and the hand loop took different steps");
        th.push(a / steps as f64 * 1e6);
        td.push(b / steps as f64 * 1e6);
    }
    let (mh, md) = (median(&mut th), median(&mut td));
    println!(
        "{} params, batch 32, {steps} LM steps x {reps} interleaved runs: hand loop {mh:.1} us/step, Trainer::fit {md:.1} us/step (median), ratio {:.4}",
        Net::N_PARAMS,
        md / mh
    );
}
