use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    loss: Mse<1>,
    inp: Dense<2, 8, Tanh>,
    out: Dense<8, 1, Identity>,
}

fn main() {}
