//! The paper's block-tridiagonal block LU (`baselines::paper_solve`) on generated nets.
//!
//! (a) The dense Hessian assembled from the per-stage blocks (`StageView::dense_blocks`,
//!     through the quadratic-form identity of docs/math.md section 3) equals the one from `hvp`
//!     columns: an independent check of the dense block view.
//! (b) `paper_solve` agrees with a dense full-pivot LU solve of `H + eps I` (H from `hvp`)
//!     and with the generated Riccati `hessian_solve`.
//!
//! Parameters are drawn at scale 0.8 so that H is indefinite in most cases (the test counts
//! them and requires some); eps = 1, 1e-2, 1e-4.
use nalgebra::{DMatrix, DVector};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;
use tall_skinny_baselines::{dense_matrix, paper_solve, BaselineError, PaperBlocks};

#[tall_skinny_net(batch = 1)]
struct MixMse1 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Sigmoid>; 2],
    c: DenseNoBias<3, 3, Gelu>,
    d: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 3)]
struct MixSoftmax3 {
    a: Dense<3, 4, Softplus>,
    b: [Residual<4, Tanh>; 2],
    c: DenseNoBias<4, 3, Sin>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 1)]
struct Softmax1 {
    a: DenseNoBias<2, 4, Silu>,
    b: Residual<4, Tanh>,
    c: Dense<4, 3, Tanh>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 3)]
struct Mse3 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Gelu>; 3],
    c: Dense<3, 3, Relu>,
    d: Dense<3, 2, Sigmoid>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 3)]
struct OneStage3 {
    a: Dense<3, 2, Tanh>,
    loss: Mse<2>,
}

/// Relative error bound of a solve against the dense reference: `min(1e-9, 1e-14 cond)`.
/// Backward-stable solves give about `cond * 1e-16` (observed here at most `5e-16 cond`;
/// condition numbers up to ~4e5, printed with `--nocapture`).
fn solve_tol(cond: f64) -> f64 {
    (1e-14 * cond).min(1e-9)
}

/// What a net check saw, for the summary assertions.
#[derive(Default)]
struct Seen {
    cases: usize,
    indefinite: usize,
}

macro_rules! check_net {
    ($ty:ident, $seen:expr, $x:expr, $t:expr, $seed:expr) => {{
        const N: usize = $ty::N_PARAMS;
        let mut rng = SplitMix64::new($seed);
        let mut p = [0.0; N];
        for v in p.iter_mut() {
            *v = 0.8 * rng.symmetric();
        }
        let mut net = $ty::init(1);
        net.set_params(&p).unwrap();
        let (x, t) = ($x, $t);

        // Dense H from hvp columns.
        let h = dense_matrix(N, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap()
        })
        .unwrap();
        let scale = h.amax();

        // (a) Dense H from the stage blocks.
        let curv = net.curvature(&x, &t).unwrap();
        let blocks = PaperBlocks::collect(|f| curv.for_each_stage(f)).unwrap();
        assert_eq!(blocks.n_params(), N);
        assert_eq!(blocks.stages().len(), $ty::DEPTH);
        let hb = blocks.dense_hessian();
        let diff = (&hb - &h).amax();
        println!("{} seed {}: max |H_blocks - H_hvp| / max |H| = {:.1e}", stringify!($ty), $seed, diff / scale);
        assert!(diff <= 1e-12 * scale, "{}: |H_blocks - H_hvp| = {diff:e} (|H| = {scale:e})", stringify!($ty));
        for (l, s) in blocks.stages().iter().enumerate() {
            let asym = |m: &DMatrix<f64>| (m - m.transpose()).amax();
            assert!(asym(s.hxx()) <= 1e-14 * (1.0 + s.hxx().amax()), "stage {l} Hxx not symmetric");
            assert!(asym(s.hzz()) <= 1e-14 * (1.0 + s.hzz().amax()), "stage {l} Hzz not symmetric");
        }

        // (b) Solves.
        let hs = (&h + h.transpose()) * 0.5;
        let eig = hs.clone().symmetric_eigen().eigenvalues;
        let mut g = [0.0; N];
        for v in g.iter_mut() {
            *v = rng.symmetric();
        }
        let gv = DVector::from_column_slice(&g);
        for eps in [1.0, 1e-2, 1e-4] {
            let k = &hs + DMatrix::<f64>::identity(N, N) * eps;
            let cond = eig.iter().map(|e| (e + eps).abs()).fold(0.0, f64::max)
                / eig.iter().map(|e| (e + eps).abs()).fold(f64::INFINITY, f64::min);
            let xd = k.clone().full_piv_lu().solve(&gv).unwrap();
            let xp = DVector::from_vec(paper_solve(&blocks, eps, &g).unwrap());
            let mut xs = [0.0; N];
            net.hessian_solve(&x, &t, eps, &g, &mut xs).unwrap();
            let xs = DVector::from_column_slice(&xs);
            let rel_dense = (&xp - &xd).norm() / xd.norm();
            let rel_gen = (&xp - &xs).norm() / xs.norm();
            let berr = (&k * &xp - &gv).norm() / (k.norm() * xp.norm());
            println!(
                "{} seed {} eps {eps:e}: N {N} cond {cond:.1e} neg {} | paper vs dense {rel_dense:.1e}, vs hessian_solve {rel_gen:.1e}, backward {berr:.1e}",
                stringify!($ty), $seed, eig.iter().filter(|&&e| e + eps < 0.0).count()
            );
            assert!(rel_dense < solve_tol(cond), "{}: paper vs dense {rel_dense:e} (cond {cond:e})", stringify!($ty));
            assert!(rel_gen < solve_tol(cond), "{}: paper vs hessian_solve {rel_gen:e} (cond {cond:e})", stringify!($ty));
            assert!(berr < 1e-13, "{}: backward error {berr:e}", stringify!($ty));
            $seen.cases += 1;
            if eig.iter().any(|&e| e + eps < 0.0) {
                $seen.indefinite += 1;
            }
        }
    }};
}

fn inputs<const I: usize, const B: usize>(rng: &mut SplitMix64) -> [[f64; I]; B] {
    core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()))
}

#[test]
fn batch_one_nets() {
    let mut seen = Seen::default();
    let mut rng = SplitMix64::new(42);
    for seed in 0..5 {
        check_net!(
            MixMse1,
            seen,
            inputs::<2, 1>(&mut rng),
            inputs::<2, 1>(&mut rng),
            seed
        );
        check_net!(
            Softmax1,
            seen,
            inputs::<2, 1>(&mut rng),
            [(seed as usize) % 3],
            seed
        );
    }
    assert_eq!(seen.cases, 30);
    assert!(
        seen.indefinite >= 10,
        "only {} indefinite systems",
        seen.indefinite
    );
}

#[test]
fn batch_three_nets() {
    let mut seen = Seen::default();
    let mut rng = SplitMix64::new(43);
    for seed in 0..5 {
        check_net!(MixSoftmax3, seen, inputs::<3, 3>(&mut rng), [0, 2, 1], seed);
        check_net!(
            Mse3,
            seen,
            inputs::<2, 3>(&mut rng),
            inputs::<2, 3>(&mut rng),
            seed
        );
        check_net!(
            OneStage3,
            seen,
            inputs::<3, 3>(&mut rng),
            inputs::<2, 3>(&mut rng),
            seed
        );
    }
    assert_eq!(seen.cases, 45);
    assert!(
        seen.indefinite >= 10,
        "only {} indefinite systems",
        seen.indefinite
    );
}

/// The blocks describe the Hessian, not the solve: collecting them after a factorisation
/// (which overwrites the intermediate value Hessians) gives the same blocks.
#[test]
fn blocks_do_not_depend_on_factoring() {
    let net = MixSoftmax3::init(9);
    let x = [[0.3, -0.7, 0.1], [1.0, 0.2, -0.4], [-0.5, 0.5, 0.9]];
    let t = [2, 0, 1];
    let mut curv = net.curvature(&x, &t).unwrap();
    let before = PaperBlocks::collect(|f| curv.for_each_stage(f)).unwrap();
    curv.factor(1e-3).unwrap();
    let after = PaperBlocks::collect(|f| curv.for_each_stage(f)).unwrap();
    assert_eq!(before.hl(), after.hl());
    for (s, q) in before.stages().iter().zip(after.stages()) {
        assert_eq!(
            (s.a(), s.b(), s.hxx(), s.hxz(), s.hzz()),
            (q.a(), q.b(), q.hxx(), q.hxz(), q.hzz())
        );
    }
}

#[test]
fn bad_rhs_is_an_error() {
    let net = MixMse1::init(3);
    let curv = net.curvature(&[[0.1, 0.2]], &[[0.3, -0.4]]).unwrap();
    let blocks = PaperBlocks::collect(|f| curv.for_each_stage(f)).unwrap();
    let n = MixMse1::N_PARAMS;
    let mut g = vec![1.0; n];
    assert_eq!(
        paper_solve(&blocks, 1e-3, &g[1..]),
        Err(BaselineError::LengthMismatch {
            expected: n,
            found: n - 1
        })
    );
    assert_eq!(
        paper_solve(&blocks, f64::INFINITY, &g),
        Err(BaselineError::NonFiniteEps)
    );
    g[7] = f64::NAN;
    assert_eq!(
        paper_solve(&blocks, 1e-3, &g),
        Err(BaselineError::NonFiniteRhs { index: 7 })
    );
}
