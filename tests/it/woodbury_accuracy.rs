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

#[test]
fn woodbury_against_dense_lu_as_eps_falls() {
    let mut rng = SplitMix64::new(21);
    let x64: [[f64; 2]; B] = core::array::from_fn(|_| [rng.symmetric(), rng.symmetric()]);
    let t64: [[f64; 1]; B] = core::array::from_fn(|_| [rng.symmetric()]);
    let x32 = x64.map(|r| r.map(|v| v as f32));
    let t32 = t64.map(|r| r.map(|v| v as f32));
    // f32-representable parameters and data, so both twins describe the same G
    let x64 = x32.map(|r| r.map(f64::from));
    let t64 = t32.map(|r| r.map(f64::from));
    let mut p = [0.0; N];
    W64::init(3).params(&mut p);
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
                    tall_skinny::SolveError::Inaccurate { residual } => {
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
