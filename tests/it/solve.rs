//! Accuracy of the exact damped Hessian solve `(H + eps I)^{-1} b`.
//!
//! Reference: the dense Hessian assembled column by column from `hvp` (verified elsewhere
//! against hyper-dual numbers), symmetrised, and solved by a dense partial-pivoting LU; its
//! eigenvalues give the condition number, the definiteness and the inertia. See
//! `solve_common/mod.rs` for the dense kit and `dense_kit_matches_nalgebra` for its check.
//!
//! Bars:
//! - f64, 12 architectures x eps in {1, 1e-2, 1e-4} x 3 draws: what `hessian_solve` returns
//!   (two refinement steps) is within 1e-9 relative of the dense LU solution; the plain
//!   two-sweep `solve` within 1e-6 (a regression guard, not a target: see `PLAIN_BOUND`).
//! - ill-conditioned (cond(H + eps I) ~ 1e8): dense residual of our solution within 10x of
//!   the dense LU's own residual.
//! - f32 agrees with f64 at cond <= 1e3 to within 1e3 * cond * f32::EPSILON (see `F32_FACTOR`).
//! - depth 512: relative residual (product by `hvp`) <= 1e-10.
//! - inertia equals the signs of the dense eigenvalues; `apply` equals the dense product.
//! - errors: non-finite eps, singular H, non-finite right-hand side, re-factoring.
//!
//! Run `cargo test --test it solve:: -- --nocapture --test-threads=1` to see the tables.

use crate::solve_common::*;
use tall_skinny::boxed_zeroed;
use tall_skinny::prelude::*;
use tall_skinny::runtime::{Inertia, NetError, SplitMix64};

// ---------------------------------------------------------------------------------------------
// Architectures (N = parameter count, depth = number of stages)

/// N 89, depth 8, batch 1 (every dense Hxx block has rank 1; H is rank deficient).
#[tall_skinny_net(batch = 1)]
struct ResTanhB1 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Tanh>; 6],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

/// N 84, depth 5, softmax head through a Gelu DenseNoBias layer.
#[tall_skinny_net(batch = 3)]
struct SigGeluSoft {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 3],
    c: DenseNoBias<4, 3, Gelu>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 384, depth 64, width 2.
#[tall_skinny_net(batch = 2)]
struct Deep64Mse {
    a: Dense<2, 2, Tanh>,
    b: [Residual<2, Tanh>; 62],
    c: Dense<2, 2, Identity>,
    loss: Mse<2>,
}

/// N 387, depth 64, width 2, batch 8 (batch larger than the stage input rank 3).
#[tall_skinny_net(batch = 8)]
struct Deep64Soft8 {
    a: DenseNoBias<3, 2, Sin>,
    b: [Residual<2, Silu>; 62],
    c: Dense<2, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 226, depth 12, plain Dense stages only.
#[tall_skinny_net(batch = 4)]
struct DenseSigChain {
    a: Dense<3, 4, Tanh>,
    b: [Dense<4, 4, Sigmoid>; 10],
    c: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

/// N 156, depth 17, DenseNoBias stages only.
#[tall_skinny_net(batch = 5)]
struct NoBiasSin {
    a: [DenseNoBias<3, 3, Sin>; 16],
    b: DenseNoBias<3, 4, Identity>,
    loss: SoftmaxCrossEntropy<4>,
}

/// N 207, depth 6, width 6, batch 8.
#[tall_skinny_net(batch = 8)]
struct Wide6B8 {
    a: Dense<3, 6, Silu>,
    b: [Residual<6, Softplus>; 3],
    c: DenseNoBias<6, 6, Tanh>,
    d: Dense<6, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 147, depth 6, Gelu and Relu (piecewise linear: zero second derivative).
#[tall_skinny_net(batch = 2)]
struct GeluRelu {
    a: Dense<2, 5, Gelu>,
    b: [Residual<5, Relu>; 3],
    c: Dense<5, 5, Gelu>,
    d: Dense<5, 2, Identity>,
    loss: Mse<2>,
}

/// N 229, depth 12, every stage kind in one chain.
#[tall_skinny_net(batch = 6)]
struct Mixed6 {
    a: Dense<1, 4, Gelu>,
    b: [Residual<4, Silu>; 6],
    c: DenseNoBias<4, 4, Identity>,
    d: [Dense<4, 4, Sigmoid>; 3],
    e: Dense<4, 5, Identity>,
    loss: SoftmaxCrossEntropy<5>,
}

/// N 156, depth 13, a linear network (still an indefinite Hessian).
#[tall_skinny_net(batch = 3)]
struct LinearRes {
    a: [Residual<3, Identity>; 12],
    b: Dense<3, 3, Identity>,
    loss: Mse<3>,
}

/// N 258, depth 5, width 8, batch 1.
#[tall_skinny_net(batch = 1)]
struct Width8B1 {
    a: Dense<2, 8, Tanh>,
    b: [Residual<8, Tanh>; 3],
    c: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// N 377, depth 32, batch 7, Softplus in, Sin before the loss.
#[tall_skinny_net(batch = 7)]
struct Softplus32B7 {
    a: Dense<2, 3, Softplus>,
    b: [Residual<3, Sigmoid>; 30],
    c: Dense<3, 2, Sin>,
    loss: Mse<2>,
}

// ---------------------------------------------------------------------------------------------
// Random problems (`boxed_vec`, `random_net!`, `inputs!`, `targets!`: solve_common.rs)

fn random_vec(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..n).map(|_| rng.symmetric()).collect()
}

/// Dense symmetrised Hessian of `net` at `(x, t)` from `N` hvp calls; asserts the raw columns
/// were symmetric to rounding.
macro_rules! dense_hessian {
    ($net:ident, $value:expr, $x:expr, $t:expr) => {{
        const N: usize = $net::N_PARAMS;
        let (h, asym) = dense_from_hvp(N, |e, col| {
            let e: &[f64; N] = e.try_into().unwrap();
            let col: &mut [f64; N] = col.try_into().unwrap();
            $value.hvp($x, $t, e, col).unwrap();
        });
        assert!(
            asym < 1e-12,
            "{}: hvp columns asymmetric: {asym:e}",
            stringify!($net)
        );
        h
    }};
}

// ---------------------------------------------------------------------------------------------
// f64 accuracy against the dense LU

const EPS_LIST: [f64; 3] = [1.0, 1e-2, 1e-4];
/// What `hessian_solve` (refined) must reach.
const REFINED_BOUND: f64 = 1e-9;
/// The plain two-sweep solve: a regression guard. The Riccati sweep is backward stable per
/// stage but not across stages for indefinite H (it eliminates without pivoting between
/// stages), so its error is cond * u times a growth factor; measured worst over this suite is
/// printed in the table. 1e-6 leaves room for that growth while catching any real breakage
/// (a wrong block gives O(1) errors).
const PLAIN_BOUND: f64 = 1e-6;

fn shifted_inertia(i: Inertia) -> (usize, usize, usize) {
    (i.negative, i.zero, i.positive)
}

/// Runs one architecture over `seeds`, adds rows to `table`, asserts the bars.
macro_rules! accuracy {
    ($table:expr, $net:ident, $curv:ident, $loss:ident, delta = $delta:expr, seeds = $seeds:expr) => {{
        const N: usize = $net::N_PARAMS;
        let name = stringify!($net);
        for seed in $seeds {
            let net = random_net!($net, seed, $delta, 1.0);
            let mut rng = SplitMix64::new(1000 + seed);
            let x = inputs!($net, &mut rng);
            let t = targets!($loss, $net, &mut rng);
            let h = dense_hessian!($net, net, &x, &t);
            let eig = sym_eigenvalues(&h);
            let lmax = eig.iter().fold(0.0f64, |m, l| m.max(l.abs()));
            assert!(
                eig[0] < -1e-6 * lmax,
                "{name} seed {seed}: H is not clearly indefinite (min eig {:e}, max |eig| {lmax:e})",
                eig[0]
            );
            let b: Box<[f64; N]> = boxed_vec(random_vec(N, &mut rng));
            let mut curv = boxed_zeroed::<$curv>();
            net.curvature_into(&mut curv, &x, &t).unwrap();
            for eps in EPS_LIST {
                let xd = lu_solve(&h, eps, &b[..]);
                let lu_res = rel_residual(&h, eps, &xd, &b[..]);
                // Plain two-sweep solve.
                let mut xs: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
                let fac_inertia = {
                    let mut f = curv.factor(eps).unwrap();
                    f.solve(&b, &mut xs).unwrap();
                    f.inertia()
                };
                let plain = rel_err(&xs[..], &xd);
                // The one-call API (curvature, factor, solve, 2 refinement steps).
                let mut xr: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
                let mut curv2 = boxed_zeroed::<$curv>();
                let inertia = net.hessian_solve_in(&mut curv2, &x, &t, eps, &b, &mut xr).unwrap();
                let refined = rel_err(&xr[..], &xd);
                assert_eq!(inertia, fac_inertia);
                if let Some(want) = inertia_of(&eig, eps, 1e-8 * lmax) {
                    assert_eq!(shifted_inertia(inertia), want, "{name} seed {seed} eps {eps:e}: inertia");
                }
                let c = cond(&eig, eps);
                if plain > REFINED_BOUND {
                    println!(
                        "note: {name} seed {seed} eps {eps:e}: plain solve rel err {plain:.2e} > {REFINED_BOUND:e} (refined {refined:.2e}, cond {c:.2e})"
                    );
                }
                assert!(
                    refined <= REFINED_BOUND,
                    "{name} seed {seed} eps {eps:e}: hessian_solve rel err {refined:e} (plain {plain:e}, cond {c:e}, LU residual {lu_res:e})"
                );
                assert!(
                    plain <= PLAIN_BOUND,
                    "{name} seed {seed} eps {eps:e}: plain solve rel err {plain:e} (refined {refined:e}, cond {c:e})"
                );
                $table.add(Row {
                    arch: name.to_string(),
                    n: N,
                    eps,
                    draws: 1,
                    cond_max: c,
                    lambda_min: eig[0],
                    plain,
                    refined,
                    lu_residual: lu_res,
                });
            }
        }
    }};
}

#[test]
fn accuracy_shallow_mse() {
    let mut table = Table::default();
    accuracy!(
        table,
        ResTanhB1,
        ResTanhB1Curvature,
        mse,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        GeluRelu,
        GeluReluCurvature,
        mse,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        LinearRes,
        LinearResCurvature,
        mse,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        Width8B1,
        Width8B1Curvature,
        mse,
        delta = 0.3,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

#[test]
fn accuracy_shallow_softmax() {
    let mut table = Table::default();
    accuracy!(
        table,
        SigGeluSoft,
        SigGeluSoftCurvature,
        softmax,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        NoBiasSin,
        NoBiasSinCurvature,
        softmax,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        Wide6B8,
        Wide6B8Curvature,
        softmax,
        delta = 0.3,
        seeds = 0..3u64
    );
    accuracy!(
        table,
        Mixed6,
        Mixed6Curvature,
        softmax,
        delta = 0.3,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

#[test]
fn accuracy_dense_chain() {
    let mut table = Table::default();
    accuracy!(
        table,
        DenseSigChain,
        DenseSigChainCurvature,
        mse,
        delta = 0.3,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

#[test]
fn accuracy_depth64_mse() {
    let mut table = Table::default();
    accuracy!(
        table,
        Deep64Mse,
        Deep64MseCurvature,
        mse,
        delta = 0.2,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

#[test]
fn accuracy_depth64_softmax_batch8() {
    let mut table = Table::default();
    accuracy!(
        table,
        Deep64Soft8,
        Deep64Soft8Curvature,
        softmax,
        delta = 0.1,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

#[test]
fn accuracy_depth32_batch7() {
    let mut table = Table::default();
    accuracy!(
        table,
        Softplus32B7,
        Softplus32B7Curvature,
        mse,
        delta = 0.2,
        seeds = 0..3u64
    );
    println!("{}", table.render());
}

// ---------------------------------------------------------------------------------------------
// The dense kit itself

#[test]
fn dense_kit_matches_nalgebra() {
    // Random symmetric matrices, and a real (indefinite) network Hessian.
    let mut mats: Vec<Mat> = (0..3)
        .map(|s| random_symmetric(37 + 11 * s as usize, s))
        .collect();
    {
        let net = random_net!(SigGeluSoft, 5, 0.3, 1.0);
        let mut rng = SplitMix64::new(5);
        let x = inputs!(SigGeluSoft, &mut rng);
        let t = targets!(softmax, SigGeluSoft, &mut rng);
        mats.push(dense_hessian!(SigGeluSoft, net, &x, &t));
    }
    for (k, m) in mats.iter().enumerate() {
        let n = m.n;
        let ours = sym_eigenvalues(m);
        let mut theirs: Vec<f64> = m
            .to_nalgebra(0.0)
            .symmetric_eigenvalues()
            .iter()
            .copied()
            .collect();
        theirs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let scale = m.frobenius();
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // Both are backward stable: each eigenvalue is within ~n u |A| of the exact one.
        assert!(
            worst <= 1e-13 * scale,
            "matrix {k}: eigenvalues differ by {worst:e} (|A| {scale:e})"
        );
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        for shift in [0.0, 0.5] {
            let ours = lu_solve(m, shift, &b);
            let theirs = m
                .to_nalgebra(shift)
                .full_piv_lu()
                .solve(&nalgebra::DVector::from_column_slice(&b))
                .unwrap();
            let c = cond(&sym_eigenvalues(m), shift);
            let d = rel_err(&ours, theirs.as_slice());
            assert!(
                d <= 1e-13 * c,
                "matrix {k} shift {shift}: LU solves differ by {d:e} (cond {c:e})"
            );
            assert!(rel_residual(m, shift, &ours, &b) <= 1e-13 * c.max(1.0));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ill-conditioned: cond(H + eps I) ~ 1e8 by scaling the weights

/// Scales `s >= 1` until `cond_at(s)` lands in `[lo, hi]`: steps of 1.3x, then bisection in
/// log s once the band has been overshot (cond is not monotone in s, so this just finds some
/// s in the band). Returns `(s, cond)`.
fn find_scale(mut cond_at: impl FnMut(f64) -> f64, lo: f64, hi: f64) -> (f64, f64) {
    let mut tried = Vec::new();
    let mut eval = |s: f64, tried: &mut Vec<(f64, f64)>| {
        let c = cond_at(s);
        tried.push((s, c));
        c
    };
    let (mut a, mut b) = (1.0, 1.0);
    let c = eval(a, &mut tried);
    if (lo..=hi).contains(&c) {
        return (a, c);
    }
    assert!(c < lo, "already cond {c:e} > {hi:e} at scale 1");
    loop {
        b *= 1.3;
        let c = eval(b, &mut tried);
        if (lo..=hi).contains(&c) {
            return (b, c);
        }
        if c > hi {
            break;
        }
        a = b;
        assert!(b < 1e3, "no scale up to {b} reaches cond {lo:e}: {tried:?}");
    }
    for _ in 0..30 {
        let m = (a * b).sqrt();
        let c = eval(m, &mut tried);
        if (lo..=hi).contains(&c) {
            return (m, c);
        }
        if c < lo {
            a = m;
        } else {
            b = m;
        }
    }
    panic!("no scale gives cond in [{lo:e}, {hi:e}]: {tried:?}");
}

/// What the ill-conditioned test measured for one net.
struct IllRow {
    arch: &'static str,
    n: usize,
    seed: u64,
    scale: f64,
    eps: f64,
    cond: f64,
    lu_res: f64,
    plain_res: f64,
    refined_res: f64,
    plain_err: f64,
    refined_err: f64,
    /// `solve_refined` with up to 10 steps (information: where refinement levels off).
    refined10_res: f64,
    /// The plain solve's backward error, dense.
    plain_backward: f64,
    /// The bound `solve_refined` with no correction reports for it.
    plain_backward_reported: f64,
    /// Whether it vouched for the plain solve.
    plain_vouched: bool,
}

/// Ratio allowed between our dense residual and the dense LU's own residual.
const ILL_RESIDUAL_RATIO: f64 = 10.0;

macro_rules! ill_conditioned {
    ($rows:expr, $net:ident, $curv:ident, $loss:ident, seed = $seed:expr, eps = $eps:expr) => {{
        const N: usize = $net::N_PARAMS;
        let name = stringify!($net);
        let eps: f64 = $eps;
        let seed: u64 = $seed;
        let problem = |s: f64| {
            let net = random_net!($net, seed, 0.3, s);
            let mut rng = SplitMix64::new(1000 + seed);
            let x = inputs!($net, &mut rng);
            let t = targets!($loss, $net, &mut rng);
            let h = dense_hessian!($net, net, &x, &t);
            (net, x, t, h, rng)
        };
        let (scale, c) = find_scale(|s| cond(&sym_eigenvalues(&problem(s).3), eps), 3e7, 3e8);
        let (net, x, t, h, mut rng) = problem(scale);
        let b: Box<[f64; N]> = boxed_vec(random_vec(N, &mut rng));
        let xd = lu_solve(&h, eps, &b[..]);
        let lu_res = rel_residual(&h, eps, &xd, &b[..]);
        let mut curv = boxed_zeroed::<$curv>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let mut xs: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        curv.factor(eps).unwrap().solve(&b, &mut xs).unwrap();
        let mut xr: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        net.hessian_solve_in(&mut curv, &x, &t, eps, &b, &mut xr).unwrap();
        let mut x10: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        curv.factor(eps).unwrap().solve_refined(&b, &mut x10, 10).unwrap();
        // The plain solve's backward-error bound (`solve_refined` with no correction) never
        // understates the dense one, |r| / (|H + eps I|_2 |x| + |b|) with the 2-norm from
        // the eigenvalues, whether the solve vouches for it or not (to within u: the two
        // residuals come from different exact products, the dense H's and the blocks').
        let a_norm = sym_eigenvalues(&h)
            .iter()
            .map(|l| (l + eps).abs())
            .fold(0.0, f64::max);
        let mut x0: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        let plain = curv.factor(eps).unwrap().solve_refined(&b, &mut x0, 0);
        let (nb, nx) = (norm(&b[..]), norm(&x0[..]));
        let eta = rel_residual(&h, eps, &x0[..], &b[..]) * nb / (a_norm * nx + nb);
        let (reported, vouched) = match plain {
            Ok(r) => (r.backward_error, true),
            Err(SolveError::Inaccurate { backward_error, .. }) => (backward_error, false),
            Err(e) => panic!("{name} seed {seed} eps {eps:e}: plain solve {e:?}"),
        };
        assert!(
            eta <= reported * (1.0 + 1e-6) + f64::EPSILON,
            "{name} seed {seed} eps {eps:e} cond {c:.2e}: backward error {eta:e}, reported {reported:e}"
        );
        let row = IllRow {
            arch: name,
            n: N,
            seed,
            scale,
            eps,
            cond: c,
            lu_res,
            plain_res: rel_residual(&h, eps, &xs[..], &b[..]),
            refined_res: rel_residual(&h, eps, &xr[..], &b[..]),
            plain_err: rel_err(&xs[..], &xd),
            refined_err: rel_err(&xr[..], &xd),
            refined10_res: rel_residual(&h, eps, &x10[..], &b[..]),
            plain_backward: eta,
            plain_backward_reported: reported,
            plain_vouched: vouched,
        };
        assert!(
            row.refined_res <= ILL_RESIDUAL_RATIO * lu_res,
            "{name} seed {seed} scale {scale:.3} eps {eps:e} cond {c:.2e}: residual {:e} vs dense LU {lu_res:e} (plain {:e})",
            row.refined_res,
            row.plain_res
        );
        $rows.push(row);
    }};
}

#[test]
fn ill_conditioned_residual() {
    let mut rows = Vec::new();
    ill_conditioned!(
        rows,
        ResTanhB1,
        ResTanhB1Curvature,
        mse,
        seed = 0,
        eps = 1e-4
    );
    ill_conditioned!(
        rows,
        ResTanhB1,
        ResTanhB1Curvature,
        mse,
        seed = 1,
        eps = 1e-4
    );
    ill_conditioned!(
        rows,
        LinearRes,
        LinearResCurvature,
        mse,
        seed = 0,
        eps = 1e-4
    );
    ill_conditioned!(rows, GeluRelu, GeluReluCurvature, mse, seed = 0, eps = 1e-2);
    ill_conditioned!(rows, GeluRelu, GeluReluCurvature, mse, seed = 1, eps = 1e-4);
    ill_conditioned!(
        rows,
        SigGeluSoft,
        SigGeluSoftCurvature,
        softmax,
        seed = 0,
        eps = 1e-6
    );
    ill_conditioned!(
        rows,
        NoBiasSin,
        NoBiasSinCurvature,
        softmax,
        seed = 0,
        eps = 1e-4
    );
    let mut s = String::from(
        "| arch | N | seed | weight scale | eps | cond(H+eps I) | dense LU residual | plain residual | hessian_solve residual | plain rel err vs LU | refined rel err vs LU | solve_refined(10) residual | plain backward error | reported | vouched |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        s += &format!(
            "| {} | {} | {} | {:.3} | {:e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {} |\n",
            r.arch,
            r.n,
            r.seed,
            r.scale,
            r.eps,
            r.cond,
            r.lu_res,
            r.plain_res,
            r.refined_res,
            r.plain_err,
            r.refined_err,
            r.refined10_res,
            r.plain_backward,
            r.plain_backward_reported,
            r.plain_vouched
        );
    }
    println!("{s}");
}

// ---------------------------------------------------------------------------------------------
// f32 against f64 on the same problem

/// N 125, depth 9: the same declaration as `MixF64`, in f32.
#[tall_skinny_net(batch = 3, scalar = f32)]
struct MixF32 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 6],
    c: DenseNoBias<4, 4, Gelu>,
    d: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 3)]
struct MixF64 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 6],
    c: DenseNoBias<4, 4, Gelu>,
    d: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 209, depth 18.
#[tall_skinny_net(batch = 2, scalar = f32)]
struct TanhF32 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Tanh>; 16],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 2)]
struct TanhF64 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Tanh>; 16],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

/// f32 bound: `|x32 - x64| / |x64| <= F32_FACTOR * cond(H + eps I) * f32::EPSILON`.
///
/// Both nets hold the same f32-representable parameters, inputs, targets, right-hand side and
/// eps, so the difference is only f32 rounding. The f32 solve is the exact solution of a
/// problem whose blocks carry relative errors of a small multiple of u = f32::EPSILON per
/// operation, accumulated along the chain (forward values, adjoints, the curvature blocks and
/// the Riccati sweep over <= 18 stages of width <= 4): first-order perturbation theory gives
/// |dx|/|x| <= cond * |dA|/|A| with |dA|/|A| ~ (number of chained operations) * u, at most a
/// few hundred u for these sizes (a worst-case count; errors mostly cancel). 1e3 leaves a
/// factor of a few over that count. The measured ratio err / (cond u) is printed: <= 0.5 for
/// the refined solve and up to ~8 for the plain f32 solve at an indefinite eps.
const F32_FACTOR: f64 = 1e3;

macro_rules! round_targets {
    (mse, $t:expr) => {{
        let t = $t;
        (
            t.map(|r| r.map(|v| v as f32 as f64)),
            t.map(|r| r.map(|v| v as f32)),
        )
    }};
    (softmax, $t:expr) => {{
        let t = $t;
        (t, t)
    }};
}

/// eps values for the f32 comparison, chosen from the dense spectrum so that
/// cond(H + eps I) <= 1e3: two with H + eps I positive definite (cond ~ 10 and cond = 500),
/// one indefinite (-eps in the middle of the gap between two negative eigenvalues that gives
/// the smallest cond).
fn f32_eps_choices(eig: &[f64]) -> Vec<f64> {
    let lmax = eig.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let (lo, hi) = (eig[0], eig[eig.len() - 1]);
    // (hi + eps) / (lo + eps) = 500.
    let eps500 = (hi - 500.0 * lo) / 499.0;
    let mut out = vec![2.0 * (-lo).max(0.0) + lmax / 100.0, eps500];
    let mut best: Option<(f64, f64)> = None;
    for w in eig.windows(2) {
        if w[1] < 0.0 {
            let eps = -(w[0] + w[1]) / 2.0;
            let c = cond(eig, eps);
            if best.is_none_or(|(_, bc)| c < bc) {
                best = Some((eps, c));
            }
        }
    }
    if let Some((eps, _)) = best {
        out.push(eps);
    }
    out.into_iter().map(|e| e as f32 as f64).collect()
}

struct F32Row {
    arch: &'static str,
    seed: u64,
    eps: f64,
    cond: f64,
    negative: usize,
    plain: f64,
    refined: f64,
    bound: f64,
}

macro_rules! f32_vs_f64 {
    ($rows:expr, $n32:ident, $c32:ident, $n64:ident, $c64:ident, $loss:ident, seed = $seed:expr) => {{
        const N: usize = $n64::N_PARAMS;
        assert_eq!($n32::N_PARAMS, N);
        let seed: u64 = $seed;
        let mut p: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        random_net!($n64, seed, 0.3, 1.0).params(&mut p);
        let p32: Box<[f32; N]> = p.iter().map(|v| *v as f32).collect::<Vec<_>>().try_into().unwrap();
        let p64: Box<[f64; N]> = boxed_vec(p32.iter().map(|v| *v as f64).collect());
        let mut net64 = $n64::ZERO;
        net64.set_params(&p64).unwrap();
        let mut net32 = $n32::ZERO;
        net32.set_params(&p32).unwrap();
        let mut rng = SplitMix64::new(2000 + seed);
        let x = inputs!($n64, &mut rng);
        let x64 = x.map(|r| r.map(|v| v as f32 as f64));
        let x32 = x.map(|r| r.map(|v| v as f32));
        let (t64, t32) = round_targets!($loss, targets!($loss, $n64, &mut rng));
        let bv = random_vec(N, &mut rng);
        let b64: Box<[f64; N]> = boxed_vec(bv.iter().map(|v| *v as f32 as f64).collect());
        let b32: Box<[f32; N]> = bv.iter().map(|v| *v as f32).collect::<Vec<_>>().try_into().unwrap();
        let h = dense_hessian!($n64, net64, &x64, &t64);
        let eig = sym_eigenvalues(&h);
        for eps in f32_eps_choices(&eig) {
            let c = cond(&eig, eps);
            assert!(c <= 1e3, "{} seed {seed}: eps {eps:e} gives cond {c:e} > 1e3", stringify!($n64));
            let mut x64s: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
            let mut cv64 = boxed_zeroed::<$c64>();
            let i64_ = net64.hessian_solve_in(&mut cv64, &x64, &t64, eps, &b64, &mut x64s).unwrap();
            let mut cv32 = boxed_zeroed::<$c32>();
            net32.curvature_into(&mut cv32, &x32, &t32).unwrap();
            let mut x32s: Box<[f32; N]> = vec![0.0f32; N].try_into().unwrap();
            let mut f = cv32.factor(eps as f32).unwrap();
            assert_eq!(f.inertia(), i64_, "f32 and f64 inertia differ at eps {eps:e}");
            f.solve(&b32, &mut x32s).unwrap();
            let plain = rel_err(&x32s.iter().map(|v| *v as f64).collect::<Vec<_>>(), &x64s[..]);
            let mut x32r: Box<[f32; N]> = vec![0.0f32; N].try_into().unwrap();
            let mut cv32b = boxed_zeroed::<$c32>();
            net32.hessian_solve_in(&mut cv32b, &x32, &t32, eps as f32, &b32, &mut x32r).unwrap();
            let refined = rel_err(&x32r.iter().map(|v| *v as f64).collect::<Vec<_>>(), &x64s[..]);
            let bound = F32_FACTOR * c * f32::EPSILON as f64;
            assert!(
                refined <= bound && plain <= bound,
                "{} seed {seed} eps {eps:e} cond {c:e}: f32 vs f64 rel err plain {plain:e} refined {refined:e} > {bound:e}",
                stringify!($n32)
            );
            $rows.push(F32Row { arch: stringify!($n32), seed, eps, cond: c, negative: i64_.negative, plain, refined, bound });
        }
    }};
}

#[test]
fn f32_agrees_with_f64() {
    let mut rows = Vec::new();
    for seed in 0..3 {
        f32_vs_f64!(
            rows,
            MixF32,
            MixF32Curvature,
            MixF64,
            MixF64Curvature,
            softmax,
            seed = seed
        );
        f32_vs_f64!(
            rows,
            TanhF32,
            TanhF32Curvature,
            TanhF64,
            TanhF64Curvature,
            mse,
            seed = seed
        );
    }
    let mut s = String::from(
        "| arch | seed | eps | cond | negative eigs of H+eps I | f32 plain rel err | f32 hessian_solve rel err | err / (cond u32) | bound |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let u = f32::EPSILON as f64;
        s += &format!(
            "| {} | {} | {:.3e} | {:.2e} | {} | {:.2e} | {:.2e} | {:.2} | {:.1e} |\n",
            r.arch,
            r.seed,
            r.eps,
            r.cond,
            r.negative,
            r.plain,
            r.refined,
            r.refined.max(r.plain) / (r.cond * u),
            r.bound
        );
    }
    println!("{s}");
}

// ---------------------------------------------------------------------------------------------
// Depth 512

/// N 10222, depth 512.
#[tall_skinny_net(batch = 2)]
struct Deep512 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 510],
    c: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

#[test]
fn depth512_residual() {
    const N: usize = Deep512::N_PARAMS;
    let eps = 1e-3;
    let mut ws = boxed_zeroed::<Deep512Workspace>();
    let mut curv = boxed_zeroed::<Deep512Curvature>();
    for seed in 0..2u64 {
        let net = random_net!(Deep512, seed, 0.05, 1.0);
        let mut rng = SplitMix64::new(3000 + seed);
        let x = inputs!(Deep512, &mut rng);
        let t = targets!(mse, Deep512, &mut rng);
        let b: Box<[f64; N]> = boxed_vec(random_vec(N, &mut rng));
        // (H + eps I) v - b / |b|, the product by the network's own hvp.
        let mut hv: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        let mut residual = |v: &[f64; N], hv: &mut [f64; N]| {
            net.hvp_in(&mut ws, &x, &t, v, hv).unwrap();
            let r: Vec<f64> = (0..N).map(|i| hv[i] + eps * v[i] - b[i]).collect();
            norm(&r) / norm(&b[..])
        };
        let mut xs: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        let plain_inertia = {
            net.curvature_into(&mut curv, &x, &t).unwrap();
            let mut f = curv.factor(eps).unwrap();
            f.solve(&b, &mut xs).unwrap();
            f.inertia()
        };
        let plain = residual(&xs, &mut hv);
        let mut xr: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        let inertia = net
            .hessian_solve_in(&mut curv, &x, &t, eps, &b, &mut xr)
            .unwrap();
        let refined = residual(&xr, &mut hv);
        assert_eq!(inertia, plain_inertia);
        println!(
            "Deep512 seed {seed} eps {eps:e}: relative residual plain {plain:.2e}, hessian_solve {refined:.2e}; inertia {inertia:?}"
        );
        assert!(
            refined <= 1e-10,
            "Deep512 seed {seed}: residual {refined:e} (plain {plain:e})"
        );
        // The stored-block product at depth 512 against hvp + eps v (what refinement relies on).
        let v: Box<[f64; N]> = boxed_vec(random_vec(N, &mut rng));
        let mut av: Box<[f64; N]> = boxed_vec(vec![0.0; N]);
        curv.factor(eps).unwrap().apply(&v, &mut av).unwrap();
        net.hvp_in(&mut ws, &x, &t, &v, &mut hv).unwrap();
        let want: Vec<f64> = (0..N).map(|i| hv[i] + eps * v[i]).collect();
        let d = rel_err(&av[..], &want);
        println!("Deep512 seed {seed}: |apply(v) - (hvp(v) + eps v)| / |.| = {d:.2e}");
        assert!(
            d <= 1e-12,
            "Deep512 seed {seed}: apply differs from hvp by {d:e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Inertia and the stored-block product on small nets (nalgebra's eigenvalues as reference)

/// eps values probing the inertia: the standard ones, then `-eps` in the middle of the widest
/// gaps between consecutive eigenvalues of H: below zero (eps > 0, H + eps I indefinite with
/// fewer negative eigenvalues) and above zero (eps < 0, more negative eigenvalues).
fn inertia_eps_choices(eig: &[f64]) -> Vec<f64> {
    let lmax = eig.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let mut gaps: Vec<(f64, f64)> = eig
        .windows(2)
        .filter(|w| w[1] - w[0] > 1e-4 * lmax)
        .map(|w| (w[1] - w[0], -(w[0] + w[1]) / 2.0))
        .collect();
    gaps.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    let mut out = vec![1.0, 1e-2, 1e-4];
    out.extend(gaps.iter().filter(|g| g.1 > 0.0).take(3).map(|g| g.1));
    out.extend(gaps.iter().filter(|g| g.1 < 0.0).take(2).map(|g| g.1));
    out
}

macro_rules! inertia_apply {
    ($net:ident, $loss:ident, seeds = $seeds:expr) => {{
        const N: usize = $net::N_PARAMS;
        let name = stringify!($net);
        let mut checked = 0;
        for seed in $seeds {
            let net = random_net!($net, seed, 0.3, 1.0);
            let mut rng = SplitMix64::new(4000 + seed);
            let x = inputs!($net, &mut rng);
            let t = targets!($loss, $net, &mut rng);
            let h = dense_hessian!($net, net, &x, &t);
            let mut eig: Vec<f64> = h.to_nalgebra(0.0).symmetric_eigenvalues().iter().copied().collect();
            eig.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let lmax = eig.iter().fold(0.0f64, |m, l| m.max(l.abs()));
            let mut curv = net.curvature(&x, &t).unwrap();
            let b = random_vec(N, &mut rng);
            let v = random_vec(N, &mut rng);
            let b: &[f64; N] = b.as_slice().try_into().unwrap();
            let v: &[f64; N] = v.as_slice().try_into().unwrap();
            let mut lines = Vec::new();
            for eps in inertia_eps_choices(&eig) {
                let mut f = curv.factor(eps).unwrap_or_else(|e| panic!("{name} seed {seed} eps {eps:e}: {e:?}"));
                assert_eq!(f.eps(), eps);
                let got = f.inertia();
                let want = inertia_of(&eig, eps, 1e-9 * lmax);
                if let Some(want) = want {
                    assert_eq!(shifted_inertia(got), want, "{name} seed {seed} eps {eps:e}: inertia");
                    checked += 1;
                }
                // (H + eps I) v from the stored blocks against the dense product. Each entry
                // is a sum of O(depth) rounded terms of size <= |H| |v|.
                let mut out = [0.0; N];
                f.apply(v, &mut out).unwrap();
                let dense = h.mul_shifted(eps, v);
                let d = rel_err(&out, &dense);
                let scale = (h.frobenius() + eps.abs()) * norm(v) / norm(&dense);
                assert!(d <= 1e-13 * scale, "{name} seed {seed} eps {eps:e}: apply differs by {d:e} (scale {scale:e})");
                // The solve at the same eps, against the dense LU (skipped where the LU itself
                // cannot resolve 1e-9).
                let c = cond(&eig, eps);
                let mut xs = [0.0; N];
                let res = f.solve_refined(b, &mut xs, 2).unwrap().residual;
                let xd = lu_solve(&h, eps, b);
                let err = rel_err(&xs, &xd);
                if c <= 1e6 {
                    assert!(err <= REFINED_BOUND, "{name} seed {seed} eps {eps:e}: solve_refined rel err {err:e} (cond {c:e})");
                }
                lines.push(format!(
                    "  eps {eps:+.3e}: inertia {:?} dense {:?} | apply rel diff {d:.1e} | cond {c:.1e} refined err {err:.1e} res {res:.1e}",
                    (got.negative, got.zero, got.positive),
                    want
                ));
            }
            println!("{name} seed {seed} (N {N}, eigenvalues {:.3e}..{:.3e}):\n{}", eig[0], eig[N - 1], lines.join("\n"));
        }
        assert!(checked >= 10, "{name}: only {checked} inertia comparisons were decidable");
    }};
}

#[test]
fn inertia_and_apply_match_dense() {
    inertia_apply!(ResTanhB1, mse, seeds = 0..3u64);
    inertia_apply!(SigGeluSoft, softmax, seeds = 0..3u64);
    inertia_apply!(GeluRelu, mse, seeds = 0..2u64);
}

// ---------------------------------------------------------------------------------------------
// Errors and re-factoring

#[test]
fn non_finite_eps_is_an_error() {
    const N: usize = ResTanhB1::N_PARAMS;
    let net = random_net!(ResTanhB1, 3, 0.3, 1.0);
    let mut rng = SplitMix64::new(5000);
    let x = inputs!(ResTanhB1, &mut rng);
    let t = targets!(mse, ResTanhB1, &mut rng);
    let b: [f64; N] = random_vec(N, &mut rng).try_into().unwrap();
    let mut curv = net.curvature(&x, &t).unwrap();
    let mut out = [0.0; N];
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(curv.factor(bad).err(), Some(SolveError::NonFiniteEps));
        assert_eq!(
            net.hessian_solve(&x, &t, bad, &b, &mut out),
            Err(SolveError::NonFiniteEps)
        );
    }
    // The storage still factors and solves afterwards.
    let mut f = curv.factor(1.0).unwrap();
    f.solve(&b, &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn singular_hessian_gives_error_or_finite_solution() {
    // Batch 1: every Dense stage's Hxx has rank <= 1 per unit, so H itself is singular (the
    // dense eigenvalues below show a null space), and eps = 0 (or an eps far below rounding
    // of |H|) leaves H + eps I singular: Singular { stage } or a finite answer, never NaN.
    const N: usize = ResTanhB1::N_PARAMS;
    let net = random_net!(ResTanhB1, 4, 0.3, 1.0);
    let mut rng = SplitMix64::new(6000);
    let x = inputs!(ResTanhB1, &mut rng);
    let t = targets!(mse, ResTanhB1, &mut rng);
    let h = dense_hessian!(ResTanhB1, net, &x, &t);
    let eig = sym_eigenvalues(&h);
    let lmax = eig.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let null = eig.iter().filter(|l| l.abs() <= 1e-12 * lmax).count();
    assert!(
        null > 0,
        "expected a singular H at batch 1 (smallest |eig| / max {:e})",
        eig.iter().fold(f64::INFINITY, |m, l| m.min(l.abs())) / lmax
    );
    let b: [f64; N] = random_vec(N, &mut rng).try_into().unwrap();
    let mut curv = net.curvature(&x, &t).unwrap();
    let mut outcomes = Vec::new();
    for eps in [0.0, -0.0, 1e-300, f64::MIN_POSITIVE / 4.0] {
        let mut out = [f64::NAN; N];
        let factored = curv.factor(eps);
        let outcome = match factored {
            Err(SolveError::Singular { stage }) => {
                assert!(stage < ResTanhB1::DEPTH, "stage {stage} out of range");
                format!("factor: Singular {{ stage: {stage} }}")
            }
            Err(e) => panic!("eps {eps:e}: unexpected factor error {e:?}"),
            Ok(mut f) => match f.solve(&b, &mut out) {
                Ok(()) => {
                    assert!(
                        out.iter().all(|v| v.is_finite()),
                        "eps {eps:e}: NaN inside Ok"
                    );
                    format!("factor Ok {:?}, solve Ok (finite)", f.inertia())
                }
                Err(SolveError::NonFiniteResult) => {
                    format!("factor Ok {:?}, solve NonFiniteResult", f.inertia())
                }
                Err(e) => panic!("eps {eps:e}: unexpected solve error {e:?}"),
            },
        };
        let mut out = [f64::NAN; N];
        match net.hessian_solve(&x, &t, eps, &b, &mut out) {
            Ok(_) => assert!(
                out.iter().all(|v| v.is_finite()),
                "eps {eps:e}: hessian_solve NaN inside Ok"
            ),
            // Inaccurate: the refined residual of a numerically singular system is too large
            // to vouch for.
            Err(
                SolveError::Singular { .. }
                | SolveError::NonFiniteResult
                | SolveError::Inaccurate { .. },
            ) => {}
            Err(e) => panic!("eps {eps:e}: unexpected hessian_solve error {e:?}"),
        }
        outcomes.push(format!("eps {eps:e}: {outcome}"));
    }
    println!("ResTanhB1 (N {N}, {null} dense eigenvalues below 1e-12 max): {outcomes:?}");
}

#[test]
fn non_finite_vector_is_an_error() {
    const N: usize = SigGeluSoft::N_PARAMS;
    let net = random_net!(SigGeluSoft, 2, 0.3, 1.0);
    let mut rng = SplitMix64::new(7000);
    let x = inputs!(SigGeluSoft, &mut rng);
    let t = targets!(softmax, SigGeluSoft, &mut rng);
    let good: [f64; N] = random_vec(N, &mut rng).try_into().unwrap();
    let mut curv = net.curvature(&x, &t).unwrap();
    let mut out = [0.0; N];
    for (index, bad) in [
        (0, f64::NAN),
        (17, f64::INFINITY),
        (N - 1, f64::NEG_INFINITY),
    ] {
        let mut b = good;
        b[index] = bad;
        let want = Err(SolveError::Net(NetError::NonFiniteVector { index }));
        let mut f = curv.factor(1e-2).unwrap();
        assert_eq!(f.solve(&b, &mut out), want);
        assert_eq!(f.solve_refined(&b, &mut out, 2).map(|_| ()), want);
        assert_eq!(f.apply(&b, &mut out), want);
        assert_eq!(
            net.hessian_solve(&x, &t, 1e-2, &b, &mut out).map(|_| ()),
            want
        );
    }
    // Bad inputs reach the solve as network errors too.
    let mut xb = x;
    xb[1][0] = f64::NAN;
    assert_eq!(
        net.hessian_solve(&xb, &t, 1e-2, &good, &mut out)
            .map(|_| ()),
        Err(SolveError::Net(NetError::NonFiniteInput {
            sample: 1,
            index: 0
        }))
    );
}

#[test]
fn refactoring_reuses_the_curvature() {
    // One curvature factored at eps_a, eps_b, eps_a again gives bit-for-bit what fresh
    // curvatures give at each eps (the factor sweep reads only eps-independent blocks), and
    // the eps_b answer from the reused storage matches the dense LU.
    const N: usize = Mixed6::N_PARAMS;
    let net = random_net!(Mixed6, 9, 0.3, 1.0);
    let mut rng = SplitMix64::new(8000);
    let x = inputs!(Mixed6, &mut rng);
    let t = targets!(softmax, Mixed6, &mut rng);
    let b: [f64; N] = random_vec(N, &mut rng).try_into().unwrap();
    let solve = |curv: &mut Mixed6Curvature, eps: f64| {
        let mut f = curv.factor(eps).unwrap();
        assert_eq!(f.eps(), eps);
        let mut plain = [0.0; N];
        f.solve(&b, &mut plain).unwrap();
        let mut refined = [0.0; N];
        f.solve_refined(&b, &mut refined, 2).unwrap();
        (plain, refined, f.inertia())
    };
    let (eps_a, eps_b) = (1e-3, 0.3);
    let mut curv = boxed_zeroed::<Mixed6Curvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    let a1 = solve(&mut curv, eps_a);
    let b1 = solve(&mut curv, eps_b);
    let a2 = solve(&mut curv, eps_a);
    let fresh_a = solve(&mut net.curvature(&x, &t).unwrap(), eps_a);
    let fresh_b = solve(&mut net.curvature(&x, &t).unwrap(), eps_b);
    assert_eq!(a1, fresh_a);
    assert_eq!(a2, fresh_a);
    assert_eq!(b1, fresh_b);
    assert_ne!(a1.0, b1.0);
    let h = dense_hessian!(Mixed6, net, &x, &t);
    let xd = lu_solve(&h, eps_b, &b);
    let err = rel_err(&b1.1, &xd);
    assert!(err <= REFINED_BOUND, "refactored solve rel err {err:e}");
}
