//! The runtime's backward-stable sweep (`tall_skinny::runtime::StableFactors`: delayed pivots
//! across stages on the structured stage blocks, docs/math.md section 7.4) against independent
//! references:
//!
//! - f64: the solution against a dense pivoted LU of `H + eps I` (`H` from `hvp` columns)
//!   within `10 cond u` at eps 1e-1 .. 1e-6, and the inertia equal to the dense eigenvalue
//!   count (assorted architectures, batch 1 to 8, both losses, Gauss-Newton too);
//! - f32 (an ignored report, printed only): the plain stable solve against the f64 solve of
//!   the same (f32-rounded) problem beside the plain structured solve and the f32
//!   `solve_refined`, at batch 8. The target (within 3x of `solve_refined`) is NOT
//!   met yet: at eps 1e-1 the stable solve is 2 to 30 times less accurate than the refined
//!   one (width 8, depth 8: 7.5e-5 against 1.3e-5; Gelu/cross-entropy: 1.1e-3 against 3.7e-5,
//!   with nothing carried).

use crate::solve_common::{
    cond, dense_from_hvp, inputs, lu_solve, random_net, rel_err, sym_eigenvalues, targets,
};
use tall_skinny::prelude::*;
use tall_skinny::runtime::{SplitMix64, StableFactors};

#[tall_skinny_net(batch = 1)]
struct S1 {
    a: Dense<3, 6, Tanh>,
    b: [Residual<6, Tanh>; 4],
    c: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 4)]
struct S4 {
    a: Dense<5, 5, Tanh>,
    b: [Residual<5, Sin>; 3],
    c: Dense<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 8)]
struct S8 {
    a: Dense<4, 6, Gelu>,
    b: [Dense<6, 6, Tanh>; 3],
    c: DenseNoBias<6, 3, Identity>,
    loss: Mse<3>,
}

/// f64 check of one net: error within 10 cond u of the dense LU, inertia exact.
macro_rules! f64_check {
    ($net:ident, $curv:ident, $loss:ident, $seed:expr, $w:expr, $m:expr, $nq:expr, gn = $gn:expr) => {{
        let mut rng = SplitMix64::new($seed);
        let net = random_net!($net, $seed, 0.3);
        let x = inputs!($net, &mut rng);
        let t = targets!($loss, $net, &mut rng);
        const N: usize = $net::N_PARAMS;
        let (h, _) = dense_from_hvp(N, |v, out| {
            if $gn {
                net.ggn_vp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap()
            } else {
                net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap()
            }
        });
        let eig = sym_eigenvalues(&h);
        let mut curv = tall_skinny::boxed_zeroed::<$curv>();
        if $gn {
            net.ggn_curvature_into(&mut curv, &x, &t).unwrap();
        } else {
            net.curvature_into(&mut curv, &x, &t).unwrap();
        }
        let mut sf = tall_skinny::boxed_zeroed::<StableFactors<f64, $w, $m, $nq, 8>>();
        let b: [f64; N] = core::array::from_fn(|_| rng.symmetric());
        let u = f64::EPSILON / 2.0;
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
            let x_lu = lu_solve(&h, eps, &b);
            let c = cond(&eig, eps);
            let inertia = sf.factor(&*curv, eps, 0.1).unwrap();
            let mut xs = [0.0; N];
            sf.solve(&*curv, &b, &mut xs).unwrap();
            let err = rel_err(&xs, &x_lu);
            let mut xp = [0.0; N];
            curv.factor(eps).unwrap().solve(&b, &mut xp).unwrap();
            let e_plain = rel_err(&xp, &x_lu);
            println!(
                "{} gn {} eps {eps:.0e}: stable {err:.1e}, plain {e_plain:.1e}, 10 cond u {:.1e}, carried {}, max |S| {:.1e}",
                stringify!($net),
                $gn,
                10.0 * c * u,
                sf.max_carried(),
                sf.max_value_hessian()
            );
            assert!(err <= 10.0 * c * u, "{} eps {eps:e}: {err:e} > 10 cond u", stringify!($net));
            let neg = eig.iter().filter(|l| **l + eps < 0.0).count();
            let margin = eig.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
            if margin > 1e-8 {
                assert_eq!(inertia.negative, neg, "{} eps {eps:e}: inertia", stringify!($net));
                assert_eq!(inertia.positive, N - neg, "{} eps {eps:e}: inertia", stringify!($net));
            }
        }
    }};
}

#[test]
fn f64_stable_sweep_matches_dense_lu_and_inertia() {
    f64_check!(S1, S1Curvature, mse, 3, 7, 6, 64, gn = false);
    f64_check!(S4, S4Curvature, softmax, 4, 6, 20, 80, gn = false);
    f64_check!(S8, S8Curvature, mse, 5, 7, 48, 120, gn = false);
    f64_check!(S8, S8Curvature, mse, 6, 7, 48, 120, gn = true);
}

#[tall_skinny_net(batch = 8)]
struct W8B8D8 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

#[tall_skinny_net(batch = 8, scalar = f32)]
struct W8B8D8F32 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

#[tall_skinny_net(batch = 8)]
struct GeluCe {
    inp: Dense<4, 6, Gelu>,
    body: [Residual<6, Gelu>; 4],
    head: Dense<6, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 8, scalar = f32)]
struct GeluCeF32 {
    inp: Dense<4, 6, Gelu>,
    body: [Residual<6, Gelu>; 4],
    head: Dense<6, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// f32 report of one net (f64 twin `$n64` with the same f32-rounded parameters and data):
/// for b random and b = the gradient, at eps 1e-1 .. 1e-4, the relative error against the f64
/// refined solve of the plain stable solve (thresholds 0.1 and 0.3), of the plain structured
/// solve and of the f32 `solve_refined` (NaN: `Singular` or `Inaccurate`). Prints only: the
/// issue's target (stable within 3x of refined) is not met yet (see the module docs).
macro_rules! f32_check {
    ($n64:ident, $c64:ident, $n32:ident, $c32:ident, $loss:ident, $seed:expr, $w:expr, $m:expr, $nq:expr, $l:expr) => {{
        const N: usize = $n64::N_PARAMS;
        let mut rng = SplitMix64::new($seed);
        let net0 = random_net!($n64, $seed, 0.3);
        let mut p = vec![0.0f64; N];
        net0.params((&mut p[..]).try_into().unwrap());
        let p32: Vec<f32> = p.iter().map(|v| *v as f32).collect();
        let mut net32 = tall_skinny::boxed_zeroed::<$n32>();
        net32.set_params((&p32[..]).try_into().unwrap()).unwrap();
        let mut net64 = tall_skinny::boxed_zeroed::<$n64>();
        let p64: Vec<f64> = p32.iter().map(|v| *v as f64).collect();
        net64.set_params((&p64[..]).try_into().unwrap()).unwrap();
        let x64 = inputs!($n64, &mut rng).map(|r| r.map(|v| v as f32 as f64));
        let x32 = x64.map(|r| r.map(|v| v as f32));
        let (t64, t32) = f32_check!(@targets $loss, $n64, rng);
        let mut c64 = tall_skinny::boxed_zeroed::<$c64>();
        let mut c32 = tall_skinny::boxed_zeroed::<$c32>();
        net64.curvature_into(&mut c64, &x64, &t64).unwrap();
        net32.curvature_into(&mut c32, &x32, &t32).unwrap();
        let mut sf = tall_skinny::boxed_zeroed::<StableFactors<f32, $w, $m, $nq, $l>>();
        let mut grad = [0.0f32; N];
        net32.gradient(&x32, &t32, &mut grad).unwrap();
        let rand: [f32; N] = core::array::from_fn(|_| rng.symmetric() as f32);
        for (bname, b32) in [("random", rand), ("gradient", grad)] {
            let b64 = b32.map(|v| v as f64);
            for eps in [1e-1f32, 1e-2, 1e-3, 1e-4] {
                let mut want = [0.0f64; N];
                c64.factor(eps as f64)
                    .unwrap()
                    .solve_refined(&b64, &mut want, 5)
                    .unwrap();
                let err = |x: &[f32; N]| rel_err(&x.map(|v| v as f64), &want);
                let (mut plain, mut refined) = ([0.0f32; N], [0.0f32; N]);
                let (e_plain, e_ref) = match c32.factor(eps) {
                    Ok(mut f) => {
                        f.solve(&b32, &mut plain).unwrap();
                        let r = f.solve_refined(&b32, &mut refined, 2);
                        (err(&plain), if r.is_ok() { err(&refined) } else { f64::NAN })
                    }
                    Err(_) => (f64::NAN, f64::NAN),
                };
                let mut stable = |tau: f32| -> (f64, usize, f32) {
                    let mut xs = [0.0f32; N];
                    match sf.factor(&*c32, eps, tau).and_then(|_| sf.solve(&*c32, &b32, &mut xs)) {
                        Ok(()) => (err(&xs), sf.max_carried(), sf.max_value_hessian()),
                        Err(_) => (f64::NAN, 0, f32::NAN),
                    }
                };
                let (e1, k1, s1) = stable(0.1);
                let (e3, k3, s3) = stable(0.3);
                println!(
                    "{} b {bname} eps {eps:.0e}: stable tau 0.1 {e1:.1e} (carried {k1}, max |S| {s1:.1e}), tau 0.3 {e3:.1e} (carried {k3}, max |S| {s3:.1e}), plain {e_plain:.1e}, refined {e_ref:.1e}",
                    stringify!($n32),
                );
            }
        }
    }};
    (@targets mse, $n64:ident, $rng:ident) => {{
        let t64 = targets!(mse, $n64, &mut $rng).map(|r| r.map(|v| v as f32 as f64));
        let t32 = t64.map(|r| r.map(|v| v as f32));
        (t64, t32)
    }};
    (@targets softmax, $n64:ident, $rng:ident) => {{
        let t = targets!(softmax, $n64, &mut $rng);
        (t, t)
    }};
}

#[test]
#[ignore = "a report: cargo test --test it stable_sweep:: -- --ignored --nocapture"]
fn f32_stable_sweep_report_batch_8() {
    f32_check!(
        W8B8D8,
        W8B8D8Curvature,
        W8B8D8F32,
        W8B8D8F32Curvature,
        mse,
        7,
        9,
        64,
        136,
        8
    );
    f32_check!(
        GeluCe,
        GeluCeCurvature,
        GeluCeF32,
        GeluCeF32Curvature,
        softmax,
        9,
        7,
        48,
        90,
        6
    );
}

/// Bad input and bad sequences are errors that name the cause: a curvature never filled, a
/// solve before any factorisation or after a failed one, a curvature refilled since, a
/// threshold or eps out of range, storage too small for the net, a non-finite right-hand side.
#[test]
fn stable_sweep_bad_input_is_an_error() {
    use tall_skinny::runtime::SolveError;
    const N: usize = S4::N_PARAMS;
    type Sf = StableFactors<f64, 6, 20, 80, 8>;
    let mut rng = SplitMix64::new(40);
    let net = random_net!(S4, 40, 0.3);
    let x = inputs!(S4, &mut rng);
    let t = targets!(softmax, S4, &mut rng);
    let mut curv = tall_skinny::boxed_zeroed::<S4Curvature>();
    let mut sf = tall_skinny::boxed_zeroed::<Sf>();
    let b: [f64; N] = core::array::from_fn(|_| rng.symmetric());
    let mut xs = [0.0; N];
    assert!(matches!(
        sf.factor(&*curv, 1e-2, 0.1),
        Err(SolveError::NoCurvature)
    ));
    net.curvature_into(&mut curv, &x, &t).unwrap();
    assert!(matches!(
        sf.solve(&*curv, &b, &mut xs),
        Err(SolveError::NoCurvature)
    ));
    for tau in [-0.1, 1.0, f64::NAN] {
        assert!(
            matches!(sf.factor(&*curv, 1e-2, tau), Err(SolveError::Config(c)) if c.field == "tau"),
            "tau {tau}"
        );
    }
    assert!(matches!(
        sf.factor(&*curv, f64::INFINITY, 0.1),
        Err(SolveError::NonFiniteEps)
    ));
    assert!(matches!(
        sf.solve(&*curv, &b, &mut xs),
        Err(SolveError::NoCurvature)
    ));
    sf.factor(&*curv, 1e-2, 0.1).unwrap();
    let mut bad = b;
    bad[3] = f64::NAN;
    assert!(matches!(
        sf.solve(&*curv, &bad, &mut xs),
        Err(SolveError::Net(_))
    ));
    sf.solve(&*curv, &b, &mut xs).unwrap();
    // refilled at other parameters: the factors no longer belong to it
    let net2 = random_net!(S4, 41, 0.3);
    net2.curvature_into(&mut curv, &x, &t).unwrap();
    assert!(matches!(
        sf.solve(&*curv, &b, &mut xs),
        Err(SolveError::Stale)
    ));
    // storage too small: each size named
    let field = |r: Result<_, SolveError>| match r {
        Err(SolveError::Config(c)) => c.field,
        other => panic!("expected a Config error, got {other:?}"),
    };
    let mut small_w = tall_skinny::boxed_zeroed::<StableFactors<f64, 5, 20, 80, 8>>();
    assert_eq!(field(small_w.factor(&*curv, 1e-2, 0.1)), "W");
    let mut small_m = tall_skinny::boxed_zeroed::<StableFactors<f64, 6, 19, 80, 8>>();
    assert_eq!(field(small_m.factor(&*curv, 1e-2, 0.1)), "M");
    let mut small_nq = tall_skinny::boxed_zeroed::<StableFactors<f64, 6, 20, 29, 8>>();
    assert_eq!(field(small_nq.factor(&*curv, 1e-2, 0.1)), "NQ");
    let mut small_l = tall_skinny::boxed_zeroed::<StableFactors<f64, 6, 20, 80, 4>>();
    assert_eq!(field(small_l.factor(&*curv, 1e-2, 0.1)), "L");
}
