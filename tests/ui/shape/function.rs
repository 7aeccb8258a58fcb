use tall_skinny::prelude::*;

#[tall_skinny_net]
fn net() {}

fn main() {}
