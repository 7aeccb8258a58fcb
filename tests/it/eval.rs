//! Batch-independent evaluation (`forward_one`, `forward_all`, `loss_all`, `evaluate`)
//! against the independent reference of `common` evaluated on the whole data set at once
//! (its "batch" is the data set), at lengths below, at and above the declared batch and
//! not multiples of it.

use crate::common::{dense, ref_eval, res, times, Act, LossSpec, Rng, Spec, Target};
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 8)]
struct Reg {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

/// The same architecture at batch 1 (the reference for `forward_one`'s cost, and a second
/// path to the same numbers).
#[tall_skinny_net(batch = 1)]
struct Reg1 {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 5)]
struct Cls {
    inp: Dense<4, 5, Tanh>,
    body: [Residual<5, Tanh>; 2],
    head: Dense<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

#[tall_skinny_net(batch = 4, scalar = f32)]
struct Reg32 {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

fn reg_spec(n: usize) -> Spec {
    Spec::new(
        vec![
            dense(3, 6, Act::Tanh),
            times(3, res(6, Act::Tanh)),
            dense(6, 2, Act::Identity),
        ],
        LossSpec::Mse(2),
        n,
    )
}

fn cls_spec(n: usize) -> Spec {
    Spec::new(
        vec![
            dense(4, 5, Act::Tanh),
            times(2, res(5, Act::Tanh)),
            dense(5, 3, Act::Identity),
        ],
        LossSpec::Softmax(3),
        n,
    )
}

fn rows<const W: usize>(rng: &mut Rng, n: usize, scale: f64) -> Vec<[f64; W]> {
    (0..n)
        .map(|_| core::array::from_fn(|_| scale * rng.sym()))
        .collect()
}

fn flat<const W: usize>(xs: &[[f64; W]]) -> Vec<f64> {
    xs.iter().flatten().copied().collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn forward_one_and_all_match_the_reference_at_any_length() {
    let net = Reg::init(3);
    let mut p = [0.0; Reg::N_PARAMS];
    net.params(&mut p);
    let mut rng = Rng::new(11);
    for n in [1usize, 7, 8, 9, 16, 73] {
        let xs = rows::<3>(&mut rng, n, 1.5);
        let ts = rows::<2>(&mut rng, n, 1.0);
        let r = ref_eval(&reg_spec(n), &p, &flat(&xs), &Target::Mse(flat(&ts)));
        let mut out = vec![[0.0; 2]; n];
        net.forward_all(&xs, &mut out).unwrap();
        for (k, (x, o)) in xs.iter().zip(&out).enumerate() {
            let one = net.forward_one(x).unwrap();
            for j in 0..2 {
                let want = r.outputs[k * 2 + j];
                assert!(
                    close(o[j], want, 1e-13),
                    "n {n} sample {k}: {} vs {want}",
                    o[j]
                );
                assert!(
                    close(one[j], want, 1e-13),
                    "n {n} sample {k}: {} vs {want}",
                    one[j]
                );
            }
        }
        let loss = net.loss_all(&xs, &ts).unwrap();
        assert!(close(loss, r.loss, 1e-13), "n {n}: {loss} vs {}", r.loss);
        let ev = net.evaluate(&xs, &ts).unwrap();
        assert_eq!(ev.samples, n);
        assert!(close(ev.loss, r.loss, 1e-13));
        // Mse<2>: loss = 1/(2n) sum |e|^2 and mse = 1/(2n) sum |e|^2 too (O = 2).
        assert!(close(ev.mse.unwrap(), r.loss, 1e-13), "{:?}", ev);
        assert_eq!(ev.correct, None);
    }
}

#[test]
fn dataset_loss_of_one_batch_is_the_batch_loss() {
    let net = Reg::init(5);
    let mut rng = Rng::new(2);
    let xs = rows::<3>(&mut rng, 8, 1.0);
    let ts = rows::<2>(&mut rng, 8, 1.0);
    let (xb, tb): ([[f64; 3]; 8], [[f64; 2]; 8]) = (
        xs.clone().try_into().unwrap(),
        ts.clone().try_into().unwrap(),
    );
    let batch = net.loss(&xb, &tb).unwrap();
    let all = net.loss_all(&xs, &ts).unwrap();
    assert!(close(batch, all, 1e-14), "{batch} vs {all}");
}

#[test]
fn forward_one_agrees_with_a_batch_one_twin() {
    let net = Reg::init(9);
    let mut twin = Reg1::ZERO;
    let mut p = [0.0; Reg::N_PARAMS];
    net.params(&mut p);
    twin.set_params(&p).unwrap();
    let mut rng = Rng::new(4);
    for x in rows::<3>(&mut rng, 20, 2.0) {
        assert_eq!(net.forward_one(&x).unwrap(), twin.forward(&[x]).unwrap()[0]);
    }
}

#[test]
fn classifier_accuracy_and_loss_are_exact() {
    let net = Cls::init(1);
    let mut p = [0.0; Cls::N_PARAMS];
    net.params(&mut p);
    let mut rng = Rng::new(8);
    for n in [3usize, 5, 12, 101] {
        let xs = rows::<4>(&mut rng, n, 2.0);
        let labels: Vec<usize> = (0..n).map(|_| rng.below(3)).collect();
        let r = ref_eval(
            &cls_spec(n),
            &p,
            &flat(&xs),
            &Target::Labels(labels.clone()),
        );
        let ev = net.evaluate(&xs, &labels).unwrap();
        assert!(
            close(ev.loss, r.loss, 1e-13),
            "n {n}: {} vs {}",
            ev.loss,
            r.loss
        );
        let mut correct = 0;
        for (u, &label) in r.outputs.chunks(3).zip(&labels) {
            let best = (0..3).fold(0, |b, j| if u[j] > u[b] { j } else { b });
            correct += usize::from(best == label);
        }
        assert_eq!(ev.correct, Some(correct));
        assert_eq!(ev.accuracy(), Some(correct as f64 / n as f64));
        assert!(close(net.loss_all(&xs, &labels).unwrap(), r.loss, 1e-13));
    }
}

#[test]
fn f32_net_matches_the_f64_reference() {
    let net = Reg32::init(2);
    let mut p32 = [0.0f32; Reg32::N_PARAMS];
    net.params(&mut p32);
    let p: Vec<f64> = p32.iter().map(|&v| v as f64).collect();
    let mut rng = Rng::new(6);
    let n = 11;
    let xs = rows::<3>(&mut rng, n, 1.0);
    let ts = rows::<2>(&mut rng, n, 1.0);
    let r = ref_eval(&reg_spec(n), &p, &flat(&xs), &Target::Mse(flat(&ts)));
    let x32: Vec<[f32; 3]> = xs.iter().map(|x| x.map(|v| v as f32)).collect();
    let t32: Vec<[f32; 2]> = ts.iter().map(|x| x.map(|v| v as f32)).collect();
    let loss = net.loss_all(&x32, &t32).unwrap() as f64;
    assert!(close(loss, r.loss, 1e-5), "{loss} vs {}", r.loss);
}

#[test]
fn bad_data_sets_are_errors_naming_the_sample() {
    let net = Reg::init(1);
    let mut rng = Rng::new(1);
    let mut xs = rows::<3>(&mut rng, 73, 1.0);
    let mut ts = rows::<2>(&mut rng, 73, 1.0);
    let mut out = vec![[0.0; 2]; 72];
    assert_eq!(
        net.forward_all(&xs, &mut out),
        Err(NetError::LengthMismatch {
            samples: 73,
            len: 72
        })
    );
    assert_eq!(
        net.loss_all(&xs, &ts[..70]),
        Err(NetError::LengthMismatch {
            samples: 73,
            len: 70
        })
    );
    assert_eq!(net.loss_all(&[], &[]), Err(NetError::EmptyDataset));
    assert_eq!(net.evaluate(&[], &[]), Err(NetError::EmptyDataset));
    let mut empty: [[f64; 2]; 0] = [];
    assert_eq!(net.forward_all(&[], &mut empty), Ok(()));
    // Sample 70 sits in the remainder (73 = 9 * 8 + 1 .. ), sample 20 in a block.
    ts[70][1] = f64::NAN;
    assert_eq!(
        net.loss_all(&xs, &ts),
        Err(NetError::NonFiniteTarget {
            sample: 70,
            index: 1
        })
    );
    xs[20][2] = f64::INFINITY;
    assert_eq!(
        net.evaluate(&xs, &ts),
        Err(NetError::NonFiniteInput {
            sample: 20,
            index: 2
        })
    );
    assert_eq!(
        net.forward_one(&xs[20]),
        Err(NetError::NonFiniteInput {
            sample: 0,
            index: 2
        })
    );
    let cls = Cls::init(1);
    let xs = rows::<4>(&mut rng, 7, 1.0);
    let labels = [0, 1, 2, 0, 1, 2, 3];
    assert_eq!(
        cls.evaluate(&xs, &labels),
        Err(NetError::LabelOutOfRange {
            sample: 6,
            label: 3,
            classes: 3
        })
    );
    // Overflow: an error, not an infinity inside Ok. Targets of 1e200 square to infinity.
    let xs = rows::<3>(&mut rng, 11, 1.0);
    let ts = vec![[1e200, 0.0]; 11];
    assert_eq!(net.loss_all(&xs, &ts), Err(NetError::NonFiniteResult));
    assert_eq!(net.evaluate(&xs, &ts), Err(NetError::NonFiniteResult));
    // Every hidden unit at tanh(1) > 0 (first-layer bias 1, other weights and biases 0) and
    // head weights at f64::MAX: each output is a sum of positive terms past f64::MAX.
    let mut big = Reg::ZERO;
    let mut p = [0.0; Reg::N_PARAMS];
    for v in &mut p[Reg::OFFSET_INP + 18..Reg::OFFSET_INP + 24] {
        *v = 1.0;
    }
    for v in &mut p[Reg::OFFSET_HEAD..] {
        *v = f64::MAX;
    }
    big.set_params(&p).unwrap();
    let r = ref_eval(&reg_spec(1), &p, &xs[0], &Target::Mse(vec![0.0, 0.0]));
    assert!(r.outputs.iter().all(|v| v.is_infinite()));
    assert_eq!(big.forward_one(&xs[0]), Err(NetError::NonFiniteResult));
    let mut out = vec![[0.0; 2]; xs.len()];
    assert_eq!(
        big.forward_all(&xs, &mut out),
        Err(NetError::NonFiniteResult)
    );
    assert_eq!(
        big.forward_all(&xs[..1], &mut out[..1]),
        Err(NetError::NonFiniteResult)
    );
}
