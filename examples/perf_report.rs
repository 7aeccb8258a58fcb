//! Side-by-side timing of the derivative kernels and the solve baselines, in one run.
//!
//! ```text
//! cargo run --release --example perf_report              # table + target/perf/scaling.svg
//! cargo run --release --example perf_report -- --json    # one JSON object per line
//! options: --ops gradient,hvp   only these ops
//!          --quick              a tenth of the time budget (noisier)
//!          --svg PATH           where to write the plot
//! ```
//!
//! Nets (width 8): `inp: Dense<8, 8, Tanh>`, `body: [Residual<8, Tanh>; D - 2]`,
//! `head: Dense<8, 8, Identity>`, `loss: Mse<8>`, so depth D, for D = 8, 32, 64, 512,
//! batch 1 and 8, f64 and f32 (the same nets as `benches/derivatives.rs`, plus D = 32); and
//! the same nets at width 16 (f64, batch 1 and 8, D = 8 and 64).
//!
//! Ops (each reports the median wall time of one call):
//! * `gradient`, `hvp`: one `gradient_in` / `hvp_in` call (heap workspace).
//! * `factor_solve`: the generated solve from scratch: `curvature_into` (every derivative
//!   block), `factor(eps)` and one `solve` of `(H + eps I) x = g`; the row gives the relative
//!   residual of the (unrefined) solve. f64 only.
//! * `hessian_solve`: the generated one-call `hessian_solve_in` (curvature, factor, and the
//!   solve refined with at most 2 steps of the exact product); f64 only.
//! * `resolve`: a further `solve` with the existing factorisation. f64 only.
//! * `diag_inv`: the diagonal of `(H + eps I)^{-1}` from an existing factorisation (selected
//!   inversion over the stage factors). f64 only.
//! * `stable_diag_inv`: the same diagonal from the backward-stable factors (`StableFactors`,
//!   threshold 0.1; compare with `stable_solve`). f64, width 8, depth up to 64.
//! * `log_det`: `log|det(H + eps I)|` from an existing factorisation (the stage pivots). f64
//!   only.
//! * `dense_solve`: solve `(H + eps I) x = g` (g the gradient, eps = 1e-3) the dense way:
//!   build H from N `hvp` calls, then nalgebra's pivoted LU ([`tall_skinny_baselines`]).
//!   The Hessian build is included in the time. Only f64, batch 1, N <= 2500.
//! * `cg_solve`: the same system by conjugate gradients on `hvp`, to relative residual 1e-10
//!   or 2000 iterations. H is indefinite, so CG can break down (non-positive curvature) or
//!   stall; then MINRES is run as well, and the time covers both (what a user who tries CG
//!   first pays). The row says which method produced the answer (`method`), its iteration
//!   count, whether it converged and the true relative residual. Only f64, batch 1.
//! * `paper_solve`: the paper's own method ([`tall_skinny_baselines::paper_solve`]): the
//!   curvature pass, copying out every stage's dense derivative blocks, then block LU of the
//!   interleaved block-tridiagonal system, all in the time. Only f64, batch 1; skipped (with
//!   a note on stderr) where one call takes more than 1 s.
//!
//! Timing: a warm-up of about a tenth of the cell's budget (at least one call), then up to
//! 15 runs of k back-to-back calls, k chosen so that a run takes about a fifteenth of the
//! budget; per-call time of a run = its wall time / k (`std::time::Instant`); the reported
//! time is the median over runs. Calls slower than a run's share get at least 3 runs.
//!
//! An op that panics (e.g. an `unwrap` of a solver error) is reported on stderr and the
//! run goes on; the exit status is then 1.
//!
//! Adding an op: write its function inside `ops!` below (return `None` where it does not
//! apply) and add one line to the `OPS` table there.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tall_skinny::prelude::*;
use tall_skinny::runtime::{SplitMix64, StableFactors, StableSelinvScratch};
use tall_skinny_baselines::{self as baselines, KrylovReport, Outcome};

/// The shift of every solve: `(H + EPS I) x = g`.
const EPS: f64 = 1e-3;
/// Relative residual the Krylov baselines stop at.
const RTOL: f64 = 1e-10;
/// Iteration cap of the Krylov baselines.
const KRYLOV_CAP: usize = 2000;
/// Largest N the dense baseline is run at (an N x N matrix and an O(N^3) factorisation).
const DENSE_MAX_N: usize = 2500;
/// `paper_solve` is not timed where its first call takes longer than this.
const PAPER_MAX_CALL: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Measurement plumbing

/// An extra field of a row.
#[derive(Clone, Debug)]
enum Val {
    Int(u64),
    Num(f64),
    Str(&'static str),
    Bool(bool),
}

impl Val {
    fn json(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Num(x) if x.is_finite() => format!("{x:e}"),
            Val::Num(_) => "null".into(),
            Val::Str(s) => format!("\"{s}\""),
            Val::Bool(b) => b.to_string(),
        }
    }
    fn text(&self) -> String {
        match self {
            Val::Num(x) => format!("{x:.1e}"),
            Val::Str(s) => s.to_string(),
            v => v.json(),
        }
    }
}

/// The result of timing one op on one net.
#[derive(Clone, Debug)]
struct Sample {
    median_ns: f64,
    runs: usize,
    calls_per_run: usize,
    extra: Vec<(&'static str, Val)>,
}

impl Sample {
    fn with(mut self, key: &'static str, v: Val) -> Self {
        self.extra.push((key, v));
        self
    }
}

#[derive(Clone, Debug)]
struct Row {
    op: &'static str,
    depth: usize,
    width: usize,
    batch: usize,
    scalar: &'static str,
    n_params: usize,
    s: Sample,
}

impl Row {
    fn json(&self) -> String {
        let mut out = format!(
            "{{\"op\": \"{}\", \"depth\": {}, \"width\": {}, \"batch\": {}, \"scalar\": \"{}\", \"median_ns\": {:.1}, \"n_params\": {}, \"runs\": {}, \"calls_per_run\": {}",
            self.op, self.depth, self.width, self.batch, self.scalar, self.s.median_ns, self.n_params, self.s.runs, self.s.calls_per_run
        );
        for (k, v) in &self.s.extra {
            let _ = write!(out, ", \"{k}\": {}", v.json());
        }
        out.push('}');
        out
    }
}

/// Run-wide settings, and the timer.
struct Ctx {
    /// Time budget of one (op, net) cell.
    budget: Duration,
    ops: Option<Vec<String>>,
}

impl Ctx {
    fn selected(&self, op: &str) -> bool {
        self.ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|o| o == op))
    }

    /// Median wall time per call of `f` (see the module docs for the procedure).
    fn time(&self, f: impl FnMut()) -> Sample {
        self.time_after(None, f)
    }

    /// [`Ctx::time`] for an op that has just made one untimed call of its own (for a
    /// result check) that took `first`: that call counts as the warm-up if it took at least
    /// the warm-up time (saves a call of the expensive solves).
    fn time_after(&self, first: Option<Duration>, mut f: impl FnMut()) -> Sample {
        const RUNS: usize = 15;
        let warm = self.budget / 10;
        let per_call = match first {
            Some(d) if d >= warm => d.as_secs_f64(),
            _ => {
                let start = Instant::now();
                let mut calls = 0u32;
                while calls == 0 || start.elapsed() < warm {
                    f();
                    calls += 1;
                }
                start.elapsed().as_secs_f64() / calls as f64
            }
        };
        let run_time = self.budget.as_secs_f64() * 0.9 / RUNS as f64;
        let k = ((run_time / per_call) as usize).max(1);
        let runs = if k == 1 {
            ((self.budget.as_secs_f64() * 0.9 / per_call) as usize).clamp(3, RUNS)
        } else {
            RUNS
        };
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                for _ in 0..k {
                    f();
                }
                t0.elapsed().as_secs_f64() * 1e9 / k as f64
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median_ns = if runs % 2 == 1 {
            times[runs / 2]
        } else {
            0.5 * (times[runs / 2 - 1] + times[runs / 2])
        };
        Sample {
            median_ns,
            runs,
            calls_per_run: k,
            extra: Vec::new(),
        }
    }
}

/// Ops that panicked, as "op scalar bB dD".
static FAILURES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record_failure(what: String) {
    eprintln!("perf_report: {what} FAILED (see the panic message above); continuing");
    FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(what);
}

/// Exits with status 1 after listing the failed ops, if any.
fn exit_on_failures() {
    let failed = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    if !failed.is_empty() {
        eprintln!(
            "perf_report: {} op(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
        std::process::exit(1);
    }
}

/// Scalar-type glue: the solve baselines work on `f64` slices only.
trait Scalar: Copy + Default + 'static {
    const NAME: &'static str;
    fn from_f64(x: f64) -> Self;
    /// `Some` exactly for `f64`.
    fn as_f64(s: &[Self]) -> Option<&[f64]>;
    /// `Some` exactly for `f64`.
    fn from_f64_slice(s: &[f64]) -> Option<&[Self]>;
    /// `Some` exactly for `f64`.
    fn from_f64_slice_mut(s: &mut [f64]) -> Option<&mut [Self]>;
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_f64(s: &[Self]) -> Option<&[f64]> {
        Some(s)
    }
    fn from_f64_slice(s: &[f64]) -> Option<&[Self]> {
        Some(s)
    }
    fn from_f64_slice_mut(s: &mut [f64]) -> Option<&mut [Self]> {
        Some(s)
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f64(_: &[Self]) -> Option<&[f64]> {
        None
    }
    fn from_f64_slice(_: &[f64]) -> Option<&[Self]> {
        None
    }
    fn from_f64_slice_mut(_: &mut [f64]) -> Option<&mut [Self]> {
        None
    }
}

/// A boxed `[T; N]` of zeros, allocated on the heap directly.
fn boxed_array<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    vec![T::default(); N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

fn krylov_fields(s: Sample, method: &'static str, rep: &KrylovReport) -> Sample {
    s.with("method", Val::Str(method))
        .with("iterations", Val::Int(rep.iterations as u64))
        .with("converged", Val::Bool(rep.converged()))
        .with("relative_residual", Val::Num(rep.relative_residual))
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Converged => "converged",
        Outcome::Breakdown => "breakdown",
        Outcome::MaxIterations => "max_iterations",
    }
}

// ---------------------------------------------------------------------------------------
// The ops. Expanded once per net, inside that net's module, where the net is always called
// `Net` (so its workspace is `NetWorkspace`, and so on), `T` is its scalar and `N` its
// parameter count.

macro_rules! ops {
    () => {
        /// The backward-stable factors' storage for this net (width 8 up to depth 64) and the
        /// scratch of their diagonal of the inverse.
        type Sf = StableFactors<
            T,
            { WIDTH + 1 },
            { BATCH * WIDTH },
            { WIDTH * (WIDTH + 1) + BATCH * WIDTH },
            64,
        >;
        type Ss =
            StableSelinvScratch<T, { BATCH * WIDTH }, { WIDTH * (WIDTH + 1) + BATCH * WIDTH }>;

        /// Every op, in report order. Adding an op: its function below, plus one line here.
        pub const OPS: &[(&str, fn(&mut Fixture, &Ctx) -> Option<Sample>)] = &[
            ("gradient", gradient),
            ("hvp", hvp),
            ("factor_solve", factor_solve),
            ("hessian_solve", hessian_solve),
            ("stable_solve", stable_solve),
            ("resolve", resolve),
            ("diag_inv", diag_inv),
            ("stable_diag_inv", stable_diag_inv),
            ("log_det", log_det),
            ("dense_solve", dense_solve),
            ("cg_solve", cg_solve),
            ("paper_solve", paper_solve),
        ];

        fn gradient(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            let Fixture {
                net, ws, x, t, out, ..
            } = fx;
            Some(cx.time(|| {
                black_box(net.gradient_in(ws, black_box(x), black_box(t), out)).unwrap();
                black_box(&mut **out);
            }))
        }

        fn hvp(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            let Fixture {
                net,
                ws,
                x,
                t,
                v,
                out,
                ..
            } = fx;
            Some(cx.time(|| {
                black_box(net.hvp_in(ws, black_box(x), black_box(t), black_box(v), out)).unwrap();
                black_box(&mut **out);
            }))
        }

        /// The generated solve from scratch: curvature (derivative blocks), factor at eps,
        /// and one solve. Storage boxed once, outside the timing.
        fn factor_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            // f32 at eps = 1e-3 is outside what this elimination order handles reliably (see
            // README); the solve rows are f64.
            <T as Scalar>::as_f64(&fx.g[..])?;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let eps = T::from_f64(EPS);
            let Fixture {
                net, x, t, g, out, ..
            } = fx;
            let s = cx.time(|| {
                net.curvature_into(&mut curv, black_box(x), black_box(t))
                    .unwrap();
                let mut f = curv.factor(eps).unwrap();
                f.solve(black_box(g), out).unwrap();
                black_box(&mut **out);
            });
            let res = {
                let mut f = curv.factor(eps).unwrap();
                f.solve(g, out).unwrap();
                solve_residual(&mut f, g, out)
            };
            Some(s.with("relative_residual", Val::Num(res)))
        }

        /// The generated one-call `hessian_solve_in`: curvature, factor at eps, and the
        /// solve refined (at most 2 steps, each one exact product and one solve). Storage
        /// boxed once, outside the timing.
        fn hessian_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let eps = T::from_f64(EPS);
            let Fixture {
                net, x, t, g, out, ..
            } = fx;
            let s = cx.time(|| {
                net.hessian_solve_in(
                    &mut curv,
                    black_box(x),
                    black_box(t),
                    eps,
                    black_box(g),
                    out,
                )
                .unwrap();
                black_box(&mut **out);
            });
            // The timed calls left the curvature filled: the same factor and refined solve
            // once more (what `hessian_solve_in` does after the fill), for its step count.
            let (res, steps) = {
                let mut f = curv.factor(eps).unwrap();
                let steps = f.solve_refined(g, out, 2).unwrap().steps;
                (solve_residual(&mut f, g, out), steps)
            };
            Some(
                s.with("relative_residual", Val::Num(res))
                    .with("refinement_steps", Val::Num(steps as f64)),
            )
        }

        /// `factor_solve` through the backward-stable sweep (`StableFactors`, delayed pivots,
        /// threshold 0.1): curvature, stable factor at eps, one solve. Width 8 up to depth 64
        /// (its storage grows like depth times the square of the stage block).
        fn stable_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            if WIDTH > 8 || Net::DEPTH > 64 {
                return None;
            }
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let mut sf = tall_skinny::boxed_zeroed::<Sf>();
            let eps = T::from_f64(EPS);
            let tau = T::from_f64(0.1);
            let Fixture {
                net, x, t, g, out, ..
            } = fx;
            let s = cx.time(|| {
                net.curvature_into(&mut curv, black_box(x), black_box(t))
                    .unwrap();
                sf.factor(&*curv, eps, tau).unwrap();
                sf.solve(&*curv, black_box(g), out).unwrap();
                black_box(&mut **out);
            });
            sf.factor(&*curv, eps, tau).unwrap();
            sf.solve(&*curv, g, out).unwrap();
            let res = {
                let mut f = curv.factor(eps).unwrap();
                solve_residual(&mut f, g, out)
            };
            Some(
                s.with("relative_residual", Val::Num(res))
                    .with("max_carried", Val::Num(sf.max_carried() as f64)),
            )
        }

        /// A further solve with an existing factorisation.
        fn resolve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let eps = T::from_f64(EPS);
            let Fixture {
                net, x, t, g, out, ..
            } = fx;
            net.curvature_into(&mut curv, x, t).unwrap();
            let mut f = curv.factor(eps).unwrap();
            let s = cx.time(|| {
                f.solve(black_box(g), out).unwrap();
                black_box(&mut **out);
            });
            Some(s)
        }

        /// The diagonal of `(H + eps I)^{-1}` from an existing factorisation (selected
        /// inversion over the stage factors; compare with `factor_solve`).
        fn diag_inv(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let eps = T::from_f64(EPS);
            let Fixture { net, x, t, out, .. } = fx;
            net.curvature_into(&mut curv, x, t).unwrap();
            let f = curv.factor(eps).unwrap();
            Some(cx.time(|| {
                f.diag_inv(out).unwrap();
                black_box(&mut **out);
            }))
        }

        /// The diagonal of `(H + eps I)^{-1}` from existing backward-stable factors
        /// (`StableFactors::diag_inv`, threshold 0.1; compare with `stable_solve`). Width 8
        /// up to depth 64, like `stable_solve`.
        fn stable_diag_inv(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            if WIDTH > 8 || Net::DEPTH > 64 {
                return None;
            }
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let mut sf = tall_skinny::boxed_zeroed::<Sf>();
            let mut ss = tall_skinny::boxed_zeroed::<Ss>();
            let Fixture { net, x, t, out, .. } = fx;
            net.curvature_into(&mut curv, x, t).unwrap();
            sf.factor(&*curv, T::from_f64(EPS), T::from_f64(0.1))
                .unwrap();
            Some(cx.time(|| {
                sf.diag_inv(&*curv, &mut ss, out).unwrap();
                black_box(&mut **out);
            }))
        }

        /// `log|det(H + eps I)|` from an existing factorisation (the stage pivots).
        fn log_det(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            <T as Scalar>::as_f64(&fx.g[..])?;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let eps = T::from_f64(EPS);
            let Fixture { net, x, t, .. } = fx;
            net.curvature_into(&mut curv, x, t).unwrap();
            let f = curv.factor(eps).unwrap();
            Some(cx.time(|| {
                black_box(f.log_det().unwrap());
            }))
        }

        /// `|(H + eps I) x - b| / |b|` with the exact product from the stored blocks.
        fn solve_residual(f: &mut NetFactored<'_>, b: &[T; N], x: &[T; N]) -> f64 {
            let mut ax = boxed_array::<T, N>();
            f.apply(x, &mut ax).unwrap();
            let r: f64 = (0..N).map(|i| (b[i] - ax[i]).to_f64().powi(2)).sum();
            let nb: f64 = b.iter().map(|bi| bi.to_f64().powi(2)).sum();
            (r / nb).sqrt()
        }

        fn dense_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            if BATCH != 1 || N > DENSE_MAX_N {
                return None;
            }
            let b = T::as_f64(&fx.g[..])?.to_vec();
            let Fixture {
                net, ws, x: xin, t, ..
            } = fx;
            // One untimed call for the quality of the (deterministic) answer.
            let mut x = vec![0.0; N];
            let t0 = Instant::now();
            baselines::dense_solve(hvp_op(net, ws, xin, t), EPS, &b, &mut x).unwrap();
            let first = t0.elapsed();
            let res = relative_residual(net, ws, xin, t, &b, &x);
            let s = cx.time_after(Some(first), || {
                baselines::dense_solve(hvp_op(net, ws, xin, t), EPS, &b, &mut x).unwrap();
                black_box(&mut x);
            });
            Some(s.with("relative_residual", Val::Num(res)))
        }

        fn paper_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            if BATCH != 1 {
                return None;
            }
            let b = T::as_f64(&fx.g[..])?.to_vec();
            let Fixture {
                net, ws, x: xin, t, ..
            } = fx;
            let mut curv = tall_skinny::boxed_zeroed::<NetCurvature>();
            let mut run = || -> Vec<f64> {
                net.curvature_into(&mut curv, xin, t).expect("curvature");
                let blocks =
                    baselines::PaperBlocks::collect(|f| curv.for_each_stage(f)).expect("blocks");
                baselines::paper_solve(&blocks, EPS, &b).expect("paper_solve")
            };
            let t0 = Instant::now();
            let x = run();
            let first = t0.elapsed();
            if first > PAPER_MAX_CALL {
                eprintln!(
                    "  paper_solve d{}: skipped, one call took {:.1} s",
                    Net::DEPTH,
                    first.as_secs_f64()
                );
                return None;
            }
            let s = cx.time_after(Some(first), || {
                black_box(run());
            });
            let res = relative_residual(net, ws, xin, t, &b, &x);
            Some(s.with("relative_residual", Val::Num(res)))
        }

        fn cg_solve(fx: &mut Fixture, cx: &Ctx) -> Option<Sample> {
            if BATCH != 1 {
                return None;
            }
            let b = T::as_f64(&fx.g[..])?.to_vec();
            let Fixture {
                net, ws, x: xin, t, ..
            } = fx;
            let mut x = vec![0.0; N];
            // CG first; MINRES when CG did not converge.
            let mut run = |x: &mut [f64]| -> (KrylovReport, Option<KrylovReport>) {
                let cg =
                    baselines::cg(hvp_op(net, ws, xin, t), EPS, &b, x, RTOL, KRYLOV_CAP).unwrap();
                if cg.converged() {
                    return (cg, None);
                }
                let mr = baselines::minres(hvp_op(net, ws, xin, t), EPS, &b, x, RTOL, KRYLOV_CAP)
                    .unwrap();
                (cg, Some(mr))
            };
            let t0 = Instant::now();
            let (cg, mr) = run(&mut x);
            let first = t0.elapsed();
            let s = cx.time_after(Some(first), || {
                black_box(run(&mut x));
            });
            let s = s
                .with("cg_outcome", Val::Str(outcome_name(cg.outcome)))
                .with("cg_iterations", Val::Int(cg.iterations as u64));
            Some(match mr {
                None => krylov_fields(s, "cg", &cg),
                Some(mr) => krylov_fields(s, "minres", &mr),
            })
        }
    };
}

/// Declares module `$m` holding a net of depth `$depth` (`$body` residual layers), its
/// fixture, and the ops.
macro_rules! case {
    ($m:ident, $t:tt, $batch:tt, $depth:tt, $body:tt) => {
        case!($m, $t, 8, $batch, $depth, $body);
    };
    ($m:ident, $t:tt, $w:tt, $batch:tt, $depth:tt, $body:tt) => {
        // The generated companions this report does not use (e.g. the solver's types) would
        // each warn as dead code in this private module.
        #[allow(dead_code)]
        mod $m {
            use super::*;

            #[tall_skinny_net(batch = $batch, scalar = $t)]
            pub struct Net {
                inp: Dense<$w, $w, Tanh>,
                body: [Residual<$w, Tanh>; $body],
                head: Dense<$w, $w, Identity>,
                loss: Mse<$w>,
            }

            /// Width of this net (shadows the default).
            pub const WIDTH: usize = $w;

            pub type T = $t;
            pub const N: usize = Net::N_PARAMS;
            pub const BATCH: usize = $batch;
            const _: () = assert!(Net::DEPTH == $depth);

            /// Everything an op needs, on the heap: fixed pseudo-random weights, inputs,
            /// targets and HVP direction; `g` the gradient at them; `out` scratch.
            pub struct Fixture {
                pub net: Box<Net>,
                pub ws: Box<NetWorkspace>,
                pub x: Box<[[T; WIDTH]; BATCH]>,
                pub t: Box<[[T; WIDTH]; BATCH]>,
                pub v: Box<[T; N]>,
                pub g: Box<[T; N]>,
                pub out: Box<[T; N]>,
            }

            impl Fixture {
                fn new() -> Self {
                    let mut net = tall_skinny::boxed_zeroed::<Net>();
                    net.init_in_place(7);
                    let mut ws = tall_skinny::boxed_zeroed::<NetWorkspace>();
                    let mut rng = SplitMix64::new(11);
                    let mut draw = || T::from_f64(rng.symmetric());
                    let x = Box::new(core::array::from_fn(|_| core::array::from_fn(|_| draw())));
                    let t = Box::new(core::array::from_fn(|_| core::array::from_fn(|_| draw())));
                    let mut v = boxed_array::<T, N>();
                    v.iter_mut().for_each(|vi| *vi = draw());
                    let mut g = boxed_array::<T, N>();
                    net.gradient_in(&mut ws, &x, &t, &mut g).expect("gradient");
                    Fixture {
                        net,
                        ws,
                        x,
                        t,
                        v,
                        g,
                        out: boxed_array(),
                    }
                }
            }

            /// `hvp` as the `FnMut(&[f64], &mut [f64])` operator of the baselines (f64 only).
            fn hvp_op<'a>(
                net: &'a Net,
                ws: &'a mut NetWorkspace,
                x: &'a [[T; WIDTH]; BATCH],
                t: &'a [[T; WIDTH]; BATCH],
            ) -> impl FnMut(&[f64], &mut [f64]) + 'a {
                move |v, out| {
                    let v: &[T; N] = T::from_f64_slice(v).unwrap().try_into().unwrap();
                    let out: &mut [T; N] = T::from_f64_slice_mut(out).unwrap().try_into().unwrap();
                    net.hvp_in(ws, x, t, v, out).expect("hvp");
                }
            }

            /// `|b - (H + eps I) x| / |b|` with one more `hvp`.
            fn relative_residual(
                net: &Net,
                ws: &mut NetWorkspace,
                xin: &[[T; WIDTH]; BATCH],
                t: &[[T; WIDTH]; BATCH],
                b: &[f64],
                x: &[f64],
            ) -> f64 {
                let mut hx = vec![0.0; N];
                hvp_op(net, ws, xin, t)(x, &mut hx);
                let r: f64 = (0..N).map(|i| (b[i] - hx[i] - EPS * x[i]).powi(2)).sum();
                let nb: f64 = b.iter().map(|bi| bi * bi).sum();
                (r / nb).sqrt()
            }

            ops!();

            pub fn run(cx: &Ctx, emit: &mut dyn FnMut(Row)) {
                if !OPS.iter().any(|(name, _)| cx.selected(name)) {
                    return;
                }
                let mut fx = Fixture::new();
                for (op, f) in OPS {
                    if !cx.selected(op) {
                        continue;
                    }
                    // A failing op (its panic message is on stderr) is recorded and the
                    // report goes on with the next one; the exit code is 1 at the end.
                    let res =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut fx, cx)));
                    match res {
                        Ok(Some(s)) => emit(Row {
                            op,
                            depth: $depth,
                            width: WIDTH,
                            batch: BATCH,
                            scalar: <T as Scalar>::NAME,
                            n_params: N,
                            s,
                        }),
                        Ok(None) => {}
                        Err(_) => record_failure(format!(
                            "{op} {} b{} d{}",
                            <T as Scalar>::NAME,
                            BATCH,
                            $depth
                        )),
                    }
                }
            }
        }
    };
}

case!(f64_b1_d8, f64, 1, 8, 6);
case!(f64_b1_d32, f64, 1, 32, 30);
case!(f64_b1_d64, f64, 1, 64, 62);
case!(f64_b1_d512, f64, 1, 512, 510);
case!(f64_b8_d8, f64, 8, 8, 6);
case!(f64_b8_d32, f64, 8, 32, 30);
case!(f64_b8_d64, f64, 8, 64, 62);
case!(f64_b8_d512, f64, 8, 512, 510);
case!(f64_w16_b1_d8, f64, 16, 1, 8, 6);
case!(f64_w16_b1_d64, f64, 16, 1, 64, 62);
case!(f64_w16_b8_d8, f64, 16, 8, 8, 6);
case!(f64_w16_b8_d64, f64, 16, 8, 64, 62);
case!(f32_b1_d8, f32, 1, 8, 6);
case!(f32_b1_d32, f32, 1, 32, 30);
case!(f32_b1_d64, f32, 1, 64, 62);
case!(f32_b1_d512, f32, 1, 512, 510);
case!(f32_b8_d8, f32, 8, 8, 6);
case!(f32_b8_d32, f32, 8, 32, 30);
case!(f32_b8_d64, f32, 8, 64, 62);
case!(f32_b8_d512, f32, 8, 512, 510);

/// Measures every selected op on one net, passing each row on.
type Case = fn(&Ctx, &mut dyn FnMut(Row));

/// Every net, in measurement order.
const CASES: &[Case] = &[
    f64_b1_d8::run,
    f64_b1_d32::run,
    f64_b1_d64::run,
    f64_b1_d512::run,
    f64_b8_d8::run,
    f64_b8_d32::run,
    f64_b8_d64::run,
    f64_b8_d512::run,
    f64_w16_b1_d8::run,
    f64_w16_b1_d64::run,
    f64_w16_b8_d8::run,
    f64_w16_b8_d64::run,
    f32_b1_d8::run,
    f32_b1_d32::run,
    f32_b1_d64::run,
    f32_b1_d512::run,
    f32_b8_d8::run,
    f32_b8_d32::run,
    f32_b8_d64::run,
    f32_b8_d512::run,
];

// ---------------------------------------------------------------------------------------
// Output

fn fmt_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn print_table(rows: &[Row]) {
    let op_order = |op: &str| {
        f64_b1_d8::OPS
            .iter()
            .position(|(o, _)| *o == op)
            .unwrap_or(usize::MAX)
    };
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|r| (op_order(r.op), r.scalar != "f64", r.width, r.batch, r.depth));
    println!(
        "{:<12} {:>6} {:>5} {:>5} {:>5} {:>6} {:>12} {:>9}  extra",
        "op", "scalar", "width", "batch", "depth", "N", "median", "per stage"
    );
    let mut last = "";
    for r in &rows {
        if r.op != last && !last.is_empty() {
            println!();
        }
        last = r.op;
        let extra: Vec<String> =
            r.s.extra
                .iter()
                .map(|(k, v)| format!("{k}={}", v.text()))
                .collect();
        println!(
            "{:<12} {:>6} {:>5} {:>5} {:>5} {:>6} {:>12} {:>9}  {}",
            r.op,
            r.scalar,
            r.width,
            r.batch,
            r.depth,
            r.n_params,
            fmt_time(r.s.median_ns),
            fmt_time(r.s.median_ns / r.depth as f64),
            extra.join(" ")
        );
    }
    // Ratios of medians from this run: hvp / gradient, and each solve op / hvp.
    let find = |op: &str, r: &Row| {
        rows.iter()
            .find(|q| {
                q.op == op
                    && q.scalar == r.scalar
                    && q.width == r.width
                    && q.batch == r.batch
                    && q.depth == r.depth
            })
            .map(|q| q.s.median_ns)
    };
    for (num, den) in [
        ("hvp", "gradient"),
        ("factor_solve", "hvp"),
        ("hessian_solve", "hvp"),
        ("stable_solve", "hvp"),
        ("resolve", "hvp"),
        ("diag_inv", "factor_solve"),
        ("stable_diag_inv", "stable_solve"),
    ] {
        let ratios: Vec<String> = rows
            .iter()
            .filter(|r| r.op == den)
            .filter_map(|r| {
                find(num, r).map(|t| {
                    format!(
                        "{} w{} b{} d{}: {:.2}",
                        r.scalar,
                        r.width,
                        r.batch,
                        r.depth,
                        t / r.s.median_ns
                    )
                })
            })
            .collect();
        if !ratios.is_empty() {
            println!("\n{num} / {den} time:");
            for chunk in ratios.chunks(4) {
                println!("  {}", chunk.join("   "));
            }
        }
    }
}

/// Time against depth, log-log, one line per op, f64 batch 1. A hollow marker is a solve
/// that did not reach its tolerance (`converged: false`). A dotted grey line shows time
/// proportional to depth, through the first `hvp` point.
fn plot(rows: &[Row], path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let converged = |r: &Row| {
        !r.s.extra
            .iter()
            .any(|(k, v)| *k == "converged" && matches!(v, Val::Bool(false)))
    };
    // (op, [(depth, ns, converged)])
    type Series<'a> = Vec<(&'a str, Vec<(f64, f64, bool)>)>;
    let series: Series = f64_b1_d8::OPS
        .iter()
        .map(|(op, _)| {
            let mut pts: Vec<(f64, f64, bool)> = rows
                .iter()
                .filter(|r| r.op == *op && r.scalar == "f64" && r.batch == 1 && r.width == 8)
                .map(|r| (r.depth as f64, r.s.median_ns, converged(r)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (*op, pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut depths: Vec<f64> = Vec::new();
    for &(x, y, _) in series.iter().flat_map(|(_, p)| p.iter()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
        if !depths.contains(&x) {
            depths.push(x);
        }
    }
    depths.sort_by(f64::total_cmp);
    // Decades of time for the y labels.
    let mut decades = Vec::new();
    let mut d = 10f64.powf((y0 / 2.0).log10().ceil());
    while d <= y1 * 2.0 {
        decades.push(d);
        d *= 10.0;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1100, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend gets its own panel on the right, so it never hides a curve.
    let (plot_area, legend_area) = root.split_horizontally(800);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            "median time per call vs depth (width 8, batch 1, f64)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(
            (x0 / 1.3..x1 * 1.3).log_scale().with_key_points(depths),
            (y0 / 2.0..y1 * 2.0).log_scale().with_key_points(decades),
        )?;
    chart
        .configure_mesh()
        .x_desc("depth (layers)")
        .y_desc("time per call")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| fmt_time(*y).replace(".00", ""))
        .label_style(("sans-serif", 15))
        .draw()?;
    // (label, colour, line width)
    let mut legend: Vec<(String, RGBColor, u32)> = Vec::new();
    let grey = RGBColor(150, 150, 150);
    if let Some((_, p)) = series.iter().find(|(op, _)| *op == "hvp") {
        let (xa, ya, _) = p[0];
        chart.draw_series(LineSeries::new(
            [(xa, ya), (x1, ya * x1 / xa)],
            grey.stroke_width(1),
        ))?;
        legend.push(("∝ depth (through hvp's first point)".into(), grey, 1));
    }
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    let mut any_unconverged = false;
    for (op, pts) in &series {
        // Colour by the op's place in `OPS`, so an op keeps its colour whichever ops ran.
        let i = f64_b1_d8::OPS
            .iter()
            .position(|(o, _)| o == op)
            .unwrap_or(0);
        let c = colors[i % colors.len()];
        any_unconverged |= pts.iter().any(|p| !p.2);
        chart.draw_series(LineSeries::new(
            pts.iter().map(|&(x, y, _)| (x, y)),
            c.stroke_width(2),
        ))?;
        chart.draw_series(pts.iter().map(|&(x, y, ok)| {
            let style = if ok { c.filled() } else { WHITE.filled() };
            Circle::new((x, y), 5, style)
        }))?;
        chart.draw_series(
            pts.iter()
                .map(|&(x, y, _)| Circle::new((x, y), 5, c.stroke_width(2))),
        )?;
        legend.push((op.to_string(), c, 2));
    }
    let font = ("sans-serif", 16).into_font();
    let mut y = 60;
    for (label, c, w) in &legend {
        legend_area.draw(&PathElement::new(
            vec![(10, y), (45, y)],
            c.stroke_width(*w),
        ))?;
        if *w > 1 {
            legend_area.draw(&Circle::new((27, y), 5, c.filled()))?;
        }
        legend_area.draw(&Text::new(label.clone(), (55, y - 8), font.clone()))?;
        y += 28;
    }
    if any_unconverged {
        y += 8;
        legend_area.draw(&Circle::new((27, y), 5, BLACK.stroke_width(2)))?;
        legend_area.draw(&Text::new(
            "hollow: solve did not reach",
            (55, y - 8),
            font.clone(),
        ))?;
        legend_area.draw(&Text::new(
            "its tolerance (iteration cap)",
            (55, y + 12),
            font.clone(),
        ))?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let mut json = false;
    let mut cx = Ctx {
        budget: Duration::from_millis(600),
        ops: None,
    };
    let mut svg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/perf/scaling.svg");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--quick" => cx.budget = Duration::from_millis(60),
            "--ops" => {
                let list = args.next().unwrap_or_default();
                cx.ops = Some(
                    list.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                );
            }
            "--svg" => svg = PathBuf::from(args.next().unwrap_or_default()),
            "-h" | "--help" => {
                println!("usage: perf_report [--json] [--quick] [--ops a,b,...] [--svg PATH]");
                println!(
                    "ops: {}",
                    f64_b1_d8::OPS
                        .iter()
                        .map(|(o, _)| *o)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return;
            }
            other => {
                eprintln!("perf_report: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    if let Some(ops) = &cx.ops {
        let known: Vec<&str> = f64_b1_d8::OPS.iter().map(|(o, _)| *o).collect();
        if let Some(bad) = ops.iter().find(|o| !known.contains(&o.as_str())) {
            eprintln!(
                "perf_report: unknown op {bad:?}; known: {}",
                known.join(", ")
            );
            std::process::exit(2);
        }
    }

    let started = Instant::now();
    let mut rows = Vec::new();
    for case in CASES {
        case(&cx, &mut |row: Row| {
            if json {
                // One line per row as it is measured; stop quietly if the reader went away.
                use std::io::Write as _;
                if writeln!(std::io::stdout().lock(), "{}", row.json()).is_err() {
                    std::process::exit(0);
                }
            } else {
                eprintln!(
                    "  {:<12} {} b{} d{}: {}",
                    row.op,
                    row.scalar,
                    row.batch,
                    row.depth,
                    fmt_time(row.s.median_ns)
                );
            }
            rows.push(row);
        });
    }
    if json {
        exit_on_failures();
        return;
    }
    println!();
    print_table(&rows);
    println!(
        "\nsolves: (H + eps I) x = gradient, eps = {EPS:e}; Krylov: rtol {RTOL:e}, cap {KRYLOV_CAP} iterations."
    );
    match plot(&rows, &svg) {
        Ok(()) => println!("plot: {}", svg.display()),
        Err(e) => eprintln!(
            "perf_report: could not write the plot {}: {e}",
            svg.display()
        ),
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    exit_on_failures();
}
