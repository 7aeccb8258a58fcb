use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net;

fn main() {}
