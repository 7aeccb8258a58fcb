//! An independent reference for the code `#[tall_skinny_net]` generates.
//!
//! A network is described here a second time, as plain data ([`Spec`]: a list of layers and
//! a loss), and evaluated from the flat parameter vector in the documented layout (layers in
//! declaration order, array elements in order; within a layer `W` row-major, `W[k][i]` at
//! `k * I + i`, then the bias). The evaluation is generic over num-dual's [`DualNum`], so
//! the same few lines give the loss (`f64`), the gradient (`DualVec`), the dense Hessian
//! (`Dual2Vec`), and `H v` (`HyperDualVec`, forward over forward).
//!
//! Nothing here calls the generated code or the runtime kernels: the activations and the
//! losses are written out again from their formulas.
//!
//! Relu: the reference's `max(u, 0)` is also piecewise linear, so its second derivative is 0
//! exactly as the runtime's convention; at a kink (`u == 0` exactly) both take `f' = 0`.
//! Tests keep pre-activations away from kinks (see [`Eval::min_kink`]) so that finite
//! differences, which step across a small neighbourhood, stay valid.

use nalgebra::{DMatrix, DVector, Dyn, U1};
use num_dual::{Dual2Vec64, DualNum, DualVec64, HyperDual64, HyperDualVec64};

// ---------------------------------------------------------------------------------------------
// Description of a network

/// An elementwise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Identity,
    Tanh,
    Sigmoid,
    Softplus,
    Relu,
    Gelu,
    Silu,
    Sin,
}

/// What a layer computes (`u = W z (+ b)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `act(W z + b)`
    Dense,
    /// `act(W z)`
    DenseNoBias,
    /// `z + act(W z + b)`
    Residual,
}

/// One layer (one element of an array of layers).
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    pub kind: Kind,
    pub inputs: usize,
    pub outputs: usize,
    pub act: Act,
}

impl LayerSpec {
    pub fn bias(&self) -> bool {
        self.kind != Kind::DenseNoBias
    }
    pub fn n_params(&self) -> usize {
        self.outputs * self.inputs + if self.bias() { self.outputs } else { 0 }
    }
}

/// The loss head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossSpec {
    /// `1/(2B) sum_n |u_n - t_n|^2`
    Mse(usize),
    /// `1/B sum_n (logsumexp(u_n) - u_n[t_n])`
    Softmax(usize),
}

/// A chain network: layers in order, then the loss, evaluated on a batch of `batch` samples.
#[derive(Clone, Debug)]
pub struct Spec {
    pub layers: Vec<LayerSpec>,
    pub loss: LossSpec,
    pub batch: usize,
}

pub fn dense(i: usize, o: usize, act: Act) -> Vec<LayerSpec> {
    vec![LayerSpec {
        kind: Kind::Dense,
        inputs: i,
        outputs: o,
        act,
    }]
}
pub fn nobias(i: usize, o: usize, act: Act) -> Vec<LayerSpec> {
    vec![LayerSpec {
        kind: Kind::DenseNoBias,
        inputs: i,
        outputs: o,
        act,
    }]
}
pub fn res(w: usize, act: Act) -> Vec<LayerSpec> {
    vec![LayerSpec {
        kind: Kind::Residual,
        inputs: w,
        outputs: w,
        act,
    }]
}
/// `[layer; n]`
pub fn times(n: usize, layer: Vec<LayerSpec>) -> Vec<LayerSpec> {
    (0..n).flat_map(|_| layer.clone()).collect()
}

impl Spec {
    pub fn new(parts: Vec<Vec<LayerSpec>>, loss: LossSpec, batch: usize) -> Self {
        let layers: Vec<LayerSpec> = parts.into_iter().flatten().collect();
        for w in layers.windows(2) {
            assert_eq!(w[0].outputs, w[1].inputs, "reference spec does not chain");
        }
        for l in &layers {
            if l.kind == Kind::Residual {
                assert_eq!(l.inputs, l.outputs);
            }
        }
        let s = Spec {
            layers,
            loss,
            batch,
        };
        assert_eq!(s.layers.last().unwrap().outputs, s.outputs(), "loss width");
        s
    }
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }
    pub fn outputs(&self) -> usize {
        match self.loss {
            LossSpec::Mse(o) | LossSpec::Softmax(o) => o,
        }
    }
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(LayerSpec::n_params).sum()
    }
    /// Offset of each layer (element) in the flat parameter vector.
    pub fn offsets(&self) -> Vec<usize> {
        let mut off = 0;
        self.layers
            .iter()
            .map(|l| {
                let o = off;
                off += l.n_params();
                o
            })
            .collect()
    }
    pub fn acts(&self) -> Vec<Act> {
        self.layers.iter().map(|l| l.act).collect()
    }
}

/// Targets of a batch: regression rows (flat, sample-major) or class labels.
#[derive(Clone, Debug)]
pub enum Target {
    Mse(Vec<f64>),
    Labels(Vec<usize>),
}

// ---------------------------------------------------------------------------------------------
// The activations and losses, written out from their formulas

const GELU_A: f64 = 0.044715;

fn sigmoid<D: DualNum<Primitive = f64>>(x: &D) -> D {
    // 1 / (1 + e^-x)
    ((-x.clone()).exp() + 1.0).recip()
}

/// `act(x)` over any dual number type.
pub fn act<D: DualNum<Primitive = f64>>(a: Act, x: D) -> D {
    match a {
        Act::Identity => x,
        Act::Tanh => x.tanh(),
        Act::Sigmoid => sigmoid(&x),
        // ln(1 + e^x), arranged so that e^x never overflows: x + ln(1 + e^-x) for x > 0.
        Act::Softplus => {
            if x.re() > 0.0 {
                x.clone() + (-x).exp().ln_1p()
            } else {
                x.exp().ln_1p()
            }
        }
        Act::Relu => {
            if x.re() > 0.0 {
                x
            } else {
                D::from(0.0)
            }
        }
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        Act::Gelu => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let inner = (x.clone() + x.powi(3) * GELU_A) * k;
            x * 0.5 * (inner.tanh() + 1.0)
        }
        // x * sigmoid(x)
        Act::Silu => {
            let s = sigmoid(&x);
            x * s
        }
        Act::Sin => x.sin(),
    }
}

/// What one evaluation of the reference produced.
pub struct Eval<D> {
    /// Network outputs, flat sample-major (`batch * outputs`).
    pub outputs: Vec<D>,
    /// The loss.
    pub loss: D,
    /// Smallest `|u|` over every pre-activation of a Relu layer (`inf` without Relu layers):
    /// the distance to the nearest kink.
    pub min_kink: f64,
}

/// Evaluates the network described by `spec` with flat parameters `p` on the batch `x`
/// (flat, sample-major) and targets `t`, over the number type `D`.
pub fn evaluate<D: DualNum<Primitive = f64>>(
    spec: &Spec,
    p: &[D],
    x: &[f64],
    t: &Target,
) -> Eval<D> {
    assert_eq!(p.len(), spec.n_params(), "parameter vector length");
    let (b, ni, no) = (spec.batch, spec.inputs(), spec.outputs());
    assert_eq!(x.len(), b * ni, "input length");
    let offsets = spec.offsets();
    let mut outputs = Vec::with_capacity(b * no);
    let mut min_kink = f64::INFINITY;
    for n in 0..b {
        let mut z: Vec<D> = x[n * ni..(n + 1) * ni]
            .iter()
            .map(|&v| D::from(v))
            .collect();
        for (l, &off) in spec.layers.iter().zip(&offsets) {
            let (li, lo) = (l.inputs, l.outputs);
            let mut f = Vec::with_capacity(lo);
            for k in 0..lo {
                let mut u = if l.bias() {
                    p[off + lo * li + k].clone()
                } else {
                    D::from(0.0)
                };
                for i in 0..li {
                    u += p[off + k * li + i].clone() * &z[i];
                }
                if l.act == Act::Relu {
                    min_kink = min_kink.min(u.re().abs());
                }
                let mut fk = act(l.act, u);
                if l.kind == Kind::Residual {
                    fk += z[k].clone();
                }
                f.push(fk);
            }
            z = f;
        }
        outputs.extend(z);
    }
    let inv_b = 1.0 / b as f64;
    let loss = match (spec.loss, t) {
        (LossSpec::Mse(o), Target::Mse(tt)) => {
            assert_eq!(tt.len(), b * o);
            let mut acc = D::from(0.0);
            for (u, &tv) in outputs.iter().zip(tt) {
                let e = u.clone() - tv;
                acc += e.clone() * e;
            }
            acc * (0.5 * inv_b)
        }
        (LossSpec::Softmax(c), Target::Labels(labels)) => {
            assert_eq!(labels.len(), b);
            let mut acc = D::from(0.0);
            for n in 0..b {
                let u = &outputs[n * c..(n + 1) * c];
                // logsumexp, shifted by a constant (the largest value) so exp cannot overflow
                let m = u.iter().map(|v| v.re()).fold(f64::NEG_INFINITY, f64::max);
                let mut s = D::from(0.0);
                for v in u {
                    s += (v.clone() - m).exp();
                }
                acc += s.ln() + m - u[labels[n]].clone();
            }
            acc * inv_b
        }
        _ => panic!("target kind does not match the loss"),
    };
    Eval {
        outputs,
        loss,
        min_kink,
    }
}

/// Loss, outputs and kink distance in plain `f64`.
pub fn ref_eval(spec: &Spec, p: &[f64], x: &[f64], t: &Target) -> Eval<f64> {
    evaluate::<f64>(spec, p, x, t)
}

/// The loss in plain `f64`.
pub fn ref_loss(spec: &Spec, p: &[f64], x: &[f64], t: &Target) -> f64 {
    ref_eval(spec, p, x, t).loss
}

/// Loss and gradient by forward-mode dual vectors (one evaluation, `N` tangents).
pub fn ref_gradient(spec: &Spec, p: &[f64], x: &[f64], t: &Target) -> (f64, Vec<f64>) {
    let pv = DVector::from_column_slice(p);
    let (f, g) = num_dual::gradient(
        |q: DVector<DualVec64<Dyn>>| evaluate(spec, q.as_slice(), x, t).loss,
        &pv,
    );
    (f, g.as_slice().to_vec())
}

/// The dense Hessian by scalar hyper-dual numbers, one entry per evaluation: `H[i][j]` is the
/// `eps1 eps2` part of the loss with `eps1` seeded on parameter `i` and `eps2` on `j`
/// (`N (N + 1) / 2` evaluations of `O(N B)` each; no allocation per operation, so it stays
/// fast in debug builds). Also returns the loss.
pub fn ref_hessian(spec: &Spec, p: &[f64], x: &[f64], t: &Target) -> (f64, DMatrix<f64>) {
    let n = p.len();
    let mut q: Vec<HyperDual64> = p.iter().map(|&v| HyperDual64::from_re(v)).collect();
    let mut h = DMatrix::zeros(n, n);
    let mut loss = f64::NAN;
    for i in 0..n {
        q[i].eps1 = 1.0;
        for j in i..n {
            q[j].eps2 = 1.0;
            let l = evaluate(spec, &q, x, t).loss;
            loss = l.re;
            h[(i, j)] = l.eps1eps2;
            h[(j, i)] = l.eps1eps2;
            q[j].eps2 = 0.0;
        }
        q[i].eps1 = 0.0;
    }
    (loss, h)
}

/// Loss, gradient and the dense Hessian in one evaluation by second-order dual vectors
/// (`Dual2Vec`; `O(N^2)` work per operation, for small nets: a second, independent route).
pub fn ref_hessian_dual2(
    spec: &Spec,
    p: &[f64],
    x: &[f64],
    t: &Target,
) -> (f64, Vec<f64>, DMatrix<f64>) {
    let pv = DVector::from_column_slice(p);
    let (f, g, h) = num_dual::hessian(
        |q: DVector<Dual2Vec64<Dyn>>| evaluate(spec, q.as_slice(), x, t).loss,
        &pv,
    );
    (f, g.as_slice().to_vec(), h)
}

/// `H v` without forming `H`: the mixed second derivative `d2/ds dp l(p + s v)` at `s = 0`,
/// by hyper-dual numbers (`eps1` along `s`, `eps2` along every parameter).
pub fn ref_hvp(spec: &Spec, p: &[f64], x: &[f64], t: &Target, v: &[f64]) -> Vec<f64> {
    type H = HyperDualVec64<U1, Dyn>;
    let s0 = nalgebra::SVector::<f64, 1>::zeros();
    let pv = DVector::from_column_slice(p);
    let (_, _, _, hv) = num_dual::partial_hessian(
        |(s, q): (nalgebra::SVector<H, 1>, DVector<H>)| {
            let shifted: Vec<_> = q
                .iter()
                .zip(v)
                .map(|(qi, &vi)| qi.clone() + s[0].clone() * vi)
                .collect();
            evaluate(spec, &shifted, x, t).loss
        },
        (&s0, &pv),
    );
    hv.as_slice().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Vectors, norms, random numbers

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
pub fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}
/// `H v` with the dense matrix.
pub fn matvec(h: &DMatrix<f64>, v: &[f64]) -> Vec<f64> {
    (h * DVector::from_column_slice(v)).as_slice().to_vec()
}
/// `|H| |v|` (entrywise absolute values): the scale of the rounding error of a product `H v`.
pub fn abs_matvec(h: &DMatrix<f64>, v: &[f64]) -> Vec<f64> {
    let va: Vec<f64> = v.iter().map(|x| x.abs()).collect();
    (h.abs() * DVector::from_column_slice(&va))
        .as_slice()
        .to_vec()
}

/// SplitMix64, written out here so the tests share no code with the crate under test.
#[derive(Clone, Debug)]
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-1, 1)`.
    pub fn sym(&mut self) -> f64 {
        2.0 * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| scale * self.sym()).collect()
    }
}

/// Random parameters with pre-activations of order one: `W` uniform with half-width
/// `gain / sqrt(I)` (`0.7 / sqrt(I)` on residual branches), biases uniform in `[-0.5, 0.5]`.
pub fn random_params(spec: &Spec, rng: &mut Rng, gain: f64) -> Vec<f64> {
    let mut p = Vec::with_capacity(spec.n_params());
    for l in &spec.layers {
        let g = if l.kind == Kind::Residual {
            0.7 * gain.min(1.0)
        } else {
            gain
        };
        let a = g / (l.inputs as f64).sqrt();
        for _ in 0..l.outputs * l.inputs {
            p.push(a * rng.sym());
        }
        if l.bias() {
            for _ in 0..l.outputs {
                p.push(0.5 * rng.sym());
            }
        }
    }
    p
}

/// Random targets for `spec`'s loss.
pub fn random_target(spec: &Spec, rng: &mut Rng) -> Target {
    match spec.loss {
        LossSpec::Mse(o) => Target::Mse(rng.vec(spec.batch * o, 1.0)),
        LossSpec::Softmax(c) => Target::Labels((0..spec.batch).map(|_| rng.below(c)).collect()),
    }
}

// ---------------------------------------------------------------------------------------------
// A uniform, f64-valued view of every generated network

use tall_skinny::NetError;

/// The scalar type of a generated network, seen from the tests.
pub trait Scalar: Copy + 'static {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}
impl Scalar for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}
impl Scalar for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// `[T; N]` from and to a flat `f64` slice.
pub trait Flat: Sized {
    fn from_flat(v: &[f64]) -> Self;
    fn to_flat(&self) -> Vec<f64>;
}
impl<T: Scalar, const N: usize> Flat for [T; N] {
    fn from_flat(v: &[f64]) -> Self {
        assert_eq!(v.len(), N);
        core::array::from_fn(|i| T::from_f64(v[i]))
    }
    fn to_flat(&self) -> Vec<f64> {
        self.iter().map(|x| x.to_f64()).collect()
    }
}

/// `[[T; W]; B]` from and to a flat sample-major `f64` slice.
pub trait Batch: Sized {
    fn from_flat(v: &[f64]) -> Self;
    fn to_flat(&self) -> Vec<f64>;
}
impl<T: Scalar, const W: usize, const B: usize> Batch for [[T; W]; B] {
    fn from_flat(v: &[f64]) -> Self {
        assert_eq!(v.len(), W * B);
        core::array::from_fn(|n| core::array::from_fn(|i| T::from_f64(v[n * W + i])))
    }
    fn to_flat(&self) -> Vec<f64> {
        self.iter().flatten().map(|x| x.to_f64()).collect()
    }
}

/// A generated network's target type from a [`Target`].
pub trait FromTarget: Sized {
    fn from_target(t: &Target) -> Self;
}
impl<T: Scalar, const O: usize, const B: usize> FromTarget for [[T; O]; B] {
    fn from_target(t: &Target) -> Self {
        match t {
            Target::Mse(v) => Batch::from_flat(v),
            Target::Labels(_) => panic!("labels given to a regression net"),
        }
    }
}
impl<const B: usize> FromTarget for [usize; B] {
    fn from_target(t: &Target) -> Self {
        match t {
            Target::Labels(v) => v.as_slice().try_into().expect("batch size"),
            Target::Mse(_) => panic!("regression targets given to a classifier"),
        }
    }
}

/// `((loss, gradient), H v)`.
pub type GradHvp = ((f64, Vec<f64>), Vec<f64>);

/// A generated network, with every value passed as `f64` (rounded to the network's scalar on
/// the way in, so callers round first with [`Subject::round`] to evaluate the reference on
/// exactly the numbers the network sees).
pub trait Subject: Sized {
    const NAME: &'static str;
    /// Unit roundoff of the network's scalar.
    const EPS: f64;
    fn spec() -> Spec;
    /// `(N_PARAMS, INPUTS, OUTPUTS, BATCH, DEPTH)` as generated.
    fn consts() -> (usize, usize, usize, usize, usize);
    fn round(x: f64) -> f64;
    fn with_params(p: &[f64]) -> Result<Self, NetError>;
    fn set(&mut self, p: &[f64]) -> Result<(), NetError>;
    fn get(&self) -> Vec<f64>;
    fn check(&self) -> Result<(), NetError>;
    fn forward(&self, x: &[f64]) -> Result<Vec<f64>, NetError>;
    fn loss(&self, x: &[f64], t: &Target) -> Result<f64, NetError>;
    fn gradient(&self, x: &[f64], t: &Target) -> Result<(f64, Vec<f64>), NetError>;
    fn hvp(&self, x: &[f64], t: &Target, v: &[f64]) -> Result<Vec<f64>, NetError>;
    /// `gradient_in` and `hvp_in` with a workspace left dirty by calls on other data
    /// (`x2`, `v2`); the results must not depend on what the workspace held.
    fn dirty_workspace(
        &self,
        x: &[f64],
        t: &Target,
        v: &[f64],
        x2: &[f64],
        v2: &[f64],
    ) -> Result<GradHvp, NetError>;
}

/// Implements [`Subject`] for a generated network: `subject!(Net, NetWorkspace, f64, spec)`.
macro_rules! subject {
    ($net:ident, $ws:ident, $t:ty, $spec:expr) => {
        impl $crate::common::Subject for $net {
            const NAME: &'static str = stringify!($net);
            const EPS: f64 = <$t>::EPSILON as f64 / 2.0;
            fn spec() -> $crate::common::Spec {
                $spec
            }
            fn consts() -> (usize, usize, usize, usize, usize) {
                (
                    $net::N_PARAMS,
                    $net::INPUTS,
                    $net::OUTPUTS,
                    $net::BATCH,
                    $net::DEPTH,
                )
            }
            fn round(x: f64) -> f64 {
                (x as $t) as f64
            }
            fn with_params(p: &[f64]) -> Result<Self, tall_skinny::NetError> {
                let mut net = $net::ZERO;
                net.set_params(&$crate::common::Flat::from_flat(p))?;
                Ok(net)
            }
            fn set(&mut self, p: &[f64]) -> Result<(), tall_skinny::NetError> {
                self.set_params(&$crate::common::Flat::from_flat(p))
            }
            fn get(&self) -> Vec<f64> {
                let mut out = [<$t>::default(); $net::N_PARAMS];
                self.params(&mut out);
                $crate::common::Flat::to_flat(&out)
            }
            fn check(&self) -> Result<(), tall_skinny::NetError> {
                self.check_params()
            }
            fn forward(&self, x: &[f64]) -> Result<Vec<f64>, tall_skinny::NetError> {
                let out = $net::forward(self, &$crate::common::Batch::from_flat(x))?;
                Ok($crate::common::Batch::to_flat(&out))
            }
            fn loss(
                &self,
                x: &[f64],
                t: &$crate::common::Target,
            ) -> Result<f64, tall_skinny::NetError> {
                let l = $net::loss(
                    self,
                    &$crate::common::Batch::from_flat(x),
                    &$crate::common::FromTarget::from_target(t),
                )?;
                Ok(l as f64)
            }
            fn gradient(
                &self,
                x: &[f64],
                t: &$crate::common::Target,
            ) -> Result<(f64, Vec<f64>), tall_skinny::NetError> {
                let mut g = [<$t>::default(); $net::N_PARAMS];
                let l = $net::gradient(
                    self,
                    &$crate::common::Batch::from_flat(x),
                    &$crate::common::FromTarget::from_target(t),
                    &mut g,
                )?;
                Ok((l as f64, $crate::common::Flat::to_flat(&g)))
            }
            fn hvp(
                &self,
                x: &[f64],
                t: &$crate::common::Target,
                v: &[f64],
            ) -> Result<Vec<f64>, tall_skinny::NetError> {
                let mut out = [<$t>::default(); $net::N_PARAMS];
                $net::hvp(
                    self,
                    &$crate::common::Batch::from_flat(x),
                    &$crate::common::FromTarget::from_target(t),
                    &$crate::common::Flat::from_flat(v),
                    &mut out,
                )?;
                Ok($crate::common::Flat::to_flat(&out))
            }
            fn dirty_workspace(
                &self,
                x: &[f64],
                t: &$crate::common::Target,
                v: &[f64],
                x2: &[f64],
                v2: &[f64],
            ) -> Result<$crate::common::GradHvp, tall_skinny::NetError> {
                use $crate::common::{Batch, Flat, FromTarget};
                let mut ws = tall_skinny::boxed_zeroed::<$ws>();
                let (xa, xb) = (Batch::from_flat(x), Batch::from_flat(x2));
                let tt = FromTarget::from_target(t);
                let (va, vb) = (Flat::from_flat(v), Flat::from_flat(v2));
                let mut g = [<$t>::default(); $net::N_PARAMS];
                let mut hv = [<$t>::default(); $net::N_PARAMS];
                // dirty the workspace with other data, then run on the real data
                self.hvp_in(&mut ws, &xb, &tt, &vb, &mut hv)?;
                let l = self.gradient_in(&mut ws, &xa, &tt, &mut g)?;
                self.gradient_in(&mut ws, &xb, &tt, &mut [<$t>::default(); $net::N_PARAMS])?;
                self.hvp_in(&mut ws, &xa, &tt, &va, &mut hv)?;
                Ok(((l as f64, Flat::to_flat(&g)), Flat::to_flat(&hv)))
            }
        }
    };
}
pub(crate) use subject;
