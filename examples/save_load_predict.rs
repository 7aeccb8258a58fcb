//! Train in f64 at batch 16, save the parameters as a checked record, load them into the
//! same architecture declared in f32 at batch 1 (the deploy form), and predict one sample
//! at a time with `forward_one`. Checks that the f32 predictions agree with the f64 ones to
//! f32 precision, that the file round trip is exact, and that loading into another
//! architecture is an error naming both fingerprints; exits non-zero otherwise.
//!
//! `cargo run --release --example save_load_predict`

// `!(x < y)` is deliberate: a NaN must fail the checks.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
use tall_skinny::runtime::record::FileError;

/// What we train: f64, batch 16.
#[tall_skinny_net(batch = 16)]
struct Train {
    inp: Dense<2, 12, Tanh>,
    body: [Residual<12, Tanh>; 6],
    head: Dense<12, 1, Identity>,
    loss: Mse<1>,
}

/// What we deploy: the same layers in f32, one sample at a time.
#[tall_skinny_net(batch = 1, scalar = f32)]
struct Deploy {
    inp: Dense<2, 12, Tanh>,
    body: [Residual<12, Tanh>; 6],
    head: Dense<12, 1, Identity>,
    loss: Mse<1>,
}

/// Another architecture (one residual stage fewer): must not load.
#[tall_skinny_net(batch = 1, scalar = f32)]
struct Shallower {
    inp: Dense<2, 12, Tanh>,
    body: [Residual<12, Tanh>; 5],
    head: Dense<12, 1, Identity>,
    loss: Mse<1>,
}

fn target(x: &[f64; 2]) -> [f64; 1] {
    [(1.5 * x[0]).sin() * (0.8 * x[1]).cos()]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 16 training points on a grid in [-1, 1]^2.
    let x: [[f64; 2]; 16] =
        core::array::from_fn(|k| [(k % 4) as f64 / 1.5 - 1.0, (k / 4) as f64 / 1.5 - 1.0]);
    let t = x.map(|xi| target(&xi));

    let mut net = Train::init(7);
    let mut lm = LevenbergMarquardt::<Train>::new(LmConfig::default())?;
    let first = net.loss(&x, &t)?;
    for _ in 0..40 {
        lm.step(&mut net, &x, &t)?;
    }
    let trained = net.loss(&x, &t)?;
    println!(
        "trained {} parameters: loss {first:.3e} -> {trained:.3e}",
        Train::N_PARAMS
    );
    if !(trained < 1e-2 * first) {
        return Err("training did not reduce the loss 100-fold".into());
    }

    // Save: a record of RECORD_BYTES bytes (header, parameters, checksum).
    let path = std::env::temp_dir().join(format!("save_load_predict-{}.tsk", std::process::id()));
    net.save(&path)?;
    println!(
        "saved {} bytes to {} (architecture `{}`, fingerprint {:#018x})",
        Train::RECORD_BYTES,
        path.display(),
        Train::ARCHITECTURE,
        Train::ARCH_FINGERPRINT
    );

    // Load into the f32 deploy form (f64 -> f32 with `as f32`, every entry checked).
    let mut deployed = Deploy::ZERO;
    deployed.load(&path)?;

    // The exact f64 round trip: the same file into a fresh f64 net.
    let mut again = Train::ZERO;
    again.load(&path)?;
    let (mut p, mut q) = ([0.0; Train::N_PARAMS], [0.0; Train::N_PARAMS]);
    net.params(&mut p);
    again.params(&mut q);
    if p.iter().zip(&q).any(|(a, b)| a.to_bits() != b.to_bits()) {
        return Err("the f64 round trip is not bit-exact".into());
    }

    // Predict one sample at a time on points the net was not trained on. The f32 net's
    // error against the f64 one is rounding of weights and arithmetic: a few f32 epsilons
    // times the size of the signals through the depth.
    let mut worst = 0.0f64;
    println!("\n      x0       x1   f64 (batch 16)   f32 (batch 1)   target");
    for k in 0..7 {
        let xk = [-0.9 + 0.3 * k as f64, 0.7 - 0.2 * k as f64];
        let y64 = net.forward_one(&xk)?[0];
        let y32 = deployed.forward_one(&xk.map(|v| v as f32))?[0];
        let scale = 1.0f64.max(y64.abs());
        worst = worst.max((f64::from(y32) - y64).abs() / scale);
        println!(
            "{:8.3} {:8.3}   {y64:14.7}   {y32:13.7}   {:7.4}",
            xk[0],
            xk[1],
            target(&xk)[0]
        );
    }
    let tol = 64.0 * f64::from(f32::EPSILON);
    println!("\nworst |f32 - f64| / max(1, |f64|) = {worst:.2e} (bound {tol:.1e})");
    if !(worst <= tol) {
        return Err(format!("f32 predictions differ by {worst:.2e} > {tol:.1e}").into());
    }

    // Another architecture: a clear error, and the net keeps its parameters.
    let mut other = Shallower::init(1);
    let before = other.forward_one(&[0.1, 0.2])?;
    match other.load(&path) {
        Err(FileError::Record(e @ RecordError::ArchitectureMismatch { expected, found }))
            if expected == Shallower::ARCH_FINGERPRINT && found == Train::ARCH_FINGERPRINT =>
        {
            println!("loading into `{}`: {e}", Shallower::ARCHITECTURE);
        }
        other => return Err(format!("expected an architecture mismatch, got {other:?}").into()),
    }
    if other.forward_one(&[0.1, 0.2])? != before {
        return Err("a failed load changed the net".into());
    }
    std::fs::remove_file(&path)?;
    println!("ok");
    Ok(())
}
