use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    mid: DenseNoBias<8, 0, Tanh>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
