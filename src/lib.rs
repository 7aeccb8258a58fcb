//! # tall-skinny
//!
//! Deep, narrow chain networks (a few inputs, width 4 to 64, tens to thousands of layers)
//! with exact second-order methods: annotate a plain struct that declares the layers with
//! [`#[tall_skinny_net]`](macro@tall_skinny_net), and get specialised, fully sized,
//! stack-allocated code for the forward pass, the loss, the gradient, the exact
//! Hessian-vector product and exact damped solves `(H + eps I)^{-1} b` in time linear in
//! depth. `no_std` without the default `std` feature; nothing generated code calls
//! allocates.
//!
//! ```toml
//! [dependencies]
//! tall-skinny = "0.1"
//! ```
//!
//! This page is the tutorial: declare, evaluate, train, solve, deploy. The math behind the
//! solves is in `docs/math.md` of the repository.
//!
//! ## Declaring a network
//!
//! A struct of layer fields ending in a loss. The batch is fixed at compile time (it is what
//! `gradient`, `hvp`, the solves and the optimizers work on); `scalar = f32` selects `f32`.
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
//! let net = Policy::init(7); // seeded, scaled initialisation
//! let x = [[0.1, -0.2, 0.3]; 4]; // a batch: one row per sample
//! let t = [[1.0, 0.0]; 4];
//! let mut g = [0.0; Policy::N_PARAMS];
//! let loss = net.gradient(&x, &t, &mut g)?;
//! assert!(loss > 0.0);
//! let mut hv = [0.0; Policy::N_PARAMS];
//! net.hvp(&x, &t, &g, &mut hv)?; // exact H g, no N x N matrix
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Bad numbers are errors, never NaN: a NaN input is `NetError::NonFiniteInput` naming the
//! sample and entry.
//!
//! ## Evaluating on a data set of any size
//!
//! Every net evaluates one sample, or any number of samples, whatever its batch: no padding
//! and no second declaration at batch 1 (see [`runtime::eval`]).
//!
//! ```
//! use tall_skinny::prelude::*;
//!
//! #[tall_skinny_net(batch = 8)]
//! struct Reg {
//!     inp: Dense<2, 6, Tanh>,
//!     body: [Residual<6, Tanh>; 3],
//!     head: Dense<6, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! let net = Reg::init(1);
//! let y: [f64; 1] = net.forward_one(&[0.5, -0.5])?; // one sample
//!
//! // 73 samples: blocks of 8 as batches, the remaining 1 alone.
//! let xs: Vec<[f64; 2]> = (0..73).map(|k| [k as f64 / 73.0, 0.5]).collect();
//! let ts: Vec<[f64; 1]> = xs.iter().map(|x| [x[0] * x[1]]).collect();
//! let mut ys = vec![[0.0; 1]; xs.len()];
//! net.forward_all(&xs, &mut ys)?;
//! assert_eq!(ys[0], net.forward_one(&xs[0])?);
//! let ev = net.evaluate(&xs, &ts)?; // exact loss and MSE over all 73
//! assert_eq!(ev.samples, 73);
//! assert!((ev.loss - net.loss_all(&xs, &ts)?).abs() < 1e-15);
//! println!("{ev}");
//! # let _ = y;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Seeded train/validation/test splits and shuffled mini-batches of the net's batch shape
//! are in [`runtime::data`].
//!
//! ## Training on a data set
//!
//! The training driver [`runtime::train::Trainer`] runs epochs of seeded mini-batches
//! ([`runtime::data::MiniBatches`]) through any optimizer, checks its tolerances, validates on
//! the exact loss of the whole validation set, stops when the validation loss stops improving
//! (patience) and puts back the best parameters. It allocates nothing, and it ends with a
//! [`runtime::train::TerminationReason`] and a [`runtime::train::TrainReport`], never a
//! panic:
//!
//! ```
//! use tall_skinny::prelude::*;
//! use tall_skinny::runtime::data::{shuffle_split, MiniBatches, Remainder};
//! use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
//! use tall_skinny::runtime::train::{TrainConfig, Trainer};
//!
//! #[tall_skinny_net(batch = 8)]
//! struct Curve {
//!     inp: Dense<1, 6, Tanh>,
//!     body: [Residual<6, Tanh>; 3],
//!     head: Dense<6, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! // 100 samples of sin(3x) on [-1, 1), split 60 / 20 / 20 after a seeded shuffle.
//! let mut xs: Vec<[f64; 1]> = (0..100).map(|k| [k as f64 / 50.0 - 1.0]).collect();
//! let mut ts: Vec<[f64; 1]> = xs.iter().map(|x| [(3.0 * x[0]).sin()]).collect();
//! let split = shuffle_split(&mut xs, &mut ts, 42, 20, 20).unwrap();
//!
//! let mut net = Curve::init(1);
//! let mut lm = LevenbergMarquardt::new(LmConfig::default()).unwrap();
//! let mut batches =
//!     MiniBatches::with_vec(split.train.0, split.train.1, 7, Remainder::Carry).unwrap();
//! let config = TrainConfig::default().with_max_epochs(50).with_patience(5);
//! let report = Trainer::new(config).unwrap().fit(
//!     &mut net,
//!     &mut lm,
//!     &mut batches,
//!     Some(split.val),
//!     (), // an observer: `()` watches nothing; `train::LogObserver`, `ProgressObserver`
//! );
//! println!("{report}");
//! assert!(!report.reason.is_error());
//! let test = net.evaluate(split.test.0, split.test.1).unwrap(); // exact, any length
//! assert!(test.mse.unwrap() < 1e-2, "{test}");
//! ```
//!
//! ## The real-time loop: one optimizer step per call
//!
//! Each optimizer of [`runtime::optim`] owns exactly the storage its step needs, validates
//! its settings when built, and does one step on one batch per call, so a control loop
//! decides how many steps it can afford. A [`StepReport`](runtime::optim::StepReport)
//! says what the step did.
//!
//! ```
//! use tall_skinny::prelude::*;
//! use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
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
//!     let report = lm.step(&mut net, &x, &t)?;
//!     if report.gradient_norm < 1e-10 {
//!         break;
//!     }
//! }
//! assert!(net.loss(&x, &t)? < 1e-3 * first.loss_before);
//! // Settings are checked when the optimizer is built:
//! assert!(LevenbergMarquardt::<Fit>::new(LmConfig::default().with_lambda(f64::NAN)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`DampedNewton`](runtime::optim::DampedNewton) and
//! [`TrustRegion`](runtime::optim::TrustRegion) step on the exact Hessian the same way;
//! [`Adam`](runtime::optim::Adam) and [`Sgd`](runtime::optim::Sgd) are the first-order
//! baselines. Large optimizers go on the heap without a stack copy with `boxed`.
//!
//! ## The exact Newton step and its inertia
//!
//! `(H + eps I)^{-1} g` with the exact Hessian, in time linear in depth. Fill a curvature
//! storage once, factor it at any `eps`, solve as often as needed; the factorisation also
//! gives the [`Inertia`](runtime::Inertia) of `H + eps I` (how many eigenvalues are
//! negative, zero, positive), which says whether the step is a descent direction.
//!
//! ```
//! use tall_skinny::prelude::*;
//!
//! #[tall_skinny_net(batch = 2)]
//! struct Ctl {
//!     inp: Dense<2, 4, Tanh>,
//!     body: [Residual<4, Tanh>; 4],
//!     head: Dense<4, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! let net = Ctl::init(3);
//! let (x, t) = ([[0.2, -0.4], [0.9, 0.1]], [[0.3], [-0.5]]);
//! let mut g = [0.0; Ctl::N_PARAMS];
//! net.gradient(&x, &t, &mut g)?;
//!
//! let mut curv = CtlCurvature::ZERO; // or tall_skinny::boxed_zeroed() for deep nets
//! net.curvature_into(&mut curv, &x, &t)?;
//! let eps = 1e-2;
//! let mut f = curv.factor(eps)?;
//! let mut d = [0.0; Ctl::N_PARAMS];
//! let refined = f.solve_refined(&g, &mut d, 2)?; // d = (H + eps I)^-1 g
//! let inertia = f.inertia();
//! assert_eq!(inertia.negative + inertia.zero + inertia.positive, Ctl::N_PARAMS);
//!
//! // Check against the exact product: (H + eps I) d = g.
//! let mut hd = [0.0; Ctl::N_PARAMS];
//! net.hvp(&x, &t, &d, &mut hd)?;
//! let r: f64 = (0..Ctl::N_PARAMS).map(|i| (hd[i] + eps * d[i] - g[i]).powi(2)).sum();
//! let gn: f64 = g.iter().map(|v| v * v).sum();
//! assert!((r / gn).sqrt() < 1e-8, "{}", refined.residual);
//! if inertia.is_positive_definite() {
//!     // -d is a descent direction.
//!     assert!(d.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() > 0.0);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `net.hessian_solve(&x, &t, eps, &g, &mut d)` does all of this in one call and returns the
//! inertia; `ggn_solve_in` solves with the Gauss-Newton matrix `J' Hl J` instead.
//!
//! ## Saving and loading
//!
//! `to_bytes` / `from_bytes` write and read a checked record (magic, version, scalar, an
//! architecture fingerprint computed at compile time, the parameters, a checksum;
//! [`runtime::record`]), without `std` or allocation. The fingerprint ignores the batch and
//! the scalar, so a net trained in `f64` at batch 32 deploys as the same layers in `f32` at
//! batch 1; another architecture is an error naming both fingerprints, and a failed load
//! leaves the net unchanged. With `std`, `save(path)` and `load(path)` do the same through
//! a file ([`Record`](runtime::Record), in the prelude).
//!
//! ```
//! use tall_skinny::prelude::*;
//!
//! #[tall_skinny_net(batch = 32)]
//! struct Trained {
//!     inp: Dense<3, 8, Tanh>,
//!     body: [Residual<8, Tanh>; 4],
//!     head: Dense<8, 2, Identity>,
//!     loss: Mse<2>,
//! }
//!
//! #[tall_skinny_net(batch = 1, scalar = f32)]
//! struct Deployed {
//!     inp: Dense<3, 8, Tanh>,
//!     body: [Residual<8, Tanh>; 4],
//!     head: Dense<8, 2, Identity>,
//!     loss: Mse<2>,
//! }
//!
//! #[tall_skinny_net(batch = 1, scalar = f32)]
//! struct Wider {
//!     inp: Dense<3, 9, Tanh>,
//!     body: [Residual<9, Tanh>; 4],
//!     head: Dense<9, 2, Identity>,
//!     loss: Mse<2>,
//! }
//!
//! let net = Trained::init(5);
//! let mut bytes = [0u8; Trained::RECORD_BYTES];
//! net.to_bytes(&mut bytes)?;
//!
//! let small = Deployed::from_bytes(&bytes)?; // f64 -> f32, every entry checked
//! let x = [0.1, 0.2, 0.3];
//! let (a, b) = (net.forward_one(&x)?, small.forward_one(&x.map(|v| v as f32))?);
//! assert!((a[0] - f64::from(b[0])).abs() < 1e-5);
//!
//! match Wider::from_bytes(&bytes) {
//!     Err(RecordError::ArchitectureMismatch { expected, found }) => {
//!         assert_eq!((expected, found), (Wider::ARCH_FINGERPRINT, Trained::ARCH_FINGERPRINT));
//!     }
//!     _ => unreachable!(),
//! }
//!
//! // With `std`: through a file.
//! let path = std::env::temp_dir().join(format!("tall-skinny-doc-{}.tsk", std::process::id()));
//! net.save(&path)?;
//! let mut again = Deployed::ZERO;
//! again.load(&path)?;
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `serde` feature every net is `Serialize` / `Deserialize` (the architecture, its
//! fingerprint and the parameters; checked the same way).
//!
//! ## nalgebra at the boundary
//!
//! A batch `[[T; I]; B]` is exactly the storage of nalgebra's `SMatrix<T, I, B>` (a column
//! per sample), a sample or a parameter vector `[T; N]` that of `SVector<T, N>`: the
//! conversions of [`runtime::boundary`] are zero-copy views, both ways, also for data sets
//! of any length (`I x n` matrix views).
//!
//! ## Your own activations and losses
//!
//! Functions marked [`macro@activation`] and [`macro@loss`]; their derivatives are generated
//! at compile time from the body:
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
//! ## Features
//!
//! - `std` (default): heap helpers ([`boxed_zeroed`], the optimizers' `boxed`), `save` /
//!   `load` through files.
//! - `serde`: `Serialize` / `Deserialize` for every declared net (no_std, no alloc).
//! - `argmin`: the argmin integration (`argmin_support`).
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
