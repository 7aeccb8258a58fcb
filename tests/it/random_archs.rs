//! Random architectures: every net in `tests/it/random_archs/archs.txt` (>= 40 of them, depth 1
//! to 128, widths 1 to 16, every layer kind and activation, arrays, both losses, batch 1 to
//! 8, f32 and f64), checked over the weight-draw seeds listed with it.
//!
//! The list is data: `archs.txt` (human-readable, one net per line) was written by
//! [`generate`] from [`GEN_SEED`]; `random_archs/generated.rs` instantiates every line with
//! the macro (`arch!` / `arch32!` below) and is derived from `archs.txt`:
//! - `UPDATE_RANDOM_ARCHS=1 cargo test --test it random_archs::list` rewrites `generated.rs`
//!   from `archs.txt` (after editing the list by hand), then rebuild;
//! - `REGEN_RANDOM_ARCHS=1 cargo test --test it random_archs::list` first rewrites `archs.txt`
//!   from the generator (its seed and rules below), then `generated.rs`.
//!
//! The test `list_and_instantiation_agree` fails if `generated.rs` is stale.
//!
//! Per f64 net and seed (`check_f64`); `u` is the unit roundoff, `N` the parameter count,
//! `tol = 2000 u sqrt(N)` the bar of `tests/derivatives.rs`:
//! - `loss` against the independent plain-f64 reference evaluator of `tests/it/common.rs`
//!   (relative `tol`);
//! - `gradient` against central differences of `loss` along 2 random directions, and `hvp`
//!   against central differences of `gradient` along 2 random directions. Each difference
//!   is taken at steps `h` and `h/2`; its error bar is `3 |D(h) - D(h/2)|` (Richardson: an
//!   `h^2` truncation error is `|D(h) - D(h/2)| / 3`, a Relu kink crossed at most twice that)
//!   plus the rounding of the differenced values (`tol * |f| / h`) plus `tol` times the
//!   compared quantity;
//! - dense (N <= `DENSE_MAX`): the Hessian from `N` hvp columns is symmetric to `tol`; for
//!   `eps = rho |H|_2`, rho in {1e-1, 1e-4}, `hessian_solve_in` agrees with a partial-pivoting
//!   LU solve to `100 sqrt(N) u cond(H + eps I)` and its inertia equals the signs of the
//!   dense eigenvalues (when none is within rounding of zero);
//! - large (N > `DENSE_MAX`): the solve's normwise backward error, with the residual computed
//!   by `hvp`, `|(H + eps I) x - b| / (|H + eps I|_2 |x| + |b|) <= 100 sqrt(N) u`
//!   (`|H|_2` estimated from below by power iteration, which only makes the bar stricter).
//!
//! Per f32 net (`check_f32`): its f64 twin (same declaration, `scalar = f64`) passes all of
//! the above, and the f32 net agrees with the twin on parameters, inputs and targets rounded
//! to f32: loss, gradient and hvp to `tol` (of f32), the solve at `eps = max(0, -lambda_min)
//! + rho |H|_2`, rho in {1, 1e-1} (f32 is for well-conditioned shifts, see README), to
//! `cond(H + eps I) * tol` (the Hessian's own f32 error amplified by the
//! conditioning; for large nets the f32 solution's backward error, by the twin's f64 hvp,
//! must be <= `tol`).
//!
//! The default run covers every architecture with its first weight draw; the remaining
//! draws run with `cargo test --release --test it random_archs:: -- --ignored` (see README).
//! Run with `--nocapture` to see the measured errors as fractions of their bars.

#[allow(unused_macros, unused_imports)]
use crate::common::{random_target, ref_loss, Act, Kind, LayerSpec, LossSpec, Rng, Spec, Target};
use crate::solve_common::{cond, dense_from_hvp, inertia_of, lu_solve, rel_err, sym_eigenvalues};
use tall_skinny::prelude::*;
use tall_skinny::runtime::Inertia;

/// Nets with at most this many parameters get the dense references.
const DENSE_MAX: usize = 500;

// ---------------------------------------------------------------------------------------------
// The list

/// One layer field: a layer, or `[layer; count]`.
#[derive(Clone, Debug, PartialEq)]
struct Group {
    kind: Kind,
    inputs: usize,
    outputs: usize,
    act: Act,
    count: Option<usize>,
}

/// One line of `archs.txt`.
#[derive(Clone, Debug, PartialEq)]
struct Desc {
    name: String,
    f32: bool,
    batch: usize,
    seeds: Vec<u64>,
    groups: Vec<Group>,
    loss: LossSpec,
}

const ACTS: [Act; 8] = [
    Act::Identity,
    Act::Tanh,
    Act::Sigmoid,
    Act::Softplus,
    Act::Relu,
    Act::Gelu,
    Act::Silu,
    Act::Sin,
];

fn act_name(a: Act) -> &'static str {
    match a {
        Act::Identity => "Identity",
        Act::Tanh => "Tanh",
        Act::Sigmoid => "Sigmoid",
        Act::Softplus => "Softplus",
        Act::Relu => "Relu",
        Act::Gelu => "Gelu",
        Act::Silu => "Silu",
        Act::Sin => "Sin",
    }
}

impl Group {
    fn layer_text(&self) -> String {
        let a = act_name(self.act);
        match self.kind {
            Kind::Dense => format!("Dense<{}, {}, {a}>", self.inputs, self.outputs),
            Kind::DenseNoBias => format!("DenseNoBias<{}, {}, {a}>", self.inputs, self.outputs),
            Kind::Residual => format!("Residual<{}, {a}>", self.inputs),
        }
    }
    fn text(&self) -> String {
        match self.count {
            Some(n) => format!("[{}; {n}]", self.layer_text()),
            None => self.layer_text(),
        }
    }
    fn stages(&self) -> usize {
        self.count.unwrap_or(1)
    }
}

impl Desc {
    fn depth(&self) -> usize {
        self.groups.iter().map(Group::stages).sum()
    }
    fn spec(&self) -> Spec {
        let layers = self
            .groups
            .iter()
            .flat_map(|g| {
                let l = LayerSpec {
                    kind: g.kind,
                    inputs: g.inputs,
                    outputs: g.outputs,
                    act: g.act,
                };
                std::iter::repeat_n(l, g.stages())
            })
            .collect();
        Spec {
            layers,
            loss: self.loss,
            batch: self.batch,
        }
    }
    fn loss_text(&self) -> String {
        match self.loss {
            LossSpec::Mse(o) => format!("Mse<{o}>"),
            LossSpec::Softmax(c) => format!("SoftmaxCrossEntropy<{c}>"),
        }
    }
    /// `name scalar batch=B seeds=s1,s2 : layer layer ... -> loss`
    fn line(&self) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let groups: Vec<String> = self.groups.iter().map(Group::text).collect();
        format!(
            "{} {} batch={} seeds={} : {} -> {}",
            self.name,
            if self.f32 { "f32" } else { "f64" },
            self.batch,
            seeds.join(","),
            groups.join(" "),
            self.loss_text()
        )
    }
    fn parse(line: &str) -> Desc {
        let (head, body) = line.split_once(" : ").expect("`head : body`");
        let mut head = head.split_whitespace();
        let name = head.next().unwrap().to_string();
        let f32 = match head.next().unwrap() {
            "f32" => true,
            "f64" => false,
            s => panic!("scalar {s}"),
        };
        let batch = head
            .next()
            .unwrap()
            .strip_prefix("batch=")
            .unwrap()
            .parse()
            .unwrap();
        let seeds = head
            .next()
            .unwrap()
            .strip_prefix("seeds=")
            .unwrap()
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        let (layers, loss) = body.split_once(" -> ").expect("`layers -> loss`");
        let num = |s: &str| s.trim().parse::<usize>().unwrap();
        let loss = if let Some(c) = loss.strip_prefix("SoftmaxCrossEntropy<") {
            LossSpec::Softmax(num(c.trim_end_matches('>')))
        } else {
            LossSpec::Mse(num(loss
                .strip_prefix("Mse<")
                .unwrap()
                .trim_end_matches('>')))
        };
        // Layers are separated by "> " at the top level: split on the layer kinds instead.
        let mut groups = Vec::new();
        let text = layers.replace(", ", ",").replace("; ", ";");
        for tok in text.split_whitespace() {
            let (inner, count) = match tok.strip_prefix('[') {
                Some(rest) => {
                    let (l, n) = rest.trim_end_matches(']').split_once(';').unwrap();
                    (l.to_string(), Some(num(n)))
                }
                None => (tok.to_string(), None),
            };
            let (kind, args) = inner.split_once('<').unwrap();
            let args: Vec<&str> = args.trim_end_matches('>').split(',').collect();
            let act_of = |s: &str| *ACTS.iter().find(|a| act_name(**a) == s).unwrap();
            let (kind, i, o, act) = match kind {
                "Dense" => (Kind::Dense, num(args[0]), num(args[1]), act_of(args[2])),
                "DenseNoBias" => (
                    Kind::DenseNoBias,
                    num(args[0]),
                    num(args[1]),
                    act_of(args[2]),
                ),
                "Residual" => (Kind::Residual, num(args[0]), num(args[0]), act_of(args[1])),
                k => panic!("kind {k}"),
            };
            groups.push(Group {
                kind,
                inputs: i,
                outputs: o,
                act,
                count,
            });
        }
        Desc {
            name,
            f32,
            batch,
            seeds,
            groups,
            loss,
        }
    }
}

const ARCHS: &str = include_str!("random_archs/archs.txt");

fn descs() -> Vec<Desc> {
    ARCHS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(Desc::parse)
        .collect()
}

fn desc(name: &str) -> Desc {
    descs()
        .into_iter()
        .find(|d| d.name == name)
        .expect("listed")
}

/// The seed of [`generate`].
const GEN_SEED: u64 = 0x7A11_5C1A_2026_0006;

/// Writes the list: 44 nets. Net 0 has depth 1, net 1 is depth 128 x width 16 (~35k
/// parameters); nets 5, 9, 13, 17 and 21 are other large ones (depth 64-128, widths 3-16);
/// the rest have depth 1-40 and widths chosen to keep N <= ~500 (dense references). Every
/// 4th net is f32. Batch 1-8, both losses, every kind and activation at random; arrays
/// where a width repeats. The last stage is a `Dense` or `DenseNoBias` head.
fn generate() -> Vec<Desc> {
    let mut rng = Rng::new(GEN_SEED);
    let mut out = Vec::new();
    for idx in 0..44usize {
        let f32 = idx % 4 == 3;
        let batch = 1 + rng.below(8);
        let big = [1usize, 5, 9, 13, 17, 21].contains(&idx);
        let (depth, wmax) = match idx {
            0 => (1, 16),
            1 => (128, 16),
            _ if big => (64 + rng.below(65), 3 + rng.below(14)),
            _ => {
                let d = 1 + rng.below(40);
                let w = ((500.0 / d as f64).sqrt() as usize).clamp(1, 16);
                (d, w)
            }
        };
        let softmax = rng.below(2) == 0;
        let pick_act = |rng: &mut Rng| ACTS[rng.below(8)];
        let mut groups = Vec::new();
        let mut width = if idx == 1 { 16 } else { 1 + rng.below(wmax) };
        let inputs = 1 + rng.below(wmax.max(2));
        let mut cur = inputs;
        let mut stages = 0;
        // Body: depth - 1 stages.
        while stages + 1 < depth {
            let left = depth - 1 - stages;
            let kind = [Kind::Dense, Kind::DenseNoBias, Kind::Residual][rng.below(3)];
            let act = pick_act(&mut rng);
            if kind == Kind::Residual || (idx == 1 && stages > 0) {
                // a residual keeps the width: enter it first if needed
                if cur != width && (idx == 1 || stages == 0 || rng.below(2) == 0) {
                    groups.push(Group {
                        kind: Kind::Dense,
                        inputs: cur,
                        outputs: width,
                        act,
                        count: None,
                    });
                    cur = width;
                    stages += 1;
                    continue;
                }
                let n = if left > 1 && rng.below(3) > 0 {
                    2 + rng.below(left - 1)
                } else {
                    1
                };
                let n = if idx == 1 { left } else { n };
                groups.push(Group {
                    kind: Kind::Residual,
                    inputs: cur,
                    outputs: cur,
                    act,
                    count: (n > 1 || rng.below(4) == 0).then_some(n),
                });
                stages += n;
            } else if left > 1 && rng.below(3) == 0 {
                let n = 2 + rng.below(left - 1);
                groups.push(Group {
                    kind,
                    inputs: cur,
                    outputs: cur,
                    act,
                    count: Some(n),
                });
                stages += n;
            } else {
                let o = 1 + rng.below(wmax);
                groups.push(Group {
                    kind,
                    inputs: cur,
                    outputs: o,
                    act,
                    count: None,
                });
                cur = o;
                width = o;
                stages += 1;
            }
        }
        let classes = if softmax {
            2 + rng.below(wmax.max(2) - 1)
        } else {
            1 + rng.below(wmax)
        };
        let kind = [Kind::Dense, Kind::DenseNoBias][rng.below(2)];
        let act = if rng.below(2) == 0 {
            Act::Identity
        } else {
            pick_act(&mut rng)
        };
        groups.push(Group {
            kind,
            inputs: cur,
            outputs: classes,
            act,
            count: None,
        });
        let loss = if softmax {
            LossSpec::Softmax(classes)
        } else {
            LossSpec::Mse(classes)
        };
        let base = 1000 * (idx as u64 + 1);
        let seeds = if big {
            vec![base + 1, base + 2]
        } else {
            vec![base + 1, base + 2, base + 3]
        };
        out.push(Desc {
            name: format!("a{idx:02}"),
            f32,
            batch,
            seeds,
            groups,
            loss,
        });
    }
    out
}

fn render_list(ds: &[Desc]) -> String {
    let mut s = String::from(
        "# Random architectures for tests/it/random_archs.rs, one per line:\n\
         #   name scalar batch=B seeds=<weight-draw seeds> : <layer fields in order> -> <loss>\n\
         # Written by `generate()` in tests/it/random_archs.rs (GEN_SEED = 0x7A115C1A20260006);\n\
         # lines may be edited or added by hand, then run\n\
         #   UPDATE_RANDOM_ARCHS=1 cargo test --test it random_archs::list\n\
         # to re-instantiate them (tests/it/random_archs/generated.rs).\n",
    );
    for d in ds {
        s += &d.line();
        s.push('\n');
    }
    s
}

/// The Rust source instantiating every net of the list.
fn render_rust(ds: &[Desc]) -> String {
    let mut s = String::from(
        "// @generated from archs.txt by tests/it/random_archs.rs (UPDATE_RANDOM_ARCHS=1); do not edit.\n",
    );
    for d in ds {
        let up = d.name.to_uppercase();
        let mut fields = String::new();
        for (k, g) in d.groups.iter().enumerate() {
            fields += &format!("    l{k}: {},\n", g.text());
        }
        fields += &format!("    loss: {},\n", d.loss_text());
        let info = format!(
            "// {}: depth {}, N {}, batch {}",
            d.name,
            d.depth(),
            d.spec().n_params(),
            d.batch
        );
        if d.f32 {
            s += &format!(
                "\n{info}\narch32!({name}, {up}, {up}Workspace, {up}Curvature, {up}F64, {up}F64Workspace, {up}F64Curvature, {b}, {{\n{fields}}});\n",
                name = d.name,
                b = d.batch
            );
        } else {
            s += &format!(
                "\n{info}\narch!({name}, {up}, {up}Workspace, {up}Curvature, {b}, {{\n{fields}}});\n",
                name = d.name,
                b = d.batch
            );
        }
    }
    s
}

#[test]
fn list_and_instantiation_agree() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/random_archs");
    if std::env::var_os("REGEN_RANDOM_ARCHS").is_some() {
        std::fs::write(format!("{dir}/archs.txt"), render_list(&generate())).unwrap();
    }
    let list = std::fs::read_to_string(format!("{dir}/archs.txt")).unwrap();
    let ds: Vec<Desc> = list
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(Desc::parse)
        .collect();
    for d in &ds {
        assert_eq!(Desc::parse(&d.line()), *d, "line round trip");
    }
    let rust = render_rust(&ds);
    if std::env::var_os("UPDATE_RANDOM_ARCHS").is_some()
        || std::env::var_os("REGEN_RANDOM_ARCHS").is_some()
    {
        std::fs::write(format!("{dir}/generated.rs"), &rust).unwrap();
        return;
    }
    let current = std::fs::read_to_string(format!("{dir}/generated.rs")).unwrap();
    assert!(
        current == rust,
        "tests/it/random_archs/generated.rs is stale: run UPDATE_RANDOM_ARCHS=1 cargo test --test it random_archs::list"
    );
}

#[test]
fn list_covers_the_brief() {
    let ds = descs();
    assert!(ds.len() >= 40, "{} architectures", ds.len());
    let depths: Vec<usize> = ds.iter().map(Desc::depth).collect();
    assert_eq!(*depths.iter().min().unwrap(), 1);
    assert_eq!(*depths.iter().max().unwrap(), 128);
    assert!(depths.iter().all(|&d| (1..=128).contains(&d)));
    let widths: Vec<usize> = ds
        .iter()
        .flat_map(|d| d.groups.iter().flat_map(|g| [g.inputs, g.outputs]))
        .collect();
    assert!(widths.iter().all(|&w| (1..=16).contains(&w)));
    assert!(widths.contains(&1) && widths.contains(&16));
    for kind in [Kind::Dense, Kind::DenseNoBias, Kind::Residual] {
        assert!(
            ds.iter().any(|d| d.groups.iter().any(|g| g.kind == kind)),
            "{kind:?}"
        );
    }
    for act in ACTS {
        assert!(
            ds.iter().any(|d| d.groups.iter().any(|g| g.act == act)),
            "{act:?}"
        );
    }
    assert!(
        ds.iter()
            .any(|d| d.groups.iter().any(|g| g.count.is_some())),
        "arrays"
    );
    assert!(ds.iter().any(|d| matches!(d.loss, LossSpec::Mse(_))));
    assert!(ds.iter().any(|d| matches!(d.loss, LossSpec::Softmax(_))));
    let batches: Vec<usize> = ds.iter().map(|d| d.batch).collect();
    assert!(batches.iter().all(|&b| (1..=8).contains(&b)));
    assert!(batches.contains(&1) && batches.contains(&8));
    assert!(ds.iter().any(|d| d.f32) && ds.iter().any(|d| !d.f32));
    assert!(
        ds.iter().all(|d| d.seeds.len() >= 2),
        "several weight draws each"
    );
}

// ---------------------------------------------------------------------------------------------
// A uniform view of a generated net (dyn-compatible, so the checks are compiled once)

trait Arch {
    fn n(&self) -> usize;
    /// Unit roundoff of the net's scalar.
    fn u(&self) -> f64;
    fn set(&mut self, p: &[f64]) -> Result<(), NetError>;
    fn loss(&mut self, x: &[f64], t: &Target) -> Result<f64, NetError>;
    fn gradient(&mut self, x: &[f64], t: &Target, g: &mut [f64]) -> Result<f64, NetError>;
    fn hvp(&mut self, x: &[f64], t: &Target, v: &[f64], out: &mut [f64]) -> Result<(), NetError>;
    fn solve(
        &mut self,
        x: &[f64],
        t: &Target,
        eps: f64,
        b: &[f64],
        out: &mut [f64],
    ) -> Result<Inertia, SolveError>;
}

/// A generated net with heap storage for everything (the deep ones do not fit a 2 MiB stack).
struct Holder<Net, Ws, Curv, P> {
    net: Box<Net>,
    ws: Box<Ws>,
    curv: Box<Curv>,
    a: Box<P>,
    b: Box<P>,
}

/// `impl Arch` for one generated net, and `Holder::new`.
macro_rules! impl_arch {
    ($net:ident, $ws:ident, $curv:ident, $t:ty) => {
        impl Holder<$net, $ws, $curv, [$t; $net::N_PARAMS]> {
            fn new() -> Self {
                Holder {
                    net: tall_skinny::boxed_zeroed::<$net>(),
                    ws: tall_skinny::boxed_zeroed::<$ws>(),
                    curv: tall_skinny::boxed_zeroed::<$curv>(),
                    a: tall_skinny::boxed_zeroed::<[$t; $net::N_PARAMS]>(),
                    b: tall_skinny::boxed_zeroed::<[$t; $net::N_PARAMS]>(),
                }
            }
        }
        impl Arch for Holder<$net, $ws, $curv, [$t; $net::N_PARAMS]> {
            fn n(&self) -> usize {
                $net::N_PARAMS
            }
            fn u(&self) -> f64 {
                <$t>::EPSILON as f64 / 2.0
            }
            fn set(&mut self, p: &[f64]) -> Result<(), NetError> {
                for (a, p) in self.a.iter_mut().zip(p) {
                    *a = *p as $t;
                }
                self.net.set_params(&self.a)
            }
            fn loss(&mut self, x: &[f64], t: &Target) -> Result<f64, NetError> {
                let x = crate::common::Batch::from_flat(x);
                let t = crate::common::FromTarget::from_target(t);
                Ok(self.net.loss(&x, &t)? as f64)
            }
            fn gradient(&mut self, x: &[f64], t: &Target, g: &mut [f64]) -> Result<f64, NetError> {
                let x = crate::common::Batch::from_flat(x);
                let t = crate::common::FromTarget::from_target(t);
                let l = self.net.gradient_in(&mut self.ws, &x, &t, &mut self.a)?;
                for (g, a) in g.iter_mut().zip(self.a.iter()) {
                    *g = *a as f64;
                }
                Ok(l as f64)
            }
            fn hvp(
                &mut self,
                x: &[f64],
                t: &Target,
                v: &[f64],
                out: &mut [f64],
            ) -> Result<(), NetError> {
                let x = crate::common::Batch::from_flat(x);
                let t = crate::common::FromTarget::from_target(t);
                for (a, v) in self.a.iter_mut().zip(v) {
                    *a = *v as $t;
                }
                self.net
                    .hvp_in(&mut self.ws, &x, &t, &self.a, &mut self.b)?;
                for (o, b) in out.iter_mut().zip(self.b.iter()) {
                    *o = *b as f64;
                }
                Ok(())
            }
            fn solve(
                &mut self,
                x: &[f64],
                t: &Target,
                eps: f64,
                b: &[f64],
                out: &mut [f64],
            ) -> Result<Inertia, SolveError> {
                let x = crate::common::Batch::from_flat(x);
                let t = crate::common::FromTarget::from_target(t);
                for (a, b) in self.a.iter_mut().zip(b) {
                    *a = *b as $t;
                }
                let inertia = self.net.hessian_solve_in(
                    &mut self.curv,
                    &x,
                    &t,
                    eps as $t,
                    &self.a,
                    &mut self.b,
                )?;
                for (o, b) in out.iter_mut().zip(self.b.iter()) {
                    *o = *b as f64;
                }
                Ok(inertia)
            }
        }
    };
}

/// `arch!(name, Net, NetWorkspace, NetCurvature, batch, { fields })`: the f64 net, a test of
/// its first weight draw and an ignored test of the others.
macro_rules! arch {
    ($name:ident, $net:ident, $ws:ident, $curv:ident, $batch:literal, { $($fields:tt)* }) => {
        mod $name {
            use super::*;
            #[tall_skinny_net(batch = $batch)]
            pub struct $net { $($fields)* }
            impl_arch!($net, $ws, $curv, f64);
            fn run(draws: std::ops::Range<usize>) {
                let d = desc(stringify!($name));
                let mut net = Holder::<$net, $ws, $curv, [f64; $net::N_PARAMS]>::new();
                assert_eq!($net::N_PARAMS, d.spec().n_params());
                assert_eq!($net::DEPTH, d.depth());
                check_f64(&d, draws, &mut net);
            }
            #[test]
            fn first_draw() {
                run(0..1);
            }
            #[test]
            #[ignore = "long tail: cargo test --release --test it random_archs:: -- --ignored"]
            fn other_draws() {
                run(1..usize::MAX);
            }
        }
    };
}

/// `arch32!(name, Net, Ws, Curv, Twin, TwinWs, TwinCurv, batch, { fields })`: the f32 net
/// and its f64 twin.
macro_rules! arch32 {
    ($name:ident, $net:ident, $ws:ident, $curv:ident, $twin:ident, $tws:ident, $tcurv:ident,
     $batch:literal, { $($fields:tt)* }) => {
        mod $name {
            use super::*;
            #[tall_skinny_net(batch = $batch, scalar = f32)]
            pub struct $net { $($fields)* }
            #[tall_skinny_net(batch = $batch, scalar = f64)]
            pub struct $twin { $($fields)* }
            impl_arch!($net, $ws, $curv, f32);
            impl_arch!($twin, $tws, $tcurv, f64);
            fn run(draws: std::ops::Range<usize>) {
                let d = desc(stringify!($name));
                let mut net = Holder::<$net, $ws, $curv, [f32; $net::N_PARAMS]>::new();
                let mut twin = Holder::<$twin, $tws, $tcurv, [f64; $twin::N_PARAMS]>::new();
                assert_eq!($net::N_PARAMS, d.spec().n_params());
                check_f64(&d, draws.clone(), &mut twin);
                check_f32(&d, draws, &mut net, &mut twin);
            }
            #[test]
            fn first_draw() {
                run(0..1);
            }
            #[test]
            #[ignore = "long tail: cargo test --release --test it random_archs:: -- --ignored"]
            fn other_draws() {
                run(1..usize::MAX);
            }
        }
    };
}

include!("random_archs/generated.rs");

// ---------------------------------------------------------------------------------------------
// The checks

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}
fn unit(rng: &mut Rng, n: usize) -> Vec<f64> {
    let v = rng.vec(n, 1.0);
    let s = norm(&v);
    v.iter().map(|x| x / s).collect()
}

/// Weights with pre-activations of order one at any depth: `W` uniform with half-width
/// `1.2 / sqrt(I)`, biases in `[-0.5, 0.5]`; residual branches scaled by
/// `1 / sqrt(#residual stages)` so a 126-stage residual stack neither explodes nor vanishes.
fn draw_params(spec: &Spec, rng: &mut Rng) -> Vec<f64> {
    let residuals = spec
        .layers
        .iter()
        .filter(|l| l.kind == Kind::Residual)
        .count()
        .max(1);
    let mut p = Vec::with_capacity(spec.n_params());
    for l in &spec.layers {
        let s = if l.kind == Kind::Residual {
            1.0 / (residuals as f64).sqrt()
        } else {
            1.0
        };
        let a = 1.2 * s / (l.inputs as f64).sqrt();
        for _ in 0..l.outputs * l.inputs {
            p.push(a * rng.sym());
        }
        if l.bias() {
            for _ in 0..l.outputs {
                p.push(0.5 * s * rng.sym());
            }
        }
    }
    p
}

/// One problem: parameters, inputs, targets for a weight-draw seed.
fn problem(spec: &Spec, seed: u64) -> (Vec<f64>, Vec<f64>, Target) {
    let mut rng = Rng::new(seed);
    let p = draw_params(spec, &mut rng);
    let x = rng.vec(spec.batch * spec.inputs(), 1.0);
    let t = random_target(spec, &mut rng);
    (p, x, t)
}

/// One measured error and its bar, printed and asserted.
fn bar(what: &str, err: f64, tol: f64) {
    println!(
        "    {what:<34} err {err:10.3e}  bar {tol:10.3e}  ({:5.1}% of bar)",
        100.0 * err / tol
    );
    assert!(err <= tol, "{what}: error {err:e} exceeds its bar {tol:e}");
    assert!(err.is_finite());
}

/// `|H|_2` from below: 30 steps of power iteration with `hvp`.
fn norm_h(arch: &mut dyn Arch, x: &[f64], t: &Target, rng: &mut Rng) -> f64 {
    let n = arch.n();
    let mut v = unit(rng, n);
    let mut hv = vec![0.0; n];
    let mut est: f64 = 0.0;
    for _ in 0..30 {
        arch.hvp(x, t, &v, &mut hv).unwrap();
        let s = norm(&hv);
        est = est.max(s);
        if s == 0.0 {
            break;
        }
        v = hv.iter().map(|h| h / s).collect();
    }
    est
}

/// Central difference `(f(p + h d) - f(p - h d)) / 2h` of a vector-valued `f`.
fn central(f: &mut dyn FnMut(&[f64]) -> Vec<f64>, p: &[f64], d: &[f64], h: f64) -> Vec<f64> {
    let plus: Vec<f64> = p.iter().zip(d).map(|(p, d)| p + h * d).collect();
    let minus: Vec<f64> = p.iter().zip(d).map(|(p, d)| p - h * d).collect();
    let (a, b) = (f(&plus), f(&minus));
    a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

/// `analytic` against central differences of `f` along `d` at steps `h`, `h/2`; `scale_f`
/// is the size of the differenced values. See the module docs for the bar.
fn fd_bar(
    what: &str,
    analytic: &[f64],
    f: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    p: &[f64],
    d: &[f64],
    scale_f: f64,
    tol: f64,
) {
    let h = 1e-4 * (1.0 + norm(p) / (p.len() as f64).sqrt());
    let d1 = central(f, p, d, h);
    let d2 = central(f, p, d, h / 2.0);
    let trunc = 3.0 * dist(&d1, &d2);
    let noise = tol * scale_f / (h / 2.0);
    bar(
        what,
        dist(analytic, &d2),
        trunc + noise + tol * norm(analytic),
    );
}

fn check_f64(desc: &Desc, draws: std::ops::Range<usize>, arch: &mut dyn Arch) {
    let spec = desc.spec();
    let n = arch.n();
    let u = arch.u();
    let tol = 2000.0 * u * (n as f64).sqrt();
    for &seed in desc.seeds.iter().skip(draws.start).take(draws.len()) {
        println!(
            "{} (f64) seed {seed}: depth {}, N {n}, batch {}",
            desc.name,
            desc.depth(),
            desc.batch
        );
        let (p, x, t) = problem(&spec, seed);
        let mut rng = Rng::new(seed ^ 0xD1F);
        arch.set(&p).unwrap();
        let l = arch.loss(&x, &t).unwrap();
        let l_ref = ref_loss(&spec, &p, &x, &t);
        bar(
            "loss vs reference",
            (l - l_ref).abs(),
            tol * l_ref.abs().max(f64::MIN_POSITIVE),
        );
        let mut g = vec![0.0; n];
        let lg = arch.gradient(&x, &t, &mut g).unwrap();
        bar(
            "gradient's loss vs loss",
            (lg - l).abs(),
            tol * l.abs().max(f64::MIN_POSITIVE),
        );

        // gradient and hvp against central differences
        for k in 0..2 {
            let d = unit(&mut rng, n);
            let mut loss_at = |q: &[f64]| {
                arch.set(q).unwrap();
                vec![arch.loss(&x, &t).unwrap()]
            };
            fd_bar(
                &format!("gradient . d{k} vs FD of loss"),
                &[dot(&g, &d)],
                &mut loss_at,
                &p,
                &d,
                l.abs(),
                tol,
            );
            let mut hd = vec![0.0; n];
            arch.set(&p).unwrap();
            arch.hvp(&x, &t, &d, &mut hd).unwrap();
            let mut grad_at = |q: &[f64]| {
                arch.set(q).unwrap();
                let mut gq = vec![0.0; n];
                arch.gradient(&x, &t, &mut gq).unwrap();
                gq
            };
            fd_bar(
                &format!("hvp(d{k}) vs FD of gradient"),
                &hd,
                &mut grad_at,
                &p,
                &d,
                norm(&g),
                tol,
            );
            arch.set(&p).unwrap();
        }

        // the solve
        let b = rng.vec(n, 1.0);
        if n <= DENSE_MAX {
            let (h, asym) = dense_from_hvp(n, |v, out| arch.hvp(&x, &t, v, out).unwrap());
            bar("dense H asymmetry", asym, tol);
            let eig = sym_eigenvalues(&h);
            let nh = eig
                .iter()
                .map(|l| l.abs())
                .fold(0.0, f64::max)
                .max(f64::MIN_POSITIVE);
            for rho in [1e-1, 1e-4] {
                let eps = rho * nh;
                let mut xs = vec![0.0; n];
                let inertia = arch.solve(&x, &t, eps, &b, &mut xs).unwrap();
                let x_lu = lu_solve(&h, eps, &b);
                let c = cond(&eig, eps);
                bar(
                    &format!("solve vs LU, eps {rho:.0e}|H| (cond {c:.1e})"),
                    rel_err(&xs, &x_lu),
                    (100.0 * (n as f64).sqrt() * u * c).min(1.0),
                );
                if let Some((neg, zero, pos)) = inertia_of(&eig, eps, 1e3 * u * n as f64 * nh) {
                    assert_eq!(
                        (inertia.negative, inertia.zero, inertia.positive),
                        (neg, zero, pos),
                        "inertia at eps {eps:e}"
                    );
                }
            }
        } else {
            let nh = norm_h(arch, &x, &t, &mut rng).max(f64::MIN_POSITIVE);
            for rho in [1e-1, 1e-4] {
                let eps = rho * nh;
                let mut xs = vec![0.0; n];
                arch.solve(&x, &t, eps, &b, &mut xs).unwrap();
                let mut r = vec![0.0; n];
                arch.hvp(&x, &t, &xs, &mut r).unwrap();
                for i in 0..n {
                    r[i] += eps * xs[i] - b[i];
                }
                let eta = norm(&r) / ((nh + eps) * norm(&xs) + norm(&b));
                bar(
                    &format!("solve backward error, eps {rho:.0e}|H|"),
                    eta,
                    100.0 * (n as f64).sqrt() * u,
                );
            }
        }
    }
}

fn check_f32(desc: &Desc, draws: std::ops::Range<usize>, net: &mut dyn Arch, twin: &mut dyn Arch) {
    let spec = desc.spec();
    let n = net.n();
    let u = net.u();
    let tol = 2000.0 * u * (n as f64).sqrt();
    for &seed in desc.seeds.iter().skip(draws.start).take(draws.len()) {
        println!(
            "{} (f32 vs f64 twin) seed {seed}: depth {}, N {n}, batch {}",
            desc.name,
            desc.depth(),
            desc.batch
        );
        let (p, x, t) = problem(&spec, seed);
        // rounded to f32 (the only non-f64 scalar)
        let r = |v: Vec<f64>| -> Vec<f64> { v.iter().map(|x| *x as f32 as f64).collect() };
        let (p, x) = (r(p), r(x));
        let t = match t {
            Target::Mse(v) => Target::Mse(r(v)),
            l => l,
        };
        let mut rng = Rng::new(seed ^ 0xF32);
        net.set(&p).unwrap();
        twin.set(&p).unwrap();
        let (l32, l64) = (net.loss(&x, &t).unwrap(), twin.loss(&x, &t).unwrap());
        bar(
            "f32 loss vs f64",
            (l32 - l64).abs(),
            tol * l64.abs().max(f64::MIN_POSITIVE),
        );
        let (mut g32, mut g64) = (vec![0.0; n], vec![0.0; n]);
        net.gradient(&x, &t, &mut g32).unwrap();
        twin.gradient(&x, &t, &mut g64).unwrap();
        bar("f32 gradient vs f64", dist(&g32, &g64), tol * norm(&g64));
        let v = r(rng.vec(n, 1.0));
        let (mut h32, mut h64) = (vec![0.0; n], vec![0.0; n]);
        net.hvp(&x, &t, &v, &mut h32).unwrap();
        twin.hvp(&x, &t, &v, &mut h64).unwrap();
        bar("f32 hvp vs f64", dist(&h32, &h64), tol * norm(&h64));

        let b = r(rng.vec(n, 1.0));
        let dense = (n <= DENSE_MAX).then(|| {
            let (h, _) = dense_from_hvp(n, |v, out| twin.hvp(&x, &t, v, out).unwrap());
            sym_eigenvalues(&h)
        });
        let nh = match &dense {
            Some(eig) => eig.iter().map(|l| l.abs()).fold(0.0, f64::max),
            None => norm_h(twin, &x, &t, &mut rng),
        }
        .max(f64::MIN_POSITIVE);
        // f32 is for well-conditioned shifts (README, known limits): eps lifts the most
        // negative eigenvalue to rho |H| (cond(H + eps I) <= (2 + rho) / rho); without the
        // dense eigenvalues, -|H| stands for the most negative one.
        let lift = match &dense {
            Some(eig) => (-eig[0]).max(0.0),
            None => nh,
        };
        for rho in [1.0, 1e-1] {
            // eps as the f32 net sees it
            let eps = (lift + rho * nh) as f32 as f64;
            let (mut x32, mut x64) = (vec![0.0; n], vec![0.0; n]);
            net.solve(&x, &t, eps, &b, &mut x32).unwrap();
            twin.solve(&x, &t, eps, &b, &mut x64).unwrap();
            match &dense {
                Some(eig) => {
                    let c = cond(eig, eps);
                    bar(
                        &format!("f32 solve vs f64, eps {rho:.0e}|H| (cond {c:.1e})"),
                        rel_err(&x32, &x64),
                        (c * tol).min(1.0),
                    );
                }
                None => {
                    let mut res = vec![0.0; n];
                    twin.hvp(&x, &t, &x32, &mut res).unwrap();
                    for i in 0..n {
                        res[i] += eps * x32[i] - b[i];
                    }
                    let eta = norm(&res) / ((nh + eps) * norm(&x32) + norm(&b));
                    bar(
                        &format!("f32 solve backward error, eps {rho:.0e}|H|"),
                        eta,
                        tol,
                    );
                }
            }
        }
    }
}
