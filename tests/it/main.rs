//! The integration tests, one test binary (one link instead of one per file).
//!
//! `cargo test --test it <module>::` runs one file's tests, e.g. `cargo test --test it solve::`.
//! References shared by several files: [`common`] (an independent evaluator of a declared
//! network, generic over num-dual's dual numbers) and [`solve_common`] (dense Hessians, a
//! pivoted LU, symmetric eigenvalues).

#![allow(dead_code)]
// Test tables and closures of dense references have long types by nature.
#![allow(clippy::type_complexity)]

mod common;
mod solve_common;

mod adversarial;
mod custom_activations;
mod data;
mod delayed_sweep;
mod derivative_props;
mod derivatives;
mod eval;
mod ggn;
mod laplace;
mod lm_f32;
mod lm_scaled;
mod optim;
mod paper_baseline;
mod predictive;
mod random_archs;
mod record;
mod runtime_errors;
mod saddle_free;
mod softmax_saturated;
mod solve;
mod solve_accuracy;
mod stable_sweep;
mod storage_sizes;
mod train;
mod trust_region;
mod ui;
mod woodbury_accuracy;
