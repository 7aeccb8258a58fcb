//! The solve's sweeps over a list of stages (docs/math.md sections 3 and 4): the curvature
//! pass ([`CurvChain`], layers paired with their stages), the eps-dependent factor sweep,
//! the two-sweep solve and the product `(H + eps I) v` from the stored blocks
//! ([`StagesFrom`], and [`StageStack`] for a whole network's list).
//!
//! A list of stages is a [`Cons`] list of [`Slot`]s (arrays for array fields): each
//! [`Stage`] tagged with its layer's shape. The factor sweep runs last stage first, each
//! stage writing the value Hessian `S` at its input into the stage before; the solve runs
//! the same way back for the linear terms and then forward for the solution.

use nalgebra::SMatrix;

use super::{Cons, ConstZero, Nil, Slot};
use crate::activation::{Activation, Identity};
use crate::layer::{zero_mat, Layer};
use crate::linalg::ldlt::Inertia;
use crate::real::Real;
use crate::stage::gram::drop_adjoint_terms;
use crate::stage::selinv::LogDet;
use crate::stage::{s_apply, Scratch, Stage, StageView};

/// The sweeps over a list of stages whose first stage takes `IN` inputs per sample (`BIN =
/// B * IN` rows of input), at batch `B`. Generated code does not call these directly: see
/// [`StageStack`] for a whole network.
pub trait StagesFrom<T: Real, const B: usize, const IN: usize, const BIN: usize> {
    /// Per-right-hand-side scratch of the solve and the product, one per stage.
    type Scratch: ConstZero + Copy + bytemuck::Zeroable;
    /// Parameters of the list.
    const N_PARAMS: usize;
    /// Stages of the list.
    const DEPTH: usize;

    /// The factor sweep at `eps`, last stage first; `prev` is the `S` of the stage before
    /// the list (none for the first stage of a network), `stage` the index of the first
    /// stage. Returns the inertia, or the index of a singular stage.
    fn factor(
        &mut self,
        eps: T,
        prev: Option<&mut SMatrix<T, BIN, BIN>>,
        stage: usize,
    ) -> Result<Inertia, usize>;
    /// The solve's backward sweep: stores each stage's part in `scr` and returns the linear
    /// term of the value at the list's input.
    fn solve_backward(&self, scr: &mut Self::Scratch, g: &[T], eps: T) -> SMatrix<T, IN, B>;
    /// The solve's forward sweep from the input perturbation `y` (none for the first stage
    /// of a network), writing the solution to `x`.
    fn solve_forward(
        &self,
        scr: &Self::Scratch,
        g: &[T],
        y: Option<&SMatrix<T, IN, B>>,
        eps: T,
        x: &mut [T],
    );
    /// `(H + eps I) v` from the stored blocks (input tangent `y`; `s_in` is the `S` of the
    /// stage before, which for the last stage of a network is the loss Hessian). Returns the
    /// tangent of the input adjoint.
    fn apply(
        &self,
        scr: &mut Self::Scratch,
        v: &[T],
        y: Option<&SMatrix<T, IN, B>>,
        s_in: Option<&SMatrix<T, BIN, BIN>>,
        eps: T,
        out: &mut [T],
    ) -> SMatrix<T, IN, B>;
    /// Calls `f` on every stage in order, as a dense view of its derivative blocks.
    fn for_each(&self, f: &mut dyn FnMut(&dyn StageView<T>));
    /// Stage `idx` of the list (0 = its first), if there is one.
    fn stage(&self, idx: usize) -> Option<&dyn StageView<T>>;
    /// `log|det|` and sign of the factored stage matrices (their product is that of
    /// `H + eps I`).
    fn log_det(&self, eps: T) -> LogDet<T>;
    /// Selected inversion, forward (docs/math.md section 8): from the state covariance `p` of
    /// the list's input (none for the first stage of a network) writes the diagonal of
    /// `(H + eps I)^{-1}` to `diag` and, for the stage `block.0` (counted from `stage`, the
    /// index of the list's first stage), its whole diagonal block to `block.1`.
    fn selinv(
        &self,
        p: Option<&SMatrix<T, BIN, BIN>>,
        eps: T,
        diag: &mut [T],
        block: Option<(usize, &mut [T])>,
        stage: usize,
    );
}

/// A whole network's list of stages: what the curvature storage holds. Implemented for every
/// [`Cons`] list of stages whose widths chain.
pub trait StageStack: ConstZero + Copy + bytemuck::Zeroable {
    /// `f32` or `f64`.
    type Scalar: Real;
    /// Per-right-hand-side scratch of the solve and the product.
    type Scratch: ConstZero + Copy + bytemuck::Zeroable;
    /// Parameters of the network.
    const N_PARAMS: usize;
    /// Stages of the network.
    const DEPTH: usize;

    /// The factor sweep at `eps`; `Err(stage)` when that stage's matrix is singular or
    /// numerically singular.
    fn factor(&mut self, eps: Self::Scalar) -> Result<Inertia, usize>;
    /// `x = (H + eps I)^{-1} b` with the factors at `eps` (two sweeps).
    fn solve(
        &self,
        scr: &mut Self::Scratch,
        b: &[Self::Scalar],
        x: &mut [Self::Scalar],
        eps: Self::Scalar,
    );
    /// `out = (H + eps I) v` from the stored blocks.
    fn apply(
        &self,
        scr: &mut Self::Scratch,
        v: &[Self::Scalar],
        out: &mut [Self::Scalar],
        eps: Self::Scalar,
    );
    /// Calls `f` on every stage in order, as a dense view of its derivative blocks.
    fn for_each_stage(&self, f: &mut dyn FnMut(&dyn StageView<Self::Scalar>));
    /// Stage `idx` (0 = first layer), if there is one.
    fn stage(&self, idx: usize) -> Option<&dyn StageView<Self::Scalar>>;
    /// `log|det(H + eps I)|` and its sign from the factored stages.
    fn log_det(&self, eps: Self::Scalar) -> LogDet<Self::Scalar>;
    /// The diagonal of `(H + eps I)^{-1}` into `diag`, and the diagonal block of stage
    /// `block.0` into `block.1` when asked (selected inversion over the factors).
    fn selinv(
        &self,
        eps: Self::Scalar,
        diag: &mut [Self::Scalar],
        block: Option<(usize, &mut [Self::Scalar])>,
    );
}

/// The curvature pass over a list of layers paired with their stages `S`: each stage
/// records its derivative blocks on the way in, the end of the list calls `head(u, S_last)`
/// (the loss: it sets the last stage's `S` to the loss Hessian and returns the output
/// adjoint), and each stage contracts its blocks with the adjoint on the way back. With
/// `gn`, the adjoint terms are dropped instead (the Gauss-Newton blocks).
pub trait CurvChain<
    T: Real,
    const B: usize,
    const IN: usize,
    const BIN: usize,
    const OUT: usize,
    const BOUT: usize,
    S,
>
{
    /// Runs the pass from the inputs `z`; `s_in` is the `S` of the stage before (none for
    /// the first). Returns the input adjoint.
    fn curvature<F>(
        &self,
        st: &mut S,
        z: &SMatrix<T, IN, B>,
        s_in: Option<&mut SMatrix<T, BIN, BIN>>,
        gn: bool,
        head: &mut F,
    ) -> SMatrix<T, IN, B>
    where
        F: FnMut(&SMatrix<T, OUT, B>, Option<&mut SMatrix<T, BOUT, BOUT>>) -> SMatrix<T, OUT, B>;
}

impl<T: Real, const B: usize, const W: usize, const BW: usize> StagesFrom<T, B, W, BW> for Nil {
    type Scratch = Nil;
    const N_PARAMS: usize = 0;
    const DEPTH: usize = 0;

    #[inline(always)]
    fn factor(
        &mut self,
        _eps: T,
        _prev: Option<&mut SMatrix<T, BW, BW>>,
        _stage: usize,
    ) -> Result<Inertia, usize> {
        Ok(Inertia::ZERO)
    }
    #[inline(always)]
    fn solve_backward(&self, _scr: &mut Nil, _g: &[T], _eps: T) -> SMatrix<T, W, B> {
        zero_mat()
    }
    #[inline(always)]
    fn solve_forward(
        &self,
        _scr: &Nil,
        _g: &[T],
        _y: Option<&SMatrix<T, W, B>>,
        _eps: T,
        _x: &mut [T],
    ) {
    }
    #[inline(always)]
    fn apply(
        &self,
        _scr: &mut Nil,
        _v: &[T],
        y: Option<&SMatrix<T, W, B>>,
        s_in: Option<&SMatrix<T, BW, BW>>,
        _eps: T,
        _out: &mut [T],
    ) -> SMatrix<T, W, B> {
        // The end of the network: the tangent of the output adjoint is `Hl y`, with the loss
        // Hessian kept as the last stage's `S`.
        match (y, s_in) {
            (Some(y), Some(s)) => s_apply(s, y),
            _ => zero_mat(),
        }
    }
    #[inline(always)]
    fn for_each(&self, _f: &mut dyn FnMut(&dyn StageView<T>)) {}
    fn stage(&self, _idx: usize) -> Option<&dyn StageView<T>> {
        None
    }
    fn log_det(&self, _eps: T) -> LogDet<T> {
        LogDet::ONE
    }
    fn selinv(
        &self,
        _p: Option<&SMatrix<T, BW, BW>>,
        _eps: T,
        _diag: &mut [T],
        _block: Option<(usize, &mut [T])>,
        _stage: usize,
    ) {
    }
}

impl<T: Real, const B: usize, const W: usize, const BW: usize> CurvChain<T, B, W, BW, W, BW, Nil>
    for Nil
{
    #[inline(always)]
    fn curvature<F>(
        &self,
        _st: &mut Nil,
        z: &SMatrix<T, W, B>,
        s_in: Option<&mut SMatrix<T, BW, BW>>,
        _gn: bool,
        head: &mut F,
    ) -> SMatrix<T, W, B>
    where
        F: FnMut(&SMatrix<T, W, B>, Option<&mut SMatrix<T, BW, BW>>) -> SMatrix<T, W, B>,
    {
        head(z, s_in)
    }
}

/// `Slot` of one stage, for the stage type of a layer `Layer<T, Identity, I, O, BIAS, RES>`
/// at batch `B`.
type One<
    T,
    const I: usize,
    const O: usize,
    const BIAS: bool,
    const RES: bool,
    const B: usize,
    const I1: usize,
    const R: usize,
    const BO: usize,
    const BI: usize,
    const RO: usize,
> = Slot<Layer<T, Identity, I, O, BIAS, RES>, Stage<T, I, O, B, I1, R, BO, BI, RO>>;

impl<
        T: Real,
        const I: usize,
        const O: usize,
        const BIAS: bool,
        const RES: bool,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
        Rest,
    > StagesFrom<T, B, I, BI> for Cons<One<T, I, O, BIAS, RES, B, I1, R, BO, BI, RO>, Rest>
where
    Rest: StagesFrom<T, B, O, BO>,
{
    type Scratch = Cons<Scratch<T, O, R, B>, Rest::Scratch>;
    const N_PARAMS: usize = Layer::<T, Identity, I, O, BIAS, RES>::N_PARAMS + Rest::N_PARAMS;
    const DEPTH: usize = 1 + Rest::DEPTH;

    #[inline(always)]
    fn factor(
        &mut self,
        eps: T,
        prev: Option<&mut SMatrix<T, BI, BI>>,
        stage: usize,
    ) -> Result<Inertia, usize> {
        let rest = self.1.factor(eps, Some(&mut self.0.st.s), stage + 1)?;
        let mine = Layer::<T, Identity, I, O, BIAS, RES>::factor_impl(&mut self.0.st, eps, prev)
            .map_err(|_| stage)?;
        Ok(mine + rest)
    }
    #[inline(always)]
    fn solve_backward(&self, scr: &mut Self::Scratch, g: &[T], eps: T) -> SMatrix<T, I, B> {
        let (g0, g1) = g.split_at(Layer::<T, Identity, I, O, BIAS, RES>::N_PARAMS);
        let s_out = self.1.solve_backward(&mut scr.1, g1, eps);
        Layer::<T, Identity, I, O, BIAS, RES>::solve_backward(
            &self.0.st, &mut scr.0, g0, &s_out, eps,
        )
    }
    #[inline(always)]
    fn solve_forward(
        &self,
        scr: &Self::Scratch,
        g: &[T],
        y: Option<&SMatrix<T, I, B>>,
        eps: T,
        x: &mut [T],
    ) {
        let p = Layer::<T, Identity, I, O, BIAS, RES>::N_PARAMS;
        let ((g0, g1), (x0, x1)) = (g.split_at(p), x.split_at_mut(p));
        let y_out = Layer::<T, Identity, I, O, BIAS, RES>::solve_forward(
            &self.0.st, &scr.0, g0, y, eps, x0,
        );
        self.1.solve_forward(&scr.1, g1, Some(&y_out), eps, x1);
    }
    #[inline(always)]
    fn apply(
        &self,
        scr: &mut Self::Scratch,
        v: &[T],
        y: Option<&SMatrix<T, I, B>>,
        _s_in: Option<&SMatrix<T, BI, BI>>,
        eps: T,
        out: &mut [T],
    ) -> SMatrix<T, I, B> {
        let p = Layer::<T, Identity, I, O, BIAS, RES>::N_PARAMS;
        let ((v0, v1), (o0, o1)) = (v.split_at(p), out.split_at_mut(p));
        Layer::<T, Identity, I, O, BIAS, RES>::apply_forward(&self.0.st, &mut scr.0, v0, y);
        let r = self
            .1
            .apply(&mut scr.1, v1, Some(&scr.0.ty), Some(&self.0.st.s), eps, o1);
        Layer::<T, Identity, I, O, BIAS, RES>::apply_backward(
            &self.0.st, &scr.0, v0, y, &r, eps, o0,
        )
    }
    fn for_each(&self, f: &mut dyn FnMut(&dyn StageView<T>)) {
        f(&self.0.st);
        self.1.for_each(f);
    }
    fn stage(&self, idx: usize) -> Option<&dyn StageView<T>> {
        if idx == 0 {
            Some(&self.0.st)
        } else {
            self.1.stage(idx - 1)
        }
    }
    fn log_det(&self, eps: T) -> LogDet<T> {
        Layer::<T, Identity, I, O, BIAS, RES>::log_det_stage(&self.0.st, eps)
            .times(self.1.log_det(eps))
    }
    fn selinv(
        &self,
        p: Option<&SMatrix<T, BI, BI>>,
        eps: T,
        diag: &mut [T],
        block: Option<(usize, &mut [T])>,
        stage: usize,
    ) {
        let n = Layer::<T, Identity, I, O, BIAS, RES>::N_PARAMS;
        let (d0, d1) = diag.split_at_mut(n);
        let (mine, rest) = match block {
            Some((s, b)) if s == stage => (Some(b), None),
            other => (None, other),
        };
        let p_out =
            Layer::<T, Identity, I, O, BIAS, RES>::selinv_stage(&self.0.st, p, eps, d0, mine);
        self.1.selinv(Some(&p_out), eps, d1, rest, stage + 1);
    }
}

impl<
        T: Real,
        const W: usize,
        const BIAS: bool,
        const RES: bool,
        const N: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BW: usize,
        const RO: usize,
        Rest,
    > StagesFrom<T, B, W, BW> for Cons<[One<T, W, W, BIAS, RES, B, I1, R, BW, BW, RO>; N], Rest>
where
    Rest: StagesFrom<T, B, W, BW>,
{
    type Scratch = Cons<[Scratch<T, W, R, B>; N], Rest::Scratch>;
    const N_PARAMS: usize = N * Layer::<T, Identity, W, W, BIAS, RES>::N_PARAMS + Rest::N_PARAMS;
    const DEPTH: usize = N + Rest::DEPTH;

    #[inline(always)]
    fn factor(
        &mut self,
        eps: T,
        mut prev: Option<&mut SMatrix<T, BW, BW>>,
        stage: usize,
    ) -> Result<Inertia, usize> {
        const { assert!(N > 0, "an array of layers has at least one element") };
        let mut inertia = self
            .1
            .factor(eps, Some(&mut self.0[N - 1].st.s), stage + N)?;
        for i in (0..N).rev() {
            let (before, rest) = self.0.split_at_mut(i);
            let p = match before.last_mut() {
                Some(b) => Some(&mut b.st.s),
                None => prev.as_deref_mut(),
            };
            inertia += Layer::<T, Identity, W, W, BIAS, RES>::factor_impl(&mut rest[0].st, eps, p)
                .map_err(|_| stage + i)?;
        }
        Ok(inertia)
    }
    #[inline(always)]
    fn solve_backward(&self, scr: &mut Self::Scratch, g: &[T], eps: T) -> SMatrix<T, W, B> {
        const { assert!(N > 0, "an array of layers has at least one element") };
        let p = Layer::<T, Identity, W, W, BIAS, RES>::N_PARAMS;
        let (g0, g1) = g.split_at(N * p);
        let mut s = self.1.solve_backward(&mut scr.1, g1, eps);
        for i in (0..N).rev() {
            s = Layer::<T, Identity, W, W, BIAS, RES>::solve_backward(
                &self.0[i].st,
                &mut scr.0[i],
                &g0[i * p..(i + 1) * p],
                &s,
                eps,
            );
        }
        s
    }
    #[inline(always)]
    fn solve_forward(
        &self,
        scr: &Self::Scratch,
        g: &[T],
        y: Option<&SMatrix<T, W, B>>,
        eps: T,
        x: &mut [T],
    ) {
        let p = Layer::<T, Identity, W, W, BIAS, RES>::N_PARAMS;
        let ((g0, g1), (x0, x1)) = (g.split_at(N * p), x.split_at_mut(N * p));
        let mut y = y.copied();
        for i in 0..N {
            let (gi, xi) = (&g0[i * p..(i + 1) * p], &mut x0[i * p..(i + 1) * p]);
            y = Some(Layer::<T, Identity, W, W, BIAS, RES>::solve_forward(
                &self.0[i].st,
                &scr.0[i],
                gi,
                y.as_ref(),
                eps,
                xi,
            ));
        }
        self.1.solve_forward(&scr.1, g1, y.as_ref(), eps, x1);
    }
    #[inline(always)]
    fn apply(
        &self,
        scr: &mut Self::Scratch,
        v: &[T],
        y: Option<&SMatrix<T, W, B>>,
        _s_in: Option<&SMatrix<T, BW, BW>>,
        eps: T,
        out: &mut [T],
    ) -> SMatrix<T, W, B> {
        const { assert!(N > 0, "an array of layers has at least one element") };
        let p = Layer::<T, Identity, W, W, BIAS, RES>::N_PARAMS;
        let ((v0, v1), (o0, o1)) = (v.split_at(N * p), out.split_at_mut(N * p));
        for i in 0..N {
            let (done, todo) = scr.0.split_at_mut(i);
            let yin = match done.last() {
                Some(d) => Some(&d.ty),
                None => y,
            };
            Layer::<T, Identity, W, W, BIAS, RES>::apply_forward(
                &self.0[i].st,
                &mut todo[0],
                &v0[i * p..(i + 1) * p],
                yin,
            );
        }
        let mut r = self.1.apply(
            &mut scr.1,
            v1,
            Some(&scr.0[N - 1].ty),
            Some(&self.0[N - 1].st.s),
            eps,
            o1,
        );
        for i in (0..N).rev() {
            let yin = if i == 0 { y } else { Some(&scr.0[i - 1].ty) };
            let (vi, oi) = (&v0[i * p..(i + 1) * p], &mut o0[i * p..(i + 1) * p]);
            r = Layer::<T, Identity, W, W, BIAS, RES>::apply_backward(
                &self.0[i].st,
                &scr.0[i],
                vi,
                yin,
                &r,
                eps,
                oi,
            );
        }
        r
    }
    fn for_each(&self, f: &mut dyn FnMut(&dyn StageView<T>)) {
        for slot in self.0.iter() {
            f(&slot.st);
        }
        self.1.for_each(f);
    }
    fn stage(&self, idx: usize) -> Option<&dyn StageView<T>> {
        match self.0.get(idx) {
            Some(slot) => Some(&slot.st),
            None => self.1.stage(idx - N),
        }
    }
    fn log_det(&self, eps: T) -> LogDet<T> {
        let mut acc = LogDet::ONE;
        for slot in self.0.iter() {
            acc = acc.times(Layer::<T, Identity, W, W, BIAS, RES>::log_det_stage(
                &slot.st, eps,
            ));
        }
        acc.times(self.1.log_det(eps))
    }
    fn selinv(
        &self,
        p: Option<&SMatrix<T, BW, BW>>,
        eps: T,
        diag: &mut [T],
        mut block: Option<(usize, &mut [T])>,
        stage: usize,
    ) {
        let n = Layer::<T, Identity, W, W, BIAS, RES>::N_PARAMS;
        let (d0, d1) = diag.split_at_mut(N * n);
        let mut cov = p.copied();
        for (i, slot) in self.0.iter().enumerate() {
            let mine = match block.take() {
                Some((s, b)) if s == stage + i => Some(b),
                other => {
                    block = other;
                    None
                }
            };
            cov = Some(Layer::<T, Identity, W, W, BIAS, RES>::selinv_stage(
                &slot.st,
                cov.as_ref(),
                eps,
                &mut d0[i * n..(i + 1) * n],
                mine,
            ));
        }
        self.1.selinv(cov.as_ref(), eps, d1, block, stage + N);
    }
}

/// [`StageStack`] for a network's list, from its first element's dimensions.
macro_rules! stage_stack {
    (impl[$($gen:tt)*] $head:ty, $t:ty) => {
        impl<$($gen)*, Rest> StageStack for Cons<$head, Rest>
        where
            Self: StagesFrom<$t, B, I, BI> + Copy + bytemuck::Zeroable,
            Rest: ConstZero,
        {
            type Scalar = $t;
            type Scratch = <Self as StagesFrom<$t, B, I, BI>>::Scratch;
            const N_PARAMS: usize = <Self as StagesFrom<$t, B, I, BI>>::N_PARAMS;
            const DEPTH: usize = <Self as StagesFrom<$t, B, I, BI>>::DEPTH;

            #[inline]
            fn factor(&mut self, eps: $t) -> Result<Inertia, usize> {
                StagesFrom::<$t, B, I, BI>::factor(self, eps, None, 0)
            }
            #[inline]
            fn solve(&self, scr: &mut Self::Scratch, b: &[$t], x: &mut [$t], eps: $t) {
                let _ = StagesFrom::<$t, B, I, BI>::solve_backward(self, scr, b, eps);
                StagesFrom::<$t, B, I, BI>::solve_forward(self, scr, b, None, eps, x);
            }
            #[inline]
            fn apply(&self, scr: &mut Self::Scratch, v: &[$t], out: &mut [$t], eps: $t) {
                let _ = StagesFrom::<$t, B, I, BI>::apply(self, scr, v, None, None, eps, out);
            }
            fn for_each_stage(&self, f: &mut dyn FnMut(&dyn StageView<$t>)) {
                StagesFrom::<$t, B, I, BI>::for_each(self, f);
            }
            fn stage(&self, idx: usize) -> Option<&dyn StageView<$t>> {
                StagesFrom::<$t, B, I, BI>::stage(self, idx)
            }
            fn log_det(&self, eps: $t) -> LogDet<$t> {
                StagesFrom::<$t, B, I, BI>::log_det(self, eps)
            }
            fn selinv(&self, eps: $t, diag: &mut [$t], block: Option<(usize, &mut [$t])>) {
                StagesFrom::<$t, B, I, BI>::selinv(self, None, eps, diag, block, 0);
            }
        }
    };
}

stage_stack!(
    impl[T: Real, const I: usize, const O: usize, const BIAS: bool, const RES: bool, const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize]
    One<T, I, O, BIAS, RES, B, I1, R, BO, BI, RO>, T
);
stage_stack!(
    impl[T: Real, const I: usize, const BIAS: bool, const RES: bool, const N: usize, const B: usize, const I1: usize, const R: usize, const BI: usize, const RO: usize]
    [One<T, I, I, BIAS, RES, B, I1, R, BI, BI, RO>; N], T
);

impl<
        T: Real,
        A: Activation,
        const I: usize,
        const O: usize,
        const BIAS: bool,
        const RES: bool,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
        const OUT: usize,
        const BOUT: usize,
        LR,
        SR,
    > CurvChain<T, B, I, BI, OUT, BOUT, Cons<One<T, I, O, BIAS, RES, B, I1, R, BO, BI, RO>, SR>>
    for Cons<&Layer<T, A, I, O, BIAS, RES>, LR>
where
    LR: CurvChain<T, B, O, BO, OUT, BOUT, SR>,
{
    #[inline(always)]
    fn curvature<F>(
        &self,
        st: &mut Cons<One<T, I, O, BIAS, RES, B, I1, R, BO, BI, RO>, SR>,
        z: &SMatrix<T, I, B>,
        _s_in: Option<&mut SMatrix<T, BI, BI>>,
        gn: bool,
        head: &mut F,
    ) -> SMatrix<T, I, B>
    where
        F: FnMut(&SMatrix<T, OUT, B>, Option<&mut SMatrix<T, BOUT, BOUT>>) -> SMatrix<T, OUT, B>,
    {
        let out = self.0.curv_forward(z, &mut st.0.st);
        let beta = self
            .1
            .curvature(&mut st.1, &out, Some(&mut st.0.st.s), gn, head);
        backward_half::<T, A, I, O, BIAS, RES, B, I1, R, BO, BI, RO>(&mut st.0.st, &beta, gn)
    }
}

impl<
        T: Real,
        A: Activation,
        const W: usize,
        const BIAS: bool,
        const RES: bool,
        const N: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BW: usize,
        const RO: usize,
        const OUT: usize,
        const BOUT: usize,
        LR,
        SR,
    >
    CurvChain<T, B, W, BW, OUT, BOUT, Cons<[One<T, W, W, BIAS, RES, B, I1, R, BW, BW, RO>; N], SR>>
    for Cons<&[Layer<T, A, W, W, BIAS, RES>; N], LR>
where
    LR: CurvChain<T, B, W, BW, OUT, BOUT, SR>,
{
    #[inline(always)]
    fn curvature<F>(
        &self,
        st: &mut Cons<[One<T, W, W, BIAS, RES, B, I1, R, BW, BW, RO>; N], SR>,
        z: &SMatrix<T, W, B>,
        _s_in: Option<&mut SMatrix<T, BW, BW>>,
        gn: bool,
        head: &mut F,
    ) -> SMatrix<T, W, B>
    where
        F: FnMut(&SMatrix<T, OUT, B>, Option<&mut SMatrix<T, BOUT, BOUT>>) -> SMatrix<T, OUT, B>,
    {
        const { assert!(N > 0, "an array of layers has at least one element") };
        let mut out = *z;
        for (layer, slot) in self.0.iter().zip(st.0.iter_mut()) {
            out = layer.curv_forward(&out, &mut slot.st);
        }
        let mut beta = self
            .1
            .curvature(&mut st.1, &out, Some(&mut st.0[N - 1].st.s), gn, head);
        for slot in st.0.iter_mut().rev() {
            beta = backward_half::<T, A, W, W, BIAS, RES, B, I1, R, BW, BW, RO>(
                &mut slot.st,
                &beta,
                gn,
            );
        }
        beta
    }
}

/// The backward half of the curvature pass for one stage: the adjoint contraction, or for
/// Gauss-Newton the adjoint terms dropped (the input adjoint is then unused).
#[inline(always)]
fn backward_half<
    T: Real,
    A: Activation,
    const I: usize,
    const O: usize,
    const BIAS: bool,
    const RES: bool,
    const B: usize,
    const I1: usize,
    const R: usize,
    const BO: usize,
    const BI: usize,
    const RO: usize,
>(
    st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
    beta: &SMatrix<T, O, B>,
    gn: bool,
) -> SMatrix<T, I, B> {
    if gn {
        drop_adjoint_terms(st);
        zero_mat()
    } else {
        Layer::<T, A, I, O, BIAS, RES>::curv_backward(st, beta)
    }
}
