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
    /// Smallest positive normal value.
    const MIN_POSITIVE: Self;
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
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
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

/// Euclidean norm of `xs` (no `std` needed), without spurious overflow or underflow: one
/// pass of plain squares (four lanes), and only when that sum overflowed or may have lost
/// entries to underflow, a second pass scaled by the largest magnitude. NaN or infinite
/// entries give a non-finite norm.
#[inline]
pub fn norm<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let chunks = xs.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += *x * *x;
        }
    }
    for (a, x) in acc.iter_mut().zip(rest) {
        *a += *x * *x;
    }
    let sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    // No entry's square can have been lost to underflow when the sum is this large (a lost
    // square is below MIN_POSITIVE, and there are fewer than 1/EPSILON of them in practice).
    if sum.finite() && sum >= T::MIN_POSITIVE / (T::EPSILON * T::EPSILON) {
        return sum.sqrt();
    }
    let mut amax = T::ZERO;
    for x in xs {
        let a = x.abs();
        if !(a <= amax) {
            amax = a; // NaN propagates: NaN <= anything is false
        }
    }
    if !amax.finite() || amax == T::ZERO {
        return amax;
    }
    let inv = T::ONE / amax;
    let scale_mul = inv.finite();
    let mut s = T::ZERO;
    for x in xs {
        let y = if scale_mul { *x * inv } else { *x / amax };
        s += y * y;
    }
    amax * s.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_is_scaled() {
        for scale in [1e-310f64, 1e-200, 1e-160, 1.0, 1e150, 1e200, 1e300] {
            let xs = [3.0 * scale, -4.0 * scale, 0.0, 12.0 * scale];
            let n = norm(&xs);
            assert!((n / (13.0 * scale) - 1.0).abs() < 1e-15, "{scale}: {n}");
        }
        for scale in [1e-40f32, 1e-20, 1.0, 1e19, 1e30, 1e37] {
            let xs = [3.0 * scale, -4.0 * scale, 0.0, 12.0 * scale];
            let n = norm(&xs);
            assert!((n / (13.0 * scale) - 1.0).abs() < 1e-6, "{scale}: {n}");
        }
        assert_eq!(norm::<f64>(&[]), 0.0);
        assert_eq!(norm(&[0.0f64; 9]), 0.0);
        assert!(norm(&[1.0, f64::NAN]).is_nan());
        assert!(norm(&[1e-300, f64::NAN]).is_nan());
        assert_eq!(norm(&[1.0, f64::INFINITY]), f64::INFINITY);
        let big = norm(&[f64::MAX / 2.0, f64::MAX / 2.0]);
        assert!((big / (f64::MAX / core::f64::consts::SQRT_2) - 1.0).abs() < 1e-15);
    }

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
