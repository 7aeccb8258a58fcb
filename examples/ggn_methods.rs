//! Times the two exact Gauss-Newton solves `(G + eps I)^{-1} b` on the benchmark nets
//! (width 8, depth 64, batch 1 and 8; f64, eps = 1e-3, b = the gradient): the Riccati sweep on
//! the stage blocks with the adjoint terms dropped, and the batch-by-outputs (Woodbury) form.
//! Each row: curvature + factor + refined solve, median of several runs, and which one the
//! net's `GGN_METHOD` picked at compile time.
//!
//! `cargo run --release --example ggn_methods`

use std::time::Instant;

use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 1)]
pub struct W8B1 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 62],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

#[tall_skinny_net(batch = 8)]
pub struct W8B8 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 62],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

#[tall_skinny_net(batch = 8)]
pub struct W8B8O2 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 62],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// Many outputs times batch for a narrow net: where the Riccati form can win.
#[tall_skinny_net(batch = 16)]
pub struct W4B16C10 {
    inp: Dense<4, 4, Tanh>,
    body: [Residual<4, Tanh>; 6],
    head: Dense<4, 10, Identity>,
    loss: SoftmaxCrossEntropy<10>,
}

/// Width 2, batch 32, 10 classes: M = 320 against stage matrices of at most 30 x 30.
#[tall_skinny_net(batch = 32)]
pub struct W2B32C10 {
    inp: Dense<2, 2, Tanh>,
    body: [Residual<2, Tanh>; 6],
    head: Dense<2, 10, Identity>,
    loss: SoftmaxCrossEntropy<10>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn fmt(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

macro_rules! measure {
    ($name:literal, $net:ident, $curv:ident, $ggn:ident, $reps:expr) => {{
        const N: usize = $net::N_PARAMS;
        let net = $net::init(1);
        let mut rng = tall_skinny::runtime::SplitMix64::new(2);
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t = <$net as HasWs>::targets(&mut rng);
        let mut g: Box<[f64; N]> = vec![0.0; N].try_into().unwrap();
        let mut ws = tall_skinny::boxed_zeroed::<<$net as HasWs>::Ws>();
        net.gradient_in(&mut ws, &x, &t, &mut g).unwrap();
        let mut out_r: Box<[f64; N]> = vec![0.0; N].try_into().unwrap();
        let mut out_w: Box<[f64; N]> = vec![0.0; N].try_into().unwrap();
        let mut curv = tall_skinny::boxed_zeroed::<$curv>();
        let mut ggn = tall_skinny::boxed_zeroed::<$ggn>();
        let eps = 1e-3;
        let (mut tr, mut tw) = (Vec::new(), Vec::new());
        for _ in 0..$reps {
            let s = Instant::now();
            net.ggn_curvature_into(&mut curv, &x, &t).unwrap();
            let mut f = curv.factor(eps).unwrap();
            f.solve_refined(&g, &mut out_r, 2).unwrap();
            tr.push(s.elapsed().as_secs_f64());
            let s = Instant::now();
            net.ggn_woodbury_into(&mut ggn, &x, &t).unwrap();
            ggn.factor(eps)
                .unwrap()
                .solve_refined(&g, &mut out_w, 2)
                .unwrap();
            tw.push(s.elapsed().as_secs_f64());
        }
        let diff: f64 = out_r
            .iter()
            .zip(out_w.iter())
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt()
            / out_r.iter().map(|a| a * a).sum::<f64>().sqrt();
        let (r, w) = (median(tr), median(tw));
        println!(
            "| {} | {} | {} | {} | {:.1} | {:?} | {:.1e} |",
            $name,
            N,
            fmt(r),
            fmt(w),
            r / w,
            $net::GGN_METHOD,
            diff
        );
    }};
}

trait HasWs: tall_skinny::runtime::optim::Model {
    type Ws: tall_skinny::runtime::bytemuck::Zeroable;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target;
}
impl HasWs for W8B1 {
    type Ws = W8B1Workspace;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target {
        core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()))
    }
}
impl HasWs for W8B8 {
    type Ws = W8B8Workspace;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target {
        core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()))
    }
}
impl HasWs for W4B16C10 {
    type Ws = W4B16C10Workspace;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target {
        core::array::from_fn(|_| (rng.next_u64() % 10) as usize)
    }
}
impl HasWs for W2B32C10 {
    type Ws = W2B32C10Workspace;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target {
        core::array::from_fn(|_| (rng.next_u64() % 10) as usize)
    }
}
impl HasWs for W8B8O2 {
    type Ws = W8B8O2Workspace;
    fn targets(rng: &mut tall_skinny::runtime::SplitMix64) -> Self::Target {
        core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()))
    }
}

fn main() {
    println!("| net (depth 64, width 8 unless stated) | N | Riccati | Woodbury | Riccati / Woodbury | GGN_METHOD | relative difference |");
    println!("|---|---|---|---|---|---|---|");
    measure!(
        "batch 1, 8 outputs (M = 8)",
        W8B1,
        W8B1Curvature,
        W8B1Ggn,
        200
    );
    measure!(
        "batch 8, 8 outputs (M = 64)",
        W8B8,
        W8B8Curvature,
        W8B8Ggn,
        15
    );
    measure!(
        "batch 8, 2 outputs (M = 16)",
        W8B8O2,
        W8B8O2Curvature,
        W8B8O2Ggn,
        15
    );
    measure!(
        "width 4, depth 8, batch 16, 10 classes (M = 160)",
        W4B16C10,
        W4B16C10Curvature,
        W4B16C10Ggn,
        30
    );
    measure!(
        "width 2, depth 8, batch 32, 10 classes (M = 320)",
        W2B32C10,
        W2B32C10Curvature,
        W2B32C10Ggn,
        15
    );
}
