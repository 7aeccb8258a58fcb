use tall_skinny::prelude::*;

// The declaration is wrong, but code that names the struct sees a stand-in, so the only
// error is the one about the declaration (no "cannot find type `Net`").
#[tall_skinny_net]
pub struct Net {
    inp: Dense<2, 8, Tanh>,
    out: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

pub fn takes(_net: &Net) {}

fn main() {}
