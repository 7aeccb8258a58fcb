//! Instruction counts of the core ops, for comparing builds on a noisy machine (instruction
//! counts under callgrind repeat exactly; wall-clock medians there do not):
//!
//! ```text
//! cargo build --release --example icount
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/icount d64
//! callgrind_annotate --inclusive=yes cg.out | grep measure_
//! ```
//!
//! `d8` / `d64`: the width-8 benchmark nets of `perf_report` at batch 1 (depth 8, 64), 100
//! calls of each op; anything else: depth 8 at batch 8, 20 calls. Each `measure_*` function
//! is one op: `gradient_in`, `hvp_in`, `factor_solve` (curvature, factor at 1e-3, one solve)
//! and `resolve` (a solve with an existing factorisation); divide its inclusive count by the
//! number of calls. `stable`: `measure_stable_solve`, the backward-stable sweep
//! (`StableFactors`: curvature, factor at 1e-3 with threshold 0.1, one solve) on the
//! batch-8 net, 20 calls.
use std::hint::black_box;
use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 1)]
struct D8 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}
#[tall_skinny_net(batch = 1)]
struct D64 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 62],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}
#[tall_skinny_net(batch = 8)]
struct B8 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

macro_rules! ops {
    ($net:ident, $curv:ident, $ws:ident, $b:expr, $reps:expr) => {{
        const N: usize = $net::N_PARAMS;
        let net = $net::init(1);
        let mut rng = tall_skinny::runtime::SplitMix64::new(2);
        let x: [[f64; 8]; $b] = core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [[f64; 8]; $b] = core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let mut ws = tall_skinny::boxed_zeroed::<$ws>();
        let mut g = vec![0.0f64; N].into_boxed_slice();
        let g: &mut [f64; N] = (&mut *g).try_into().unwrap();
        let mut out = vec![0.0f64; N].into_boxed_slice();
        let out: &mut [f64; N] = (&mut *out).try_into().unwrap();
        let mut curv = tall_skinny::boxed_zeroed::<$curv>();
        #[inline(never)]
        fn measure_gradient(
            net: &$net,
            ws: &mut $ws,
            x: &[[f64; 8]; $b],
            t: &[[f64; 8]; $b],
            g: &mut [f64; N],
        ) {
            for _ in 0..$reps {
                black_box(net.gradient_in(ws, black_box(x), t, g).unwrap());
            }
        }
        #[inline(never)]
        fn measure_hvp(
            net: &$net,
            ws: &mut $ws,
            x: &[[f64; 8]; $b],
            t: &[[f64; 8]; $b],
            g: &[f64; N],
            out: &mut [f64; N],
        ) {
            for _ in 0..$reps {
                net.hvp_in(ws, black_box(x), t, g, out).unwrap();
                black_box(&out);
            }
        }
        #[inline(never)]
        fn measure_factor_solve(
            net: &$net,
            curv: &mut $curv,
            x: &[[f64; 8]; $b],
            t: &[[f64; 8]; $b],
            g: &[f64; N],
            out: &mut [f64; N],
        ) {
            for _ in 0..$reps {
                net.curvature_into(curv, black_box(x), t).unwrap();
                let mut f = curv.factor(1e-3).unwrap();
                f.solve(black_box(g), out).unwrap();
            }
        }
        #[inline(never)]
        fn measure_resolve(curv: &mut $curv, g: &[f64; N], out: &mut [f64; N]) {
            let mut f = curv.factor(1e-3).unwrap();
            for _ in 0..$reps {
                f.solve(black_box(g), out).unwrap();
                black_box(&out);
            }
        }
        measure_gradient(&net, &mut ws, &x, &t, g);
        measure_hvp(&net, &mut ws, &x, &t, g, out);
        measure_factor_solve(&net, &mut curv, &x, &t, g, out);
        measure_resolve(&mut curv, g, out);
        println!("{} {}", stringify!($net), out[0]);
    }};
}

/// `stable`: the backward-stable factor and solve (`StableFactors`, threshold 0.1, eps 1e-3)
/// on the batch-8 net, 20 calls.
fn stable() {
    type Sf = tall_skinny::runtime::StableFactors<f64, 9, 64, 136, 8>;
    let net = B8::init(1);
    let mut rng = tall_skinny::runtime::SplitMix64::new(2);
    let x: [[f64; 8]; 8] = core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
    let t: [[f64; 8]; 8] = core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
    let g: Vec<f64> = (0..B8::N_PARAMS).map(|_| rng.symmetric()).collect();
    let g: &[f64; B8::N_PARAMS] = g.as_slice().try_into().unwrap();
    let mut out = vec![0.0f64; B8::N_PARAMS];
    let out: &mut [f64; B8::N_PARAMS] = out.as_mut_slice().try_into().unwrap();
    let mut curv = tall_skinny::boxed_zeroed::<B8Curvature>();
    let mut sf = tall_skinny::boxed_zeroed::<Sf>();
    #[inline(never)]
    fn measure_stable_solve(
        net: &B8,
        curv: &mut B8Curvature,
        sf: &mut Sf,
        x: &[[f64; 8]; 8],
        t: &[[f64; 8]; 8],
        g: &[f64; B8::N_PARAMS],
        out: &mut [f64; B8::N_PARAMS],
    ) {
        for _ in 0..20 {
            net.curvature_into(curv, black_box(x), t).unwrap();
            sf.factor(curv, 1e-3, 0.1).unwrap();
            sf.solve(curv, black_box(g), out).unwrap();
        }
    }
    measure_stable_solve(&net, &mut curv, &mut sf, &x, &t, g, out);
    println!("stable B8 {} (carried {})", out[0], sf.max_carried());
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("d8") => ops!(D8, D8Curvature, D8Workspace, 1, 100),
        Some("d64") => ops!(D64, D64Curvature, D64Workspace, 1, 100),
        Some("stable") => stable(),
        _ => ops!(B8, B8Curvature, B8Workspace, 8, 20),
    }
}
