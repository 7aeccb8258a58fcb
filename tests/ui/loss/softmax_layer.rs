// A softmax as a layer of its own, as in a sequential model.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, Identity>,
    probs: Softmax,
    loss: CrossEntropyLoss<3>,
}

fn main() {}
