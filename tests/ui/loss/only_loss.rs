use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    loss: Mse<1>,
}

fn main() {}
