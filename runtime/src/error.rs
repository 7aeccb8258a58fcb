//! Run-time errors. Bad numbers give one of these, never a NaN result and never a panic.

use core::fmt;

/// What can go wrong evaluating a network (forward pass, loss, gradient, `hvp`, curvature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// An input entry is NaN or infinite.
    NonFiniteInput { sample: usize, index: usize },
    /// A regression target entry is NaN or infinite.
    NonFiniteTarget { sample: usize, index: usize },
    /// A class label is not below the number of classes.
    LabelOutOfRange {
        sample: usize,
        label: usize,
        classes: usize,
    },
    /// A parameter is NaN or infinite (index into the flat parameter vector).
    NonFiniteParameter { index: usize },
    /// An entry of a direction or right-hand side vector is NaN or infinite.
    NonFiniteVector { index: usize },
    /// The inputs were finite but the result overflowed (weights or inputs too large).
    NonFiniteResult,
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
        }
    }
}

impl core::error::Error for NetError {}

/// What can go wrong factoring `H + eps I` or solving with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolveError {
    /// Evaluating the network failed (bad input, target, parameter or vector).
    Net(NetError),
    /// `eps` is NaN or infinite.
    NonFiniteEps,
    /// The stage solve of stage `stage` (0 = first layer) is singular or numerically singular
    /// at this `eps`: `H + eps I` is singular or too close to it for this elimination order.
    Singular { stage: usize },
    /// The solution overflowed although every input was finite.
    NonFiniteResult,
    /// The storage holds no curvature: it was never filled, or the last
    /// `curvature_into` / `ggn_curvature_into` / `ggn_woodbury_into` on it failed. Fill it
    /// (and check that the fill succeeded) before factoring or solving.
    NoCurvature,
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
        }
    }
}

impl core::error::Error for SolveError {}
