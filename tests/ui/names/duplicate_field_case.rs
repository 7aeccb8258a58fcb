use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    layer: Dense<2, 8, Tanh>,
    Layer: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
