// Custom activations and a custom loss from another module, by path and by `use`, in an
// f32 net; the user's functions stay callable.
mod acts {
    use tall_skinny::prelude::*;

    /// Softsign.
    #[activation]
    pub fn softsign(x: f64) -> f64 {
        x / (1.0 + x.abs())
    }

    pub const SCALE: f64 = 1.7159;

    #[activation]
    pub fn scaled_tanh(x: f32) -> f32 {
        SCALE as f32 * (2.0 / 3.0 * x).tanh()
    }

    #[loss]
    pub fn log_cosh(y: f64, t: f64) -> f64 {
        (y - t).cosh().ln()
    }
}

use acts::ScaledTanh;
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 2, scalar = f32)]
pub struct Net {
    inp: Dense<2, 4, acts::Softsign>,
    body: [Residual<4, ScaledTanh>; 2],
    out: Dense<4, 1, Identity>,
    loss: acts::LogCosh<1>,
}

fn main() {
    let net = Net::init(3);
    let mut g = [0.0f32; Net::N_PARAMS];
    let l = net.gradient(&[[0.5, -1.0], [1.0, 2.0]], &[[0.25], [-0.5]], &mut g).unwrap();
    assert!(l > 0.0 && l.is_finite());
    assert_eq!(acts::softsign(1.0), 0.5);
    assert!(acts::scaled_tanh(0.0) == 0.0);
}
