//! argmin's L-BFGS (memory 10, More-Thuente line search, tolerances 0) on the exact full-batch
//! loss: protocol 1 on the fixed batch, protocol 2 on the whole training set (the mean of
//! the batch losses over one epoch of batches, which is the exact training loss since the
//! training set is a whole number of batches). Driven one `next_iter` at a time (the loop
//! of argmin's `Executor`), so the clock can be paused to evaluate the held-out sets.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use argmin::core::{CostFunction, Error, Gradient, IterState, Problem, Solver, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use tall_skinny::runtime::data::{MiniBatches, Remainder};
use tall_skinny::runtime::optim::Model;
use tall_skinny::runtime::ConstZero;

use crate::harness::{held_out, sample_held_out, schedule, Clock, Method, Run, Sample};
use crate::tasks::Task;

/// The mean loss over a list of full batches as an argmin problem.
struct FullBatch<M: Model<Scalar = f64>> {
    net: RefCell<Box<M>>,
    ws: RefCell<Box<M::Workspace>>,
    p: RefCell<Box<M::Vector>>,
    g: RefCell<Box<M::Vector>>,
    batches: Vec<(M::Input, M::Target)>,
    /// Full-batch gradient (or loss) evaluations.
    evals: Rc<Cell<u64>>,
}

impl<M: Model<Scalar = f64>> FullBatch<M> {
    /// The batches of one epoch over `(xs, ts)` (a whole number of batches).
    fn new(net: Box<M>, xs: &[M::Sample], ts: &[M::SampleTarget]) -> Result<Self, String> {
        let mut stream =
            MiniBatches::with_vec(xs, ts, 1, Remainder::Drop).map_err(|e| e.to_string())?;
        let mut batches = Vec::new();
        for _ in 0..xs.len() / M::BATCH {
            let (mut x, mut t) = (M::Input::ZERO, M::Target::ZERO);
            M::fill_batch(&mut stream, &mut x, &mut t).map_err(|e| e.to_string())?;
            batches.push((x, t));
        }
        Ok(FullBatch {
            net: RefCell::new(net),
            ws: RefCell::new(tall_skinny::boxed_zeroed()),
            p: RefCell::new(tall_skinny::boxed_zeroed()),
            g: RefCell::new(tall_skinny::boxed_zeroed()),
            batches,
            evals: Rc::new(Cell::new(0)),
        })
    }

    fn load(&self, param: &[f64]) -> Result<(), Error> {
        let mut p = self.p.borrow_mut();
        slice_mut::<M>(&mut p).copy_from_slice(param);
        self.net
            .borrow_mut()
            .put_params(&p)
            .map_err(|e| Error::msg(e.to_string()))
    }

    fn params(&self) -> Vec<f64> {
        let mut p = self.p.borrow_mut();
        self.net.borrow().get_params(&mut p);
        slice::<M>(&p).to_vec()
    }
}

impl<M: Model<Scalar = f64>> CostFunction for FullBatch<M> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, param: &Vec<f64>) -> Result<f64, Error> {
        self.load(param)?;
        self.evals.set(self.evals.get() + 1);
        let net = self.net.borrow();
        let mut sum = 0.0;
        for (x, t) in &self.batches {
            sum += net.loss_at(x, t).map_err(|e| Error::msg(e.to_string()))?;
        }
        Ok(sum / self.batches.len() as f64)
    }
}

impl<M: Model<Scalar = f64>> Gradient for FullBatch<M> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, param: &Vec<f64>) -> Result<Vec<f64>, Error> {
        self.load(param)?;
        self.evals.set(self.evals.get() + 1);
        let net = self.net.borrow();
        let mut ws = self.ws.borrow_mut();
        let mut g = self.g.borrow_mut();
        let mut sum = vec![0.0; M::N_PARAMS];
        for (x, t) in &self.batches {
            net.gradient_into(&mut ws, x, t, &mut g)
                .map_err(|e| Error::msg(e.to_string()))?;
            for (s, gi) in sum.iter_mut().zip(slice::<M>(&g)) {
                *s += gi;
            }
        }
        let k = 1.0 / self.batches.len() as f64;
        sum.iter_mut().for_each(|s| *s *= k);
        Ok(sum)
    }
}

type St = IterState<Vec<f64>, Vec<f64>, (), (), (), f64>;

/// Runs L-BFGS on `fb` from the net's parameters until `budget` seconds of its own time;
/// after every iteration, with the clock paused, `sample(param, secs, iters, cost)`.
/// Returns the error that ended it, if any (a line search that finds no decrease ends
/// L-BFGS: that is its stopping test).
fn drive<M: Model<Scalar = f64>>(
    fb: FullBatch<M>,
    budget: f64,
    run: &mut Run,
    mut sample: impl FnMut(&[f64], f64, u64, f64),
) -> Option<String> {
    let p0 = fb.params();
    let evals = fb.evals.clone();
    let mut solver = match LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(0.0)
        .and_then(|s| s.with_tolerance_cost(0.0))
    {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    let mut problem: Problem<FullBatch<M>> = Problem::new(fb);
    let mut clock = Clock::default();
    clock.start();
    let state: St = IterState::new().param(p0);
    let mut state = match solver.init(&mut problem, state) {
        Ok((s, _)) => s,
        Err(e) => return Some(e.to_string()),
    };
    state.update();
    let mut err = None;
    loop {
        if Solver::<FullBatch<M>, St>::terminate_internal(&mut solver, &state).terminated() {
            break;
        }
        match solver.next_iter(&mut problem, state.clone()) {
            Ok((s, _)) => state = s,
            Err(e) => {
                err = Some(format!("stopped: {e}"));
                break;
            }
        }
        // A failed line search ends L-BFGS with a terminated state (and no parameters).
        if state.terminated() {
            err = Some(format!(
                "stopped: {}",
                state
                    .get_termination_reason()
                    .map_or_else(|| "terminated".to_string(), |r| r.to_string())
            ));
            break;
        }
        state.update();
        state.increment_iter();
        run.steps = state.get_iter();
        clock.pause();
        if let Some(p) = state.get_param() {
            sample(p, clock.secs(), run.steps, state.get_cost());
        }
        if clock.secs() >= budget {
            break;
        }
        clock.start();
    }
    clock.pause();
    run.secs = clock.secs();
    run.work = evals.get();
    err
}

/// Protocol 1 with L-BFGS: the fixed batch as the whole problem.
pub fn memorise<M: Model<Scalar = f64> + 'static>(
    task: &Task<M>,
    bx: &[M::Sample],
    bt: &[M::SampleTarget],
    budget: f64,
) -> Run {
    let mut run = Run::new(Method::Lbfgs);
    let net = (task.init)();
    match net.loss_all_at(bx, bt) {
        Ok(l) => run.trace.push((0.0, 0, l)),
        Err(e) => {
            run.error = Some(e.to_string());
            return run;
        }
    }
    let fb = match FullBatch::new(net, bx, bt) {
        Ok(f) => f,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    let mut trace = std::mem::take(&mut run.trace);
    run.error = drive(fb, budget, &mut run, |_, secs, iters, cost| {
        if trace.last().is_none_or(|p| cost < p.2) {
            trace.push((secs, iters, cost));
        }
    });
    run.trace = trace;
    run
}

/// Protocol 2 with L-BFGS: full batch on the training set, held-out losses at the times of
/// [`schedule`] (at the first iteration past each).
pub fn equal_clock<M: Model<Scalar = f64> + 'static>(
    task: &Task<M>,
    budget: f64,
    points: usize,
) -> Run {
    let mut run = Run::new(Method::Lbfgs);
    let net = (task.init)();
    let mut eval_net = (task.init)();
    if !sample_held_out(&mut run, &*eval_net, task, 0.0) {
        return run;
    }
    let fb = match FullBatch::new(net, &task.train.0, &task.train.1) {
        Ok(f) => f,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    let times = schedule(budget, points);
    let mut next = 1;
    let mut curve = std::mem::take(&mut run.curve);
    let mut failed = None;
    let mut p = zeroed_vector::<M>();
    let mut last: Option<(Vec<f64>, f64)> = None;
    let mut record =
        |param: &[f64], secs: f64, curve: &mut Vec<Sample>, failed: &mut Option<String>| {
            slice_mut::<M>(&mut p).copy_from_slice(param);
            match eval_net
                .put_params(&p)
                .map_err(|e| e.to_string())
                .and_then(|_| held_out(&*eval_net, task))
            {
                Ok((val, test)) => curve.push(Sample { secs, val, test }),
                Err(e) => *failed = Some(e),
            }
        };
    let err = drive(fb, budget, &mut run, |param, secs, _, _| {
        if next < times.len() && secs >= times[next] {
            while next < times.len() && secs >= times[next] {
                next += 1;
            }
            record(param, secs, &mut curve, &mut failed);
            last = None;
        } else {
            last = Some((param.to_vec(), secs));
        }
    });
    // The last iteration is always sampled.
    if let Some((param, secs)) = last {
        record(&param, secs, &mut curve, &mut failed);
    }
    run.curve = curve;
    run.error = failed.or(err);
    run
}

fn zeroed_vector<M: Model>() -> Box<M::Vector> {
    tall_skinny::boxed_zeroed()
}

fn slice<M: Model<Scalar = f64>>(v: &M::Vector) -> &[f64] {
    v.as_ref()
}

fn slice_mut<M: Model<Scalar = f64>>(v: &mut M::Vector) -> &mut [f64] {
    v.as_mut()
}
