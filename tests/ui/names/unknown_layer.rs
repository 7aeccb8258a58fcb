use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Linear<2, 8, Tanh>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
