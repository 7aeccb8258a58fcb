//! `gradient` and `hvp` of `inp: Dense<8, 8, Tanh>`, `body: [Residual<8, Tanh>; D - 2]`,
//! `head: Dense<8, 8, Identity>`, `loss: Mse<8>` (depth D), for D = 8, 64, 512, batch 1 and 8,
//! f64 and f32. Benchmark ids: `gradient/f64/b1/d64`, `hvp/f32/b8/d512`, ...
//!
//! `cargo bench --bench derivatives` (all), `cargo bench --bench derivatives -- hvp/f64/b1`
//! (a filter). The workspace and every parameter-sized vector live on the heap
//! (`tall_skinny::boxed_zeroed`, boxed arrays): depth 512 does not fit comfortably on a stack.
//! The HVP direction is a fixed pseudo-random vector; inputs and targets likewise.
//!
//! For a quicker side-by-side table (and the solve baselines), see
//! `cargo run --release --example perf_report`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

/// A boxed `[T; N]` of zeros, allocated on the heap directly.
fn boxed_array<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    vec![T::default(); N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

/// Declares net `$net` (workspace `$ws`) of depth `$depth` = `$body` + 2 and a function
/// `$bench` that registers its `gradient` and `hvp` benchmarks.
macro_rules! variant {
    ($bench:ident, $net:ident, $ws:ident, $t:tt, $batch:tt, $depth:tt, $body:tt) => {
        #[tall_skinny_net(batch = $batch, scalar = $t)]
        pub struct $net {
            inp: Dense<8, 8, Tanh>,
            body: [Residual<8, Tanh>; $body],
            head: Dense<8, 8, Identity>,
            loss: Mse<8>,
        }

        fn $bench(c: &mut Criterion) {
            assert_eq!($net::DEPTH, $depth);
            let mut net = tall_skinny::boxed_zeroed::<$net>();
            net.init_in_place(7);
            let mut ws = tall_skinny::boxed_zeroed::<$ws>();
            let mut rng = SplitMix64::new(11);
            let x: [[$t; 8]; $batch] =
                core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric() as $t));
            let t: [[$t; 8]; $batch] =
                core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric() as $t));
            let mut v = boxed_array::<$t, { $net::N_PARAMS }>();
            for vi in v.iter_mut() {
                *vi = rng.symmetric() as $t;
            }
            let mut grad = boxed_array::<$t, { $net::N_PARAMS }>();
            let mut out = boxed_array::<$t, { $net::N_PARAMS }>();
            // Once outside the timing: the calls must succeed on these inputs.
            net.gradient_in(&mut ws, &x, &t, &mut grad)
                .expect("gradient");
            net.hvp_in(&mut ws, &x, &t, &v, &mut out).expect("hvp");

            let tag = concat!(
                stringify!($t),
                "/b",
                stringify!($batch),
                "/d",
                stringify!($depth)
            );
            c.bench_function(&format!("gradient/{tag}"), |b| {
                b.iter(|| {
                    black_box(net.gradient_in(&mut ws, black_box(&x), black_box(&t), &mut grad))
                        .unwrap();
                    black_box(&mut grad);
                })
            });
            c.bench_function(&format!("hvp/{tag}"), |b| {
                b.iter(|| {
                    black_box(net.hvp_in(
                        &mut ws,
                        black_box(&x),
                        black_box(&t),
                        black_box(&v),
                        &mut out,
                    ))
                    .unwrap();
                    black_box(&mut out);
                })
            });
        }
    };
}

variant!(f64_b1_d8, F64B1D8, F64B1D8Workspace, f64, 1, 8, 6);
variant!(f64_b1_d64, F64B1D64, F64B1D64Workspace, f64, 1, 64, 62);
variant!(f64_b1_d512, F64B1D512, F64B1D512Workspace, f64, 1, 512, 510);
variant!(f64_b8_d8, F64B8D8, F64B8D8Workspace, f64, 8, 8, 6);
variant!(f64_b8_d64, F64B8D64, F64B8D64Workspace, f64, 8, 64, 62);
variant!(f64_b8_d512, F64B8D512, F64B8D512Workspace, f64, 8, 512, 510);
variant!(f32_b1_d8, F32B1D8, F32B1D8Workspace, f32, 1, 8, 6);
variant!(f32_b1_d64, F32B1D64, F32B1D64Workspace, f32, 1, 64, 62);
variant!(f32_b1_d512, F32B1D512, F32B1D512Workspace, f32, 1, 512, 510);
variant!(f32_b8_d8, F32B8D8, F32B8D8Workspace, f32, 8, 8, 6);
variant!(f32_b8_d64, F32B8D64, F32B8D64Workspace, f32, 8, 64, 62);
variant!(f32_b8_d512, F32B8D512, F32B8D512Workspace, f32, 8, 512, 510);

fn config() -> Criterion {
    // 24 benchmarks: keep a full `cargo bench` to a few minutes on a 2-core machine.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = f64_b1_d8, f64_b1_d64, f64_b1_d512, f64_b8_d8, f64_b8_d64, f64_b8_d512,
        f32_b1_d8, f32_b1_d64, f32_b1_d512, f32_b8_d8, f32_b8_d64, f32_b8_d512
}
criterion_main!(benches);
