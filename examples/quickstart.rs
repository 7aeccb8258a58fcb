//! Declares a small deep, narrow network, then prints its loss, gradient norm, an HVP
//! check against central differences of the gradient, and one exact damped Newton step
//! `(H + eps I)^{-1} g` with its residual and the inertia of `H + eps I`.
//!
//! `cargo run --release --example quickstart`

use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 4)]
pub struct Policy {
    inp: Dense<3, 16, Tanh>,
    body: [Residual<16, Tanh>; 32],
    head: Dense<16, 2, Identity>,
    loss: Mse<2>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = Policy::init(42);
    let x = [
        [0.5, -1.0, 0.25],
        [0.1, 0.2, 0.3],
        [-0.7, 0.4, 0.9],
        [1.0, 0.0, -0.5],
    ];
    let t = [[0.3, -0.1], [0.0, 0.5], [-0.4, 0.2], [0.8, -0.6]];

    let mut grad = [0.0; Policy::N_PARAMS];
    let loss = net.gradient(&x, &t, &mut grad)?;
    let gnorm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    println!(
        "Policy: depth {}, {} parameters, batch {}",
        Policy::DEPTH,
        Policy::N_PARAMS,
        Policy::BATCH
    );
    println!("loss           {loss:.12e}");
    println!("|gradient|     {gnorm:.12e}");

    // H v along a fixed direction, against central differences of the gradient.
    let mut v = [0.0; Policy::N_PARAMS];
    let mut rng = tall_skinny::runtime::SplitMix64::new(1);
    for vi in v.iter_mut() {
        *vi = rng.symmetric();
    }
    let mut hv = [0.0; Policy::N_PARAMS];
    net.hvp(&x, &t, &v, &mut hv)?;

    let mut p = [0.0; Policy::N_PARAMS];
    net.params(&mut p);
    let h = 1e-5;
    let shifted = |s: f64| -> Result<[f64; Policy::N_PARAMS], NetError> {
        let mut q = p;
        for (qi, vi) in q.iter_mut().zip(&v) {
            *qi += s * vi;
        }
        let mut n = net.clone();
        n.set_params(&q)?;
        let mut g = [0.0; Policy::N_PARAMS];
        n.gradient(&x, &t, &mut g)?;
        Ok(g)
    };
    let (gp, gm) = (shifted(h)?, shifted(-h)?);
    let mut err = 0.0f64;
    let mut norm = 0.0f64;
    for i in 0..Policy::N_PARAMS {
        let fd = (gp[i] - gm[i]) / (2.0 * h);
        err += (fd - hv[i]).powi(2);
        norm += hv[i].powi(2);
    }
    println!("|H v|          {:.12e}", norm.sqrt());
    println!(
        "HVP check      relative difference to central differences: {:.2e}",
        (err / norm).sqrt()
    );

    // The exact damped Newton direction (H + eps I)^{-1} g, in time linear in depth. The
    // curvature storage lives on the heap without a stack copy.
    let eps = 1e-3;
    let mut curv = tall_skinny::boxed_zeroed::<PolicyCurvature>();
    net.curvature_into(&mut curv, &x, &t)?;
    let mut factored = curv.factor(eps)?;
    let mut step = [0.0; Policy::N_PARAMS];
    let residual = factored.solve_refined(&grad, &mut step, 2)?.residual;
    let inertia = factored.inertia();
    // Independent check of the residual with the network's own hvp.
    let mut hs = [0.0; Policy::N_PARAMS];
    net.hvp(&x, &t, &step, &mut hs)?;
    let r: f64 = (0..Policy::N_PARAMS)
        .map(|i| (hs[i] + eps * step[i] - grad[i]).powi(2))
        .sum();
    println!(
        "Newton step    |(H + {eps:e} I)^-1 g| = {:.6e}, relative residual {residual:.2e} (by hvp: {:.2e})",
        step.iter().map(|s| s * s).sum::<f64>().sqrt(),
        r.sqrt() / gnorm
    );
    println!(
        "inertia        H + eps I has {} negative and {} positive eigenvalues",
        inertia.negative, inertia.positive
    );
    Ok(())
}
