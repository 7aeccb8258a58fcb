//! Run-time errors. Bad numbers give one of these, never a NaN result and never a panic.

use core::fmt;

/// What can go wrong evaluating a network (forward pass, loss, gradient, `hvp`, curvature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// An input entry is NaN or infinite.
    NonFiniteInput {
        /// The sample (row of the batch).
        sample: usize,
        /// The entry within the sample.
        index: usize,
    },
    /// A regression target entry is NaN or infinite.
    NonFiniteTarget {
        /// The sample (row of the batch).
        sample: usize,
        /// The entry within the sample's target.
        index: usize,
    },
    /// A class label is not below the number of classes.
    LabelOutOfRange {
        /// The sample (row of the batch).
        sample: usize,
        /// The label given.
        label: usize,
        /// The number of classes (labels run `0..classes`).
        classes: usize,
    },
    /// A parameter is NaN or infinite (index into the flat parameter vector).
    NonFiniteParameter {
        /// Index into the flat parameter vector.
        index: usize,
    },
    /// An entry of a direction or right-hand side vector is NaN or infinite.
    NonFiniteVector {
        /// Index into the vector.
        index: usize,
    },
    /// The inputs were finite but the result overflowed (weights or inputs too large).
    NonFiniteResult,
    /// A data set's slices differ in length: `samples` inputs but `len` targets (or output
    /// rows).
    LengthMismatch {
        /// Number of input samples.
        samples: usize,
        /// Length of the other slice.
        len: usize,
    },
    /// A data-set metric was asked of no samples.
    EmptyDataset,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NetError::NonFiniteInput { sample, index } => {
                write!(f, "input entry {index} of sample {sample} is not finite")
            }
            NetError::NonFiniteTarget { sample, index } => {
                write!(f, "target entry {index} of sample {sample} is not finite")
            }
            NetError::LabelOutOfRange { sample, label, classes } => write!(
                f,
                "label {label} of sample {sample} is out of range: there are {classes} classes (0..{classes})"
            ),
            NetError::NonFiniteParameter { index } => {
                write!(f, "parameter {index} is not finite")
            }
            NetError::NonFiniteVector { index } => {
                write!(f, "entry {index} of the vector argument is not finite")
            }
            NetError::NonFiniteResult => f.write_str(
                "the result overflowed to a non-finite value although every input was finite",
            ),
            NetError::LengthMismatch { samples, len } => write!(
                f,
                "{samples} input samples but a slice of {len} targets or outputs: the lengths must agree"
            ),
            NetError::EmptyDataset => f.write_str("the data set has no samples"),
        }
    }
}

impl core::error::Error for NetError {}

/// What can go wrong factoring `H + eps I` or solving with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SolveError {
    /// Evaluating the network failed (bad input, target, parameter or vector).
    Net(NetError),
    /// `eps` is NaN or infinite.
    NonFiniteEps,
    /// The stage solve of stage `stage` (0 = first layer) is singular or numerically singular
    /// at this `eps`: `H + eps I` is singular or too close to it for this elimination order.
    Singular {
        /// The stage (0 = first layer; array elements counted one by one).
        stage: usize,
    },
    /// The solution overflowed although every input was finite.
    NonFiniteResult,
    /// The storage holds no curvature: it was never filled, or the last
    /// `curvature_into` / `ggn_curvature_into` / `ggn_woodbury_into` on it failed. Fill it
    /// (and check that the fill succeeded) before factoring or solving.
    NoCurvature,
    /// The storage was filled at other parameters than the network holds now (its parameter
    /// fingerprint differs): fill it again at the current parameters.
    Stale,
    /// The solve cannot vouch for its result: the refined solution's relative residual
    /// `|b - A x| / |b|` (measured with the exact product) is above `sqrt(EPSILON)` and its
    /// normwise backward error `|b - A x| / (|A| |x| + |b|)` (`|A|` estimated from below, so
    /// never understated) is above `N EPSILON` ([`crate::refine::backward_bound`]): for
    /// example the Woodbury form at an eps so small that its division by eps cancels every
    /// digit. (The Woodbury form's gradient route tests its small system's backward error
    /// against `sqrt(EPSILON)`.) A larger eps, or the other Gauss-Newton form, helps.
    Inaccurate {
        /// The relative residual `|b - A x| / |b|` reached.
        residual: f64,
        /// The upper bound on the backward error reached.
        backward_error: f64,
    },
    /// An optimizer's settings are out of range (an optimizer built from zeros and never
    /// configured, or settings written after it was built).
    Config(ConfigError),
}

impl From<NetError> for SolveError {
    fn from(e: NetError) -> Self {
        SolveError::Net(e)
    }
}

impl fmt::Display for SolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SolveError::Net(e) => e.fmt(f),
            SolveError::NonFiniteEps => f.write_str("eps is not finite"),
            SolveError::Singular { stage } => write!(
                f,
                "H + eps I is singular or numerically singular (stage {stage}); increase eps"
            ),
            SolveError::NonFiniteResult => {
                f.write_str("the solution overflowed to a non-finite value")
            }
            SolveError::NoCurvature => f.write_str(
                "the curvature storage holds no curvature (never filled, or its last fill failed); \
                 call curvature_into first and check its result",
            ),
            SolveError::Stale => f.write_str(
                "the curvature storage was filled at other parameters than the network holds now; \
                 fill it again",
            ),
            SolveError::Config(e) => e.fmt(f),
            SolveError::Inaccurate {
                residual,
                backward_error,
            } => write!(
                f,
                "the solve cannot vouch for its result: backward error {backward_error:.3e} \
                 (relative residual {residual:.3e}) after refinement; increase eps"
            ),
        }
    }
}

impl core::error::Error for SolveError {}

/// An optimizer setting that is out of range (checked when the optimizer is built or its
/// settings are replaced).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfigError {
    /// The setting, as its field is named (`"lambda"`, `"radius_max"`, ...).
    pub field: &'static str,
    /// Its value (as `f64`; counts are converted).
    pub value: f64,
    /// What it must be.
    pub requirement: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "setting `{}` = {} is out of range: it must be {}",
            self.field, self.value, self.requirement
        )
    }
}

impl core::error::Error for ConfigError {}
