//! The exact diagonal of `(G + eps I)^{-1}` (selected inversion over the stage factors)
//! against Hutchinson's stochastic estimate `diag ~ mean_k z_k * (A^{-1} z_k)` with Rademacher
//! probes `z_k`, one solve per probe on the same factorisation: what curvlinops / BackPACK
//! users would run for a net too large for a dense inverse.
//!
//! `cargo run --release --example hutchinson` (the width-8, depth-64 benchmark net of
//! `perf_report` at batch 1, 4,608 parameters, Gauss-Newton curvature plus eps = 1e-3: the
//! Laplace posterior covariance of its parameters). Prints, for k = 10, 100, 1000 probes,
//! the estimate's relative error (2-norm over the diagonal, and the median entry) against
//! the exact diagonal, and the wall time of each, next to the exact diagonal's.
use std::time::Instant;

use tall_skinny::prelude::*;
use tall_skinny::runtime::rng::SplitMix64;

#[tall_skinny_net(batch = 1)]
struct D64 {
    inp: Dense<8, 8, Tanh>,
    body: [Residual<8, Tanh>; 62],
    head: Dense<8, 8, Identity>,
    loss: Mse<8>,
}

const N: usize = D64::N_PARAMS;
const EPS: f64 = 1e-3;

fn main() {
    let mut net = tall_skinny::boxed_zeroed::<D64>();
    net.init_in_place(7);
    let mut rng = SplitMix64::new(11);
    let x = [core::array::from_fn(|_| rng.symmetric())];
    let t = [core::array::from_fn(|_| rng.symmetric())];
    let mut curv = tall_skinny::boxed_zeroed::<D64Curvature>();
    net.ggn_curvature_into(&mut curv, &x, &t)
        .expect("curvature");
    let mut f = curv.factor(EPS).expect("factor");

    // The exact diagonal; its time is the median of 11 runs.
    let mut exact = vec![0.0; N];
    let mut times = Vec::new();
    for _ in 0..11 {
        let t0 = Instant::now();
        f.diag_inv((&mut exact[..]).try_into().unwrap())
            .expect("diag_inv");
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let exact_time = times[times.len() / 2];

    // The exact diagonal is checked against a few solves: (A^{-1} e_i)_i for random i.
    let mut e = vec![0.0; N];
    let mut col = vec![0.0; N];
    let mut worst: f64 = 0.0;
    for _ in 0..20 {
        let i = (rng.next_u64() % N as u64) as usize;
        e.iter_mut().for_each(|v| *v = 0.0);
        e[i] = 1.0;
        f.solve_refined(
            (&e[..]).try_into().unwrap(),
            (&mut col[..]).try_into().unwrap(),
            2,
        )
        .expect("solve");
        worst = worst.max((col[i] - exact[i]).abs() / exact[i].abs());
    }
    println!(
        "net: width 8, depth 64, batch 1, N = {N}; (G + {EPS:e} I)^-1, G Gauss-Newton\n\
         exact diagonal: {:.3} ms (median of 11); against 20 unit-vector solves: worst relative difference {worst:.1e}\n",
        exact_time * 1e3
    );
    assert!(
        worst < 1e-9,
        "the exact diagonal disagrees with the solves: {worst:e}"
    );

    println!("| probes k | relative error (2-norm) | median entry error | time | time / exact |");
    println!("|---|---|---|---|---|");
    let mut z = vec![0.0; N];
    let mut az = vec![0.0; N];
    let mut sum = vec![0.0; N];
    let mut done = 0usize;
    let t0 = Instant::now();
    for k in [10usize, 100, 1000] {
        while done < k {
            z.iter_mut()
                .for_each(|v| *v = if rng.next_u64() & 1 == 0 { -1.0 } else { 1.0 });
            f.solve(
                (&z[..]).try_into().unwrap(),
                (&mut az[..]).try_into().unwrap(),
            )
            .expect("probe solve");
            for ((s, zi), ai) in sum.iter_mut().zip(&z).zip(&az) {
                *s += zi * ai;
            }
            done += 1;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let est: Vec<f64> = sum.iter().map(|s| s / k as f64).collect();
        let num: f64 = est.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum();
        let den: f64 = exact.iter().map(|b| b * b).sum();
        let mut rel: Vec<f64> = est
            .iter()
            .zip(&exact)
            .map(|(a, b)| ((a - b) / b).abs())
            .collect();
        rel.sort_by(f64::total_cmp);
        println!(
            "| {k} | {:.2e} | {:.2e} | {:.2} ms | {:.0}x |",
            (num / den).sqrt(),
            rel[N / 2],
            elapsed * 1e3,
            elapsed / exact_time
        );
    }
}
