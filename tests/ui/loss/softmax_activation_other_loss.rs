// A softmax head before another loss: one error, with both changes.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tanh>,
    head: Dense<8, 3, Softmax>,
    loss: Mse<3>,
}

fn main() {}
