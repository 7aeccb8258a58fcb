use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 2)]
struct Net {
    inp: Dense<2, 8, Tanh>,
    body: [Residual<16, Tanh>; 4],
    head: Dense<16, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
