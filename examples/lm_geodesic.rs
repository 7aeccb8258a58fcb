//! Does geodesic acceleration (Transtrum and Sethna 2012) pay for Levenberg-Marquardt on
//! `fit_regression`'s problem? A dense reference measurement, not the library's optimizer.
//!
//! ```text
//! cargo run --release --example lm_geodesic                # alpha 0.75, h 0.1 (Transtrum's)
//! cargo run --release --example lm_geodesic -- 1.0 0.03    # other alpha and h
//! ```
//!
//! The net, data and start are `fit_regression`'s (depth 16, width 8, 1033 parameters, batch
//! 32, MSE target 1e-6, eight initialisations). The LM loop is the library's Nielsen control
//! (initial lambda 1e-3, at most 4 trials per Jacobian, acceptance ratio 1e-4), written here
//! with the residuals `r = (u - t) / sqrt(32)`, their exact Jacobian `J` (the net's
//! `output_jacobian`) and the Woodbury form of the step, `v = -D^{-2} J' (J D^{-2} J' +
//! lambda I)^{-1} r` (a 32 x 32 LU), with `D = I` or `D` = the running maximum of `J`'s column
//! norms (MINPACK's `mode = 1`). Without acceleration its step counts are the library's
//! (`FIT_LM_ONLY=1 FIT_SEEDS=1 cargo run --release --example fit_regression`: medians 55 and
//! 23).
//!
//! Geodesic acceleration: the second directional derivative of the residuals along `v` by
//! the finite difference `r'' = (2 / h) ((r(p + h v) - r(p)) / h - J v)` (one forward pass),
//! `a = -D^{-2} J' (J D^{-2} J' + lambda I)^{-1} r''` (the same small system), and the trial
//! step `v + a / 2` when `2 |D a| / |D v| <= alpha`. Transtrum's rule rejects the trial
//! otherwise (raising lambda: the "strict" rows); the "fallback" rows take `v` alone
//! instead. The predicted reduction is the Gauss-Newton model's at the step taken. Steps =
//! Jacobian evaluations to MSE 1e-6 (at most 300); "evals" counts forward passes.

use nalgebra::{DMatrix, DVector};
use tall_skinny::runtime::optim::Model;

#[path = "common/regression.rs"]
mod regression;
use regression::{data, Regressor64 as Regressor, BATCH};

const N: usize = Regressor::N_PARAMS;

/// The problem: the net (moved to each point asked for) and its fixed batch.
struct P {
    net: Box<Regressor>,
    x: [[f64; 1]; BATCH],
    t: [[f64; 1]; BATCH],
}
impl P {
    fn res(&mut self, p: &DVector<f64>) -> Option<DVector<f64>> {
        let v: [f64; N] = p.as_slice().try_into().unwrap();
        self.net.put_params(&v).ok()?;
        let u = self.net.forward(&self.x).ok()?;
        let s = 1.0 / (BATCH as f64).sqrt();
        Some(DVector::from_fn(BATCH, |n, _| (u[n][0] - self.t[n][0]) * s))
    }
    fn jac(&mut self, p: &DVector<f64>) -> DMatrix<f64> {
        let v: [f64; N] = p.as_slice().try_into().unwrap();
        self.net.put_params(&v).unwrap();
        let s = 1.0 / (BATCH as f64).sqrt();
        let mut j = DMatrix::zeros(BATCH, N);
        let mut row = [[0.0; N]; 1];
        for n in 0..BATCH {
            self.net.output_jacobian(&self.x[n], &mut row).unwrap();
            for c in 0..N {
                j[(n, c)] = row[0][c] * s;
            }
        }
        j
    }
}

/// The Woodbury form of `-(J'J + lam D^2)^{-1} J' w` at one Jacobian: `J D^{-2}` and `J
/// D^{-2} J'` once per Jacobian, the `BATCH x BATCH` LU once per damping (both right-hand
/// sides of a trial share it).
struct Woodbury {
    jd: DMatrix<f64>,
    gram: DMatrix<f64>,
}

impl Woodbury {
    fn new(j: &DMatrix<f64>, d2: &DVector<f64>) -> Self {
        let jd = DMatrix::from_fn(BATCH, N, |r, c| j[(r, c)] / d2[c]);
        let gram = &jd * j.transpose();
        Woodbury { jd, gram }
    }

    /// The factorisation at damping `lam`.
    fn at(&self, lam: f64) -> nalgebra::LU<f64, nalgebra::Dyn, nalgebra::Dyn> {
        let mut k = self.gram.clone();
        for i in 0..BATCH {
            k[(i, i)] += lam;
        }
        k.lu()
    }

    /// `-(J'J + lam D^2)^{-1} J' w` with the factorisation of [`Self::at`].
    fn solve(
        &self,
        lu: &nalgebra::LU<f64, nalgebra::Dyn, nalgebra::Dyn>,
        w: &DVector<f64>,
    ) -> DVector<f64> {
        -(self.jd.transpose() * lu.solve(w).unwrap())
    }
}

/// One LM run from `seed`: steps to the target (if reached), forward passes, best MSE.
fn run(
    seed: u64,
    scaled: bool,
    geo: bool,
    strict: bool,
    alpha: f64,
    h: f64,
    trace: bool,
) -> (Option<usize>, usize, f64) {
    let (x, t) = data();
    let mut pr = P {
        net: tall_skinny::boxed_zeroed::<Regressor>(),
        x,
        t,
    };
    *pr.net = Regressor::init(seed);
    let mut p0 = [0.0; N];
    pr.net.get_params(&mut p0);
    let mut p = DVector::from_column_slice(&p0);
    let mut r = pr.res(&p).unwrap();
    let mut lam = 1e-3f64;
    let mut nu = 2.0;
    let mut dmax = DVector::<f64>::zeros(N);
    let mut fevals = 1;
    let mut best = r.norm_squared();
    for it in 0..300 {
        if r.norm_squared() < 1e-6 {
            return (Some(it), fevals, best);
        }
        let j = pr.jac(&p);
        let d2 = if scaled {
            for c in 0..N {
                let cn = j.column(c).norm();
                dmax[c] = dmax[c].max(cn);
            }
            dmax.map(|v| if v > 0.0 { v * v } else { 1.0 })
        } else {
            DVector::from_element(N, 1.0)
        };
        let g = j.transpose() * &r;
        let wb = Woodbury::new(&j, &d2);
        for _trial in 0..4 {
            let lu = wb.at(lam);
            let v = wb.solve(&lu, &r);
            let mut step = v.clone();
            let mut ok_geo = true;
            if geo {
                fevals += 1;
                // A point the net rejects gives no acceleration (the plain step is tried).
                if let Some(rh) = pr.res(&(&p + &v * h)) {
                    let jv = &j * &v;
                    let rpp = ((rh - &r) / h - jv) * (2.0 / h);
                    let a = wb.solve(&lu, &rpp);
                    let dn = |z: &DVector<f64>| {
                        z.iter()
                            .zip(d2.iter())
                            .map(|(a, b)| a * a * b)
                            .sum::<f64>()
                            .sqrt()
                    };
                    if 2.0 * dn(&a) / dn(&v) <= alpha {
                        step += a * 0.5;
                    } else if strict {
                        ok_geo = false;
                    }
                }
            }
            let jd = &j * &step;
            let pred = -(g.dot(&step) + 0.5 * jd.norm_squared());
            let cur = 0.5 * r.norm_squared();
            let (accepted, rho) = if ok_geo {
                let trial = &p + &step;
                let rt = pr.res(&trial);
                fevals += 1;
                match rt {
                    Some(rt) => {
                        let rho = (cur - 0.5 * rt.norm_squared()) / pred;
                        if rho > 1e-4 {
                            p = trial;
                            r = rt;
                            (true, rho)
                        } else {
                            (false, rho)
                        }
                    }
                    None => (false, f64::NAN),
                }
            } else {
                (false, f64::NAN)
            };
            if trace {
                println!(
                    "it {it} lam {lam:.2e} rho {rho:.3} acc {accepted} mse {:.3e}",
                    r.norm_squared()
                );
            }
            if accepted {
                lam *= (1.0f64 / 3.0).max(1.0 - (2.0 * rho - 1.0).powi(3));
                lam = lam.max(1e-12);
                nu = 2.0;
                best = best.min(r.norm_squared());
                break;
            } else {
                lam *= nu;
                nu *= 2.0;
            }
        }
    }
    (None, fevals, best)
}

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let alpha = args.first().copied().unwrap_or(0.75);
    let h = args.get(1).copied().unwrap_or(0.1);
    let trace = std::env::var_os("TRACE").is_some();
    println!("alpha {alpha}, h {h}; steps to MSE 1e-6 (forward passes) per seed");
    println!("| D | acceleration | seed 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | reached | median | mean |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for scaled in [false, true] {
        for (name, geo, strict) in [
            ("none", false, false),
            ("strict", true, true),
            ("fallback", true, false),
        ] {
            let mut steps = vec![];
            let mut cells = vec![];
            for seed in 1..=8 {
                let (s, f, b) = run(seed, scaled, geo, strict, alpha, h, trace && seed == 1);
                if let Some(s) = s {
                    steps.push(s);
                }
                cells.push(match s {
                    Some(s) => format!("{s} ({f})"),
                    None => format!("- (best {b:.1e})"),
                });
            }
            steps.sort_unstable();
            let median = steps
                .get(steps.len() / 2)
                .map_or("-".to_string(), |m| m.to_string());
            let mean = steps.iter().sum::<usize>() as f64 / steps.len().max(1) as f64;
            println!(
                "| {} | {name} | {} | {} of 8 | {median} | {mean:.1} |",
                if scaled { "column norms" } else { "I" },
                cells.join(" | "),
                steps.len()
            );
        }
    }
}
