// The by-value `hessian_solve` and `curvature` of a net whose curvature storage is over 1 MiB
// would overflow the stack: calling them is an error that says what to call instead.
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 32)]
struct Big {
    inp: Dense<8, 16, Tanh>,
    body: [Residual<16, Tanh>; 4],
    head: Dense<16, 4, Identity>,
    loss: Mse<4>,
}

fn main() {
    let net = Big::init(1);
    let x = [[0.1; 8]; 32];
    let t = [[0.0; 4]; 32];
    let b = [1.0; Big::N_PARAMS];
    let mut out = [0.0; Big::N_PARAMS];
    let _ = net.hessian_solve(&x, &t, 1e-3, &b, &mut out);
}
