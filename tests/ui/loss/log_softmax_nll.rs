// PyTorch's log-softmax head and NLL loss: two mistakes, each on its own token.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, LogSoftmax>,
    loss: NLLLoss<3>,
}

fn main() {}
