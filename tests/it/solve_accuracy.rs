//! The f64 plain solve (no refinement) against a dense pivoted LU, on assorted small
//! architectures (batch 1 to 8, both losses), at eps 1e-1 .. 1e-6 (issue 16's f64 figure).
//!
//! A report: `cargo test --test it solve_accuracy:: -- --ignored --nocapture`
//! prints, per net and eps, `cond(H + eps I)` (dense eigenvalues), the plain solve's relative
//! error against the LU solve and as a multiple of `cond * u`, and the relative residuals
//! `|(H + eps I) x - b| / |b|` of the plain solve, of `solve_refined` (2 steps) and of the LU
//! solve, all with the dense `H` (from `hvp` columns). b is random. The only assertions check
//! the reference: the LU solve's normwise backward error is at rounding level.

use crate::solve_common::{cond, dense_from_hvp, lu_solve, rel_err, rel_residual, sym_eigenvalues};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

#[tall_skinny_net(batch = 1)]
struct B1 {
    a: Dense<3, 6, Tanh>,
    b: [Residual<6, Tanh>; 4],
    c: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 2)]
struct B2 {
    a: Dense<4, 5, Gelu>,
    b: [Residual<5, Sin>; 5],
    c: DenseNoBias<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 3)]
struct B3 {
    a: Dense<2, 4, Sigmoid>,
    b: [Dense<4, 4, Tanh>; 5],
    c: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 5)]
struct B5 {
    a: Dense<3, 4, Silu>,
    b: [Residual<4, Tanh>; 4],
    c: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 8)]
struct B8 {
    a: Dense<5, 6, Tanh>,
    b: [Residual<6, Tanh>; 4],
    c: Dense<6, 4, Identity>,
    loss: Mse<4>,
}

#[tall_skinny_net(batch = 8)]
struct B8W8 {
    a: Dense<8, 8, Tanh>,
    b: [Residual<8, Tanh>; 2],
    c: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

/// Prints one net's rows.
macro_rules! report {
    ($name:literal, $net:ident, $curv:ident, mse) => {{
        let mut rng = SplitMix64::new(21);
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        report!(@run $name, $net, $curv, t, rng)
    }};
    ($name:literal, $net:ident, $curv:ident, ce) => {{
        let rng = SplitMix64::new(21);
        let t: [usize; $net::BATCH] = core::array::from_fn(|n| n % $net::OUTPUTS);
        report!(@run $name, $net, $curv, t, rng)
    }};
    (@run $name:literal, $net:ident, $curv:ident, $t:ident, $rng:ident) => {{
        let mut rng = $rng;
        let t = $t;
        let net = $net::init(17);
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        const N: usize = $net::N_PARAMS;
        let (h, _) = dense_from_hvp(N, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap()
        });
        let eig = sym_eigenvalues(&h);
        let mut curv = tall_skinny::boxed_zeroed::<$curv>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let b: [f64; N] = core::array::from_fn(|_| rng.symmetric());
        let u = f64::EPSILON / 2.0;
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
            let c = cond(&eig, eps);
            let x_lu = lu_solve(&h, eps, &b);
            let r_lu = rel_residual(&h, eps, &x_lu, &b);
            // the reference's normwise backward error |r| / (|H + eps I|_2 |x| + |b|)
            let h2 = eig.iter().map(|l| (l + eps).abs()).fold(0.0, f64::max);
            let nb = crate::solve_common::norm(&b);
            let eta = r_lu * nb / (h2 * crate::solve_common::norm(&x_lu) + nb);
            assert!(eta < 1e2 * u * N as f64, "{}: LU backward error {eta:e}", $name);
            let mut f = match curv.factor(eps) {
                Ok(f) => f,
                Err(e) => {
                    println!("| {} | {N} | {eps:.0e} | {c:.1e} | {e} | | | | |", $name);
                    continue;
                }
            };
            let (mut xp, mut xr) = ([0.0; N], [0.0; N]);
            f.solve(&b, &mut xp).unwrap();
            f.solve_refined(&b, &mut xr, 2).unwrap();
            let err = rel_err(&xp, &x_lu);
            println!(
                "| {} | {N} | {eps:.0e} | {c:.1e} | {err:.1e} | {:.2} | {:.1e} | {:.1e} | {r_lu:.1e} |",
                $name,
                err / (c * u),
                rel_residual(&h, eps, &xp, &b),
                rel_residual(&h, eps, &xr, &b),
            );
        }
    }};
}

#[test]
#[ignore = "report: cargo test --test it solve_accuracy:: -- --ignored --nocapture"]
fn f64_plain_solve_against_dense_lu() {
    println!("| net | N | eps | cond | plain vs LU | / (cond u) | plain residual | refined residual | LU residual |");
    println!("|---|---|---|---|---|---|---|---|---|");
    report!("b1 w6 d6 tanh mse", B1, B1Curvature, mse);
    report!("b2 w5 d7 gelu/sin ce", B2, B2Curvature, ce);
    report!("b3 w4 d7 sigmoid/tanh mse", B3, B3Curvature, mse);
    report!("b5 w4 d6 silu/tanh ce", B5, B5Curvature, ce);
    report!("b8 w6 d6 tanh mse", B8, B8Curvature, mse);
    report!("b8 w8 d4 tanh mse", B8W8, B8W8Curvature, mse);
}
