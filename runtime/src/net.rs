//! The entry points behind every method `#[tall_skinny_net]` generates: each generated
//! method is one call into this module with the list of the network's layers (and its loss
//! field, whose type selects the loss). Every entry point checks its arguments in one order
//! (inputs, targets, direction vectors, parameters) and the finiteness of what it returns,
//! so bad numbers give an error value, never a NaN inside `Ok`.

use nalgebra::SMatrix;

use crate::chain::{Chain, ChainMut, ConstZero, CurvChain, Fingerprint, Params, StageStack};
use crate::curvature::{Contents, Curvature};
use crate::error::{NetError, SolveError};
use crate::layer::{batch_matrix, check_input, check_vector, zero_mat};
use crate::linalg::ldlt::Inertia;
use crate::loss::Loss;
use crate::real::{all_finite, Real};
use crate::rng::SplitMix64;
use crate::woodbury::Woodbury;

/// Scratch of a network's `gradient_in`, `hvp_in` and `ggn_vp_in`: the records of one forward
/// (and tangent) pass, one per layer (`Tp` is their list). Generated code names it through a
/// type alias (`<Net>Workspace`); its size is [`Self::BYTES`].
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Workspace<Tp> {
    pub(crate) tapes: Tp,
}

// SAFETY: `repr(transparent)` over a `Zeroable` list.
unsafe impl<Tp: bytemuck::Zeroable> bytemuck::Zeroable for Workspace<Tp> {}

impl<Tp: ConstZero> Workspace<Tp> {
    /// All zeros; usable in `const` and `static` items.
    pub const ZERO: Self = Workspace { tapes: Tp::ZERO };
    /// Size of this storage in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();
}

impl<Tp> Workspace<Tp> {
    /// A tape list seen as a workspace (`repr(transparent)`): lets a storage that records a
    /// forward pass of its own lend its tapes to the gradient.
    pub(crate) fn from_tapes_mut(tapes: &mut Tp) -> &mut Self {
        // SAFETY: `Workspace<Tp>` is `repr(transparent)` over `Tp`, so the pointer cast keeps
        // layout and validity; the borrow is the caller's.
        unsafe { &mut *(tapes as *mut Tp).cast::<Self>() }
    }
}

/// The scratch a Levenberg-Marquardt step needs besides a Woodbury Gauss-Newton storage:
/// none (the storage lends its own forward records to the gradient). Zero bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoScratch;

// SAFETY: a zero-sized type.
unsafe impl bytemuck::Zeroable for NoScratch {}

impl ConstZero for NoScratch {
    const ZERO: Self = NoScratch;
}

impl<Tp> core::fmt::Debug for Workspace<Tp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Workspace")
            .field("bytes", &core::mem::size_of::<Self>())
            .finish()
    }
}

/// `Err` naming the first non-finite parameter.
#[inline]
pub fn check_params<T: Real, Ls: Params<T>>(layers: &Ls) -> Result<(), NetError> {
    match layers.first_non_finite(0) {
        Some(index) => Err(NetError::NonFiniteParameter { index }),
        None => Ok(()),
    }
}

/// The fingerprint of the parameters (64 bits of their bit patterns, in order).
pub fn fingerprint<T: Real, Ls: Params<T>>(layers: &Ls) -> u64 {
    let mut h = Fingerprint::new();
    layers.fingerprint(&mut h);
    h.finish()
}

/// Writes the flat parameters.
#[inline]
pub fn write_params<T: Real, Ls: Params<T>, const N: usize>(layers: &Ls, out: &mut [T; N]) {
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    layers.write_params(out);
}

/// Sets every parameter from `src`; rejects a non-finite entry, leaving the layers unchanged.
#[inline]
pub fn read_params<T: Real, Ls: ChainMut<T>, const N: usize>(
    mut layers: Ls,
    src: &[T; N],
) -> Result<(), NetError> {
    if !all_finite(src) {
        if let Some(index) = src.iter().position(|v| !v.finite()) {
            return Err(NetError::NonFiniteParameter { index });
        }
    }
    layers.read_params(src);
    Ok(())
}

/// Deterministic scaled initialisation from `seed` (LeCun-uniform weights, residual
/// branches scaled by `1 / sqrt(residual_stages)`, zero biases).
pub fn init<T: Real, Ls: ChainMut<T>>(mut layers: Ls, seed: u64, residual_stages: usize) {
    let mut rng = SplitMix64::new(seed);
    let gain = if residual_stages > 0 {
        1.0 / libm_sqrt(residual_stages as f64)
    } else {
        1.0
    };
    layers.init(&mut rng, gain);
}

fn libm_sqrt(x: f64) -> f64 {
    nalgebra::ComplexField::sqrt(x)
}

/// The outputs for a batch of `B` samples.
#[inline]
pub fn forward<T: Real, Ls: Chain<T, B, I, O>, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    x: &[[T; I]; B],
) -> Result<[[T; O]; B], NetError> {
    check_input(x)?;
    check_params(layers)?;
    let u = layers.forward(&batch_matrix(x));
    if !all_finite(u.as_slice()) {
        return Err(NetError::NonFiniteResult);
    }
    Ok(u.data.0)
}

/// The batch loss.
#[inline]
pub fn loss<T, Ls, L, const B: usize, const I: usize, const O: usize>(
    layers: &Ls,
    _loss: &L,
    x: &[[T; I]; B],
    t: &L::Target,
) -> Result<T, NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B>,
{
    check_input(x)?;
    L::check(t)?;
    check_params(layers)?;
    let u = layers.forward(&batch_matrix(x));
    let value = L::value(&u, t);
    if !value.finite() {
        return Err(NetError::NonFiniteResult);
    }
    Ok(value)
}

/// The batch loss and its gradient, written to `grad`.
#[inline]
pub fn gradient<T, Ls, L, const B: usize, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    _loss: &L,
    ws: &mut Workspace<Ls::Tapes>,
    x: &[[T; I]; B],
    t: &L::Target,
    grad: &mut [T; N],
) -> Result<T, NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B>,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    check_input(x)?;
    L::check(t)?;
    check_params(layers)?;
    let mut value = T::ZERO;
    let mut head = |u: &SMatrix<T, O, B>| {
        let (v, beta) = L::gradient(u, t);
        value = v;
        beta
    };
    let _ = layers.gradient(&mut ws.tapes, &batch_matrix(x), grad, &mut head);
    if !value.finite() || !all_finite(grad) {
        return Err(NetError::NonFiniteResult);
    }
    Ok(value)
}

/// The exact Hessian-vector product `H v`, written to `out`.
#[inline]
pub fn hvp<T, Ls, L, const B: usize, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    _loss: &L,
    ws: &mut Workspace<Ls::Tapes>,
    x: &[[T; I]; B],
    t: &L::Target,
    v: &[T; N],
    out: &mut [T; N],
) -> Result<(), NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B>,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    check_input(x)?;
    L::check(t)?;
    check_vector(v)?;
    check_params(layers)?;
    let mut head = |u: &SMatrix<T, O, B>, y: &SMatrix<T, O, B>| {
        let (_, beta) = L::gradient(u, t);
        (beta, L::hess_apply(u, t, y))
    };
    let _ = layers.hvp(&mut ws.tapes, &batch_matrix(x), None, v, out, &mut head);
    if !all_finite(out) {
        return Err(NetError::NonFiniteResult);
    }
    Ok(())
}

/// The exact Gauss-Newton-vector product `G v = J' Hl J v`, written to `out`.
#[inline]
pub fn ggn_vp<T, Ls, L, const B: usize, const I: usize, const O: usize, const N: usize>(
    layers: &Ls,
    _loss: &L,
    ws: &mut Workspace<Ls::Tapes>,
    x: &[[T; I]; B],
    t: &L::Target,
    v: &[T; N],
    out: &mut [T; N],
) -> Result<(), NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O>,
    L: Loss<T, O, B>,
{
    const {
        assert!(
            Ls::N_PARAMS == N,
            "the parameter vector has the wrong length"
        )
    };
    check_input(x)?;
    L::check(t)?;
    check_vector(v)?;
    check_params(layers)?;
    let mut head = |u: &SMatrix<T, O, B>, y: &SMatrix<T, O, B>| L::ggn_apply(u, t, y);
    let _ = layers.ggn_vp(&mut ws.tapes, &batch_matrix(x), None, v, out, &mut head);
    if !all_finite(out) {
        return Err(NetError::NonFiniteResult);
    }
    Ok(())
}

/// Sets the `BO x BO` matrix `s` to the block diagonal of `block(n)`, `n < B`.
fn set_block_diagonal<T: Real, const O: usize, const B: usize, const BO: usize>(
    s: &mut SMatrix<T, BO, BO>,
    block: impl Fn(usize) -> SMatrix<T, O, O>,
) {
    const { assert!(BO == B * O, "BO must be B * O") };
    *s = zero_mat();
    for n in 0..B {
        let h = block(n);
        for a in 0..O {
            for b in 0..O {
                s[(n * O + a, n * O + b)] = h[(a, b)];
            }
        }
    }
}

/// The exact Hessian's (`gn = false`) or the Gauss-Newton matrix's (`gn = true`) per-stage
/// blocks at `(x, t)`, into `curv`. On error the storage is left empty.
#[inline]
pub fn curvature_into<
    T,
    Ls,
    L,
    S,
    const B: usize,
    const I: usize,
    const BI: usize,
    const O: usize,
    const BO: usize,
    const N: usize,
>(
    layers: &Ls,
    _loss: &L,
    curv: &mut Curvature<S, N>,
    x: &[[T; I]; B],
    t: &L::Target,
    gn: bool,
) -> Result<(), NetError>
where
    T: Real,
    Ls: CurvChain<T, B, I, BI, O, BO, S> + Params<T>,
    S: StageStack<Scalar = T>,
    L: Loss<T, O, B>,
{
    let stages = curv.begin_fill();
    check_input(x)?;
    L::check(t)?;
    check_params(layers)?;
    let mut ok = true;
    let mut head = |u: &SMatrix<T, O, B>, s: Option<&mut SMatrix<T, BO, BO>>| {
        if gn {
            ok = all_finite(u.as_slice());
            if let Some(s) = s {
                set_block_diagonal::<T, O, B, BO>(s, |n| L::ggn_block(u, t, n));
            }
            zero_mat()
        } else {
            let (value, beta) = L::gradient(u, t);
            ok = value.finite();
            if let Some(s) = s {
                set_block_diagonal::<T, O, B, BO>(s, |n| L::hess_block(u, t, n));
            }
            beta
        }
    };
    let _ = layers.curvature(stages, &batch_matrix(x), None, gn, &mut head);
    if !ok {
        return Err(NetError::NonFiniteResult);
    }
    curv.finish_fill(
        if gn {
            Contents::GaussNewton
        } else {
            Contents::Hessian
        },
        fingerprint(layers),
    );
    Ok(())
}

/// The Woodbury form of the Gauss-Newton curvature at `(x, t)`, into `g`: the forward record,
/// a copy of the weights, the loss-Hessian factors and the Gram matrix. On error the storage
/// is left empty.
#[inline]
pub fn woodbury_into<
    T,
    Ls,
    L,
    W,
    Tp,
    const I: usize,
    const O: usize,
    const B: usize,
    const M: usize,
    const N: usize,
>(
    layers: &Ls,
    _loss: &L,
    g: &mut Woodbury<W, Tp, T, I, O, B, M, N>,
    x: &[[T; I]; B],
    t: &L::Target,
) -> Result<(), NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O, Tapes = Tp> + Params<T, Erased = W>,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
    L: Loss<T, O, B>,
{
    const { assert!(M == O * B, "M must be outputs times batch") };
    g.begin_fill();
    check_input(x)?;
    L::check(t)?;
    check_params(layers)?;
    g.x = batch_matrix(x);
    let u = layers.record(&mut g.tapes, &g.x);
    if !all_finite(u.as_slice()) {
        return Err(NetError::NonFiniteResult);
    }
    let mut r = zero_mat::<T, O, M>();
    let (_, dl) = L::gradient(&u, t);
    g.coords_ok = true;
    for n in 0..B {
        g.c[n] = L::ggn_factor(&u, t, n);
        for k in 0..O {
            r.set_column(n * O + k, &g.c[n].column(k));
        }
        let grad_n = dl.column(n).into_owned();
        match L::ggn_coords(&u, t, n, &g.c[n], &grad_n).filter(|w| in_range(&g.c[n], w, &grad_n)) {
            Some(w) => g.coords.set_column(n, &w),
            None => g.coords_ok = false,
        }
    }
    g.gram = zero_mat();
    let _ = layers.gram(&g.tapes, &g.x, &r, &mut g.gram);
    if !all_finite(g.gram.as_slice()) || !g.c.iter().all(|c| all_finite(c.as_slice())) {
        return Err(NetError::NonFiniteResult);
    }
    layers.erase(&mut g.weights);
    g.finish_fill(fingerprint(layers));
    Ok(())
}

/// The batch loss and its gradient into `grad`, then the Woodbury Gauss-Newton storage at
/// `(x, t)` into `g`, with `g`'s own forward records as the gradient's scratch: what one
/// Levenberg-Marquardt step needs, without a separate [`Workspace`] (saves its bytes). On
/// error `g` holds no curvature.
#[inline]
pub fn woodbury_gradient_into<
    T,
    Ls,
    L,
    W,
    Tp,
    const I: usize,
    const O: usize,
    const B: usize,
    const M: usize,
    const N: usize,
>(
    layers: &Ls,
    loss: &L,
    g: &mut Woodbury<W, Tp, T, I, O, B, M, N>,
    x: &[[T; I]; B],
    t: &L::Target,
    grad: &mut [T; N],
) -> Result<T, NetError>
where
    T: Real,
    Ls: Chain<T, B, I, O, Tapes = Tp> + Params<T, Erased = W>,
    W: Chain<T, B, I, O, Tapes = Tp> + ConstZero + Copy,
    Tp: ConstZero + Copy,
    L: Loss<T, O, B>,
{
    g.begin_fill();
    let ws = Workspace::from_tapes_mut(&mut g.tapes);
    let value = gradient(layers, loss, ws, x, t, grad)?;
    woodbury_into(layers, loss, g, x, t)?;
    g.set_gradient(grad);
    Ok(value)
}

/// Whether `C w = l` to rounding: `|C w - l| <= 16 O u (|C|_F |w| + |l|)`, the check that a
/// loss's Gauss-Newton coordinates ([`Loss::ggn_coords`]) reproduce its gradient.
fn in_range<T: Real, const O: usize>(
    c: &SMatrix<T, O, O>,
    w: &nalgebra::SVector<T, O>,
    l: &nalgebra::SVector<T, O>,
) -> bool {
    let err = (c * w - l).norm();
    let bound = T::c(16.0 * O as f64) * T::EPSILON * (c.norm() * w.norm() + l.norm());
    all_finite(w.as_slice()) && err <= bound
}

/// One call: `out = (H + eps I)^{-1} b` at `(x, t)` (fill, factor, solve refined by at most
/// two steps). Returns the inertia of `H + eps I`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn hessian_solve<
    T,
    Ls,
    L,
    S,
    const B: usize,
    const I: usize,
    const BI: usize,
    const O: usize,
    const BO: usize,
    const N: usize,
>(
    layers: &Ls,
    loss: &L,
    curv: &mut Curvature<S, N>,
    x: &[[T; I]; B],
    t: &L::Target,
    eps: T,
    b: &[T; N],
    out: &mut [T; N],
) -> Result<Inertia, SolveError>
where
    T: Real,
    Ls: CurvChain<T, B, I, BI, O, BO, S> + Params<T>,
    S: StageStack<Scalar = T>,
    L: Loss<T, O, B>,
{
    curvature_into(layers, loss, curv, x, t, false)?;
    let mut f = curv.factor(eps)?;
    f.solve_refined(b, out, 2)?;
    Ok(f.inertia())
}

impl<Tp: ConstZero> ConstZero for Workspace<Tp> {
    const ZERO: Self = Workspace { tapes: Tp::ZERO };
}
