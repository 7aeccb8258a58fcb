//! Levenberg-Marquardt on `fit_regression`'s problem in f32 and f64: steps, rejected
//! steps and the MSE reached (issue 16's f32 figure: MSE 1e-8 with fewer than 10% of the
//! steps rejected). `cargo run --release --example lm_f32 [-- --trace]`

use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::*;

const BATCH: usize = 32;

/// `fit_regression`'s net in f32.
#[tall_skinny_net(batch = 32, scalar = f32)]
pub struct Regressor32 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Its f64 twin.
#[tall_skinny_net(batch = 32)]
pub struct Regressor64 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn data() -> ([[f64; 1]; BATCH], [[f64; 1]; BATCH]) {
    let x: [[f64; 1]; BATCH] =
        core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / (BATCH - 1) as f64]);
    let t = x.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    (x, t)
}

macro_rules! run {
    ($net:ident, $t:ty, $steps:expr, $trace:expr) => {{
        let (x64, t64) = data();
        let x = x64.map(|r| r.map(|v| v as $t));
        let t = t64.map(|r| r.map(|v| v as $t));
        let mut p64 = [0.0f64; Regressor64::N_PARAMS];
        Regressor64::init(1).params(&mut p64);
        let mut net = $net::ZERO;
        net.set_params(&p64.map(|v| v as $t)).unwrap();
        let mut lm = LevenbergMarquardt::<$net>::boxed(LmConfig::default()).unwrap();
        let (mut rejected, mut best, mut hit) = (0usize, f64::INFINITY, None);
        for k in 1..=$steps {
            let r = lm.step(&mut net, &x, &t).unwrap();
            if $trace {
                println!("{k:4} {r}");
            }
            if !r.accepted || r.factorizations > 1 {
                rejected += 1;
            }
            let mse = 2.0 * net.loss(&x, &t).unwrap() as f64;
            best = best.min(mse);
            if hit.is_none() && mse < 1e-8 {
                hit = Some((k, rejected));
            }
        }
        (best, rejected, hit)
    }};
}

fn main() {
    let trace = std::env::args().any(|a| a == "--trace");
    let steps = 300;
    for (name, (best, rejected, hit)) in [
        ("f64", run!(Regressor64, f64, steps, trace)),
        ("f32", run!(Regressor32, f32, steps, trace)),
    ] {
        println!(
            "{name}: {steps} steps, best MSE {best:.2e}, {rejected} steps with a rejected trial ({:.1}%), MSE < 1e-8 {}",
            100.0 * rejected as f64 / steps as f64,
            hit.map_or("never".into(), |(k, r)| format!("at step {k} ({r} rejected before)"))
        );
    }
}
