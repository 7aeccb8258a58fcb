//! The five tasks: their nets (declared with `#[tall_skinny_net]`) and data sets, split into
//! train / validation / test, standardised with the training split's statistics only. Every
//! training split is a whole number of batches, so one epoch of batches is exactly the
//! training set (the full-batch L-BFGS loss is the exact training loss).

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::shuffle_split;
use tall_skinny::runtime::optim::Model;
use tall_skinny::runtime::ConstZero;

/// Inputs and targets of one part of a data set.
pub type Part<M> = (Vec<<M as Model>::Sample>, Vec<<M as Model>::SampleTarget>);

/// One task: a net type `M`, its data and how to build it.
pub struct Task<M: Model> {
    /// Short name (file names of the plots).
    pub name: &'static str,
    /// One line for the tables.
    pub what: String,
    /// Training set (a whole number of batches).
    pub train: Part<M>,
    /// Validation set: picks the first-order learning rates.
    pub val: Part<M>,
    /// Test set: the held-out loss reported and plotted.
    pub test: Part<M>,
    /// The net at its initial parameters (the same for every optimizer).
    pub init: fn() -> Box<M>,
}

/// Diabetes progression (442 x 10, linfa-datasets), regression.
#[tall_skinny_net(batch = 32)]
pub struct DiabetesNet {
    inp: Dense<10, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Red wine quality (1599 x 11, linfa-datasets), the quality score as a regression target.
#[tall_skinny_net(batch = 32)]
pub struct WineNet {
    inp: Dense<11, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// Iris (150 x 4, 3 classes, linfa-datasets), softmax cross-entropy.
#[tall_skinny_net(batch = 15)]
pub struct IrisNet {
    inp: Dense<4, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// Pendulum identification (the plant net of `examples/realtime_loop.rs`, depth 16, width
/// 8): (theta, omega, torque) -> (dtheta/dt, domega/dt).
#[tall_skinny_net(batch = 32)]
pub struct PlantNet {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// Deep narrow synthetic regression: depth 48, width 8.
#[tall_skinny_net(batch = 32)]
pub struct DeepNet {
    inp: Dense<4, 8, Tanh>,
    body: [Residual<8, Tanh>; 46],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// The same five architectures at a small batch: the exact-Hessian methods' step cost grows
/// with the batch much faster than the Gauss-Newton one (the Hessian's stage blocks are
/// `width x batch` wide), so protocol 2 also runs them (and LM) on mini-batches of these.
#[tall_skinny_net(batch = 8)]
pub struct DiabetesNet8 {
    inp: Dense<10, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// [`WineNet`] at batch 8.
#[tall_skinny_net(batch = 8)]
pub struct WineNet8 {
    inp: Dense<11, 8, Tanh>,
    body: [Residual<8, Tanh>; 6],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// [`IrisNet`] at batch 5.
#[tall_skinny_net(batch = 5)]
pub struct IrisNet5 {
    inp: Dense<4, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// [`PlantNet`] at batch 8 (the batch of `realtime_loop`).
#[tall_skinny_net(batch = 8)]
pub struct PlantNet8 {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 14],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

/// [`DeepNet`] at batch 8.
#[tall_skinny_net(batch = 8)]
pub struct DeepNet8 {
    inp: Dense<4, 8, Tanh>,
    body: [Residual<8, Tanh>; 46],
    head: Dense<8, 1, Identity>,
    loss: Mse<1>,
}

/// The same data for the same architecture at another batch size (its training set stays
/// a whole number of batches: the small batches divide the large ones).
pub fn twin<M, S>(task: &Task<M>, init: fn() -> Box<S>) -> Task<S>
where
    M: Model,
    S: Model<Scalar = M::Scalar, Sample = M::Sample, SampleTarget = M::SampleTarget>,
{
    assert_eq!(
        M::BATCH % S::BATCH,
        0,
        "the small batch divides the large one"
    );
    // Both start from the same parameters.
    let (mut a, mut b) = (M::Vector::ZERO, S::Vector::ZERO);
    (task.init)().get_params(&mut a);
    init().get_params(&mut b);
    assert!(
        a.as_ref() == b.as_ref(),
        "the twin nets start from the same parameters"
    );
    Task {
        name: task.name,
        what: task.what.clone(),
        train: task.train.clone(),
        val: task.val.clone(),
        test: task.test.clone(),
        init,
    }
}

/// Per-column mean and standard deviation (a constant column gets sd 1).
fn stats<const N: usize>(rows: &[[f64; N]]) -> ([f64; N], [f64; N]) {
    let n = rows.len() as f64;
    let mean: [f64; N] = core::array::from_fn(|k| rows.iter().map(|r| r[k]).sum::<f64>() / n);
    let sd = core::array::from_fn(|k| {
        let s = (rows.iter().map(|r| (r[k] - mean[k]).powi(2)).sum::<f64>() / n).sqrt();
        if s > 0.0 {
            s
        } else {
            1.0
        }
    });
    (mean, sd)
}

fn scale<const N: usize>(rows: &[[f64; N]], (m, s): &([f64; N], [f64; N])) -> Vec<[f64; N]> {
    rows.iter()
        .map(|r| core::array::from_fn(|k| (r[k] - m[k]) / s[k]))
        .collect()
}

/// The largest training set that is a whole number of batches, with `val` validation and
/// at least `test` test samples out of `n`.
fn train_size(n: usize, batch: usize, val: usize, test: usize) -> usize {
    (n - val - test) / batch * batch
}

/// The table line of a task: what the data are, the net's size and the split.
fn describe<M: Model>(data: &str, depth: usize, parts: [&Part<M>; 3], note: &str) -> String {
    let [train, val, test] = parts.map(|p| p.0.len());
    format!(
        "{data}, depth {depth}, {} params, batch {}, train/val/test {train}/{val}/{test}{note}",
        M::N_PARAMS,
        M::BATCH
    )
}

/// The rows of a linfa data set's record matrix, given as its row-major slice of `I` columns.
fn rows<const I: usize>(records: Option<&[f64]>) -> Vec<[f64; I]> {
    let flat = records.expect("linfa's records are a standard-layout matrix");
    assert_eq!(flat.len() % I, 0, "the records have {I} columns");
    flat.chunks_exact(I)
        .map(|r| core::array::from_fn(|k| r[k]))
        .collect()
}

/// Splits a regression data set (shuffled with `seed`) and standardises inputs and targets
/// with the training split's statistics.
#[allow(clippy::type_complexity)]
fn regression<const I: usize, const O: usize>(
    mut xs: Vec<[f64; I]>,
    mut ts: Vec<[f64; O]>,
    batch: usize,
    val: usize,
    test_min: usize,
    seed: u64,
) -> [(Vec<[f64; I]>, Vec<[f64; O]>); 3] {
    let n = xs.len();
    let train = train_size(n, batch, val, test_min);
    let s = shuffle_split(&mut xs, &mut ts, seed, val, n - val - train).expect("split");
    let (sx, st) = (stats(s.train.0), stats(s.train.1));
    [s.train, s.val, s.test].map(|(x, t)| (scale(x, &sx), scale(t, &st)))
}

pub fn diabetes() -> Task<DiabetesNet> {
    let data = linfa_datasets::diabetes();
    let xs: Vec<[f64; 10]> = rows(data.records().as_slice());
    let ts: Vec<[f64; 1]> = data.targets().iter().map(|&t| [t]).collect();
    let [train, val, test] = regression(xs, ts, DiabetesNet::BATCH, 66, 88, 42);
    Task {
        name: "diabetes",
        what: describe::<DiabetesNet>(
            "diabetes (linfa), regression",
            DiabetesNet::DEPTH,
            [&train, &val, &test],
            "",
        ),
        train,
        val,
        test,
        init: || Box::new(DiabetesNet::init(1)),
    }
}

pub fn winequality() -> Task<WineNet> {
    let data = linfa_datasets::winequality();
    let xs: Vec<[f64; 11]> = rows(data.records().as_slice());
    let ts: Vec<[f64; 1]> = data.targets().iter().map(|&t| [t as f64]).collect();
    let [train, val, test] = regression(xs, ts, WineNet::BATCH, 320, 320, 42);
    Task {
        name: "winequality",
        what: describe::<WineNet>(
            "winequality-red (linfa), quality as regression",
            WineNet::DEPTH,
            [&train, &val, &test],
            "",
        ),
        train,
        val,
        test,
        init: || Box::new(WineNet::init(1)),
    }
}

pub fn iris() -> Task<IrisNet> {
    let data = linfa_datasets::iris();
    let mut xs: Vec<[f64; 4]> = rows(data.records().as_slice());
    let mut labels: Vec<usize> = data.targets().to_vec();
    let n = xs.len();
    let (val, train) = (30, train_size(n, IrisNet::BATCH, 30, 30));
    let s = shuffle_split(&mut xs, &mut labels, 3, val, n - val - train).expect("split");
    let sx = stats(s.train.0);
    let part = |(x, t): (&[[f64; 4]], &[usize])| (scale(x, &sx), t.to_vec());
    let (train, val, test) = (part(s.train), part(s.val), part(s.test));
    Task {
        name: "iris",
        what: describe::<IrisNet>(
            "iris (linfa), 3-class softmax cross-entropy",
            IrisNet::DEPTH,
            [&train, &val, &test],
            "",
        ),
        train,
        val,
        test,
        init: || Box::new(IrisNet::init(1)),
    }
}

/// The damped pendulum of `examples/realtime_loop.rs`: theta'' = -(g/l) sin(theta) - c
/// theta' + u.
fn derivative(theta: f64, omega: f64, u: f64) -> [f64; 2] {
    [omega, -9.81 * theta.sin() - 0.3 * omega + u]
}

/// `n` transitions (state, torque) -> derivative, one every `every` ticks of a trajectory
/// excited by a sum of sines with phase `phase`, from `(theta0, 0)`.
fn trajectory(n: usize, every: usize, theta0: f64, phase: f64) -> (Vec<[f64; 3]>, Vec<[f64; 2]>) {
    const DT: f64 = 0.01;
    let (mut theta, mut omega) = (theta0, 0.0f64);
    let (mut xs, mut ts) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut k = 0usize;
    while xs.len() < n {
        let time = k as f64 * DT;
        let u = 2.0 * (0.7 * time + phase).sin()
            + 1.5 * (1.9 * time + 0.5 + 2.0 * phase).sin()
            + 0.8 * (4.3 * time).sin();
        let d = derivative(theta, omega, u);
        if k % every == 0 {
            xs.push([theta, omega, u]);
            ts.push(d);
        }
        omega += DT * d[1];
        theta += DT * omega;
        k += 1;
    }
    (xs, ts)
}

pub fn pendulum() -> Task<PlantNet> {
    // Training and validation from one trajectory, the test set from another (other start,
    // other excitation phases).
    let (mut xs, mut ts) = trajectory(2048 + 256, 7, 1.0, 0.0);
    let s = shuffle_split(&mut xs, &mut ts, 11, 256, 0).expect("split");
    let (tx, tt) = trajectory(512, 11, -0.5, 1.3);
    let (sx, st) = (stats(s.train.0), stats(s.train.1));
    let train = (scale(s.train.0, &sx), scale(s.train.1, &st));
    let val = (scale(s.val.0, &sx), scale(s.val.1, &st));
    let test = (scale(&tx, &sx), scale(&tt, &st));
    Task {
        name: "pendulum",
        what: describe::<PlantNet>(
            "pendulum identification (simulated)",
            PlantNet::DEPTH,
            [&train, &val, &test],
            " (test: another trajectory)",
        ),
        train,
        val,
        test,
        init: || Box::new(PlantNet::init(3)),
    }
}

/// The synthetic target: smooth, with products of inputs (not linear, not separable).
fn synthetic_target(x: &[f64; 4]) -> [f64; 1] {
    use core::f64::consts::PI;
    [
        (PI * x[0]).sin() * (0.5 * PI * x[1]).cos()
            + 0.5 * x[2] * x[3]
            + 0.3 * (x[0] + x[3]).powi(2),
    ]
}

pub fn deep() -> Task<DeepNet> {
    let mut rng = tall_skinny::runtime::SplitMix64::new(2024);
    let n = 1024 + 256 + 512;
    let mut xs: Vec<[f64; 4]> = (0..n)
        .map(|_| core::array::from_fn(|_| rng.symmetric()))
        .collect();
    let mut ts: Vec<[f64; 1]> = xs.iter().map(synthetic_target).collect();
    let s = shuffle_split(&mut xs, &mut ts, 5, 256, 512).expect("split");
    let st = stats(s.train.1);
    let ident = ([0.0; 4], [1.0; 4]);
    let part = |(x, t): (&[[f64; 4]], &[[f64; 1]])| (scale(x, &ident), scale(t, &st));
    let (train, val, test) = (part(s.train), part(s.val), part(s.test));
    Task {
        name: "deep48",
        what: describe::<DeepNet>(
            "deep narrow synthetic (4 inputs, smooth target, width 8)",
            DeepNet::DEPTH,
            [&train, &val, &test],
            "",
        ),
        train,
        val,
        test,
        init: || Box::new(DeepNet::init(1)),
    }
}
