// A classifier in f32 with integer labels, every activation, and all three layer kinds.
use tall_skinny::prelude::*;

#[tall_skinny_net(scalar = f32, batch = 3)]
struct Classifier {
    a: Dense<4, 8, Identity>,
    b: Residual<8, Tanh>,
    c: Residual<8, Sigmoid>,
    d: Residual<8, Softplus>,
    e: Residual<8, Relu>,
    f: Residual<8, Gelu>,
    g: Residual<8, Silu>,
    h: [Residual<8, Sin>; 2],
    head: DenseNoBias<8, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

fn main() {
    let net = Classifier::init(3);
    let x: [[f32; 4]; 3] = [[0.5, -0.5, 0.25, 0.0]; 3];
    let labels = [0usize, 2, 1];
    let mut g = [0.0f32; Classifier::N_PARAMS];
    let l = net.gradient(&x, &labels, &mut g).unwrap();
    assert!(l.is_finite() && l > 0.0);
    assert!(net.loss(&x, &[0, 1, 3]).is_err(), "label 3 is out of range for 3 classes");
}
