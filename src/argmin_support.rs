//! [argmin](https://docs.rs/argmin) integration (feature `argmin`): a generated `f64` net and
//! a fixed batch as an argmin problem, with its cost, gradient and Hessian traits. The
//! Hessian is an operator, not a matrix: [`HessianOperator`] implements
//! `ArgminDot<Vec<f64>, Vec<f64>>` with the exact Hessian-vector product, which is all
//! argmin's Newton-CG needs.
//!
//! ```ignore
//! use argmin::core::Executor;
//! use argmin::solver::{linesearch::MoreThuenteLineSearch, quasinewton::LBFGS};
//! let problem = tall_skinny::argmin_support::NetProblem::new(net, x, t);
//! let p0 = problem.params();
//! let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10);
//! let res = Executor::new(problem, solver).configure(|s| s.param(p0).max_iters(100)).run()?;
//! ```

use std::boxed::Box;
use std::cell::RefCell;
use std::rc::Rc;
use std::string::ToString;
use std::vec::Vec;

use argmin::core::{CostFunction, Error, Gradient, Hessian};
use argmin_math::ArgminDot;

use crate::runtime::optim::Model;
use crate::runtime::ConstZero;

struct Shared<M: Model<Scalar = f64>> {
    net: M,
    scratch: Box<M::Workspace>,
    p: M::Vector,
    v: M::Vector,
    out: M::Vector,
}

/// A net at a fixed batch `(x, t)` as an argmin problem over the flat parameter vector
/// (`Vec<f64>`). Every call writes the parameters into the net it owns.
pub struct NetProblem<M: Model<Scalar = f64>> {
    shared: Rc<RefCell<Shared<M>>>,
    x: Rc<M::Input>,
    t: Rc<M::Target>,
}

impl<M: Model<Scalar = f64>> NetProblem<M> {
    /// The problem of fitting `net` to the batch `(x, t)`.
    pub fn new(net: M, x: M::Input, t: M::Target) -> Self {
        let shared = Shared {
            net,
            scratch: crate::boxed_zeroed::<M::Workspace>(),
            p: ConstZero::ZERO,
            v: ConstZero::ZERO,
            out: ConstZero::ZERO,
        };
        NetProblem {
            shared: Rc::new(RefCell::new(shared)),
            x: Rc::new(x),
            t: Rc::new(t),
        }
    }
}

impl<M: Model<Scalar = f64>> NetProblem<M> {
    /// The net's current flat parameters.
    pub fn params(&self) -> Vec<f64> {
        let mut s = self.shared.borrow_mut();
        let Shared { net, p, .. } = &mut *s;
        net.get_params(p);
        p.as_ref().to_vec()
    }

    fn load(s: &mut Shared<M>, param: &[f64]) -> Result<(), Error> {
        if param.len() != M::N_PARAMS {
            return Err(argmin::core::ArgminError::InvalidParameter {
                text: "parameter vector has the wrong length".into(),
            }
            .into());
        }
        s.p.as_mut().copy_from_slice(param);
        let Shared { net, p, .. } = s;
        net.put_params(p).map_err(|e| Error::msg(e.to_string()))
    }
}

impl<M: Model<Scalar = f64>> CostFunction for NetProblem<M> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, param: &Vec<f64>) -> Result<f64, Error> {
        let mut s = self.shared.borrow_mut();
        Self::load(&mut s, param)?;
        let Shared { net, .. } = &mut *s;
        net.loss_at(&self.x, &self.t)
            .map_err(|e| Error::msg(e.to_string()))
    }
}

impl<M: Model<Scalar = f64>> Gradient for NetProblem<M> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, param: &Vec<f64>) -> Result<Vec<f64>, Error> {
        let mut s = self.shared.borrow_mut();
        Self::load(&mut s, param)?;
        let Shared {
            net, scratch, out, ..
        } = &mut *s;
        net.gradient_into(scratch, &self.x, &self.t, out)
            .map_err(|e| Error::msg(e.to_string()))?;
        Ok(out.as_ref().to_vec())
    }
}

/// The exact Hessian at one parameter vector, as an operator: `h.dot(&v)` is `H v` (one
/// Hessian-vector product; the `N x N` matrix is never formed).
pub struct HessianOperator<M: Model<Scalar = f64>> {
    shared: Rc<RefCell<Shared<M>>>,
    x: Rc<M::Input>,
    t: Rc<M::Target>,
    at: Vec<f64>,
}

impl<M: Model<Scalar = f64>> Clone for HessianOperator<M> {
    fn clone(&self) -> Self {
        HessianOperator {
            shared: self.shared.clone(),
            x: self.x.clone(),
            t: self.t.clone(),
            at: self.at.clone(),
        }
    }
}

impl<M: Model<Scalar = f64>> ArgminDot<Vec<f64>, Vec<f64>> for HessianOperator<M> {
    fn dot(&self, v: &Vec<f64>) -> Vec<f64> {
        let mut s = self.shared.borrow_mut();
        // argmin's dot cannot fail: a bad vector gives NaNs, which argmin reports.
        if NetProblem::<M>::load(&mut s, &self.at).is_err() || v.len() != M::N_PARAMS {
            return std::vec![f64::NAN; v.len()];
        }
        let Shared {
            net,
            scratch,
            v: vv,
            out,
            ..
        } = &mut *s;
        vv.as_mut().copy_from_slice(v);
        match net.hvp_into(scratch, &self.x, &self.t, vv, out) {
            Ok(()) => out.as_ref().to_vec(),
            Err(_) => std::vec![f64::NAN; v.len()],
        }
    }
}

impl<M: Model<Scalar = f64>> Hessian for NetProblem<M> {
    type Param = Vec<f64>;
    type Hessian = HessianOperator<M>;
    fn hessian(&self, param: &Vec<f64>) -> Result<HessianOperator<M>, Error> {
        if param.len() != M::N_PARAMS {
            return Err(Error::msg("parameter vector has the wrong length"));
        }
        Ok(HessianOperator {
            shared: self.shared.clone(),
            x: self.x.clone(),
            t: self.t.clone(),
            at: param.clone(),
        })
    }
}
