use tall_skinny::prelude::*;

#[activation]
fn wobble(x: f64) -> f64 {
    x.exp2() + 1.0
}

fn main() {
    let _ = wobble(1.0);
}
