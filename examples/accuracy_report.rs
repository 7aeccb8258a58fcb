//! Accuracy of the exact solve `(H + eps I) x = b`, measured (issue 16), and the
//! Levenberg-Marquardt f32 experiment on `fit_regression`'s problem.
//!
//! ```text
//! cargo run --release --example accuracy_report            # both parts
//! cargo run --release --example accuracy_report -- solve   # the f32 solve table only
//! cargo run --release --example accuracy_report -- delayed # and the delayed-pivot table
//! cargo run --release --example accuracy_report -- ggn     # the Gauss-Newton solves only
//! cargo run --release --example accuracy_report -- lm      # the LM experiment only
//! ```
//!
//! **The f32 solve table.** Each net is declared twice, `scalar = f32` and `scalar = f64`,
//! with the same parameters, inputs and targets (drawn in f64, rounded to f32, used by both).
//! For eps in 1e-1 .. 1e-4 and b random (entries uniform in [-1, 1], rounded to f32) or b = the
//! f32 net's gradient, the f32 net's plain `solve` and its `solve_refined` (2 steps) are
//! compared with the f64 twin's `solve_refined` (5 steps) on the same system: relative error
//! `|x32 - x64| / |x64|`. `cond` is `|H + eps I|_2 |(H + eps I)^{-1}|_2` estimated by 60 steps of
//! power iteration on the f64 twin's `apply` and refined solve (a lower bound), printed as
//! `cond * u32` (u32 = 2^-24). `f32 dense LU` is nalgebra's partial-pivoting LU of the f32-rounded
//! dense `H + eps I` (from the f64 twin's `hvp` columns), solved in f32: what a backward-stable
//! solver in f32 reaches (nets up to 600 parameters). `f64 plain` is the f64 twin's own plain
//! solve against its refined one. `Singular` marks a factorisation that failed; `Inaccurate (r)`
//! a refined solve that refused to vouch for its result (relative residual `r` above
//! `sqrt(EPSILON)`).
//!
//! **The LM experiment.** `fit_regression`'s net and data (depth 16, width 8, batch 32, MSE)
//! in f32, 1000 Levenberg-Marquardt steps from the same start, with the library's
//! `LevenbergMarquardt` (`GGN_METHOD`'s solve, refined) and with the same LM loop (the
//! library's defaults and Nielsen update, copied here) whose Gauss-Newton step comes from
//! (a) the Woodbury solve, (b) the Riccati solve (`ggn_curvature_into`, `factor`,
//! `solve_refined(2)`), (c) the f64 twin's Riccati solve at the f32 point (the step an exact
//! solve would give; loss and gradient stay f32). Also with the gradient and/or the ratio test's losses taken from the f64 twin at
//! the f32 point. Reported: best MSE (evaluated in f64 at the f32 parameters), rejected steps, and the
//! step's relative error against (c) over the last accepted steps.

use std::time::Instant;

use nalgebra::{DMatrix, DVector};
use tall_skinny::prelude::*;
use tall_skinny::runtime::__private::SingularPivot;
use tall_skinny::runtime::SplitMix64;

// ---------------------------------------------------------------------------------------
// The nets

/// `pair!(Net32, Net64, batch, { fields })`.
macro_rules! pair {
    ($n32:ident, $n64:ident, $batch:literal, { $($fields:tt)* }) => {
        #[tall_skinny_net(batch = $batch, scalar = f32)]
        pub struct $n32 { $($fields)* }
        #[tall_skinny_net(batch = $batch, scalar = f64)]
        pub struct $n64 { $($fields)* }
    };
}

pair!(W8D8B1, W8D8B1F64, 1, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 6], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(W8D32B1, W8D32B1F64, 1, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 30], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(W8D64B1, W8D64B1F64, 1, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 62], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(W8D8B8, W8D8B8F64, 8, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 6], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(W8D32B8, W8D32B8F64, 8, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 30], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(W8D64B8, W8D64B8F64, 8, {
    inp: Dense<8, 8, Tanh>, body: [Residual<8, Tanh>; 62], head: Dense<8, 8, Identity>, loss: Mse<8>,
});
pair!(GeluCeB8, GeluCeB8F64, 8, {
    inp: Dense<8, 8, Gelu>, body: [Residual<8, Gelu>; 6], head: Dense<8, 4, Identity>,
    loss: SoftmaxCrossEntropy<4>,
});

/// What a target is made from: regression targets or class labels.
#[derive(Clone)]
enum Tgt {
    Values(Vec<f64>),
    Labels(Vec<usize>),
}

/// One net (either precision) behind a uniform interface, everything on the heap.
trait Net {
    fn n(&self) -> usize;
    fn set(&mut self, p: &[f64], x: &[f64], t: &Tgt);
    fn gradient(&mut self, g: &mut [f64]);
    /// Factors at eps and solves for `b`: the plain solution and the refined (`steps`) one
    /// (an error of its own where `solve_refined` cannot vouch for it).
    fn solve(&mut self, eps: f64, b: &[f64], steps: usize) -> Result<PlainAndRefined, SolveError>;
    /// Power-iteration estimates of `|H + eps I|_2` and `|(H + eps I)^{-1}|_2`.
    fn norms(&mut self, eps: f64, iters: usize) -> Result<(f64, f64), SolveError>;
    /// `H v` (the generated `hvp`).
    fn hvp(&mut self, v: &[f64], out: &mut [f64]);
    /// Negative eigenvalues of `H + eps I` (the generated factorisation's inertia).
    fn negative(&mut self, eps: f64) -> Result<usize, SolveError>;
    /// The dense delayed-pivot sweep ([`delayed_solve`]) in the net's precision.
    fn delayed(
        &mut self,
        eps: f64,
        b: &[f64],
        tau: f64,
        cap: usize,
        compress: bool,
    ) -> Result<(Vec<f64>, DelayedStats), SingularPivot>;
}

struct Holder<N, C, V, X, T> {
    net: Box<N>,
    curv: Box<C>,
    a: Box<V>,
    b: Box<V>,
    x: X,
    t: T,
}

/// A plain solution and the refined one (or why `solve_refined` refused it).
type PlainAndRefined = (Vec<f64>, Result<Vec<f64>, SolveError>);

fn unit(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    for x in v.iter_mut() {
        *x /= n;
    }
}

macro_rules! holder {
    ($net:ident, $curv:ident, $t:ty, $target:ty, $make_t:expr) => {
        impl Holder<$net, $curv, [$t; $net::N_PARAMS], [[$t; $net::INPUTS]; $net::BATCH], $target> {
            fn new() -> Self {
                Holder {
                    net: tall_skinny::boxed_zeroed(),
                    curv: tall_skinny::boxed_zeroed(),
                    a: tall_skinny::boxed_zeroed(),
                    b: tall_skinny::boxed_zeroed(),
                    x: [[0.0; $net::INPUTS]; $net::BATCH],
                    t: $make_t(&Tgt::Labels(vec![0; $net::BATCH])),
                }
            }
        }
        impl Net
            for Holder<
                $net,
                $curv,
                [$t; $net::N_PARAMS],
                [[$t; $net::INPUTS]; $net::BATCH],
                $target,
            >
        {
            fn n(&self) -> usize {
                $net::N_PARAMS
            }
            fn set(&mut self, p: &[f64], x: &[f64], t: &Tgt) {
                for (a, p) in self.a.iter_mut().zip(p) {
                    *a = *p as $t;
                }
                self.net.set_params(&self.a).unwrap();
                for (n, row) in self.x.iter_mut().enumerate() {
                    for (i, v) in row.iter_mut().enumerate() {
                        *v = x[n * $net::INPUTS + i] as $t;
                    }
                }
                self.t = $make_t(t);
                self.net
                    .curvature_into(&mut self.curv, &self.x, &self.t)
                    .unwrap();
            }
            fn gradient(&mut self, g: &mut [f64]) {
                self.net.gradient(&self.x, &self.t, &mut self.a).unwrap();
                for (g, a) in g.iter_mut().zip(self.a.iter()) {
                    *g = *a as f64;
                }
            }
            fn solve(
                &mut self,
                eps: f64,
                b: &[f64],
                steps: usize,
            ) -> Result<PlainAndRefined, SolveError> {
                for (a, b) in self.a.iter_mut().zip(b) {
                    *a = *b as $t;
                }
                let mut f = self.curv.factor(eps as $t)?;
                f.solve(&self.a, &mut self.b)?;
                let plain = self.b.iter().map(|v| *v as f64).collect();
                let refined = f
                    .solve_refined(&self.a, &mut self.b, steps)
                    .map(|_| self.b.iter().map(|v| *v as f64).collect());
                Ok((plain, refined))
            }
            fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
                for (a, x) in self.a.iter_mut().zip(v) {
                    *a = *x as $t;
                }
                self.net
                    .hvp(&self.x, &self.t, &self.a, &mut self.b)
                    .unwrap();
                for (o, b) in out.iter_mut().zip(self.b.iter()) {
                    *o = *b as f64;
                }
            }
            fn negative(&mut self, eps: f64) -> Result<usize, SolveError> {
                Ok(self.curv.factor(eps as $t)?.inertia().negative)
            }
            fn delayed(
                &mut self,
                eps: f64,
                b: &[f64],
                tau: f64,
                cap: usize,
                compress: bool,
            ) -> Result<(Vec<f64>, DelayedStats), SingularPivot> {
                let stages = &self.curv;
                let (blocks, s_last) = dense_stages::<$t>(&|f| stages.for_each_stage(f));
                let g: Vec<$t> = b.iter().map(|v| *v as $t).collect();
                let (x, st) = delayed_solve::<$t, { $net::BATCH * $net::INPUTS }>(
                    &blocks, &s_last, eps as $t, &g, tau as $t, cap, compress,
                )?;
                Ok((x.iter().map(|v| *v as f64).collect(), st))
            }
            fn norms(&mut self, eps: f64, iters: usize) -> Result<(f64, f64), SolveError> {
                let mut f = self.curv.factor(eps as $t)?;
                let mut rng = SplitMix64::new(99);
                let mut v: Vec<f64> = (0..$net::N_PARAMS).map(|_| rng.symmetric()).collect();
                let mut w = v.clone();
                let (mut big, mut inv) = (0.0, 0.0);
                for _ in 0..iters {
                    unit(&mut v);
                    for (a, x) in self.a.iter_mut().zip(&v) {
                        *a = *x as $t;
                    }
                    f.apply(&self.a, &mut self.b)?;
                    v = self.b.iter().map(|x| *x as f64).collect();
                    big = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    unit(&mut w);
                    for (a, x) in self.a.iter_mut().zip(&w) {
                        *a = *x as $t;
                    }
                    f.solve_refined(&self.a, &mut self.b, 3)?;
                    w = self.b.iter().map(|x| *x as f64).collect();
                    inv = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                }
                Ok((big, inv))
            }
        }
    };
}

macro_rules! mse_target {
    ($o:expr, $b:expr, $t:ty) => {
        |t: &Tgt| -> [[$t; $o]; $b] {
            match t {
                Tgt::Values(v) => {
                    core::array::from_fn(|n| core::array::from_fn(|k| v[n * $o + k] as $t))
                }
                Tgt::Labels(_) => [[0.0; $o]; $b],
            }
        }
    };
}
macro_rules! ce_target {
    ($b:expr) => {
        |t: &Tgt| -> [usize; $b] {
            match t {
                Tgt::Labels(l) => core::array::from_fn(|n| l[n]),
                Tgt::Values(_) => [0; $b],
            }
        }
    };
}

holder!(
    W8D8B1,
    W8D8B1Curvature,
    f32,
    [[f32; 8]; 1],
    mse_target!(8, 1, f32)
);
holder!(
    W8D8B1F64,
    W8D8B1F64Curvature,
    f64,
    [[f64; 8]; 1],
    mse_target!(8, 1, f64)
);
holder!(
    W8D32B1,
    W8D32B1Curvature,
    f32,
    [[f32; 8]; 1],
    mse_target!(8, 1, f32)
);
holder!(
    W8D32B1F64,
    W8D32B1F64Curvature,
    f64,
    [[f64; 8]; 1],
    mse_target!(8, 1, f64)
);
holder!(
    W8D64B1,
    W8D64B1Curvature,
    f32,
    [[f32; 8]; 1],
    mse_target!(8, 1, f32)
);
holder!(
    W8D64B1F64,
    W8D64B1F64Curvature,
    f64,
    [[f64; 8]; 1],
    mse_target!(8, 1, f64)
);
holder!(
    W8D8B8,
    W8D8B8Curvature,
    f32,
    [[f32; 8]; 8],
    mse_target!(8, 8, f32)
);
holder!(
    W8D8B8F64,
    W8D8B8F64Curvature,
    f64,
    [[f64; 8]; 8],
    mse_target!(8, 8, f64)
);
holder!(
    W8D32B8,
    W8D32B8Curvature,
    f32,
    [[f32; 8]; 8],
    mse_target!(8, 8, f32)
);
holder!(
    W8D32B8F64,
    W8D32B8F64Curvature,
    f64,
    [[f64; 8]; 8],
    mse_target!(8, 8, f64)
);
holder!(
    W8D64B8,
    W8D64B8Curvature,
    f32,
    [[f32; 8]; 8],
    mse_target!(8, 8, f32)
);
holder!(
    W8D64B8F64,
    W8D64B8F64Curvature,
    f64,
    [[f64; 8]; 8],
    mse_target!(8, 8, f64)
);
holder!(GeluCeB8, GeluCeB8Curvature, f32, [usize; 8], ce_target!(8));
holder!(
    GeluCeB8F64,
    GeluCeB8F64Curvature,
    f64,
    [usize; 8],
    ce_target!(8)
);

/// A table cell for a solve error: `Singular`, `Inaccurate (residual)`, or the message.
fn short(e: &SolveError) -> String {
    match e {
        SolveError::Singular { .. } => "Singular".into(),
        SolveError::Inaccurate { residual, .. } => format!("Inaccurate ({residual:.0e})"),
        e => format!("{e}"),
    }
}

fn rel_err(x: &[f64], y: &[f64]) -> f64 {
    let d: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
    let n: f64 = y.iter().map(|b| b * b).sum();
    (d / n).sqrt()
}

fn f32_round(v: f64) -> f64 {
    v as f32 as f64
}

/// One net pair: parameters from the f64 net's `init(seed)`, inputs uniform in [-1, 1],
/// targets uniform in [-1, 1] (or labels `n % classes`), all rounded to f32.
#[allow(clippy::too_many_arguments)]
fn report_pair(
    name: &str,
    n32: &mut dyn Net,
    n64: &mut dyn Net,
    p: Vec<f64>,
    inputs: usize,
    batch: usize,
    target: Tgt,
    out: &mut Vec<String>,
    mut delayed: Option<&mut Vec<String>>,
) {
    let u32_ = f32::EPSILON as f64 / 2.0;
    let mut rng = SplitMix64::new(5);
    let p: Vec<f64> = p.into_iter().map(f32_round).collect();
    let x: Vec<f64> = (0..inputs * batch)
        .map(|_| f32_round(rng.symmetric()))
        .collect();
    let target = match target {
        Tgt::Values(v) => Tgt::Values(v.into_iter().map(f32_round).collect()),
        l => l,
    };
    n32.set(&p, &x, &target);
    n64.set(&p, &x, &target);
    let n = n32.n();
    let b_rand: Vec<f64> = (0..n).map(|_| f32_round(rng.symmetric())).collect();
    let mut g = vec![0.0; n];
    n32.gradient(&mut g);
    // the dense Hessian from the f64 twin's hvp columns, for the f32 dense LU
    let dense = (n <= DENSE_LU_MAX).then(|| {
        let mut h = DMatrix::<f64>::zeros(n, n);
        let (mut e, mut col) = (vec![0.0; n], vec![0.0; n]);
        for j in 0..n {
            e[j] = 1.0;
            n64.hvp(&e, &mut col);
            e[j] = 0.0;
            for i in 0..n {
                h[(i, j)] = col[i];
            }
        }
        (&h + h.transpose()) * 0.5
    });
    for eps in [1e-1, 1e-2, 1e-3, 1e-4] {
        let eps = f32_round(eps);
        let cond = match n64.norms(eps, 60) {
            Ok((a, b)) => format!("{:.1e}", a * b * u32_),
            Err(e) => short(&e),
        };
        for (bname, b) in [("random", &b_rand), ("gradient", &g)] {
            let (p64, x64) = match n64.solve(eps, b, 5) {
                Ok((p, Ok(r))) => (p, r),
                Err(e) | Ok((_, Err(e))) => {
                    out.push(format!(
                        "| {name} | {eps:.0e} | {bname} | {cond} | f64 {} | | | | | |",
                        short(&e)
                    ));
                    continue;
                }
            };
            let f64_plain = rel_err(&p64, &x64);
            // partial-pivoting LU of the f32-rounded H + eps I, in f32
            let lu32 = match &dense {
                Some(h) => {
                    let mut a = h.map(|v| v as f32);
                    for i in 0..n {
                        a[(i, i)] += eps as f32;
                    }
                    let rhs = DVector::from_iterator(n, b.iter().map(|v| *v as f32));
                    match a.lu().solve(&rhs) {
                        Some(xl) => {
                            let xl: Vec<f64> = xl.iter().map(|v| *v as f64).collect();
                            format!("{:.1e}", rel_err(&xl, &x64))
                        }
                        None => "singular".into(),
                    }
                }
                None => "-".into(),
            };
            let (plain, refined, ratio) = match n32.solve(eps, b, 2) {
                Ok((xp, Ok(xr))) => {
                    let (ep, er) = (rel_err(&xp, &x64), rel_err(&xr, &x64));
                    (
                        format!("{ep:.1e}"),
                        format!("{er:.1e}"),
                        format!("{:.1}", ep / er),
                    )
                }
                Ok((xp, Err(e))) => (format!("{:.1e}", rel_err(&xp, &x64)), short(&e), "-".into()),
                Err(e) => (short(&e), "-".into(), "-".into()),
            };
            out.push(format!(
                "| {name} | {eps:.0e} | {bname} | {cond} | {plain} | {refined} | {ratio} | {lu32} | {f64_plain:.1e} |"
            ));
            if let Some(dl) = delayed.as_mut() {
                let mut row = format!("| {name} | {eps:.0e} | {bname} | {cond} |");
                for (tau, compress) in TAUS.iter().map(|t| (*t, false)).chain([(0.1, true)]) {
                    let cell = match n32.delayed(eps, b, tau, NMAX, compress) {
                        Ok((xd, st)) => format!(
                            " {:.1e} ({}, {:.0e}) |",
                            rel_err(&xd, &x64),
                            st.max_carried,
                            st.max_s
                        ),
                        Err(_) => " Singular |".into(),
                    };
                    row.push_str(&cell);
                }
                // the f64 delayed sweep against the f64 refined solve, and its inertia
                let check = match (n64.delayed(eps, b, 0.1, NMAX, true), n64.negative(eps)) {
                    (Ok((xd, st)), Ok(neg)) => format!(
                        " {:.1e} | {} |",
                        rel_err(&xd, &x64),
                        if st.negative == neg {
                            "equal"
                        } else {
                            "DIFFERENT"
                        }
                    ),
                    _ => " - | - |".into(),
                };
                row.push_str(&check);
                dl.push(row);
            }
        }
    }
}

/// Nets up to this size get the f32 dense LU column.
const DENSE_LU_MAX: usize = 600;

/// Thresholds of the delayed-pivot table (0: the plain generic sweep).
const TAUS: [f64; 4] = [0.0, 0.01, 0.03, 0.1];

macro_rules! run_pair {
    ($name:literal, $n32:ident, $c32:ident, $n64:ident, $c64:ident, $tt32:ty, $tt64:ty, $tgt:expr, $out:expr, $delayed:expr) => {{
        let mut a = Holder::<
            $n32,
            $c32,
            [f32; $n32::N_PARAMS],
            [[f32; $n32::INPUTS]; $n32::BATCH],
            $tt32,
        >::new();
        let mut b = Holder::<
            $n64,
            $c64,
            [f64; $n64::N_PARAMS],
            [[f64; $n64::INPUTS]; $n64::BATCH],
            $tt64,
        >::new();
        let net = $n64::init(3);
        let mut p = vec![0.0; $n64::N_PARAMS];
        net.params((&mut p[..]).try_into().unwrap());
        let start = Instant::now();
        report_pair(
            $name,
            &mut a,
            &mut b,
            p,
            $n64::INPUTS,
            $n64::BATCH,
            $tgt,
            $out,
            $delayed,
        );
        eprintln!("{}: {:.1} s", $name, start.elapsed().as_secs_f64());
    }};
}

fn solve_table(with_delayed: bool) {
    let mut out = Vec::new();
    let mut dl = Vec::new();
    let mut rng = SplitMix64::new(11);
    let mut values = |n: usize| Tgt::Values((0..n).map(|_| rng.symmetric()).collect());
    run_pair!(
        "w8 d8 b1",
        W8D8B1,
        W8D8B1Curvature,
        W8D8B1F64,
        W8D8B1F64Curvature,
        [[f32; 8]; 1],
        [[f64; 8]; 1],
        values(8),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "w8 d32 b1",
        W8D32B1,
        W8D32B1Curvature,
        W8D32B1F64,
        W8D32B1F64Curvature,
        [[f32; 8]; 1],
        [[f64; 8]; 1],
        values(8),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "w8 d64 b1",
        W8D64B1,
        W8D64B1Curvature,
        W8D64B1F64,
        W8D64B1F64Curvature,
        [[f32; 8]; 1],
        [[f64; 8]; 1],
        values(8),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "w8 d8 b8",
        W8D8B8,
        W8D8B8Curvature,
        W8D8B8F64,
        W8D8B8F64Curvature,
        [[f32; 8]; 8],
        [[f64; 8]; 8],
        values(64),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "w8 d32 b8",
        W8D32B8,
        W8D32B8Curvature,
        W8D32B8F64,
        W8D32B8F64Curvature,
        [[f32; 8]; 8],
        [[f64; 8]; 8],
        values(64),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "w8 d64 b8",
        W8D64B8,
        W8D64B8Curvature,
        W8D64B8F64,
        W8D64B8F64Curvature,
        [[f32; 8]; 8],
        [[f64; 8]; 8],
        values(64),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    run_pair!(
        "gelu/CE d8 b8",
        GeluCeB8,
        GeluCeB8Curvature,
        GeluCeB8F64,
        GeluCeB8F64Curvature,
        [usize; 8],
        [usize; 8],
        Tgt::Labels((0..8).map(|n| n % 4).collect()),
        &mut out,
        with_delayed.then_some(&mut dl)
    );
    println!("f32 solve against the f64 twin's refined solve (relative error of x)\n");
    println!("| net | eps | b | cond * u32 | f32 plain | f32 refined | plain / refined | f32 dense LU | f64 plain vs refined |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in out {
        println!("{row}");
    }
    if with_delayed {
        println!("\nThe delayed-pivot sweep on the dense stage blocks, in f32, against the f64 twin's refined solve: relative error (most carried variables, max |S|) per threshold tau; the carried set compressed to the stage input's size (tau 0.1); the f64 compressed sweep against the f64 refined solve, and whether its count of negative eigenvalues equals the generated factorisation's\n");
        println!("| net | eps | b | cond * u32 | tau 0 (plain generic) | tau 0.01 | tau 0.03 | tau 0.1 | tau 0.1, compressed | f64, tau 0.1, compressed | inertia |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for row in dl {
            println!("{row}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The delayed-pivot sweep on the dense stage blocks (shared with its test)

#[path = "../tests/it/delayed_sweep/sweep.rs"]
mod delayed_sweep;
use delayed_sweep::{delayed_solve, dense_stages, DelayedStats, NMAX};

// ---------------------------------------------------------------------------------------
// The Levenberg-Marquardt experiment

#[path = "common/regression.rs"]
mod regression;
use regression::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Woodbury,
    Riccati,
    F64,
}

struct LmOutcome {
    best_mse: f64,
    rejected: usize,
    rejected_steps: usize,
    steps: usize,
    /// First step at MSE < 1e-8 and the steps rejected before it.
    hit: Option<(usize, usize)>,
    step_err: Vec<f64>,
}

/// The library's LM loop (defaults, Nielsen update, up to 4 trials per step), with the
/// Gauss-Newton step from `how`, the gradient from the f64 twin (at the f32 point) when
/// `grad64`, and the ratio test's losses from the f64 twin when `loss64`. Parameters stay f32.
fn lm_f32(how: Step, grad64: bool, loss64: bool, budget: usize) -> LmOutcome {
    const N: usize = Regressor32::N_PARAMS;
    let (x64, t64) = data();
    let x: [[f32; 1]; BATCH] = x64.map(|r| r.map(|v| v as f32));
    let t: [[f32; 1]; BATCH] = t64.map(|r| r.map(|v| v as f32));
    let mut p64 = [0.0f64; N];
    Regressor64::init(1).params(&mut p64);
    let mut net = Regressor32::ZERO;
    net.set_params(&p64.map(|v| v as f32)).unwrap();
    let mut twin = Regressor64::ZERO;
    let mut curv = tall_skinny::boxed_zeroed::<Regressor32Curvature>();
    let mut ggn = tall_skinny::boxed_zeroed::<Regressor32Ggn>();
    let mut curv64 = tall_skinny::boxed_zeroed::<Regressor64Curvature>();
    let (x_t, t_t) = (
        x.map(|r| r.map(|v| v as f64)),
        t.map(|r| r.map(|v| v as f64)),
    );
    let (mut lambda, mut nu) = (1e-3f32, 2.0f32);
    let mut best = f64::INFINITY;
    let mut rejected = 0;
    let mut rejected_steps = 0;
    let mut step_err = Vec::new();
    let mut g = [0.0f32; N];
    let mut d = [0.0f32; N];
    let mut base = [0.0f32; N];
    let mut hit: Option<(usize, usize)> = None;
    for step in 0..budget {
        let mut loss0 = net.gradient(&x, &t, &mut g).unwrap();
        net.params(&mut base);
        let mut p = [0.0f64; N];
        for (a, b) in p.iter_mut().zip(&base) {
            *a = *b as f64;
        }
        twin.set_params(&p).unwrap();
        best = best.min(2.0 * twin.loss(&x_t, &t_t).unwrap());
        if best < 1e-8 && hit.is_none() {
            hit = Some((step, rejected_steps));
        }
        let mut loss0_64 = 0.0f64;
        if grad64 || loss64 {
            let mut g64 = [0.0f64; N];
            loss0_64 = twin.gradient(&x_t, &t_t, &mut g64).unwrap();
            if grad64 {
                g = g64.map(|v| v as f32);
                loss0 = loss0_64 as f32;
            }
        }
        match how {
            Step::Woodbury => net.ggn_woodbury_into(&mut ggn, &x, &t).unwrap(),
            Step::Riccati => net.ggn_curvature_into(&mut curv, &x, &t).unwrap(),
            Step::F64 => {}
        }
        twin.ggn_curvature_into(&mut curv64, &x_t, &t_t).unwrap();
        let mut accepted = false;
        for _trial in 0..4 {
            let ok = match how {
                Step::Woodbury => ggn
                    .factor(lambda)
                    .and_then(|mut f| f.solve_refined(&g, &mut d, 2).map(|_| ()))
                    .is_ok(),
                Step::Riccati => curv
                    .factor(lambda)
                    .and_then(|mut f| f.solve_refined(&g, &mut d, 2).map(|_| ()))
                    .is_ok(),
                Step::F64 => true,
            };
            // the exact step (f64 solve at the f32 point)
            let g64 = g.map(|v| v as f64);
            let mut d64 = [0.0f64; N];
            let exact = (how == Step::F64 || (!(grad64 || loss64) && step + 100 >= budget))
                && curv64
                    .factor(lambda as f64)
                    .and_then(|mut f| f.solve_refined(&g64, &mut d64, 5).map(|_| ()))
                    .is_ok();
            if how == Step::F64 {
                d = d64.map(|v| v as f32);
            }
            if !ok {
                lambda = (lambda * nu).min(1e12);
                nu *= 2.0;
                rejected += 1;
                continue;
            }
            if exact {
                let df: Vec<f64> = d.iter().map(|v| *v as f64).collect();
                step_err.push(rel_err(&df, &d64));
            }
            for v in d.iter_mut() {
                *v = -*v;
            }
            let gd: f32 = g.iter().zip(&d).map(|(a, b)| a * b).sum();
            let dd: f32 = d.iter().map(|a| a * a).sum();
            let pred = (lambda * dd - gd) * 0.5;
            let mut trial = base;
            for (o, di) in trial.iter_mut().zip(&d) {
                *o += *di;
            }
            let loss1 = net
                .set_params(&trial)
                .ok()
                .and_then(|_| {
                    if loss64 {
                        let mut p = [0.0f64; N];
                        for (a, b) in p.iter_mut().zip(&trial) {
                            *a = *b as f64;
                        }
                        twin.set_params(&p).ok()?;
                        twin.loss(&x_t, &t_t).ok()
                    } else {
                        net.loss(&x, &t).ok().map(|l| l as f64)
                    }
                })
                .filter(|l| l.is_finite());
            let l0 = if loss64 { loss0_64 } else { loss0 as f64 };
            let (ratio, ok) = match loss1 {
                Some(l) if pred > 0.0 => (((l0 - l) / pred as f64) as f32, true),
                _ => (-1.0, false),
            };
            if ok && ratio > 1e-4 {
                let xr = 2.0 * ratio - 1.0;
                lambda *= (1.0 - xr * xr * xr).max(1.0 / 3.0);
                nu = 2.0;
                lambda = lambda.clamp(1e-12, 1e12);
                accepted = true;
                break;
            }
            net.set_params(&base).unwrap();
            lambda = (lambda * nu).clamp(1e-12, 1e12);
            nu *= 2.0;
            rejected += 1;
        }
        if !accepted {
            rejected_steps += 1;
        }
    }
    let mut p = [0.0f64; N];
    net.params(&mut base);
    for (a, b) in p.iter_mut().zip(&base) {
        *a = *b as f64;
    }
    twin.set_params(&p).unwrap();
    let mse = 2.0 * twin.loss(&x_t, &t_t).unwrap();
    LmOutcome {
        best_mse: best.min(mse),
        rejected,
        rejected_steps,
        steps: budget,
        hit,
        step_err,
    }
}

fn lm_experiment() {
    let (x64, t64) = data();
    let x: [[f32; 1]; BATCH] = x64.map(|r| r.map(|v| v as f32));
    let t: [[f32; 1]; BATCH] = t64.map(|r| r.map(|v| v as f32));
    println!(
        "\nLevenberg-Marquardt in f32 on fit_regression's problem (GGN_METHOD {:?})\n",
        Regressor32::GGN_METHOD
    );
    // the library's optimizer
    {
        use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
        let mut p64 = [0.0f64; Regressor32::N_PARAMS];
        Regressor64::init(1).params(&mut p64);
        let mut net = Regressor32::ZERO;
        net.set_params(&p64.map(|v| v as f32)).unwrap();
        let mut lm = LevenbergMarquardt::<Regressor32>::boxed(LmConfig::default()).unwrap();
        let (mut rejected, mut best) = (0, f64::INFINITY);
        let mut hit = None;
        for step in 0..1000 {
            match lm.step(&mut net, &x, &t) {
                Ok(r) => {
                    if !r.accepted {
                        rejected += 1;
                    }
                }
                Err(e) => {
                    println!("library LM failed: {e}");
                    break;
                }
            }
            best = best.min(2.0 * net.loss(&x, &t).unwrap() as f64);
            if best < 1e-8 && hit.is_none() {
                hit = Some((step + 1, rejected));
            }
        }
        println!(
            "library LevenbergMarquardt: best MSE {best:.2e} (f32 loss), {rejected} of 1000 steps rejected; MSE < 1e-8 {}\n",
            match hit {
                Some((s, r)) => format!("after {s} steps, {r} of them rejected"),
                None => "never".into(),
            }
        );
    }
    println!("| Gauss-Newton step from | gradient | ratio-test losses | best MSE | rejected steps | rejected trials | steps | MSE < 1e-8 at step (rejected before) | median step error (last 100) | max |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::args().nth(2);
    for (how, grad64, loss64) in [
        (Step::Woodbury, false, false),
        (Step::Riccati, false, false),
        (Step::F64, false, false),
        (Step::F64, false, true),
        (Step::F64, true, false),
        (Step::F64, true, true),
    ] {
        if only.as_deref() == Some("variants") && !(grad64 || loss64) {
            continue;
        }
        let o = lm_f32(how, grad64, loss64, 1000);
        let prec = |b: bool| if b { "f64" } else { "f32" };
        let mut tail: Vec<f64> = o.step_err.iter().rev().take(100).cloned().collect();
        tail.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (med, max) = if tail.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (tail[tail.len() / 2], *tail.last().unwrap())
        };
        println!(
            "| {how:?} | {} | {} | {:.2e} | {} | {} | {} | {} | {med:.1e} | {max:.1e} |",
            prec(grad64),
            prec(loss64),
            o.best_mse,
            o.rejected_steps,
            o.rejected,
            o.steps,
            o.hit.map_or("never".into(), |(s, r)| format!("{s} ({r})"))
        );
    }
}

/// The two exact Gauss-Newton solves on `fit_regression`'s problem (at the initial point),
/// against the f64 Riccati solve refined 5 steps: the Woodbury form (`ggn_woodbury_solve`,
/// which refines up to 2 steps itself) and the Riccati form (plain and refined 2 steps), in
/// f32 and f64, b random and b = the gradient.
fn ggn_table() {
    const N: usize = Regressor32::N_PARAMS;
    let (x64, t64) = data();
    let x: [[f32; 1]; BATCH] = x64.map(|r| r.map(|v| v as f32));
    let t: [[f32; 1]; BATCH] = t64.map(|r| r.map(|v| v as f32));
    let (xd, td) = (
        x.map(|r| r.map(|v| v as f64)),
        t.map(|r| r.map(|v| v as f64)),
    );
    let mut p64 = [0.0f64; N];
    Regressor64::init(1).params(&mut p64);
    let p32 = p64.map(|v| v as f32);
    let mut n32 = Regressor32::ZERO;
    n32.set_params(&p32).unwrap();
    let mut n64 = Regressor64::ZERO;
    n64.set_params(&p32.map(|v| v as f64)).unwrap();
    let mut c32 = tall_skinny::boxed_zeroed::<Regressor32Curvature>();
    let mut c64 = tall_skinny::boxed_zeroed::<Regressor64Curvature>();
    let mut w32 = tall_skinny::boxed_zeroed::<Regressor32Ggn>();
    let mut w64 = tall_skinny::boxed_zeroed::<Regressor64Ggn>();
    n32.ggn_curvature_into(&mut c32, &x, &t).unwrap();
    n64.ggn_curvature_into(&mut c64, &xd, &td).unwrap();
    n32.ggn_woodbury_into(&mut w32, &x, &t).unwrap();
    n64.ggn_woodbury_into(&mut w64, &xd, &td).unwrap();
    let mut rng = SplitMix64::new(4);
    let b_rand: [f32; N] = core::array::from_fn(|_| rng.symmetric() as f32);
    let mut g = [0.0f32; N];
    n32.gradient(&x, &t, &mut g).unwrap();
    println!("\nGauss-Newton solves on fit_regression's problem (N {N}, M = 32), relative error against the f64 Riccati solve refined 5 steps\n");
    println!("| eps | b | f32 Woodbury | f32 Riccati plain | f32 Riccati refined | f64 Woodbury | f64 Riccati plain |");
    println!("|---|---|---|---|---|---|---|");
    let err = |a: &[f64], b: &[f64]| format!("{:.1e}", rel_err(a, b));
    for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8] {
        for (bname, b) in [("random", &b_rand), ("gradient", &g)] {
            let bd = b.map(|v| v as f64);
            let mut want = [0.0f64; N];
            if c64
                .factor(eps)
                .and_then(|mut f| f.solve_refined(&bd, &mut want, 5).map(|_| ()))
                .is_err()
            {
                println!("| {eps:.0e} | {bname} | f64 Riccati failed | | | | |");
                continue;
            }
            let mut o32 = [0.0f32; N];
            let wood32 = match w32
                .factor(eps as f32)
                .and_then(|mut f| f.solve_refined(b, &mut o32, 2).map(|_| ()))
            {
                Ok(()) => err(&o32.map(|v| v as f64), &want),
                Err(e) => format!("{e}"),
            };
            let (ric_p, ric_r) = match c32.factor(eps as f32) {
                Ok(mut f) => {
                    f.solve(b, &mut o32).unwrap();
                    let p = err(&o32.map(|v| v as f64), &want);
                    f.solve_refined(b, &mut o32, 2).unwrap();
                    (p, err(&o32.map(|v| v as f64), &want))
                }
                Err(e) => (format!("{e}"), "-".into()),
            };
            let mut o64 = [0.0f64; N];
            let wood64 = match w64
                .factor(eps)
                .and_then(|mut f| f.solve_refined(&bd, &mut o64, 2).map(|_| ()))
            {
                Ok(()) => err(&o64, &want),
                Err(e) => format!("{e}"),
            };
            let ric64 = match c64.factor(eps) {
                Ok(mut f) => {
                    f.solve(&bd, &mut o64).unwrap();
                    err(&o64, &want)
                }
                Err(e) => format!("{e}"),
            };
            println!("| {eps:.0e} | {bname} | {wood32} | {ric_p} | {ric_r} | {wood64} | {ric64} |");
        }
    }
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg.is_empty() || arg == "solve" || arg == "delayed" {
        solve_table(arg != "solve");
    }
    if arg.is_empty() || arg == "ggn" {
        ggn_table();
    }
    if arg.is_empty() || arg == "lm" {
        lm_experiment();
    }
}
