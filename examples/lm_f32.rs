//! Levenberg-Marquardt on `fit_regression`'s problem in f32 and f64, three variants (Nielsen
//! with and without MINPACK's column scaling, the scaled step bound): steps, rejected
//! steps and the MSE reached (issue 16's f32 figure: MSE 1e-8 with fewer than 10% of the
//! steps rejected). `cargo run --release --example lm_f32 [-- --trace]`

use tall_skinny::runtime::optim::*;

#[path = "common/regression.rs"]
mod regression;
use regression::*;

macro_rules! run {
    ($net:ident, $t:ty, $cfg:expr, $steps:expr, $trace:expr) => {{
        let (x64, t64) = data();
        let x = x64.map(|r| r.map(|v| v as $t));
        let t = t64.map(|r| r.map(|v| v as $t));
        let mut p64 = [0.0f64; Regressor64::N_PARAMS];
        Regressor64::init(1).params(&mut p64);
        let mut net = $net::ZERO;
        net.set_params(&p64.map(|v| v as $t)).unwrap();
        let mut lm = LevenbergMarquardt::<$net>::boxed($cfg).unwrap();
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
    let variants: [(&str, LmDamping, LmScaling); 3] = [
        (
            "Nielsen, D = I (default)",
            LmDamping::Nielsen,
            LmScaling::Identity,
        ),
        (
            "Nielsen, D = column norms",
            LmDamping::Nielsen,
            LmScaling::ColumnNorms,
        ),
        (
            "step bound, D = column norms",
            LmDamping::StepBound,
            LmScaling::ColumnNorms,
        ),
    ];
    for (vname, damping, scaling) in variants {
        let c64 = LmConfig::<f64>::default()
            .with_damping(damping)
            .with_scaling(scaling);
        let c32 = LmConfig::<f32>::default()
            .with_damping(damping)
            .with_scaling(scaling);
        for (name, (best, rejected, hit)) in [
            ("f64", run!(Regressor64, f64, c64, steps, trace)),
            ("f32", run!(Regressor32, f32, c32, steps, trace)),
        ] {
            println!(
                "{vname}, {name}: {steps} steps, best MSE {best:.2e}, {rejected} steps with a rejected trial ({:.1}%), MSE < 1e-8 {}",
                100.0 * rejected as f64 / steps as f64,
                hit.map_or("never".into(), |(k, r)| format!("at step {k} ({r} rejected before)"))
            );
        }
    }
}
