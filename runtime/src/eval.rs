//! Batch-independent evaluation: one sample, a slice of samples of any length, and exact
//! metrics over a whole data set (no padding, so no padding bias).
//!
//! A network is declared at a fixed batch `B` (what its gradient, `H v` and solves work on),
//! but its forward pass is a chain of per-sample maps: the runtime's passes run at any batch
//! size. These entry points (called by the generated `forward_one`, `forward_all`,
//! `loss_all` and `evaluate`) run the layer chain on one sample (`[T; I]`, batch 1, not a
//! padded batch), and over a slice in blocks of `B` samples with the remainder one sample at
//! a time. Every built-in and `#[loss]` loss is a mean over the samples of a batch, so the
//! loss over a data set of `n` samples is `1/n` times the sum of the per-sample losses: the
//! same normalisation as the batch loss (equal to it when `n = B`).
//!
//! Nothing here allocates.

use nalgebra::SMatrix;

use crate::chain::Chain;
use crate::error::NetError;
use crate::layer::batch_matrix;
use crate::loss::Loss;
use crate::net::check_params;
use crate::real::{all_finite, Real};

/// Metrics of a network over a whole data set (see [`evaluate_rows`] and
/// [`evaluate_labels`]), computed exactly over every sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<T> {
    /// Samples evaluated.
    pub samples: usize,
    /// The loss over the data set, normalised as the batch loss (a mean over samples).
    pub loss: T,
    /// For row targets: `1/(n O) sum_n sum_k (u[n][k] - t[n][k])^2`, the mean squared error
    /// over every output entry (for an `Mse` net, `loss = O * mse / 2`). `None` for labels.
    pub mse: Option<T>,
    /// For labels: the number of samples whose largest output is at their label (the first
    /// largest, on ties). `None` for row targets.
    pub correct: Option<usize>,
}

impl<T: Real> Evaluation<T> {
    /// `correct / samples` for classifiers, `None` otherwise.
    pub fn accuracy(&self) -> Option<f64> {
        self.correct.map(|c| c as f64 / self.samples as f64)
    }

    /// `sqrt(mse)` for row targets, `None` otherwise.
    pub fn rmse(&self) -> Option<T> {
        self.mse.map(|m| m.sqrt())
    }
}

impl<T: Real> core::fmt::Display for Evaluation<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} samples: loss {:.6e}",
            self.samples,
            self.loss.to_f64()
        )?;
        if let Some(m) = self.mse {
            write!(f, ", mse {:.6e}", m.to_f64())?;
        }
        if let (Some(c), Some(a)) = (self.correct, self.accuracy()) {
            write!(f, ", accuracy {:.2}% ({c}/{})", 100.0 * a, self.samples)?;
        }
        Ok(())
    }
}

/// Checks one sample's inputs, naming its index in the data set.
#[inline]
fn check_sample<T: Real, const I: usize>(sample: usize, x: &[T; I]) -> Result<(), NetError> {
    match x.iter().position(|v| !v.finite()) {
        Some(index) => Err(NetError::NonFiniteInput { sample, index }),
        None => Ok(()),
    }
}

/// Checks every input of a data set.
fn check_inputs<T: Real, const I: usize>(xs: &[[T; I]]) -> Result<(), NetError> {
    for (sample, x) in xs.iter().enumerate() {
        check_sample(sample, x)?;
    }
    Ok(())
}

/// A `[X; N]` copy of `s` (of length `N`).
#[inline]
fn block<X: Copy, const N: usize>(s: &[X]) -> [X; N] {
    core::array::from_fn(|k| s[k])
}

/// The outputs of one sample: the layer chain run at batch 1 (no padded batch).
#[inline]
pub fn forward_one<T, Ls, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    x: &[T; I],
) -> Result<[T; O], NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
{
    check_sample(0, x)?;
    check_params(layers)?;
    let u: SMatrix<T, O, 1> = layers.forward(&batch_matrix(&[*x]));
    if !all_finite(u.as_slice()) {
        return Err(NetError::NonFiniteResult);
    }
    Ok(u.data.0[0])
}

/// Runs `each(start, outputs)` over `xs` in blocks of `B` samples and then the remainder
/// one at a time (`outputs` has the block's length; `start` is its first sample's index).
#[inline]
fn for_blocks<T, Ls, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    xs: &[[T; I]],
    mut each: impl FnMut(usize, &[[T; O]]) -> Result<(), NetError>,
) -> Result<(), NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
{
    let full = xs.len() / B * B;
    let mut start = 0;
    while start < full {
        let x: [[T; I]; B] = block(&xs[start..start + B]);
        let u: SMatrix<T, O, B> = layers.forward(&batch_matrix(&x));
        if !all_finite(u.as_slice()) {
            return Err(NetError::NonFiniteResult);
        }
        each(start, &u.data.0)?;
        start += B;
    }
    for (k, x) in xs[full..].iter().enumerate() {
        let u: SMatrix<T, O, 1> = layers.forward(&batch_matrix(&[*x]));
        if !all_finite(u.as_slice()) {
            return Err(NetError::NonFiniteResult);
        }
        each(full + k, &u.data.0)?;
    }
    Ok(())
}

/// The outputs of every sample of `xs` (any length, also zero), into `out` (of the same
/// length; a different length is [`NetError::LengthMismatch`]). Blocks of `B` samples run
/// at batch `B`, the remainder one sample at a time; no padding.
pub fn forward_all<T, Ls, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    xs: &[[T; I]],
    out: &mut [[T; O]],
) -> Result<(), NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
{
    if out.len() != xs.len() {
        return Err(NetError::LengthMismatch {
            samples: xs.len(),
            len: out.len(),
        });
    }
    check_inputs(xs)?;
    check_params(layers)?;
    for_blocks::<T, Ls, B, I, O>(layers, xs, |start, u| {
        out[start..start + u.len()].copy_from_slice(u);
        Ok(())
    })
}

/// Checks the lengths of a data set: non-empty, as many targets as inputs.
fn check_lengths<X, S>(xs: &[X], ts: &[S]) -> Result<(), NetError> {
    if ts.len() != xs.len() {
        return Err(NetError::LengthMismatch {
            samples: xs.len(),
            len: ts.len(),
        });
    }
    if xs.is_empty() {
        return Err(NetError::EmptyDataset);
    }
    Ok(())
}

/// Checks every target of a data set with the loss's own check, naming the sample's index
/// in the data set.
fn check_targets<T, L, S, const O: usize>(ts: &[S]) -> Result<(), NetError>
where
    T: Real,
    S: Copy,
    L: Loss<T, O, 1, Target = [S; 1]>,
{
    for (n, t) in ts.iter().enumerate() {
        L::check(&[*t]).map_err(|e| match e {
            NetError::NonFiniteTarget { index, .. } => {
                NetError::NonFiniteTarget { sample: n, index }
            }
            NetError::LabelOutOfRange { label, classes, .. } => NetError::LabelOutOfRange {
                sample: n,
                label,
                classes,
            },
            other => other,
        })?;
    }
    Ok(())
}

/// The sum over a data set of the per-sample losses, and `extra(start, u)` called per block.
fn loss_sum<T, Ls, L, S, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    xs: &[[T; I]],
    ts: &[S],
    mut extra: impl FnMut(usize, &[[T; O]]),
) -> Result<T, NetError>
where
    T: Real,
    S: Copy,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B, Target = [S; B]> + Loss<T, O, 1, Target = [S; 1]>,
{
    check_lengths(xs, ts)?;
    check_inputs(xs)?;
    check_targets::<T, L, S, O>(ts)?;
    check_params(layers)?;
    let mut sum = T::ZERO;
    for_blocks::<T, Ls, B, I, O>(layers, xs, |start, u| {
        if u.len() == B {
            let t: [S; B] = block(&ts[start..start + B]);
            let um = SMatrix::<T, O, B>::from_array_storage(nalgebra::ArrayStorage(block(u)));
            sum += <L as Loss<T, O, B>>::value(&um, &t) * T::c(B as f64);
        } else {
            let um = SMatrix::<T, O, 1>::from_array_storage(nalgebra::ArrayStorage([u[0]]));
            sum += <L as Loss<T, O, 1>>::value(&um, &[ts[start]]);
        }
        extra(start, u);
        Ok(())
    })?;
    if !sum.finite() {
        return Err(NetError::NonFiniteResult);
    }
    Ok(sum)
}

/// The loss over a whole data set (inputs `xs`, one target per sample `ts`, any non-zero
/// length), normalised as the batch loss: the mean of the per-sample losses. Equal (up to
/// rounding) to the batch loss when the data set is one batch.
pub fn loss_all<T, Ls, L, S, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    _loss: &L,
    xs: &[[T; I]],
    ts: &[S],
) -> Result<T, NetError>
where
    T: Real,
    S: Copy,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B, Target = [S; B]> + Loss<T, O, 1, Target = [S; 1]>,
{
    let sum = loss_sum::<T, Ls, L, S, B, I, O>(layers, xs, ts, |_, _| {})?;
    Ok(sum / T::c(xs.len() as f64))
}

/// [`Evaluation`] of a net with one target row per sample (`Mse` and `#[loss]` losses): the
/// loss and the mean squared error over the data set.
pub fn evaluate_rows<T, Ls, L, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    _loss: &L,
    xs: &[[T; I]],
    ts: &[[T; O]],
) -> Result<Evaluation<T>, NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B, Target = [[T; O]; B]> + Loss<T, O, 1, Target = [[T; O]; 1]>,
{
    let mut sq = T::ZERO;
    let sum = loss_sum::<T, Ls, L, [T; O], B, I, O>(layers, xs, ts, |start, u| {
        for (k, row) in u.iter().enumerate() {
            for (a, b) in row.iter().zip(&ts[start + k]) {
                let e = *a - *b;
                sq += e * e;
            }
        }
    })?;
    let n = T::c(xs.len() as f64);
    let mse = sq / (n * T::c(O as f64));
    if !mse.finite() {
        return Err(NetError::NonFiniteResult);
    }
    Ok(Evaluation {
        samples: xs.len(),
        loss: sum / n,
        mse: Some(mse),
        correct: None,
    })
}

/// The index of the first largest entry.
fn argmax<T: Real>(u: &[T]) -> usize {
    let mut best = 0;
    for (k, v) in u.iter().enumerate() {
        if *v > u[best] {
            best = k;
        }
    }
    best
}

/// [`Evaluation`] of a classifier (`SoftmaxCrossEntropy`, one label per sample): the loss
/// and the number of samples classified correctly (largest logit at the label).
pub fn evaluate_labels<T, Ls, L, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    _loss: &L,
    xs: &[[T; I]],
    ts: &[usize],
) -> Result<Evaluation<T>, NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B, Target = [usize; B]> + Loss<T, O, 1, Target = [usize; 1]>,
{
    let mut correct = 0;
    let sum = loss_sum::<T, Ls, L, usize, B, I, O>(layers, xs, ts, |start, u| {
        for (k, row) in u.iter().enumerate() {
            correct += usize::from(argmax(row) == ts[start + k]);
        }
    })?;
    Ok(Evaluation {
        samples: xs.len(),
        loss: sum / T::c(xs.len() as f64),
        mse: None,
        correct: Some(correct),
    })
}

/// The class of one sample: the index of its largest output (the first, on ties).
pub fn predict_class<T: Real, const O: usize>(u: &[T; O]) -> usize {
    argmax(u)
}
