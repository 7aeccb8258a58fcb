//! Overhead of the training driver: `Trainer::fit` against a hand-written loop of the same
//! Levenberg-Marquardt steps on the same batches (same net, data and batch seed; both end
//! with bit-identical parameters, which is checked). The two run interleaved, `REPS` times
//! each, and the medians of the time per step are printed side by side.
//!
//! It also counts heap allocations made inside `Trainer::fit` (a counting global
//! allocator): there must be none.
//!
//! `cargo run --release --example train_overhead [-- steps reps]` (defaults 200 and 15).
//! Instruction counts (exact on a noisy machine):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/train_overhead 200 1 icount
//! callgrind_annotate --inclusive=yes cg.out | grep measure_
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::{MiniBatches, Remainder};
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
use tall_skinny::runtime::train::{TrainConfig, TrainReport, Trainer};
use tall_skinny::runtime::SplitMix64;

/// Depth 16, width 8, batch 32 (the README's regression net).
#[tall_skinny_net(batch = 32)]
struct Net {
    inp: Dense<2, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// The system allocator, counting allocations.
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type Batches<'a> = MiniBatches<'a, [f64; 2], [f64; 1], Vec<usize>>;

/// `steps` LM steps by hand, each on the next batch.
#[inline(never)]
fn measure_hand_loop(
    net: &mut Net,
    lm: &mut LevenbergMarquardt<Net>,
    batches: &mut Batches,
    steps: u64,
) {
    for _ in 0..steps {
        let (x, t) = batches.next_batch().unwrap();
        if lm.step(net, &x, &t).is_err() {
            break;
        }
    }
}

/// The same through the driver.
#[inline(never)]
fn measure_driver(
    trainer: &mut Trainer<Net>,
    net: &mut Net,
    lm: &mut LevenbergMarquardt<Net>,
    batches: &mut Batches,
) -> TrainReport<f64> {
    trainer.fit(net, lm, batches, None, ())
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (steps, reps) = (
        args.first().copied().unwrap_or(200),
        args.get(1).copied().unwrap_or(15),
    );
    let mut rng = SplitMix64::new(1);
    let xs: Vec<[f64; 2]> = (0..200)
        .map(|_| [rng.symmetric(), rng.symmetric()])
        .collect();
    let ts: Vec<[f64; 1]> = xs.iter().map(|x| [(3.0 * x[0]).sin() * x[1]]).collect();
    // Every tolerance off: both run exactly `steps` steps.
    let config = TrainConfig::default()
        .with_max_steps(steps)
        .with_max_epochs(u64::MAX)
        .with_ftol(0.0)
        .with_xtol(0.0);

    let hand = || {
        let mut net = Net::init(2);
        let mut lm = LevenbergMarquardt::<Net>::boxed(LmConfig::default()).unwrap();
        let mut batches = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
        let t0 = Instant::now();
        measure_hand_loop(&mut net, &mut lm, &mut batches, steps);
        let dt = t0.elapsed().as_secs_f64();
        let mut p = [0.0; Net::N_PARAMS];
        net.params(&mut p);
        (dt, p)
    };
    let driver = || {
        let mut net = Net::init(2);
        let mut lm = LevenbergMarquardt::<Net>::boxed(LmConfig::default()).unwrap();
        let mut batches = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
        let mut trainer = Trainer::new(config).unwrap();
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let report = measure_driver(&mut trainer, &mut net, &mut lm, &mut batches);
        let dt = t0.elapsed().as_secs_f64();
        let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
        assert_eq!(allocs, 0, "Trainer::fit allocated {allocs} times");
        assert_eq!(report.steps, steps, "{report}");
        let mut p = [0.0; Net::N_PARAMS];
        net.params(&mut p);
        (dt, p)
    };
    if std::env::args().any(|a| a == "icount") {
        // One run of each, for callgrind (see the module docs).
        let ((_, pa), (_, pb)) = (hand(), driver());
        assert_eq!(pa, pb);
        return;
    }

    let (mut th, mut td) = (vec![], vec![]);
    for _ in 0..reps {
        let (a, pa) = hand();
        let (b, pb) = driver();
        assert_eq!(pa, pb, "the driver and the hand loop took different steps");
        th.push(a / steps as f64 * 1e6);
        td.push(b / steps as f64 * 1e6);
    }
    let (mh, md) = (median(&mut th), median(&mut td));
    println!(
        "{} params, batch 32, {steps} LM steps x {reps} interleaved runs: hand loop {mh:.1} us/step, Trainer::fit {md:.1} us/step (median), ratio {:.4}; 0 allocations inside fit",
        Net::N_PARAMS,
        md / mh
    );
}
