//! Gauss-Newton curvature `G = J' Hl J` against dense references.
//!
//! - `ggn_vp` against a dense `J' Hl J v` with `J` from central differences of `forward`
//!   (independent of every generated derivative) and `Hl` written out from the loss
//!   definition: relative error <= 1e-6 (the difference quotient's error, h = 1e-5).
//! - Both exact solves (Riccati stage blocks and Woodbury) against a dense pivoted LU solve of
//!   `(G + eps I)`, `G` assembled from `ggn_vp` columns: relative error <= 1e-9 for eps in
//!   {1, 1e-2, 1e-4}.
//! - The Riccati factorisation of `G + eps I` reports every eigenvalue positive (G is PSD).
//! - Errors: eps <= 0 and non-finite eps are rejected.

use crate::solve_common::*;
use tall_skinny::prelude::*;
use tall_skinny::runtime::ggn::GgnMethod;
use tall_skinny::runtime::SplitMix64;

/// N 59, depth 5, batch 3, Mse.
#[tall_skinny_net(batch = 3)]
struct MseNet {
    a: Dense<3, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 2, Identity>,
    loss: Mse<2>,
}

/// Batch 1 (G has rank <= 2).
#[tall_skinny_net(batch = 1)]
struct MseB1 {
    a: Dense<2, 3, Tanh>,
    b: [Residual<3, Sin>; 4],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

/// Softmax head (Hl singular: its factor C has rank C - 1).
#[tall_skinny_net(batch = 4)]
struct SoftNet {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Sigmoid>; 2],
    c: DenseNoBias<4, 3, Gelu>,
    loss: SoftmaxCrossEntropy<3>,
}

/// Batch 8: the Gram matrix is 16 x 16.
#[tall_skinny_net(batch = 8)]
struct MseB8 {
    a: DenseNoBias<2, 3, Silu>,
    b: [Residual<3, Tanh>; 5],
    c: Dense<3, 2, Identity>,
    loss: Mse<2>,
}

fn random_vec(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..n).map(|_| rng.symmetric()).collect()
}

/// What the tests need from a net, as closures over flat vectors.
struct Case {
    name: &'static str,
    n: usize,
    outputs: usize,
    batch: usize,
    /// Flat network outputs (sample-major) at parameters `p`.
    forward: Box<dyn Fn(&[f64]) -> Vec<f64>>,
    /// Dense loss Hessian (outputs*batch square, row-major) at parameters `p`.
    loss_hessian: Box<dyn Fn(&[f64]) -> Vec<f64>>,
    ggn_vp: Box<dyn Fn(&[f64], &mut [f64])>,
    riccati: Box<
        dyn Fn(f64, &[f64], &mut [f64]) -> (Result<(), SolveError>, tall_skinny::runtime::Inertia),
    >,
    woodbury: Box<dyn Fn(f64, &[f64], &mut [f64]) -> Result<(), SolveError>>,
    p0: Vec<f64>,
}

macro_rules! case {
    ($name:literal, $net:ident, $seed:expr, mse) => {{
        let mut rng = SplitMix64::new($seed);
        let net = $net::init($seed);
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let t: [[f64; $net::OUTPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
        let hl = |_p: &[f64]| {
            let m = $net::OUTPUTS * $net::BATCH;
            let mut h = vec![0.0; m * m];
            for i in 0..m {
                h[i * m + i] = 1.0 / $net::BATCH as f64;
            }
            h
        };
        case!(@finish $name, $net, net, x, t, hl)
    }};
    ($name:literal, $net:ident, $seed:expr, softmax) => {{
        let mut rng = SplitMix64::new($seed);
        let net = $net::init($seed);
        let x: [[f64; $net::INPUTS]; $net::BATCH] =
            core::array::from_fn(|_| core::array::from_fn(|_| 2.0 * rng.symmetric()));
        let t: [usize; $net::BATCH] = core::array::from_fn(|n| n % $net::OUTPUTS);
        let hl = move |p: &[f64]| {
            let mut net = $net::ZERO;
            net.set_params(p.try_into().unwrap()).unwrap();
            let u = net.forward(&x).unwrap();
            let (o, b) = ($net::OUTPUTS, $net::BATCH);
            let m = o * b;
            let mut h = vec![0.0; m * m];
            for n in 0..b {
                let mx = u[n].iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = u[n].iter().map(|v| (v - mx).exp()).collect();
                let s: f64 = e.iter().sum();
                let p: Vec<f64> = e.iter().map(|v| v / s).collect();
                for i in 0..o {
                    for j in 0..o {
                        let d = if i == j { p[i] } else { 0.0 };
                        h[(n * o + i) * m + n * o + j] = (d - p[i] * p[j]) / b as f64;
                    }
                }
            }
            h
        };
        case!(@finish $name, $net, net, x, t, hl)
    }};
    (@finish $name:literal, $net:ident, $netv:ident, $x:ident, $t:ident, $hl:ident) => {{
        const N: usize = $net::N_PARAMS;
        let mut p0 = vec![0.0; N];
        $netv.params((&mut p0[..]).try_into().unwrap());
        let (x, t) = ($x, $t);
        let net1 = $netv.clone();
        let net2 = $netv.clone();
        let net3 = $netv.clone();
        Case {
            name: $name,
            n: N,
            outputs: $net::OUTPUTS,
            batch: $net::BATCH,
            forward: Box::new(move |p: &[f64]| {
                let mut net = $net::ZERO;
                net.set_params(p.try_into().unwrap()).unwrap();
                net.forward(&x).unwrap().iter().flatten().cloned().collect()
            }),
            loss_hessian: Box::new($hl),
            ggn_vp: Box::new(move |v: &[f64], out: &mut [f64]| {
                net1.ggn_vp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap()).unwrap();
            }),
            riccati: Box::new(move |eps: f64, b: &[f64], out: &mut [f64]| {
                let mut curv = tall_skinny::boxed_zeroed::<<$net as Named>::Curv>();
                net2.ggn_curvature_into(&mut curv, &x, &t).unwrap();
                match curv.factor(eps) {
                    Ok(mut f) => {
                        let r = f.solve_refined(b.try_into().unwrap(), out.try_into().unwrap(), 2).map(|_| ());
                        (r, f.inertia())
                    }
                    Err(e) => (Err(e), Default::default()),
                }
            }),
            woodbury: Box::new(move |eps: f64, b: &[f64], out: &mut [f64]| {
                let mut g = tall_skinny::boxed_zeroed::<<$net as Named>::Ggn>();
                net3.ggn_woodbury_into(&mut g, &x, &t).unwrap();
                g.factor(eps).and_then(|mut f| f.solve_refined(b.try_into().unwrap(), out.try_into().unwrap(), 2).map(|_| ()))
            }),
            p0,
        }
    }};
}

trait Named {
    type Curv: tall_skinny::runtime::bytemuck::Zeroable;
    type Ggn: tall_skinny::runtime::bytemuck::Zeroable;
}
impl Named for MseNet {
    type Curv = MseNetCurvature;
    type Ggn = MseNetGgn;
}
impl Named for MseB1 {
    type Curv = MseB1Curvature;
    type Ggn = MseB1Ggn;
}
impl Named for SoftNet {
    type Curv = SoftNetCurvature;
    type Ggn = SoftNetGgn;
}
impl Named for MseB8 {
    type Curv = MseB8Curvature;
    type Ggn = MseB8Ggn;
}

fn cases() -> Vec<Case> {
    vec![
        case!("MseNet b3", MseNet, 11, mse),
        case!("MseB1", MseB1, 12, mse),
        case!("SoftNet b4", SoftNet, 13, softmax),
        case!("MseB8", MseB8, 14, mse),
    ]
}

/// Dense `J' Hl J` with `J` by central differences of `forward` (h = 1e-5).
fn dense_ggn_fd(c: &Case) -> Mat {
    let (n, m) = (c.n, c.outputs * c.batch);
    let h = 1e-5;
    let mut jac = vec![0.0; m * n]; // row-major m x n
    let mut p = c.p0.clone();
    for j in 0..n {
        p[j] = c.p0[j] + h;
        let up = (c.forward)(&p);
        p[j] = c.p0[j] - h;
        let dn = (c.forward)(&p);
        p[j] = c.p0[j];
        for i in 0..m {
            jac[i * n + j] = (up[i] - dn[i]) / (2.0 * h);
        }
    }
    let hl = (c.loss_hessian)(&c.p0);
    let mut g = Mat::zeros(n);
    for a in 0..n {
        for b in 0..n {
            let mut acc = 0.0;
            for i in 0..m {
                for k in 0..m {
                    acc += jac[i * n + a] * hl[i * m + k] * jac[k * n + b];
                }
            }
            g.a[a * n + b] = acc;
        }
    }
    g
}

#[test]
fn ggn_vp_matches_finite_difference_jacobian() {
    for c in cases() {
        let g = dense_ggn_fd(&c);
        let mut rng = SplitMix64::new(5);
        for _ in 0..3 {
            let v = random_vec(c.n, &mut rng);
            let mut ours = vec![0.0; c.n];
            (c.ggn_vp)(&v, &mut ours);
            let dense = g.mul_shifted(0.0, &v);
            let err = rel_err(&ours, &dense);
            println!("{:12} ggn_vp vs FD dense: {err:.2e}", c.name);
            assert!(err < 1e-6, "{}: ggn_vp relative error {err:e}", c.name);
        }
    }
}

#[test]
fn ggn_is_symmetric_positive_semidefinite() {
    for c in cases() {
        let (g, asym) = dense_from_hvp(c.n, |v, out| (c.ggn_vp)(v, out));
        assert!(asym < 1e-13, "{}: asymmetry {asym:e}", c.name);
        let eig = sym_eigenvalues(&g);
        let top = eig.last().unwrap().abs();
        assert!(
            eig[0] > -1e-12 * top,
            "{}: lowest eigenvalue {} (top {top})",
            c.name,
            eig[0]
        );
        // rank <= outputs * batch (minus one per sample for softmax)
        let rank = eig.iter().filter(|e| **e > 1e-10 * top).count();
        assert!(rank <= c.outputs * c.batch, "{}: rank {rank}", c.name);
    }
}

#[test]
fn ggn_solves_match_dense_lu() {
    for c in cases() {
        let (g, _) = dense_from_hvp(c.n, |v, out| (c.ggn_vp)(v, out));
        let mut rng = SplitMix64::new(9);
        for eps in [1.0, 1e-2, 1e-4] {
            let b = random_vec(c.n, &mut rng);
            let reference = lu_solve(&g, eps, &b);
            let mut x = vec![0.0; c.n];
            let (res, inertia) = (c.riccati)(eps, &b, &mut x);
            res.unwrap();
            let e_r = rel_err(&x, &reference);
            assert_eq!(
                (inertia.negative, inertia.zero, inertia.positive),
                (0, 0, c.n),
                "{}: inertia",
                c.name
            );
            let mut y = vec![0.0; c.n];
            (c.woodbury)(eps, &b, &mut y).unwrap();
            let e_w = rel_err(&y, &reference);
            println!(
                "{:12} eps {eps:.0e}: riccati {e_r:.2e}, woodbury {e_w:.2e}",
                c.name
            );
            assert!(e_r < 1e-9, "{} eps {eps}: riccati error {e_r:e}", c.name);
            assert!(e_w < 1e-9, "{} eps {eps}: woodbury error {e_w:e}", c.name);
        }
    }
}

#[test]
fn woodbury_rejects_bad_eps() {
    let mut rng = SplitMix64::new(1);
    let net = MseNet::init(1);
    let x: [[f64; 3]; 3] = core::array::from_fn(|_| core::array::from_fn(|_| rng.symmetric()));
    let t = [[0.5, -0.5]; 3];
    let mut g = MseNetGgn::ZERO;
    net.ggn_woodbury_into(&mut g, &x, &t).unwrap();
    let b = [1.0; MseNet::N_PARAMS];
    let mut out = [0.0; MseNet::N_PARAMS];
    assert_eq!(
        g.factor(0.0)
            .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ())),
        Err(SolveError::Singular { stage: 0 })
    );
    assert_eq!(
        g.factor(-1.0)
            .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ())),
        Err(SolveError::Singular { stage: 0 })
    );
    assert_eq!(
        g.factor(f64::NAN)
            .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ())),
        Err(SolveError::NonFiniteEps)
    );
    let mut bad = b;
    bad[3] = f64::NAN;
    assert_eq!(
        g.factor(1e-3)
            .and_then(|mut f| f.solve_refined(&bad, &mut out, 2).map(|_| ())),
        Err(SolveError::Net(NetError::NonFiniteVector { index: 3 }))
    );
    // The one-call form agrees with the explicit one.
    let mut s = MseNetGgn::ZERO;
    let mut y = [0.0; MseNet::N_PARAMS];
    g.factor(1e-3)
        .and_then(|mut f| f.solve_refined(&b, &mut out, 2).map(|_| ()))
        .unwrap();
    net.ggn_solve_in(&mut s, &x, &t, 1e-3, &b, &mut y).unwrap();
    assert!(rel_err(&out, &y) < 1e-12);
    let _ = MseNet::GGN_METHOD == GgnMethod::Woodbury;
}

/// Cauchy loss `ln(1 + r^2)`: its second derivative `2 (1 - r^2) / (1 + r^2)^2` is negative
/// for `|r| > 1`, so the Gauss-Newton matrix must use the loss Hessian's positive part.
#[loss]
fn cauchy(y: f64, t: f64) -> f64 {
    let r = y - t;
    (1.0 + r * r).ln()
}

/// A custom (elementwise) loss with an indefinite Hessian.
#[tall_skinny_net(batch = 3)]
struct CauchyNet {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 2],
    c: Dense<4, 2, Identity>,
    loss: Cauchy<2>,
}

#[test]
fn custom_loss_uses_the_positive_part_of_its_hessian() {
    const N: usize = CauchyNet::N_PARAMS;
    let mut rng = SplitMix64::new(21);
    let net = CauchyNet::init(21);
    let x: [[f64; 2]; 3] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    // targets far enough from the outputs that some residuals exceed 1 (negative curvature)
    let t: [[f64; 2]; 3] =
        core::array::from_fn(|n| [3.0 * (n as f64 - 1.0), 0.2 * rng.symmetric()]);
    let u = net.forward(&x).unwrap();
    let r: Vec<f64> = (0..3)
        .flat_map(|n| (0..2).map(move |k| (n, k)))
        .map(|(n, k)| u[n][k] - t[n][k])
        .collect();
    assert!(
        r.iter().any(|v| v.abs() > 1.0) && r.iter().any(|v| v.abs() < 1.0),
        "residuals {r:?}"
    );
    // dense reference: J by central differences, Hl = diag(max(l''(r), 0)) / B
    let mut p0 = [0.0; N];
    net.params(&mut p0);
    let fwd = |p: &[f64; N]| {
        let mut m = CauchyNet::ZERO;
        m.set_params(p).unwrap();
        m.forward(&x)
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<f64>>()
    };
    let h = 1e-5;
    let m = 6;
    let mut jac = vec![0.0; m * N];
    let mut p = p0;
    for j in 0..N {
        p[j] = p0[j] + h;
        let up = fwd(&p);
        p[j] = p0[j] - h;
        let dn = fwd(&p);
        p[j] = p0[j];
        for i in 0..m {
            jac[i * N + j] = (up[i] - dn[i]) / (2.0 * h);
        }
    }
    let hl: Vec<f64> = r
        .iter()
        .map(|r| (2.0 * (1.0 - r * r) / (1.0 + r * r).powi(2)).max(0.0) / 3.0)
        .collect();
    let mut v = [0.0; N];
    for vi in v.iter_mut() {
        *vi = rng.symmetric();
    }
    let jv: Vec<f64> = (0..m)
        .map(|i| (0..N).map(|j| jac[i * N + j] * v[j]).sum())
        .collect();
    let dense: Vec<f64> = (0..N)
        .map(|j| (0..m).map(|i| jac[i * N + j] * hl[i] * jv[i]).sum())
        .collect();
    let mut ours = [0.0; N];
    net.ggn_vp(&x, &t, &v, &mut ours).unwrap();
    let e = rel_err(&ours, &dense);
    assert!(e < 1e-6, "ggn_vp vs dense: {e:e}");
    // both solves against the dense LU of the ggn_vp matrix
    let (g, _) = dense_from_hvp(N, |v, out| {
        net.ggn_vp(&x, &t, v.try_into().unwrap(), out.try_into().unwrap())
            .unwrap()
    });
    let eig = sym_eigenvalues(&g);
    assert!(eig[0] > -1e-12 * eig[N - 1], "G not PSD: {}", eig[0]);
    let b: [f64; N] = core::array::from_fn(|_| rng.symmetric());
    let reference = lu_solve(&g, 1e-2, &b);
    let mut curv = tall_skinny::boxed_zeroed::<CauchyNetCurvature>();
    net.ggn_curvature_into(&mut curv, &x, &t).unwrap();
    let mut xr = [0.0; N];
    curv.factor(1e-2)
        .unwrap()
        .solve_refined(&b, &mut xr, 2)
        .unwrap();
    let mut gg = CauchyNetGgn::ZERO;
    net.ggn_woodbury_into(&mut gg, &x, &t).unwrap();
    let mut xw = [0.0; N];
    gg.factor(1e-2)
        .and_then(|mut f| f.solve_refined(&b, &mut xw, 2).map(|_| ()))
        .unwrap();
    let (er, ew) = (rel_err(&xr, &reference), rel_err(&xw, &reference));
    println!("Cauchy loss: ggn_vp {e:.1e}, riccati {er:.1e}, woodbury {ew:.1e}");
    assert!(er < 1e-10 && ew < 1e-10, "riccati {er:e}, woodbury {ew:e}");
}
