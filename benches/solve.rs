//! The exact damped Hessian solve against `hvp`, side by side: `hvp`, `factor_solve`
//! (curvature + factor + one solve, derivatives included), `factor` alone and `resolve` (a
//! further solve with an existing factorisation), for `inp: Dense<8, 8, Tanh>`,
//! `body: [Residual<8, Tanh>; D - 2]`, `head: Dense<8, 8, Identity>`, `loss: Mse<8>` at
//! depth D = 8, 64, 512, batch 1, f64, eps = 1e-3. Benchmark ids: `factor_solve/f64/b1/d64`.
//!
//! `cargo bench --bench solve`. Storage is boxed (`tall_skinny::boxed_zeroed`).
//! For the full grid with baselines, `cargo run --release --example perf_report`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

fn boxed_array<const N: usize>() -> Box<[f64; N]> {
    vec![0.0; N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

macro_rules! variant {
    ($bench:ident, $net:ident, $ws:ident, $curv:ident, $depth:tt, $body:tt) => {
        #[tall_skinny_net(batch = 1)]
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
            let mut curv = tall_skinny::boxed_zeroed::<$curv>();
            let mut rng = SplitMix64::new(11);
            let x: [[f64; 8]; 1] = [core::array::from_fn(|_| rng.symmetric())];
            let t: [[f64; 8]; 1] = [core::array::from_fn(|_| rng.symmetric())];
            let mut b = boxed_array::<{ $net::N_PARAMS }>();
            for bi in b.iter_mut() {
                *bi = rng.symmetric();
            }
            let mut out = boxed_array::<{ $net::N_PARAMS }>();
            let eps = 1e-3;
            let tag = concat!("f64/b1/d", stringify!($depth));
            c.bench_function(&format!("hvp/{tag}"), |bn| {
                bn.iter(|| {
                    net.hvp_in(
                        &mut ws,
                        black_box(&x),
                        black_box(&t),
                        black_box(&b),
                        &mut out,
                    )
                    .unwrap();
                    black_box(&mut out);
                })
            });
            c.bench_function(&format!("factor_solve/{tag}"), |bn| {
                bn.iter(|| {
                    net.curvature_into(&mut curv, black_box(&x), black_box(&t))
                        .unwrap();
                    let mut f = curv.factor(eps).unwrap();
                    f.solve(black_box(&b), &mut out).unwrap();
                    black_box(&mut out);
                })
            });
            net.curvature_into(&mut curv, &x, &t).unwrap();
            c.bench_function(&format!("factor/{tag}"), |bn| {
                bn.iter(|| {
                    black_box(curv.factor(black_box(eps)).unwrap().inertia());
                })
            });
            let mut f = curv.factor(eps).unwrap();
            c.bench_function(&format!("resolve/{tag}"), |bn| {
                bn.iter(|| {
                    f.solve(black_box(&b), &mut out).unwrap();
                    black_box(&mut out);
                })
            });
        }
    };
}

variant!(d8, D8, D8Workspace, D8Curvature, 8, 6);
variant!(d64, D64, D64Workspace, D64Curvature, 64, 62);
variant!(d512, D512, D512Workspace, D512Curvature, 512, 510);

criterion_group!(benches, d8, d64, d512);
criterion_main!(benches);
