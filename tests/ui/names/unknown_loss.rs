use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    out: Dense<8, 3, Identity>,
    loss: CrossEntropy<3>,
}

fn main() {}
