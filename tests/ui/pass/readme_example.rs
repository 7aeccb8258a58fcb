// The declaration from the crate docs, used through the generated API.
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 4)]
pub struct Policy {
    inp: Dense<3, 16, Tanh>,
    body: [Residual<16, Tanh>; 32],
    mid: DenseNoBias<16, 16, Sin>,
    head: Dense<16, 2, Identity>,
    loss: Mse<2>,
}

fn main() {
    assert_eq!(Policy::INPUTS, 3);
    assert_eq!(Policy::OUTPUTS, 2);
    assert_eq!(Policy::BATCH, 4);
    assert_eq!(Policy::DEPTH, 35);
    let n = (3 * 16 + 16) + 32 * (16 * 16 + 16) + 16 * 16 + (16 * 2 + 2);
    assert_eq!(Policy::N_PARAMS, n);
    assert_eq!(Policy::OFFSET_INP, 0);
    assert_eq!(Policy::OFFSET_BODY, 3 * 16 + 16);
    assert_eq!(Policy::PARAMS_BODY, 16 * 16 + 16);
    let net = Policy::init(1);
    let x = [[0.1, -0.2, 0.3]; 4];
    let t = [[1.0, 0.0]; 4];
    let y = net.forward(&x).unwrap();
    assert!(y.iter().flatten().all(|v: &f64| v.is_finite()));
    assert!(net.loss(&x, &t).unwrap() >= 0.0);
}
