use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    body: [Residual<8>; 4],
    loss: Mse<8>,
}

fn main() {}
