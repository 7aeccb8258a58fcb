//! Property tests: `loss`, `gradient` and `hvp` of generated networks against the
//! independent num-dual reference of `tests/it/common.rs`, over random weights, inputs, targets and
//! directions (weight scale varied too, so that saturated and nearly linear regimes both
//! occur).
//!
//! Per case: the loss and the gradient against the reference; `H v` against two references,
//! the directional hyper-dual `H v` (`HyperDualVec`, no matrix) and the dense scalar
//! hyper-dual Hessian times `v`; and `u' H v == v' H u` for the generated `hvp`. Tolerances
//! as in `tests/derivatives.rs`: `2000 u sqrt(N)` relative to the natural scale (`u` the unit
//! roundoff of the network's scalar; `f32` nets are compared with the `f64` reference).
//!
//! Failing cases are persisted to `tests/derivative_props.proptest-regressions` (committed),
//! and replayed first on every run.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 3)]
pub struct PResTanh {
    inp: Dense<2, 4, Tanh>,
    body: [Residual<4, Tanh>; 2],
    head: Dense<4, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    PResTanh,
    PResTanhWorkspace,
    f64,
    Spec::new(
        vec![
            dense(2, 4, Act::Tanh),
            times(2, res(4, Act::Tanh)),
            dense(4, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        3
    )
);

#[tall_skinny_net(batch = 2)]
pub struct PSoftGelu {
    a: Dense<3, 4, Gelu>,
    b: DenseNoBias<4, 4, Softplus>,
    head: Dense<4, 3, Sigmoid>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    PSoftGelu,
    PSoftGeluWorkspace,
    f64,
    Spec::new(
        vec![
            dense(3, 4, Act::Gelu),
            nobias(4, 4, Act::Softplus),
            dense(4, 3, Act::Sigmoid)
        ],
        LossSpec::Softmax(3),
        2
    )
);

#[tall_skinny_net(batch = 4, scalar = f32)]
pub struct PSiluSin32 {
    a: Dense<2, 3, Silu>,
    body: [Residual<3, Sin>; 2],
    head: Dense<3, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    PSiluSin32,
    PSiluSin32Workspace,
    f32,
    Spec::new(
        vec![
            dense(2, 3, Act::Silu),
            times(2, res(3, Act::Sin)),
            dense(3, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        4
    )
);

#[tall_skinny_net(batch = 2)]
pub struct PRelu {
    inp: Dense<3, 4, Relu>,
    mid: Residual<4, Tanh>,
    head: Dense<4, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
}
subject!(
    PRelu,
    PReluWorkspace,
    f64,
    Spec::new(
        vec![
            dense(3, 4, Act::Relu),
            res(4, Act::Tanh),
            dense(4, 2, Act::Identity)
        ],
        LossSpec::Softmax(2),
        2
    )
);

/// One random problem: raw uniform numbers, shaped and scaled per network in [`check`].
#[derive(Clone, Debug)]
struct Case {
    gain: f64,
    params: Vec<f64>,
    x: Vec<f64>,
    targets: Vec<f64>,
    labels: Vec<usize>,
    v: Vec<f64>,
    u: Vec<f64>,
}

fn case<S: Subject>() -> impl Strategy<Value = Case> {
    let spec = S::spec();
    let (n, b) = (spec.n_params(), spec.batch);
    let classes = spec.outputs();
    (
        0.2f64..3.0,
        prop::collection::vec(-1.0f64..1.0, n),
        prop::collection::vec(-2.0f64..2.0, b * spec.inputs()),
        prop::collection::vec(-1.5f64..1.5, b * spec.outputs()),
        prop::collection::vec(0..classes, b),
        prop::collection::vec(-1.0f64..1.0, n),
        prop::collection::vec(-1.0f64..1.0, n),
    )
        .prop_map(|(gain, params, x, targets, labels, v, u)| Case {
            gain,
            params,
            x,
            targets,
            labels,
            v,
            u,
        })
}

fn check<S: Subject>(c: &Case) -> Result<(), TestCaseError> {
    let spec = S::spec();
    let n = spec.n_params();
    let tol = 2000.0 * S::EPS * (n as f64).sqrt();
    let rnd = |v: &[f64]| -> Vec<f64> { v.iter().map(|&a| S::round(a)).collect() };
    // weights uniform with half-width gain / sqrt(fan-in), biases in [-1, 1]
    let mut p = Vec::with_capacity(n);
    for l in &spec.layers {
        let a = c.gain / (l.inputs as f64).sqrt();
        let k = p.len();
        p.extend(c.params[k..k + l.outputs * l.inputs].iter().map(|w| a * w));
        if l.bias() {
            let k = p.len();
            p.extend_from_slice(&c.params[k..k + l.outputs]);
        }
    }
    let p = rnd(&p);
    let x = rnd(&c.x);
    let t = match spec.loss {
        LossSpec::Mse(_) => Target::Mse(rnd(&c.targets)),
        LossSpec::Softmax(_) => Target::Labels(c.labels.clone()),
    };
    let (v, u) = (rnd(&c.v), rnd(&c.u));

    let net = S::with_params(&p).map_err(|e| TestCaseError::fail(format!("set_params: {e}")))?;
    let ev = ref_eval(&spec, &p, &x, &t);
    let max_out = ev.outputs.iter().fold(0.0f64, |m, o| m.max(o.abs()));

    let l = net
        .loss(&x, &t)
        .map_err(|e| TestCaseError::fail(format!("loss: {e}")))?;
    let el = (l - ev.loss).abs() / (ev.loss.abs() + max_out);
    prop_assert!(
        el <= tol,
        "loss {l} vs reference {}: rel {el:.3e} > {tol:.3e}",
        ev.loss
    );

    let (_, g) = net
        .gradient(&x, &t)
        .map_err(|e| TestCaseError::fail(format!("gradient: {e}")))?;
    let (_, g_ref) = ref_gradient(&spec, &p, &x, &t);
    let eg = dist(&g, &g_ref) / norm(&g_ref);
    prop_assert!(eg <= tol, "gradient: rel {eg:.3e} > {tol:.3e}");

    let hv = net
        .hvp(&x, &t, &v)
        .map_err(|e| TestCaseError::fail(format!("hvp: {e}")))?;
    let hu = net
        .hvp(&x, &t, &u)
        .map_err(|e| TestCaseError::fail(format!("hvp: {e}")))?;
    let (_, h) = ref_hessian(&spec, &p, &x, &t);
    let scale_v = norm(&abs_matvec(&h, &v));
    let hv_dir = ref_hvp(&spec, &p, &x, &t, &v);
    let e_dir = dist(&hv, &hv_dir) / scale_v;
    prop_assert!(
        e_dir <= tol,
        "hvp vs directional hyper-dual: rel {e_dir:.3e} > {tol:.3e}"
    );
    let e_dense = dist(&hv, &matvec(&h, &v)) / scale_v;
    prop_assert!(
        e_dense <= tol,
        "hvp vs dense Hessian: rel {e_dense:.3e} > {tol:.3e}"
    );

    let ua: Vec<f64> = u.iter().map(|a| a.abs()).collect();
    let sym_scale = dot(&ua, &abs_matvec(&h, &v));
    let es = (dot(&u, &hv) - dot(&v, &hu)).abs() / sym_scale;
    prop_assert!(es <= tol, "u'Hv vs v'Hu: rel {es:.3e} > {tol:.3e}");
    if std::env::var_os("TALL_SKINNY_REPORT").is_some() {
        eprintln!(
            "REPORT {} loss {el:.2e} grad {eg:.2e} hvp_dir {e_dir:.2e} hvp_dense {e_dense:.2e} sym {es:.2e} tol {tol:.2e}",
            S::NAME
        );
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        max_shrink_iters: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/derivative_props.proptest-regressions"
        )))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn res_tanh_mse(c in case::<PResTanh>()) {
        check::<PResTanh>(&c)?;
    }

    #[test]
    fn gelu_softplus_softmax(c in case::<PSoftGelu>()) {
        check::<PSoftGelu>(&c)?;
    }

    #[test]
    fn silu_sin_f32(c in case::<PSiluSin32>()) {
        check::<PSiluSin32>(&c)?;
    }

    #[test]
    fn relu_softmax(c in case::<PRelu>()) {
        check::<PRelu>(&c)?;
    }
}
