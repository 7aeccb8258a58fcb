use tall_skinny::prelude::*;

const W: usize = 8;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, W, Tanh>,
    loss: Mse<8>,
}

fn main() {}
