use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, Tanh>,
    loss: Mse<2>,
}

fn main() {}
