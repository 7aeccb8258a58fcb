// A sigmoid head with PyTorch's binary cross-entropy: two classes of `SoftmaxCrossEntropy`.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 1, Sigmoid>,
    loss: BCELoss<1>,
}

fn main() {}
