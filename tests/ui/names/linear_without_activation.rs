// Another library's `Linear<I, O>`: the fix is a whole declaration, `Dense<I, O, Identity>`.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    mid: Linear<8, 8>,
    loss: Mse<8>,
}

fn main() {}
