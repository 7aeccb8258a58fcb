//! Parameterised stages: `u = W z + b`, `f = act(u)`, optionally `+ z` (residual).
//!
//! Kernels here are generic over the sizes; generated code instantiates them with the
//! concrete sizes of each declared layer, so every buffer is a fixed-size array.
//!
//! Activations of a batch are stored as `SMatrix<T, width, B>`: one column per sample, which
//! is the sample-major flattening of docs/math.md (column-major storage).
//!
//! Flat parameter layout of one layer: `W` row-major (`W[k][i]` at `k * I + i`), then the
//! bias `b` (absent for bias-free layers).

use core::marker::PhantomData;

use nalgebra::{ArrayStorage, SMatrix, SVector};

use crate::activation::Activation;
use crate::real::Real;
use crate::rng::SplitMix64;

/// One parameterised layer. `BIAS`: whether `b` is a parameter (otherwise it stays 0).
/// `RES`: residual (`f = z + act(W z + b)`, needs `I == O`).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Layer<
    T: Real,
    A: Activation,
    const I: usize,
    const O: usize,
    const BIAS: bool,
    const RES: bool,
> {
    /// Weights, `O x I`.
    pub w: SMatrix<T, O, I>,
    /// Bias (kept at 0 and not a parameter when `BIAS` is false).
    pub b: SVector<T, O>,
    act: PhantomData<A>,
}

/// `Dense<I, O, Act>` of the declaration: `act(W z + b)`.
pub type Dense<T, A, const I: usize, const O: usize> = Layer<T, A, I, O, true, false>;
/// `DenseNoBias<I, O, Act>` of the declaration: `act(W z)`.
pub type DenseNoBias<T, A, const I: usize, const O: usize> = Layer<T, A, I, O, false, false>;
/// `Residual<W, Act>` of the declaration: `z + act(W z + b)`.
pub type Residual<T, A, const W: usize> = Layer<T, A, W, W, true, true>;

// SAFETY: all fields are arrays of `T: Pod` or `PhantomData`; all-zero bytes are 0.0.
unsafe impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    bytemuck::Zeroable for Layer<T, A, I, O, BIAS, RES>
{
}

/// Per-layer record of one forward pass (and, for `hvp`, of the tangent pass).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Tape<T: Real, const O: usize, const B: usize> {
    /// Layer output `f`, one column per sample.
    pub out: SMatrix<T, O, B>,
    /// `act'(u)`.
    pub d1: SMatrix<T, O, B>,
    /// `act''(u)` (filled only by second-order passes).
    pub d2: SMatrix<T, O, B>,
    /// Tangent of the pre-activation `u` along the `hvp` direction.
    pub du: SMatrix<T, O, B>,
    /// Tangent of the output along the `hvp` direction.
    pub y: SMatrix<T, O, B>,
}

// SAFETY: plain arrays of `T: Pod`.
unsafe impl<T: Real, const O: usize, const B: usize> bytemuck::Zeroable for Tape<T, O, B> {}

impl<T: Real, const O: usize, const B: usize> Tape<T, O, B> {
    /// All zeros; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        out: zero_mat(),
        d1: zero_mat(),
        d2: zero_mat(),
        du: zero_mat(),
        y: zero_mat(),
    };
}

/// A zero matrix in a `const` context.
pub const fn zero_mat<T: Real, const R: usize, const C: usize>() -> SMatrix<T, R, C> {
    SMatrix::from_array_storage(ArrayStorage([[T::ZERO; R]; C]))
}

/// Converts a batch given as `[[T; W]; B]` (sample-major) to the kernels' `W x B` matrix.
#[inline(always)]
pub fn batch_matrix<T: Real, const W: usize, const B: usize>(x: &[[T; W]; B]) -> SMatrix<T, W, B> {
    SMatrix::from_array_storage(ArrayStorage(*x))
}

/// Checks that every input entry is finite.
pub fn check_input<T: Real, const W: usize, const B: usize>(
    x: &[[T; W]; B],
) -> Result<(), crate::NetError> {
    for (sample, row) in x.iter().enumerate() {
        if let Some(index) = row.iter().position(|v| !v.finite()) {
            return Err(crate::NetError::NonFiniteInput { sample, index });
        }
    }
    Ok(())
}

/// Checks that every entry of a flat vector is finite.
pub fn check_vector<T: Real>(v: &[T]) -> Result<(), crate::NetError> {
    if crate::real::all_finite(v) {
        return Ok(());
    }
    match v.iter().position(|x| !x.finite()) {
        Some(index) => Err(crate::NetError::NonFiniteVector { index }),
        None => Ok(()),
    }
}

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// Number of parameters of this layer.
    pub const N_PARAMS: usize = O * I + if BIAS { O } else { 0 };
    /// Rows of the stage's input-with-bias `[z; 1]` (`I + 1` with bias, `I` without).
    pub const I1: usize = I + BIAS as usize;

    const SHAPE_OK: () = assert!(!RES || I == O, "a residual layer needs I == O");

    /// All zeros; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        w: zero_mat(),
        b: zero_mat(),
        act: PhantomData,
    };

    /// Scaled uniform initialisation: `W` entries uniform with variance `gain^2 / I`
    /// (LeCun), bias 0. Deterministic in the generator state.
    pub(crate) fn init(&mut self, rng: &mut SplitMix64, gain: f64) {
        let () = Self::SHAPE_OK;
        let a = gain * libm_sqrt(3.0 / I as f64);
        for k in 0..O {
            for i in 0..I {
                self.w[(k, i)] = T::c(a * rng.symmetric());
            }
        }
        self.b = zero_mat();
    }

    /// The same weights with the activation erased: what the passes over recorded tapes need
    /// (the tangent and adjoint passes read `act'` from the tape).
    pub(crate) fn erased(&self) -> Layer<T, crate::activation::Identity, I, O, BIAS, RES> {
        Layer {
            w: self.w,
            b: self.b,
            act: PhantomData,
        }
    }

    /// Writes this layer's parameters to `out` (length `N_PARAMS`) in the flat layout.
    pub(crate) fn write_params(&self, out: &mut [T]) {
        debug_assert_eq!(out.len(), Self::N_PARAMS);
        for k in 0..O {
            for i in 0..I {
                out[k * I + i] = self.w[(k, i)];
            }
        }
        if BIAS {
            out[O * I..O * I + O].copy_from_slice(self.b.as_slice());
        }
    }

    /// Hands this layer's parameters to `f` one by one, in the flat layout.
    #[inline]
    pub(crate) fn each_param<F: FnMut(T)>(&self, f: &mut F) {
        for k in 0..O {
            for i in 0..I {
                f(self.w[(k, i)]);
            }
        }
        if BIAS {
            for &v in self.b.iter() {
                f(v);
            }
        }
    }

    /// Sets this layer's parameters, one by one in the flat layout, to what `f` returns.
    #[inline]
    pub(crate) fn fill_params<F: FnMut() -> T>(&mut self, f: &mut F) {
        for k in 0..O {
            for i in 0..I {
                self.w[(k, i)] = f();
            }
        }
        if BIAS {
            for v in self.b.iter_mut() {
                *v = f();
            }
        }
    }

    /// Reads this layer's parameters from `src` (length `N_PARAMS`) in the flat layout.
    pub(crate) fn read_params(&mut self, src: &[T]) {
        debug_assert_eq!(src.len(), Self::N_PARAMS);
        for k in 0..O {
            for i in 0..I {
                self.w[(k, i)] = src[k * I + i];
            }
        }
        if BIAS {
            self.b
                .as_mut_slice()
                .copy_from_slice(&src[O * I..O * I + O]);
        }
    }

    /// Index of the first non-finite parameter, if any (in this layer's flat layout).
    pub(crate) fn first_non_finite(&self) -> Option<usize> {
        if crate::real::all_finite(self.w.as_slice()) && crate::real::all_finite(self.b.as_slice())
        {
            return None;
        }
        for k in 0..O {
            for i in 0..I {
                if !self.w[(k, i)].finite() {
                    return Some(k * I + i);
                }
            }
        }
        if BIAS {
            if let Some(k) = self.b.iter().position(|v| !v.finite()) {
                return Some(O * I + k);
            }
        }
        None
    }

    /// Pre-activation `W z + b`.
    #[inline(always)]
    fn preact<const B: usize>(&self, z: &SMatrix<T, I, B>) -> SMatrix<T, O, B> {
        let mut u = self.w * z;
        if BIAS {
            for n in 0..B {
                for k in 0..O {
                    u[(k, n)] += self.b[k];
                }
            }
        }
        u
    }

    /// Inference: the layer's output for a batch `z` (no record kept).
    #[inline]
    pub(crate) fn forward<const B: usize>(&self, z: &SMatrix<T, I, B>) -> SMatrix<T, O, B> {
        let () = Self::SHAPE_OK;
        let mut f = self.preact(z);
        f.apply(|u| *u = A::value(*u));
        if RES {
            add_same(&mut f, z);
        }
        f
    }

    /// Forward pass that records `out`, `act'` and, when `second` is set, `act''`.
    #[inline]
    pub(crate) fn forward_tape<const B: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        tape: &mut Tape<T, O, B>,
        second: bool,
    ) {
        let () = Self::SHAPE_OK;
        let u = self.preact(z);
        for n in 0..B {
            for k in 0..O {
                let x = u[(k, n)];
                if second {
                    let (f, d, dd) = A::d2(x);
                    tape.out[(k, n)] = f;
                    tape.d1[(k, n)] = d;
                    tape.d2[(k, n)] = dd;
                } else {
                    let (f, d) = A::d1(x);
                    tape.out[(k, n)] = f;
                    tape.d1[(k, n)] = d;
                }
            }
        }
        if RES {
            add_same(&mut tape.out, z);
        }
    }

    /// Reverse pass: writes this layer's gradient (flat layout) to `grad` and returns the
    /// adjoint of the layer input, given the adjoint `beta` of its output.
    #[inline]
    pub(crate) fn backward<const B: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        tape: &Tape<T, O, B>,
        beta: &SMatrix<T, O, B>,
        grad: &mut [T],
    ) -> SMatrix<T, I, B> {
        debug_assert_eq!(grad.len(), Self::N_PARAMS);
        let delta = beta.component_mul(&tape.d1);
        write_outer::<T, O, I, B, BIAS>(&delta, z, None, grad);
        let mut beta_in = self.w.tr_mul(&delta);
        if RES {
            add_same(&mut beta_in, beta);
        }
        beta_in
    }

    /// Forward tangent along the parameter direction `v` (this layer's slice) with input
    /// tangent `y_in`: records the tangents of `u` and of the output in `tape.du`, `tape.y`.
    #[inline]
    pub(crate) fn tangent<const B: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        y_in: Option<&SMatrix<T, I, B>>,
        v: &[T],
        tape: &mut Tape<T, O, B>,
    ) {
        debug_assert_eq!(v.len(), Self::N_PARAMS);
        let mut du = match y_in {
            Some(y) => self.w * y,
            None => zero_mat(),
        };
        for n in 0..B {
            for k in 0..O {
                let row = &v[k * I..k * I + I];
                let mut acc = du[(k, n)];
                for i in 0..I {
                    acc += row[i] * z[(i, n)];
                }
                if BIAS {
                    acc += v[O * I + k];
                }
                du[(k, n)] = acc;
            }
        }
        tape.y = du.component_mul(&tape.d1);
        if let (true, Some(y)) = (RES, y_in) {
            add_same(&mut tape.y, y);
        }
        tape.du = du;
    }

    /// Reverse pass of the `hvp`: given the output adjoint `beta` and its tangent `r`, writes
    /// this layer's block of `H v` to `hv` and returns the input adjoint and its tangent.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn backward_tangent<const B: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        y_in: Option<&SMatrix<T, I, B>>,
        v: &[T],
        tape: &Tape<T, O, B>,
        beta: &SMatrix<T, O, B>,
        r: &SMatrix<T, O, B>,
        hv: &mut [T],
    ) -> (SMatrix<T, I, B>, SMatrix<T, I, B>) {
        debug_assert_eq!(hv.len(), Self::N_PARAMS);
        let delta = beta.component_mul(&tape.d1);
        let mut ddelta = r.component_mul(&tape.d1);
        for n in 0..B {
            for k in 0..O {
                ddelta[(k, n)] += beta[(k, n)] * tape.d2[(k, n)] * tape.du[(k, n)];
            }
        }
        // (H v)_W = ddelta z' + delta y_in',  (H v)_b = sum_n ddelta
        write_outer::<T, O, I, B, BIAS>(&ddelta, z, y_in.map(|y| (&delta, y)), hv);
        let mut beta_in = self.w.tr_mul(&delta);
        let mut r_in = self.w.tr_mul(&ddelta);
        // r_in += V' delta
        for n in 0..B {
            for k in 0..O {
                let dk = delta[(k, n)];
                let row = &v[k * I..k * I + I];
                for i in 0..I {
                    r_in[(i, n)] += row[i] * dk;
                }
            }
        }
        if RES {
            add_same(&mut beta_in, beta);
            add_same(&mut r_in, r);
        }
        (beta_in, r_in)
    }
}

/// `out[W] = a z' (+ c y')`, `out[b] = sum_n a` in the flat layout.
#[inline(always)]
fn write_outer<T: Real, const O: usize, const I: usize, const B: usize, const BIAS: bool>(
    a: &SMatrix<T, O, B>,
    z: &SMatrix<T, I, B>,
    extra: Option<(&SMatrix<T, O, B>, &SMatrix<T, I, B>)>,
    out: &mut [T],
) {
    for k in 0..O {
        let row = &mut out[k * I..k * I + I];
        for i in 0..I {
            let mut acc = T::ZERO;
            for n in 0..B {
                acc += a[(k, n)] * z[(i, n)];
            }
            if let Some((c, y)) = extra {
                for n in 0..B {
                    acc += c[(k, n)] * y[(i, n)];
                }
            }
            row[i] = acc;
        }
    }
    if BIAS {
        for k in 0..O {
            let mut acc = T::ZERO;
            for n in 0..B {
                acc += a[(k, n)];
            }
            out[O * I + k] = acc;
        }
    }
}

/// `a += b` for matrices whose shapes are equal at run time (residual layers, `I == O`).
#[inline(always)]
fn add_same<T: Real, const R1: usize, const R2: usize, const B: usize>(
    a: &mut SMatrix<T, R1, B>,
    b: &SMatrix<T, R2, B>,
) {
    debug_assert_eq!(R1, R2);
    for (x, y) in a.as_mut_slice().iter_mut().zip(b.as_slice()) {
        *x += *y;
    }
}

fn libm_sqrt(x: f64) -> f64 {
    nalgebra::ComplexField::sqrt(x)
}
