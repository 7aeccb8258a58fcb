use tall_skinny::prelude::*;

#[activation]
fn sawtooth(x: f64) -> f64 {
    if x > 1.0 {
        sawtooth(x - 1.0)
    } else {
        x
    }
}

fn main() {}
