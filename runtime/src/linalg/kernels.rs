//! Small dense products on fixed-size matrices, written for the stage sizes of the solve
//! (a few to a few dozen rows): each output column is accumulated in a register-sized array
//! over column axpys, which the compiler unrolls and vectorises. nalgebra's generic products
//! compute `a' b` as dot products and re-read the output per term, which costs about twice
//! the instructions at these sizes.

use nalgebra::SMatrix;

use crate::real::Real;

/// `a b`.
#[inline(always)]
pub fn mul<T: Real, const M: usize, const K: usize, const N: usize>(
    a: &SMatrix<T, M, K>,
    b: &SMatrix<T, K, N>,
) -> SMatrix<T, M, N> {
    let mut out = SMatrix::<T, M, N>::zeros();
    let ad = a.as_slice();
    for (bcol, ocol) in b
        .as_slice()
        .chunks_exact(K)
        .zip(out.as_mut_slice().chunks_exact_mut(M))
    {
        let mut acc = [T::ZERO; M];
        for (acol, bk) in ad.chunks_exact(M).zip(bcol) {
            for (x, av) in acc.iter_mut().zip(acol) {
                *x += *av * *bk;
            }
        }
        ocol.copy_from_slice(&acc);
    }
    out
}

/// `a'` (a plain copy loop; nalgebra's `transpose` goes through its element iterators).
#[inline(always)]
pub fn transpose<T: Real, const M: usize, const N: usize>(
    a: &SMatrix<T, M, N>,
) -> SMatrix<T, N, M> {
    let mut out = SMatrix::<T, N, M>::zeros();
    let od = out.as_mut_slice();
    for (j, col) in a.as_slice().chunks_exact(M).enumerate() {
        for (i, v) in col.iter().enumerate() {
            od[j + i * N] = *v;
        }
    }
    out
}

/// `a' b`: as dot products of contiguous columns when `b` has few columns (a
/// matrix-vector product), else as [`mul`] on the transpose.
#[inline(always)]
pub fn tr_mul<T: Real, const K: usize, const M: usize, const N: usize>(
    a: &SMatrix<T, K, M>,
    b: &SMatrix<T, K, N>,
) -> SMatrix<T, M, N> {
    if N <= 2 {
        let mut out = SMatrix::<T, M, N>::zeros();
        let od = out.as_mut_slice();
        for (n, bcol) in b.as_slice().chunks_exact(K).enumerate() {
            for (i, acol) in a.as_slice().chunks_exact(K).enumerate() {
                od[n * M + i] = dot(acol, bcol);
            }
        }
        out
    } else {
        mul(&transpose(a), b)
    }
}

/// `x . y` over the common length, in four interleaved partial sums (vector lanes; a single
/// running sum is one long dependency chain the compiler may not reorder).
#[inline(always)]
pub fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let mut tail = T::ZERO;
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        tail += *a * *b;
    }
    let mut acc = [T::ZERO; 4];
    for (a, b) in xc.zip(yc) {
        for l in 0..4 {
            acc[l] += a[l] * b[l];
        }
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// `a .* b` (elementwise).
#[inline(always)]
pub fn hadamard<T: Real, const M: usize, const N: usize>(
    a: &SMatrix<T, M, N>,
    b: &SMatrix<T, M, N>,
) -> SMatrix<T, M, N> {
    let mut out = *a;
    for (o, v) in out.as_mut_slice().iter_mut().zip(b.as_slice()) {
        *o *= *v;
    }
    out
}

/// `a += f * b` (elementwise, slices of equal length).
#[inline(always)]
pub fn axpy<T: Real>(a: &mut [T], f: T, b: &[T]) {
    for (o, v) in a.iter_mut().zip(b) {
        *o += f * *v;
    }
}

/// Asks the CPU to start loading the `bytes` bytes from `p` into cache (on x86-64; a no-op
/// elsewhere). A hint only: it never dereferences `p`, so any address is allowed. The sweeps
/// use it to fetch the next stage's blocks while working on the current one, which keeps
/// deep nets, whose stages no longer fit in the core's own caches, at nearly the same cost
/// per stage.
#[inline(always)]
pub fn prefetch(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch has no architectural effect and cannot fault.
            #[allow(unused_unsafe)]
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(off).cast::<i8>(),
                );
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn products_match_nalgebra() {
        let mut rng = SplitMix64::new(3);
        let a = SMatrix::<f64, 5, 3>::from_fn(|_, _| rng.symmetric());
        let b = SMatrix::<f64, 3, 4>::from_fn(|_, _| rng.symmetric());
        let c = SMatrix::<f64, 5, 4>::from_fn(|_, _| rng.symmetric());
        assert!((mul(&a, &b) - a * b).norm() <= 1e-15 * (a.norm() * b.norm()));
        assert!((tr_mul(&a, &c) - a.transpose() * c).norm() <= 1e-15 * (a.norm() * c.norm()));
        let c1 = SMatrix::<f64, 5, 1>::from_fn(|_, _| rng.symmetric());
        assert!((tr_mul(&a, &c1) - a.transpose() * c1).norm() <= 1e-15 * (a.norm() * c1.norm()));
        assert_eq!(hadamard(&a, &a), a.component_mul(&a));
        assert_eq!(transpose(&a), a.transpose());
    }
}
