use tall_skinny::prelude::*;

#[activation]
fn scaled(x: f64, k: f64) -> f64 {
    k * x.tanh()
}

fn main() {}
