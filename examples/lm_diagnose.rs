//! Why Levenberg-Marquardt stalls in f32 on `fit_regression`'s problem: at the f32 run's
//! stall point, the f32 solve against the f64 solve of the same system, the f32 predicted
//! and actual reductions against f64-evaluated ones, and the f32 loss's own rounding level.
//! `cargo run --release --example lm_diagnose`

use tall_skinny::runtime::optim::*;

#[path = "common/regression.rs"]
mod regression;
use regression::*;

const N: usize = Regressor64::N_PARAMS;

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    d / b.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let (x64, t64) = data();
    let x32 = x64.map(|r| r.map(|v| v as f32));
    let t32 = t64.map(|r| r.map(|v| v as f32));
    let mut p64 = [0.0f64; N];
    Regressor64::init(1).params(&mut p64);
    let mut net32 = Regressor32::ZERO;
    net32.set_params(&p64.map(|v| v as f32)).unwrap();
    let mut lm = LevenbergMarquardt::<Regressor32>::boxed(LmConfig::default()).unwrap();
    for _ in 0..steps {
        lm.step(&mut net32, &x32, &t32).unwrap();
    }
    // The f32 floor: the f64 run's optimum rounded to f32, its loss evaluated in f64 (and f32).
    {
        let mut n64 = Regressor64::ZERO;
        n64.set_params(&p64).unwrap();
        let mut lm64 = LevenbergMarquardt::<Regressor64>::boxed(LmConfig::default()).unwrap();
        for _ in 0..1000 {
            lm64.step(&mut n64, &x64, &t64).unwrap();
        }
        let mut q = [0.0f64; N];
        n64.params(&mut q);
        let qr = q.map(|v| v as f32);
        let mut a = Regressor64::ZERO;
        a.set_params(&qr.map(f64::from)).unwrap();
        let mut b = Regressor32::ZERO;
        b.set_params(&qr).unwrap();
        println!(
            "f64 optimum (1000 LM steps): loss {:.3e}; rounded to f32: loss in f64 {:.3e} (the floor), in f32 {:.3e}",
            n64.loss(&x64, &t64).unwrap(),
            a.loss(&x64, &t64).unwrap(),
            b.loss(&x32, &t32).unwrap()
        );
    }
    let mut p32 = [0.0f32; N];
    net32.params(&mut p32);
    let pw: [f64; N] = p32.map(f64::from);
    let mut net64 = Regressor64::ZERO;
    net64.set_params(&pw).unwrap();
    println!(
        "after {steps} f32 steps: lambda {:.2e}; loss f32 {:.6e}, loss f64 at the same params {:.6e} (f32 rounding of the loss: {:.1e})",
        lm.lambda(),
        net32.loss(&x32, &t32).unwrap(),
        net64.loss(&x64, &t64).unwrap(),
        (f64::from(net32.loss(&x32, &t32).unwrap()) - net64.loss(&x64, &t64).unwrap()).abs()
    );
    // gradients
    let mut g32 = [0.0f32; N];
    let mut g64 = [0.0f64; N];
    net32.gradient(&x32, &t32, &mut g32).unwrap();
    net64.gradient(&x64, &t64, &mut g64).unwrap();
    let g32w = g32.map(f64::from);
    println!(
        "|g| f64 {:.3e}; f32 gradient rel. error {:.2e}",
        g64.iter().map(|v| v * v).sum::<f64>().sqrt(),
        rel(&g32w, &g64)
    );
    println!("GGN_METHOD {:?}", Regressor32::GGN_METHOD);
    let mut w32: Box<Regressor32Ggn> = Box::new(Regressor32Ggn::ZERO);
    let mut w64: Box<Regressor64Ggn> = Box::new(Regressor64Ggn::ZERO);
    let mut r32: Box<Regressor32Curvature> = Box::new(Regressor32Curvature::ZERO);
    let mut r64: Box<Regressor64Curvature> = Box::new(Regressor64Curvature::ZERO);
    net32.ggn_woodbury_into(&mut w32, &x32, &t32).unwrap();
    net64.ggn_woodbury_into(&mut w64, &x64, &t64).unwrap();
    net32.ggn_curvature_into(&mut r32, &x32, &t32).unwrap();
    net64.ggn_curvature_into(&mut r64, &x64, &t64).unwrap();
    let l32 = f64::from(net32.loss(&x32, &t32).unwrap());
    let l64 = net64.loss(&x64, &t64).unwrap();
    println!("| lambda | f64 W vs f64 R | f32 W plain | f32 W refined (res; backward error bound) | f32 R plain | f32 R refined (res) | pred f32 | pred f64 | actual f32 | actual f64 at f32 step | ratio f32 | ratio f64-evaluated |");
    for lam in [1e-1, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6] {
        // f64 reference: Riccati refined, of the f64 gradient at the f32 params
        let mut d_ref = [0.0f64; N];
        let mut d_w64 = [0.0f64; N];
        r64.factor(lam)
            .unwrap()
            .solve_refined(&g64, &mut d_ref, 4)
            .unwrap();
        let w64res = w64.factor(lam).unwrap().solve_refined(&g64, &mut d_w64, 4);
        // the same linear system as f32 solves: the f32 gradient, in f64
        let mut d_ref32 = [0.0f64; N];
        r64.factor(lam)
            .unwrap()
            .solve_refined(&g32w, &mut d_ref32, 4)
            .unwrap();
        // floor: the f64 solution rounded to f32, its residual computed in f32
        let xr: [f32; N] = d_ref32.map(|v| v as f32);
        let mut ax = [0.0f32; N];
        if let Ok(mut f) = w32.factor(lam as f32) {
            f.apply(&xr, &mut ax).unwrap();
        }
        let floor = rel(&ax.map(f64::from), &g32w);
        // |G + lam I| by power iteration in f64
        let mut v = [1.0f64; N];
        let mut nrm = 0.0;
        for _ in 0..30 {
            let mut av = [0.0f64; N];
            w64.factor(lam).unwrap().apply(&v, &mut av).unwrap();
            nrm = av.iter().map(|a| a * a).sum::<f64>().sqrt()
                / v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v = av;
        }
        let xn = d_ref32.iter().map(|a| a * a).sum::<f64>().sqrt();
        let gn = g32w.iter().map(|a| a * a).sum::<f64>().sqrt();
        println!("lambda {lam:.0e}: f32 residual of f32(x*) {floor:.1e}; u32 |A| |x| / |b| = {:.1e} (|A| {nrm:.2e})", 5.96e-8 * nrm * xn / gn);
        let mut row = format!(
            "| {lam:.0e} | {:.1e} ({}) ",
            rel(&d_w64, &d_ref),
            w64res.map_or_else(|e| format!("{e:?}"), |r| format!("{:.0e}", r.residual))
        );
        let mut d32 = [0.0f32; N];
        let Ok(mut f) = w32.factor(lam as f32) else {
            println!("{row} | f32 Woodbury Singular");
            continue;
        };
        f.solve(&g32, &mut d32).unwrap();
        row += &format!("| {:.1e} ", rel(&d32.map(f64::from), &d_ref32));
        let res = f.solve_refined(&g32, &mut d32, 2);
        row += &format!(
            "| {:.1e} ({}) ",
            rel(&d32.map(f64::from), &d_ref32),
            match res {
                Ok(r) => format!("{:.1e}; {:.1e}", r.residual, r.backward_error),
                Err(e) => format!("{e:?}"),
            }
        );
        let mut e32 = [0.0f32; N];
        let Ok(mut f) = r32.factor(lam as f32) else {
            println!("{row} | f32 Riccati Singular");
            continue;
        };
        let plain = f
            .solve(&g32, &mut e32)
            .map(|()| rel(&e32.map(f64::from), &d_ref32));
        let res = f.solve_refined(&g32, &mut e32, 2);
        row += &format!(
            "| {} | {:.1e} ({}) ",
            plain.map_or_else(|e| format!("{e:?}"), |v| format!("{v:.1e}")),
            rel(&e32.map(f64::from), &d_ref32),
            match res {
                Ok(r) => format!("{:.1e}", r.residual),
                Err(e) => format!("{e:?}"),
            }
        );
        // predicted and actual reductions of the f32 (Woodbury, refined) step
        let step: [f32; N] = core::array::from_fn(|i| -d32[i]);
        let sn: f64 = step.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
        let gd32: f32 = g32.iter().zip(&step).map(|(a, b)| a * b).sum();
        let pred32 = (lam as f32 * sn as f32 - gd32) * 0.5;
        let stepw = step.map(f64::from);
        let gd64: f64 = g64.iter().zip(&stepw).map(|(a, b)| a * b).sum();
        let mut gv = [0.0f64; N];
        net64.ggn_vp(&x64, &t64, &stepw, &mut gv).unwrap();
        let vgv: f64 = gv.iter().zip(&stepw).map(|(a, b)| a * b).sum();
        let pred64 = -(gd64 + 0.5 * vgv);
        let trial32: [f32; N] = core::array::from_fn(|i| p32[i] + step[i]);
        let mut n = Regressor32::ZERO;
        n.set_params(&trial32).unwrap();
        let lt32 = f64::from(n.loss(&x32, &t32).unwrap());
        let mut n = Regressor64::ZERO;
        n.set_params(&trial32.map(f64::from)).unwrap();
        let lt64 = n.loss(&x64, &t64).unwrap();
        // the f64 step (of the f64 gradient) evaluated in f64
        let s64: [f64; N] = core::array::from_fn(|i| -d_ref[i]);
        let gd: f64 = g64.iter().zip(&s64).map(|(a, b)| a * b).sum();
        net64.ggn_vp(&x64, &t64, &s64, &mut gv).unwrap();
        let vgv: f64 = gv.iter().zip(&s64).map(|(a, b)| a * b).sum();
        let mut n = Regressor64::ZERO;
        n.set_params(&core::array::from_fn(|i| pw[i] + s64[i]))
            .unwrap();
        row += &format!(
            "| f64 step ratio {:.3} ",
            (l64 - n.loss(&x64, &t64).unwrap()) / -(gd + 0.5 * vgv)
        );
        row += &format!(
            "| {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3} | {:.3} |",
            pred32,
            pred64,
            l32 - lt32,
            l64 - lt64,
            (l32 - lt32) / f64::from(pred32),
            (l64 - lt64) / pred64
        );
        println!("{row}");
    }
}
