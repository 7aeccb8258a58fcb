//! The cost of batch independence: `forward_one` (one sample) of a net declared at batch B
//! against `forward` of the same architecture declared at batch 1. The architecture is
//! `inp: Dense<8, 8, Tanh>`, `body: [Residual<8, Tanh>; 14]`, `head: Dense<8, 8, Identity>`,
//! `loss: Mse<8>` (depth 16, width 8), in f64 and f32. The target (issue 12): `forward_one`
//! at batch B costs at most 1.2x `forward` at batch 1.
//!
//! Benchmark ids: `forward/f64/b1` (the reference), `forward_one/f64/b1`,
//! `forward_one/f64/b8`, `forward_one/f64/b32`, and the same for f32.
//!
//! `cargo bench --bench forward_one` (about 30 s), or a filter such as
//! `cargo bench --bench forward_one -- f64`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

/// Declares `$net` at batch `$batch`, scalar `$t`.
macro_rules! net {
    ($net:ident, $t:tt, $batch:tt) => {
        #[tall_skinny_net(batch = $batch, scalar = $t)]
        pub struct $net {
            inp: Dense<8, 8, Tanh>,
            body: [Residual<8, Tanh>; 14],
            head: Dense<8, 8, Identity>,
            loss: Mse<8>,
        }
    };
}

net!(F64B1, f64, 1);
net!(F64B8, f64, 8);
net!(F64B32, f64, 32);
net!(F32B1, f32, 1);
net!(F32B8, f32, 8);
net!(F32B32, f32, 32);

/// Registers `forward/<t>/b1` of `$b1` and `forward_one/<t>/b<B>` of each of `$nets`, all
/// with the same parameters (copied through `params`) and the same sample.
macro_rules! group {
    ($fn:ident, $t:tt, $b1:ident, $($net:ident = $batch:tt),*) => {
        fn $fn(c: &mut Criterion) {
            let reference = $b1::init(7);
            let mut p = [0.0 as $t; $b1::N_PARAMS];
            reference.params(&mut p);
            let mut rng = SplitMix64::new(11);
            let x: [$t; 8] = core::array::from_fn(|_| rng.symmetric() as $t);
            let want = reference.forward(&[x]).expect("forward")[0];
            let t = stringify!($t);
            c.bench_function(&format!("forward/{t}/b1"), |b| {
                b.iter(|| black_box(reference.forward(black_box(&[x]))).unwrap())
            });
            c.bench_function(&format!("forward_one/{t}/b1"), |b| {
                b.iter(|| black_box(reference.forward_one(black_box(&x))).unwrap())
            });
            $(
                let mut net = $net::ZERO;
                net.set_params(&p).expect("finite");
                // The same numbers as the batch-1 reference, bit for bit.
                assert_eq!(net.forward_one(&x).expect("forward_one"), want);
                c.bench_function(&format!("forward_one/{t}/b{}", $batch), |b| {
                    b.iter(|| black_box(net.forward_one(black_box(&x))).unwrap())
                });
            )*
        }
    };
}

group!(f64_nets, f64, F64B1, F64B8 = 8, F64B32 = 32);
group!(f32_nets, f32, F32B1, F32B8 = 8, F32B32 = 32);

fn config() -> Criterion {
    // 8 benchmarks of well under a microsecond each: short windows suffice.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = f64_nets, f32_nets
}
criterion_main!(benches);
