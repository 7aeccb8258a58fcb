use tall_skinny::prelude::*;

// Every mistake of one declaration is reported in one build: the attribute's and the
// fields' together, parse errors together with width checks.
#[tall_skinny_net(batch = 0, precision = f32)]
struct Net {
    inp: Dense<2, 8, tanh>,
    body: [Residual<16, Tanh>; 4],
    head: Dense<16, 2, Identity>,
    loss: Mse<3>,
}

fn main() {}
