//! The core the firmware, the host run and the wasm32 build share: an f32 net identifying
//! the damped pendulum of `examples/realtime_loop.rs` with the library's
//! Levenberg-Marquardt, no `std`, no allocator, every buffer in caller (static) storage.
#![no_std]

use tall_skinny::prelude::*;
use tall_skinny::runtime::nalgebra::ComplexField;
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig, LmScaling, Model, NoScale};

/// Samples per batch.
pub const B: usize = 8;
/// Levenberg-Marquardt steps of the run (the trajectory the CI script compares).
pub const STEPS: usize = 100;

/// Depth 16, width 8, batch 8, f32: (theta, omega, torque) -> (dtheta/dt, domega/dt).
#[tall_skinny_net(batch = 8, scalar = f32)]
pub struct Plant {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// The optimizer with the storage it owns (workspace, Gauss-Newton form, vectors), without
/// storage for a column scaling ([`NoScale`]: its `N` scalars would not fit the RAM budget;
/// the damping is `G + lambda I`).
pub type Lm = LevenbergMarquardt<Plant, NoScale>;

/// Everything the run needs, as one value for a `static` (all zeros: in `.bss`).
pub struct State {
    /// The net.
    pub net: Plant,
    /// The optimizer and its storage.
    pub lm: Lm,
}

impl State {
    /// All zeros (an unconfigured optimizer and an all-zero net): [`run`] initialises both.
    pub const ZERO: State = State {
        net: Plant::ZERO,
        lm: Lm::ZERO,
    };
}

/// RAM budget of the statics, checked at compile time: the state (net + optimizer with its
/// storage) must leave at least 8 KiB of the netduinoplus2's 64 KiB budget for the stack.
const _: () = assert!(
    core::mem::size_of::<State>() <= 56 * 1024 && Lm::BYTES < core::mem::size_of::<State>(),
    "the net and the optimizer's storage exceed the 56 KiB static budget",
);

/// The damped pendulum: theta'' = -(g/l) sin(theta) - c theta' + u.
fn derivative(theta: f32, omega: f32, u: f32) -> [f32; 2] {
    [omega, -9.81 * ComplexField::sin(theta) - 0.3 * omega + u]
}

/// The batch: 8 transitions of the pendulum kept every 25 ticks (dt 0.01 s, about one
/// period), driven by realtime_loop's excitation (a sum of slow sines), integrated by
/// semi-implicit Euler in f32 from theta 1, omega 0.
pub fn pendulum_batch() -> ([[f32; 3]; B], [[f32; 2]; B]) {
    const DT: f32 = 0.01;
    const STRIDE: usize = 25;
    let mut xs = [[0.0f32; 3]; B];
    let mut ts = [[0.0f32; 2]; B];
    let (mut theta, mut omega) = (1.0f32, 0.0f32);
    for k in 0..B * STRIDE {
        let time = k as f32 * DT;
        let u = 2.0 * ComplexField::sin(0.7 * time)
            + 1.5 * ComplexField::sin(1.9 * time + 0.5)
            + 0.8 * ComplexField::sin(4.3 * time);
        let d = derivative(theta, omega, u);
        if k % STRIDE == STRIDE - 1 {
            xs[k / STRIDE] = [theta, omega, u];
            ts[k / STRIDE] = d;
        }
        omega += DT * d[1];
        theta += DT * omega;
    }
    (xs, ts)
}

/// What one step reports to the caller's printer.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    /// Step number (0-based).
    pub step: usize,
    /// Loss at the start of the step.
    pub loss: f32,
    /// Damping after the step.
    pub lambda: f32,
    /// Whether the step was accepted.
    pub accepted: bool,
    /// What the step cost on the caller's clock (`now` of [`run`]: instructions on the
    /// firmware, nanoseconds on the host).
    pub cost: u64,
}

/// Outcome of [`run`].
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Loss before the first step.
    pub loss0: f32,
    /// Loss after the last step.
    pub loss_final: f32,
    /// Steps that returned an error.
    pub failed: usize,
    /// Steps that were rejected.
    pub rejected: usize,
}

/// The run's figures as the firmware and the host print them after `RESULT ok|FAIL` (one
/// format for both, so `.ci/embedded` can compare the two lines).
impl core::fmt::Display for Summary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "steps {} loss0 {:e} final {:e} factor {:e} failed {} rejected {}",
            STEPS,
            self.loss0,
            self.loss_final,
            self.loss0 / self.loss_final,
            self.failed,
            self.rejected
        )
    }
}

/// Initialises the net (seed 3) and the optimizer (default settings, one solve per step),
/// then runs [`STEPS`] Levenberg-Marquardt steps on [`pendulum_batch`], calling `each`
/// after every step (outside what a per-step cost measurement should include). `now` is the
/// caller's monotonic clock, read just before and just after each step.
pub fn run(
    state: &mut State,
    mut now: impl FnMut() -> u64,
    mut each: impl FnMut(&Tick),
) -> Summary {
    let (xs, ts) = pendulum_batch();
    state.net.init_in_place(3);
    let config = LmConfig::default()
        .with_max_trials(1)
        .with_scaling(LmScaling::Identity);
    let mut summary = Summary {
        loss0: f32::NAN,
        loss_final: f32::NAN,
        failed: 0,
        rejected: 0,
    };
    if state.lm.configure(config).is_err() {
        summary.failed = STEPS;
        return summary;
    }
    summary.loss0 = state.net.loss_at(&xs, &ts).unwrap_or(f32::NAN);
    for step in 0..STEPS {
        let t0 = now();
        let result = state.lm.step(&mut state.net, &xs, &ts);
        let cost = now().wrapping_sub(t0);
        match result {
            Ok(r) => {
                if !r.accepted {
                    summary.rejected += 1;
                }
                each(&Tick {
                    step,
                    loss: r.loss_before,
                    lambda: state.lm.lambda(),
                    accepted: r.accepted,
                    cost,
                });
            }
            Err(_) => summary.failed += 1,
        }
    }
    summary.loss_final = state.net.loss_at(&xs, &ts).unwrap_or(f32::NAN);
    summary
}

/// Storage sizes in bytes: (net, optimizer with its storage, the optimizer's workspace, its
/// Gauss-Newton storage).
pub fn sizes() -> (usize, usize, usize, usize) {
    (
        core::mem::size_of::<Plant>(),
        core::mem::size_of::<Lm>(),
        core::mem::size_of::<<Plant as Model>::Workspace>(),
        core::mem::size_of::<<Plant as Model>::GaussNewton>(),
    )
}

/// The wasm32 build's entry point: the whole run, returning the final loss.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn tall_skinny_run() -> f32 {
    static mut STATE: State = State::ZERO;
    // SAFETY: wasm32-unknown-unknown is single threaded and this is the only reference.
    let state = unsafe { &mut *core::ptr::addr_of_mut!(STATE) };
    run(state, || 0, |_| {}).loss_final
}

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
