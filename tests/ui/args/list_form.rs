use tall_skinny::prelude::*;

#[tall_skinny_net(batch(4))]
struct Net {
    inp: Dense<2, 8, Tanh>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
