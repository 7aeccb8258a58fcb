use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    body: [Dense<8, 16, Tanh>; 3],
    head: Dense<16, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
