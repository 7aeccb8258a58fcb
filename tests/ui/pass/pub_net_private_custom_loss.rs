// A public net may end in a loss made by `#[loss]` from a private function: it keeps every
// method and its `Model` impl (the optimizers work on it).
use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};

#[loss]
fn pseudo_huber(y: f64, t: f64) -> f64 {
    let r = y - t;
    (1.0 + r * r).sqrt() - 1.0
}

#[tall_skinny_net(batch = 4)]
pub struct Public {
    inp: Dense<1, 6, Tanh>,
    head: Dense<6, 1, Identity>,
    loss: PseudoHuber<1>,
}

fn main() {
    let mut net = Public::init(2);
    let x = [[-1.0], [-0.3], [0.4], [1.0]];
    let t = [[0.5], [-0.2], [0.1], [0.9]];
    let before = net.loss(&x, &t).unwrap();
    let mut lm = LevenbergMarquardt::<Public>::new(LmConfig::default()).unwrap();
    for _ in 0..10 {
        lm.step(&mut net, &x, &t).unwrap();
    }
    assert!(net.loss(&x, &t).unwrap() < before);
}
