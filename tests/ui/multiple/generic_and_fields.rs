use tall_skinny::prelude::*;

#[tall_skinny_net(scalar = f16)]
struct Net<T> {
    inp: Dense<2, 8, Tanh>,
    out: Residual<8, 4, Tanh>,
    loss: Mse<4>,
    extra: Mse<4>,
}

fn main() {}
