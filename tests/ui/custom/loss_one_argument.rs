use tall_skinny::prelude::*;

#[loss]
fn squared(y: f64) -> f64 {
    y * y
}

fn main() {}
