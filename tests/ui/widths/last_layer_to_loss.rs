use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<3, 16, Tanh>,
    head: Dense<16, 2, Identity>,
    loss: Mse<3>,
}

fn main() {}
