// Doc comments, visibility, derive-free structs in modules, a raw identifier, fully
// qualified loss and activation paths, and `batch` as the only argument with a trailing comma.
mod nets {
    use tall_skinny::prelude::*;

    /// A tiny regression net.
    #[tall_skinny_net(batch = 2,)]
    pub struct Tiny {
        /// The only layer.
        pub r#in: Dense<1, 1, tall_skinny::prelude::Identity>,
        pub(crate) loss: tall_skinny::prelude::Mse<1>,
    }
}

fn main() {
    let mut net = nets::Tiny::ZERO;
    net.set_params(&[2.0, 0.5]).unwrap();
    let y = net.forward(&[[1.0], [3.0]]).unwrap();
    assert_eq!(y, [[2.5], [6.5]]);
    assert_eq!(nets::Tiny::OFFSET_IN, 0);
    assert_eq!(nets::Tiny::PARAMS_IN, 2);
}
