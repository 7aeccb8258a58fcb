//! The Woodbury Gauss-Newton form as eps falls (issue 16), f32 and f64, against a dense
//! pivoted LU solve of `G + eps I` in f64 (`G` from the f64 twin's `ggn_vp` columns at the
//! same, f32-representable, parameters).
//!
//! The form divides by eps (docs/math.md section 5.3). Measured here: the plain solve, the
//! refined solve, and the Riccati form's refined solve, relative error against the dense
//! reference, for b random and b = the gradient, with `cond * u` beside them. Asserted:
//! every `Ok` of `solve_refined` is accurate to `10 * cond * u` (never a quiet inaccurate
//! `Ok`), and in f64 the refined Woodbury solve is within 10x of the Riccati form's error
//! or of `cond * u64`, whichever is larger.

use crate::solve_common::*;
use tall_skinny::prelude::*;
use tall_skinny::runtime::SplitMix64;

const B: usize = 8;

/// N 77, batch 8, one output: M = 8 columns in the Woodbury form.
#[tall_skinny_net(batch = 8)]
struct W64 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

/// Its f32 twin.
#[tall_skinny_net(batch = 8, scalar = f32)]
struct W32 {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: Mse<1>,
}

const N: usize = W64::N_PARAMS;

fn to64(v: &[f32; N]) -> Vec<f64> {
    v.iter().map(|x| f64::from(*x)).collect()
}

/// The f32 net and its f64 twin at the same f32-representable parameters (`W64::init(init)`
/// rounded) and data (drawn from `rng`: inputs, then targets, rounded to f32), and the dense
/// `G` from the f64 twin's `ggn_vp` columns with its eigenvalues: `(x32, t32, x64, t64,
/// net32, net64, g, eig)`.
struct Twins(
    [[f32; 2]; B],
    [[f32; 1]; B],
    [[f64; 2]; B],
    [[f64; 1]; B],
    W32,
    W64,
    Mat,
    Vec<f64>,
);

fn twins(rng: &mut SplitMix64, init: u64) -> Twins {
    let x32: [[f32; 2]; B] =
        core::array::from_fn(|_| [rng.symmetric() as f32, rng.symmetric() as f32]);
    let t32: [[f32; 1]; B] = core::array::from_fn(|_| [rng.symmetric() as f32]);
    let x64 = x32.map(|r| r.map(f64::from));
    let t64 = t32.map(|r| r.map(f64::from));
    let mut p = [0.0; N];
    W64::init(init).params(&mut p);
    let p32 = p.map(|v| v as f32);
    let mut net32 = W32::ZERO;
    net32.set_params(&p32).unwrap();
    let mut net64 = W64::ZERO;
    net64.set_params(&p32.map(f64::from)).unwrap();
    let (g, _) = dense_from_hvp(N, |v, out| {
        net64
            .ggn_vp(&x64, &t64, v.try_into().unwrap(), out.try_into().unwrap())
            .unwrap()
    });
    let eig = sym_eigenvalues(&g);
    Twins(x32, t32, x64, t64, net32, net64, g, eig)
}

#[test]
fn woodbury_against_dense_lu_as_eps_falls() {
    let mut rng = SplitMix64::new(21);
    // f32-representable parameters and data, so both twins describe the same G
    let Twins(x32, t32, x64, t64, net32, net64, g, eig) = twins(&mut rng, 3);
    let mut grad32 = [0.0f32; N];
    net32.gradient(&x32, &t32, &mut grad32).unwrap();
    let rand32: [f32; N] = core::array::from_fn(|_| rng.symmetric() as f32);

    let mut w64 = tall_skinny::boxed_zeroed::<W64Ggn>();
    let mut w32 = tall_skinny::boxed_zeroed::<W32Ggn>();
    let mut r64 = tall_skinny::boxed_zeroed::<W64Curvature>();
    let mut r32 = tall_skinny::boxed_zeroed::<W32Curvature>();
    net64.ggn_woodbury_into(&mut w64, &x64, &t64).unwrap();
    net32.ggn_woodbury_into(&mut w32, &x32, &t32).unwrap();
    net64.ggn_curvature_into(&mut r64, &x64, &t64).unwrap();
    net32.ggn_curvature_into(&mut r32, &x32, &t32).unwrap();

    let fmt = |r: Result<f64, String>| match r {
        Ok(e) => format!("{e:.1e}"),
        Err(e) => e,
    };
    println!("| b | eps | cond * u64 | cond * u32 | f64 W plain | f64 W refined | f64 Riccati refined | f32 W plain | f32 W refined | f32 Riccati refined |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (bname, b32) in [("random", rand32), ("gradient", grad32)] {
        let b64: [f64; N] = b32.map(f64::from);
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8] {
            let reference = lu_solve(&g, eps, &b64);
            let c = cond(&eig, eps);
            let (cu64, cu32) = (c * f64::EPSILON, c * f64::from(f32::EPSILON));
            // f64
            let mut x = [0.0f64; N];
            let w_plain = w64
                .factor(eps)
                .and_then(|mut f| f.solve(&b64, &mut x))
                .map(|()| rel_err(&x, &reference));
            let w_ref = w64
                .factor(eps)
                .and_then(|mut f| f.solve_refined(&b64, &mut x, 2))
                .map(|_| rel_err(&x, &reference));
            let r_ref = r64
                .factor(eps)
                .and_then(|mut f| f.solve_refined(&b64, &mut x, 2))
                .map(|_| rel_err(&x, &reference));
            // f32
            let mut y = [0.0f32; N];
            let e32 = eps as f32;
            let w32_plain = w32
                .factor(e32)
                .and_then(|mut f| f.solve(&b32, &mut y))
                .map(|()| rel_err(&to64(&y), &reference));
            let w32_ref = w32
                .factor(e32)
                .and_then(|mut f| f.solve_refined(&b32, &mut y, 2))
                .map(|_| rel_err(&to64(&y), &reference));
            let r32_ref = r32
                .factor(e32)
                .and_then(|mut f| f.solve_refined(&b32, &mut y, 2))
                .map(|_| rel_err(&to64(&y), &reference));
            let show = |r: &Result<f64, tall_skinny::SolveError>| {
                fmt((*r).map_err(|e| match e {
                    tall_skinny::SolveError::Inaccurate { residual, .. } => {
                        format!("Inaccurate ({residual:.0e})")
                    }
                    e => format!("{e:?}"),
                }))
            };
            println!(
                "| {bname} | {eps:.0e} | {cu64:.0e} | {cu32:.0e} | {} | {} | {} | {} | {} | {} |",
                show(&w_plain),
                show(&w_ref),
                show(&r_ref),
                show(&w32_plain),
                show(&w32_ref),
                show(&r32_ref)
            );
            // never a quiet inaccurate Ok
            for (what, r, cu) in [
                ("f64 Woodbury refined", &w_ref, cu64),
                ("f64 Riccati refined", &r_ref, cu64),
                ("f32 Woodbury refined", &w32_ref, cu32),
                ("f32 Riccati refined", &r32_ref, cu32),
            ] {
                if let Ok(e) = r {
                    assert!(
                        *e <= 10.0 * cu.max(if cu == cu32 { 1e-6 } else { 1e-15 }),
                        "{bname} eps {eps:e}: {what} returned Ok with error {e:.2e}, cond * u = {cu:.1e}"
                    );
                }
            }
            if let (Ok(w), Ok(r)) = (&w_ref, &r_ref) {
                assert!(
                    *w <= 10.0 * r.max(cu64),
                    "{bname} eps {eps:e}: f64 Woodbury refined {w:.2e} against Riccati {r:.2e}"
                );
            }
        }
    }
}

/// `Factorization::solve_gradient` (docs/math.md section 5.3): the Woodbury solve of the
/// fill's own gradient `g = U w` as `U (eps I + U'U)^{-1} w`, without the division by eps,
/// in f64 and f32 against a dense pivoted LU solve in f64 of `G + eps I` with the f64
/// gradient at the same parameters (the step the optimizers want), and its small-space
/// model terms against the dense `x'Gx`, `|x|^2` and `x'(G + eps I)^{-1}x`.
#[test]
fn gradient_solve_against_dense_lu_as_eps_falls() {
    use tall_skinny::runtime::optim::Model;
    let mut rng = SplitMix64::new(22);
    let Twins(x32, t32, x64, t64, net32, net64, g, eig) = twins(&mut rng, 5);
    let mut w64 = tall_skinny::boxed_zeroed::<W64Ggn>();
    let mut w32 = tall_skinny::boxed_zeroed::<W32Ggn>();
    let mut grad64 = [0.0f64; N];
    let mut grad32 = [0.0f32; N];
    let mut s = tall_skinny::runtime::NoScratch;
    net64
        .gradient_gauss_newton_into(&mut s, &mut w64, &x64, &t64, &mut grad64)
        .unwrap();
    net32
        .gradient_gauss_newton_into(&mut s, &mut w32, &x32, &t32, &mut grad32)
        .unwrap();
    assert!(w64.has_gradient_coords() && w32.has_gradient_coords());
    // G = U U' has M nonzero eigenvalues; the gradient lies in their span, where the
    // problem's condition number is that of eps I + U'U.
    let mut top = eig.clone();
    top.sort_by(|a, b| b.total_cmp(a));
    let m = B; // outputs (1) times batch
    println!("| eps | cond * u64 | range cond * u64 | f64 gradient solve | f64 refined | range cond * u32 | f32 gradient solve | f32 refined | model terms (f64) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10] {
        let reference = lu_solve(&g, eps, &grad64);
        let c = cond(&eig, eps);
        let cu64 = c * f64::EPSILON;
        let range_cond = (top[0] + eps) / (top[m - 1].max(0.0) + eps);
        let (ru64, ru32) = (
            range_cond * f64::EPSILON,
            range_cond * f64::from(f32::EPSILON),
        );
        let mut x = [0.0f64; N];
        let mut f = w64.factor(eps).unwrap();
        let terms = f
            .solve_gradient(&grad64, &mut x)
            .unwrap()
            .expect("the fill's gradient");
        let e64 = rel_err(&x, &reference);
        // the model terms against the dense matrix
        let gx = g.mul_shifted(0.0, &reference);
        let dgd = dot(&reference, &gx);
        let xx = dot(&reference, &reference);
        let q = lu_solve(&g, eps, &reference);
        let xq = dot(&reference, &q);
        let term_err = [
            (terms.curvature - dgd).abs() / dgd,
            (terms.metric - xx).abs() / xx,
            (terms.secular - xq).abs() / xq,
        ]
        .into_iter()
        .fold(0.0f64, f64::max);
        // a vector that is not the fill's gradient takes the other route
        let other = grad64.map(|v| v * 2.0);
        assert!(f.solve_gradient(&other, &mut x).unwrap().is_none());
        let r64 = f
            .solve_refined(&grad64, &mut x, 2)
            .map(|_| rel_err(&x, &reference));
        let mut y = [0.0f32; N];
        let e32 = eps as f32;
        let s32 = w32
            .factor(e32)
            .and_then(|mut f| f.solve_gradient(&grad32, &mut y))
            .map(|t| {
                assert!(t.is_some(), "the fill's gradient");
                rel_err(&to64(&y), &reference)
            });
        let r32 = w32
            .factor(e32)
            .and_then(|mut f| f.solve_refined(&grad32, &mut y, 2))
            .map(|_| rel_err(&to64(&y), &reference));
        let show = |r: &Result<f64, tall_skinny::SolveError>| match r {
            Ok(e) => format!("{e:.1e}"),
            Err(tall_skinny::SolveError::Inaccurate { residual, .. }) => {
                format!("Inaccurate ({residual:.0e})")
            }
            Err(e) => format!("{e:?}"),
        };
        println!(
            "| {eps:.0e} | {cu64:.0e} | {ru64:.0e} | {e64:.1e} | {} | {ru32:.0e} | {} | {} | {term_err:.1e} |",
            show(&r64),
            show(&s32),
            show(&r32)
        );
        // f64: the dense LU reference is itself only good to about cond * u64 (it does not
        // know that b lies in the range of U), so that is the bar.
        assert!(
            e64 <= 10.0 * cu64.max(1e-15),
            "eps {eps:e}: f64 gradient solve {e64:.2e}, cond * u64 {cu64:.1e}"
        );
        assert!(
            term_err <= 10.0 * cu64.max(1e-14),
            "eps {eps:e}: f64 model terms {term_err:.2e}, cond * u64 {cu64:.1e}"
        );
        // f32: an answer at every eps (the refined solve gives up below 1e-5), as accurate as
        // the conditioning of the small system allows.
        let e32 = s32.unwrap_or_else(|e| panic!("eps {eps:e}: f32 gradient solve {e:?}"));
        assert!(
            e32 <= 10.0 * ru32.max(cu64).max(1e-6),
            "eps {eps:e}: f32 gradient solve {e32:.2e}, range cond * u32 {ru32:.1e}"
        );
    }
}

/// A custom loss with positive curvature (its coordinates from the generic elimination).
#[loss]
fn log_cosh_fit(y: f64, t: f64) -> f64 {
    (y - t).cosh().ln()
}

/// Huber's loss: where every residual is past `0.1` the curvature is zero and the gradient
/// is not, so the gradient leaves the range of `U`.
#[loss]
fn huber_fit(y: f64, t: f64) -> f64 {
    let r = y - t;
    if r.abs() <= 0.1 {
        0.5 * r * r
    } else {
        0.1 * (r.abs() - 0.05)
    }
}

#[tall_skinny_net(batch = 8)]
struct WCosh {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: LogCoshFit<1>,
}

#[tall_skinny_net(batch = 8)]
struct WHuber {
    a: Dense<2, 4, Tanh>,
    b: [Residual<4, Tanh>; 3],
    c: Dense<4, 1, Identity>,
    loss: HuberFit<1>,
}

/// When the gradient solve applies and when it steps aside: a custom loss's coordinates
/// (generic elimination, checked against the gradient), a gradient outside the range of
/// `U` (Huber past its knee: `None`, and LM still steps by the refined solve), a storage
/// filled without the gradient (`None`).
#[test]
fn gradient_solve_takes_only_the_fills_own_gradient() {
    use tall_skinny::runtime::ggn::GgnMethod;
    use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig, Model};
    assert_eq!(<WCosh as Model>::GGN_METHOD, GgnMethod::Woodbury);
    let mut rng = SplitMix64::new(23);
    let x: [[f64; 2]; B] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    let t: [[f64; 1]; B] = core::array::from_fn(|_| [rng.symmetric()]);
    let mut s = tall_skinny::runtime::NoScratch;

    let net = WCosh::init(2);
    let mut w = tall_skinny::boxed_zeroed::<WCoshGgn>();
    let mut g = [0.0; WCosh::N_PARAMS];
    net.gradient_gauss_newton_into(&mut s, &mut w, &x, &t, &mut g)
        .unwrap();
    assert!(w.has_gradient_coords());
    for eps in [1e-1, 1e-3] {
        let mut f = w.factor(eps).unwrap();
        let mut a = [0.0; WCosh::N_PARAMS];
        let mut b = [0.0; WCosh::N_PARAMS];
        f.solve_gradient(&g, &mut a)
            .unwrap()
            .expect("the fill's gradient");
        f.solve_refined(&g, &mut b, 2).unwrap();
        let e = rel_err(&a, &b);
        assert!(
            e < 1e-10,
            "eps {eps:e}: gradient solve against refined {e:.2e}"
        );
    }
    // filled without the gradient: the other route
    net.ggn_woodbury_into(&mut w, &x, &t).unwrap();
    let mut a = [0.0; WCosh::N_PARAMS];
    assert!(w
        .factor(1e-2)
        .unwrap()
        .solve_gradient(&g, &mut a)
        .unwrap()
        .is_none());

    // Huber past its knee on every sample: no coordinates, the refined route, LM still steps
    let far = t.map(|[v]| [v + 5.0]);
    let mut net = WHuber::init(2);
    let mut wh = tall_skinny::boxed_zeroed::<WHuberGgn>();
    let mut gh = [0.0; WHuber::N_PARAMS];
    net.gradient_gauss_newton_into(&mut s, &mut wh, &x, &far, &mut gh)
        .unwrap();
    assert!(!wh.has_gradient_coords());
    let mut a = [0.0; WHuber::N_PARAMS];
    assert!(wh
        .factor(1e-2)
        .unwrap()
        .solve_gradient(&gh, &mut a)
        .unwrap()
        .is_none());
    let mut lm = LevenbergMarquardt::<WHuber>::new(LmConfig::default()).unwrap();
    let r = lm.step(&mut net, &x, &far).unwrap();
    assert!(r.factorizations >= 1 && r.predicted.is_some(), "{r}");
}

#[tall_skinny_net(batch = 2)]
struct WSoft {
    a: Dense<2, 4, Tanh>,
    b: Dense<4, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// Softmax cross-entropy's closed-form coordinates `w_n = -e_t / sqrt(p_t B)` pass the
/// fill's check `C_n w_n = dl/du_n` (to rounding) with every parameter scaled 1x, 40x and
/// 200x (the softmax increasingly saturated, for the winning label and for others), in f64.
#[test]
fn softmax_coordinates_reproduce_the_gradient() {
    let x = [[0.3, -0.7], [1.1, 0.4]];
    let mut p = [0.0; WSoft::N_PARAMS];
    WSoft::init(4).params(&mut p);
    let mut w = tall_skinny::boxed_zeroed::<WSoftGgn>();
    for scale in [1.0, 40.0, 200.0] {
        let q: Vec<f64> = p.iter().map(|v| v * scale).collect();
        let mut net = WSoft::ZERO;
        net.set_params(&q.clone().try_into().unwrap()).unwrap();
        for labels in [[0usize, 2], [1, 1]] {
            net.ggn_woodbury_into(&mut w, &x, &labels).unwrap();
            assert!(
                w.has_gradient_coords(),
                "scale {scale}, labels {labels:?}: the coordinates failed the fill's check"
            );
        }
    }
}
