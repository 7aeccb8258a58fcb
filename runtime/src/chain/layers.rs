//! [`Chain`]: the passes over a list of layers (docs/math.md sections 1, 2 and 5).
//!
//! Each pass is one recursive method: an element does its forward work on the way in,
//! passes its output (and tangent) to the rest of the list, and does its backward work with
//! what comes back. The end of the list hands the network's output to a caller-supplied
//! `head` closure (the loss) and returns the adjoints it gives. Parameter slices are split
//! off the front of the flat vector as the walk goes, so every layer sees exactly its
//! block (`W` row-major, then the bias).
//!
//! A list element is a reference to a layer field (`&Layer` or `&[Layer; N]`), or an owned
//! layer (the activation-erased copy of the weights the Woodbury storage keeps).

use nalgebra::SMatrix;

use super::{Cons, ConstZero, Nil};
use crate::activation::{Activation, Identity};
use crate::layer::{zero_mat, Layer, Tape};
use crate::real::Real;
use crate::rng::SplitMix64;

/// The parameters of a list of layers (no batch needed). Implemented for [`Cons`] lists of
/// layers or references to them, ending in [`Nil`].
pub trait Params<T: Real> {
    /// The weights alone (activations erased to [`Identity`]): what the tangent and
    /// adjoint passes over recorded tapes need.
    type Erased: ConstZero + Copy + bytemuck::Zeroable;
    /// Parameters of the list.
    const N_PARAMS: usize;
    /// Stages (layers, array elements counted one by one).
    const DEPTH: usize;

    /// Writes the flat parameters to `out` (`N_PARAMS` entries).
    fn write_params(&self, out: &mut [T]);
    /// Index (into the flat vector, counting from `offset`) of the first non-finite
    /// parameter.
    fn first_non_finite(&self, offset: usize) -> Option<usize>;
    /// Feeds every parameter to `h`.
    fn fingerprint(&self, h: &mut Fingerprint);
    /// Hands every parameter to `f`, in the flat order (what `write_params` writes).
    fn each_param<F: FnMut(T)>(&self, f: &mut F);
    /// Copies the weights into `out`.
    fn erase(&self, out: &mut Self::Erased);
}

/// The passes over a list of layers whose first layer takes `IN` inputs and whose last gives
/// `OUT` outputs, at batch `B`. Implemented for [`Cons`] lists of layers (or references to
/// them) whose widths chain, ending in [`Nil`].
pub trait Chain<T: Real, const B: usize, const IN: usize, const OUT: usize>: Params<T> {
    /// Records of one forward (and tangent) pass: one [`Tape`] per layer.
    type Tapes: ConstZero + Copy + bytemuck::Zeroable;

    /// The outputs for a batch `z` of any size `BB` (inference; nothing recorded).
    fn forward<const BB: usize>(&self, z: &SMatrix<T, IN, BB>) -> SMatrix<T, OUT, BB>;

    /// Gradient: a recorded forward pass, `head(u)` = the adjoint of the outputs `u`, and
    /// the backward pass writing each layer's gradient block to `grad`. Returns the adjoint
    /// of the input.
    fn gradient<F>(
        &self,
        tapes: &mut Self::Tapes,
        z: &SMatrix<T, IN, B>,
        grad: &mut [T],
        head: &mut F,
    ) -> SMatrix<T, IN, B>
    where
        F: FnMut(&SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>;

    /// `H v`: a recorded forward pass with second derivatives and the tangent along `v`
    /// (input tangent `y`), `head(u, y_out)` = the output adjoint and its tangent, and the
    /// backward pass of both writing each layer's block of `H v` to `out`.
    fn hvp<F>(
        &self,
        tapes: &mut Self::Tapes,
        z: &SMatrix<T, IN, B>,
        y: Option<&SMatrix<T, IN, B>>,
        v: &[T],
        out: &mut [T],
        head: &mut F,
    ) -> (SMatrix<T, IN, B>, SMatrix<T, IN, B>)
    where
        F: FnMut(
            &SMatrix<T, OUT, B>,
            &SMatrix<T, OUT, B>,
        ) -> (SMatrix<T, OUT, B>, SMatrix<T, OUT, B>);

    /// `G v = J' Hl J v`: a recorded forward pass with the tangent along `v`,
    /// `head(u, J v)` = `Hl J v`, and the adjoint pass writing `J' Hl J v` to `out`.
    fn ggn_vp<F>(
        &self,
        tapes: &mut Self::Tapes,
        z: &SMatrix<T, IN, B>,
        y: Option<&SMatrix<T, IN, B>>,
        v: &[T],
        out: &mut [T],
        head: &mut F,
    ) -> SMatrix<T, IN, B>
    where
        F: FnMut(&SMatrix<T, OUT, B>, &SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>;

    /// A recorded first-order forward pass; returns the outputs.
    fn record(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, IN, B>) -> SMatrix<T, OUT, B>;

    /// `J v` on recorded tapes (input tangent `y`): returns the output tangent.
    fn jv(
        &self,
        tapes: &mut Self::Tapes,
        z: &SMatrix<T, IN, B>,
        y: Option<&SMatrix<T, IN, B>>,
        v: &[T],
    ) -> SMatrix<T, OUT, B>;

    /// `J' beta` on recorded tapes, written to `grad`; returns the input adjoint.
    fn jtv(
        &self,
        tapes: &Self::Tapes,
        z: &SMatrix<T, IN, B>,
        beta: &SMatrix<T, OUT, B>,
        grad: &mut [T],
    ) -> SMatrix<T, IN, B>;

    /// Adds every layer's part of the Gram matrix `R'J J'R` of `M` output adjoints `r` (on
    /// recorded tapes) to the lower triangle of `gram` (see
    /// `runtime/src/stage/gram.rs`); returns the input adjoints.
    fn gram<const M: usize>(
        &self,
        tapes: &Self::Tapes,
        z: &SMatrix<T, IN, B>,
        r: &SMatrix<T, OUT, M>,
        gram: &mut SMatrix<T, M, M>,
    ) -> SMatrix<T, IN, M>;
}

/// Writing a list of layers: the flat parameters and the initialisation. Implemented for
/// lists of mutable references to layer fields.
pub trait ChainMut<T: Real> {
    /// Reads the flat parameters from `src`.
    fn read_params(&mut self, src: &[T]);
    /// Sets every parameter, in the flat order, to what `f` returns.
    fn fill_params<F: FnMut() -> T>(&mut self, f: &mut F);
    /// Scaled random initialisation; residual branches get `residual_gain`.
    fn init(&mut self, rng: &mut SplitMix64, residual_gain: f64);
}

/// A 64-bit fingerprint of a parameter vector (of its bit patterns, in order): storages
/// record the one of the parameters they were filled at, so a use with other parameters is
/// detected. Four independent multiply-xor lanes (one pass, about one cycle per `f64`);
/// not cryptographic.
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint {
    lanes: [u64; 4],
    len: u64,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Fingerprint {
    /// An empty fingerprint.
    pub const fn new() -> Self {
        Fingerprint {
            lanes: [
                0x243F_6A88_85A3_08D3,
                0x1319_8A2E_0370_7344,
                0xA409_3822_299F_31D0,
                0x082E_FA98_EC4E_6C89,
            ],
            len: 0,
        }
    }

    /// Feeds `xs` (their bit patterns).
    pub fn feed<T: Real>(&mut self, xs: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(xs);
        let chunks = bytes.chunks_exact(32);
        let rest = chunks.remainder();
        for c in chunks {
            for (k, lane) in self.lanes.iter_mut().enumerate() {
                let w = u64::from_le_bytes([
                    c[8 * k],
                    c[8 * k + 1],
                    c[8 * k + 2],
                    c[8 * k + 3],
                    c[8 * k + 4],
                    c[8 * k + 5],
                    c[8 * k + 6],
                    c[8 * k + 7],
                ]);
                *lane = (*lane ^ w).wrapping_mul(MIX).rotate_left(23);
            }
        }
        for (i, b) in rest.iter().enumerate() {
            let lane = &mut self.lanes[i % 4];
            *lane = (*lane ^ u64::from(*b)).wrapping_mul(MIX).rotate_left(23);
        }
        self.len = self.len.wrapping_add(bytes.len() as u64);
    }

    /// The fingerprint of everything fed.
    pub fn finish(&self) -> u64 {
        let mut h = self.len.wrapping_mul(MIX);
        for lane in self.lanes {
            h = (h ^ lane).wrapping_mul(MIX);
            h ^= h >> 29;
        }
        h ^ (h >> 32)
    }
}

impl<T: Real> Params<T> for Nil {
    type Erased = Nil;
    const N_PARAMS: usize = 0;
    const DEPTH: usize = 0;

    #[inline(always)]
    fn write_params(&self, _out: &mut [T]) {}
    #[inline(always)]
    fn first_non_finite(&self, _offset: usize) -> Option<usize> {
        None
    }
    #[inline(always)]
    fn fingerprint(&self, _h: &mut Fingerprint) {}
    #[inline(always)]
    fn each_param<F: FnMut(T)>(&self, _f: &mut F) {}
    #[inline(always)]
    fn erase(&self, _out: &mut Nil) {}
}

impl<T: Real, const B: usize, const W: usize> Chain<T, B, W, W> for Nil {
    type Tapes = Nil;

    #[inline(always)]
    fn forward<const BB: usize>(&self, z: &SMatrix<T, W, BB>) -> SMatrix<T, W, BB> {
        *z
    }
    #[inline(always)]
    fn gradient<F>(
        &self,
        _t: &mut Nil,
        z: &SMatrix<T, W, B>,
        _grad: &mut [T],
        head: &mut F,
    ) -> SMatrix<T, W, B>
    where
        F: FnMut(&SMatrix<T, W, B>) -> SMatrix<T, W, B>,
    {
        head(z)
    }
    #[inline(always)]
    fn hvp<F>(
        &self,
        _t: &mut Nil,
        z: &SMatrix<T, W, B>,
        y: Option<&SMatrix<T, W, B>>,
        _v: &[T],
        _out: &mut [T],
        head: &mut F,
    ) -> (SMatrix<T, W, B>, SMatrix<T, W, B>)
    where
        F: FnMut(&SMatrix<T, W, B>, &SMatrix<T, W, B>) -> (SMatrix<T, W, B>, SMatrix<T, W, B>),
    {
        head(z, &y.copied().unwrap_or_else(zero_mat))
    }
    #[inline(always)]
    fn ggn_vp<F>(
        &self,
        _t: &mut Nil,
        z: &SMatrix<T, W, B>,
        y: Option<&SMatrix<T, W, B>>,
        _v: &[T],
        _out: &mut [T],
        head: &mut F,
    ) -> SMatrix<T, W, B>
    where
        F: FnMut(&SMatrix<T, W, B>, &SMatrix<T, W, B>) -> SMatrix<T, W, B>,
    {
        head(z, &y.copied().unwrap_or_else(zero_mat))
    }
    #[inline(always)]
    fn record(&self, _t: &mut Nil, z: &SMatrix<T, W, B>) -> SMatrix<T, W, B> {
        *z
    }
    #[inline(always)]
    fn jv(
        &self,
        _t: &mut Nil,
        _z: &SMatrix<T, W, B>,
        y: Option<&SMatrix<T, W, B>>,
        _v: &[T],
    ) -> SMatrix<T, W, B> {
        y.copied().unwrap_or_else(zero_mat)
    }
    #[inline(always)]
    fn jtv(
        &self,
        _t: &Nil,
        _z: &SMatrix<T, W, B>,
        beta: &SMatrix<T, W, B>,
        _grad: &mut [T],
    ) -> SMatrix<T, W, B> {
        *beta
    }
    #[inline(always)]
    fn gram<const M: usize>(
        &self,
        _t: &Nil,
        _z: &SMatrix<T, W, B>,
        r: &SMatrix<T, W, M>,
        _gram: &mut SMatrix<T, M, M>,
    ) -> SMatrix<T, W, M> {
        *r
    }
}

impl<T: Real> ChainMut<T> for Nil {
    #[inline(always)]
    fn read_params(&mut self, _src: &[T]) {}
    #[inline(always)]
    fn fill_params<F: FnMut() -> T>(&mut self, _f: &mut F) {}
    #[inline(always)]
    fn init(&mut self, _rng: &mut SplitMix64, _residual_gain: f64) {}
}

/// The gain of a layer's initialisation: `residual_gain` for residual branches, 1 otherwise.
fn gain(residual: bool, residual_gain: f64) -> f64 {
    if residual {
        residual_gain
    } else {
        1.0
    }
}

/// A single layer at the head of the list (`$head` is the layer or a reference to it).
macro_rules! single {
    ($($head:tt)*) => {
        impl<'a, T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool, Rest: Params<T>>
            Params<T> for Cons<$($head)*, Rest>
        {
            type Erased = Cons<Layer<T, Identity, I, O, BIAS, RES>, Rest::Erased>;
            const N_PARAMS: usize = Layer::<T, A, I, O, BIAS, RES>::N_PARAMS + Rest::N_PARAMS;
            const DEPTH: usize = 1 + Rest::DEPTH;

            #[inline]
            fn write_params(&self, out: &mut [T]) {
                let (mine, rest) = out.split_at_mut(Layer::<T, A, I, O, BIAS, RES>::N_PARAMS);
                self.0.write_params(mine);
                self.1.write_params(rest);
            }
            #[inline]
            fn first_non_finite(&self, offset: usize) -> Option<usize> {
                match self.0.first_non_finite() {
                    Some(k) => Some(offset + k),
                    None => self.1.first_non_finite(offset + Layer::<T, A, I, O, BIAS, RES>::N_PARAMS),
                }
            }
            #[inline]
            fn fingerprint(&self, h: &mut Fingerprint) {
                h.feed(self.0.w.as_slice());
                if BIAS {
                    h.feed(self.0.b.as_slice());
                }
                self.1.fingerprint(h);
            }
            #[inline]
            fn each_param<F: FnMut(T)>(&self, f: &mut F) {
                self.0.each_param(f);
                self.1.each_param(f);
            }
            #[inline]
            fn erase(&self, out: &mut Self::Erased) {
                out.0 = self.0.erased();
                self.1.erase(&mut out.1);
            }
        }

        impl<'a, T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool, const B: usize, const OUT: usize, Rest>
            Chain<T, B, I, OUT> for Cons<$($head)*, Rest>
        where
            Rest: Chain<T, B, O, OUT>,
        {
            type Tapes = Cons<Tape<T, O, B>, Rest::Tapes>;

            #[inline(always)]
            fn forward<const BB: usize>(&self, z: &SMatrix<T, I, BB>) -> SMatrix<T, OUT, BB> {
                self.1.forward(&self.0.forward(z))
            }
            #[inline(always)]
            fn gradient<F>(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, I, B>, grad: &mut [T], head: &mut F) -> SMatrix<T, I, B>
            where
                F: FnMut(&SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>,
            {
                let (mine, rest) = grad.split_at_mut(Layer::<T, A, I, O, BIAS, RES>::N_PARAMS);
                self.0.forward_tape(z, &mut tapes.0, false);
                let beta = self.1.gradient(&mut tapes.1, &tapes.0.out, rest, head);
                self.0.backward(z, &tapes.0, &beta, mine)
            }
            #[inline(always)]
            fn hvp<F>(
                &self,
                tapes: &mut Self::Tapes,
                z: &SMatrix<T, I, B>,
                y: Option<&SMatrix<T, I, B>>,
                v: &[T],
                out: &mut [T],
                head: &mut F,
            ) -> (SMatrix<T, I, B>, SMatrix<T, I, B>)
            where
                F: FnMut(&SMatrix<T, OUT, B>, &SMatrix<T, OUT, B>) -> (SMatrix<T, OUT, B>, SMatrix<T, OUT, B>),
            {
                let p = Layer::<T, A, I, O, BIAS, RES>::N_PARAMS;
                let ((v0, v1), (o0, o1)) = (v.split_at(p), out.split_at_mut(p));
                self.0.forward_tape(z, &mut tapes.0, true);
                self.0.tangent(z, y, v0, &mut tapes.0);
                let (beta, r) = self.1.hvp(&mut tapes.1, &tapes.0.out, Some(&tapes.0.y), v1, o1, head);
                self.0.backward_tangent(z, y, v0, &tapes.0, &beta, &r, o0)
            }
            #[inline(always)]
            fn ggn_vp<F>(
                &self,
                tapes: &mut Self::Tapes,
                z: &SMatrix<T, I, B>,
                y: Option<&SMatrix<T, I, B>>,
                v: &[T],
                out: &mut [T],
                head: &mut F,
            ) -> SMatrix<T, I, B>
            where
                F: FnMut(&SMatrix<T, OUT, B>, &SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>,
            {
                let p = Layer::<T, A, I, O, BIAS, RES>::N_PARAMS;
                let ((v0, v1), (o0, o1)) = (v.split_at(p), out.split_at_mut(p));
                self.0.forward_tape(z, &mut tapes.0, false);
                self.0.tangent(z, y, v0, &mut tapes.0);
                let r = self.1.ggn_vp(&mut tapes.1, &tapes.0.out, Some(&tapes.0.y), v1, o1, head);
                self.0.backward(z, &tapes.0, &r, o0)
            }
            #[inline(always)]
            fn record(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, I, B>) -> SMatrix<T, OUT, B> {
                self.0.forward_tape(z, &mut tapes.0, false);
                self.1.record(&mut tapes.1, &tapes.0.out)
            }
            #[inline(always)]
            fn jv(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, I, B>, y: Option<&SMatrix<T, I, B>>, v: &[T]) -> SMatrix<T, OUT, B> {
                let (v0, v1) = v.split_at(Layer::<T, A, I, O, BIAS, RES>::N_PARAMS);
                self.0.tangent(z, y, v0, &mut tapes.0);
                self.1.jv(&mut tapes.1, &tapes.0.out, Some(&tapes.0.y), v1)
            }
            #[inline(always)]
            fn jtv(&self, tapes: &Self::Tapes, z: &SMatrix<T, I, B>, beta: &SMatrix<T, OUT, B>, grad: &mut [T]) -> SMatrix<T, I, B> {
                let (mine, rest) = grad.split_at_mut(Layer::<T, A, I, O, BIAS, RES>::N_PARAMS);
                let beta = self.1.jtv(&tapes.1, &tapes.0.out, beta, rest);
                self.0.backward(z, &tapes.0, &beta, mine)
            }
            #[inline(always)]
            fn gram<const M: usize>(
                &self,
                tapes: &Self::Tapes,
                z: &SMatrix<T, I, B>,
                r: &SMatrix<T, OUT, M>,
                gram: &mut SMatrix<T, M, M>,
            ) -> SMatrix<T, I, M> {
                let r = self.1.gram(&tapes.1, &tapes.0.out, r, gram);
                self.0.gram_backward(z, &tapes.0, &r, gram)
            }
        }
    };
}

/// An array of identical layers at the head of the list (elements feed each other, so they
/// have as many inputs as outputs).
macro_rules! array {
    ($($head:tt)*) => {
        impl<'a, T: Real, A: Activation, const W: usize, const BIAS: bool, const RES: bool, const N: usize, Rest: Params<T>>
            Params<T> for Cons<$($head)*, Rest>
        {
            type Erased = Cons<[Layer<T, Identity, W, W, BIAS, RES>; N], Rest::Erased>;
            const N_PARAMS: usize = N * Layer::<T, A, W, W, BIAS, RES>::N_PARAMS + Rest::N_PARAMS;
            const DEPTH: usize = N + Rest::DEPTH;

            #[inline]
            fn write_params(&self, out: &mut [T]) {
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let (mine, rest) = out.split_at_mut(N * p);
                for (layer, chunk) in self.0.iter().zip(mine.chunks_exact_mut(p)) {
                    layer.write_params(chunk);
                }
                self.1.write_params(rest);
            }
            #[inline]
            fn first_non_finite(&self, offset: usize) -> Option<usize> {
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                for (i, layer) in self.0.iter().enumerate() {
                    if let Some(k) = layer.first_non_finite() {
                        return Some(offset + i * p + k);
                    }
                }
                self.1.first_non_finite(offset + N * p)
            }
            #[inline]
            fn fingerprint(&self, h: &mut Fingerprint) {
                for layer in self.0.iter() {
                    h.feed(layer.w.as_slice());
                    if BIAS {
                        h.feed(layer.b.as_slice());
                    }
                }
                self.1.fingerprint(h);
            }
            #[inline]
            fn each_param<F: FnMut(T)>(&self, f: &mut F) {
                for layer in self.0.iter() {
                    layer.each_param(f);
                }
                self.1.each_param(f);
            }
            #[inline]
            fn erase(&self, out: &mut Self::Erased) {
                for (o, layer) in out.0.iter_mut().zip(self.0.iter()) {
                    *o = layer.erased();
                }
                self.1.erase(&mut out.1);
            }
        }

        impl<'a, T: Real, A: Activation, const W: usize, const BIAS: bool, const RES: bool, const N: usize, const B: usize, const OUT: usize, Rest>
            Chain<T, B, W, OUT> for Cons<$($head)*, Rest>
        where
            Rest: Chain<T, B, W, OUT>,
        {
            type Tapes = Cons<[Tape<T, W, B>; N], Rest::Tapes>;

            #[inline(always)]
            fn forward<const BB: usize>(&self, z: &SMatrix<T, W, BB>) -> SMatrix<T, OUT, BB> {
                let mut z = *z;
                for layer in self.0.iter() {
                    z = layer.forward(&z);
                }
                self.1.forward(&z)
            }
            #[inline(always)]
            fn gradient<F>(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, W, B>, grad: &mut [T], head: &mut F) -> SMatrix<T, W, B>
            where
                F: FnMut(&SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>,
            {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let (mine, rest) = grad.split_at_mut(N * p);
                for i in 0..N {
                    let (done, todo) = tapes.0.split_at_mut(i);
                    let zin = if i == 0 { z } else { &done[i - 1].out };
                    self.0[i].forward_tape(zin, &mut todo[0], false);
                }
                let mut beta = self.1.gradient(&mut tapes.1, &tapes.0[N - 1].out, rest, head);
                for i in (0..N).rev() {
                    let zin = if i == 0 { z } else { &tapes.0[i - 1].out };
                    beta = self.0[i].backward(zin, &tapes.0[i], &beta, &mut mine[i * p..(i + 1) * p]);
                }
                beta
            }
            #[inline(always)]
            fn hvp<F>(
                &self,
                tapes: &mut Self::Tapes,
                z: &SMatrix<T, W, B>,
                y: Option<&SMatrix<T, W, B>>,
                v: &[T],
                out: &mut [T],
                head: &mut F,
            ) -> (SMatrix<T, W, B>, SMatrix<T, W, B>)
            where
                F: FnMut(&SMatrix<T, OUT, B>, &SMatrix<T, OUT, B>) -> (SMatrix<T, OUT, B>, SMatrix<T, OUT, B>),
            {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let ((v0, v1), (o0, o1)) = (v.split_at(N * p), out.split_at_mut(N * p));
                for i in 0..N {
                    let (done, todo) = tapes.0.split_at_mut(i);
                    let (zin, yin) = if i == 0 { (z, y) } else { (&done[i - 1].out, Some(&done[i - 1].y)) };
                    self.0[i].forward_tape(zin, &mut todo[0], true);
                    self.0[i].tangent(zin, yin, &v0[i * p..(i + 1) * p], &mut todo[0]);
                }
                let last = &tapes.0[N - 1];
                let (mut beta, mut r) = self.1.hvp(&mut tapes.1, &last.out, Some(&last.y), v1, o1, head);
                for i in (0..N).rev() {
                    let (zin, yin) = if i == 0 { (z, y) } else { (&tapes.0[i - 1].out, Some(&tapes.0[i - 1].y)) };
                    let vi = &v0[i * p..(i + 1) * p];
                    (beta, r) = self.0[i].backward_tangent(zin, yin, vi, &tapes.0[i], &beta, &r, &mut o0[i * p..(i + 1) * p]);
                }
                (beta, r)
            }
            #[inline(always)]
            fn ggn_vp<F>(
                &self,
                tapes: &mut Self::Tapes,
                z: &SMatrix<T, W, B>,
                y: Option<&SMatrix<T, W, B>>,
                v: &[T],
                out: &mut [T],
                head: &mut F,
            ) -> SMatrix<T, W, B>
            where
                F: FnMut(&SMatrix<T, OUT, B>, &SMatrix<T, OUT, B>) -> SMatrix<T, OUT, B>,
            {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let ((v0, v1), (o0, o1)) = (v.split_at(N * p), out.split_at_mut(N * p));
                for i in 0..N {
                    let (done, todo) = tapes.0.split_at_mut(i);
                    let (zin, yin) = if i == 0 { (z, y) } else { (&done[i - 1].out, Some(&done[i - 1].y)) };
                    self.0[i].forward_tape(zin, &mut todo[0], false);
                    self.0[i].tangent(zin, yin, &v0[i * p..(i + 1) * p], &mut todo[0]);
                }
                let last = &tapes.0[N - 1];
                let mut r = self.1.ggn_vp(&mut tapes.1, &last.out, Some(&last.y), v1, o1, head);
                for i in (0..N).rev() {
                    let zin = if i == 0 { z } else { &tapes.0[i - 1].out };
                    r = self.0[i].backward(zin, &tapes.0[i], &r, &mut o0[i * p..(i + 1) * p]);
                }
                r
            }
            #[inline(always)]
            fn record(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, W, B>) -> SMatrix<T, OUT, B> {
                const { assert!(N > 0, "an array of layers has at least one element") };
                for i in 0..N {
                    let (done, todo) = tapes.0.split_at_mut(i);
                    let zin = if i == 0 { z } else { &done[i - 1].out };
                    self.0[i].forward_tape(zin, &mut todo[0], false);
                }
                self.1.record(&mut tapes.1, &tapes.0[N - 1].out)
            }
            #[inline(always)]
            fn jv(&self, tapes: &mut Self::Tapes, z: &SMatrix<T, W, B>, y: Option<&SMatrix<T, W, B>>, v: &[T]) -> SMatrix<T, OUT, B> {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let (v0, v1) = v.split_at(N * p);
                for i in 0..N {
                    let (done, todo) = tapes.0.split_at_mut(i);
                    let (zin, yin) = if i == 0 { (z, y) } else { (&done[i - 1].out, Some(&done[i - 1].y)) };
                    self.0[i].tangent(zin, yin, &v0[i * p..(i + 1) * p], &mut todo[0]);
                }
                let last = &tapes.0[N - 1];
                self.1.jv(&mut tapes.1, &last.out, Some(&last.y), v1)
            }
            #[inline(always)]
            fn jtv(&self, tapes: &Self::Tapes, z: &SMatrix<T, W, B>, beta: &SMatrix<T, OUT, B>, grad: &mut [T]) -> SMatrix<T, W, B> {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
                let (mine, rest) = grad.split_at_mut(N * p);
                let mut beta = self.1.jtv(&tapes.1, &tapes.0[N - 1].out, beta, rest);
                for i in (0..N).rev() {
                    let zin = if i == 0 { z } else { &tapes.0[i - 1].out };
                    beta = self.0[i].backward(zin, &tapes.0[i], &beta, &mut mine[i * p..(i + 1) * p]);
                }
                beta
            }
            #[inline(always)]
            fn gram<const M: usize>(
                &self,
                tapes: &Self::Tapes,
                z: &SMatrix<T, W, B>,
                r: &SMatrix<T, OUT, M>,
                gram: &mut SMatrix<T, M, M>,
            ) -> SMatrix<T, W, M> {
                const { assert!(N > 0, "an array of layers has at least one element") };
                let mut r = self.1.gram(&tapes.1, &tapes.0[N - 1].out, r, gram);
                for i in (0..N).rev() {
                    let zin = if i == 0 { z } else { &tapes.0[i - 1].out };
                    r = self.0[i].gram_backward(zin, &tapes.0[i], &r, gram);
                }
                r
            }
        }
    };
}

single!(&'a Layer<T, A, I, O, BIAS, RES>);
single!(Layer<T, A, I, O, BIAS, RES>);
array!(&'a [Layer<T, A, W, W, BIAS, RES>; N]);
array!([Layer<T, A, W, W, BIAS, RES>; N]);

impl<
        T: Real,
        A: Activation,
        const I: usize,
        const O: usize,
        const BIAS: bool,
        const RES: bool,
        Rest: ChainMut<T>,
    > ChainMut<T> for Cons<&mut Layer<T, A, I, O, BIAS, RES>, Rest>
{
    #[inline]
    fn read_params(&mut self, src: &[T]) {
        let (mine, rest) = src.split_at(Layer::<T, A, I, O, BIAS, RES>::N_PARAMS);
        self.0.read_params(mine);
        self.1.read_params(rest);
    }
    #[inline]
    fn fill_params<F: FnMut() -> T>(&mut self, f: &mut F) {
        self.0.fill_params(f);
        self.1.fill_params(f);
    }
    fn init(&mut self, rng: &mut SplitMix64, residual_gain: f64) {
        self.0.init(rng, gain(RES, residual_gain));
        self.1.init(rng, residual_gain);
    }
}

impl<
        T: Real,
        A: Activation,
        const W: usize,
        const BIAS: bool,
        const RES: bool,
        const N: usize,
        Rest: ChainMut<T>,
    > ChainMut<T> for Cons<&mut [Layer<T, A, W, W, BIAS, RES>; N], Rest>
{
    #[inline]
    fn read_params(&mut self, src: &[T]) {
        let p = Layer::<T, A, W, W, BIAS, RES>::N_PARAMS;
        let (mine, rest) = src.split_at(N * p);
        for (layer, chunk) in self.0.iter_mut().zip(mine.chunks_exact(p)) {
            layer.read_params(chunk);
        }
        self.1.read_params(rest);
    }
    #[inline]
    fn fill_params<F: FnMut() -> T>(&mut self, f: &mut F) {
        for layer in self.0.iter_mut() {
            layer.fill_params(f);
        }
        self.1.fill_params(f);
    }
    fn init(&mut self, rng: &mut SplitMix64, residual_gain: f64) {
        for layer in self.0.iter_mut() {
            layer.init(rng, gain(RES, residual_gain));
        }
        self.1.init(rng, residual_gain);
    }
}
