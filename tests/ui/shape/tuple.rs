use tall_skinny::prelude::*;

#[tall_skinny_net]
struct Net(Dense<2, 8, Tanh>, Dense<8, 1, Identity>, Mse<1>);

fn main() {}
