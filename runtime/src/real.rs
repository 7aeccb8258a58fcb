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

/// True when every entry of `xs` is finite. Branch-free, without early exit: `x * 0` is
/// `0` for finite `x` and NaN for an infinity or NaN, summed in eight independent lanes so
/// the loop runs on the float vector units (a bitwise `is_finite` needs 64-bit integer
/// compares, which baseline x86-64 does not vectorise).
#[inline]
pub fn all_finite<T: Real>(xs: &[T]) -> bool {
    let mut acc = [T::ZERO; 8];
    let chunks = xs.chunks_exact(8);
    let mut ok = chunks
        .remainder()
        .iter()
        .fold(true, |ok, x| ok & x.finite());
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += *x * T::ZERO;
        }
    }
    for a in acc {
        ok &= a == T::ZERO;
    }
    ok
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_every_bad_entry() {
        for len in 0..40 {
            let mut xs = [0.0f64; 40];
            for (i, x) in xs.iter_mut().enumerate() {
                *x = (i as f64 - 7.5) * if i % 3 == 0 { 1e-310 } else { 1e300 };
                // huge and subnormal
            }
            assert!(all_finite(&xs[..len]));
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for pos in 0..len {
                    let mut ys = xs;
                    ys[pos] = bad;
                    assert!(!all_finite(&ys[..len]), "len {len} pos {pos} {bad}");
                }
            }
            let zs = [f32::MAX; 40];
            assert!(all_finite(&zs[..len]));
        }
    }
}
