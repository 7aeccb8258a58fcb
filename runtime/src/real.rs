//! The scalar types generated code runs on: `f32` and `f64`.

/// A floating-point scalar usable by generated networks (`f32` or `f64`).
///
/// It is nalgebra's [`RealField`](nalgebra::RealField) (which, with nalgebra's `libm`
/// feature, needs no `std`) plus a few constants the kernels use.
pub trait Real:
    nalgebra::RealField + Copy + Default + bytemuck::Pod + core::fmt::Debug + core::fmt::Display
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Largest finite value.
    const MAX: Self;
    /// Converts an `f64` constant (rounding for `f32`).
    fn c(x: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
    /// True when the value is neither NaN nor infinite.
    fn finite(self) -> bool;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn c(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn finite(self) -> bool {
                self.is_finite()
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

/// True when every entry of `xs` is finite. A branch-free fold (no early exit), so it
/// vectorises: the happy path costs a fraction of a pass over the data.
#[inline]
pub fn all_finite<T: Real>(xs: &[T]) -> bool {
    xs.iter().fold(true, |ok, x| ok & x.finite())
}

/// Euclidean norm of `xs` (no `std` needed).
#[inline]
pub fn norm<T: Real>(xs: &[T]) -> T {
    let mut acc = T::ZERO;
    for x in xs {
        acc += *x * *x;
    }
    acc.sqrt()
}
