//! Symmetric-indefinite `L D L'` factorisation with Bunch-Kaufman partial pivoting, on
//! fixed-size matrices, with the inertia read off `D`.
//!
//! nalgebra offers LU (which does not give the inertia) and Cholesky (definite matrices
//! only) but no symmetric-indefinite factorisation, so this is the LAPACK `xSYTF2` /
//! `xSYTRS` algorithm (lower storage) on an `SMatrix`: `P A P' = L D L'` with `L` unit lower
//! triangular and `D` block diagonal with 1x1 and 2x2 blocks. Backward stable in practice
//! (growth bounded by `(1 + 1/alpha)^(n-1)`), and Sylvester's law of inertia gives the signs
//! of `A`'s eigenvalues from those of `D`.

use nalgebra::SMatrix;

use crate::real::Real;

/// Counts of negative, zero and positive eigenvalues of a symmetric matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Inertia {
    /// Negative eigenvalues.
    pub negative: usize,
    /// Zero eigenvalues.
    pub zero: usize,
    /// Positive eigenvalues.
    pub positive: usize,
}

// SAFETY: three `usize`s; all-zero bytes are a valid value.
unsafe impl bytemuck::Zeroable for Inertia {}

impl Inertia {
    /// No eigenvalues at all.
    pub const ZERO: Self = Self { negative: 0, zero: 0, positive: 0 };

    /// True when every eigenvalue is positive (the matrix is positive definite).
    pub fn is_positive_definite(&self) -> bool {
        self.negative == 0 && self.zero == 0
    }

    /// `count` eigenvalues all equal to `value`.
    pub fn of_scalar<T: Real>(value: T, count: usize) -> Self {
        let mut out = Self::ZERO;
        if value > T::ZERO {
            out.positive = count;
        } else if value < T::ZERO {
            out.negative = count;
        } else {
            out.zero = count;
        }
        out
    }
}

impl core::ops::Add for Inertia {
    type Output = Inertia;
    fn add(self, o: Inertia) -> Inertia {
        Inertia {
            negative: self.negative + o.negative,
            zero: self.zero + o.zero,
            positive: self.positive + o.positive,
        }
    }
}

impl core::ops::AddAssign for Inertia {
    fn add_assign(&mut self, o: Inertia) {
        *self = *self + o;
    }
}

/// Up to this size, updates run over whole columns (fixed trip counts) rather than the
/// lower triangle only.
const SMALL: usize = 24;

/// A factored symmetric matrix `P A P' = L D L'` (Bunch-Kaufman), stored in place.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Ldlt<T: Real, const N: usize> {
    /// `L` below the diagonal, `D` on the diagonal and first subdiagonal (2x2 blocks).
    a: SMatrix<T, N, N>,
    /// LAPACK-style pivots: `k >= 0` a 1x1 block with row `k` swapped in; negative
    /// `-(kp + 1)` on both rows of a 2x2 block, `kp` swapped with the block's second row.
    piv: [i32; N],
}

// SAFETY: matrices of `T: Pod` and an `i32` array: all-zero bytes are valid.
unsafe impl<T: Real, const N: usize> bytemuck::Zeroable for Ldlt<T, N> {}

/// The factorisation met a pivot that is zero or too small relative to the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SingularPivot;

impl<T: Real, const N: usize> Ldlt<T, N> {
    /// An empty (zero) factorisation; usable in `const` and `static` items.
    pub const ZERO: Self =
        Self { a: crate::layer::zero_mat(), piv: [0; N] };

    /// Factors the symmetric matrix `m` (only its lower triangle is read) in place of
    /// `self`, and returns its inertia. A pivot block whose size is below
    /// `eps_mach * max|m_ij|` counts as singular.
    pub fn factor(&mut self, m: &SMatrix<T, N, N>) -> Result<Inertia, SingularPivot> {
        self.a = *m;
        self.factor_in_place()
    }

    /// The matrix to factor, to be filled in place (lower triangle) before
    /// [`Self::factor_in_place`]; saves a copy.
    pub fn matrix_mut(&mut self) -> &mut SMatrix<T, N, N> {
        &mut self.a
    }

    /// [`Self::factor`] of the matrix already in [`Self::matrix_mut`].
    pub fn factor_in_place(&mut self) -> Result<Inertia, SingularPivot> {
        self.factor_impl::<1>(None)
    }

    /// [`Self::factor_in_place`] that also turns `J = jt'` into `L^{-1} P J` as it goes (what
    /// [`Self::forward_in_place`] does to one vector, on all `M` columns of `J` at once, as
    /// contiguous column operations on `jt`): each pivot's row operations on `J` are independent of the
    /// next pivot's search, so they fill the latency of the factorisation's sequential
    /// pivot chain instead of running as a second pass. On `Err`, `jt` is unspecified.
    pub fn factor_in_place_with_rows<const M: usize>(
        &mut self,
        jt: &mut SMatrix<T, M, N>,
    ) -> Result<Inertia, SingularPivot> {
        self.factor_impl(Some(jt))
    }

    fn factor_impl<const M: usize>(
        &mut self,
        mut rows: Option<&mut SMatrix<T, M, N>>,
    ) -> Result<Inertia, SingularPivot> {
        // Column-major storage: entry (i, j) at i + j * N. Only the lower triangle is used.
        let a = self.a.as_mut_slice();
        // Largest entry of the lower triangle, and whether all of it is finite (a NaN would
        // be skipped by the comparisons, so finiteness is folded in separately).
        let (mut scale, mut finite) = (T::ZERO, true);
        for j in 0..N {
            for v in &a[j * N + j..j * N + N] {
                let x = v.abs();
                scale = if x > scale { x } else { scale };
                finite &= v.finite();
            }
        }
        if !finite || !scale.finite() {
            return Err(SingularPivot);
        }
        // A pivot block below the rounding of the largest entry is numerically zero.
        let tol = T::EPSILON * scale;
        let alpha = T::c(0.640_388_203_202_208_4); // (1 + sqrt(17)) / 8
        let mut inertia = Inertia::ZERO;
        let mut k = 0;
        while k < N {
            let absakk = a[k * N + k].abs();
            // The column's largest entry first (a branch-free scan); where it sits is only
            // needed when the diagonal entry does not win.
            let mut colmax = T::ZERO;
            for v in &a[k * N + k + 1..k * N + N] {
                let x = v.abs();
                colmax = if x > colmax { x } else { colmax };
            }
            if absakk.max(colmax) <= tol {
                return Err(SingularPivot);
            }
            let (kp, kstep) = if absakk >= alpha * colmax {
                (k, 1)
            } else {
                let imax = k + 1 + a[k * N + k + 1..k * N + N].iter().position(|v| v.abs() == colmax).unwrap_or(0);
                let mut rowmax = T::ZERO;
                for j in k..imax {
                    rowmax = rowmax.max(a[imax + j * N].abs());
                }
                for v in &a[imax * N + imax + 1..imax * N + N] {
                    rowmax = rowmax.max(v.abs());
                }
                if absakk >= alpha * colmax * (colmax / rowmax) {
                    (k, 1)
                } else if a[imax * N + imax].abs() >= alpha * rowmax {
                    (imax, 1)
                } else {
                    (imax, 2)
                }
            };
            let kk = k + kstep - 1;
            if kp != kk {
                // Symmetric interchange of rows/columns kk and kp in the trailing block.
                for i in kp + 1..N {
                    a.swap(i + kk * N, i + kp * N);
                }
                for j in kk + 1..kp {
                    a.swap(j + kk * N, kp + j * N);
                }
                a.swap(kk + kk * N, kp + kp * N);
                if kstep == 2 {
                    a.swap(k + 1 + k * N, kp + k * N);
                }
                if let Some(jt) = rows.as_deref_mut() {
                    let data = jt.as_mut_slice();
                    for r in 0..M {
                        data.swap(kk * M + r, kp * M + r);
                    }
                }
            }
            if kstep == 1 {
                let d = a[k * N + k];
                if d.abs() <= tol {
                    return Err(SingularPivot);
                }
                inertia += Inertia::of_scalar(d, 1);
                let r = T::ONE / d;
                if N <= SMALL {
                    // Small matrices: update whole columns (fixed length, unrolled and
                    // vectorised; rows above j are the unused upper triangle), from a copy
                    // of column k held in registers.
                    let mut colk = [T::ZERO; N];
                    colk.copy_from_slice(&a[k * N..k * N + N]);
                    for (j, cj) in a.chunks_exact_mut(N).enumerate().skip(k + 1) {
                        let t = r * colk[j];
                        for (x, v) in cj.iter_mut().zip(&colk) {
                            *x -= t * *v;
                        }
                    }
                } else {
                    // Column k is a[k*N..], column j > k lies after it.
                    for j in k + 1..N {
                        let (left, right) = a.split_at_mut(j * N);
                        let ajk = left[k * N + j];
                        if ajk != T::ZERO {
                            let t = r * ajk;
                            let colk = &left[k * N + j..k * N + N];
                            for (x, v) in right[j..N].iter_mut().zip(colk) {
                                *x -= t * *v;
                            }
                        }
                    }
                }
                for v in a[k * N + k + 1..k * N + N].iter_mut() {
                    *v *= r;
                }
                if let Some(jt) = rows.as_deref_mut() {
                    // J rows below k lose L[i, k] times row k (forward_in_place on each row).
                    let data = jt.as_mut_slice();
                    for i in k + 1..N {
                        let l = a[k * N + i];
                        if l == T::ZERO {
                            continue;
                        }
                        let (lo, hi) = data.split_at_mut(i * M);
                        let src = &lo[k * M..k * M + M];
                        for (x, y) in hi[..M].iter_mut().zip(src) {
                            *x -= l * *y;
                        }
                    }
                }
                self.piv[k] = kp as i32;
            } else {
                let (d11, d21, d22) = (a[k * N + k], a[k * N + k + 1], a[(k + 1) * N + k + 1]);
                // Eigenvalue signs of the 2x2 block from its determinant and trace.
                let det = d11 * d22 - d21 * d21;
                if det.abs() <= tol * tol || d21 == T::ZERO {
                    return Err(SingularPivot);
                }
                if det < T::ZERO {
                    inertia.negative += 1;
                    inertia.positive += 1;
                } else {
                    inertia += Inertia::of_scalar(d11 + d22, 2);
                }
                if k + 2 < N {
                    let e11 = d22 / d21;
                    let e22 = d11 / d21;
                    let t = T::ONE / (e11 * e22 - T::ONE);
                    let d21i = t / d21;
                    for j in k + 2..N {
                        let (ajk, ajk1) = (a[k * N + j], a[(k + 1) * N + j]);
                        let wk = d21i * (e11 * ajk - ajk1);
                        let wkp1 = d21i * (e22 * ajk1 - ajk);
                        let (left, right) = a.split_at_mut(j * N);
                        let lo = if N <= SMALL { 0 } else { j };
                        let ck = &left[k * N + lo..k * N + N];
                        let ck1 = &left[(k + 1) * N + lo..(k + 1) * N + N];
                        for ((x, v0), v1) in right[lo..N].iter_mut().zip(ck).zip(ck1) {
                            *x -= *v0 * wk + *v1 * wkp1;
                        }
                        a[k * N + j] = wk;
                        a[(k + 1) * N + j] = wkp1;
                    }
                }
                if let Some(jt) = rows.as_deref_mut() {
                    let data = jt.as_mut_slice();
                    let (lo, hi) = data.split_at_mut((k + 2) * M);
                    let (s0, s1) = (&lo[k * M..k * M + M], &lo[(k + 1) * M..(k + 1) * M + M]);
                    for (i, ci) in hi.chunks_exact_mut(M).enumerate() {
                        let (l0, l1) = (a[k * N + k + 2 + i], a[(k + 1) * N + k + 2 + i]);
                        for ((x, y0), y1) in ci.iter_mut().zip(s0).zip(s1) {
                            *x -= l0 * *y0 + l1 * *y1;
                        }
                    }
                }
                let p = -(kp as i32) - 1;
                self.piv[k] = p;
                self.piv[k + 1] = p;
            }
            k += kstep;
        }
        Ok(inertia)
    }

    /// `D_k^{-1} [b0; b1]` for the 2x2 pivot block in rows `k, k + 1` (LAPACK `xSYTRS`'s
    /// scaled form, which avoids forming the block inverse).
    #[inline(always)]
    fn solve_2x2(&self, k: usize, b0: T, b1: T) -> (T, T) {
        let a = &self.a;
        let akm1k = a[(k + 1, k)];
        let akm1 = a[(k, k)] / akm1k;
        let ak = a[(k + 1, k + 1)] / akm1k;
        let denom = akm1 * ak - T::ONE;
        let bkm1 = b0 / akm1k;
        let bk = b1 / akm1k;
        ((ak * bkm1 - bk) / denom, (akm1 * bk - bkm1) / denom)
    }

    /// Solves `A x = b` in place (`b` of length `N`), with the factors from [`Self::factor`].
    pub fn solve_in_place(&self, b: &mut [T]) {
        self.forward_in_place(b, true);
        self.backward_in_place(b);
    }

    /// `b <- L^{-1} P b`, then `b <- D^{-1} b` when `apply_d`: with `y = L^{-1} P b`,
    /// `b' A^{-1} c = y_b' D^{-1} y_c`, which gives `J' A^{-1} J` as a symmetric product.
    pub fn forward_in_place(&self, b: &mut [T], apply_d: bool) {
        debug_assert_eq!(b.len(), N);
        let a = &self.a;
        let mut k = 0;
        while k < N {
            if self.piv[k] >= 0 {
                let kp = self.piv[k] as usize;
                b.swap(k, kp);
                let bk = b[k];
                for i in k + 1..N {
                    b[i] -= a[(i, k)] * bk;
                }
                if apply_d {
                    b[k] = bk / a[(k, k)];
                }
                k += 1;
            } else {
                let kp = (-self.piv[k] - 1) as usize;
                b.swap(k + 1, kp);
                let (bk, bk1) = (b[k], b[k + 1]);
                for i in k + 2..N {
                    b[i] -= a[(i, k)] * bk + a[(i, k + 1)] * bk1;
                }
                if apply_d {
                    (b[k], b[k + 1]) = self.solve_2x2(k, bk, bk1);
                }
                k += 2;
            }
        }
    }

    /// `J <- D^{-1} J` on the rows of `J = jt'` (see [`Self::factor_in_place_with_rows`]).
    pub fn d_solve_rows<const M: usize>(&self, jt: &mut SMatrix<T, M, N>) {
        let a = &self.a;
        let data = jt.as_mut_slice();
        let mut k = 0;
        while k < N {
            if self.piv[k] >= 0 {
                let r = T::ONE / a[(k, k)];
                for x in data[k * M..k * M + M].iter_mut() {
                    *x *= r;
                }
                k += 1;
            } else {
                // solve_2x2 with its divisions hoisted out of the column loop.
                let akm1k = a[(k + 1, k)];
                let akm1 = a[(k, k)] / akm1k;
                let ak = a[(k + 1, k + 1)] / akm1k;
                let f = T::ONE / ((akm1 * ak - T::ONE) * akm1k);
                let (lo, hi) = data.split_at_mut((k + 1) * M);
                let (c0, c1) = (&mut lo[k * M..k * M + M], &mut hi[..M]);
                for (x0, x1) in c0.iter_mut().zip(c1.iter_mut()) {
                    (*x0, *x1) = ((ak * *x0 - *x1) * f, (akm1 * *x1 - *x0) * f);
                }
                k += 2;
            }
        }
    }

    /// `s <- s - Y' D^{-1} Y` for `Y = L^{-1} P J`, given `jt = Y'` (after
    /// [`Self::factor_in_place_with_rows`]): the Schur-complement update `s - J' A^{-1} J`. Updates the
    /// lower triangle of `s` (for small `M`, a little more: see below); callers mirror it.
    pub fn sub_quadratic_rows<const M: usize>(&self, jt: &SMatrix<T, M, N>, s: &mut SMatrix<T, M, M>) {
        // Z = Y' D^{-1} (M x N), then column c of s loses sum_k Z[c, k] Y'[:, k], accumulated
        // in a register-sized array.
        let mut z = *jt;
        self.d_solve_rows(&mut z);
        let (yd, zd) = (jt.as_slice(), z.as_slice());
        let sd = s.as_mut_slice();
        // Rows lo.. of column c, with lo known at compile time for small matrices (so the
        // trip counts stay fixed): 0 for the left half of the columns, M / 2 for the right
        // half. Large matrices take exactly the lower triangle.
        let column = |c: usize, lo: usize, scol: &mut [T]| {
            let mut acc = [T::ZERO; M];
            for (k, ycol) in yd.chunks_exact(M).enumerate() {
                let f = zd[k * M + c];
                for (x, y) in acc[lo..].iter_mut().zip(&ycol[lo..]) {
                    *x += f * *y;
                }
            }
            for (x, a) in scol[lo..].iter_mut().zip(&acc[lo..]) {
                *x -= *a;
            }
        };
        for (c, scol) in sd.chunks_exact_mut(M).enumerate() {
            if M > SMALL {
                column(c, c, scol);
            } else if c < M / 2 {
                column(c, 0, scol);
            } else {
                column(c, M / 2, scol);
            }
        }
    }

    /// `b <- D^{-1} b` alone (after `forward_in_place(b, false)`).
    pub fn d_solve_in_place(&self, b: &mut [T]) {
        let a = &self.a;
        let mut k = 0;
        while k < N {
            if self.piv[k] >= 0 {
                b[k] /= a[(k, k)];
                k += 1;
            } else {
                (b[k], b[k + 1]) = self.solve_2x2(k, b[k], b[k + 1]);
                k += 2;
            }
        }
    }

    /// `b <- P' L'^{-1} b`: the second half of [`Self::solve_in_place`].
    pub fn backward_in_place(&self, b: &mut [T]) {
        let a = &self.a;
        let mut k = N;
        while k > 0 {
            let kk = k - 1;
            if self.piv[kk] >= 0 {
                let mut s = b[kk];
                for i in kk + 1..N {
                    s -= a[(i, kk)] * b[i];
                }
                b[kk] = s;
                b.swap(kk, self.piv[kk] as usize);
                k -= 1;
            } else {
                // 2x2 block in rows kk - 1, kk.
                let mut s1 = b[kk];
                let mut s0 = b[kk - 1];
                for i in kk + 1..N {
                    s1 -= a[(i, kk)] * b[i];
                    s0 -= a[(i, kk - 1)] * b[i];
                }
                b[kk] = s1;
                b[kk - 1] = s0;
                b.swap(kk, (-self.piv[kk] - 1) as usize);
                k -= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random_sym<const N: usize>(rng: &mut SplitMix64, shift: f64) -> SMatrix<f64, N, N> {
        let mut m = SMatrix::<f64, N, N>::zeros();
        for i in 0..N {
            for j in 0..=i {
                let v = rng.symmetric();
                m[(i, j)] = v;
                m[(j, i)] = v;
            }
            m[(i, i)] += shift;
        }
        m
    }

    fn check<const N: usize>(seed: u64, shift: f64) {
        let mut rng = SplitMix64::new(seed);
        let m = random_sym::<N>(&mut rng, shift);
        let mut f = Ldlt::<f64, N>::ZERO;
        let inertia = f.factor(&m).expect("nonsingular");
        let b = SMatrix::<f64, N, 1>::from_fn(|_, _| rng.symmetric());
        let mut x = b;
        f.solve_in_place(x.as_mut_slice());
        let res = (m * x - b).norm() / (m.norm() * x.norm() + b.norm());
        assert!(res < 1e-14 * N as f64, "residual {res}");
        let eig = nalgebra::DMatrix::from_column_slice(N, N, m.as_slice()).symmetric_eigen().eigenvalues;
        let neg = eig.iter().filter(|&&e| e < 0.0).count();
        assert_eq!(inertia.negative, neg, "inertia {inertia:?} eig {eig}");
        assert_eq!(inertia.positive, N - neg);
    }

    #[test]
    fn solves_and_counts_signs() {
        for seed in 0..200 {
            check::<1>(seed, 0.0);
            check::<2>(seed, 0.0);
            check::<5>(seed, 0.3);
            check::<8>(seed, -0.5);
            check::<13>(seed, 0.0);
        }
    }

    #[test]
    fn two_by_two_pivots_are_exercised() {
        // Zero diagonal forces 2x2 pivots.
        let m = SMatrix::<f64, 4, 4>::new(
            0.0, 1.0, 2.0, 0.5, 1.0, 0.0, 0.3, 1.0, 2.0, 0.3, 0.0, 0.7, 0.5, 1.0, 0.7, 0.0,
        );
        let mut f = Ldlt::<f64, 4>::ZERO;
        let inertia = f.factor(&m).unwrap();
        assert!(f.piv.iter().any(|&p| p < 0), "expected a 2x2 pivot");
        let b = SMatrix::<f64, 4, 1>::new(1.0, -2.0, 0.5, 3.0);
        let mut x = b;
        f.solve_in_place(x.as_mut_slice());
        assert!((m * x - b).norm() < 1e-13);
        let eig = nalgebra::DMatrix::from_column_slice(4, 4, m.as_slice()).symmetric_eigen().eigenvalues;
        assert_eq!(inertia.negative, eig.iter().filter(|&&e| e < 0.0).count());
    }

    #[test]
    fn split_solve_gives_the_quadratic_form() {
        let mut rng = SplitMix64::new(9);
        let m = random_sym::<7>(&mut rng, 0.1);
        let mut f = Ldlt::<f64, 7>::ZERO;
        f.factor(&m).unwrap();
        let b = SMatrix::<f64, 7, 1>::from_fn(|_, _| rng.symmetric());
        let c = SMatrix::<f64, 7, 1>::from_fn(|_, _| rng.symmetric());
        let mut x = c;
        f.solve_in_place(x.as_mut_slice());
        let direct = b.dot(&x);
        let (mut yb, mut yc) = (b, c);
        f.forward_in_place(yb.as_mut_slice(), false);
        f.forward_in_place(yc.as_mut_slice(), false);
        f.d_solve_in_place(yc.as_mut_slice());
        let split = yb.dot(&yc);
        assert!((direct - split).abs() < 1e-12 * (1.0 + direct.abs()), "{direct} vs {split}");
    }

    #[test]
    fn fused_row_solves_match_the_vector_solves() {
        for seed in 0..100 {
            let mut rng = SplitMix64::new(seed);
            let m = random_sym::<7>(&mut rng, if seed % 2 == 0 { 0.0 } else { 0.4 });
            let jt = SMatrix::<f64, 5, 7>::from_fn(|_, _| rng.symmetric());
            let (mut f1, mut f2) = (Ldlt::<f64, 7>::ZERO, Ldlt::<f64, 7>::ZERO);
            *f2.matrix_mut() = m;
            let mut y = jt;
            let r1 = f1.factor(&m);
            let r2 = f2.factor_in_place_with_rows(&mut y);
            assert_eq!(r1, r2);
            if r1.is_err() {
                continue;
            }
            assert_eq!(f1.piv, f2.piv);
            // Each row of J against the vector path: L^{-1} P j, then D^{-1}, then P' L'^{-T}.
            let mut z = y;
            f2.d_solve_rows(&mut z);
            for r in 0..5 {
                let mut half = jt.row(r).transpose();
                f1.forward_in_place(half.as_mut_slice(), false);
                assert!((half - y.row(r).transpose()).norm() <= 1e-14 * (1.0 + half.norm()), "seed {seed}");
                let mut full = jt.row(r).transpose();
                f1.solve_in_place(full.as_mut_slice());
                let mut x = z.row(r).transpose();
                f2.backward_in_place(x.as_mut_slice());
                assert!((full - x).norm() < 1e-12 * (1.0 + full.norm()), "seed {seed}");
            }
        }
    }

    #[test]
    fn singular_is_reported() {
        let m = SMatrix::<f64, 3, 3>::new(1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 6.0, 9.0);
        let mut f = Ldlt::<f64, 3>::ZERO;
        assert_eq!(f.factor(&m), Err(SingularPivot));
        let z = SMatrix::<f64, 3, 3>::zeros();
        assert_eq!(f.factor(&z), Err(SingularPivot));
    }
}
