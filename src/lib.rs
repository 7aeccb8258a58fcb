//! # tall-skinny
//!
//! Annotate a plain struct that declares a deep, narrow chain network with
//! [`#[tall_skinny_net]`](macro@tall_skinny_net), and get specialised, fully sized,
//! stack-allocated code for its forward pass, loss, gradient and exact Hessian-vector
//! product. The crate is `no_std` without its default `std` feature; nothing generated code
//! calls allocates.
//!
//! ```
//! use tall_skinny::prelude::*;
//!
//! #[tall_skinny_net(batch = 4)]
//! pub struct Policy {
//!     inp: Dense<3, 16, Tanh>,
//!     body: [Residual<16, Tanh>; 8],
//!     head: Dense<16, 2, Identity>,
//!     loss: Mse<2>,
//! }
//!
//! let net = Policy::init(7);
//! let x = [[0.1, -0.2, 0.3]; 4];
//! let t = [[1.0, 0.0]; 4];
//! let mut g = [0.0; Policy::N_PARAMS];
//! let loss = net.gradient(&x, &t, &mut g).unwrap();
//! assert!(loss > 0.0);
//! let mut hv = [0.0; Policy::N_PARAMS];
//! net.hvp(&x, &t, &g, &mut hv).unwrap();
//! ```
//!
//! Your own activations and losses are functions marked [`macro@activation`] and
//! [`macro@loss`]; their derivatives are generated at compile time from the body:
//!
//! ```
//! use tall_skinny::prelude::*;
//!
//! #[activation]
//! fn softsign(x: f64) -> f64 {
//!     x / (1.0 + x.abs())
//! }
//!
//! const DELTA: f64 = 1.0;
//!
//! #[loss]
//! fn huber(y: f64, t: f64) -> f64 {
//!     let r = y - t;
//!     if r.abs() <= DELTA { 0.5 * r * r } else { DELTA * (r.abs() - 0.5 * DELTA) }
//! }
//!
//! #[tall_skinny_net(batch = 2)]
//! struct Net {
//!     a: Dense<2, 8, Softsign>,
//!     b: [Residual<8, Softsign>; 16],
//!     head: Dense<8, 1, Identity>,
//!     loss: Huber<1>,
//! }
//!
//! use tall_skinny::runtime::Activation;
//! assert_eq!(Softsign::d2(1.0), (0.5, 0.25, -0.25));
//! let net = Net::init(1);
//! let mut g = [0.0; Net::N_PARAMS];
//! let loss = net.gradient(&[[0.5, -1.0], [1.0, 2.0]], &[[0.3], [-0.2]], &mut g).unwrap();
//! assert!(loss > 0.0);
//! ```
//!
//! Training with an optimizer of [`runtime::optim`] (each owns the storage its step needs and
//! validates its settings):
//!
//! ```
//! use tall_skinny::prelude::*;
//! use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig, Optimizer};
//!
//! #[tall_skinny_net(batch = 4)]
//! struct Fit {
//!     inp: Dense<1, 8, Tanh>,
//!     body: [Residual<8, Tanh>; 2],
//!     head: Dense<8, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! let mut net = Fit::init(1);
//! let x = [[-1.0], [-0.3], [0.4], [1.0]];
//! let t = [[0.5], [-0.2], [0.1], [0.9]];
//! let mut lm = LevenbergMarquardt::<Fit>::new(LmConfig::default().with_lambda(1e-2))?;
//! let first = lm.step(&mut net, &x, &t)?;
//! for _ in 0..30 {
//!     lm.step(&mut net, &x, &t)?;
//! }
//! assert!(net.loss(&x, &t)? < 1e-3 * first.loss_before);
//! // Settings are checked when the optimizer is built:
//! assert!(LevenbergMarquardt::<Fit>::new(LmConfig::default().with_lambda(f64::NAN)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See the README for the declaration syntax and everything that is generated.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

pub use tall_skinny_macros::{activation, loss, tall_skinny_net};
/// The runtime kernels generated code calls (re-exported so generated paths resolve through
/// this crate alone).
pub use tall_skinny_runtime as runtime;

pub use tall_skinny_runtime::{NetError, SolveError};

#[cfg(feature = "std")]
pub use tall_skinny_runtime::boxed_zeroed;

#[cfg(feature = "argmin")]
pub mod argmin_support;

/// Everything a declaration needs: the attributes, the activations and losses, the errors.
pub mod prelude {
    pub use crate::{activation, loss, tall_skinny_net};
    pub use tall_skinny_runtime::{
        Gelu, Identity, Mse, NetError, Real, Record, RecordError, Relu, Sigmoid, Silu, Sin,
        SoftmaxCrossEntropy, Softplus, SolveError, Tanh,
    };
}
