//! The trust region on the exact Hessian (`runtime::optim::TrustRegion`) at its default
//! settings (More-Sorensen with sigma = 0.1), against a dense reference: H from `hvp`
//! columns, its eigendecomposition, and the subproblem solved on it by bisection on the
//! secular equation (`optim::dense_tr`).
//!
//! - Every subproblem: `|p| <= (1 + sigma) Delta`, `-m(p) >= (1 - sigma)^2 (-m*)` (More and
//!   Sorensen's guarantee for their stopping rules) and `-m(p) <= -m*((1 + sigma) Delta)` (no
//!   step beats the optimum of the larger region); the reported prediction is the model at
//!   the returned `p`; interior steps only where H is positive definite; indefinite H,
//!   positive definite H, and the hard case (g orthogonal to the lowest eigenvector).
//! - The median factorisations per subproblem over all of these is at most 6.
//! - The inertia of `factor(lambda)` (the count of negative eigenvalues of `H + lambda I`)
//!   equals the dense count at shifts between and around the eigenvalues.
//! - The optimizer reaches MSE 1e-6 on a small deep residual regression (the
//!   `fit_regression` shape at debug-build size).

use crate::optim::{dense_tr, Small, SmallCurvature, Tiny};
use crate::solve_common::*;
use nalgebra::{DVector, SymmetricEigen};
use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::SplitMix64;

/// Depth 6 residual tanh regression, N 115.
#[tall_skinny_net(batch = 12)]
struct Deep {
    a: Dense<1, 4, Tanh>,
    b: [Residual<4, Tanh>; 4],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

fn small_data(seed: u64) -> ([[f64; 2]; 4], [[f64; 1]; 4]) {
    let mut rng = SplitMix64::new(seed);
    let x: [[f64; 2]; 4] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    let t: [[f64; 1]; 4] = core::array::from_fn(|_| [2.0 * rng.symmetric()]);
    (x, t)
}

fn model(h: &Mat, g: &[f64], p: &[f64]) -> f64 {
    dot(g, p) + 0.5 * dot(p, &h.mul_shifted(0.0, p))
}

/// Solves the subproblem for each radius with the default settings and checks it against
/// the dense solution; returns the factorisation counts and how many were interior / hard.
macro_rules! check_default {
    ($net:ty, $netv:expr, $x:expr, $t:expr, $g:expr, $deltas:expr, $label:expr) => {{
        const N: usize = <$net>::N_PARAMS;
        let net: $net = $netv;
        let (h, _) = dense_from_hvp(N, |v, out| {
            net.hvp(&$x, &$t, v.try_into().unwrap(), out.try_into().unwrap())
                .unwrap()
        });
        let g: [f64; N] = $g;
        let config = TrustRegionConfig::default();
        let sigma = config.tol;
        let mut tr = TrustRegion::<$net>::boxed(config).unwrap();
        let eig = sym_eigenvalues(&h);
        let (mut counts, mut interior, mut hard) = (Vec::new(), 0, 0);
        for delta in $deltas {
            let sub = tr.subproblem(&net, &$x, &$t, &g, delta).unwrap();
            let p = tr.last_step();
            let np = norm(p);
            let m = model(&h, &g, p);
            let (dl, _, best) = dense_tr(&h, &g, delta);
            let (_, _, best_wide) = dense_tr(&h, &g, (1.0 + sigma) * delta);
            println!(
                "{} delta {delta:.1e}: lambda {:?} (dense {dl:.4e}), |p|/delta {:.4}, -m {:.6e} / dense {best:.6e} = {:.4}, boundary {}, hard {}, {} factorizations",
                $label, sub.lambda, np / delta, -m, -m / best, sub.on_boundary, sub.hard_case, sub.factorizations
            );
            assert!(sub.converged, "{}: not converged", $label);
            assert!(sub.lambda.is_some_and(|l| l >= 0.0));
            assert!(np <= (1.0 + sigma) * delta * (1.0 + 1e-12), "{}: |p| {np} > (1 + sigma) delta", $label);
            // the reported prediction is the model at the returned step
            assert!((sub.predicted + m).abs() <= 1e-9 * m.abs(), "{}: prediction {} vs {}", $label, sub.predicted, -m);
            // More-Sorensen: within (1 - sigma)^2 of the optimum, and never above the optimum
            // of the region it may reach
            assert!(-m >= (1.0 - sigma).powi(2) * best * (1.0 - 1e-9), "{}: -m {} < (1-sigma)^2 {best}", $label, -m);
            assert!(-m <= best_wide * (1.0 + 1e-9), "{}: -m {} above the optimum {best_wide}", $label, -m);
            if !sub.on_boundary {
                interior += 1;
                assert_eq!(sub.lambda, Some(0.0));
                assert!(eig[0] > 0.0, "{}: interior step but lambda_min {}", $label, eig[0]);
                assert!(np <= delta);
            } else {
                assert!(np >= (1.0 - sigma) * delta * (1.0 - 1e-12), "{}: boundary step with |p|/delta {}", $label, np / delta);
            }
            if sub.hard_case {
                hard += 1;
            }
            counts.push(sub.factorizations);
        }
        (counts, interior, hard)
    }};
}

fn gradient<const N: usize>(f: impl Fn(&mut [f64; N])) -> [f64; N] {
    let mut g = [0.0; N];
    f(&mut g);
    g
}

#[test]
fn default_subproblems_match_dense_within_more_sorensen_bounds() {
    let mut all = Vec::new();
    // Indefinite H at random points, the true gradient.
    for seed in [1u64, 2, 3, 5] {
        let (x, t) = small_data(seed);
        let net = Small::init(seed);
        let g = gradient(|g| {
            net.gradient(&x, &t, g).unwrap();
        });
        let (c, _, _) = check_default!(
            Small,
            net.clone(),
            x,
            t,
            g,
            [1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0, 10.0],
            format!("Small seed {seed}")
        );
        all.extend(c);
    }
    // Positive definite H (zero-residual fit), small gradient: interior steps at large radii.
    let teacher = Tiny::init(7);
    let x: [[f64; 1]; 8] = core::array::from_fn(|n| [-1.5 + 3.0 * n as f64 / 7.0]);
    let t = teacher.forward(&x).unwrap();
    let mut rng = SplitMix64::new(8);
    let g: [f64; Tiny::N_PARAMS] = core::array::from_fn(|_| 1e-3 * rng.symmetric());
    let (c, interior, _) = check_default!(
        Tiny,
        teacher.clone(),
        x,
        t,
        g,
        [1e-4, 1e-2, 1.0, 100.0, 1e4],
        "Tiny PD".to_string()
    );
    assert!(interior >= 2, "expected interior Newton steps");
    all.extend(c);
    // The hard case: g orthogonal to the lowest eigenvector, radius beyond |p(-lambda_1)|.
    for seed in [2u64, 3] {
        let (x, t) = small_data(seed);
        let net = Small::init(seed);
        let (h, _) = dense_from_hvp(Small::N_PARAMS, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap())
                .unwrap()
        });
        let eig = SymmetricEigen::new(h.to_nalgebra(0.0));
        let imin = eig.eigenvalues.imin();
        let l1 = eig.eigenvalues[imin];
        assert!(l1 < -1e-3, "need an indefinite H");
        let v1 = eig.eigenvectors.column(imin).into_owned();
        let g0 = gradient(|g| {
            net.gradient(&x, &t, g).unwrap();
        });
        let gv = DVector::from_column_slice(&g0);
        let gp = &gv - &v1 * v1.dot(&gv);
        let gh = eig.eigenvectors.transpose() * &gp;
        let n0: f64 = (0..Small::N_PARAMS)
            .filter(|&i| i != imin)
            .map(|i| (gh[i] / (eig.eigenvalues[i] - l1)).powi(2))
            .sum::<f64>()
            .sqrt();
        let mut g = [0.0; Small::N_PARAMS];
        g.copy_from_slice(gp.as_slice());
        let (c, _, hard) = check_default!(
            Small,
            net.clone(),
            x,
            t,
            g,
            [1.5 * n0, 3.0 * n0, 10.0 * n0],
            format!("Small hard case seed {seed}")
        );
        assert!(hard >= 1, "expected the hard-case step p + tau z");
        all.extend(c);
    }
    all.sort();
    let median = all[all.len() / 2];
    println!(
        "{} subproblems: median {median} factorizations, max {}",
        all.len(),
        all.last().unwrap()
    );
    assert!(median <= 6, "median factorizations {median}");
}

#[test]
fn inertia_counts_match_dense_eigenvalues() {
    let mut checked = 0;
    for seed in 1..=3u64 {
        let (x, t) = small_data(seed);
        let net = Small::init(seed);
        let (h, _) = dense_from_hvp(Small::N_PARAMS, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap())
                .unwrap()
        });
        let eig = sym_eigenvalues(&h);
        let mut curv = tall_skinny::boxed_zeroed::<SmallCurvature>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let scale = eig.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        // shifts halfway between consecutive eigenvalues (and beyond both ends), kept
        // where the nearest eigenvalue of H + lambda I is not within 1e-8 |H|
        let mut shifts = vec![-eig[0] + 0.1 * scale, -eig[eig.len() - 1] - 0.1 * scale];
        for w in eig.windows(2) {
            shifts.push(-0.5 * (w[0] + w[1]));
        }
        for lambda in shifts {
            let Some((neg, zero, pos)) = inertia_of(&eig, lambda, 1e-8 * scale) else {
                continue;
            };
            let f = match curv.factor(lambda) {
                Ok(f) => f,
                Err(SolveError::Singular { .. }) => continue,
                Err(e) => panic!("{e}"),
            };
            let i = f.inertia();
            assert_eq!(
                (i.negative, i.zero, i.positive),
                (neg, zero, pos),
                "seed {seed} lambda {lambda:.6e}"
            );
            checked += 1;
        }
    }
    println!("{checked} shifts checked");
    assert!(checked >= 40);
}

#[test]
fn reaches_the_regression_target() {
    // sin(3x) + x^2/2 - 0.3 x cos(5x) on 12 points, MSE 1e-6 (loss = MSE / 2).
    let x: [[f64; 1]; 12] = core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / 11.0]);
    let t = x.map(|[v]| [(3.0 * v).sin() + 0.5 * v * v - 0.3 * (5.0 * v).cos() * v]);
    let mut net = Deep::init(1);
    let mut tr = TrustRegion::<Deep>::boxed(TrustRegionConfig::default()).unwrap();
    let mut counts = Vec::new();
    let mut reached = None;
    for k in 1..=300 {
        let r = tr.step(&mut net, &x, &t).unwrap();
        counts.push(r.factorizations);
        assert!(r.step_norm <= r.radius.unwrap() * (1.0 + tr.config().tol) * (1.0 + 1e-12));
        if 2.0 * net.loss(&x, &t).unwrap() < 1e-6 {
            reached = Some(k);
            break;
        }
    }
    counts.sort();
    println!(
        "reached MSE 1e-6 at step {reached:?}; factorizations median {} max {} total {}",
        counts[counts.len() / 2],
        counts.last().unwrap(),
        counts.iter().sum::<u32>()
    );
    assert!(reached.is_some(), "MSE {}", 2.0 * net.loss(&x, &t).unwrap());
    assert!(counts[counts.len() / 2] <= 6);
}
