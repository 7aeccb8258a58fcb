use tall_skinny::prelude::*;

#[activation(name = "Soft")]
fn softsign(x: f64) -> f64 {
    x / (1.0 + x.abs())
}

fn main() {}
