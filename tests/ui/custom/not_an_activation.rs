use tall_skinny::prelude::*;

#[derive(Clone, Copy, Debug, Default)]
struct Softsign;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Softsign>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
