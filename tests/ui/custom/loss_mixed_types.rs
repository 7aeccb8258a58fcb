use tall_skinny::prelude::*;

#[loss]
fn abs_err(y: f64, t: f32) -> f64 {
    (y - t as f64).abs()
}

fn main() {}
