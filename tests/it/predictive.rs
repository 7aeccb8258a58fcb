//! The Laplace approximation's predictive covariance and evidence (runtime/src/laplace.rs,
//! docs/math.md sections 8.6 and 8.7) against dense float64.
//!
//! - `output_jacobian` against a central finite difference of `forward_one` in the
//!   parameters (bar: `1e-7 * max |J|`, the difference's own truncation + rounding error at
//!   step `1e-5` is below `1e-9` here).
//! - `predictive_cov` (exact Hessian, Riccati and Woodbury Gauss-Newton) against
//!   `J (A + eps I)^{-1} J'` with `A` assembled from `hvp` / `ggn_vp` columns and the inverse
//!   from a partial-pivoting LU (`laplace::dense_ref`): relative error at most 1e-9
//!   (Frobenius over the `O x O` block), the bar, on 14 architectures (both losses,
//!   batch 1 to 8, depth 5 to 64) at every eps 1e-1 .. 1e-4, cond up to 1.1e7 (measured worst
//!   1.1e-10; the reference's own error bound `cond u64` is at most 2.4e-9 there).
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

macro_rules! batch_data {
    (mse, $net:ident, $rng:expr) => {{
        let rng: &mut SplitMix64 = $rng;
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        (x, t)
    }};
    (mse_smooth, $net:ident, $rng:expr) => {{
        let rng: &mut SplitMix64 = $rng;
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] = core::array::from_fn(|n| {
            core::array::from_fn(|_| (2.0 * x[n][0]).sin() + 0.1 * rng.symmetric())
        });
        (x, t)
    }};
    (softmax_labels, $net:ident, $rng:expr) => {
        batch_data!(softmax, $net, $rng)
    };
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
                let bar = 1e-9; // the bar, at every cond of the suite (up to 1.1e7)
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

/// The ten further architectures of the log-determinant / diagonal suite (tests/it/laplace.rs):
/// both losses, batch 1 to 8 (batch 8 above the stage input rank), depth 5 to 64, widths 2 to
/// 8, a linear net and plain Dense / DenseNoBias stages; with the four above, 14 in all.
#[test]
fn predictive_cov_against_dense_more_archs_mse() {
    use crate::laplace::{LDeep64, LDense4, LGeluRelu, LLinear, LMix64, LWidth8};
    use crate::laplace::{
        LDeep64Curvature, LDeep64Ggn, LDense4Curvature, LDense4Ggn, LGeluReluCurvature,
        LGeluReluGgn, LLinearCurvature, LLinearGgn, LMix64Curvature, LMix64Ggn, LWidth8Curvature,
        LWidth8Ggn,
    };
    let mut worst = 0.0f64;
    worst = worst.max(check_predictive!(
        LDeep64,
        LDeep64Curvature,
        LDeep64Ggn,
        mse,
        seed = 11
    ));
    worst = worst.max(check_predictive!(
        LDense4,
        LDense4Curvature,
        LDense4Ggn,
        mse,
        seed = 12
    ));
    worst = worst.max(check_predictive!(
        LGeluRelu,
        LGeluReluCurvature,
        LGeluReluGgn,
        mse,
        seed = 13
    ));
    worst = worst.max(check_predictive!(
        LWidth8,
        LWidth8Curvature,
        LWidth8Ggn,
        mse,
        seed = 14
    ));
    worst = worst.max(check_predictive!(
        LLinear,
        LLinearCurvature,
        LLinearGgn,
        mse,
        seed = 15
    ));
    worst = worst.max(check_predictive!(
        LMix64,
        LMix64Curvature,
        LMix64Ggn,
        mse,
        seed = 16
    ));
    println!("worst predictive covariance rel err (6 more MSE archs) {worst:.2e}");
}

/// The softmax architectures of the log-determinant / diagonal suite (see above).
#[test]
fn predictive_cov_against_dense_more_archs_softmax() {
    use crate::laplace::{LMixed6, LNoBias5, LSoft8, LWide6};
    use crate::laplace::{
        LMixed6Curvature, LMixed6Ggn, LNoBias5Curvature, LNoBias5Ggn, LSoft8Curvature, LSoft8Ggn,
        LWide6Curvature, LWide6Ggn,
    };
    let mut worst = 0.0f64;
    worst = worst.max(check_predictive!(
        LSoft8,
        LSoft8Curvature,
        LSoft8Ggn,
        softmax,
        seed = 21
    ));
    worst = worst.max(check_predictive!(
        LNoBias5,
        LNoBias5Curvature,
        LNoBias5Ggn,
        softmax,
        seed = 22
    ));
    worst = worst.max(check_predictive!(
        LWide6,
        LWide6Curvature,
        LWide6Ggn,
        softmax,
        seed = 23
    ));
    worst = worst.max(check_predictive!(
        LMixed6,
        LMixed6Curvature,
        LMixed6Ggn,
        softmax,
        seed = 24
    ));
    println!("worst predictive covariance rel err (4 more softmax archs) {worst:.2e}");
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

// ---------------------------------------------------------------------------------------------
// Evidence

use tall_skinny::runtime::laplace::{
    Evidence, EvidenceError, Hyper, LaplaceCurvature, Likelihood, MaximiseConfig,
};

/// N 97, depth 6, one output, batch 32 (a small regression fit).
#[tall_skinny_net(batch = 32)]
struct PFit32 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 4],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

/// The dense Laplace log evidence from the eigenvalues `lam` of the data term's curvature
/// `Σ_n J_n' Hl_n J_n` (unscaled by the batch: `J'J` for MSE), `e_d` the data misfit
/// (`Σ |u - t|^2 / 2` for MSE, the summed negative log-likelihood otherwise).
fn dense_evidence(
    lam: &[f64],
    e_d: f64,
    w2: f64,
    d: f64,
    gaussian: bool,
    alpha: f64,
    beta: f64,
) -> f64 {
    let n = lam.len() as f64;
    let ld: f64 = lam.iter().map(|l| (beta * l + alpha).ln()).sum();
    let mut le = -beta * e_d - 0.5 * alpha * w2 + 0.5 * n * alpha.ln() - 0.5 * ld;
    if gaussian {
        le += 0.5 * d * (beta / (2.0 * std::f64::consts::PI)).ln();
    }
    le
}

/// The evidence at several `(alpha, beta)` against the dense one, built independently: the
/// data term's curvature from the output Jacobians of the batch's samples (`Σ_n J_n' J_n`,
/// MSE) or from `B` times the dense `ggn_vp` matrix (softmax: the mean loss's `G`), the misfit
/// from the outputs. Also the derivatives against central differences in `log alpha`,
/// `log beta`.
macro_rules! check_evidence {
    ($net:ident, $curv:ident, $ggn:ident, $loss:ident, seed = $seed:expr) => {{
        const N: usize = $net::N_PARAMS;
        const O: usize = $net::OUTPUTS;
        const B: usize = $net::BATCH;
        let name = stringify!($net);
        let net = random_net!($net, $seed, 0.3);
        let mut rng = SplitMix64::new(700 + $seed);
        let (x, t) = batch_data!($loss, $net, &mut rng);
        let gaussian = stringify!($loss).starts_with("mse");
        let likelihood = if gaussian { Likelihood::Gaussian } else { Likelihood::MeanNegLogLikelihood };
        let loss = net.loss(&x, &t).unwrap();
        let mut p: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        net.params(&mut p);
        let w2: f64 = p.iter().map(|v| v * v).sum();
        let (gd, _) = dense_from_hvp(N, |e, col| {
            net.ggn_vp(&x, &t, e.try_into().unwrap(), col.try_into().unwrap()).unwrap();
        });
        let mut data_curv = Mat::zeros(N);
        let e_d: f64;
        if gaussian {
            // Σ_n J_n' J_n from the per-sample output Jacobians, and Σ |u - t|^2 / 2
            let mut ed = 0.0;
            for (n, xn) in x.iter().enumerate() {
                let mut jac: Box<[[f64; N]; O]> = boxed_zeroed();
                let u = net.output_jacobian(xn, &mut jac).unwrap();
                for k in 0..O {
                    let tk: f64 = t.target_at(n, k);
                    ed += 0.5 * (u[k] - tk) * (u[k] - tk);
                    for i in 0..N {
                        for j in 0..N {
                            data_curv.a[i * N + j] += jac[k][i] * jac[k][j];
                        }
                    }
                }
            }
            e_d = ed;
            // the convention: the mean loss's G is J'J / B
            let mut diff = 0.0f64;
            for q in 0..N * N {
                diff = diff.max((data_curv.a[q] - B as f64 * gd.a[q]).abs());
            }
            assert!(diff <= 1e-12 * data_curv.frobenius(), "{name}: J'J vs B G: {diff:e}");
        } else {
            for q in 0..N * N {
                data_curv.a[q] = B as f64 * gd.a[q];
            }
            e_d = B as f64 * loss;
        }
        let lam = sym_eigenvalues(&data_curv);
        let d = (B * O) as f64;
        let ev = Evidence { likelihood, samples: B, outputs: O, loss, weight_sq: w2 };
        let mut gcurv = boxed_zeroed::<$curv>();
        net.ggn_curvature_into(&mut gcurv, &x, &t).unwrap();
        let mut wood = boxed_zeroed::<$ggn>();
        net.ggn_woodbury_into(&mut wood, &x, &t).unwrap();
        println!("| net | form | alpha | beta | log evidence | dense | abs err | d/dlog alpha | central diff | d/dlog beta | central diff |\n|---|---|---|---|---|---|---|---|---|---|---|");
        for (alpha, beta) in [(1.0, 1.0), (0.1, 3.0), (10.0, 0.5), (1e-2, 20.0)] {
            let beta = if gaussian { beta } else { 1.0 };
            let want = dense_evidence(&lam, e_d, w2, d, gaussian, alpha, beta);
            let scale: f64 = lam.iter().map(|l| (beta * l + alpha).ln().abs()).sum::<f64>()
                + beta * e_d + alpha * w2 + N as f64 * alpha.ln().abs() + d * beta.ln().abs().max(1.0);
            for (form, curv) in [("G riccati", &mut *gcurv as &mut dyn LaplaceCurvature<Scalar = f64>), ("G woodbury", &mut *wood)] {
                let v = ev.at(curv, Hyper { alpha, beta }).unwrap();
                let err = (v.log_evidence - want).abs();
                assert!(err <= 1e-11 * scale, "{name} {form} alpha {alpha} beta {beta}: evidence {} vs dense {want}: {err:e}", v.log_evidence);
                // derivatives against central differences of the dense evidence; the bar is
                // the difference's truncation (h^2 / 6 |f'''|, |f'''| <= N + D here) plus
                // its rounding (u64 scale / h), times 10
                let h: f64 = 1e-4;
                let f = |a: f64, b: f64| dense_evidence(&lam, e_d, w2, d, gaussian, a, b);
                let fd_a = (f(alpha * h.exp(), beta) - f(alpha * (-h).exp(), beta)) / (2.0 * h);
                let bar = 10.0 * (h * h / 6.0 * (N as f64 + d + alpha * w2) + f64::EPSILON * scale / h);
                assert!((v.d_log_alpha - fd_a).abs() <= bar, "{name} {form}: d/dlog alpha {} vs {fd_a} (bar {bar:e})", v.d_log_alpha);
                let fd_b = if gaussian {
                    (f(alpha, beta * h.exp()) - f(alpha, beta * (-h).exp())) / (2.0 * h)
                } else {
                    0.0
                };
                let bar_b = 10.0 * (h * h / 6.0 * (N as f64 + d + beta * e_d) + f64::EPSILON * scale / h);
                assert!((v.d_log_beta - fd_b).abs() <= bar_b, "{name} {form}: d/dlog beta {} vs {fd_b} (bar {bar_b:e})", v.d_log_beta);
                println!("| {name} | {form} | {alpha:e} | {beta:e} | {:.10e} | {want:.10e} | {err:.1e} | {:.8e} | {fd_a:.8e} | {:.8e} | {fd_b:.8e} |", v.log_evidence, v.d_log_alpha, v.d_log_beta);
            }
        }
        (ev, lam, e_d, d)
    }};
}

/// `t[n][k]` of an MSE target batch (labels have none).
trait TargetAt {
    fn target_at(&self, n: usize, k: usize) -> f64;
}

impl<const O: usize, const B: usize> TargetAt for [[f64; O]; B] {
    fn target_at(&self, n: usize, k: usize) -> f64 {
        self[n][k]
    }
}

impl<const B: usize> TargetAt for [usize; B] {
    fn target_at(&self, _n: usize, _k: usize) -> f64 {
        unreachable!("labels are not rows")
    }
}

#[test]
fn evidence_against_dense() {
    let _ = check_evidence!(PMixed6, PMixed6Curvature, PMixed6Ggn, mse, seed = 21);
    let _ = check_evidence!(PDeep1, PDeep1Curvature, PDeep1Ggn, mse, seed = 22);
}

#[test]
fn evidence_against_dense_softmax() {
    let _ = check_evidence!(
        PSoft3,
        PSoft3Curvature,
        PSoft3Ggn,
        softmax_labels,
        seed = 23
    );
}

/// The maximiser: its fixed point satisfies its own equations and both derivatives vanish
/// there; a brute-force scan of the dense evidence in `log alpha` (at the found beta) and in
/// `log beta` (at the found alpha) finds nothing higher, and its argmax is within one grid
/// step. Both Gauss-Newton forms agree.
#[test]
fn maximiser_against_a_scan() {
    // batch 32: the Riccati fill's per-stage scratch (`BO x BO` = 128 x 128 blocks) needs more
    // than a test thread's default stack in a debug build
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(maximiser_body)
        .unwrap()
        .join()
        .unwrap();
}

fn maximiser_body() {
    let (ev, lam, e_d, d) =
        check_evidence!(PFit32, PFit32Curvature, PFit32Ggn, mse_smooth, seed = 24);
    let net = random_net!(PFit32, 24, 0.3);
    let mut rng = SplitMix64::new(700 + 24);
    let (x, t) = batch_data!(mse_smooth, PFit32, &mut rng);
    let mut wood = boxed_zeroed::<PFit32Ggn>();
    net.ggn_woodbury_into(&mut wood, &x, &t).unwrap();
    let mut gcurv = boxed_zeroed::<PFit32Curvature>();
    net.ggn_curvature_into(&mut gcurv, &x, &t).unwrap();
    let cfg = MaximiseConfig::default();
    let start = Hyper {
        alpha: 1.0,
        beta: 1.0,
    };
    let m = ev.maximise(&mut *wood, start, cfg).unwrap();
    let m2 = ev.maximise(&mut *gcurv, start, cfg).unwrap();
    let (a, b) = (m.hyper.alpha, m.hyper.beta);
    println!("maximiser: alpha {a:.6e} beta {b:.6e} gamma {:.4} of N {} (D {d}), {} iterations; riccati alpha {:.6e} beta {:.6e}", m.value.gamma, PFit32::N_PARAMS, m.iterations, m2.hyper.alpha, m2.hyper.beta);
    assert!(
        (a - m2.hyper.alpha).abs() <= 1e-8 * a && (b - m2.hyper.beta).abs() <= 1e-8 * b,
        "forms disagree"
    );
    // its own equations
    assert!(
        (a * ev.weight_sq - m.value.gamma).abs() <= 1e-8 * m.value.gamma,
        "alpha = gamma / |w|^2"
    );
    assert!(
        (2.0 * b * e_d - (d - m.value.gamma)).abs() <= 1e-8 * d,
        "beta = (D - gamma) / (2 E_D)"
    );
    assert!(m.value.d_log_alpha.abs() <= 1e-8 * PFit32::N_PARAMS as f64);
    assert!(m.value.d_log_beta.abs() <= 1e-8 * d);
    // brute-force scans of the dense evidence
    let f = |al: f64, be: f64| dense_evidence(&lam, e_d, ev.weight_sq, d, true, al, be);
    let best = f(a, b);
    let step = 1e-3;
    for (axis, centre) in [("alpha", a.ln()), ("beta", b.ln())] {
        let (mut arg, mut top) = (f64::NAN, f64::NEG_INFINITY);
        for i in -6000..=6000 {
            let s = centre + step * i as f64;
            let v = if axis == "alpha" {
                f(s.exp(), b)
            } else {
                f(a, s.exp())
            };
            if v > top {
                top = v;
                arg = s;
            }
        }
        assert!(
            top <= best + 1e-12 * best.abs().max(1.0),
            "{axis}: the scan found {top} > {best}"
        );
        assert!(
            (arg - centre).abs() <= step,
            "{axis}: scan argmax {arg} vs {centre}"
        );
        println!(
            "scan in log {axis}: argmax {:.6e} vs maximiser {:.6e}, max {top:.10e} vs {best:.10e}",
            arg.exp(),
            centre.exp()
        );
    }
    // The plain MacKay iteration (alpha <- gamma / |w|^2, beta <- (D - gamma) / (2 E_D), no
    // secant), written out here on the dense eigenvalues: the same fixed point, in at least as
    // many iterations as the secant-damped maximiser takes.
    let (mut pa, mut pb, mut plain_iters) = (start.alpha, start.beta, 0usize);
    loop {
        plain_iters += 1;
        let gamma: f64 = lam.iter().map(|&l| pb * l / (pb * l + pa)).sum();
        let (na, nb) = (gamma / ev.weight_sq, (d - gamma) / (2.0 * e_d));
        let change = ((na - pa) / pa).abs().max(((nb - pb) / pb).abs());
        (pa, pb) = (na, nb);
        if change < cfg.tol || plain_iters == 100_000 {
            break;
        }
    }
    println!(
        "plain MacKay: alpha {pa:.6e} beta {pb:.6e} in {plain_iters} iterations; maximiser {} iterations",
        m.iterations
    );
    assert!(
        (pa - a).abs() <= 1e-8 * a && (pb - b).abs() <= 1e-8 * b,
        "the plain iteration's fixed point differs"
    );
    assert!(
        m.iterations <= plain_iters,
        "secant-damped {} > plain {plain_iters} iterations",
        m.iterations
    );
    // an iteration cap of 1 cannot vouch for the answer
    let capped = ev.maximise(
        &mut *wood,
        start,
        MaximiseConfig {
            max_iter: 1,
            tol: 1e-10,
        },
    );
    assert!(matches!(
        capped,
        Err(EvidenceError::NotConverged { iterations: 1, .. })
    ));
    // bad settings and degenerate data are errors
    assert!(matches!(
        ev.at(
            &mut *wood,
            Hyper {
                alpha: -1.0,
                beta: 1.0
            }
        ),
        Err(EvidenceError::Invalid(_))
    ));
    assert!(matches!(
        ev.at(
            &mut *wood,
            Hyper {
                alpha: 1.0,
                beta: f64::NAN
            }
        ),
        Err(EvidenceError::Invalid(_))
    ));
    let zero_w = Evidence {
        weight_sq: 0.0,
        ..ev
    };
    assert!(matches!(
        zero_w.maximise(&mut *wood, start, cfg),
        Err(EvidenceError::Degenerate(_))
    ));
    let bad_tol = MaximiseConfig {
        max_iter: 10,
        tol: f64::NAN,
    };
    assert!(matches!(
        ev.maximise(&mut *wood, start, bad_tol),
        Err(EvidenceError::Invalid(_))
    ));
}

/// `fit_map` minimises `L(w) + eps |w|^2 / 2`: at its answer a Newton step on the objective
/// with the dense exact Hessian `H + eps I` (from `hvp` columns, partial-pivoting LU; positive
/// definite there, checked) predicts a further decrease `g' (H + eps I)^{-1} g / 2` below
/// `1e-10` of the objective, where it was of order one at the start; bad settings are `SolveError::Config` naming the field, and the
/// net is unchanged by them.
#[test]
fn fit_map_reaches_a_stationary_minimum() {
    use tall_skinny::runtime::laplace::{fit_map, MapConfig, MapStop};
    use tall_skinny::runtime::optim::Model;
    const N: usize = PMixed6::N_PARAMS;
    let mut rng = SplitMix64::new(31);
    let (x, t) = batch_data!(mse_smooth, PMixed6, &mut rng);
    let eps = 1e-2;
    let newton_decrement = |net: &PMixed6| -> (f64, f64, f64) {
        let mut g = [0.0; N];
        let loss = net.gradient(&x, &t, &mut g).unwrap();
        let mut w = [0.0; N];
        net.params(&mut w);
        let obj = loss + 0.5 * eps * w.iter().map(|v| v * v).sum::<f64>();
        let rhs: Vec<f64> = (0..N).map(|q| g[q] + eps * w[q]).collect();
        let (hd, _) = dense_from_hvp(N, |e, col| {
            net.hvp(&x, &t, e.try_into().unwrap(), col.try_into().unwrap())
                .unwrap();
        });
        let r = dense_ref(&hd, eps);
        let s = &r.inv * nalgebra::DVector::from_vec(rhs.clone());
        let dec = 0.5 * rhs.iter().zip(s.iter()).map(|(a, b)| a * b).sum::<f64>();
        let lowest = sym_eigenvalues(&hd)
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        (dec / obj, obj, lowest + eps)
    };
    let mut net = random_net!(PMixed6, 31, 0.3);
    let (start, _, _) = newton_decrement(&net);
    let mut work: Box<[[f64; N]; 4]> = boxed_zeroed();
    let mut gn = boxed_zeroed::<<PMixed6 as Model>::GaussNewton>();
    let mut scratch = boxed_zeroed::<<PMixed6 as Model>::GnScratch>();
    let cfg = MapConfig::default();
    let report = fit_map(
        &mut net,
        &mut *gn,
        &mut *scratch,
        &mut work,
        &x,
        &t,
        eps,
        cfg,
    )
    .unwrap();
    let (end, obj, lowest) = newton_decrement(&net);
    assert!(
        lowest > 0.0,
        "H + eps I is not positive definite at the answer ({lowest:e})"
    );
    println!(
        "fit_map ({:?} form): {report:?}; Newton decrement / objective {start:.2e} -> {end:.2e}",
        PMixed6::GGN_METHOD
    );
    assert!(
        start > 1e-3,
        "the start is not already a minimum ({start:e})"
    );
    assert!(
        end <= 1e-10,
        "not stationary: Newton decrement / objective {end:e}"
    );
    assert!(
        (report.objective - obj).abs() <= 1e-12 * obj,
        "reported objective"
    );
    assert_ne!(report.stop, MapStop::MaxSteps);
    // bad settings
    let mut net = random_net!(PMixed6, 31, 0.3);
    let mut p0 = [0.0; N];
    net.params(&mut p0);
    let mut gn = boxed_zeroed::<<PMixed6 as Model>::GaussNewton>();
    let mut scratch = boxed_zeroed::<<PMixed6 as Model>::GnScratch>();
    let mut work: Box<[[f64; N]; 4]> = boxed_zeroed();
    let bad = [
        ("eps", 0.0, MapConfig::default()),
        ("eps", f64::NAN, MapConfig::default()),
        (
            "lambda",
            eps,
            MapConfig {
                lambda: -1.0,
                ..MapConfig::default()
            },
        ),
        (
            "rel_gain",
            eps,
            MapConfig {
                rel_gain: f64::INFINITY,
                ..MapConfig::default()
            },
        ),
        (
            "max_trials",
            eps,
            MapConfig {
                max_trials: 0,
                ..MapConfig::default()
            },
        ),
    ];
    for (field, e, cfg) in bad {
        match fit_map(&mut net, &mut *gn, &mut *scratch, &mut work, &x, &t, e, cfg) {
            Err(SolveError::Config(c)) => assert_eq!(c.field, field),
            other => panic!("{field}: {other:?}"),
        }
        let mut p = [0.0; N];
        net.params(&mut p);
        assert_eq!(p, p0, "{field}: the net changed");
    }
}
