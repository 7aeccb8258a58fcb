//! Early check of the Riccati solve against a dense pivoted-LU solve (dense H from hvp).
use nalgebra::{DMatrix, DVector};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

#[tall_skinny_net(batch = 1)]
struct Tiny {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Tanh>; 2],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 3)]
struct Batched {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 3],
    c: DenseNoBias<4, 3, Gelu>,
    loss: SoftmaxCrossEntropy<3>,
}

macro_rules! check_net {
    ($ty:ident, $x:expr, $t:expr, $seed:expr, $eps:expr) => {{
        const N: usize = $ty::N_PARAMS;
        let mut rng = SplitMix64::new($seed);
        let mut p = [0.0; N];
        for v in p.iter_mut() {
            *v = 0.8 * rng.symmetric();
        }
        let mut net = $ty::init(1);
        net.set_params(&p).unwrap();
        let x = $x;
        let t = $t;
        let mut h = DMatrix::<f64>::zeros(N, N);
        for j in 0..N {
            let mut e = [0.0; N];
            e[j] = 1.0;
            let mut col = [0.0; N];
            net.hvp(&x, &t, &e, &mut col).unwrap();
            for i in 0..N {
                h[(i, j)] = col[i];
            }
        }
        let hs = (&h + h.transpose()) * 0.5;
        let asym = (&h - h.transpose()).norm() / h.norm();
        assert!(asym < 1e-12, "asym {asym}");
        let eps: f64 = $eps;
        let a = &hs + DMatrix::<f64>::identity(N, N) * eps;
        let mut b = [0.0; N];
        for v in b.iter_mut() {
            *v = rng.symmetric();
        }
        let xd = a.clone().full_piv_lu().solve(&DVector::from_column_slice(&b)).unwrap();
        let mut xs = [0.0; N];
        let inertia = net.hessian_solve(&x, &t, eps, &b, &mut xs).unwrap();
        let xs_v = DVector::from_column_slice(&xs);
        let rel0 = (&xs_v - &xd).norm() / xd.norm();
        let mut curv = net.curvature(&x, &t).unwrap();
        let mut f = curv.factor(eps).unwrap();
        let res = f.solve_refined(&b, &mut xs, 3).unwrap();
        let xs_v = DVector::from_column_slice(&xs);
        let rel = (&xs_v - &xd).norm() / xd.norm();
        println!("  plain {rel0:.3e} refined {rel:.3e} residual {res:.3e}");
        let eig = a.clone().symmetric_eigen().eigenvalues;
        let neg = eig.iter().filter(|&&e| e < 0.0).count();
        let cond = eig.iter().map(|e| e.abs()).fold(0.0, f64::max)
            / eig.iter().map(|e| e.abs()).fold(f64::INFINITY, f64::min);
        println!("{}: N {N} eps {eps:e} rel err {rel:.3e} cond {cond:.2e} inertia {inertia:?} dense neg {neg}", stringify!($ty));
        assert!(rel < 1e-9, "relative error {rel}");
        assert_eq!(inertia.negative, neg);
    }};
}

#[test]
fn tiny_matches_dense() {
    for seed in 0..5 {
        for eps in [1.0, 1e-2, 1e-4] {
            check_net!(Tiny, [[0.3, -0.7]], [[0.2, 0.1]], seed, eps);
        }
    }
}

#[test]
fn batched_matches_dense() {
    for seed in 0..5 {
        for eps in [1.0, 1e-2, 1e-4] {
            check_net!(Batched, [[0.3, -0.7], [1.0, 0.2], [-0.5, 0.5]], [0, 2, 1], seed, eps);
        }
    }
}
