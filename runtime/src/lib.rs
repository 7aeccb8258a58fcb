//! The runtime behind the code that `#[tall_skinny_net]` generates (re-exported by the
//! `tall-skinny` crate as `tall_skinny::runtime`; depend on that crate, not on this one).
//!
//! `#![no_std]`, and nothing that generated code calls allocates: every buffer is a
//! fixed-size array whose size the macro computed from the declaration. Linear algebra is
//! nalgebra's (default features off, `libm`). The optional `alloc`/`std` features add heap
//! helpers for callers; generated code never needs them.
//!
//! What users name:
//! - the layer types of a declared network's fields ([`Dense`], [`DenseNoBias`],
//!   [`Residual`], all a [`Layer`]), the [`Activation`]s and the losses ([`Mse`],
//!   [`SoftmaxCrossEntropy`], [`Loss`], [`ElementwiseLoss`]);
//! - the scalar trait [`Real`] and the errors ([`NetError`], [`SolveError`],
//!   [`ConfigError`]);
//! - the storages a network's methods fill and their factorisation handles
//!   ([`curvature::Curvature`] and [`curvature::Factored`] for the exact Hessian and the
//!   Riccati Gauss-Newton form, [`woodbury::Woodbury`] and [`woodbury::WoodburyFactored`]
//!   for the Woodbury form, [`Workspace`]), what every factorisation offers
//!   ([`solver`]), its [`Inertia`] and the refined solve's [`Refinement`];
//! - the optimizers and the [`optim::Model`] trait they work on ([`optim`]), and the
//!   training driver over them ([`train::Trainer`]);
//! - saving and loading parameters as a checked byte record ([`record`], [`Record`]);
//! - zero-copy conversions to and from nalgebra matrices at the boundary ([`boundary`]).
//!
//! Everything generated code needs besides is in a hidden module it alone names; the
//! algorithms themselves (every pass over the layers, the factor and solve sweeps,
//! refinement, the Woodbury solve, the input checks) are written once, here, generic over
//! the list of a network's layers.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
// `!(x > y)` is deliberate throughout: it is true for NaN, which every check must reject.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod activation;
pub mod boundary;
mod chain;
pub mod curvature;
pub mod data;
pub mod error;
pub mod eval;
pub mod ggn;
pub mod laplace;
mod layer;
mod linalg;
pub mod loss;
mod net;
pub mod optim;
pub mod real;
pub mod record;
pub mod refine;
pub mod rng;
#[cfg(feature = "serde")]
pub mod serde_record;
pub mod solver;
mod stage;
pub mod train;
pub mod woodbury;

pub use activation::{Activation, Gelu, Identity, Relu, Sigmoid, Silu, Sin, Softplus, Tanh};
pub use chain::ConstZero;
pub use error::{ConfigError, NetError, SolveError};
pub use eval::Evaluation;
pub use layer::{Dense, DenseNoBias, Layer, Residual};
pub use linalg::ldlt::Inertia;
pub use loss::{ElementwiseLoss, Loss, Mse, SoftmaxCrossEntropy};
pub use net::{NoScratch, Workspace};
pub use real::Real;
pub use record::{Record, RecordError};
pub use refine::Refinement;
pub use rng::SplitMix64;
pub use stage::selinv::LogDet;
pub use stage::stable::{StableFactors, StableSelinvScratch};

pub use bytemuck;
pub use nalgebra;

/// A value allocated directly on the heap as all zeros, never built on the stack first:
/// the way to hold the large storages of deep nets on `std` targets (bytemuck's
/// `zeroed_box`).
#[cfg(feature = "alloc")]
pub fn boxed_zeroed<T: bytemuck::Zeroable>() -> alloc::boxed::Box<T> {
    bytemuck::zeroed_box()
}

/// What generated code names, and nothing else: not part of the public API (no stability
/// promise), and not meant to be used by hand.
#[doc(hidden)]
pub mod __private {
    pub use crate::activation::sign;
    pub use crate::chain::{
        Chain, ChainMut, Cons, ConstZero, CurvChain, Nil, Params, Slot, StageStack,
    };
    pub use crate::curvature::{Curvature, Factored};
    pub use crate::data::{DataError, MiniBatches};
    pub use crate::eval::{evaluate_labels, evaluate_rows, forward_all, forward_one, loss_all};
    pub use crate::ggn::GgnMethod;
    pub use crate::laplace::{output_jacobian, predictive_cov, predictive_cov_all};
    pub use crate::layer::{Layer, Tape};
    pub use crate::linalg::ldlt::{DelayedLdlt, SingularPivot};
    pub use crate::loss::{elementwise, ElementwiseLoss, Loss};
    pub use crate::net::*;
    pub use crate::optim::Model;
    pub use crate::record::{
        architecture_fingerprint, read_record, record_bytes, write_record, Record, RecordError,
    };
    pub use crate::refine::Refinement;
    pub use crate::solver::{Factorization, GradientSolve};
    pub use crate::stage::{Scratch, Stage, StageParts, StageView};
    pub use crate::woodbury::{Woodbury, WoodburyFactored};
    pub use crate::{
        Activation, Evaluation, Gelu, Identity, Inertia, Mse, NetError, Real, Relu, Sigmoid, Silu,
        Sin, SoftmaxCrossEntropy, Softplus, SolveError, Tanh,
    };

    /// Implemented by no type: a generated method bounded by it cannot be called, and the
    /// compiler says why (the by-value `curvature` and `hessian_solve` of a net whose
    /// curvature storage is too large for the stack).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` keeps {BYTES} bytes of curvature storage, too large for the stack: the by-value `curvature` and `hessian_solve` are not available",
        label = "needs the storage on the stack",
        note = "use `curvature_into` / `hessian_solve_in` with the storage in a `static` (`{Self}Curvature::ZERO`) or on the heap without a stack copy (`tall_skinny::boxed_zeroed::<{Self}Curvature>()`)"
    )]
    pub trait CurvatureTooLargeForTheStack<'a, const BYTES: usize> {}
    pub use crate::__serde_impls as serde_impls;
    #[cfg(feature = "serde")]
    pub use crate::serde_record;
    pub use bytemuck;
    pub use nalgebra;
    #[cfg(feature = "serde")]
    pub use serde;
}

/// Without the `serde` feature, generated nets get no serde impls.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __serde_impls {
    ($($any:tt)*) => {};
}
