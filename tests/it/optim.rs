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
use tall_skinny::runtime::ggn::GgnMethod;
use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::solver::Factorization;
use tall_skinny::runtime::{ConstZero, SplitMix64};

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

/// The geodesic right-hand side and solve of one net against a dense reference: the outputs'
/// Jacobian `J` (`output_jacobian`, rows sample after sample), the loss Hessian `Hl` in
/// closed form (`hl(n)`, sample `n`'s `O x O` block), `G = J'Hl J`, `u''` by the same finite
/// difference from `forward`, and `x = (G + lambda D^2)^{-1} J'Hl u''` by a pivoted LU.
/// Returns the relative error of `solve_geodesic` and `cond(D^{-1}(G + lambda D^2)D^{-1})`.
#[allow(clippy::too_many_arguments)]
fn geodesic_against_dense<M: Model<Scalar = f64>>(
    net: &mut M,
    x: &M::Input,
    t: &M::Target,
    jac: &dyn Fn(&M, usize) -> Vec<Vec<f64>>,
    hl: &dyn Fn(&[f64], usize) -> DMatrix<f64>,
    lambda: f64,
    scaled: bool,
    seed: u64,
) -> (f64, f64) {
    let n = M::N_PARAMS;
    let mut p = M::Vector::ZERO;
    net.get_params(&mut p);
    let mut rng = SplitMix64::new(seed);
    let mut v = M::Vector::ZERO;
    let pn = norm(p.as_ref());
    for vi in v.as_mut() {
        *vi = rng.symmetric();
    }
    let s = 0.1 * pn / norm(v.as_ref());
    v.as_mut().iter_mut().for_each(|vi| *vi *= s);
    let h = 0.1;
    let mut u0 = M::Outputs::ZERO;
    net.outputs_at(x, &mut u0).unwrap();
    let mut q = p;
    for (qi, vi) in q.as_mut().iter_mut().zip(v.as_ref()) {
        *qi += h * vi;
    }
    net.put_params(&q).unwrap();
    let mut du = M::Outputs::ZERO;
    net.outputs_at(x, &mut du).unwrap();
    net.put_params(&p).unwrap();
    for (o, z) in du.flat_mut().iter_mut().zip(u0.flat()) {
        *o -= z;
    }
    let m = du.flat().len();
    let outs = m / M::BATCH;
    // Dense reference.
    let mut j = DMatrix::<f64>::zeros(m, n);
    for s in 0..M::BATCH {
        for (o, row) in jac(net, s).iter().enumerate() {
            for c in 0..n {
                j[(s * outs + o, c)] = row[c];
            }
        }
    }
    let mut hlm = DMatrix::<f64>::zeros(m, m);
    for s in 0..M::BATCH {
        let b = hl(&u0.flat()[s * outs..(s + 1) * outs], s);
        hlm.view_mut((s * outs, s * outs), (outs, outs))
            .copy_from(&b);
    }
    let vv = DVector::from_column_slice(v.as_ref());
    let upp = (DVector::from_column_slice(du.flat()) / h - &j * &vv) * (2.0 / h);
    let rhs = j.transpose() * &hlm * upp;
    let g = j.transpose() * &hlm * &j;
    let d: Vec<f64> = (0..n)
        .map(|i| {
            let c = g[(i, i)].max(0.0).sqrt();
            if scaled && c > 0.0 {
                c
            } else {
                1.0
            }
        })
        .collect();
    let a = DMatrix::from_fn(n, n, |r, c| {
        g[(r, c)] + if r == c { lambda * d[r] * d[r] } else { 0.0 }
    });
    let want = a.clone().lu().solve(&rhs).unwrap();
    let sa = DMatrix::from_fn(n, n, |r, c| a[(r, c)] / (d[r] * d[c]));
    let eig = SymmetricEigen::new(sa).eigenvalues;
    let cond = eig.max() / eig.min();
    // The library's solve.
    let mut ggn = tall_skinny::boxed_zeroed::<M::GaussNewton>();
    net.gauss_newton_into(&mut ggn, x, t).unwrap();
    let mut dv = M::Vector::ZERO;
    dv.as_mut().copy_from_slice(&d);
    let mut got = M::Vector::ZERO;
    let mut f = if scaled {
        net.factor_current_scaled(&mut *ggn, lambda, &dv).unwrap()
    } else {
        net.factor_current(&mut *ggn, lambda).unwrap()
    };
    assert!(f.solve_geodesic(&v, du.flat(), h, &mut got).unwrap());
    (rel_err(got.as_ref(), want.as_slice()), cond)
}

#[test]
fn geodesic_solve_matches_a_dense_reference() {
    // Both built-in losses (MSE: Hl = I/B; cross-entropy: (diag p - p p')/B), with and
    // without the column scaling, at dampings 1e-1 to 1e-6: the error stays within a few
    // cond * u of the dense pivoted solve (the Woodbury route does not divide by lambda).
    assert_eq!(Fit::GGN_METHOD, GgnMethod::Woodbury);
    assert_eq!(Cls::GGN_METHOD, GgnMethod::Woodbury);
    let (x, t) = fit_data();
    let mut fit = Fit::init(5);
    let fit_jac = |net: &Fit, s: usize| {
        let mut jac = [[0.0; Fit::N_PARAMS]; 1];
        net.output_jacobian(&x[s], &mut jac).unwrap();
        jac.iter().map(|r| r.to_vec()).collect::<Vec<_>>()
    };
    let mse_hl = |_: &[f64], _: usize| DMatrix::identity(1, 1) / 8.0;
    let xc: [[f64; 2]; 6] = core::array::from_fn(|n| [0.3 * n as f64 - 0.7, (n as f64).cos()]);
    let tc: [usize; 6] = core::array::from_fn(|n| n % 3);
    let mut cls = Cls::init(2);
    let cls_jac = |net: &Cls, s: usize| {
        let mut jac = [[0.0; Cls::N_PARAMS]; 3];
        net.output_jacobian(&xc[s], &mut jac).unwrap();
        jac.iter().map(|r| r.to_vec()).collect::<Vec<_>>()
    };
    let ce_hl = |u: &[f64], _: usize| {
        let top = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = u.iter().map(|v| (v - top).exp()).collect();
        let z: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / z).collect();
        DMatrix::from_fn(3, 3, |r, c| {
            ((if r == c { p[r] } else { 0.0 }) - p[r] * p[c]) / 6.0
        })
    };
    for lambda in [1e-1, 1e-3, 1e-6] {
        for scaled in [false, true] {
            let cases = [
                (
                    "Fit/MSE",
                    geodesic_against_dense(&mut fit, &x, &t, &fit_jac, &mse_hl, lambda, scaled, 1),
                ),
                (
                    "Cls/CE",
                    geodesic_against_dense(&mut cls, &xc, &tc, &cls_jac, &ce_hl, lambda, scaled, 2),
                ),
            ];
            for (name, (err, cond)) in cases {
                println!(
                    "{name} lambda {lambda:.0e} scaled {scaled}: error {err:.2e}, cond {cond:.2e}"
                );
                assert!(
                    err <= 10.0 * cond * f64::EPSILON,
                    "{name} lambda {lambda:e} scaled {scaled}: error {err:.2e}, cond {cond:.2e}"
                );
            }
        }
    }
}

#[test]
fn lm_geodesic_descends_and_refuses_what_it_cannot_do() {
    let (x, t) = fit_data();
    let geo = LmConfig::default()
        .with_scaling(LmScaling::ColumnNorms)
        .with_geodesic(Geodesic::default());
    // It descends as plain LM does, and the acceleration is taken on some steps.
    let mut net = Fit::init(3);
    let mut lm = LevenbergMarquardt::<Fit>::boxed(geo).unwrap();
    let first = net.loss(&x, &t).unwrap();
    let mut accelerated = 0;
    let mut last = first;
    for _ in 0..30 {
        let r = lm.step(&mut net, &x, &t).unwrap();
        let now = net.loss(&x, &t).unwrap();
        assert!(if r.accepted { now < last } else { now == last }, "{r}");
        accelerated += usize::from(r.accepted && lm.accelerated());
        last = now;
    }
    println!("LM geodesic: {first:.3e} -> {last:.3e}, {accelerated} accelerated steps");
    assert!(
        last < 1e-3 * first && accelerated >= 5,
        "{first} -> {last}, {accelerated}"
    );

    // Settings it cannot honour are refused, naming the field.
    let field = |c: LmConfig<f64>| LevenbergMarquardt::<Fit>::new(c).err().map(|e| e.field);
    let with = |alpha: f64, h: f64| geo.with_geodesic(Geodesic { alpha, h });
    assert_eq!(field(with(0.0, 0.1)), Some("geodesic.alpha"));
    assert_eq!(field(with(f64::NAN, 0.1)), Some("geodesic.alpha"));
    assert_eq!(field(with(0.75, 0.0)), Some("geodesic.h"));
    assert_eq!(field(with(0.75, 1.5)), Some("geodesic.h"));
    assert_eq!(field(with(0.75, f64::NAN)), Some("geodesic.h"));
    assert_eq!(
        field(geo.with_damping(LmDamping::StepBound)),
        Some("geodesic")
    );
    // (The refusal on a Riccati net is in lm_scaled.rs, next to the scaling's.)

    // `Model::outputs_at` is the generated `forward`: a non-finite input is an error and
    // leaves `out` as it was.
    let net = Fit::init(3);
    let mut out = <Fit as Model>::Outputs::ZERO;
    net.outputs_at(&x, &mut out).unwrap();
    assert_eq!(out, net.forward(&x).unwrap());
    let mut bad_x = x;
    bad_x[5][0] = f64::NAN;
    let before = out;
    assert!(matches!(
        net.outputs_at(&bad_x, &mut out),
        Err(NetError::NonFiniteInput {
            sample: 5,
            index: 0
        })
    ));
    assert_eq!(out, before);

    // The solve's own checks: du of another length, non-finite v or du, a bad h; the
    // Hessian's factorisation has no such route (Ok(false), x untouched).
    let net = Fit::init(3);
    let mut ggn = tall_skinny::boxed_zeroed::<<Fit as Model>::GaussNewton>();
    net.gauss_newton_into(&mut ggn, &x, &t).unwrap();
    let mut f = net.factor_current(&mut *ggn, 1e-3).unwrap();
    let v = [0.01; Fit::N_PARAMS];
    let du = [0.0; 8];
    let mut out = [0.0; Fit::N_PARAMS];
    fn config_field(r: Result<bool, SolveError>) -> &'static str {
        match r {
            Err(SolveError::Config(c)) => c.field,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        config_field(Factorization::solve_geodesic(
            &mut f,
            &v,
            &du[..7],
            0.1,
            &mut out
        )),
        "du"
    );
    assert_eq!(
        config_field(Factorization::solve_geodesic(
            &mut f, &v, &du, 0.0, &mut out
        )),
        "h"
    );
    assert_eq!(
        config_field(Factorization::solve_geodesic(
            &mut f,
            &v,
            &du,
            f64::INFINITY,
            &mut out
        )),
        "h"
    );
    let mut bad = v;
    bad[4] = f64::NAN;
    assert!(matches!(
        f.solve_geodesic(&bad, &du, 0.1, &mut out),
        Err(SolveError::Net(NetError::NonFiniteVector { index: 4 }))
    ));
    let mut bad_du = du;
    bad_du[2] = f64::INFINITY;
    assert!(matches!(
        f.solve_geodesic(&v, &bad_du, 0.1, &mut out),
        Err(SolveError::Net(NetError::NonFiniteVector { index: 2 }))
    ));
    assert!(out.iter().all(|o| *o == 0.0));
    let mut hess = tall_skinny::boxed_zeroed::<<Fit as Model>::Hessian>();
    net.hessian_into(&mut hess, &x, &t).unwrap();
    let mut fh = net.factor_current(&mut *hess, 1.0).unwrap();
    assert!(!fh.solve_geodesic(&v, &du, 0.1, &mut out).unwrap());
    assert!(out.iter().all(|o| *o == 0.0));
}
