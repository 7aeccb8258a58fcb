use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
    loss2: Mse<1>,
}

fn main() {}
