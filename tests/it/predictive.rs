//! The Laplace approximation's predictive covariance and evidence (runtime/src/laplace.rs,
//! docs/math.md section 11) against dense float64.
//!
//! - `output_jacobian` against a central finite difference of `forward_one` in the
//!   parameters (bar: `1e-7 * max |J|`, the difference's own truncation + rounding error at
//!   step `1e-5` is below `1e-9` here).
//! - `predictive_cov` (exact Hessian, Riccati and Woodbury Gauss-Newton) against
//!   `J (A + eps I)^{-1} J'` with `A` assembled from `hvp` / `ggn_vp` columns and the inverse
//!   from a partial-pivoting LU (`laplace::dense_ref`): relative error at most
//!   `max(1e-9, 100 cond u64)` (Frobenius over the `O x O` block).
//! - `predictive_cov_all` bit-identical to per-query calls; bad queries are errors.
//!
//! Run `cargo test --test it predictive:: -- --nocapture` for the tables.

use crate::laplace::dense_ref;
use crate::solve_common::*;
use tall_skinny::boxed_zeroed;
use tall_skinny::prelude::*;
use tall_skinny::runtime::{NetError, SolveError, SplitMix64};

/// N 89, depth 8, batch 1.
#[tall_skinny_net(batch = 1)]
struct PResB1 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Tanh>; 6],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

/// N 84, depth 5, batch 3, softmax head.
#[tall_skinny_net(batch = 3)]
struct PSoft3 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 3],
    c: DenseNoBias<4, 3, Gelu>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 219, depth 12, every stage kind, batch 6.
#[tall_skinny_net(batch = 6)]
struct PMixed6 {
    a: Dense<1, 4, Gelu>,
    b: [Residual<4, Silu>; 6],
    c: DenseNoBias<4, 4, Identity>,
    d: [Dense<4, 4, Sigmoid>; 3],
    e: Dense<4, 3, Identity>,
    loss: Mse<3>,
}

/// N 203, depth 34, width 2, one output, batch 4.
#[tall_skinny_net(batch = 4)]
struct PDeep1 {
    a: Dense<3, 2, Tanh>,
    b: [Residual<2, Tanh>; 32],
    c: Dense<2, 1, Identity>,
    loss: Mse<1>,
}

fn boxed_vec<const N: usize>(v: Vec<f64>) -> Box<[f64; N]> {
    v.try_into().expect("length N")
}

macro_rules! random_net {
    ($net:ident, $seed:expr, $delta:expr) => {{
        const N: usize = $net::N_PARAMS;
        let seed: u64 = $seed;
        let mut net = $net::init(seed);
        let mut p: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        net.params(&mut p);
        let mut rng = SplitMix64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234_5678);
        for v in p.iter_mut() {
            *v += $delta * rng.symmetric();
        }
        net.set_params(&p).unwrap();
        net
    }};
}

macro_rules! batch_data {
    (mse, $net:ident, $rng:expr) => {{
        let rng: &mut SplitMix64 = $rng;
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        (x, t)
    }};
    (softmax, $net:ident, $rng:expr) => {{
        let rng: &mut SplitMix64 = $rng;
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [usize; $net::BATCH] =
            core::array::from_fn(|_| (rng.next_u64() % $net::OUTPUTS as u64) as usize);
        (x, t)
    }};
}

/// `J inv J'` densely (`jac` row-major `O x N`).
fn dense_cov(jac: &[Vec<f64>], inv: &nalgebra::DMatrix<f64>) -> Vec<f64> {
    let o = jac.len();
    let n = inv.nrows();
    let mut c = vec![0.0; o * o];
    for j in 0..o {
        for k in 0..o {
            let mut s = 0.0;
            for p in 0..n {
                let mut row = 0.0;
                for q in 0..n {
                    row += inv[(p, q)] * jac[k][q];
                }
                s += jac[j][p] * row;
            }
            c[j * o + k] = s;
        }
    }
    c
}

/// Checks one architecture; returns the worst relative error of the covariance.
macro_rules! check_predictive {
    ($net:ident, $curv:ident, $ggn:ident, $loss:ident, seed = $seed:expr) => {{
        const N: usize = $net::N_PARAMS;
        const O: usize = $net::OUTPUTS;
        const I: usize = $net::INPUTS;
        let name = stringify!($net);
        let mut net = random_net!($net, $seed, 0.3);
        let mut rng = SplitMix64::new(500 + $seed);
        let (x, t) = batch_data!($loss, $net, &mut rng);
        let queries: Vec<[f64; I]> = (0..4)
            .map(|_| core::array::from_fn(|_| 1.5 * rng.symmetric()))
            .collect();

        // Jacobian rows against central differences of forward_one.
        let mut jacs: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut p0: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        net.params(&mut p0);
        let mut worst_fd = 0.0f64;
        for xq in &queries {
            let mut jac: Box<[[f64; N]; O]> = boxed_zeroed();
            let u = net.output_jacobian(xq, &mut jac).unwrap();
            assert_eq!(u, net.forward_one(xq).unwrap(), "{name}: outputs");
            let h = 1e-5;
            let mut fd = vec![vec![0.0; N]; O];
            let mut p = p0.clone();
            for q in 0..N {
                p[q] = p0[q] + h;
                net.set_params(&p).unwrap();
                let up = net.forward_one(xq).unwrap();
                p[q] = p0[q] - h;
                net.set_params(&p).unwrap();
                let um = net.forward_one(xq).unwrap();
                p[q] = p0[q];
                for k in 0..O {
                    fd[k][q] = (up[k] - um[k]) / (2.0 * h);
                }
            }
            net.set_params(&p0).unwrap();
            let jmax = jac.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
            for k in 0..O {
                for q in 0..N {
                    worst_fd = worst_fd.max((jac[k][q] - fd[k][q]).abs() / jmax);
                }
            }
            jacs.push(jac.iter().map(|r| r.to_vec()).collect());
        }
        assert!(worst_fd <= 1e-7, "{name}: Jacobian vs central difference {worst_fd:e}");

        let (hd, _) = dense_from_hvp(N, |e, col| {
            net.hvp(&x, &t, e.try_into().unwrap(), col.try_into().unwrap()).unwrap();
        });
        let (gd, _) = dense_from_hvp(N, |e, col| {
            net.ggn_vp(&x, &t, e.try_into().unwrap(), col.try_into().unwrap()).unwrap();
        });
        let (heig, geig) = (sym_eigenvalues(&hd), sym_eigenvalues(&gd));
        let mut curv = boxed_zeroed::<$curv>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let mut gcurv = boxed_zeroed::<$curv>();
        net.ggn_curvature_into(&mut gcurv, &x, &t).unwrap();
        let mut wood = boxed_zeroed::<$ggn>();
        net.ggn_woodbury_into(&mut wood, &x, &t).unwrap();
        let mut work: Box<[[f64; N]; 2]> = boxed_zeroed();
        let mut worst = 0.0f64;
        println!("| net | form | N | eps | cond | worst rel err (4 queries) | bar |\n|---|---|---|---|---|---|---|");
        for eps in [1e-1, 1e-2, 1e-3, 1e-4] {
            for form in ["H", "G riccati", "G woodbury"] {
                let (dense, eig) = if form == "H" { (&hd, &heig) } else { (&gd, &geig) };
                let c = cond(eig, eps);
                let bar = (1e-9f64).max(100.0 * c * f64::EPSILON);
                let mut covs = vec![[[0.0; O]; O]; queries.len()];
                let mut outs = vec![[0.0; O]; queries.len()];
                match form {
                    "H" => {
                        let mut f = curv.factor(eps).unwrap();
                        for (q, xq) in queries.iter().enumerate() {
                            outs[q] = net.predictive_cov(&mut f, xq, &mut work, &mut covs[q]).unwrap();
                        }
                        // the batch form agrees bit for bit
                        let mut covs2 = vec![[[0.0; O]; O]; queries.len()];
                        let mut outs2 = vec![[0.0; O]; queries.len()];
                        net.predictive_cov_all(&mut f, &queries, &mut work, &mut outs2, &mut covs2).unwrap();
                        assert_eq!(covs, covs2, "{name}: batch form");
                        assert_eq!(outs, outs2, "{name}: batch form outputs");
                    }
                    "G riccati" => {
                        let mut f = gcurv.factor(eps).unwrap();
                        net.predictive_cov_all(&mut f, &queries, &mut work, &mut outs, &mut covs).unwrap();
                    }
                    _ => {
                        let mut f = wood.factor(eps).unwrap();
                        net.predictive_cov_all(&mut f, &queries, &mut work, &mut outs, &mut covs).unwrap();
                    }
                }
                let inv = dense_ref(dense, eps).inv;
                let mut cell = 0.0f64;
                for (q, jac) in jacs.iter().enumerate() {
                    let want = dense_cov(jac, &inv);
                    let got: Vec<f64> = covs[q].iter().flatten().cloned().collect();
                    let e = rel_err(&got, &want);
                    cell = cell.max(e);
                    assert!(e <= bar, "{name} {form} eps {eps:e} query {q}: cov rel err {e:e} > {bar:e} (cond {c:e})");
                    if form != "H" {
                        for k in 0..O {
                            assert!(covs[q][k][k] > 0.0, "{name} {form}: variance not positive");
                        }
                    }
                }
                worst = worst.max(cell);
                println!("| {name} | {form} | {N} | {eps:e} | {c:.1e} | {cell:.1e} | {bar:.0e} |");
            }
        }
        worst
    }};
}

#[test]
fn predictive_cov_against_dense() {
    let mut worst = 0.0f64;
    worst = worst.max(check_predictive!(
        PResB1,
        PResB1Curvature,
        PResB1Ggn,
        mse,
        seed = 1
    ));
    worst = worst.max(check_predictive!(
        PSoft3,
        PSoft3Curvature,
        PSoft3Ggn,
        softmax,
        seed = 2
    ));
    worst = worst.max(check_predictive!(
        PMixed6,
        PMixed6Curvature,
        PMixed6Ggn,
        mse,
        seed = 3
    ));
    worst = worst.max(check_predictive!(
        PDeep1,
        PDeep1Curvature,
        PDeep1Ggn,
        mse,
        seed = 4
    ));
    println!("worst predictive covariance rel err {worst:.2e}");
}

/// Bad queries and bad lengths are errors naming the query.
#[test]
fn predictive_bad_input_is_an_error() {
    const N: usize = PResB1::N_PARAMS;
    let net = random_net!(PResB1, 9, 0.3);
    let mut rng = SplitMix64::new(9);
    let (x, t) = batch_data!(mse, PResB1, &mut rng);
    let mut g = boxed_zeroed::<PResB1Curvature>();
    net.ggn_curvature_into(&mut g, &x, &t).unwrap();
    let mut f = g.factor(1e-2).unwrap();
    let mut work: Box<[[f64; N]; 2]> = boxed_zeroed();
    let mut cov = [[0.0; 2]; 2];
    assert!(matches!(
        net.predictive_cov(&mut f, &[f64::NAN, 0.0], &mut work, &mut cov),
        Err(SolveError::Net(NetError::NonFiniteInput {
            sample: 0,
            index: 0
        }))
    ));
    let xs = [[0.1, 0.2], [0.3, f64::INFINITY]];
    let mut outs = [[0.0; 2]; 2];
    let mut covs = [[[0.0; 2]; 2]; 2];
    assert!(matches!(
        net.predictive_cov_all(&mut f, &xs, &mut work, &mut outs, &mut covs),
        Err(SolveError::Net(NetError::NonFiniteInput {
            sample: 1,
            index: 1
        }))
    ));
    let mut short = [[[0.0; 2]; 2]; 1];
    assert!(matches!(
        net.predictive_cov_all(&mut f, &xs, &mut work, &mut outs, &mut short),
        Err(SolveError::Net(NetError::LengthMismatch {
            samples: 2,
            len: 1
        }))
    ));
    let mut jac: Box<[[f64; N]; 2]> = boxed_zeroed();
    assert!(matches!(
        net.output_jacobian(&[0.0, f64::NAN], &mut jac),
        Err(NetError::NonFiniteInput {
            sample: 0,
            index: 1
        })
    ));
}
