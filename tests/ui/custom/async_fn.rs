use tall_skinny::prelude::*;

#[activation]
async fn later(x: f64) -> f64 {
    x
}

fn main() {}
