//! Runtime kernels behind the code that `#[tall_skinny_net]` generates.
//!
//! `#![no_std]`, and nothing that generated code calls allocates: every buffer is a
//! fixed-size array whose size the macro computed from the declaration. Linear algebra is
//! nalgebra's (default features off, `libm`). The optional `alloc`/`std` features add heap
//! helpers for callers; generated code never needs them.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod activation;
pub mod error;
pub mod ggn;
pub mod layer;
pub mod linalg;
pub mod loss;
pub mod optim;
pub mod real;
pub mod rng;
pub mod stage;

pub use activation::{Activation, Gelu, Identity, Relu, Sigmoid, Silu, Sin, Softplus, Tanh};
pub use error::{NetError, SolveError};
pub use layer::{Dense, DenseNoBias, Layer, Residual, Tape};
pub use linalg::ldlt::Inertia;
pub use loss::{ElementwiseLoss, Loss, Mse, SoftmaxCrossEntropy};
pub use real::Real;
pub use rng::SplitMix64;
pub use stage::Stage;

pub use bytemuck;
pub use nalgebra;

/// A value allocated directly on the heap as all zeros, never built on the stack first:
/// the way to hold the large workspaces of deep nets on `std` targets
/// (bytemuck's `zeroed_box`).
#[cfg(feature = "alloc")]
pub fn boxed_zeroed<T: bytemuck::Zeroable>() -> alloc::boxed::Box<T> {
    bytemuck::zeroed_box()
}
