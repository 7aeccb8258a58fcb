//! Online system identification of a simulated damped pendulum: a depth-16, width-8 residual
//! tanh net learns the plant's dynamics (state and torque in, state derivative out) with one
//! Levenberg-Marquardt step per control tick on a sliding batch of 8 transitions: the newest
//! one, and 7 kept every STRIDE ticks (argument, default 25: the batch spans about one
//! pendulum period, 2 s; with 1 it is the last 8 ticks, which fits the newest samples but
//! identifies the dynamics poorly, see the held-out column).
//! Prints the step latency (p50, p99, max) and the one-step prediction error over time, and
//! counts heap allocations inside the loop (a counting global allocator): everything is
//! allocated before the loop starts.
//!
//! `cargo run --release --example realtime_loop [STRIDE]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time of this thread in seconds (Linux `CLOCK_THREAD_CPUTIME_ID`): the step's own cost,
/// without the time the scheduler gave other processes on a shared machine.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> f64 {
    f64::NAN
}

fn percentiles(v: &[f64]) -> (f64, f64, f64) {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize] * 1e6;
    (pct(0.5), pct(0.99), sorted[sorted.len() - 1] * 1e6)
}

const B: usize = 8;

/// Depth 16, width 8, batch 8: (theta, omega, torque) -> (dtheta/dt, domega/dt).
#[tall_skinny_net(batch = 8)]
pub struct Plant {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// The damped pendulum: theta'' = -(g/l) sin(theta) - c theta' + u.
fn derivative(theta: f64, omega: f64, u: f64) -> [f64; 2] {
    [omega, -9.81 * theta.sin() - 0.3 * omega + u]
}

fn main() {
    const TICKS: usize = 20_000;
    const DT: f64 = 0.01;
    const WINDOW: usize = 2_000;
    let stride: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(25);
    #[allow(non_snake_case)]
    let STRIDE = stride.max(1);
    // Everything the loop touches, allocated up front.
    let mut net = Box::new(Plant::init(3));
    let mut lm = LevenbergMarquardt::<Plant>::boxed(LmConfig::default().with_max_trials(1))
        .expect("valid settings");
    let mut latencies: Vec<f64> = Vec::with_capacity(TICKS);
    let mut cpu_times: Vec<f64> = Vec::with_capacity(TICKS);
    let mut errors: Vec<f64> = Vec::with_capacity(TICKS);
    let mut xs = [[0.0f64; 3]; B];
    let mut ts = [[0.0f64; 2]; B];
    let (mut theta, mut omega) = (1.0f64, 0.0f64);
    // Held-out check: 8 fixed states (not on the trajectory), evaluated at the end of every
    // window, outside the timed step.
    let probe: [[f64; 3]; B] = [
        [-0.8, -1.5, -1.0],
        [-0.4, 2.0, 0.5],
        [0.0, -0.5, 2.0],
        [0.3, 1.0, -2.0],
        [0.6, -2.0, 1.0],
        [0.9, 0.5, -0.5],
        [-1.0, 0.0, 0.0],
        [1.2, -1.0, 1.5],
    ];
    let probe_truth = probe.map(|[th, om, u]| derivative(th, om, u));
    let mut held_out: Vec<f64> = Vec::with_capacity(TICKS / WINDOW + 1);
    let mut rejected = 0usize;
    let mut failed = 0usize;

    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    for k in 0..TICKS {
        // Excitation: a sum of slow sines (what the controller would apply).
        let time = k as f64 * DT;
        let u =
            2.0 * (0.7 * time).sin() + 1.5 * (1.9 * time + 0.5).sin() + 0.8 * (4.3 * time).sin();
        let x = [theta, omega, u];
        // The plant's true derivative at this tick (measured by finite differences of the
        // integrated trajectory in practice; here exact).
        let d = derivative(theta, omega, u);
        // One-step prediction error of the model before it sees this sample.
        if k >= B {
            let mut probe = xs;
            probe[B - 1] = x;
            if let Ok(pred) = net.forward(&probe) {
                let e = ((pred[B - 1][0] - d[0]).powi(2) + (pred[B - 1][1] - d[1]).powi(2)).sqrt();
                errors.push(e);
            }
        }
        // Slide the batch: the newest sample always in the last slot; every STRIDE ticks it
        // is kept and the oldest dropped, so the batch spans 8 * STRIDE ticks of trajectory.
        if k % STRIDE == 0 {
            xs.copy_within(1.., 0);
            ts.copy_within(1.., 0);
        }
        xs[B - 1] = x;
        ts[B - 1] = d;
        // Integrate the plant (semi-implicit Euler).
        omega += DT * d[1];
        theta += DT * omega;
        if k + 1 < B * STRIDE {
            continue;
        }
        if (k + 1) % WINDOW == 0 {
            let pred = net.forward(&probe).unwrap_or([[f64::NAN; 2]; B]);
            let mut se = 0.0;
            for n in 0..B {
                se += (pred[n][0] - probe_truth[n][0]).powi(2)
                    + (pred[n][1] - probe_truth[n][1]).powi(2);
            }
            held_out.push((se / B as f64).sqrt());
        }
        let cpu0 = thread_cpu_time();
        let start = Instant::now();
        let report = lm.step(&mut net, &xs, &ts);
        let elapsed = start.elapsed().as_secs_f64();
        cpu_times.push(thread_cpu_time() - cpu0);
        latencies.push(elapsed);
        match report {
            Ok(r) if !r.accepted => rejected += 1,
            Ok(_) => {}
            Err(_) => failed += 1,
        }
    }
    let allocs_in_loop = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;

    let (p50, p99, max) = percentiles(&latencies);
    let (c50, c99, cmax) = percentiles(&cpu_times);
    println!(
        "Plant: depth {}, width 8, batch {}, {} parameters, f64; Gauss-Newton solve {:?}",
        Plant::DEPTH,
        Plant::BATCH,
        Plant::N_PARAMS,
        Plant::GGN_METHOD
    );
    println!(
        "{} Levenberg-Marquardt steps (one per tick, dt {DT} s): {} rejected, {} failed",
        latencies.len(),
        rejected,
        failed
    );
    println!("step latency (wall clock):  p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs");
    println!("step latency (thread CPU):  p50 {c50:.1} µs, p99 {c99:.1} µs, max {cmax:.1} µs");
    println!("heap allocations inside the loop: {allocs_in_loop}");
    println!(
        "\nprediction error |f_net(x) - f(x)|: one step ahead on each new sample before the model"
    );
    println!(
        "sees it (RMS and max per window of {WINDOW} ticks), and RMS on 8 fixed held-out states"
    );
    println!("at the end of the window:");
    println!("| ticks | one-step RMS | one-step max | held-out RMS |");
    println!("|---|---|---|---|");
    for (w, chunk) in errors.chunks(WINDOW).enumerate() {
        let rms = (chunk.iter().map(|e| e * e).sum::<f64>() / chunk.len() as f64).sqrt();
        let max = chunk.iter().cloned().fold(0.0, f64::max);
        let h = held_out
            .get(w)
            .map_or("-".to_string(), |v| format!("{v:.3e}"));
        println!(
            "| {}-{} | {:.3e} | {:.3e} | {h} |",
            w * WINDOW + B,
            w * WINDOW + B + chunk.len(),
            rms,
            max
        );
    }
    if failed > 0 || allocs_in_loop > 0 {
        eprintln!(
            "FAILED: {failed} steps returned an error, {allocs_in_loop} allocations in the loop"
        );
        std::process::exit(1);
    }
}
