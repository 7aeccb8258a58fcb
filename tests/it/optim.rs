//! The optimizers of `runtime::optim` on generated nets.
//!
//! - Every optimizer decreases the loss on fixed problems; accepted steps reduce it, rejected
//!   ones leave the parameters unchanged.
//! - Trust-region subproblem (More-Sorensen) against a dense eigendecomposition solution of
//!   `min g'p + p'Hp/2, |p| <= Delta` (H from `hvp` columns): `|p| <= Delta (1 + tol)`; off
//!   the boundary `lambda = 0` and H is positive definite; on it `| |p| - Delta | <= tol Delta`;
//!   the predicted reduction matches the dense one to 1e-6 relative; the hard case included.
//! - Positive-definiteness of `H + lambda I` from the inertia of `factor(lambda)` agrees with
//!   the dense eigenvalues.

use crate::solve_common::*;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use tall_skinny::prelude::*;
use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::SplitMix64;

/// N 25, batch 4 >= every stage's inputs-with-bias, so `H + 0 I` can be factored.
#[tall_skinny_net(batch = 4)]
pub(crate) struct Small {
    a: Dense<2, 3, Tanh>,
    b: Residual<3, Tanh>,
    c: Dense<3, 1, Identity>,
    loss: Mse<1>,
}

/// N 7, batch 8: near a zero-residual fit H is positive definite.
#[tall_skinny_net(batch = 8)]
pub(crate) struct Tiny {
    a: Dense<1, 2, Tanh>,
    b: Dense<2, 1, Identity>,
    loss: Mse<1>,
}

/// A deeper regression net for the descent tests.
#[tall_skinny_net(batch = 8)]
struct Fit {
    a: Dense<1, 6, Tanh>,
    b: [Residual<6, Tanh>; 6],
    c: Dense<6, 1, Identity>,
    loss: Mse<1>,
}

/// Softmax head.
#[tall_skinny_net(batch = 6)]
struct Cls {
    a: Dense<2, 5, Tanh>,
    b: [Residual<5, Tanh>; 3],
    c: Dense<5, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

fn fit_data() -> ([[f64; 1]; 8], [[f64; 1]; 8]) {
    let x: [[f64; 1]; 8] = core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / 7.0]);
    let t = x.map(|[v]| [(3.0 * v).sin() * 0.8]);
    (x, t)
}

macro_rules! descent {
    ($opt:expr, $net:expr, $x:expr, $t:expr, $steps:expr) => {{
        let mut opt = $opt.unwrap();
        let mut net = $net;
        let first = net.loss(&$x, &$t).unwrap();
        let mut last = first;
        let mut accepted = 0;
        for _ in 0..$steps {
            let r = opt.step(&mut net, &$x, &$t).unwrap();
            assert!(
                (r.loss_before - last).abs() <= 1e-14 * last,
                "loss_before is the loss at the start"
            );
            let now = net.loss(&$x, &$t).unwrap();
            if r.predicted.is_some() {
                let after = r
                    .loss_after
                    .expect("second-order methods evaluate the new point");
                assert!((now - after).abs() <= 1e-14 * now.max(1e-300));
                // second-order methods: accepted steps reduce the loss, rejected ones keep it
                if r.accepted {
                    assert!(
                        now < last,
                        "accepted step increased the loss: {last} -> {now}"
                    );
                    accepted += 1;
                } else {
                    assert!(
                        (now - last).abs() <= 1e-14 * last,
                        "a rejected step changed the parameters"
                    );
                }
            }
            last = now;
        }
        (first, last, accepted)
    }};
}

#[test]
fn second_order_optimizers_decrease_the_loss() {
    let (x, t) = fit_data();
    let (f0, f1, acc) = descent!(
        LevenbergMarquardt::<Fit>::boxed(LmConfig::default()),
        Fit::init(3),
        x,
        t,
        30
    );
    println!("LM: {f0:.3e} -> {f1:.3e} ({acc} accepted)");
    assert!(f1 < 1e-3 * f0 && acc > 10);
    let (f0, f1, acc) = descent!(
        DampedNewton::<Fit>::boxed(NewtonConfig::default()),
        Fit::init(3),
        x,
        t,
        30
    );
    println!("Newton: {f0:.3e} -> {f1:.3e} ({acc} accepted)");
    assert!(f1 < 0.1 * f0 && acc > 5);
    let (f0, f1, acc) = descent!(
        TrustRegion::<Fit>::boxed(TrustRegionConfig::default()),
        Fit::init(3),
        x,
        t,
        30
    );
    println!("TR: {f0:.3e} -> {f1:.3e} ({acc} accepted)");
    assert!(f1 < 0.1 * f0 && acc > 5);

    let mut rng = SplitMix64::new(4);
    let xc: [[f64; 2]; 6] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    let tc: [usize; 6] = core::array::from_fn(|n| n % 3);
    let (f0, f1, _) = descent!(
        LevenbergMarquardt::<Cls>::boxed(LmConfig::default()),
        Cls::init(5),
        xc,
        tc,
        20
    );
    println!("LM softmax: {f0:.3e} -> {f1:.3e}");
    assert!(f1 < 0.1 * f0);
    let (f0, f1, _) = descent!(
        TrustRegion::<Cls>::boxed(TrustRegionConfig::default()),
        Cls::init(5),
        xc,
        tc,
        20
    );
    println!("TR softmax: {f0:.3e} -> {f1:.3e}");
    assert!(f1 < 0.1 * f0);
}

#[test]
fn first_order_optimizers_decrease_the_loss() {
    let (x, t) = fit_data();
    let (f0, f1, _) = descent!(
        Adam::<Fit>::boxed(AdamConfig::default().with_lr(1e-2)),
        Fit::init(3),
        x,
        t,
        200
    );
    println!("Adam: {f0:.3e} -> {f1:.3e}");
    assert!(f1 < 0.5 * f0);
    let (f0, f1, _) = descent!(
        Sgd::<Fit>::boxed(SgdConfig::default().with_lr(1e-2).with_momentum(0.9)),
        Fit::init(3),
        x,
        t,
        200
    );
    println!("SGD: {f0:.3e} -> {f1:.3e}");
    assert!(f1 < 0.5 * f0);
}

/// Dense trust-region solution: returns (lambda, |p|, predicted reduction -m(p)).
pub(crate) fn dense_tr(h: &Mat, g: &[f64], delta: f64) -> (f64, f64, f64) {
    let n = g.len();
    let eig = SymmetricEigen::new(h.to_nalgebra(0.0));
    let gh = eig.eigenvectors.transpose() * DVector::from_column_slice(g);
    let l = &eig.eigenvalues;
    let lmin = l.min();
    let pnorm = |lam: f64| -> f64 {
        (0..n)
            .map(|i| {
                if l[i] + lam > 0.0 {
                    (gh[i] / (l[i] + lam)).powi(2)
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            .sqrt()
    };
    let model = |coef: &[f64]| -> f64 {
        (0..n)
            .map(|i| gh[i] * coef[i] + 0.5 * l[i] * coef[i] * coef[i])
            .sum()
    };
    if lmin > 0.0 && pnorm(0.0) <= delta {
        let c: Vec<f64> = (0..n).map(|i| -gh[i] / l[i]).collect();
        return (0.0, pnorm(0.0), -model(&c));
    }
    let lo0 = (-lmin).max(0.0);
    let mut c: Vec<f64>;
    // hard case: |p| at lo0 (without the lowest component) below delta
    let imin = (0..n)
        .min_by(|&a, &b| l[a].partial_cmp(&l[b]).unwrap())
        .unwrap();
    let near = |lam: f64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                if (l[i] + lam).abs() > 1e-12 * (1.0 + lam) {
                    -gh[i] / (l[i] + lam)
                } else {
                    0.0
                }
            })
            .collect()
    };
    let c0 = near(lo0);
    let n0 = c0.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n0 < delta && gh[imin].abs() < 1e-10 * (1.0 + gh.norm()) {
        c = c0;
        c[imin] = (delta * delta - n0 * n0).sqrt();
        return (lo0, delta, -model(&c));
    }
    let (mut lo, mut hi) = (lo0, lo0 + 1.0);
    while pnorm(hi) > delta {
        hi = lo0 + 2.0 * (hi - lo0);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if pnorm(mid) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let lam = 0.5 * (lo + hi);
    c = near(lam);
    (lam, pnorm(lam), -model(&c))
}

fn dense_hessian<M: Fn(&[f64], &mut [f64])>(n: usize, hvp: M) -> Mat {
    dense_from_hvp(n, |v, out| hvp(v, out)).0
}

macro_rules! check_subproblem {
    ($net:ty, $netv:expr, $x:expr, $t:expr, $g:expr, $deltas:expr, $label:expr, $expect_interior:expr, $expect_hard:expr) => {{
        const N: usize = <$net>::N_PARAMS;
        let net: $net = $netv;
        let h = dense_hessian(N, |v, out| net.hvp(&$x, &$t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap());
        let g: [f64; N] = $g(&net, &h);
        let config = TrustRegionConfig { tol: 1e-9, ..Default::default() };
        let mut tr = TrustRegion::<$net>::boxed(config).unwrap();
        let eig = sym_eigenvalues(&h);
        let (mut interior, mut hard) = (0, 0);
        for delta in $deltas {
            let sub = tr.subproblem(&net, &$x, &$t, &g, delta).unwrap();
            let lambda = sub.lambda.expect("a positive-definite shift");
            let p = tr.last_step();
            let np = norm(p);
            let (dl, dn, dpred) = dense_tr(&h, &g, delta);
            println!(
                "{} delta {delta:.1e}: lambda {:.6e} (dense {dl:.6e}), |p| {np:.6e} (dense {dn:.6e}), pred {:.9e} (dense {dpred:.9e}), boundary {}, hard {}, {} factorizations",
                $label, lambda, sub.predicted, sub.on_boundary, sub.hard_case, sub.factorizations
            );
            assert!(sub.converged, "{}: not converged", $label);
            assert!(np <= delta * (1.0 + 1e-9), "{}: |p| {np} > delta {delta}", $label);
            assert!((sub.step_norm - np).abs() <= 1e-12 * np);
            if sub.on_boundary {
                assert!((np - delta).abs() <= 1e-9 * delta, "{}: boundary residual {}", $label, (np - delta).abs() / delta);
            } else {
                interior += 1;
                assert_eq!(lambda, 0.0);
                assert!(eig[0] > 0.0, "{}: interior solution but H has eigenvalue {}", $label, eig[0]);
            }
            if sub.hard_case {
                hard += 1;
            }
            // exact predicted reduction against the dense model at our p
            let hp = h.mul_shifted(0.0, p);
            let m_ours = dot(&g, p) + 0.5 * dot(p, &hp);
            assert!((sub.predicted + m_ours).abs() <= 1e-9 * m_ours.abs(), "{}: reported prediction", $label);
            let rel = (sub.predicted - dpred).abs() / dpred.abs();
            assert!(rel < 1e-6, "{}: predicted {} vs dense {dpred} (rel {rel:e})", $label, sub.predicted);
            assert!((lambda - dl).abs() <= 1e-6 * (1.0 + dl), "{}: lambda {} vs dense {dl}", $label, lambda);
        }
        if $expect_interior {
            assert!(interior > 0, "{}: expected an interior solution", $label);
        }
        if $expect_hard {
            assert!(hard > 0, "{}: expected the hard case", $label);
        }
    }};
}

fn small_data(seed: u64) -> ([[f64; 2]; 4], [[f64; 1]; 4]) {
    let mut rng = SplitMix64::new(seed);
    let x: [[f64; 2]; 4] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    let t: [[f64; 1]; 4] = core::array::from_fn(|_| [2.0 * rng.symmetric()]);
    (x, t)
}

fn loss_gradient<const N: usize>(f: impl Fn(&mut [f64; N])) -> [f64; N] {
    let mut g = [0.0; N];
    f(&mut g);
    g
}

#[test]
fn trust_region_subproblem_matches_dense() {
    // Indefinite H (random point): boundary solutions for every radius.
    for seed in [1u64, 2, 3] {
        let (x, t) = small_data(seed);
        check_subproblem!(
            Small,
            Small::init(seed),
            x,
            t,
            |net: &Small, _h: &Mat| loss_gradient(|g| {
                net.gradient(&x, &t, g).unwrap();
            }),
            [1e-2, 1e-1, 1.0, 10.0],
            format!("Small seed {seed}"),
            false,
            false
        );
    }
    // Positive definite H at a zero-residual fit (H = G there, J has full column rank), with
    // a small gradient: interior (Newton) solutions for the large radii.
    let teacher = Tiny::init(7);
    let x: [[f64; 1]; 8] = core::array::from_fn(|n| [-1.5 + 3.0 * n as f64 / 7.0]);
    let t = teacher.forward(&x).unwrap();
    let mut rng = SplitMix64::new(8);
    let g: [f64; Tiny::N_PARAMS] = core::array::from_fn(|_| 1e-3 * rng.symmetric());
    check_subproblem!(
        Tiny,
        teacher.clone(),
        x,
        t,
        |_net: &Tiny, _h: &Mat| g,
        [1e-4, 1e-2, 1.0, 100.0, 1e4],
        "Tiny PD".to_string(),
        true,
        false
    );
}

#[test]
fn trust_region_hard_case() {
    // g orthogonal to the lowest eigenvector of an indefinite H, radius beyond |p(-lambda_1)|.
    let (x, t) = small_data(2);
    let net = Small::init(2);
    let h = dense_hessian(Small::N_PARAMS, |v, out| {
        net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap())
            .unwrap()
    });
    let eig = SymmetricEigen::new(h.to_nalgebra(0.0));
    let imin = eig.eigenvalues.imin();
    assert!(eig.eigenvalues[imin] < -1e-3, "need an indefinite H");
    let v1 = eig.eigenvectors.column(imin).into_owned();
    let mut g0 = [0.0; Small::N_PARAMS];
    net.gradient(&x, &t, &mut g0).unwrap();
    let gv = DVector::from_column_slice(&g0);
    let gp = &gv - &v1 * v1.dot(&gv);
    // |p(-lambda_1)| without the v1 component
    let l1 = eig.eigenvalues[imin];
    let gh = eig.eigenvectors.transpose() * &gp;
    let n0: f64 = (0..Small::N_PARAMS)
        .filter(|&i| i != imin)
        .map(|i| (gh[i] / (eig.eigenvalues[i] - l1)).powi(2))
        .sum::<f64>()
        .sqrt();
    let mut g = [0.0; Small::N_PARAMS];
    g.copy_from_slice(gp.as_slice());
    check_subproblem!(
        Small,
        net.clone(),
        x,
        t,
        |_net: &Small, _h: &Mat| g,
        [2.0 * n0, 10.0 * n0],
        "Small hard case".to_string(),
        false,
        true
    );
    let _ = DMatrix::<f64>::zeros(1, 1);
}

#[test]
fn positive_definiteness_matches_dense_eigenvalues() {
    let mut checked = (0, 0);
    for seed in 1..=4u64 {
        let (x, t) = small_data(seed);
        let net = Small::init(seed);
        let h = dense_hessian(Small::N_PARAMS, |v, out| {
            net.hvp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap())
                .unwrap()
        });
        let eig = sym_eigenvalues(&h);
        let lmin = eig[0];
        let mut curv = tall_skinny::boxed_zeroed::<SmallCurvature>();
        net.curvature_into(&mut curv, &x, &t).unwrap();
        let scale = eig.last().unwrap().abs().max(lmin.abs());
        for f in [-2.0, -1.0, -0.5, -0.01, 0.01, 0.5, 1.0, 2.0] {
            let lambda = -lmin + f * (1e-3 * scale).max(lmin.abs() * 0.1);
            if lambda < 0.0 {
                continue;
            }
            let dense_pd = lmin + lambda > 0.0;
            let ours = match curv.factor(lambda) {
                Ok(f) => f.inertia().is_positive_definite(),
                Err(SolveError::Singular { .. }) => false,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(
                ours, dense_pd,
                "seed {seed} lambda {lambda} (lambda_min {lmin})"
            );
            if dense_pd {
                checked.0 += 1
            } else {
                checked.1 += 1
            }
        }
        // The Gauss-Newton matrix (Riccati form) is always positive definite once shifted.
        net.ggn_curvature_into(&mut curv, &x, &t).unwrap();
        let f = curv.factor(1e-6).unwrap();
        assert!(f.inertia().is_positive_definite());
    }
    println!(
        "PD checks: {} positive definite, {} not",
        checked.0, checked.1
    );
    assert!(checked.0 > 4 && checked.1 > 4);
}

#[test]
fn lm_recovers_from_a_singular_damping() {
    // lambda so small that 1/lambda overflows: the Gauss-Newton solve reports Singular (and
    // just above that, the Woodbury form is useless), and LM must treat that as failed trials
    // and raise the damping (by Nielsen's growing factor), not return the error.
    let (x, t) = fit_data();
    let mut net = Fit::init(3);
    let l0 = net.loss(&x, &t).unwrap();
    let config = LmConfig {
        lambda: 1e-310,
        lambda_min: 1e-310,
        max_trials: 60,
        ..LmConfig::default()
    };
    let mut lm = LevenbergMarquardt::<Fit>::boxed(config).unwrap();
    let r = lm.step(&mut net, &x, &t).unwrap();
    assert!(
        r.accepted && r.factorizations > 1 && r.damping.is_some_and(|d| d > 1e-300),
        "{r:?}"
    );
    assert!(net.loss(&x, &t).unwrap() < l0);
}

#[test]
fn lm_step_bound_decreases_and_respects_the_bound() {
    // MINPACK-style control: every solved step has | |p| - Delta | <= tol Delta, or is the
    // Gauss-Newton step (lambda = lambda_min) inside the bound; the loss falls as with
    // Nielsen's update; the solve satisfies (G + lambda I) d = -g (checked with ggn_vp).
    let (x, t) = fit_data();
    let config = LmConfig::default()
        .with_damping(LmDamping::StepBound)
        .with_scaling(LmScaling::Identity);
    let (f0, f1, acc) = descent!(
        LevenbergMarquardt::<Fit>::boxed(config),
        Fit::init(3),
        x,
        t,
        30
    );
    println!("LM step bound: {f0:.3e} -> {f1:.3e} ({acc} accepted)");
    assert!(f1 < 1e-3 * f0 && acc > 10);

    let mut net = Fit::init(3);
    let mut lm = LevenbergMarquardt::<Fit>::boxed(config).unwrap();
    let mut g = [0.0; Fit::N_PARAMS];
    let mut checked = 0;
    for _ in 0..15 {
        let mut p0 = [0.0; Fit::N_PARAMS];
        net.params(&mut p0);
        let mut before = Fit::ZERO;
        before.set_params(&p0).unwrap();
        net.gradient(&x, &t, &mut g).unwrap();
        let r = lm.step(&mut net, &x, &t).unwrap();
        let delta = r.radius.expect("the step bound is reported");
        let lambda = r.damping.unwrap();
        let on_boundary = (r.step_norm - delta).abs() <= config.boundary_tol * delta;
        let gauss_newton = lambda <= config.lambda_min && r.step_norm < delta;
        let capped = r.factorizations >= config.max_subproblem;
        assert!(on_boundary || gauss_newton || capped, "{r}");
        let p0_norm = p0.iter().map(|v| v * v).sum::<f64>().sqrt();
        // (p_new - p_old loses digits once |d| is far below |p|: check the steps where that
        // rounding, u |p| / |d|, is below 1e-12.)
        if r.accepted && r.step_norm > 1e-4 * p0_norm {
            // d = p_new - p_old solves (G + lambda I) d = -g at the old point.
            let mut p1 = [0.0; Fit::N_PARAMS];
            net.params(&mut p1);
            let d: [f64; Fit::N_PARAMS] = core::array::from_fn(|i| p1[i] - p0[i]);
            let mut gd = [0.0; Fit::N_PARAMS];
            before.ggn_vp(&x, &t, &d, &mut gd).unwrap();
            let res: Vec<f64> = (0..Fit::N_PARAMS)
                .map(|i| gd[i] + lambda * d[i] + g[i])
                .collect();
            let rel = res.iter().map(|v| v * v).sum::<f64>().sqrt()
                / g.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(rel < 1e-6, "relative residual {rel:.2e}: {r}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} steps checked");
}

#[test]
fn lm_step_bound_settings_are_validated() {
    let base = LmConfig::<f64>::default().with_damping(LmDamping::StepBound);
    assert!(base.validate().is_ok());
    for bad in [
        base.with_radius_factor(0.0),
        base.with_radius_factor(f64::INFINITY),
        base.with_boundary_tol(0.0),
        base.with_boundary_tol(1.0),
        base.with_max_subproblem(0),
    ] {
        assert!(LevenbergMarquardt::<Fit>::new(bad).is_err(), "{bad:?}");
    }
}
