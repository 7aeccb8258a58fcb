// A typo of a custom (or built-in) activation: the compiler resolves the name and suggests
// the similar one in scope.
use tall_skinny::prelude::*;

#[activation]
fn softsign(x: f64) -> f64 {
    x / (1.0 + x.abs())
}

#[tall_skinny_net]
struct Net {
    inp: Dense<2, 8, Softsgin>,
    out: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

fn main() {}
