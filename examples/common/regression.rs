//! `fit_regression`'s problem, shared by the examples that study it (`lm_f32`, `lm_diagnose`,
//! `accuracy_report`, `lm_geodesic`): the net in f32 and in f64 (with their generated storage
//! types), and the 32 fixed training points.

use tall_skinny::prelude::*;

/// Samples in the batch.
pub const BATCH: usize = 32;

/// `fit_regression`'s net in f32.
#[tall_skinny_net(batch = 32, scalar = f32)]
pub struct Regressor32 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Its f64 twin.
#[tall_skinny_net(batch = 32)]
pub struct Regressor64 {
    inp: Dense<1, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// The 32 points of `sin(3x) + x^2/2 - 0.3 x cos(5x)` on `[-1, 1]`.
pub fn data() -> ([[f64; 1]; BATCH], [[f64; 1]; BATCH]) {
    let x: [[f64; 1]; BATCH] =
        core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / (BATCH - 1) as f64]);
    let t = x.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    (x, t)
}
