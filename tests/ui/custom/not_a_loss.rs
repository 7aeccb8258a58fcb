use tall_skinny::prelude::*;

#[derive(Clone, Copy, Debug, Default)]
struct Huber<const O: usize>;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    out: Dense<8, 1, Identity>,
    loss: Huber<1>,
}

fn main() {}
