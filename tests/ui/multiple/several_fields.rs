use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 4)]
struct Net {
    inp: Dense<0, 8, Tanh>,
    body: [Residual<8, Tanh>; 0],
    mid: Dense<4, 4, Sigmoid>,
    conv: Conv<4, 4>,
    head: Dense<4, 2, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

fn main() {}
