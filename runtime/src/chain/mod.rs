//! A network as a type-level list of its layers, and every algorithm written once over it.
//!
//! `#[tall_skinny_net]` declares a chain of layer fields; the code it generates does not
//! sequence them itself. It hands the runtime a list of references to the fields,
//! `Cons<&inp, Cons<&body, Cons<&head, Nil>>>` (a field is one [`Layer`] or an array of
//! them), and the runtime walks that list: going in, each element does its forward work and
//! hands its output to the rest of the list; the end of the list ([`Nil`]) is where the loss
//! sits; coming back out, each element does its backward work. The widths of consecutive
//! layers are part of the types (the list for `inp: Dense<2, 4>` followed by `head:
//! Dense<4, 1>` only type-checks because the 4s agree), so a list that does not chain cannot
//! be walked, and every buffer stays a fixed-size array.
//!
//! Storage follows the same shape: the records of a forward pass are a list of [`Tape`]s
//! (arrays for array fields), and the solve's per-stage data a list of [`Slot`]s, each a
//! [`Stage`] tagged with the shape of its layer. Generated code names these types once, in
//! type aliases, and the storage types in [`crate::curvature`] and [`crate::woodbury`] hold
//! them.
//!
//! - [`layers`]: the [`Chain`] trait (forward, gradient, `H v`, Gauss-Newton products, the
//!   Woodbury passes, parameters) for lists of layers.
//! - [`stages`]: the curvature pass (layers paired with their stages) and the factor, solve
//!   and product sweeps over a list of stages ([`StageStack`]).
//!
//! [`Layer`]: crate::layer::Layer
//! [`Tape`]: crate::layer::Tape
//! [`Stage`]: crate::stage::Stage

pub mod layers;
pub mod stages;

use core::marker::PhantomData;

pub use layers::{Chain, ChainMut, Fingerprint, Params};
pub use stages::{CurvChain, StageStack};

/// The end of a list (where the loss of a network sits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nil;

/// A list with head `H` and the rest `R`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Cons<H, R>(pub H, pub R);

/// One stage's solve data `S` tagged with the shape of its layer `L` (a
/// [`Layer`](crate::layer::Layer) whose activation is erased to
/// [`Identity`](crate::activation::Identity): the factor and solve sweeps need the layer's
/// widths, bias and residual flags, not its activation).
#[repr(transparent)]
pub struct Slot<L, S> {
    pub(crate) st: S,
    layer: PhantomData<fn() -> L>,
}

impl<L, S: Clone> Clone for Slot<L, S> {
    fn clone(&self) -> Self {
        Slot {
            st: self.st.clone(),
            layer: PhantomData,
        }
    }
}

impl<L, S: Copy> Copy for Slot<L, S> {}

impl<L, S: core::fmt::Debug> core::fmt::Debug for Slot<L, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.st.fmt(f)
    }
}

impl<L, S> Slot<L, S> {
    /// The stage data.
    pub fn stage(&self) -> &S {
        &self.st
    }
}

/// A value usable in `const` and `static` items: all zeros.
pub trait ConstZero: Sized {
    /// All zeros.
    const ZERO: Self;
}

impl ConstZero for Nil {
    const ZERO: Self = Nil;
}

impl<H: ConstZero, R: ConstZero> ConstZero for Cons<H, R> {
    const ZERO: Self = Cons(H::ZERO, R::ZERO);
}

impl<X: ConstZero + Copy, const N: usize> ConstZero for [X; N] {
    const ZERO: Self = [X::ZERO; N];
}

impl<L, S: ConstZero> ConstZero for Slot<L, S> {
    const ZERO: Self = Slot {
        st: S::ZERO,
        layer: PhantomData,
    };
}

macro_rules! const_zero_scalar {
    ($($t:ty),*) => {$(
        impl ConstZero for $t {
            const ZERO: Self = 0 as $t;
        }
    )*};
}
const_zero_scalar!(f32, f64, usize);

impl<T: crate::Real, const O: usize, const B: usize> ConstZero for crate::layer::Tape<T, O, B> {
    const ZERO: Self = crate::layer::Tape::ZERO;
}

impl<
        T: crate::Real,
        A: crate::Activation,
        const I: usize,
        const O: usize,
        const BIAS: bool,
        const RES: bool,
    > ConstZero for crate::layer::Layer<T, A, I, O, BIAS, RES>
{
    const ZERO: Self = crate::layer::Layer::ZERO;
}

impl<
        T: crate::Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    > ConstZero for crate::stage::Stage<T, I, O, B, I1, R, BO, BI, RO>
{
    const ZERO: Self = crate::stage::Stage::ZERO;
}

impl<T: crate::Real, const O: usize, const R: usize, const B: usize> ConstZero
    for crate::stage::Scratch<T, O, R, B>
{
    const ZERO: Self = crate::stage::Scratch::ZERO;
}

// SAFETY: `Nil` has no bytes; `Cons` is `repr(C)` over two `Zeroable` fields; `Slot` is
// `repr(transparent)` over a `Zeroable` field (the marker is zero-sized).
unsafe impl bytemuck::Zeroable for Nil {}
unsafe impl<H: bytemuck::Zeroable, R: bytemuck::Zeroable> bytemuck::Zeroable for Cons<H, R> {}
unsafe impl<L, S: bytemuck::Zeroable> bytemuck::Zeroable for Slot<L, S> {}
