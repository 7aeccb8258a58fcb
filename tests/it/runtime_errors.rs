//! Bad numbers at run time give a `NetError` naming the culprit, never a NaN inside `Ok` and
//! never a panic: non-finite inputs, targets, labels out of range, non-finite parameters
//! (through `set_params`, which then leaves the network unchanged, and through the public
//! layer fields), non-finite `hvp` directions, and finite inputs whose evaluation overflows.

use crate::common::*;
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 3)]
pub struct E64 {
    inp: Dense<3, 4, Tanh>,
    body: [Residual<4, Tanh>; 2],
    head: DenseNoBias<4, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    E64,
    E64Workspace,
    f64,
    Spec::new(
        vec![
            dense(3, 4, Act::Tanh),
            times(2, res(4, Act::Tanh)),
            nobias(4, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        3
    )
);

#[tall_skinny_net(batch = 2)]
pub struct ESoft {
    a: Dense<3, 3, Sigmoid>,
    head: Dense<3, 4, Identity>,
    loss: SoftmaxCrossEntropy<4>,
}
subject!(
    ESoft,
    ESoftWorkspace,
    f64,
    Spec::new(
        vec![dense(3, 3, Act::Sigmoid), dense(3, 4, Act::Identity)],
        LossSpec::Softmax(4),
        2
    )
);

#[tall_skinny_net(batch = 2, scalar = f32)]
pub struct E32 {
    inp: Dense<2, 3, Gelu>,
    body: [Residual<3, Silu>; 2],
    head: Dense<3, 2, Identity>,
    loss: Mse<2>,
}
subject!(
    E32,
    E32Workspace,
    f32,
    Spec::new(
        vec![
            dense(2, 3, Act::Gelu),
            times(2, res(3, Act::Silu)),
            dense(3, 2, Act::Identity)
        ],
        LossSpec::Mse(2),
        2
    )
);

fn problem<S: Subject>(seed: u64) -> (S, Vec<f64>, Vec<f64>, Target, Vec<f64>) {
    let spec = S::spec();
    let mut rng = Rng::new(seed);
    let p = random_params(&spec, &mut rng, 1.0);
    let x = rng.vec(spec.batch * spec.inputs(), 1.0);
    let t = random_target(&spec, &mut rng);
    let v = rng.vec(spec.n_params(), 1.0);
    (S::with_params(&p).unwrap(), p, x, t, v)
}

/// Every entry point that takes `x` reports `want`.
fn all_report<S: Subject>(net: &S, x: &[f64], t: &Target, v: &[f64], want: NetError) {
    assert_eq!(net.forward(x).unwrap_err(), want, "{} forward", S::NAME);
    assert_eq!(net.loss(x, t).unwrap_err(), want, "{} loss", S::NAME);
    assert_eq!(
        net.gradient(x, t).unwrap_err(),
        want,
        "{} gradient",
        S::NAME
    );
    assert_eq!(net.hvp(x, t, v).unwrap_err(), want, "{} hvp", S::NAME);
}

fn non_finite_inputs<S: Subject>() {
    let (net, _, x, t, v) = problem::<S>(1);
    let ni = S::spec().inputs();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut xb = x.clone();
        xb[ni + 2.min(ni - 1)] = bad; // sample 1
        all_report(
            &net,
            &xb,
            &t,
            &v,
            NetError::NonFiniteInput {
                sample: 1,
                index: 2.min(ni - 1),
            },
        );
        // the first bad entry (sample-major order) is the one reported
        let mut xb = x.clone();
        xb[ni - 1] = bad; // sample 0, last index
        xb[ni] = f64::NAN; // sample 1, index 0
        all_report(
            &net,
            &xb,
            &t,
            &v,
            NetError::NonFiniteInput {
                sample: 0,
                index: ni - 1,
            },
        );
    }
}

#[test]
fn non_finite_input_names_sample_and_index() {
    non_finite_inputs::<E64>();
    non_finite_inputs::<ESoft>();
    non_finite_inputs::<E32>();
}

#[test]
fn f64_inputs_beyond_f32_range_become_infinite_for_f32_nets() {
    // documents the f64 -> f32 rounding in this test harness: 1e39 is +inf in f32
    let (net, _, mut x, t, v) = problem::<E32>(2);
    x[3] = 1e39;
    all_report(
        &net,
        &x,
        &t,
        &v,
        NetError::NonFiniteInput {
            sample: 1,
            index: 1,
        },
    );
}

fn non_finite_targets<S: Subject>() {
    let (net, _, x, t, v) = problem::<S>(3);
    let Target::Mse(tt) = t else { unreachable!() };
    let o = S::spec().outputs();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut tb = tt.clone();
        tb[o + 1] = bad;
        if o + 2 < tb.len() {
            tb[o + 2] = f64::NAN; // a later bad entry is not the one reported
        }
        let tb = Target::Mse(tb);
        let want = NetError::NonFiniteTarget {
            sample: 1,
            index: 1,
        };
        assert_eq!(net.loss(&x, &tb).unwrap_err(), want);
        assert_eq!(net.gradient(&x, &tb).unwrap_err(), want);
        assert_eq!(net.hvp(&x, &tb, &v).unwrap_err(), want);
        // forward takes no target
        assert!(net.forward(&x).is_ok());
    }
}

#[test]
fn non_finite_target_names_sample_and_index() {
    non_finite_targets::<E64>();
    non_finite_targets::<E32>();
}

#[test]
fn label_out_of_range() {
    let (net, _, x, _, v) = problem::<ESoft>(4);
    for bad in [4, 5, usize::MAX] {
        let t = Target::Labels(vec![3, bad]);
        let want = NetError::LabelOutOfRange {
            sample: 1,
            label: bad,
            classes: 4,
        };
        assert_eq!(Subject::loss(&net, &x, &t).unwrap_err(), want);
        assert_eq!(Subject::gradient(&net, &x, &t).unwrap_err(), want);
        assert_eq!(Subject::hvp(&net, &x, &t, &v).unwrap_err(), want);
    }
    // the largest valid label is fine
    let t = Target::Labels(vec![3, 3]);
    assert!(Subject::loss(&net, &x, &t).unwrap().is_finite());
}

fn set_params_rejects<S: Subject>() {
    let (mut net, p, x, t, v) = problem::<S>(5);
    let before = net.get();
    assert_eq!(before, p.iter().map(|&a| S::round(a)).collect::<Vec<_>>());
    let (l0, g0) = net.gradient(&x, &t).unwrap();
    let n = p.len();
    for (idx, bad) in [
        (0, f64::NAN),
        (n / 2, f64::INFINITY),
        (n - 1, f64::NEG_INFINITY),
    ] {
        let mut q: Vec<f64> = p.iter().map(|a| a + 0.25).collect();
        q[idx] = bad;
        if idx + 1 < n {
            q[idx + 1] = f64::NAN; // a later bad entry is not the one reported
        }
        assert_eq!(
            net.set(&q),
            Err(NetError::NonFiniteParameter { index: idx }),
            "{}",
            S::NAME
        );
        assert_eq!(
            net.get(),
            before,
            "{}: set_params changed the net on error",
            S::NAME
        );
        assert_eq!(net.check(), Ok(()));
        assert_eq!(net.gradient(&x, &t).unwrap(), (l0, g0.clone()));
        assert!(net.hvp(&x, &t, &v).is_ok());
    }
}

#[test]
fn set_params_with_non_finite_entry_is_rejected_and_changes_nothing() {
    set_params_rejects::<E64>();
    set_params_rejects::<ESoft>();
    set_params_rejects::<E32>();
}

#[test]
fn non_finite_parameter_in_a_field_is_found_by_index() {
    let (mut net, _, x, t, v) = problem::<E64>(6);
    // body[1].b[2]: inp has 3*4+4 = 16, each body element 4*4+4 = 20, then W (16) and b[2]
    net.body[1].b[2] = f64::NAN;
    let want = NetError::NonFiniteParameter {
        index: 16 + 20 + 16 + 2,
    };
    assert_eq!(net.check_params(), Err(want));
    all_report(&net, &x, &t, &v, want);

    let (mut net, _, x, t, v) = problem::<E64>(6);
    // head (bias-free) W[1][3] = entry 7 of head, after 16 + 2 * 20 = 56
    net.head.w[(1, 3)] = f64::INFINITY;
    let want = NetError::NonFiniteParameter { index: 56 + 7 };
    assert_eq!(net.check_params(), Err(want));
    all_report(&net, &x, &t, &v, want);

    let (mut net, _, x, t, v) = problem::<E32>(6);
    // inp W[2][1]: entry 2 * 2 + 1
    net.inp.w[(2, 1)] = f32::NAN;
    let want = NetError::NonFiniteParameter { index: 5 };
    assert_eq!(net.check_params(), Err(want));
    all_report(&net, &x, &t, &v, want);
}

fn bad_direction<S: Subject>() {
    let (net, _, x, t, v) = problem::<S>(7);
    let n = v.len();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut vb = v.clone();
        vb[n / 3] = bad;
        vb[n - 1] = f64::NAN;
        assert_eq!(
            net.hvp(&x, &t, &vb),
            Err(NetError::NonFiniteVector { index: n / 3 }),
            "{}",
            S::NAME
        );
    }
}

#[test]
fn non_finite_direction_for_hvp() {
    bad_direction::<E64>();
    bad_direction::<ESoft>();
    bad_direction::<E32>();
}

// ---------------------------------------------------------------------------------------------
// Overflow: finite inputs whose evaluation is not representable

macro_rules! huge_net {
    ($name:ident, $ws:ident, $act:ident) => {
        #[tall_skinny_net(batch = 2)]
        #[allow(dead_code)]
        pub struct $name {
            a: Dense<2, 3, $act>,
            body: [Residual<3, $act>; 2],
            c: Dense<3, 2, $act>,
            loss: Mse<2>,
        }
        subject!(
            $name,
            $ws,
            f64,
            Spec::new(
                vec![
                    dense(2, 3, Act::$act),
                    times(2, res(3, Act::$act)),
                    dense(3, 2, Act::$act)
                ],
                LossSpec::Mse(2),
                2
            )
        );
    };
}
huge_net!(HIdentity, HIdentityWorkspace, Identity);
huge_net!(HTanh, HTanhWorkspace, Tanh);
huge_net!(HSigmoid, HSigmoidWorkspace, Sigmoid);
huge_net!(HSoftplus, HSoftplusWorkspace, Softplus);
huge_net!(HRelu, HReluWorkspace, Relu);
huge_net!(HGelu, HGeluWorkspace, Gelu);
huge_net!(HSilu, HSiluWorkspace, Silu);
huge_net!(HSin, HSinWorkspace, Sin);

#[tall_skinny_net(batch = 2)]
pub struct HSoftmax {
    a: Dense<2, 3, Tanh>,
    head: Dense<3, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}
subject!(
    HSoftmax,
    HSoftmaxWorkspace,
    f64,
    Spec::new(
        vec![dense(2, 3, Act::Tanh), dense(3, 3, Act::Identity)],
        LossSpec::Softmax(3),
        2
    )
);

#[tall_skinny_net(batch = 2, scalar = f32)]
pub struct HF32 {
    a: Dense<2, 3, Gelu>,
    body: [Residual<3, Softplus>; 2],
    c: Dense<3, 2, Silu>,
    loss: Mse<2>,
}
subject!(
    HF32,
    HF32Workspace,
    f32,
    Spec::new(
        vec![
            dense(2, 3, Act::Gelu),
            times(2, res(3, Act::Softplus)),
            dense(3, 2, Act::Silu)
        ],
        LossSpec::Mse(2),
        2
    )
);

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    overflow: usize,
    /// `hvp` answered `Ok` although `loss` overflowed (allowed: a finite answer).
    hvp_ok_loss_overflow: usize,
}

/// Either a finite answer or `NonFiniteResult`; anything else fails the test.
fn finite_or_overflow(what: &str, r: Result<Vec<f64>, NetError>, tally: &mut Tally) -> bool {
    match r {
        Ok(vals) => {
            assert!(
                vals.iter().all(|a| a.is_finite()),
                "{what}: Ok with a non-finite value: {vals:?}"
            );
            tally.ok += 1;
            true
        }
        Err(NetError::NonFiniteResult) => {
            tally.overflow += 1;
            false
        }
        Err(e) => panic!("{what}: unexpected error {e:?} for finite inputs"),
    }
}

/// Weights, inputs and directions of growing magnitude with mixed signs (so that sums can
/// overflow to +inf and -inf at once and `inf - inf` would be NaN).
fn overflow_battery<S: Subject>(scales: &[f64]) -> (&'static str, Tally) {
    let spec = S::spec();
    let (n, nx) = (spec.n_params(), spec.batch * spec.inputs());
    let sign = |i: usize| if (i * 7 + 3) % 5 < 2 { -1.0 } else { 1.0 };
    let mut tally = Tally::default();
    for &w in scales {
        for &s in scales {
            let p: Vec<f64> = (0..n)
                .map(|i| S::round(sign(i) * w * (0.5 + 0.5 * i as f64 / n as f64)))
                .collect();
            let x: Vec<f64> = (0..nx).map(|i| S::round(sign(i + 1) * s)).collect();
            let t = match spec.loss {
                LossSpec::Mse(o) => {
                    Target::Mse((0..spec.batch * o).map(|i| sign(i) * 0.5).collect())
                }
                LossSpec::Softmax(c) => Target::Labels((0..spec.batch).map(|i| i % c).collect()),
            };
            let v: Vec<f64> = (0..n).map(|i| S::round(sign(i + 2) * w)).collect();
            let net = S::with_params(&p).unwrap();
            let what = format!("{} w={w:e} x={s:e}", S::NAME);
            finite_or_overflow(&format!("{what} forward"), net.forward(&x), &mut tally);
            let loss_ok = finite_or_overflow(
                &format!("{what} loss"),
                net.loss(&x, &t).map(|l| vec![l]),
                &mut tally,
            );
            let grad = net.gradient(&x, &t).map(|(l, mut g)| {
                g.push(l);
                g
            });
            finite_or_overflow(&format!("{what} gradient"), grad, &mut tally);
            let hvp_ok =
                finite_or_overflow(&format!("{what} hvp"), net.hvp(&x, &t, &v), &mut tally);
            if hvp_ok && !loss_ok {
                tally.hvp_ok_loss_overflow += 1;
            }
        }
    }
    (S::NAME, tally)
}

#[test]
fn overflow_gives_non_finite_result_or_a_finite_answer() {
    let scales = [1.0, 1e10, 1e100, 1e154, 1e200, 1e300, f64::MAX];
    let f32_scales = [1.0, 1e5, 1e10, 1e19, 1e30, 1e38, f32::MAX as f64];
    let all = [
        overflow_battery::<HIdentity>(&scales),
        overflow_battery::<HTanh>(&scales),
        overflow_battery::<HSigmoid>(&scales),
        overflow_battery::<HSoftplus>(&scales),
        overflow_battery::<HRelu>(&scales),
        overflow_battery::<HGelu>(&scales),
        overflow_battery::<HSilu>(&scales),
        overflow_battery::<HSin>(&scales),
        overflow_battery::<HSoftmax>(&scales),
        overflow_battery::<HF32>(&f32_scales),
    ];
    for (name, t) in &all {
        println!("{name:>10}: {t:?}");
    }
    // the battery reaches both outcomes: it does test the overflow path
    for (name, t) in &all {
        assert!(t.ok > 0, "{name}: nothing finite at all");
    }
    // an identity chain with 1e200 weights and inputs must overflow somewhere
    assert!(all[0].1.overflow > 0);
}

#[test]
fn huge_direction_overflows_cleanly() {
    let (net, _, x, t, v) = problem::<E64>(8);
    let mut tally = Tally::default();
    for scale in [1e150, 1e300, f64::MAX] {
        let vb: Vec<f64> = v.iter().map(|a| a * scale).collect();
        finite_or_overflow(
            "E64 hvp huge v",
            Subject::hvp(&net, &x, &t, &vb),
            &mut tally,
        );
    }
    assert!(
        tally.overflow > 0,
        "a direction of f64::MAX magnitude must overflow: {tally:?}"
    );
}
