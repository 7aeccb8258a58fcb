// `Dense<I, O>` without an activation (a linear layer elsewhere): the fix names `Identity`.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    mid: Dense<8, 8>,
    loss: Mse<8>,
}

fn main() {}
