// A factorisation borrows its curvature storage: refilling the storage (here with another
// batch) while the handle is alive is a borrow error, so no solve can mix old factors with
// new blocks.
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 2)]
struct Net {
    inp: Dense<2, 3, Tanh>,
    head: Dense<3, 1, Identity>,
    loss: Mse<1>,
}

fn main() {
    let net = Net::init(1);
    let mut curv = NetCurvature::ZERO;
    net.curvature_into(&mut curv, &[[0.1, 0.2], [0.3, -0.4]], &[[1.0], [0.0]]).unwrap();
    let mut f = curv.factor(1.0).unwrap();
    net.curvature_into(&mut curv, &[[0.5, 0.2], [0.3, 0.9]], &[[0.0], [1.0]]).unwrap();
    let b = [1.0; Net::N_PARAMS];
    let mut x = [0.0; Net::N_PARAMS];
    f.solve(&b, &mut x).unwrap();
}
