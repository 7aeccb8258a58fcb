use tall_skinny::prelude::*;

#[activation]
fn step(x: i32) -> i32 {
    x.max(0)
}

fn main() {}
