use tall_skinny::prelude::*;

#[tall_skinny_net]
enum Net {
    Small,
    Large,
}

fn main() {}
