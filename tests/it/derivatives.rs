//! The generated `forward`, `loss`, `gradient` and `hvp` against an independent reference.
//!
//! Every architecture below is declared twice: once with `#[tall_skinny_net]`, once as plain
//! data for the reference evaluator in `tests/it/common.rs` (num-dual, written from the formulas;
//! it shares no code with the crate). For each one, with seeded random parameters, inputs,
//! targets and directions:
//!
//! - (a) `forward` and `loss` against the reference in `f64`;
//! - (b) `gradient` against the hyper-dual gradient, and against central differences of the
//!   generated `loss`;
//! - (c) `hvp` against the dense hyper-dual Hessian times `v` (two directions), and the
//!   symmetry `u' H v == v' H u` of the generated `hvp` alone;
//! - the `_in` variants with a workspace left dirty by calls on other data give bit-identical
//!   results, and `params` returns what `set_params` was given.
//!
//! Tolerances are relative to the natural scale of each quantity and proportional to the
//! unit roundoff `u` of the network's scalar: `tol = 2000 u sqrt(N)` (`N` parameters), which
//! is `~1.2e-4 sqrt(N)` for `f32` (compared with the `f64` reference) and `~2.2e-13 sqrt(N)`
//! for `f64`. Values compare relative to the output magnitude, gradients relative to `|g|`,
//! `H v` relative to `| |H| |v| |` (the scale of the rounding error of a matrix-vector
//! product), `u' H v` relative to `|u|' |H| |v|`. Finite differences have their own error
//! model, see [`fd_check`].
//!
//! Run with `--nocapture` to see the measured errors (as fractions of the tolerance too).

use crate::common::*;
use tall_skinny::prelude::*;

// ---------------------------------------------------------------------------------------------
// Architectures

/// Batch 1, the smallest useful MLP.
#[tall_skinny_net]
pub struct Mlp1 {
    inp: Dense<3, 5, Tanh>,
    head: Dense<5, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    Mlp1,
    Mlp1Workspace,
    f64,
    Spec::new(
        vec![dense(3, 5, Act::Tanh), dense(5, 2, Act::Identity)],
        LossSpec::Mse(2),
        1
    )
);

/// An array of residual tanh layers.
#[tall_skinny_net(batch = 4)]
pub struct ResTanh {
    inp: Dense<3, 4, Tanh>,
    body: [Residual<4, Tanh>; 3],
    head: Dense<4, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    ResTanh,
    ResTanhWorkspace,
    f64,
    Spec::new(
        vec![
            dense(3, 4, Act::Tanh),
            times(3, res(4, Act::Tanh)),
            dense(4, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        4
    )
);

/// Sigmoid, bias-free softplus, softmax cross-entropy.
#[tall_skinny_net(batch = 3)]
pub struct SigSoft {
    a: Dense<4, 5, Sigmoid>,
    b: DenseNoBias<5, 5, Softplus>,
    head: Dense<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    SigSoft,
    SigSoftWorkspace,
    f64,
    Spec::new(
        vec![
            dense(4, 5, Act::Sigmoid),
            nobias(5, 5, Act::Softplus),
            dense(5, 3, Act::Identity)
        ],
        LossSpec::Softmax(3),
        3
    )
);

/// GELU residual blocks, a bias-free scalar head.
#[tall_skinny_net(batch = 2)]
pub struct GeluRes {
    inp: Dense<3, 6, Gelu>,
    body: [Residual<6, Gelu>; 2],
    head: DenseNoBias<6, 1, Identity>,
    loss: Mse<1>,
}
subject!(
    GeluRes,
    GeluResWorkspace,
    f64,
    Spec::new(
        vec![
            dense(3, 6, Act::Gelu),
            times(2, res(6, Act::Gelu)),
            nobias(6, 1, Act::Identity)
        ],
        LossSpec::Mse(1),
        2
    )
);

/// SiLU and sine, a single residual layer, a nonlinear head under MSE.
#[tall_skinny_net(batch = 5)]
pub struct SiluSin {
    a: Dense<2, 4, Silu>,
    b: DenseNoBias<4, 4, Sin>,
    c: Residual<4, Silu>,
    head: Dense<4, 3, Sin>,
    loss: Mse<3>,
}
subject!(
    SiluSin,
    SiluSinWorkspace,
    f64,
    Spec::new(
        vec![
            dense(2, 4, Act::Silu),
            nobias(4, 4, Act::Sin),
            res(4, Act::Silu),
            dense(4, 3, Act::Sin)
        ],
        LossSpec::Mse(3),
        5
    )
);

/// ReLU everywhere but the head (curvature from the softplus head and the loss only).
#[tall_skinny_net(batch = 4)]
pub struct ReluNet {
    inp: Dense<3, 5, Relu>,
    body: [Residual<5, Relu>; 2],
    head: Dense<5, 3, Softplus>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    ReluNet,
    ReluNetWorkspace,
    f64,
    Spec::new(
        vec![
            dense(3, 5, Act::Relu),
            times(2, res(5, Act::Relu)),
            dense(5, 3, Act::Softplus)
        ],
        LossSpec::Softmax(3),
        4
    )
);

/// `f32`, softmax, GELU residual array.
#[tall_skinny_net(batch = 4, scalar = f32)]
pub struct F32Soft {
    inp: Dense<3, 4, Tanh>,
    body: [Residual<4, Gelu>; 2],
    head: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    F32Soft,
    F32SoftWorkspace,
    f32,
    Spec::new(
        vec![
            dense(3, 4, Act::Tanh),
            times(2, res(4, Act::Gelu)),
            dense(4, 3, Act::Identity)
        ],
        LossSpec::Softmax(3),
        4
    )
);

/// `f32`, batch 8, an array of bias-free sigmoid layers, a SiLU head under MSE.
#[tall_skinny_net(batch = 8, scalar = f32)]
pub struct F32Mse {
    a: Dense<2, 5, Softplus>,
    b: [DenseNoBias<5, 5, Sigmoid>; 2],
    head: Dense<5, 2, Silu>,
    loss: Mse<2>,
}
subject!(
    F32Mse,
    F32MseWorkspace,
    f32,
    Spec::new(
        vec![
            dense(2, 5, Act::Softplus),
            times(2, nobias(5, 5, Act::Sigmoid)),
            dense(5, 2, Act::Silu)
        ],
        LossSpec::Mse(2),
        8
    )
);

/// `f32` with ReLU, sigmoid residuals and a GELU head.
#[tall_skinny_net(batch = 6, scalar = f32)]
pub struct F32Relu {
    inp: Dense<3, 6, Relu>,
    body: [Residual<6, Sigmoid>; 2],
    head: Dense<6, 2, Gelu>,
    loss: Mse<2>,
}
subject!(
    F32Relu,
    F32ReluWorkspace,
    f32,
    Spec::new(
        vec![
            dense(3, 6, Act::Relu),
            times(2, res(6, Act::Sigmoid)),
            dense(6, 2, Act::Gelu)
        ],
        LossSpec::Mse(2),
        6
    )
);

/// Batch 8: sine residuals, an array of dense SiLU layers, four classes.
#[tall_skinny_net(batch = 8)]
pub struct Batch8 {
    inp: Dense<4, 4, Tanh>,
    body: [Residual<4, Sin>; 4],
    mix: [Dense<4, 4, Silu>; 2],
    head: DenseNoBias<4, 4, Identity>,
    loss: SoftmaxCrossEntropy<4>,
}
subject!(
    Batch8,
    Batch8Workspace,
    f64,
    Spec::new(
        vec![
            dense(4, 4, Act::Tanh),
            times(4, res(4, Act::Sin)),
            times(2, dense(4, 4, Act::Silu)),
            nobias(4, 4, Act::Identity),
        ],
        LossSpec::Softmax(4),
        8
    )
);

/// Depth 14, width 3.
#[tall_skinny_net(batch = 2)]
pub struct Deep {
    inp: Dense<2, 3, Tanh>,
    body: [Residual<3, Tanh>; 12],
    head: Dense<3, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    Deep,
    DeepWorkspace,
    f64,
    Spec::new(
        vec![
            dense(2, 3, Act::Tanh),
            times(12, res(3, Act::Tanh)),
            dense(3, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        2
    )
);

/// A single layer: multinomial logistic regression (convex).
#[tall_skinny_net(batch = 3)]
pub struct LogReg {
    head: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    LogReg,
    LogRegWorkspace,
    f64,
    Spec::new(vec![dense(4, 3, Act::Identity)], LossSpec::Softmax(3), 3)
);

/// A single bias-free nonlinear layer.
#[tall_skinny_net(batch = 2)]
pub struct OneNoBias {
    only: DenseNoBias<3, 2, Tanh>,
    loss: Mse<2>,
}
subject!(
    OneNoBias,
    OneNoBiasWorkspace,
    f64,
    Spec::new(vec![nobias(3, 2, Act::Tanh)], LossSpec::Mse(2), 2)
);

// ---------------------------------------------------------------------------------------------
// The checks

/// Measured error of one check, and the tolerance it must stay under.
struct Check {
    what: &'static str,
    err: f64,
    tol: f64,
}

fn show(name: &str, n: usize, eps: f64, checks: &[Check]) {
    let prec = if eps > 1e-10 { "f32" } else { "f64" };
    let mut line = format!("{name:>10} N={n:<4} {prec}:");
    for c in checks {
        line.push_str(&format!(
            " {} {:.1e} ({:.0}%)",
            c.what,
            c.err,
            100.0 * c.err / c.tol
        ));
    }
    println!("{line}");
    for c in checks {
        assert!(
            c.err <= c.tol,
            "{name}: {} relative error {:.3e} exceeds tolerance {:.3e}",
            c.what,
            c.err,
            c.tol
        );
    }
}

/// Central differences of the generated `loss`, against the generated `gradient` `g`.
///
/// Error model. With step `s_i` (the exact difference of the two rounded parameter values),
/// `fd_i = (L(p + s e_i) - L(p - s e_i)) / s_i` differs from the derivative by a truncation
/// term `O(s^2)` and by rounding noise `(r+ - r-) / s_i`, `r = L_computed - L_exact`.
/// - `f64`: `s = 1e-5`, so truncation is `~ s^2 |L'''| / 6 ~ 1e-10` and noise
///   `~ u |L| / s ~ 1e-11` per component; tolerance `1e-7 |g| + sqrt(N) 1e-8 (1 + |L|)`.
/// - `f32`: noise dominates any useful step, so it is measured: `r` at every evaluated point
///   against the `f64` reference at the same (rounded) parameters, and the truncation error
///   as the reference's own central differences at the same points; the tolerance is
///   `2 (|trunc| + |noise|) + tol_grad |g_ref|`, where `tol_grad` is the tolerance of the
///   `gradient` vs hyper-dual check.
#[allow(clippy::too_many_arguments)]
fn fd_check<S: Subject>(
    net: &S,
    spec: &Spec,
    p: &[f64],
    x: &[f64],
    t: &Target,
    g: &[f64],
    g_ref: &[f64],
    tol_grad: f64,
) -> Check {
    let n = p.len();
    let single = S::EPS > 1e-10;
    let h = if single { 1.0 / 128.0 } else { 1e-5 };
    let mut fd = vec![0.0; n];
    let mut trunc = vec![0.0; n];
    let mut noise = vec![0.0; n];
    let mut q = p.to_vec();
    let mut work = S::with_params(p).unwrap();
    let l0 = net.loss(x, t).unwrap();
    for i in 0..n {
        let (plus, minus) = (S::round(p[i] + h), S::round(p[i] - h));
        let step = plus - minus;
        q[i] = plus;
        work.set(&q).unwrap();
        let lp = work.loss(x, t).unwrap();
        let rp = ref_loss(spec, &q, x, t);
        q[i] = minus;
        work.set(&q).unwrap();
        let lm = work.loss(x, t).unwrap();
        let rm = ref_loss(spec, &q, x, t);
        q[i] = p[i];
        fd[i] = (lp - lm) / step;
        trunc[i] = (rp - rm) / step - g_ref[i];
        noise[i] = ((lp - rp).abs() + (lm - rm).abs()) / step;
    }
    let err = dist(g, &fd);
    let tol = if single {
        2.0 * (norm(&trunc) + norm(&noise)) + tol_grad * norm(g_ref)
    } else {
        1e-7 * norm(g) + (n as f64).sqrt() * 1e-8 * (1.0 + l0.abs())
    };
    // reported relative to |g|, tolerance on the same scale
    let scale = norm(g).max(f64::MIN_POSITIVE);
    Check {
        what: "grad~fd",
        err: err / scale,
        tol: tol / scale,
    }
}

fn check_arch<S: Subject>(seed: u64) {
    let spec = S::spec();
    let (n, ni, no, b, depth) = S::consts();
    assert_eq!(n, spec.n_params(), "{}: N_PARAMS", S::NAME);
    assert_eq!(
        (ni, no, b),
        (spec.inputs(), spec.outputs(), spec.batch),
        "{}: sizes",
        S::NAME
    );
    assert_eq!(depth, spec.layers.len(), "{}: DEPTH", S::NAME);
    let tol = 2000.0 * S::EPS * (n as f64).sqrt();

    let mut rng = Rng::new(seed);
    let rnd = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(S::round).collect() };
    let p = rnd(random_params(&spec, &mut rng, 1.5));
    let x = rnd(rng.vec(b * ni, 1.5));
    let t = match random_target(&spec, &mut rng) {
        Target::Mse(v) => Target::Mse(rnd(v)),
        l => l,
    };
    let v = rnd(rng.vec(n, 1.0));
    let u = rnd(rng.vec(n, 1.0));
    let (x2, v2) = (rnd(rng.vec(b * ni, 1.0)), rnd(rng.vec(n, 1.0)));

    let net = S::with_params(&p).unwrap();
    assert_eq!(net.get(), p, "{}: params() after set_params()", S::NAME);

    // the reference
    let ev = ref_eval(&spec, &p, &x, &t);
    if spec.acts().contains(&Act::Relu) {
        // Keep clear of kinks so that finite differences never cross one: a step of h in one
        // parameter moves a pre-activation by about h |z| (h = 1e-5 for f64, 1/128 for f32,
        // |z| <= ~2 here).
        let margin = if S::EPS > 1e-10 { 0.03 } else { 1e-3 };
        assert!(
            ev.min_kink > margin,
            "{}: seed {seed} puts a Relu pre-activation at {:e}; pick another seed",
            S::NAME,
            ev.min_kink
        );
    }
    let (l_ref, h) = ref_hessian(&spec, &p, &x, &t);
    let (l_dual, g_ref) = ref_gradient(&spec, &p, &x, &t);
    // the reference agrees with itself (four number types, one evaluator)
    assert!((l_ref - ev.loss).abs() <= 1e-14 * (1.0 + l_ref.abs()));
    assert!((l_dual - ev.loss).abs() <= 1e-14 * (1.0 + l_ref.abs()));
    if n <= 40 {
        let (l2, g2, h2) = ref_hessian_dual2(&spec, &p, &x, &t);
        assert!((l2 - l_ref).abs() <= 1e-14 * (1.0 + l_ref.abs()));
        assert!(dist(&g2, &g_ref) <= 1e-12 * norm(&g_ref));
        assert!((&h2 - &h).norm() <= 1e-12 * h.norm());
    }
    let hv_ref = matvec(&h, &v);
    let hu_ref = matvec(&h, &u);
    assert!(dist(&ref_hvp(&spec, &p, &x, &t, &v), &hv_ref) <= 1e-12 * norm(&abs_matvec(&h, &v)));
    assert!(
        (&h - h.transpose()).norm() <= 1e-12 * h.norm(),
        "reference Hessian symmetric"
    );

    let mut checks = Vec::new();
    // (a) forward and loss
    let out = net.forward(&x).unwrap();
    let out_scale = norm(&ev.outputs);
    checks.push(Check {
        what: "fwd",
        err: dist(&out, &ev.outputs) / out_scale,
        tol,
    });
    let l = net.loss(&x, &t).unwrap();
    let max_out = ev.outputs.iter().fold(0.0f64, |m, o| m.max(o.abs()));
    let l_scale = l_ref.abs() + max_out;
    checks.push(Check {
        what: "loss",
        err: (l - l_ref).abs() / l_scale,
        tol,
    });

    // (b) gradient
    let (lg, g) = net.gradient(&x, &t).unwrap();
    checks.push(Check {
        what: "grad.loss",
        err: (lg - l_ref).abs() / l_scale,
        tol,
    });
    checks.push(Check {
        what: "grad~dual",
        err: dist(&g, &g_ref) / norm(&g_ref),
        tol,
    });
    checks.push(fd_check(&net, &spec, &p, &x, &t, &g, &g_ref, tol));

    // (c) hvp
    let hv = net.hvp(&x, &t, &v).unwrap();
    let hu = net.hvp(&x, &t, &u).unwrap();
    let e1 = dist(&hv, &hv_ref) / norm(&abs_matvec(&h, &v));
    let e2 = dist(&hu, &hu_ref) / norm(&abs_matvec(&h, &u));
    checks.push(Check {
        what: "hvp~H*v",
        err: e1.max(e2),
        tol,
    });
    let ua: Vec<f64> = u.iter().map(|a| a.abs()).collect();
    let sym_scale = dot(&ua, &abs_matvec(&h, &v));
    checks.push(Check {
        what: "sym",
        err: (dot(&u, &hv) - dot(&v, &hu)).abs() / sym_scale,
        tol,
    });

    // workspace reuse changes nothing, to the bit
    let ((lw, gw), hvw) = net.dirty_workspace(&x, &t, &v, &x2, &v2).unwrap();
    assert_eq!(
        (lw, &gw),
        (lg, &g),
        "{}: gradient_in with a dirty workspace",
        S::NAME
    );
    assert_eq!(hvw, hv, "{}: hvp_in with a dirty workspace", S::NAME);

    show(S::NAME, n, S::EPS, &checks);
}

#[test]
fn mlp1() {
    check_arch::<Mlp1>(1);
}
#[test]
fn res_tanh() {
    check_arch::<ResTanh>(2);
}
#[test]
fn sig_soft() {
    check_arch::<SigSoft>(3);
}
#[test]
fn gelu_res() {
    check_arch::<GeluRes>(4);
}
#[test]
fn silu_sin() {
    check_arch::<SiluSin>(5);
}
#[test]
fn relu_net() {
    check_arch::<ReluNet>(6);
}
#[test]
fn f32_soft() {
    check_arch::<F32Soft>(7);
}
#[test]
fn f32_mse() {
    check_arch::<F32Mse>(8);
}
#[test]
fn f32_relu() {
    check_arch::<F32Relu>(9);
}
#[test]
fn batch8() {
    check_arch::<Batch8>(10);
}
#[test]
fn deep() {
    check_arch::<Deep>(11);
}
#[test]
fn log_reg() {
    check_arch::<LogReg>(12);
}
#[test]
fn one_no_bias() {
    check_arch::<OneNoBias>(13);
}
