// The declarations that the fixes in the messages of `widths/missing_activation.rs`,
// `loss/softmax_activation_other_loss.rs` and `loss/binary_cross_entropy.rs` (several
// outputs) make: they compile and run.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Linear {
    inp: Dense<2, 8, Tanh>,
    mid: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

#[tall_skinny_net(batch = 2)]
struct Classifier {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

// Copied from the message for `loss: BCEWithLogitsLoss<3>`.
#[loss] fn bce_with_logits(y: f64, t: f64) -> f64 { if y > 0.0 { (1.0 + (-y).exp()).ln() + y * (1.0 - t) } else { (1.0 + y.exp()).ln() - y * t } }

#[tall_skinny_net(batch = 2)]
struct MultiLabel {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, Identity>,
    loss: BceWithLogits<3>,
}

fn main() {
    let mut g = [0.0; Linear::N_PARAMS];
    let l = Linear::init(1)
        .gradient(&[[0.5, -1.0]], &[[0.1; 8]], &mut g)
        .unwrap();
    assert!(l.is_finite());
    let mut g = [0.0; Classifier::N_PARAMS];
    let l = Classifier::init(2)
        .gradient(&[[0.5, -1.0], [1.0, 2.0]], &[0, 2], &mut g)
        .unwrap();
    assert!(l > 0.0 && l.is_finite());
    // The loss is binary cross-entropy on the scores: at y = 0 it is ln 2 whatever t is.
    assert!((bce_with_logits(0.0, 1.0) - core::f64::consts::LN_2).abs() < 1e-15);
    assert!((bce_with_logits(0.0, 0.0) - core::f64::consts::LN_2).abs() < 1e-15);
    // ... and it equals softplus(y) - t y on both sides, without overflow for large |y|.
    for (y, t) in [(3.0f64, 0.25), (-3.0, 0.75)] {
        let direct = (1.0 + y.exp()).ln() - t * y;
        assert!((bce_with_logits(y, t) - direct).abs() < 1e-12);
    }
    assert!(bce_with_logits(800.0, 1.0).abs() < 1e-12);
    assert!((bce_with_logits(-800.0, 1.0) - 800.0).abs() < 1e-9);
    let mut g = [0.0; MultiLabel::N_PARAMS];
    let l = MultiLabel::init(3)
        .gradient(&[[0.5, -1.0], [1.0, 2.0]], &[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], &mut g)
        .unwrap();
    assert!(l > 0.0 && l.is_finite());
}
