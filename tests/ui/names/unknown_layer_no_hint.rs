use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    conv: Conv<8, 8, Relu>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
