//! Levenberg-Marquardt's column scaling (issue 15): the Woodbury solve of `G + lambda D^2`
//! against a dense pivoted-LU solve of the same matrix (`G` from `ggn_vp` columns), the
//! diagonal of `G` against the dense one, the refused inputs (a non-positive or NaN `D`, a
//! scaling asked of a Riccati net or of storage without room for `D`), and the scaled
//! step-bound LM on a small net: every step satisfies `(G + lambda D^2) d = -g`, its bound
//! is on `|D d|`, and it reaches the target.

use crate::solve_common::*;
use tall_skinny::prelude::*;
use tall_skinny::runtime::ggn::GgnMethod;
use tall_skinny::runtime::optim::*;
use tall_skinny::runtime::solver::Factorable;
use tall_skinny::runtime::{ConfigError, SolveError, SplitMix64};

/// N 107, batch 8, one output: M = 8, so the Woodbury form.
#[tall_skinny_net(batch = 8)]
struct Fit {
    a: Dense<1, 6, Tanh>,
    b: [Residual<6, Tanh>; 2],
    c: Dense<6, 1, Identity>,
    loss: Mse<1>,
}

/// One output and a width-1 layer at batch 16: the Riccati form.
#[tall_skinny_net(batch = 16)]
struct Thin {
    inp: Dense<1, 1, Tanh>,
    loss: Mse<1>,
}

fn data() -> ([[f64; 1]; 8], [[f64; 1]; 8]) {
    let x: [[f64; 1]; 8] = core::array::from_fn(|n| [-1.0 + 2.0 * n as f64 / 7.0]);
    let t = x.map(|[v]| [(3.0 * v).sin() * 0.8 + 0.2 * v]);
    (x, t)
}

/// The dense Gauss-Newton matrix from `N` products `G e_j`.
fn dense_g(net: &Fit, x: &[[f64; 1]; 8], t: &[[f64; 1]; 8]) -> Mat {
    let (g, asym) = dense_from_hvp(Fit::N_PARAMS, |v, out| {
        let v: [f64; Fit::N_PARAMS] = v.try_into().unwrap();
        let mut o = [0.0; Fit::N_PARAMS];
        net.ggn_vp(x, t, &v, &mut o).unwrap();
        out.copy_from_slice(&o);
    });
    assert!(asym < 1e-12, "asymmetry {asym:.2e}");
    g
}

/// `g + diag(s)`.
fn plus_diag(g: &Mat, s: &[f64]) -> Mat {
    let mut a = Mat::zeros(g.n);
    a.a.copy_from_slice(&g.a);
    for (i, si) in s.iter().enumerate() {
        a.a[i * g.n + i] += si;
    }
    a
}

#[test]
fn scaled_woodbury_solve_matches_dense_lu() {
    assert_eq!(Fit::GGN_METHOD, GgnMethod::Woodbury);
    let (x, t) = data();
    let net = Fit::init(3);
    let g = dense_g(&net, &x, &t);
    let mut storage = FitGgn::ZERO;
    net.ggn_woodbury_into(&mut storage, &x, &t).unwrap();

    // diag(G) from U's rows against the dense diagonal.
    let mut diag = [0.0; Fit::N_PARAMS];
    storage.gauss_newton_diag(&mut diag).unwrap();
    for (i, got) in diag.iter().enumerate() {
        let want = g.at(i, i);
        assert!(
            (got - want).abs() <= 1e-13 * (want.abs() + 1e-300) + 1e-15 * g.frobenius(),
            "diag {i}: {got} vs {want}"
        );
    }

    // D: MINPACK's column norms (sqrt diag G, 1 where zero), and a rough random one spanning
    // four decades.
    let mut rng = SplitMix64::new(11);
    let norms: [f64; Fit::N_PARAMS] =
        core::array::from_fn(|i| if diag[i] > 0.0 { diag[i].sqrt() } else { 1.0 });
    let random: [f64; Fit::N_PARAMS] =
        core::array::from_fn(|_| 10f64.powf(4.0 * rng.next_f64() - 2.0));
    let b: [f64; Fit::N_PARAMS] = core::array::from_fn(|_| rng.symmetric());
    let u = f64::EPSILON / 2.0;
    let mut checked = 0;
    for d in [norms, random] {
        for lambda in [1e-6, 1e-3, 1.0, 1e3] {
            let d2: Vec<f64> = d.iter().map(|v| lambda * v * v).collect();
            let a = plus_diag(&g, &d2);
            let want = lu_solve(&a, 0.0, &b);
            let cond = cond(&sym_eigenvalues(&a), 0.0);
            let mut got = [0.0; Fit::N_PARAMS];
            let mut f = storage.factor_scaled(lambda, &d).unwrap();
            assert!(f.is_scaled());
            f.solve_refined(&b, &mut got, 2).unwrap();
            let err = rel_err(&got, &want);
            println!("lambda {lambda:.0e}: cond {cond:.2e}, relative error {err:.2e}");
            assert!(
                err <= 10.0 * cond * u,
                "lambda {lambda}: {err:.2e} > 10 cond u"
            );
            // The product is G + lambda D^2 too.
            let mut av = [0.0; Fit::N_PARAMS];
            f.apply(&b, &mut av).unwrap();
            let dense = a.mul_shifted(0.0, &b);
            assert!(rel_err(&av, &dense) < 1e-12);
            // The unrefined Woodbury form alone: still exact to the conditioning (it
            // divides by lambda D^2, so it may lose what refinement then recovers).
            f.solve(&b, &mut got).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, 8);

    // Back to the identity on the same fill: the Gram matrix is rebuilt, G + lambda I solved.
    let lambda = 1e-2;
    let want = lu_solve(&g, lambda, &b);
    let mut got = [0.0; Fit::N_PARAMS];
    let mut f = storage.factor(lambda).unwrap();
    assert!(!f.is_scaled());
    f.solve_refined(&b, &mut got, 2).unwrap();
    let cond = cond(&sym_eigenvalues(&g), lambda);
    assert!(rel_err(&got, &want) <= 10.0 * cond * u);
    // ... and the scaled one's inverse-diagonal and log-det (of G + eps I only) are refused.
    let mut out = [0.0; Fit::N_PARAMS];
    let mut f = storage.factor_scaled(lambda, &norms).unwrap();
    assert!(matches!(f.diag_inv(&mut out), Err(SolveError::Config(_))));
    assert!(matches!(f.log_det(), Err(SolveError::Config(_))));
}

#[test]
fn bad_scalings_are_refused() {
    let (x, t) = data();
    let net = Fit::init(3);
    let mut storage = FitGgn::ZERO;
    // Empty storage: no curvature, whatever D.
    let ones = [1.0; Fit::N_PARAMS];
    assert!(matches!(
        storage.factor_scaled(1.0, &ones),
        Err(SolveError::NoCurvature)
    ));
    net.ggn_woodbury_into(&mut storage, &x, &t).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e200, 1e-200] {
        let mut d = ones;
        d[5] = bad;
        match storage.factor_scaled(1.0, &d) {
            Err(SolveError::Config(ConfigError { field: "scale", .. })) => {}
            other => panic!("D with {bad}: {:?}", other.map(|_| ())),
        }
    }
    // A good D still works after the refusals (the storage was not spoilt).
    assert!(storage.factor_scaled(1.0, &ones).is_ok());

    // The Riccati form cannot take a diagonal scaling: the storage says so, and so does LM
    // at configuration time.
    assert_eq!(Thin::GGN_METHOD, GgnMethod::Riccati);
    let thin = Thin::init(1);
    let xs: [[f64; 1]; 16] = core::array::from_fn(|n| [n as f64 / 16.0]);
    let ts = xs.map(|[v]| [v * 0.5]);
    let mut curv = ThinCurvature::ZERO;
    thin.ggn_curvature_into(&mut curv, &xs, &ts).unwrap();
    let d = [1.0; Thin::N_PARAMS];
    assert!(matches!(
        Factorable::factor_scaled(&mut curv, 1.0, &d),
        Err(SolveError::Config(ConfigError {
            field: "scaling",
            ..
        }))
    ));
    let mut dg = [0.0; Thin::N_PARAMS];
    assert!(Factorable::diag_into(&mut curv, &mut dg).is_err());
    // LM refuses both a scaling and geodesic acceleration (no solve for its right-hand
    // side) on it when configured, naming the field.
    for (name, c) in [
        (
            "scaling",
            LmConfig::default().with_scaling(LmScaling::ColumnNorms),
        ),
        (
            "scaling",
            LmConfig::default().with_scaling(LmScaling::Marquardt),
        ),
        (
            "geodesic",
            LmConfig::default().with_geodesic(Geodesic::default()),
        ),
    ] {
        match LevenbergMarquardt::<Thin>::new(c) {
            Err(ConfigError {
                field, requirement, ..
            }) if field == name => assert!(requirement.contains("Riccati"), "{requirement}"),
            other => panic!("{c:?} on a Riccati net: {:?}", other.map(|_| ())),
        }
    }
    assert!(LevenbergMarquardt::<Thin>::new(LmConfig::default()).is_ok());

    // No storage for D: only the identity.
    let c = LmConfig::default().with_scaling(LmScaling::ColumnNorms);
    let mut lm = LevenbergMarquardt::<Fit, NoScale>::ZERO;
    assert!(matches!(
        lm.configure(c),
        Err(ConfigError {
            field: "scaling",
            ..
        })
    ));
    lm.configure(c.with_scaling(LmScaling::Identity)).unwrap();
    assert!(lm.scale().is_none());
}

#[test]
fn scaled_step_bound_lm_solves_its_subproblem_and_reaches_the_target() {
    let (x, t) = data();
    let config = LmConfig::default()
        .with_damping(LmDamping::StepBound)
        .with_scaling(LmScaling::ColumnNorms);
    let mut net = Fit::init(3);
    let mut lm = LevenbergMarquardt::<Fit>::boxed(config).unwrap();
    let l0 = net.loss(&x, &t).unwrap();
    let mut g = [0.0; Fit::N_PARAMS];
    let mut checked = 0;
    let mut reached = None;
    let mut d_prev = [0.0; Fit::N_PARAMS];
    for k in 1..=100 {
        let mut p0 = [0.0; Fit::N_PARAMS];
        net.params(&mut p0);
        let mut before = Fit::ZERO;
        before.set_params(&p0).unwrap();
        net.gradient(&x, &t, &mut g).unwrap();
        let r = lm.step(&mut net, &x, &t).unwrap();
        let d = *lm.scale().expect("the column scaling is kept");
        // MINPACK's mode 1: D never decreases, and is positive.
        for (i, (di, dp)) in d.iter().zip(&d_prev).enumerate() {
            assert!(*di > 0.0 && di >= dp, "D[{i}] {di} < {dp}");
        }
        d_prev = d;
        let lambda = r.damping.unwrap();
        let delta = r.radius.unwrap();
        if r.accepted {
            let mut p1 = [0.0; Fit::N_PARAMS];
            net.params(&mut p1);
            let step: [f64; Fit::N_PARAMS] = core::array::from_fn(|i| p1[i] - p0[i]);
            let p0n = norm(&p0);
            // (p1 - p0 loses digits once the step is far below |p|.)
            if norm(&step) > 1e-4 * p0n {
                // The bound is on |D step|: on it within tol, or the Gauss-Newton step
                // inside it, or the subproblem ran out of factorisations.
                let dn = norm(&core::array::from_fn::<f64, { Fit::N_PARAMS }, _>(|i| {
                    d[i] * step[i]
                }));
                let on = (dn - delta).abs() <= config.boundary_tol * delta;
                let gn = lambda <= config.lambda_min && dn < delta;
                let capped = r.factorizations >= config.max_subproblem;
                assert!(on || gn || capped, "|D p| {dn:.3e}, Delta {delta:.3e}: {r}");
                // (G + lambda D^2) step = -g at the old point.
                let mut gs = [0.0; Fit::N_PARAMS];
                before.ggn_vp(&x, &t, &step, &mut gs).unwrap();
                let res: Vec<f64> = (0..Fit::N_PARAMS)
                    .map(|i| gs[i] + lambda * d[i] * d[i] * step[i] + g[i])
                    .collect();
                let rel = norm(&res) / norm(&g);
                assert!(rel < 1e-6, "step {k}: relative residual {rel:.2e}: {r}");
                checked += 1;
            }
        }
        if net.loss(&x, &t).unwrap() < 1e-10 * l0 {
            reached = Some(k);
            break;
        }
    }
    println!("scaled step bound: loss {l0:.3e} -> below 1e-10 of it at step {reached:?}, {checked} steps checked");
    assert!(reached.is_some(), "did not reach 1e-10 of the initial loss");
    assert!(checked >= 3);
}

#[test]
fn scaled_nielsen_lm_descends() {
    let (x, t) = data();
    let mut net = Fit::init(3);
    let mut lm =
        LevenbergMarquardt::<Fit>::boxed(LmConfig::default().with_scaling(LmScaling::ColumnNorms))
            .unwrap();
    let l0 = net.loss(&x, &t).unwrap();
    for _ in 0..60 {
        lm.step(&mut net, &x, &t).unwrap();
    }
    let l1 = net.loss(&x, &t).unwrap();
    println!("scaled Nielsen: {l0:.3e} -> {l1:.3e}");
    assert!(l1 < 1e-6 * l0);
}
