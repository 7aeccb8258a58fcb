// A typo of an activation is taken as the path of a custom (`#[activation]`) type, so the
// compiler resolves it and suggests the similar name in scope.
use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Tahn>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
