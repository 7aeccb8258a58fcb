//! Behaviour on adversarial input: one test per row of the table in README ("Behaviour on
//! adversarial input"). Each asserts the documented outcome: the exact error variant, or a
//! finite result checked against an independent reference (the dense Hessian from `hvp`
//! columns solved by partial-pivoting LU, or the plain-f64 reference evaluator and central
//! differences), never a NaN or infinity inside `Ok`, never a panic, never a hang.
//!
//! Rows that expose a bug in the solver (runtime/src/stage/, runtime/src/linalg/ldlt.rs) are `#[ignore]`d with
//! the reason, and listed as bugs in the table.

#[allow(unused_macros, unused_imports)]
use crate::common::{ref_loss, Act, Kind, LayerSpec, LossSpec, Spec, Target};
use crate::solve_common::{cond, dense_from_hvp, lu_solve, rel_err, sym_eigenvalues, Mat};
use tall_skinny::boxed_zeroed;
use tall_skinny::prelude::*;
use tall_skinny::runtime::{Inertia, SplitMix64};

// ---------------------------------------------------------------------------------------------
// Nets

/// N 66, batch 2 (stage input rank 2 < I + 1: H is singular).
#[tall_skinny_net(batch = 2)]
pub struct Small {
    inp: Dense<3, 4, Tanh>,
    body: [Residual<4, Tanh>; 2],
    head: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

/// N 29, batch 8 (every stage has full input rank: H can be non-singular).
#[tall_skinny_net(batch = 8)]
pub struct Wide {
    inp: Dense<2, 3, Sigmoid>,
    body: Residual<3, Softplus>,
    head: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

/// N 27, batch 3, softmax.
#[tall_skinny_net(batch = 3)]
pub struct Soft {
    inp: Dense<2, 4, Gelu>,
    head: DenseNoBias<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// N 22, batch 4, a Relu layer that can be killed.
#[tall_skinny_net(batch = 4)]
pub struct ReluNet {
    inp: Dense<2, 4, Relu>,
    head: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

/// N 12, batch 2, f32.
#[tall_skinny_net(batch = 2, scalar = f32)]
pub struct Small32 {
    inp: Dense<2, 2, Tanh>,
    head: Dense<2, 2, Identity>,
    loss: Mse<2>,
}

fn spec_small() -> Spec {
    let l = |kind, i, o, act| LayerSpec {
        kind,
        inputs: i,
        outputs: o,
        act,
    };
    Spec::new(
        vec![
            vec![l(Kind::Dense, 3, 4, Act::Tanh)],
            vec![l(Kind::Residual, 4, 4, Act::Tanh); 2],
            vec![l(Kind::Dense, 4, 2, Act::Identity)],
        ],
        LossSpec::Mse(2),
        2,
    )
}

fn rand_vec<const N: usize>(seed: u64, scale: f64) -> [f64; N] {
    let mut rng = SplitMix64::new(seed);
    core::array::from_fn(|_| scale * (2.0 * rng.next_f64() - 1.0))
}

fn rand_batch<const W: usize, const B: usize>(seed: u64, scale: f64) -> [[f64; W]; B] {
    let mut rng = SplitMix64::new(seed);
    core::array::from_fn(|_| core::array::from_fn(|_| scale * (2.0 * rng.next_f64() - 1.0)))
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// The dense `H` of a net at `(x, t)` from `N` hvp columns, and its eigenvalues.
macro_rules! dense_h {
    ($net:expr, $x:expr, $t:expr, $n:expr) => {{
        let (h, _) = dense_from_hvp($n, |v, out| {
            let v: &[f64; { $n }] = v.try_into().unwrap();
            let out: &mut [f64; { $n }] = out.try_into().unwrap();
            $net.hvp($x, $t, v, out).unwrap();
        });
        let eig = sym_eigenvalues(&h);
        (h, eig)
    }};
}

/// Asserts `x` solves `(H + eps I) x = b` as well as its conditioning allows:
/// `|x - x_LU| / |x_LU| <= 100 sqrt(N) u cond(H + eps I)`.
fn assert_solves(h: &Mat, eig: &[f64], eps: f64, b: &[f64], x: &[f64]) -> f64 {
    assert!(all_finite(x), "non-finite entry in Ok result");
    let x_lu = lu_solve(h, eps, b);
    let c = cond(eig, eps);
    let err = rel_err(x, &x_lu);
    let bar = 100.0 * (x.len() as f64).sqrt() * f64::EPSILON / 2.0 * c;
    assert!(
        err <= bar.min(1.0),
        "rel err {err:e} vs LU, bar {bar:e} (cond {c:e})"
    );
    err
}

// ---------------------------------------------------------------------------------------------
// Weights

#[test]
fn saturated_activations_weights_times_100() {
    let mut net = Small::init(1);
    let mut p = [0.0; Small::N_PARAMS];
    net.params(&mut p);
    for v in p.iter_mut() {
        *v *= 100.0;
    }
    net.set_params(&p).unwrap();
    let x = rand_batch::<3, 2>(2, 1.0);
    let t = rand_batch::<2, 2>(3, 1.0);
    // loss against the reference evaluator
    let tt = Target::Mse(t.iter().flatten().copied().collect());
    let xx: Vec<f64> = x.iter().flatten().copied().collect();
    let l = net.loss(&x, &t).unwrap();
    let l_ref = ref_loss(&spec_small(), &p, &xx, &tt);
    assert!((l - l_ref).abs() <= 1e-12 * l_ref.abs(), "{l} vs {l_ref}");
    let mut g = [0.0; Small::N_PARAMS];
    net.gradient(&x, &t, &mut g).unwrap();
    assert!(all_finite(&g));
    let (h, eig) = dense_h!(net, &x, &t, Small::N_PARAMS);
    let b = rand_vec::<{ Small::N_PARAMS }>(4, 1.0);
    let nh = eig.iter().map(|l| l.abs()).fold(0.0, f64::max);
    for eps in [1e-2 * nh, 1.0] {
        let mut xs = [0.0; Small::N_PARAMS];
        net.hessian_solve(&x, &t, eps, &b, &mut xs).unwrap();
        assert_solves(&h, &eig, eps, &b, &xs);
    }
}

#[test]
fn all_zero_weights() {
    let net = Small::ZERO;
    let x = rand_batch::<3, 2>(2, 1.0);
    let t = rand_batch::<2, 2>(3, 1.0);
    let mut g = [0.0; Small::N_PARAMS];
    let l = net.gradient(&x, &t, &mut g).unwrap();
    // outputs are all 0: loss = |t|^2 / (2B)
    let want: f64 = t.iter().flatten().map(|v| v * v).sum::<f64>() / 4.0;
    assert!((l - want).abs() <= 1e-15 * want);
    assert!(all_finite(&g));
    let (h, eig) = dense_h!(net, &x, &t, Small::N_PARAMS);
    let b = rand_vec::<{ Small::N_PARAMS }>(4, 1.0);
    // eps = 0: H is singular (batch 2 < 4 inputs + 1): a Singular error
    let mut xs = [0.0; Small::N_PARAMS];
    assert!(matches!(
        net.hessian_solve(&x, &t, 0.0, &b, &mut xs),
        Err(SolveError::Singular { .. })
    ));
    // eps > 0: the correct solution
    let mut xs = [0.0; Small::N_PARAMS];
    net.hessian_solve(&x, &t, 1e-3, &b, &mut xs).unwrap();
    assert_solves(&h, &eig, 1e-3, &b, &xs);
}

/// Every Relu of the first layer is dead (bias -100): those parameters have zero gradient
/// and zero rows in H, so H is exactly singular at any batch.
fn dead_relu() -> (ReluNet, [[f64; 2]; 4], [[f64; 2]; 4]) {
    let mut net = ReluNet::init(5);
    let mut p = [0.0; ReluNet::N_PARAMS];
    net.params(&mut p);
    for k in 0..4 {
        p[8 + k] = -100.0; // inp.b
    }
    net.set_params(&p).unwrap();
    (net, rand_batch::<2, 4>(6, 1.0), rand_batch::<2, 4>(7, 1.0))
}

#[test]
fn dead_relu_layer_gradient_is_exactly_zero_there() {
    let (net, x, t) = dead_relu();
    let mut g = [0.0; ReluNet::N_PARAMS];
    net.gradient(&x, &t, &mut g).unwrap();
    assert!(g[..12].iter().all(|v| *v == 0.0), "{g:?}");
    assert!(all_finite(&g));
}

#[test]
fn dead_relu_eps_zero_is_singular() {
    let (net, x, t) = dead_relu();
    let b = rand_vec::<{ ReluNet::N_PARAMS }>(8, 1.0);
    let mut xs = [0.0; ReluNet::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 0.0, &b, &mut xs);
    assert!(matches!(r, Err(SolveError::Singular { .. })), "{r:?}");
}

#[test]
fn dead_relu_eps_positive_is_correct() {
    let (net, x, t) = dead_relu();
    let (h, eig) = dense_h!(net, &x, &t, ReluNet::N_PARAMS);
    let b = rand_vec::<{ ReluNet::N_PARAMS }>(8, 1.0);
    for eps in [1.0, 1e-3, 1e-6] {
        let mut xs = [0.0; ReluNet::N_PARAMS];
        net.hessian_solve(&x, &t, eps, &b, &mut xs).unwrap();
        assert_solves(&h, &eig, eps, &b, &xs);
        // on the dead parameters the solve is exactly b / eps (H is zero there)
        for k in 0..12 {
            assert!(
                (xs[k] - b[k] / eps).abs() <= 1e-12 * (b[k] / eps).abs(),
                "{k}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// eps

fn small_problem() -> (Small, [[f64; 3]; 2], [[f64; 2]; 2], [f64; Small::N_PARAMS]) {
    (
        Small::init(11),
        rand_batch::<3, 2>(12, 1.0),
        rand_batch::<2, 2>(13, 1.0),
        rand_vec::<{ Small::N_PARAMS }>(14, 1.0),
    )
}

fn wide_problem() -> (Wide, [[f64; 2]; 8], [[f64; 2]; 8], [f64; Wide::N_PARAMS]) {
    (
        Wide::init(21),
        rand_batch::<2, 8>(22, 1.0),
        rand_batch::<2, 8>(23, 1.0),
        rand_vec::<{ Wide::N_PARAMS }>(24, 1.0),
    )
}

#[test]
fn eps_non_finite_is_an_error() {
    let (net, x, t, b) = small_problem();
    let mut curv = net.curvature(&x, &t).unwrap();
    for eps in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(curv.factor(eps), Err(SolveError::NonFiniteEps)));
        let mut xs = [0.0; Small::N_PARAMS];
        assert_eq!(
            net.hessian_solve(&x, &t, eps, &b, &mut xs).map(|_| ()),
            Err(SolveError::NonFiniteEps)
        );
    }
}

#[test]
fn eps_zero_on_singular_h_is_singular() {
    let (net, x, t, b) = small_problem();
    let mut xs = [0.0; Small::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 0.0, &b, &mut xs);
    println!("eps 0, singular H: {r:?}");
    assert!(matches!(r, Err(SolveError::Singular { .. })), "{r:?}");
}

/// Negative eps is a legitimate shift: the solve of `(H + eps I) x = b` with `H + eps I`
/// indefinite, and the inertia counts its negative eigenvalues.
#[test]
fn eps_negative_solves_the_shifted_system() {
    let (net, x, t, b) = wide_problem();
    let (h, eig) = dense_h!(net, &x, &t, Wide::N_PARAMS);
    for eps in [-1e-3, -0.1] {
        let mut xs = [0.0; Wide::N_PARAMS];
        let inertia = net.hessian_solve(&x, &t, eps, &b, &mut xs).unwrap();
        assert_solves(&h, &eig, eps, &b, &xs);
        let neg = eig.iter().filter(|l| *l + eps < 0.0).count();
        assert_eq!(
            inertia,
            Inertia {
                negative: neg,
                zero: 0,
                positive: eig.len() - neg
            }
        );
    }
}

/// eps = 1e-300: on a net whose H is non-singular the answer is H^{-1} b; on a singular H
/// the true answer (of size |b| / eps ~ 1e300) is not representable in any useful sense.
#[test]
fn eps_1e_minus_300() {
    let (net, x, t, b) = wide_problem();
    let (h, eig) = dense_h!(net, &x, &t, Wide::N_PARAMS);
    let mut xs = [0.0; Wide::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 1e-300, &b, &mut xs);
    match r {
        Ok(_) => {
            assert_solves(&h, &eig, 1e-300, &b, &xs);
        }
        Err(e) => panic!("non-singular H, eps 1e-300: {e:?}"),
    }
    let (net, x, t, b) = small_problem();
    let mut xs = [0.0; Small::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 1e-300, &b, &mut xs);
    println!("singular H, eps 1e-300: {r:?}");
    assert!(
        matches!(
            r,
            Err(SolveError::Singular { .. }) | Err(SolveError::NonFiniteResult)
        ),
        "singular H, eps 1e-300: {r:?}"
    );
}

/// |eps| = 1e300 up to f64::MAX, either sign: (H + eps I)^{-1} b = b / eps to within
/// |H| / |eps| (the answer is tiny, down to subnormal numbers at f64::MAX, where the
/// absolute spacing 5e-324 limits it).
#[test]
fn eps_huge_either_sign() {
    let (net, x, t, b) = small_problem();
    for eps in [1e300, -1e300, f64::MAX, -f64::MAX] {
        let mut xs = [0.0; Small::N_PARAMS];
        net.hessian_solve(&x, &t, eps, &b, &mut xs).unwrap();
        assert!(all_finite(&xs));
        for i in 0..b.len() {
            let want = b[i] / eps;
            assert!(
                (xs[i] - want).abs() <= 1e-14 * want.abs() + 1e-320,
                "eps {eps:e}, {i}: {} vs {want}",
                xs[i]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs, targets, vectors

#[test]
fn tiny_inputs_are_exact() {
    let (net, _, t, _) = small_problem();
    let x = rand_batch::<3, 2>(30, 1e-300);
    let mut g = [0.0; Small::N_PARAMS];
    let l = net.gradient(&x, &t, &mut g).unwrap();
    assert!(all_finite(&g) && l.is_finite());
    // x ~ 1e-300 contributes nothing at f64 precision: same as x = 0
    let mut g0 = [0.0; Small::N_PARAMS];
    let l0 = net.gradient(&[[0.0; 3]; 2], &t, &mut g0).unwrap();
    assert!((l - l0).abs() <= 1e-15 * l0.abs());
    // (the first layer's W gradient is proportional to x: ~1e-300 instead of 0)
    let g0_max = g0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for i in 0..g.len() {
        assert!((g[i] - g0[i]).abs() <= 1e-15 * g0_max, "{i}");
    }
    let b = rand_vec::<{ Small::N_PARAMS }>(31, 1.0);
    let (h, eig) = dense_h!(net, &x, &t, Small::N_PARAMS);
    let mut xs = [0.0; Small::N_PARAMS];
    net.hessian_solve(&x, &t, 1e-2, &b, &mut xs).unwrap();
    assert_solves(&h, &eig, 1e-2, &b, &xs);
}

/// Huge inputs: saturating first layer (tanh) gives a finite, correct answer; an Identity
/// first layer overflows the loss: NonFiniteResult.
#[test]
fn huge_inputs() {
    let (net, _, t, _) = small_problem();
    let x = rand_batch::<3, 2>(32, 1e300);
    let mut g = [0.0; Small::N_PARAMS];
    let l = net.gradient(&x, &t, &mut g).unwrap();
    assert!(l.is_finite() && all_finite(&g));
    let xx: Vec<f64> = x.iter().flatten().copied().collect();
    let tt = Target::Mse(t.iter().flatten().copied().collect());
    let mut p = [0.0; Small::N_PARAMS];
    net.params(&mut p);
    let l_ref = ref_loss(&spec_small(), &p, &xx, &tt);
    assert!((l - l_ref).abs() <= 1e-13 * l_ref.abs(), "{l} vs {l_ref}");

    let mut s = Soft::init(3);
    let mut p = [0.0; Soft::N_PARAMS];
    s.params(&mut p);
    s.set_params(&p).unwrap();
    for scale in [1e300, 1e308] {
        let x = rand_batch::<2, 3>(33, scale);
        let mut g = [0.0; Soft::N_PARAMS];
        let r = s.gradient(&x, &[0, 1, 2], &mut g);
        println!("softmax net, inputs {scale:e}: {r:?}");
        match r {
            Ok(l) => {
                assert!(l.is_finite() && all_finite(&g));
                assert_eq!(s.loss(&x, &[0, 1, 2]), Ok(l));
            }
            Err(e) => assert_eq!(e, NetError::NonFiniteResult),
        }
    }
}

#[test]
fn non_finite_inputs() {
    let (net, x, t, b) = small_problem();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut xb = x;
        xb[1][2] = bad;
        let want = NetError::NonFiniteInput {
            sample: 1,
            index: 2,
        };
        assert_eq!(net.loss(&xb, &t), Err(want));
        assert_eq!(
            net.gradient(&xb, &t, &mut [0.0; Small::N_PARAMS]),
            Err(want)
        );
        assert_eq!(net.hvp(&xb, &t, &b, &mut [0.0; Small::N_PARAMS]), Err(want));
        assert_eq!(
            net.hessian_solve(&xb, &t, 1.0, &b, &mut [0.0; Small::N_PARAMS])
                .map(|_| ()),
            Err(SolveError::Net(want))
        );
    }
}

#[test]
fn non_finite_targets() {
    let (net, x, t, b) = small_problem();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut tb = t;
        tb[0][1] = bad;
        let want = NetError::NonFiniteTarget {
            sample: 0,
            index: 1,
        };
        assert_eq!(net.loss(&x, &tb), Err(want));
        assert_eq!(
            net.gradient(&x, &tb, &mut [0.0; Small::N_PARAMS]),
            Err(want)
        );
        assert_eq!(net.hvp(&x, &tb, &b, &mut [0.0; Small::N_PARAMS]), Err(want));
        assert_eq!(
            net.hessian_solve(&x, &tb, 1.0, &b, &mut [0.0; Small::N_PARAMS])
                .map(|_| ()),
            Err(SolveError::Net(want))
        );
    }
}

#[test]
fn non_finite_parameters() {
    let (net, x, t, b) = small_problem();
    let mut p = [0.0; Small::N_PARAMS];
    net.params(&mut p);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut n2 = Small::init(11);
        let mut pb = p;
        pb[40] = bad;
        let want = NetError::NonFiniteParameter { index: 40 };
        assert_eq!(n2.set_params(&pb), Err(want));
        // written straight into a public field: every call reports it
        n2.head.b[1] = bad;
        let want = NetError::NonFiniteParameter {
            index: Small::OFFSET_HEAD + 9,
        };
        assert_eq!(n2.check_params(), Err(want));
        assert_eq!(n2.loss(&x, &t), Err(want));
        assert_eq!(n2.gradient(&x, &t, &mut [0.0; Small::N_PARAMS]), Err(want));
        assert_eq!(n2.hvp(&x, &t, &b, &mut [0.0; Small::N_PARAMS]), Err(want));
        assert_eq!(
            n2.hessian_solve(&x, &t, 1.0, &b, &mut [0.0; Small::N_PARAMS])
                .map(|_| ()),
            Err(SolveError::Net(want))
        );
    }
}

#[test]
fn non_finite_v_and_b() {
    let (net, x, t, b) = small_problem();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut vb = b;
        vb[7] = bad;
        let want = NetError::NonFiniteVector { index: 7 };
        assert_eq!(net.hvp(&x, &t, &vb, &mut [0.0; Small::N_PARAMS]), Err(want));
        assert_eq!(
            net.hessian_solve(&x, &t, 1.0, &vb, &mut [0.0; Small::N_PARAMS])
                .map(|_| ()),
            Err(SolveError::Net(want))
        );
        let mut curv = net.curvature(&x, &t).unwrap();
        let mut f = curv.factor(1.0).unwrap();
        let mut out = [0.0; Small::N_PARAMS];
        let r = f.solve_refined(&vb, &mut out, 2);
        assert_eq!(r.map(|_| ()), Err(SolveError::Net(want)), "solve_refined");
    }
}

#[test]
fn huge_v_and_b_overflow_cleanly() {
    let (net, x, t, b) = small_problem();
    let vb = b.map(|v| v * 1e308);
    let r = net.hvp(&x, &t, &vb, &mut [0.0; Small::N_PARAMS]);
    println!("v ~ 1e308: {r:?}");
    assert!(
        matches!(r, Err(NetError::NonFiniteResult)) || r.is_ok(),
        "{r:?}"
    );
    let mut out = [0.0; Small::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 1e-3, &vb, &mut out);
    println!("b ~ 1e308: {r:?}");
    match r {
        Ok(_) => assert!(all_finite(&out)),
        Err(e) => assert_eq!(e, SolveError::NonFiniteResult),
    }
}

#[test]
fn labels_out_of_range() {
    let s = Soft::init(3);
    let x = rand_batch::<2, 3>(40, 1.0);
    let v = rand_vec::<{ Soft::N_PARAMS }>(41, 1.0);
    for bad in [3, 4, usize::MAX] {
        let lab = [0, bad, 1];
        let want = NetError::LabelOutOfRange {
            sample: 1,
            label: bad,
            classes: 3,
        };
        assert_eq!(s.loss(&x, &lab), Err(want));
        assert_eq!(s.gradient(&x, &lab, &mut [0.0; Soft::N_PARAMS]), Err(want));
        assert_eq!(s.hvp(&x, &lab, &v, &mut [0.0; Soft::N_PARAMS]), Err(want));
        assert_eq!(
            s.hessian_solve(&x, &lab, 1.0, &v, &mut [0.0; Soft::N_PARAMS])
                .map(|_| ()),
            Err(SolveError::Net(want))
        );
    }
}

#[test]
fn f32_saturated_and_huge_eps() {
    let mut net = Small32::init(50);
    let mut p = [0.0f32; Small32::N_PARAMS];
    net.params(&mut p);
    net.set_params(&p.map(|v| v * 100.0)).unwrap();
    let x = [[0.3f32, -0.7], [1.0, 0.5]];
    let t = [[0.1f32, 0.2], [-0.3, 0.4]];
    let b = [1.0f32; Small32::N_PARAMS];
    for eps in [1e-3f32, 1.0, 1e30, f32::MAX] {
        let mut xs = [0.0f32; Small32::N_PARAMS];
        let r = net.hessian_solve(&x, &t, eps, &b, &mut xs);
        println!("f32 saturated, eps {eps:e}: {r:?}");
        match r {
            Ok(_) => assert!(xs.iter().all(|v| v.is_finite()), "eps {eps}"),
            Err(e) => assert!(
                matches!(e, SolveError::Singular { .. } | SolveError::NonFiniteResult),
                "eps {eps}: {e:?}"
            ),
        }
    }
    let mut curv = boxed_zeroed::<Small32Curvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    assert!(matches!(
        curv.factor(f32::NAN),
        Err(SolveError::NonFiniteEps)
    ));
}

/// The smallest eps there is (the subnormal 5e-324), and -1e-300: on a non-singular H the
/// answer is H^{-1} b; on a singular H a Singular error (1 / eps overflows).
#[test]
fn eps_subnormal_and_tiny_negative() {
    for eps in [5e-324, -1e-300] {
        let (net, x, t, b) = wide_problem();
        let (h, eig) = dense_h!(net, &x, &t, Wide::N_PARAMS);
        let mut xs = [0.0; Wide::N_PARAMS];
        let r = net.hessian_solve(&x, &t, eps, &b, &mut xs);
        println!("non-singular H, eps {eps:e}: {r:?}");
        r.unwrap();
        assert_solves(&h, &eig, eps, &b, &xs);
        let (net, x, t, b) = small_problem();
        let mut xs = [0.0; Small::N_PARAMS];
        let r = net.hessian_solve(&x, &t, eps, &b, &mut xs);
        println!("singular H, eps {eps:e}: {r:?}");
        assert!(matches!(r, Err(SolveError::Singular { .. })), "{r:?}");
    }
    // f32: the smallest positive f32
    let net = Small32::init(51);
    let x = [[0.3f32, -0.7], [1.0, 0.5]];
    let t = [[0.1f32, 0.2], [-0.3, 0.4]];
    let mut xs = [0.0f32; Small32::N_PARAMS];
    let r = net.hessian_solve(&x, &t, 1e-45, &[1.0; Small32::N_PARAMS], &mut xs);
    println!("f32 singular H, eps 1e-45: {r:?}");
    assert!(matches!(r, Err(SolveError::Singular { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Curvature storage that does not describe the problem

/// `factor` on curvature storage that `curvature_into` never filled (all zeros, as `ZERO` /
/// `boxed_zeroed` give it) is `NoCurvature`, not a solve of `H = 0` (which would return
/// `b / eps` without complaint); so is `factor` after a `curvature_into` that failed, even
/// when the storage held a good curvature before.
#[test]
fn factor_on_unfilled_curvature_is_an_error() {
    let mut curv = boxed_zeroed::<SmallCurvature>();
    assert_eq!(curv.factor(1.0).map(|_| ()), Err(SolveError::NoCurvature));
    let s = Small::init(5);
    let x = rand_batch::<{ Small::INPUTS }, { Small::BATCH }>(63, 1.0);
    let t = rand_batch::<{ Small::OUTPUTS }, { Small::BATCH }>(64, 1.0);
    s.curvature_into(&mut curv, &x, &t).unwrap();
    assert!(curv.factor(1.0).is_ok());
    let mut bad = x;
    bad[0][0] = f64::NAN;
    assert!(s.curvature_into(&mut curv, &bad, &t).is_err());
    assert_eq!(curv.factor(1.0).map(|_| ()), Err(SolveError::NoCurvature));
    // The same for both Gauss-Newton forms.
    assert!(s.ggn_curvature_into(&mut curv, &bad, &t).is_err());
    assert_eq!(curv.factor(1.0).map(|_| ()), Err(SolveError::NoCurvature));
    let mut g = boxed_zeroed::<SmallGgn>();
    let b = rand_vec::<{ Small::N_PARAMS }>(65, 1.0);
    let mut out = [0.0; Small::N_PARAMS];
    assert_eq!(
        g.factor(1.0)
            .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ())),
        Err(SolveError::NoCurvature)
    );
    s.ggn_woodbury_into(&mut g, &x, &t).unwrap();
    assert!(g
        .factor(1.0)
        .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ()))
        .is_ok());
    assert!(s.ggn_woodbury_into(&mut g, &bad, &t).is_err());
    assert_eq!(
        g.factor(1.0)
            .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ())),
        Err(SolveError::NoCurvature)
    );
}

/// After a `curvature_into` that failed part-way with non-finite intermediate values (inputs
/// ~ 1e308 into a softmax net), `factor` reports an error (the stored blocks hold infinities).
#[test]
fn factor_after_curvature_overflow_in_the_forward_pass_is_an_error() {
    let s = Soft::init(3);
    let x = rand_batch::<2, 3>(61, 1.0);
    let lab = [0, 1, 2];
    let mut curv = boxed_zeroed::<SoftCurvature>();
    s.curvature_into(&mut curv, &x, &lab).unwrap();
    let huge = rand_batch::<2, 3>(62, 1e308);
    assert_eq!(
        s.curvature_into(&mut curv, &huge, &lab),
        Err(NetError::NonFiniteResult)
    );
    let r = curv.factor(1.0).map(|_| ());
    assert_eq!(r, Err(SolveError::NoCurvature));
}

/// Inputs from 1e150 to 1e200 through Relu and Identity layers: where `curvature_into` fails
/// (`NonFiniteResult` from the loss, at 3e154 and above, after the forward pass wrote its
/// blocks), the next `factor` is `NoCurvature`, never a solution from a mix of two
/// problems' blocks. Where it succeeds (up to 1e154), `H` ~ 1e300 makes `H + I` numerically
/// singular: `Singular`.
#[test]
fn factor_after_failed_curvature_is_an_error() {
    let net = ReluNet::init(5);
    let x = rand_batch::<2, 4>(63, 1.0);
    let t = rand_batch::<2, 4>(64, 1.0);
    let mut curv = boxed_zeroed::<ReluNetCurvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    for scale in [
        1e150, 1e152, 1e153, 3e153, 1e154, 3e154, 1e155, 1e160, 1e200,
    ] {
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let huge = rand_batch::<2, 4>(65, scale);
        let r1 = net.curvature_into(&mut curv, &huge, &t);
        let r = curv.factor(1.0).map(|_| ());
        println!("scale {scale:e}: curvature_into {r1:?}, factor {r:?}");
        if r1.is_err() {
            assert_eq!(r, Err(SolveError::NoCurvature), "scale {scale:e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The boundary: refinement, handles, stale storage, the Woodbury form at tiny eps, optimizer
// settings (the adversarial cases of issue 11 and their neighbours)

use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::solver::Factorable;

fn issue_small() -> (Small, [[f64; 3]; 2], [[f64; 2]; 2]) {
    (
        Small::init(7),
        rand_batch::<3, 2>(101, 1.0),
        rand_batch::<2, 2>(102, 1.0),
    )
}

/// `solve_refined` stops once the residual is exactly zero, whatever the step bound: at eps
/// = 2^100 the solve is exact (`b / eps` to the last bit, a power of two), so it makes no
/// correction even with `usize::MAX` allowed; and it never runs more steps than it gains from.
#[test]
fn refinement_stops_at_a_zero_residual() {
    let (net, x, t) = issue_small();
    let mut curv = boxed_zeroed::<SmallCurvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    let b = rand_vec::<{ Small::N_PARAMS }>(103, 1.0);
    let mut xs = [0.0; Small::N_PARAMS];
    let r = curv
        .factor(2f64.powi(100))
        .unwrap()
        .solve_refined(&b, &mut xs, usize::MAX)
        .unwrap();
    assert!(r.steps <= 2, "{r:?}");
    assert!(r.residual <= 4.0 * f64::EPSILON, "{r:?}");
    // A nonsingular shift: a handful of steps, not max_steps.
    let r = curv
        .factor(1e-3)
        .unwrap()
        .solve_refined(&b, &mut xs, usize::MAX)
        .unwrap();
    assert!(r.steps <= 6 && r.residual < 1e-13, "{r:?}");
    // b = 0: x = 0, residual 0, no step.
    let r = curv
        .factor(1e-3)
        .unwrap()
        .solve_refined(&[0.0; Small::N_PARAMS], &mut xs, usize::MAX)
        .unwrap();
    assert_eq!((r.residual, r.steps), (0.0, 0));
    assert!(xs.iter().all(|v| *v == 0.0));
}

/// The reported residual is the one of the returned `x`, checked here with the network's own
/// `hvp` (independent of the stored blocks), and refinement never makes `x` worse than the
/// plain solve.
#[test]
fn refinement_reports_the_residual_of_its_answer() {
    let (net, x, t) = issue_small();
    let (h, _) = dense_h!(net, &x, &t, Small::N_PARAMS);
    let mut curv = boxed_zeroed::<SmallCurvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    let b = rand_vec::<{ Small::N_PARAMS }>(104, 1.0);
    for eps in [1.0, 1e-2, 1e-4, 1e-6, -1e-3] {
        let mut f = curv.factor(eps).unwrap();
        let mut plain = [0.0; Small::N_PARAMS];
        f.solve(&b, &mut plain).unwrap();
        let mut xs = [0.0; Small::N_PARAMS];
        let r = match f.solve_refined(&b, &mut xs, 3) {
            Ok(r) => r,
            Err(SolveError::Inaccurate { residual, .. }) => {
                assert!(
                    residual > 1.5e-8,
                    "eps {eps:e}: Inaccurate below the bound ({residual:e})"
                );
                continue;
            }
            Err(e) => panic!("eps {eps:e}: {e}"),
        };
        let res = |v: &[f64; Small::N_PARAMS]| {
            let mut hv = [0.0; Small::N_PARAMS];
            net.hvp(&x, &t, v, &mut hv).unwrap();
            let r: Vec<f64> = (0..Small::N_PARAMS)
                .map(|i| b[i] - hv[i] - eps * v[i])
                .collect();
            rel_norm(&r, &b)
        };
        let (r_plain, r_ref) = (res(&plain), res(&xs));
        assert!(
            r_ref <= r_plain * (1.0 + 1e-6) + 1e-15,
            "eps {eps:e}: refined {r_ref:e} worse than plain {r_plain:e}"
        );
        // The reported residual agrees with the independent one within the rounding of a
        // residual evaluation, 8 sqrt(N) u (|H|_F |x| + |eps x| + |b|) / |b|.
        let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let noise = 8.0
            * (Small::N_PARAMS as f64).sqrt()
            * f64::EPSILON
            * ((h.frobenius() + eps.abs()) * n(&xs) + n(&b))
            / n(&b);
        assert!(
            (r.residual - r_ref).abs() <= 0.1 * r_ref + noise,
            "eps {eps:e}: reported {:e}, independent {r_ref:e} (rounding {noise:e})",
            r.residual
        );
    }
}

fn rel_norm(r: &[f64], b: &[f64]) -> f64 {
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    n(r) / n(b)
}

/// Huge right-hand sides do not overflow the norms of refinement (|b| ~ 1e200 in f64, 1e19 in
/// f32): the refined solve succeeds where the plain one does, with a small residual.
#[test]
fn refinement_norms_are_scaled() {
    let (net, x, t) = issue_small();
    let mut curv = boxed_zeroed::<SmallCurvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    let b = rand_vec::<{ Small::N_PARAMS }>(105, 1e200);
    let mut xs = [0.0; Small::N_PARAMS];
    let r = curv
        .factor(1e-2)
        .unwrap()
        .solve_refined(&b, &mut xs, 2)
        .unwrap();
    assert!(r.residual < 1e-12 && all_finite(&xs), "{r:?}");
    let n32 = Small32::init(3);
    let x32 = [[0.3f32, -0.5], [0.9, 0.1]];
    let t32 = [[0.2f32, 0.4], [-0.6, 0.8]];
    let mut c32 = boxed_zeroed::<Small32Curvature>();
    n32.curvature_into(&mut c32, &x32, &t32).unwrap();
    let b32: [f32; Small32::N_PARAMS] = core::array::from_fn(|i| 1e19 * ((i as f32) - 5.5));
    let mut x32s = [0.0f32; Small32::N_PARAMS];
    let r = c32
        .factor(1e-1)
        .unwrap()
        .solve_refined(&b32, &mut x32s, 2)
        .unwrap();
    assert!(
        r.residual < 1e-5 && x32s.iter().all(|v| v.is_finite()),
        "{r:?}"
    );
}

/// A failed factorisation leaves no handle to solve with (the type system says so: `factor`
/// returns `Err`); the blocks survive it, and the next factorisation at a good eps solves
/// the right system (against the dense LU).
#[test]
fn a_failed_factorisation_leaves_the_blocks_intact() {
    let (net, x, t) = issue_small();
    let (h, eig) = dense_h!(net, &x, &t, Small::N_PARAMS);
    let mut curv = boxed_zeroed::<SmallCurvature>();
    net.curvature_into(&mut curv, &x, &t).unwrap();
    let b = rand_vec::<{ Small::N_PARAMS }>(106, 1.0);
    let mut xs = [0.0; Small::N_PARAMS];
    assert!(curv.factor(1.0).is_ok());
    assert!(
        matches!(
            curv.factor(0.0).map(|_| ()),
            Err(SolveError::Singular { .. })
        ),
        "H is singular at batch 2"
    );
    curv.factor(1.0)
        .unwrap()
        .solve_refined(&b, &mut xs, 2)
        .unwrap();
    assert_solves(&h, &eig, 1.0, &b, &xs);
}

/// Through the `Model` trait, a storage filled at other parameters is `Stale`, an empty or
/// failed one `NoCurvature`, for the Hessian and the Gauss-Newton storages alike; and the
/// storages are snapshots: a solve after `set_params` still solves the system they hold
/// (bit for bit what it gave before), never a mix of two problems.
#[test]
fn stale_and_missing_storage_through_the_model_trait() {
    let (mut net, x, t) = issue_small();
    let b = rand_vec::<{ Small::N_PARAMS }>(107, 1.0);
    let mut h = boxed_zeroed::<SmallCurvature>();
    let mut g = boxed_zeroed::<SmallGgn>();
    assert_eq!(
        net.factor_current(&mut *h, 1.0).map(|_| ()).unwrap_err(),
        SolveError::NoCurvature
    );
    assert_eq!(
        net.factor_current(&mut *g, 1.0).map(|_| ()).unwrap_err(),
        SolveError::NoCurvature
    );
    net.hessian_into(&mut h, &x, &t).unwrap();
    net.gauss_newton_into(&mut g, &x, &t).unwrap();
    let (mut xh, mut xg) = ([0.0; Small::N_PARAMS], [0.0; Small::N_PARAMS]);
    net.factor_current(&mut *h, 1.0)
        .unwrap()
        .solve(&b, &mut xh)
        .unwrap();
    net.factor_current(&mut *g, 1.0)
        .unwrap()
        .solve(&b, &mut xg)
        .unwrap();
    // other parameters (every one changed a little, then only one)
    let mut p = [0.0; Small::N_PARAMS];
    net.params(&mut p);
    let saved = p;
    p[17] += 1e-12;
    net.set_params(&p).unwrap();
    assert_eq!(
        net.factor_current(&mut *h, 1.0).map(|_| ()).unwrap_err(),
        SolveError::Stale
    );
    assert_eq!(
        net.factor_current(&mut *g, 1.0).map(|_| ()).unwrap_err(),
        SolveError::Stale
    );
    // the snapshots solve what they hold
    let (mut yh, mut yg) = ([0.0; Small::N_PARAMS], [0.0; Small::N_PARAMS]);
    h.factor(1.0).unwrap().solve(&b, &mut yh).unwrap();
    g.factor(1.0).unwrap().solve(&b, &mut yg).unwrap();
    assert_eq!(xh, yh);
    assert_eq!(xg, yg);
    // back to the parameters they were filled at: current again
    net.set_params(&saved).unwrap();
    assert!(net.factor_current(&mut *h, 1.0).is_ok());
    assert!(net.factor_current(&mut *g, 1.0).is_ok());
    // a failed refill empties them
    let mut bad = x;
    bad[1][2] = f64::INFINITY;
    assert!(net.hessian_into(&mut h, &bad, &t).is_err());
    assert!(net.gauss_newton_into(&mut g, &bad, &t).is_err());
    assert_eq!(
        net.factor_current(&mut *h, 1.0).map(|_| ()).unwrap_err(),
        SolveError::NoCurvature
    );
    assert_eq!(h.fingerprint(), None);
    assert_eq!(Factorable::fingerprint(&*g), None);
}

/// The Woodbury form at tiny eps, on a random `b`: its division by eps cancels the digits of
/// the range part of `x`, but `x` is dominated by the null-space part `b_perp / eps`, which
/// the division gets to full relative accuracy; so the relative residual is huge (`|G|`
/// times the range part's error) while `x` is normwise accurate. The refined solve returns
/// neither `x = 0` nor an `x` with a large backward error as `Ok` (for `b` in the range of
/// `G`, where the cancellation does matter, see woodbury_accuracy's `Inaccurate` cells):
/// whatever it returns as `Ok` has a relative residual within `sqrt(EPSILON)` or is the
/// exact solution of a system within `N EPSILON` of `G + eps I` and `b`. Its normwise
/// backward error, with the residual from the network's own `ggn_vp` and `|G + eps I|` from
/// the eigenvalues of the dense `G`, is at most the one the solve reports.
#[test]
fn woodbury_at_tiny_eps_is_accurate_or_an_error() {
    let (net, x, t) = issue_small();
    let mut g = boxed_zeroed::<SmallGgn>();
    net.ggn_woodbury_into(&mut g, &x, &t).unwrap();
    let g_eig = {
        let (gd, _) = dense_from_hvp(Small::N_PARAMS, |v, out| {
            let v: &[f64; Small::N_PARAMS] = v.try_into().unwrap();
            let out: &mut [f64; Small::N_PARAMS] = out.try_into().unwrap();
            net.ggn_vp(&x, &t, v, out).unwrap();
        });
        sym_eigenvalues(&gd)
    };
    // scaled, so that x near 1e300 (eps 1e-300) does not overflow the test's own arithmetic
    let norm = |v: &[f64]| {
        let m = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        if m == 0.0 {
            return 0.0;
        }
        m * v.iter().map(|a| (a / m) * (a / m)).sum::<f64>().sqrt()
    };
    let b = rand_vec::<{ Small::N_PARAMS }>(108, 1.0);
    let mut outcomes = Vec::new();
    for eps in [1e-2, 1e-6, 1e-10, 1e-20, 1e-50, 1e-100, 1e-150, 1e-300] {
        let mut xs = [0.0; Small::N_PARAMS];
        let r = g
            .factor(eps)
            .and_then(|mut f| f.solve_refined(&b, &mut xs, 2));
        match r {
            Ok(rep) => {
                assert!(all_finite(&xs));
                let mut gv = [0.0; Small::N_PARAMS];
                net.ggn_vp(&x, &t, &xs, &mut gv).unwrap();
                let res: Vec<f64> = (0..Small::N_PARAMS)
                    .map(|i| b[i] - gv[i] - eps * xs[i])
                    .collect();
                let r_ind = rel_norm(&res, &b);
                let a_norm = g_eig.iter().fold(0.0f64, |m, l| m.max((l + eps).abs()));
                let eta = norm(&res) / (a_norm * norm(&xs) + norm(&b));
                // vouched by the relative residual, or by a backward error within N u
                let n_u = Small::N_PARAMS as f64 * f64::EPSILON;
                assert!(
                    (r_ind <= 1.6e-8 || eta <= n_u) && eta <= 1.01 * rep.backward_error + 1e-16,
                    "eps {eps:e}: Ok with backward error {eta:e} (reported {:e}), relative \
                     residual {r_ind:e}",
                    rep.backward_error
                );
                assert!(
                    xs.iter().any(|v| *v != 0.0),
                    "eps {eps:e}: x = 0 for a nonzero b"
                );
                outcomes.push(format!(
                    "{eps:e}: ok, residual {:.1e}, backward error {:.1e}",
                    rep.residual, rep.backward_error
                ));
            }
            Err(
                e @ (SolveError::Inaccurate { .. }
                | SolveError::Singular { .. }
                | SolveError::NonFiniteResult),
            ) => outcomes.push(format!("{eps:e}: {e:?}")),
            Err(e) => panic!("eps {eps:e}: {e}"),
        }
    }
    println!("{outcomes:?}");
    assert!(outcomes[0].contains("ok"), "eps 1e-2 must solve");
}

/// Optimizer settings are checked when the optimizer is built (and at every step of one built
/// from zeros): each bad value is a `ConfigError` naming its field.
#[test]
fn optimizer_settings_are_validated() {
    type M = Small;
    let field = |r: Result<(), tall_skinny::runtime::ConfigError>| r.unwrap_err().field;
    let tr = TrustRegionConfig::<f64>::default();
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_radius(f64::NAN)).map(|_| ())),
        "radius"
    );
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_radius(f64::NEG_INFINITY)).map(|_| ())),
        "radius"
    );
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_radius_max(f64::NEG_INFINITY)).map(|_| ())),
        "radius_max"
    );
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_radius(1e300)).map(|_| ())),
        "radius"
    );
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_eta(1.0)).map(|_| ())),
        "eta"
    );
    assert_eq!(
        field(TrustRegion::<M>::new(tr.with_max_iterations(0)).map(|_| ())),
        "max_iterations"
    );
    let lm = LmConfig::<f64>::default();
    assert_eq!(
        field(LevenbergMarquardt::<M>::new(lm.with_lambda(-1.0)).map(|_| ())),
        "lambda"
    );
    assert_eq!(
        field(LevenbergMarquardt::<M>::new(lm.with_lambda(0.0)).map(|_| ())),
        "lambda"
    );
    assert_eq!(
        field(LevenbergMarquardt::<M>::new(lm.with_lambda_bounds(1.0, 1e-3)).map(|_| ())),
        "lambda_max"
    );
    assert_eq!(
        field(LevenbergMarquardt::<M>::new(lm.with_eta(f64::NAN)).map(|_| ())),
        "eta"
    );
    assert_eq!(
        field(LevenbergMarquardt::<M>::new(lm.with_max_trials(0)).map(|_| ())),
        "max_trials"
    );
    let nt = NewtonConfig::<f64>::default();
    assert_eq!(
        field(DampedNewton::<M>::new(nt.with_lambda(f64::INFINITY)).map(|_| ())),
        "lambda"
    );
    assert_eq!(
        field(DampedNewton::<M>::new(nt.with_max_factorizations(0)).map(|_| ())),
        "max_factorizations"
    );
    let ad = AdamConfig::<f64>::default();
    assert_eq!(
        field(Adam::<M>::new(ad.with_lr(f64::NAN)).map(|_| ())),
        "lr"
    );
    assert_eq!(
        field(Adam::<M>::new(ad.with_betas(1.0, 0.999)).map(|_| ())),
        "beta1"
    );
    assert_eq!(
        field(Adam::<M>::new(ad.with_betas(0.9, -0.1)).map(|_| ())),
        "beta2"
    );
    assert_eq!(field(Adam::<M>::new(ad.with_eps(0.0)).map(|_| ())), "eps");
    let sg = SgdConfig::<f64>::default();
    assert_eq!(
        field(Sgd::<M>::new(sg.with_momentum(1e300)).map(|_| ())),
        "momentum"
    );
    assert_eq!(field(Sgd::<M>::new(sg.with_lr(-1e-2)).map(|_| ())), "lr");
    // an optimizer built from zeros refuses to step until configured
    let (mut net, x, t) = issue_small();
    let mut opt = boxed_zeroed::<LevenbergMarquardt<M>>();
    assert!(matches!(
        opt.step(&mut net, &x, &t),
        Err(SolveError::Config(_))
    ));
    opt.configure(LmConfig::default()).unwrap();
    assert!(opt.step(&mut net, &x, &t).is_ok());
}

fn report_is_finite(r: &StepReport<f64>) -> bool {
    let opts = [
        r.loss_after,
        r.loss_trial,
        r.predicted,
        r.ratio,
        r.damping,
        r.learning_rate,
        r.radius,
    ];
    r.loss_before.is_finite()
        && r.step_norm.is_finite()
        && r.gradient_norm.is_finite()
        && opts.iter().all(|v| v.is_none_or(f64::is_finite))
}

/// Extreme but valid settings: every number of every report is finite, a step that would
/// overflow the parameters is an error that leaves them unchanged, and rejected steps leave
/// the parameters unchanged.
#[test]
fn extreme_settings_give_finite_reports_or_errors() {
    let (net0, x, t) = issue_small();
    let mut p0 = [0.0; Small::N_PARAMS];
    net0.params(&mut p0);
    let check = |name: &str, opt: &mut dyn Optimizer<Small>| {
        let mut net = net0.clone();
        for k in 0..5 {
            let mut before = [0.0; Small::N_PARAMS];
            net.params(&mut before);
            match opt.step(&mut net, &x, &t) {
                Ok(r) => {
                    assert!(report_is_finite(&r), "{name} step {k}: {r:?}");
                    let mut after = [0.0; Small::N_PARAMS];
                    net.params(&mut after);
                    if !r.accepted {
                        assert_eq!(
                            before, after,
                            "{name}: a rejected step changed the parameters"
                        );
                    }
                    if let Some(after) = r.loss_after {
                        assert!(
                            (net.loss(&x, &t).unwrap() - after).abs()
                                <= 1e-12 * after.abs().max(1e-300)
                        );
                    }
                }
                Err(e) => {
                    let mut after = [0.0; Small::N_PARAMS];
                    net.params(&mut after);
                    assert_eq!(
                        before, after,
                        "{name}: a failed step ({e}) changed the parameters"
                    );
                }
            }
        }
    };
    let tr = TrustRegionConfig::default()
        .with_radius_max(1e300)
        .with_radius(1e300);
    check(
        "trust region radius 1e300",
        &mut *TrustRegion::<Small>::boxed(tr).unwrap(),
    );
    check(
        "trust region radius 1e-300",
        &mut *TrustRegion::<Small>::boxed(TrustRegionConfig::default().with_radius(1e-300))
            .unwrap(),
    );
    check(
        "Adam lr 1e300",
        &mut *Adam::<Small>::boxed(AdamConfig::default().with_lr(1e300)).unwrap(),
    );
    check(
        "SGD lr 1e300",
        &mut *Sgd::<Small>::boxed(SgdConfig::default().with_lr(1e300)).unwrap(),
    );
    check(
        "SGD momentum 0.999999",
        &mut *Sgd::<Small>::boxed(SgdConfig::default().with_momentum(0.999_999)).unwrap(),
    );
    let lm = LmConfig::default()
        .with_lambda_bounds(1e-300, 1e300)
        .with_lambda(1e-300);
    check(
        "LM lambda 1e-300",
        &mut *LevenbergMarquardt::<Small>::boxed(lm).unwrap(),
    );
    let lm = LmConfig::default()
        .with_lambda_bounds(1e-300, 1e300)
        .with_lambda(1e300);
    check(
        "LM lambda 1e300",
        &mut *LevenbergMarquardt::<Small>::boxed(lm).unwrap(),
    );
    let nt = NewtonConfig::default()
        .with_lambda_bounds(1e-300, 1e300)
        .with_lambda(1e-300);
    check(
        "Newton lambda 1e-300",
        &mut *DampedNewton::<Small>::boxed(nt).unwrap(),
    );
}
