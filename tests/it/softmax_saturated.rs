//! Saturated softmax cross-entropy keeps its digits (issue 16): the loss, its gradient, the
//! Hessian blocks `diag(p) - p p'`, the Hessian product and the Gauss-Newton factor `C_n`,
//! in f64 and f32, at logit gaps up to 700.
//!
//! The reference is an independent closed form in f64, written per class without shifting by
//! the maximum: with `r_j = sum_{i != j} exp(u_i - u_j)` (finite for gaps up to 709),
//! `p_j = 1 / (1 + r_j)`, `1 - p_j = r_j / (1 + r_j)` and the loss `log1p(r_t)`. Logits are
//! integers, so every difference `u_i - u_j` is exact and the reference is correct to a few
//! units in the last place. Tolerances: `16 C u` relative (u the unit roundoff of the
//! precision under test), the Hessian product's error measured against
//! `sum_j |Hl_kj| |y_j|` (the rounding every correct evaluation makes), and for f32 an
//! absolute floor at the smallest normal number where the exact value underflows.
//!
//! The smallest net of the issue, `Dense<1, 2, Identity>` into `SoftmaxCrossEntropy<2>` at
//! batch 1 with parameters `[g/2, -g/2, 0, 0]`, input 1 and label 0, has `H = G =
//! s (1 - s) a a'`, `a = [1, -1, 1, -1]`, `s = sigmoid(-g)`: its loss, gradient, `hvp`,
//! `ggn_vp` and both solves are checked against those closed forms.

use tall_skinny::prelude::*;
use tall_skinny::runtime::ggn::GgnLoss;
use tall_skinny::runtime::nalgebra::SMatrix;
use tall_skinny::runtime::{Loss, Real, SplitMix64};

/// The reference quantities of one sample, in f64.
struct Reference<const C: usize> {
    p: [f64; C],
    /// `1 - p_j`.
    q: [f64; C],
    /// `-log p_j`.
    nlp: [f64; C],
}

fn reference<const C: usize>(u: &[f64; C]) -> Reference<C> {
    let mut out = Reference {
        p: [0.0; C],
        q: [0.0; C],
        nlp: [0.0; C],
    };
    for j in 0..C {
        let r: f64 = (0..C)
            .filter(|&i| i != j)
            .map(|i| (u[i] - u[j]).exp())
            .sum();
        out.p[j] = 1.0 / (1.0 + r);
        out.q[j] = r / (1.0 + r);
        out.nlp[j] = r.ln_1p();
    }
    out
}

/// `|got - want| <= tol |want| + floor`.
fn close(got: f64, want: f64, tol: f64, floor: f64) -> bool {
    (got - want).abs() <= tol * want.abs() + floor
}

/// Checks every loss kernel at logits `u` (integers), label `t`, in precision `T`.
fn check_logits<T: Real, const C: usize>(u: [f64; C], t: usize, rng: &mut SplitMix64) {
    let um = SMatrix::<T, C, 1>::from_fn(|k, _| T::c(u[k]));
    let rf = reference(&u);
    let unit = T::EPSILON.to_f64() / 2.0;
    let tol = 16.0 * C as f64 * unit;
    // where the exact value is below the normal range of T, only an absolute bound holds
    let floor = if unit > 1e-10 {
        4.0 * f32::MIN_POSITIVE as f64
    } else {
        4.0 * f64::MIN_POSITIVE
    };
    let ctx = format!("{} logits {u:?} label {t}", core::any::type_name::<T>());
    type Sce<const C: usize> = SoftmaxCrossEntropy<C>;

    let value = <Sce<C> as Loss<T, C, 1>>::value(&um, &[t]).to_f64();
    assert!(
        close(value, rf.nlp[t], tol, floor),
        "{ctx}: loss {value:e}, reference {:e}",
        rf.nlp[t]
    );
    let (v2, g) = <Sce<C> as Loss<T, C, 1>>::gradient(&um, &[t]);
    assert_eq!(v2.to_f64(), value, "{ctx}: gradient's loss");
    for k in 0..C {
        let want = if k == t { -rf.q[k] } else { rf.p[k] };
        let got = g[(k, 0)].to_f64();
        assert!(
            close(got, want, tol, floor),
            "{ctx}: gradient[{k}] {got:e}, reference {want:e}"
        );
    }

    let href = |i: usize, j: usize| {
        if i == j {
            rf.p[i] * rf.q[i]
        } else {
            -rf.p[i] * rf.p[j]
        }
    };
    let h = <Sce<C> as Loss<T, C, 1>>::hess_block(&um, &[t], 0);
    for i in 0..C {
        for j in 0..C {
            let (got, want) = (h[(i, j)].to_f64(), href(i, j));
            assert!(
                close(got, want, tol, floor),
                "{ctx}: Hl[{i}][{j}] {got:e}, reference {want:e}"
            );
        }
    }

    // Hl y: along each class (no cancellation in the exact value) and along random y.
    for trial in 0..C + 3 {
        let y: [f64; C] = if trial < C {
            core::array::from_fn(|k| if k == trial { 1.0 } else { 0.0 })
        } else {
            core::array::from_fn(|_| rng.symmetric())
        };
        let ym = SMatrix::<T, C, 1>::from_fn(|k, _| T::c(y[k]));
        let y: [f64; C] = core::array::from_fn(|k| ym[(k, 0)].to_f64());
        let r = <Sce<C> as Loss<T, C, 1>>::hess_apply(&um, &[t], &ym);
        for k in 0..C {
            let want: f64 = (0..C).map(|j| href(k, j) * y[j]).sum();
            let scale: f64 = (0..C).map(|j| (href(k, j) * y[j]).abs()).sum();
            let got = r[(k, 0)].to_f64();
            assert!(
                (got - want).abs() <= tol * scale + floor,
                "{ctx}: (Hl y)[{k}] {got:e}, reference {want:e} (scale {scale:e}), y {y:?}"
            );
        }
    }

    // C_n: column j is sqrt(p_j) (e_j - p), and C C' = Hl.
    let cf = <Sce<C> as GgnLoss<T, C, 1>>::hess_factor(&um, 0);
    for i in 0..C {
        for j in 0..C {
            let want = if i == j {
                rf.p[j].sqrt() * rf.q[j]
            } else {
                -rf.p[i] * rf.p[j].sqrt()
            };
            let got = cf[(i, j)].to_f64();
            assert!(
                close(got, want, tol, floor),
                "{ctx}: C[{i}][{j}] {got:e}, reference {want:e}"
            );
        }
    }
    for i in 0..C {
        for j in 0..C {
            let prod: f64 = (0..C)
                .map(|k| cf[(i, k)].to_f64() * cf[(j, k)].to_f64())
                .sum();
            let scale: f64 = (0..C)
                .map(|k| (cf[(i, k)].to_f64() * cf[(j, k)].to_f64()).abs())
                .sum();
            assert!(
                (prod - href(i, j)).abs() <= tol * scale + floor,
                "{ctx}: (C C')[{i}][{j}] {prod:e}, Hl {:e}",
                href(i, j)
            );
        }
    }
}

fn check_both<const C: usize>(u: [f64; C], t: usize, rng: &mut SplitMix64) {
    check_logits::<f64, C>(u, t, rng);
    check_logits::<f32, C>(u, t, rng);
}

#[test]
fn loss_kernels_match_the_closed_form_at_gaps_up_to_700() {
    let mut rng = SplitMix64::new(16);
    for gap in [
        0.0, 1.0, 5.0, 20.0, 30.0, 40.0, 58.0, 60.0, 90.0, 200.0, 700.0,
    ] {
        for t in 0..2 {
            check_both::<2>([gap / 2.0, -gap / 2.0], t, &mut rng);
            check_both::<2>([0.0, gap], t, &mut rng);
        }
        for t in 0..3 {
            check_both::<3>([gap, 0.0, gap - 3.0], t, &mut rng);
            check_both::<3>([0.0, -gap, -(gap / 2.0).floor()], t, &mut rng);
        }
        for t in 0..5 {
            check_both::<5>([-gap, 0.0, -1.0, 0.0, -gap / 2.0], t, &mut rng);
        }
    }
    // random integer logits with spreads up to 700
    for spread in [10.0, 100.0, 700.0] {
        for _ in 0..20 {
            let u: [f64; 4] = core::array::from_fn(|_| (spread * 0.5 * rng.symmetric()).round());
            let t = (rng.next_f64() * 4.0) as usize % 4;
            check_both::<4>(u, t, &mut rng);
        }
    }
}

/// The smallest case.
#[tall_skinny_net(batch = 1)]
struct Tiny {
    head: Dense<1, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
}

/// The same in f32.
#[tall_skinny_net(batch = 1, scalar = f32)]
struct Tiny32 {
    head: Dense<1, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
}

/// `s = sigmoid(-g)` and `1 - s`, each without cancellation.
fn sig(g: f64) -> (f64, f64) {
    (1.0 / (1.0 + g.exp()), 1.0 / (1.0 + (-g).exp()))
}

const A: [f64; 4] = [1.0, -1.0, 1.0, -1.0];

/// `(c a a' + eps I)^{-1} b`.
fn rank_one_solve(c: f64, eps: f64, b: &[f64; 4]) -> [f64; 4] {
    let ab: f64 = A.iter().zip(b).map(|(a, b)| a * b).sum();
    let f = c * ab / (eps + 4.0 * c);
    core::array::from_fn(|i| (b[i] - f * A[i]) / eps)
}

macro_rules! tiny_checks {
    ($net:ident, $curv:ident, $t:ty, $gaps:expr, $solve_gaps:expr) => {{
        let unit = <$t>::EPSILON as f64 / 2.0;
        let floor = 4.0 * <$t>::MIN_POSITIVE as f64;
        let tol = 64.0 * unit;
        for g in $gaps {
            let g: f64 = g;
            let mut net = $net::ZERO;
            net.set_params(&[(g / 2.0) as $t, (-g / 2.0) as $t, 0.0, 0.0])
                .unwrap();
            let (x, t) = ([[1.0 as $t]], [0usize]);
            let (s, s1) = sig(g);
            let c = s * s1;
            let ctx = format!("{} g {g}", stringify!($t));

            let loss = net.loss(&x, &t).unwrap() as f64;
            let want = (-g).exp().ln_1p();
            assert!(
                close(loss, want, tol, floor),
                "{ctx}: loss {loss:e}, exact {want:e}"
            );

            let mut grad = [0.0 as $t; 4];
            net.gradient(&x, &t, &mut grad).unwrap();
            for (i, gi) in grad.iter().enumerate() {
                let want = -A[i] * s;
                assert!(
                    close(*gi as f64, want, tol, floor),
                    "{ctx}: gradient[{i}] {gi:e}, exact {want:e}"
                );
            }

            let v = [1.0 as $t, 0.0, 0.0, 0.0];
            let (mut hv, mut gv) = ([0.0 as $t; 4], [0.0 as $t; 4]);
            net.hvp(&x, &t, &v, &mut hv).unwrap();
            net.ggn_vp(&x, &t, &v, &mut gv).unwrap();
            for i in 0..4 {
                let want = c * A[i];
                assert!(
                    close(hv[i] as f64, want, tol, floor),
                    "{ctx}: (H v)[{i}] {:e}, exact {want:e}",
                    hv[i]
                );
                assert!(
                    close(gv[i] as f64, want, tol, floor),
                    "{ctx}: (G v)[{i}] {:e}, exact {want:e}",
                    gv[i]
                );
            }
        }
        // Both exact solves, plain (no refinement), at eps = c and eps = c / 1000.
        let mut rng = SplitMix64::new(7);
        for g in $solve_gaps {
            let g: f64 = g;
            let mut net = $net::ZERO;
            net.set_params(&[(g / 2.0) as $t, (-g / 2.0) as $t, 0.0, 0.0])
                .unwrap();
            let (x, t) = ([[1.0 as $t]], [0usize]);
            let (s, s1) = sig(g);
            let c = s * s1;
            for ratio in [1.0, 1e-3] {
                let eps = (c * ratio) as $t;
                let b: [$t; 4] = core::array::from_fn(|_| rng.symmetric() as $t);
                let bf: [f64; 4] = core::array::from_fn(|i| b[i] as f64);
                let want = rank_one_solve(c, eps as f64, &bf);
                let cond = (eps as f64 + 4.0 * c) / eps as f64;
                let bound = 64.0 * cond * unit;
                for ggn in [false, true] {
                    let mut curv = $curv::ZERO;
                    if ggn {
                        net.ggn_curvature_into(&mut curv, &x, &t).unwrap();
                    } else {
                        net.curvature_into(&mut curv, &x, &t).unwrap();
                    }
                    let mut f = curv.factor(eps).unwrap();
                    let mut sol = [0.0 as $t; 4];
                    f.solve(&b, &mut sol).unwrap();
                    let sol: Vec<f64> = sol.iter().map(|v| *v as f64).collect();
                    let err = crate::solve_common::rel_err(&sol, &want);
                    println!(
                        "{} g {g} eps/c {ratio:e} ggn {ggn}: error {err:.1e} (cond {cond:.1e})",
                        stringify!($t)
                    );
                    assert!(
                        err <= bound,
                        "{} g {g} eps {eps:e} ggn {ggn}: solve error {err:e} > {bound:e}",
                        stringify!($t)
                    );
                }
            }
        }
    }};
}

#[test]
fn smallest_saturated_net_f64() {
    tiny_checks!(
        Tiny,
        TinyCurvature,
        f64,
        [0.5, 5.0, 20.0, 30.0, 40.0, 58.0, 60.0, 100.0, 300.0, 700.0],
        [5.0, 20.0, 40.0, 58.0, 300.0]
    );
}

#[test]
fn smallest_saturated_net_f32() {
    tiny_checks!(
        Tiny32,
        Tiny32Curvature,
        f32,
        [0.5, 5.0, 20.0, 30.0, 40.0, 58.0, 60.0, 100.0, 300.0, 700.0],
        [5.0, 20.0, 40.0, 58.0]
    );
}
