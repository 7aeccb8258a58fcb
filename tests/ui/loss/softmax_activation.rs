// A softmax head before `SoftmaxCrossEntropy`: the softmax is already part of the loss.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, Softmax>,
    loss: SoftmaxCrossEntropy<3>,
}

fn main() {}
