//! MINPACK's `lmder` (More 1978, `mode = 1` column scaling, `factor` 100) as ported by the
//! `levenberg-marquardt` crate, over plain slices: the baseline `examples/fit_regression`
//! measures the library's Levenberg-Marquardt against. The crate's own settings are kept
//! (its defaults); the problem can end the run early by refusing a Jacobian.

use std::cell::RefCell;
use std::string::String;
use std::vec::Vec;

use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra_lm::{storage::Owned, DMatrix, DVector, Dyn};

/// A nonlinear least-squares problem `min |r(x)|^2 / 2` with `m` residuals.
pub trait Residuals {
    /// Number of residuals.
    fn m(&self) -> usize;
    /// `r(x)` into `r` (length `m`); `false` to end the run.
    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> bool;
    /// The Jacobian `dr/dx` at `x` into `j`, row-major (`m` rows of `x.len()`); `false` to
    /// end the run.
    fn jacobian(&mut self, x: &[f64], j: &mut [f64]) -> bool;
}

/// What [`lmder`] reports.
#[derive(Clone, Debug)]
pub struct LmderReport {
    /// The parameters it ended at.
    pub x: Vec<f64>,
    /// Why it stopped (the crate's `TerminationReason`, printed).
    pub termination: String,
    /// Residual evaluations (the crate's count).
    pub evaluations: usize,
}

struct Adapter<P> {
    p: RefCell<P>,
    x: DVector<f64>,
}

impl<P: Residuals> LeastSquaresProblem<f64, Dyn, Dyn> for Adapter<P> {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, Dyn>;
    type ParameterStorage = Owned<f64, Dyn>;

    fn set_params(&mut self, x: &DVector<f64>) {
        self.x.copy_from(x);
    }

    fn params(&self) -> DVector<f64> {
        self.x.clone()
    }

    fn residuals(&self) -> Option<DVector<f64>> {
        let mut p = self.p.borrow_mut();
        let mut r = DVector::zeros(p.m());
        p.residuals(self.x.as_slice(), r.as_mut_slice())
            .then_some(r)
    }

    fn jacobian(&self) -> Option<DMatrix<f64>> {
        let mut p = self.p.borrow_mut();
        let (m, n) = (p.m(), self.x.len());
        let mut rows = vec![0.0; m * n];
        if !p.jacobian(self.x.as_slice(), &mut rows) {
            return None;
        }
        Some(DMatrix::from_row_slice(m, n, &rows))
    }
}

/// Runs `lmder` (the `levenberg-marquardt` crate's defaults) on `problem` from `x0`;
/// returns the problem (with whatever it recorded) and the report.
pub fn lmder<P: Residuals>(problem: P, x0: &[f64]) -> (P, LmderReport) {
    let adapter = Adapter {
        p: RefCell::new(problem),
        x: DVector::from_column_slice(x0),
    };
    let (adapter, report) = LevenbergMarquardt::new().minimize(adapter);
    let x = adapter.x.as_slice().to_vec();
    (
        adapter.p.into_inner(),
        LmderReport {
            x,
            termination: std::format!("{:?}", report.termination),
            evaluations: report.number_of_evaluations,
        },
    )
}
