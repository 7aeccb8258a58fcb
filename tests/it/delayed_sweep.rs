//! The Riccati sweep with delayed pivots on the dense stage blocks ([`sweep`], docs/math.md
//! section 7; the kernel is `runtime/src/linalg/ldlt.rs`: `DelayedLdlt`), against independent
//! references:
//!
//! - f64: the solution against a dense pivoted LU of `H + eps I` (`H` from `hvp` columns),
//!   within `100 cond u`, its relative residual within 10x of the LU solve's own where
//!   cond >= 1e7 (eps down to 1e-7, cond up to 4e8), and the count of negative eigenvalues from the eliminated pivots
//!   equal to the dense eigenvalues' (eps 1e-1 .. 1e-7, b random, threshold 0.1 with and
//!   without compressing the carried set to the stage input's size, both losses, batch 1
//!   and 4; threshold 0, the plain generic sweep, printed beside them);
//! - f32, b = the gradient (the Newton step), batch 1: against the f64 twin's refined solve,
//!   the plain delayed sweep is at least as accurate as a partial-pivoting LU of the
//!   f32-rounded `H + eps I` in f32 (the generated `solve_refined` is printed beside them), and
//!   max |S| over the sweep stays below 100 where the plain generic sweep (threshold 0) grows
//!   it like 1/eps; the same with the carried set compressed (at most 6 carried, the stage
//!   input's size).

mod sweep;

use crate::solve_common::{cond, dense_from_hvp, lu_solve, rel_err, rel_residual, sym_eigenvalues};
use sweep::{delayed_solve, dense_stages};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

#[tall_skinny_net(batch = 1)]
struct D1 {
    a: Dense<6, 6, Tanh>,
    b: [Residual<6, Tanh>; 4],
    c: Dense<6, 3, Identity>,
    loss: Mse<3>,
}

#[tall_skinny_net(batch = 1, scalar = f32)]
struct D1F32 {
    a: Dense<6, 6, Tanh>,
    b: [Residual<6, Tanh>; 4],
    c: Dense<6, 3, Identity>,
    loss: Mse<3>,
}

#[tall_skinny_net(batch = 4)]
struct D4 {
    a: Dense<5, 5, Tanh>,
    b: [Residual<5, Sin>; 3],
    c: Dense<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

macro_rules! f64_check {
    ($net:ident, $curv:ident, $t:expr, $seed:expr) => {{
        let mut rng = SplitMix64::new($seed);
        let net = $net::init($seed);
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t = $t(&mut rng);
        const N: usize = $net::N_PARAMS;
        let (h, _) = dense_from_hvp(N, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap()
        });
        let eig = sym_eigenvalues(&h);
        let mut curv = tall_skinny::boxed_zeroed::<$curv>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let (blocks, s_last) = dense_stages::<f64>(&|f| curv.for_each_stage(f));
        let b: Vec<f64> = (0..N).map(|_| rng.symmetric()).collect();
        let u = f64::EPSILON / 2.0;
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7] {
            let x_lu = lu_solve(&h, eps, &b);
            let r_lu = rel_residual(&h, eps, &x_lu, &b);
            let c = cond(&eig, eps);
            let neg = eig.iter().filter(|l| **l + eps < 0.0).count();
            let margin = eig.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
            for (tau, compress) in [(0.1, false), (0.1, true), (0.0, false)] {
                let (xd, st) = delayed_solve::<f64, { $net::BATCH * $net::INPUTS }>(
                    &blocks, &s_last, eps, &b, tau, 64, compress,
                )
                .unwrap();
                let err = rel_err(&xd, &x_lu);
                let res = rel_residual(&h, eps, &xd, &b);
                println!(
                    "{} eps {eps:.0e} tau {tau} compressed {compress}: error {err:.1e} (cond {c:.1e}), residual {res:.1e} (LU {r_lu:.1e}), carried {}, max |S| {:.0e}",
                    stringify!($net),
                    st.max_carried,
                    st.max_s
                );
                // (the plain generic sweep, tau 0, is printed for comparison: it fails this)
                assert!(
                    tau == 0.0 || err <= 100.0 * c * u,
                    "{} eps {eps:e} tau {tau}: error {err:e} > 100 cond u",
                    stringify!($net)
                );
                // (the figure is stated at cond 1e8; below cond 1e7 the ratio is only
                // printed: at D4, eps 1e-2, cond 2e4 it is 10.2, with the error at 0.2 cond u)
                assert!(
                    tau == 0.0 || c < 1e7 || res <= 10.0 * r_lu,
                    "{} eps {eps:e} tau {tau}: residual {res:e} > 10 x LU's {r_lu:e}",
                    stringify!($net)
                );
                if margin > 1e-8 {
                    assert_eq!(st.negative, neg, "{} eps {eps:e}: inertia", stringify!($net));
                }
            }
        }
    }};
}

#[test]
fn f64_delayed_sweep_matches_dense_lu_and_inertia() {
    f64_check!(
        D1,
        D1Curvature,
        |r: &mut SplitMix64| -> [[f64; 3]; 1] { [[r.symmetric(), r.symmetric(), r.symmetric()]] },
        3
    );
    f64_check!(
        D4,
        D4Curvature,
        |_: &mut SplitMix64| -> [usize; 4] { [0, 1, 2, 0] },
        4
    );
}

#[test]
fn f32_delayed_sweep_is_as_accurate_as_dense_lu_at_batch_1() {
    let mut rng = SplitMix64::new(8);
    let net64 = D1::init(8);
    let mut p = [0.0f64; D1::N_PARAMS];
    net64.params(&mut p);
    let p32 = p.map(|v| v as f32);
    let mut net32 = D1F32::ZERO;
    net32.set_params(&p32).unwrap();
    let mut net64 = D1::ZERO;
    net64.set_params(&p32.map(|v| v as f64)).unwrap();
    let x32: [[f32; 6]; 1] = [core::array::from_fn(|_| rng.symmetric() as f32)];
    let t32: [[f32; 3]; 1] = [core::array::from_fn(|_| rng.symmetric() as f32)];
    let (x64, t64) = (
        x32.map(|r| r.map(|v| v as f64)),
        t32.map(|r| r.map(|v| v as f64)),
    );
    let mut g = [0.0f32; D1::N_PARAMS];
    net32.gradient(&x32, &t32, &mut g).unwrap();
    let mut c32 = tall_skinny::boxed_zeroed::<D1F32Curvature>();
    let mut c64 = tall_skinny::boxed_zeroed::<D1Curvature>();
    net32.curvature_into(&mut c32, &x32, &t32).unwrap();
    net64.curvature_into(&mut c64, &x64, &t64).unwrap();
    let (blocks, s_last) = dense_stages::<f32>(&|f| c32.for_each_stage(f));
    let g64 = g.map(|v| v as f64);
    const N: usize = D1::N_PARAMS;
    let (h, _) = dense_from_hvp(N, |v, out| {
        net64
            .hvp(&x64, &t64, v.try_into().unwrap(), out.try_into().unwrap())
            .unwrap()
    });
    for eps in [1e-1f32, 1e-2, 1e-3, 1e-4] {
        // partial-pivoting LU of the f32-rounded H + eps I, in f32
        let mut a = nalgebra::DMatrix::<f32>::from_fn(N, N, |i, j| h.at(i, j) as f32);
        for i in 0..N {
            a[(i, i)] += eps;
        }
        let xl = a
            .lu()
            .solve(&nalgebra::DVector::from_column_slice(&g))
            .unwrap();
        let xl: Vec<f64> = xl.iter().map(|v| *v as f64).collect();
        let mut want = [0.0f64; D1::N_PARAMS];
        c64.factor(eps as f64)
            .unwrap()
            .solve_refined(&g64, &mut want, 5)
            .unwrap();
        let mut refined = [0.0f32; D1::N_PARAMS];
        c32.factor(eps)
            .unwrap()
            .solve_refined(&g, &mut refined, 2)
            .unwrap();
        let e_ref = rel_err(&refined.map(|v| v as f64), &want);
        let (xd, st) = delayed_solve::<f32, 6>(&blocks, &s_last, eps, &g, 0.1, 64, false).unwrap();
        let xd: Vec<f64> = xd.iter().map(|v| *v as f64).collect();
        let e_del = rel_err(&xd, &want);
        let (xc, sc) = delayed_solve::<f32, 6>(&blocks, &s_last, eps, &g, 0.1, 64, true).unwrap();
        let xc: Vec<f64> = xc.iter().map(|v| *v as f64).collect();
        let e_comp = rel_err(&xc, &want);
        let e_lu = rel_err(&xl, &want);
        let generic = delayed_solve::<f32, 6>(&blocks, &s_last, eps, &g, 0.0, 0, false);
        println!(
            "f32 eps {eps:.0e}: delayed {e_del:.1e} (carried {}, max |S| {:.0e}), compressed {e_comp:.1e} (carried {}, max |S| {:.0e}), refined {e_ref:.1e}, f32 LU {e_lu:.1e}; generic max |S| {:?}",
            st.max_carried,
            st.max_s,
            sc.max_carried,
            sc.max_s,
            generic.as_ref().map(|r| r.1.max_s).ok()
        );
        assert!(
            e_del <= e_lu,
            "eps {eps:e}: delayed {e_del:e}, f32 LU {e_lu:e}"
        );
        assert!(st.max_s < 100.0, "eps {eps:e}: max |S| {}", st.max_s);
        if eps <= 1e-2 {
            // the plain generic sweep's value Hessian grows like 1/eps (or it fails)
            if let Ok((_, gs)) = &generic {
                assert!(
                    gs.max_s > 10.0 * st.max_s,
                    "eps {eps:e}: generic max |S| {}",
                    gs.max_s
                );
            }
        }
    }
}
