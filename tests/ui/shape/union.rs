use tall_skinny::prelude::*;

#[tall_skinny_net]
union Net {
    a: u32,
    b: f32,
}

fn main() {}
