//! The batch-by-outputs (Woodbury) form of the Gauss-Newton solve (docs/math.md section 5).
//!
//! With the loss Hessian factored per sample, `Hl = C C'` (`M = outputs x batch` columns),
//! and `U = J'C`, `(G + eps I)^{-1} b = (b - U (eps I + U'U)^{-1} U'b) / eps`. A network's
//! `ggn_woodbury_into` fills a [`Woodbury`] storage: the forward record at the batch, a copy
//! of the weights, the factors `C_n` and the `M x M` Gram matrix `U'U` (accumulated stage by
//! stage from `M` back-propagated adjoints). [`Woodbury::factor`] factors `eps I + U'U` by
//! Cholesky; a solve is then one tangent pass and one adjoint pass over the stored record.
//! The storage is self-contained (it solves the problem it was filled with even if the
//! network's parameters change afterwards) and records the fingerprint of the parameters it
//! was filled at.

use nalgebra::SMatrix;

use crate::chain::{Chain, ConstZero};
use crate::error::SolveError;
use crate::ggn::factor_apply;
use crate::layer::{check_vector, zero_mat};
use crate::linalg::cholesky::{cholesky_in_place, cholesky_solve};
use crate::linalg::ldlt::Inertia;
use crate::real::{all_finite, Real};
use crate::refine::{refine, Refinable, Refinement};
use crate::solver::{Factorable, Factorization, GradientSolve};
use crate::stage::selinv::LogDet;

/// Storage of the Woodbury Gauss-Newton solve of a network with `I` inputs, `O` outputs,
/// batch `B` (`M = O * B`) and `N` parameters: `W` is the list of its layers' weights and
/// `Tp` the list of its forward records. Generated code names it through a type alias
/// (`<Net>Ggn`); its size is [`Self::BYTES`].
#[repr(C)]
pub struct Woodbury<
    W,
    Tp,
    T: Real,
    const I: usize,
    const O: usize,
    const B: usize,
    const M: usize,
    const N: usize,
> {
    pub(crate) weights: W,
    pub(crate) tapes: Tp,
    pub(crate) x: SMatrix<T, I, B>,
    pub(crate) c: [SMatrix<T, O, O>; B],
    pub(crate) gram: SMatrix<T, M, M>,
    /// The gradient's coordinates `w` (`g = U w`, `C_n w_n = dl/du_n`) when `coords_ok`.
    pub(crate) coords: SMatrix<T, O, B>,
    chol: SMatrix<T, M, M>,
    residual: [T; N],
    correction: [T; N],
    fingerprint: u64,
    /// The fingerprint of the scaling `D` the Gram matrix holds when `scaled`.
    scale_print: u64,
    /// The fingerprint of the gradient vector the fill computed with the curvature, when
    /// `grad_set` (what [`WoodburyFactored::solve_gradient`] compares its `g` with).
    grad_print: u64,
    filled: bool,
    /// `gram` holds `U'D^{-2}U` for the scaling whose fingerprint is `scale_print`
    /// (otherwise `U'U`, as the fill left it).
    scaled: bool,
    /// `coords` holds the gradient's coordinates (checked at the fill).
    pub(crate) coords_ok: bool,
    grad_set: bool,
}

// SAFETY: lists of `Zeroable` layers and tapes (bounded below), matrices and arrays of
// scalars, an integer and a bool: all-zero bytes are the empty storage.
unsafe impl<
        W: bytemuck::Zeroable,
        Tp: bytemuck::Zeroable,
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const M: usize,
        const N: usize,
    > bytemuck::Zeroable for Woodbury<W, Tp, T, I, O, B, M, N>
{
}

impl<
        W: Copy,
        Tp: Copy,
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const M: usize,
        const N: usize,
    > Clone for Woodbury<W, Tp, T, I, O, B, M, N>
{
    fn clone(&self) -> Self {
        Woodbury {
            weights: self.weights,
            tapes: self.tapes,
            x: self.x,
            c: self.c,
            gram: self.gram,
            coords: self.coords,
            coords_ok: self.coords_ok,
            grad_print: self.grad_print,
            grad_set: self.grad_set,
            chol: self.chol,
            residual: self.residual,
            correction: self.correction,
            fingerprint: self.fingerprint,
            filled: self.filled,
            scaled: self.scaled,
            scale_print: self.scale_print,
        }
    }
}

impl<
        W,
        Tp,
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const M: usize,
        const N: usize,
    > core::fmt::Debug for Woodbury<W, Tp, T, I, O, B, M, N>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Woodbury")
            .field("filled", &self.filled)
            .field("columns", &M)
            .field("params", &N)
            .field("bytes", &core::mem::size_of::<Self>())
            .finish()
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    Woodbury<W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
{
    /// Empty storage; usable in `const` and `static` items.
    pub const ZERO: Self = {
        assert!(M == O * B, "M must be outputs times batch");
        assert!(
            W::N_PARAMS == N,
            "the weights and the parameter count disagree"
        );
        Woodbury {
            weights: W::ZERO,
            tapes: Tp::ZERO,
            x: zero_mat(),
            c: [zero_mat(); B],
            gram: zero_mat(),
            coords: zero_mat(),
            coords_ok: false,
            grad_print: 0,
            grad_set: false,
            chol: zero_mat(),
            residual: [T::ZERO; N],
            correction: [T::ZERO; N],
            fingerprint: 0,
            filled: false,
            scaled: false,
            scale_print: 0,
        }
    };

    /// Size of this storage in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Whether the storage holds a complete curvature.
    pub fn is_filled(&self) -> bool {
        self.filled
    }

    /// The fingerprint of the parameters the storage was filled at, if it holds a curvature.
    pub fn fingerprint(&self) -> Option<u64> {
        self.filled.then_some(self.fingerprint)
    }

    /// Marks the storage empty (the start of a fill).
    pub(crate) fn begin_fill(&mut self) {
        self.filled = false;
        self.scaled = false;
        self.coords_ok = false;
        self.grad_set = false;
    }

    /// Records the gradient vector computed with this fill (after [`Self::finish_fill`]):
    /// [`WoodburyFactored::solve_gradient`] then solves for exactly that right-hand side.
    pub(crate) fn set_gradient(&mut self, grad: &[T; N]) {
        self.grad_print = vector_print(grad);
        self.grad_set = self.filled;
    }

    /// Whether the fill holds the gradient's coordinates `w` (`g = U w`), so that
    /// [`WoodburyFactored::solve_gradient`] takes the form without division by eps.
    pub fn has_gradient_coords(&self) -> bool {
        self.filled && self.coords_ok
    }

    /// Marks a completed fill.
    pub(crate) fn finish_fill(&mut self, fingerprint: u64) {
        self.fingerprint = fingerprint;
        self.filled = true;
    }

    /// Factors `eps I + U'U` (Cholesky, `M x M`) for solves with `G + eps I`. eps must be
    /// positive and its reciprocal finite ([`SolveError::Singular`] otherwise: `G` is
    /// singular whenever parameters outnumber outputs times batch); [`SolveError::NoCurvature`]
    /// when the storage was never filled or its last fill failed; [`SolveError::NonFiniteEps`]
    /// for a NaN or infinite eps.
    pub fn factor(
        &mut self,
        eps: T,
    ) -> Result<WoodburyFactored<'_, W, Tp, T, I, O, B, M, N>, SolveError> {
        self.factor_with(eps, None)
    }

    /// Factors `eps I + U'D^{-2}U` (Cholesky, `M x M`) for solves with `G + eps D^2`, `D =
    /// diag(scale)`: `(G + eps D^2)^{-1} = D^{-1} (D^{-1} G D^{-1} + eps I)^{-1} D^{-1}`, the
    /// Woodbury form on `U` scaled by `D^{-1}` (exact). The scaled Gram matrix costs `M`
    /// adjoint and `M` tangent passes the first time a scaling is used on a fill (it is kept
    /// for further factorisations at other eps with the same scaling). Errors as
    /// [`Self::factor`], and [`SolveError::Config`] naming `scale` when an entry of `scale`
    /// is not positive and finite (or its square or reciprocal square is not finite).
    pub fn factor_scaled<'a>(
        &'a mut self,
        eps: T,
        scale: &'a [T; N],
    ) -> Result<WoodburyFactored<'a, W, Tp, T, I, O, B, M, N>, SolveError> {
        self.factor_with(eps, Some(scale))
    }

    /// [`Self::factor`] (`scale` `None`) and [`Self::factor_scaled`]: the checks, the Gram
    /// matrix of the requested metric, and its Cholesky factor at `eps`.
    fn factor_with<'a>(
        &'a mut self,
        eps: T,
        scale: Option<&'a [T; N]>,
    ) -> Result<WoodburyFactored<'a, W, Tp, T, I, O, B, M, N>, SolveError> {
        if !self.filled {
            return Err(SolveError::NoCurvature);
        }
        if !eps.finite() {
            return Err(SolveError::NonFiniteEps);
        }
        if !(eps > T::ZERO) || !(T::ONE / eps).finite() {
            return Err(SolveError::Singular { stage: 0 });
        }
        match scale {
            None if self.scaled => {
                // The Gram matrix holds a scaled fill: rebuild `U'U`.
                self.scale_gram(None)?;
            }
            None => {}
            Some(d) => {
                let print = check_scale(d)?;
                if !self.scaled || self.scale_print != print {
                    self.scale_gram(Some(d))?;
                    self.scale_print = print;
                }
            }
        }
        self.chol = self.gram;
        for q in 0..M {
            self.chol[(q, q)] += eps;
        }
        cholesky_in_place(&mut self.chol).map_err(|()| SolveError::Singular { stage: 0 })?;
        let coords = (self.coords_ok && self.grad_set).then_some((&self.coords, self.grad_print));
        Ok(WoodburyFactored {
            gram: &self.gram,
            coords,
            op: Op {
                weights: &self.weights,
                tapes: &mut self.tapes,
                x: &self.x,
                c: &self.c,
                chol: &self.chol,
                eps,
                scale: scale.map(|d| d.as_slice()),
            },
            residual: &mut self.residual,
            correction: &mut self.correction,
        })
    }

    /// The diagonal of the Gauss-Newton matrix `G = U U'` into `out` (`out[i]` the squared
    /// norm of row `i` of `U`: the squared column norm of the Jacobian `C'J`), from `M`
    /// adjoint passes. [`SolveError::NoCurvature`] when the storage holds none.
    pub fn gauss_newton_diag(&mut self, out: &mut [T; N]) -> Result<(), SolveError> {
        if !self.filled {
            return Err(SolveError::NoCurvature);
        }
        out.fill(T::ZERO);
        for a in 0..M {
            self.column(a);
            for (o, u) in out.iter_mut().zip(self.residual.iter()) {
                *o += *u * *u;
            }
        }
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// Column `a` of `U = J'C` into `self.residual` (one adjoint pass).
    fn column(&mut self, a: usize) {
        let mut w = SMatrix::<T, O, B>::zeros();
        w.as_mut_slice()[a] = T::ONE;
        let beta = factor_apply(&self.c, &w, false);
        self.weights
            .jtv(&self.tapes, &self.x, &beta, &mut self.residual);
    }

    /// `gram = U'D^{-2}U` (`U'U` without a scaling): column `a` is `C'J (D^{-2} u_a)`, one
    /// adjoint pass for `u_a` and one tangent pass.
    fn scale_gram(&mut self, scale: Option<&[T; N]>) -> Result<(), SolveError> {
        for a in 0..M {
            self.column(a);
            match scale {
                Some(d) => {
                    for ((c, u), di) in self.correction.iter_mut().zip(&self.residual).zip(d) {
                        *c = *u / (*di * *di);
                    }
                }
                None => self.correction = self.residual,
            }
            let y = self
                .weights
                .jv(&mut self.tapes, &self.x, None, &self.correction);
            let col = factor_apply(&self.c, &y, true);
            for (q, v) in col.as_slice().iter().enumerate() {
                self.gram[(q, a)] = *v;
            }
        }
        // Exactly symmetric (the two triangles agree to rounding).
        for a in 0..M {
            for q in a + 1..M {
                let v = (self.gram[(q, a)] + self.gram[(a, q)]) * T::c(0.5);
                self.gram[(q, a)] = v;
                self.gram[(a, q)] = v;
            }
        }
        self.scaled = scale.is_some();
        if !all_finite(self.gram.as_slice()) {
            self.filled = false;
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }
}

/// The fingerprint of a vector's bits.
pub(crate) fn vector_print<T: Real>(v: &[T]) -> u64 {
    let mut h = crate::chain::Fingerprint::new();
    h.feed(v);
    h.finish()
}

/// Checks a diagonal scaling (every entry positive and finite, with a finite square and
/// reciprocal square) and returns a fingerprint of its bits.
pub(crate) fn check_scale<T: Real>(scale: &[T]) -> Result<u64, SolveError> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &d in scale {
        let ok = d.finite() && d > T::ZERO && (d * d).finite() && (T::ONE / (d * d)).finite();
        if !ok {
            return Err(SolveError::Config(crate::error::ConfigError {
                field: "scale",
                value: d.to_f64(),
                requirement: "positive and finite, with a finite square and reciprocal square",
            }));
        }
        h = (h ^ d.to_f64().to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(h)
}

/// The stored problem at one eps: what the solve and the product read.
struct Op<'a, W, Tp, T: Real, const I: usize, const O: usize, const B: usize, const M: usize> {
    weights: &'a W,
    tapes: &'a mut Tp,
    x: &'a SMatrix<T, I, B>,
    c: &'a [SMatrix<T, O, O>; B],
    chol: &'a SMatrix<T, M, M>,
    eps: T,
    /// The diagonal scaling `D` (`None`: the identity).
    scale: Option<&'a [T]>,
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize> Refinable<T>
    for Op<'_, W, Tp, T, I, O, B, M>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp>,
{
    /// `out = (G + eps I) v = J'C C'J v + eps v`.
    fn product(&mut self, v: &[T], out: &mut [T]) {
        let y = self.weights.jv(self.tapes, self.x, None, v);
        let cty = factor_apply(self.c, &y, true);
        let beta = factor_apply(self.c, &cty, false);
        self.weights.jtv(self.tapes, self.x, &beta, out);
        match self.scale {
            None => {
                for (o, vi) in out.iter_mut().zip(v) {
                    *o += self.eps * *vi;
                }
            }
            Some(d) => {
                for ((o, vi), di) in out.iter_mut().zip(v).zip(d) {
                    *o += self.eps * (*di * *di) * *vi;
                }
            }
        }
    }

    /// `x = (b - J'C (eps I + C'JJ'C)^{-1} C'J b) / eps`.
    ///
    /// With a scaling `D`: `x = (b - U (eps I + U'D^{-2}U)^{-1} U'D^{-2} b) / (eps D^2)`.
    fn approx_solve(&mut self, b: &[T], x: &mut [T]) {
        let y = match self.scale {
            None => self.weights.jv(self.tapes, self.x, None, b),
            Some(d) => {
                // D^{-2} b, in x until the adjoint pass overwrites it.
                for ((xi, bi), di) in x.iter_mut().zip(b).zip(d) {
                    *xi = *bi / (*di * *di);
                }
                self.weights.jv(self.tapes, self.x, None, x)
            }
        };
        let mut w = factor_apply(self.c, &y, true);
        cholesky_solve(self.chol, w.as_mut_slice());
        let beta = factor_apply(self.c, &w, false);
        self.weights.jtv(self.tapes, self.x, &beta, x);
        let inv = T::ONE / self.eps;
        match self.scale {
            None => {
                for (xi, bi) in x.iter_mut().zip(b) {
                    *xi = (*bi - *xi) * inv;
                }
            }
            Some(d) => {
                for ((xi, bi), di) in x.iter_mut().zip(b).zip(d) {
                    *xi = (*bi - *xi) * inv / (*di * *di);
                }
            }
        }
    }
}

/// A factored `G + eps I` in the Woodbury form, borrowed from its [`Woodbury`] storage.
pub struct WoodburyFactored<
    'a,
    W,
    Tp,
    T: Real,
    const I: usize,
    const O: usize,
    const B: usize,
    const M: usize,
    const N: usize,
> {
    op: Op<'a, W, Tp, T, I, O, B, M>,
    /// `U'U` (`U'D^{-2}U` when scaled), the matrix `chol` factors without eps: its lower
    /// triangle (a fill accumulates only that half).
    gram: &'a SMatrix<T, M, M>,
    /// The gradient's coordinates and the fingerprint of its vector, when the fill has both.
    coords: Option<(&'a SMatrix<T, O, B>, u64)>,
    residual: &'a mut [T; N],
    correction: &'a mut [T; N],
}

impl<
        W,
        Tp,
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const M: usize,
        const N: usize,
    > core::fmt::Debug for WoodburyFactored<'_, W, Tp, T, I, O, B, M, N>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WoodburyFactored")
            .field("eps", &self.op.eps)
            .finish()
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    WoodburyFactored<'_, W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp>,
{
    /// `x = (G + eps I)^{-1} b` in the Woodbury form: one tangent and one adjoint pass. The
    /// form divides by eps, so it loses digits as eps falls: [`Self::solve_refined`] checks.
    pub fn solve(&mut self, b: &[T; N], x: &mut [T; N]) -> Result<(), SolveError> {
        check_vector(b)?;
        self.op.approx_solve(b, x);
        if !all_finite(x) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// [`Self::solve`] and at most `max_steps` steps of iterative refinement with the exact
    /// `(G + eps I) x` (see [`crate::refine`]). Returns the relative residual of the returned
    /// `x` and a bound on its backward error; [`SolveError::Inaccurate`] when the residual
    /// is above `sqrt(EPSILON)` and the backward error above `N EPSILON` (at an eps so small
    /// that the division by eps cancels every digit of a solution in the range of `G`).
    pub fn solve_refined(
        &mut self,
        b: &[T; N],
        x: &mut [T; N],
        max_steps: usize,
    ) -> Result<Refinement<T>, SolveError> {
        self.solve(b, x)?;
        refine(
            &mut self.op,
            b,
            x,
            self.residual,
            self.correction,
            max_steps,
        )
    }

    /// `x = (G + eps D^2)^{-1} g` for `g` the gradient the storage was filled with (bit for
    /// bit, as [`Model::gradient_gauss_newton_into`](crate::optim::Model::gradient_gauss_newton_into)
    /// returns it), in the form that does not divide by eps (docs/math.md section 5.3): with
    /// `g = U w`, `x = D^{-2} U z`, `z = (eps I + U'D^{-2}U)^{-1} w`, one `M x M` solve
    /// (refined once in the small space) and one backward pass, accurate at any eps where
    /// the Cholesky factor exists. The quadratic model's terms come from the small space
    /// too ([`GradientSolve`]). `Ok(None)` (and `x` untouched) when this route is not open:
    /// `g` is not the fill's gradient, or the loss gave no coordinates `w` (use
    /// [`Self::solve_refined`]); [`SolveError::Inaccurate`] when the small system's backward
    /// error ([`GradientSolve::residual`]) stays above `sqrt(EPSILON)`.
    pub fn solve_gradient(
        &mut self,
        g: &[T; N],
        x: &mut [T; N],
    ) -> Result<Option<GradientSolve<T>>, SolveError> {
        let Some((coords, print)) = self.coords else {
            return Ok(None);
        };
        if vector_print(g) != print {
            return Ok(None);
        }
        let w = nalgebra::SVector::<T, M>::from_column_slice(coords.as_slice());
        self.solve_coords(&w, x).map(Some)
    }

    /// Geodesic acceleration's solve ([`Factorization::solve_geodesic`]): `x = (G + eps
    /// D^2)^{-1} U w` with `w = C'u''`, `u'' = (2/h) (du/h - J v)` (`J v` one tangent pass
    /// over the stored record), in the form of [`Self::solve_gradient`] that does not divide
    /// by eps (the right-hand side `J'C C'u''` is in the range of `U`). `du` is the change of
    /// the outputs, `u(p + h v) - u(p)`, `O * B` scalars sample after sample. Errors: a
    /// non-finite `v` or `du` ([`SolveError::Net`]), `du` of another length or `h` not
    /// positive and finite ([`SolveError::Config`] naming `du` or `h`), and those of
    /// [`Self::solve_gradient`]'s small system.
    pub fn solve_geodesic(
        &mut self,
        v: &[T; N],
        du: &[T],
        h: T,
        x: &mut [T; N],
    ) -> Result<(), SolveError> {
        check_vector(v)?;
        if du.len() != M {
            return Err(SolveError::Config(crate::error::ConfigError {
                field: "du",
                value: du.len() as f64,
                requirement: "outputs times batch scalars long (the change of the batch's outputs)",
            }));
        }
        check_vector(du)?;
        if !(h.finite() && h > T::ZERO && (T::ONE / (h * h)).finite()) {
            return Err(SolveError::Config(crate::error::ConfigError {
                field: "h",
                value: h.to_f64(),
                requirement: "positive and finite, with a finite 1/h^2",
            }));
        }
        let jv = self.op.weights.jv(self.op.tapes, self.op.x, None, v);
        let (two_h, inv_h) = (T::c(2.0) / h, T::ONE / h);
        let mut upp = SMatrix::<T, O, B>::zeros();
        for ((o, d), j) in upp.iter_mut().zip(du).zip(jv.iter()) {
            *o = two_h * (*d * inv_h - *j);
        }
        let w = factor_apply(self.op.c, &upp, true);
        let w = nalgebra::SVector::<T, M>::from_column_slice(w.as_slice());
        self.solve_coords(&w, x).map(|_| ())
    }

    /// `x = (G + eps D^2)^{-1} U w = D^{-2} U z`, `z = (eps I + U'D^{-2}U)^{-1} w` (one `M x M`
    /// solve refined once in the small space, one backward pass), with the quadratic
    /// model's terms of `x`; [`SolveError::Inaccurate`] when the small system's backward
    /// error stays above `sqrt(EPSILON)`.
    fn solve_coords(
        &mut self,
        w: &nalgebra::SVector<T, M>,
        x: &mut [T; N],
    ) -> Result<GradientSolve<T>, SolveError> {
        let w = *w;
        let eps = self.op.eps;
        // S v from the lower triangle (the fill accumulates only that half of `U'U`).
        let gram = self.gram;
        let sym = |v: &nalgebra::SVector<T, M>| {
            let mut out = nalgebra::SVector::<T, M>::zeros();
            out.sygemv(T::ONE, gram, v, T::ZERO);
            out
        };
        let shifted = |v: &nalgebra::SVector<T, M>| sym(v) + v * eps;
        let mut z = w;
        cholesky_solve(self.op.chol, z.as_mut_slice());
        let mut r = w - shifted(&z);
        cholesky_solve(self.op.chol, r.as_mut_slice());
        z += r;
        // The normwise backward error |w - A z| / (|A| |z| + |w|) of A = eps I + S (|A| by
        // its largest diagonal entry, within a factor M of the 2-norm for a positive
        // definite A): the computed z exactly solves a system this close to A.
        let mut big = T::ZERO;
        for q in 0..M {
            big = big.max(gram[(q, q)] + eps);
        }
        let scale = big * z.norm() + w.norm();
        let r_norm = (w - shifted(&z)).norm();
        let residual = if scale > T::ZERO {
            r_norm / scale
        } else {
            T::ZERO
        };
        if !(residual <= T::EPSILON.sqrt()) {
            return Err(SolveError::Inaccurate {
                residual: (r_norm / w.norm()).to_f64(),
                backward_error: residual.to_f64(),
            });
        }
        // U'x = S z with S = U'D^{-2}U: x'Gx = |S z|^2, |D x|^2 = z'S z, and
        // (D^2 x)'(G + eps D^2)^{-1}(D^2 x) = z'S y with y = (eps I + S)^{-1} z.
        let sz = sym(&z);
        let mut y = z;
        cholesky_solve(self.op.chol, y.as_mut_slice());
        let terms = GradientSolve {
            curvature: sz.norm_squared(),
            metric: z.dot(&sz).max(T::ZERO),
            secular: sz.dot(&y).max(T::ZERO),
            residual,
        };
        let zm = SMatrix::<T, O, B>::from_column_slice(z.as_slice());
        let beta = factor_apply(self.op.c, &zm, false);
        self.op.weights.jtv(self.op.tapes, self.op.x, &beta, x);
        if let Some(d) = self.op.scale {
            for (xi, di) in x.iter_mut().zip(d) {
                *xi /= *di * *di;
            }
        }
        let finite = terms.curvature.finite() && terms.metric.finite() && terms.secular.finite();
        if !(all_finite(x) && finite) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(terms)
    }

    /// `out = (G + eps I) v` from the stored record.
    pub fn apply(&mut self, v: &[T; N], out: &mut [T; N]) -> Result<(), SolveError> {
        check_vector(v)?;
        self.op.product(v, out);
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// The eps of this factorisation.
    pub fn eps(&self) -> T {
        self.op.eps
    }

    /// Whether this factorisation is of `G + eps D^2` ([`Woodbury::factor_scaled`]).
    pub fn is_scaled(&self) -> bool {
        self.op.scale.is_some()
    }

    /// The inverse's diagonal, trace and the log-determinant are of `G + eps I` only: a
    /// scaled factorisation refuses them ([`SolveError::Config`] naming `scale`).
    fn unscaled(&self) -> Result<(), SolveError> {
        match self.op.scale {
            None => Ok(()),
            Some(_) => Err(SolveError::Config(crate::error::ConfigError {
                field: "scale",
                value: 1.0,
                requirement: "absent: log_det, diag_inv and trace_inv are of G + eps I (factor, not factor_scaled)",
            })),
        }
    }

    /// All `N` eigenvalues of `G + eps I` are positive (`G` is positive semi-definite and
    /// eps > 0).
    pub fn inertia(&self) -> Inertia {
        Inertia::of_scalar(T::ONE, N)
    }

    /// `log det(G + eps I)` (sign `+1`) by the matrix determinant lemma:
    /// `(N - M) log eps + log det(eps I + U'U)`, the latter from the `M x M` Cholesky factor
    /// already computed. [`SolveError::NonFiniteResult`] if it overflows.
    pub fn log_det(&self) -> Result<LogDet<T>, SolveError> {
        self.unscaled()?;
        let mut l =
            LogDet::of_scalar(self.op.eps, N).log_abs - LogDet::of_scalar(self.op.eps, M).log_abs;
        for a in 0..M {
            l += T::c(2.0) * self.op.chol[(a, a)].ln();
        }
        if !l.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(LogDet {
            log_abs: l,
            sign: 1,
        })
    }

    /// The diagonal of `(G + eps I)^{-1} = (I - U (eps I + U'U)^{-1} U') / eps` into `out`:
    /// with `eps I + U'U = L L'`, entry `i` is `(1 - |L^{-1} u_i|^2) / eps` (`u_i` row `i` of
    /// `U`), and the columns of `U L^{-T}` are `M` adjoint passes `J'C (L^{-T} e_a)`, so the
    /// cost is `M` backward passes plus `O(M^3)`. Like the solve, it divides by eps: where
    /// the data pin a parameter (`|L^{-1} u_i|^2` near 1) its entry loses digits as eps
    /// falls. Uses the handle's own storage.
    pub fn diag_inv(&mut self, out: &mut [T; N]) -> Result<(), SolveError> {
        self.unscaled()?;
        out.fill(T::ZERO);
        for a in 0..M {
            let mut v = nalgebra::SVector::<T, M>::zeros();
            v[a] = T::ONE;
            // The diagonal is positive (checked when factoring): the solve cannot fail.
            self.op.chol.tr_solve_lower_triangular_mut(&mut v);
            let w = SMatrix::<T, O, B>::from_column_slice(v.as_slice());
            let beta = factor_apply(self.op.c, &w, false);
            self.op
                .weights
                .jtv(self.op.tapes, self.op.x, &beta, self.residual);
            for (o, r) in out.iter_mut().zip(self.residual.iter()) {
                *o += *r * *r;
            }
        }
        let inv = T::ONE / self.op.eps;
        for o in out.iter_mut() {
            *o = (T::ONE - *o) * inv;
        }
        if !all_finite(out) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// `trace (G + eps I)^{-1} = (N - M) / eps + trace (eps I + U'U)^{-1}` (from
    /// `U (eps I + U'U)^{-1} U' = I_M - eps (eps I + U'U)^{-1}` under the trace), the last
    /// term `|L^{-1}|_F^2` from the `M x M` Cholesky factor: `O(M^3)`, no backward pass
    /// (what the evidence iterates on). Equal to [`Self::trace_inv`] in exact arithmetic.
    pub(crate) fn trace_inv_gram(&self) -> Result<T, SolveError> {
        self.unscaled()?;
        let mut acc = T::ZERO;
        for a in 0..M {
            let mut v = nalgebra::SVector::<T, M>::zeros();
            v[a] = T::ONE;
            // The diagonal is positive (checked when factoring): the solve cannot fail.
            self.op.chol.solve_lower_triangular_mut(&mut v);
            acc += v.norm_squared();
        }
        let t = T::c(N as f64 - M as f64) / self.op.eps + acc;
        if !t.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(t)
    }

    /// `trace (G + eps I)^{-1} = (N - |L^{-1} U'|_F^2) / eps` (the sum of
    /// [`Self::diag_inv`]; uses the handle's own storage).
    pub fn trace_inv(&mut self) -> Result<T, SolveError> {
        self.unscaled()?;
        let mut acc = T::ZERO;
        for a in 0..M {
            let mut v = nalgebra::SVector::<T, M>::zeros();
            v[a] = T::ONE;
            self.op.chol.tr_solve_lower_triangular_mut(&mut v);
            let w = SMatrix::<T, O, B>::from_column_slice(v.as_slice());
            let beta = factor_apply(self.op.c, &w, false);
            self.op
                .weights
                .jtv(self.op.tapes, self.op.x, &beta, self.residual);
            acc += self.residual.iter().fold(T::ZERO, |s, r| s + *r * *r);
        }
        let t = (T::c(N as f64) - acc) / self.op.eps;
        if !t.finite() {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(t)
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    Factorable for Woodbury<W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
{
    type Scalar = T;
    type Vector = [T; N];
    type Factored<'a>
        = WoodburyFactored<'a, W, Tp, T, I, O, B, M, N>
    where
        Self: 'a;

    fn factor(&mut self, eps: T) -> Result<Self::Factored<'_>, SolveError> {
        Woodbury::factor(self, eps)
    }
    fn fingerprint(&self) -> Option<u64> {
        Woodbury::fingerprint(self)
    }
    fn factor_scaled<'a>(
        &'a mut self,
        eps: T,
        scale: &'a [T; N],
    ) -> Result<Self::Factored<'a>, SolveError> {
        Woodbury::factor_scaled(self, eps, scale)
    }
    fn diag_into(&mut self, out: &mut [T; N]) -> Result<(), SolveError> {
        Woodbury::gauss_newton_diag(self, out)
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    Factorization for WoodburyFactored<'_, W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp>,
{
    type Scalar = T;
    type Vector = [T; N];

    fn eps(&self) -> T {
        self.op.eps
    }
    fn inertia(&self) -> Inertia {
        WoodburyFactored::inertia(self)
    }
    fn solve(&mut self, b: &[T; N], x: &mut [T; N]) -> Result<(), SolveError> {
        WoodburyFactored::solve(self, b, x)
    }
    fn solve_refined(
        &mut self,
        b: &[T; N],
        x: &mut [T; N],
        max_steps: usize,
    ) -> Result<Refinement<T>, SolveError> {
        WoodburyFactored::solve_refined(self, b, x, max_steps)
    }
    fn apply(&mut self, v: &[T; N], out: &mut [T; N]) -> Result<(), SolveError> {
        WoodburyFactored::apply(self, v, out)
    }
    fn solve_gradient(
        &mut self,
        g: &[T; N],
        x: &mut [T; N],
    ) -> Result<Option<GradientSolve<T>>, SolveError> {
        WoodburyFactored::solve_gradient(self, g, x)
    }
    fn solve_geodesic(
        &mut self,
        v: &[T; N],
        du: &[T],
        h: T,
        x: &mut [T; N],
    ) -> Result<bool, SolveError> {
        WoodburyFactored::solve_geodesic(self, v, du, h, x).map(|()| true)
    }
}

impl<W, Tp, T, const I: usize, const O: usize, const B: usize, const M: usize, const N: usize>
    ConstZero for Woodbury<W, Tp, T, I, O, B, M, N>
where
    T: Real,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
{
    const ZERO: Self = Woodbury::ZERO;
}
