use tall_skinny::prelude::*;

#[activation]
fn id<F: Copy>(x: F) -> F {
    x
}

fn main() {}
