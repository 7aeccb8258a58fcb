//! Symmetric-indefinite `L D L'` factorisation with Bunch-Kaufman partial pivoting, on
//! fixed-size matrices, with the inertia read off `D`.
//!
//! nalgebra offers LU (which does not give the inertia) and Cholesky (definite matrices
//! only) but no symmetric-indefinite factorisation, so this is the LAPACK `xSYTF2` /
//! `xSYTRS` algorithm (lower storage) on an `SMatrix`: `P A P' = L D L'` with `L` unit lower
//! triangular and `D` block diagonal with 1x1 and 2x2 blocks. Backward stable in practice
//! (growth bounded by `(1 + 1/alpha)^(n-1)`), and Sylvester's law of inertia gives the signs
//! of `A`'s eigenvalues from those of `D`. The factors are stored ready for solving: every
//! interchange is applied to the finished columns of `L` too (`P` is one permutation, as in
//! `xSYTRF_RK`), `L` is kept with zeros above its diagonal and `D` as its inverse, so the
//! solves are fixed-length loops without pivot logic.

use nalgebra::SMatrix;

use crate::real::Real;

/// Counts of negative, zero and positive eigenvalues of a symmetric matrix.
///
/// Every factorisation of `H + eps I` reports one (`Factored::inertia`, and the generated
/// `hessian_solve` returns it): with the exact Hessian, `negative > 0` means `H` has a
/// direction of negative curvature below `-eps`, and a Newton step at that `eps` need not be
/// a descent direction; raise `eps` until `is_positive_definite()`.
///
/// ```
/// use tall_skinny::prelude::*;
///
/// #[tall_skinny_net(batch = 2)]
/// struct Net {
///     inp: Dense<2, 4, Tanh>,
///     body: [Residual<4, Tanh>; 2],
///     head: Dense<4, 1, Identity>,
///     loss: Mse<1>,
/// }
///
/// let net = Net::init(4);
/// let (x, t) = ([[0.5, -1.0], [1.5, 0.3]], [[2.0], [-1.0]]);
/// let mut g = [0.0; Net::N_PARAMS];
/// net.gradient(&x, &t, &mut g)?;
/// let mut d = [0.0; Net::N_PARAMS];
/// let mut eps = 1e-6;
/// let inertia = loop {
///     let inertia = net.hessian_solve(&x, &t, eps, &g, &mut d)?;
///     if inertia.is_positive_definite() {
///         break inertia;
///     }
///     eps *= 10.0; // negative curvature: damp more
/// };
/// assert_eq!(inertia.positive, Net::N_PARAMS);
/// // Positive definite: -d is a descent direction.
/// assert!(d.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() > 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

/// `"3 negative, 0 zero, 61 positive"`.
impl core::fmt::Display for Inertia {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} negative, {} zero, {} positive",
            self.negative, self.zero, self.positive
        )
    }
}

impl Inertia {
    /// No eigenvalues at all.
    pub const ZERO: Self = Self {
        negative: 0,
        zero: 0,
        positive: 0,
    };

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

/// `sum_k p_k q_k'` for the pairs of 4-vectors `(p_k, q_k)`, as `acc[a][b] = sum_k p_k[a]
/// q_k[b]`, accumulated in registers in the order given: the 4 x 4 kernel of the blocked row
/// solve and Schur updates.
#[inline(always)]
fn outer_sum4<'a, T: Real + 'a>(
    terms: impl Iterator<Item = (&'a [T; 4], &'a [T; 4])>,
) -> [[T; 4]; 4] {
    let mut acc = [[T::ZERO; 4]; 4];
    for (p, q) in terms {
        for (a, pa) in acc.iter_mut().zip(p) {
            for (x, qb) in a.iter_mut().zip(q) {
                *x += *pa * *qb;
            }
        }
    }
    acc
}

/// The four entries `v[i..i + 4]` as an array reference.
#[inline(always)]
fn four<T>(v: &[T], i: usize) -> &[T; 4] {
    v[i..i + 4].try_into().unwrap()
}

/// `y <- L^{-1} y` for the rows of `y` (`M x N` column-major: column `i` is row `i`), with
/// `l` the strictly lower part of unit lower-triangular `L` (`N x N` column-major, zero on
/// and above the diagonal): `Y_i = Y_i - sum_{k < i} L[i, k] Y_k`. Rows in blocks of four:
/// the part from the finished rows in 4 x 4 register blocks (four rows of `L` against four
/// entries of each finished row), then the triangle inside the block.
fn forward_rows<T: Real, const N: usize, const M: usize>(l: &[T], y: &mut [T]) {
    let mut i0 = 0;
    while i0 < N {
        let ib = if N - i0 < 4 { N - i0 } else { 4 };
        let (done, rest) = y.split_at_mut(i0 * M);
        let mut m0 = 0;
        if ib == 4 {
            while m0 + 4 <= M {
                let acc = outer_sum4(
                    done.chunks_exact(M)
                        .enumerate()
                        .map(|(k, yk)| (four(l, k * N + i0), four(yk, m0))),
                );
                for (ii, a) in acc.iter().enumerate() {
                    for (x, v) in rest[ii * M + m0..ii * M + m0 + 4].iter_mut().zip(a) {
                        *x -= *v;
                    }
                }
                m0 += 4;
            }
        }
        // What the register blocks left: entries m0.. (all of them for a short block).
        if m0 < M {
            for ii in 0..ib {
                for (k, yk) in done.chunks_exact(M).enumerate() {
                    let lik = l[k * N + i0 + ii];
                    for (x, v) in rest[ii * M + m0..ii * M + M].iter_mut().zip(&yk[m0..]) {
                        *x -= lik * *v;
                    }
                }
            }
        }
        // The triangle inside the block (rows i0.. are final in order).
        for ii in 1..ib {
            let (prev, cur) = rest.split_at_mut(ii * M);
            for kk in 0..ii {
                let lik = l[(i0 + kk) * N + i0 + ii];
                for (x, v) in cur[..M].iter_mut().zip(&prev[kk * M..kk * M + M]) {
                    *x -= lik * *v;
                }
            }
        }
        i0 += ib;
    }
}

/// `col` with rows `0..=k` zeroed (none for `k = usize::MAX`, i.e. `-1`).
#[inline(always)]
fn below<T: Real, const N: usize>(col: &[T], k: usize) -> [T; N] {
    // (compared as floats: a vector compare on SSE2, where 64-bit integer compares are not)
    let kf = T::c(k as isize as f64);
    core::array::from_fn(|i| if T::c(i as f64) > kf { col[i] } else { T::ZERO })
}

/// A factored symmetric matrix `P A P' = L D L'` (Bunch-Kaufman), stored in place.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Ldlt<T: Real, const N: usize> {
    /// Before factoring, the matrix (its lower triangle). Once factored, `L` strictly below
    /// the diagonal and exact zeros on and above it, so the solves run fixed-length column
    /// operations with no masks.
    a: SMatrix<T, N, N>,
    /// Diagonal of `D^{-1}`.
    dinv: [T; N],
    /// Subdiagonal of `D^{-1}`: entry `(k + 1, k)` for a 2x2 block in rows `k, k + 1`, else
    /// zero.
    dinv_sub: [T; N],
    /// `P` as a gather, `(P b)[i] = b[perm[i]]`. Every interchange is applied to the
    /// already computed columns of `L` as well (as in LAPACK's `xSYTRF_RK`), so one
    /// permutation up front replaces the interleaved swaps of the `xSYTRF` format.
    perm: [u32; N],
}

// SAFETY: a matrix and arrays of `T: Pod` and a `u32` array: all-zero bytes are valid.
unsafe impl<T: Real, const N: usize> bytemuck::Zeroable for Ldlt<T, N> {}

/// The factorisation met a pivot that is zero or too small relative to the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SingularPivot;

impl<T: Real, const N: usize> Ldlt<T, N> {
    /// An empty (zero) factorisation; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        a: crate::layer::zero_mat(),
        dinv: [T::ZERO; N],
        dinv_sub: [T::ZERO; N],
        perm: [0; N],
    };

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

    /// [`Self::factor_in_place`] that also turns `J = jt'` into `L^{-1} P J` (what
    /// [`Self::forward_in_place`] does to one vector, on all `M` columns of `J` at once, as
    /// contiguous column operations on `jt`). Up to 24 x 24 as it goes: each pivot's row
    /// operations on `J` are independent of the next pivot's search, so they fill the latency
    /// of the factorisation's sequential pivot chain. Larger matrices only permute the rows on
    /// the way and solve them after the factorisation, in 4 x 4 register blocks. On `Err`,
    /// `jt` is unspecified.
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
        if N <= SMALL {
            // Whole columns with the upper rows masked, in two lanes (fixed trip counts);
            // `x * 0` is zero exactly when x is finite.
            let (mut m, mut z) = ([T::ZERO; 2], [T::ZERO; 2]);
            for j in 0..N {
                let c = below::<T, N>(&a[j * N..j * N + N], j.wrapping_sub(1));
                for (i, v) in c.iter().enumerate() {
                    let x = v.abs();
                    m[i & 1] = if x > m[i & 1] { x } else { m[i & 1] };
                    z[i & 1] += *v * T::ZERO;
                }
            }
            scale = if m[1] > m[0] { m[1] } else { m[0] };
            finite = z[0] + z[1] == T::ZERO;
        } else {
            for j in 0..N {
                for v in &a[j * N + j..j * N + N] {
                    let x = v.abs();
                    scale = if x > scale { x } else { scale };
                    finite &= v.finite();
                }
            }
        }
        if !finite || !scale.finite() {
            return Err(SingularPivot);
        }
        // A pivot block below the rounding of the largest entry is numerically zero.
        let tol = T::EPSILON * scale;
        let alpha = T::c(0.640_388_203_202_208_4); // (1 + sqrt(17)) / 8
        let mut inertia = Inertia::ZERO;
        for (i, p) in self.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        let mut k = 0;
        while k < N {
            let absakk = a[k * N + k].abs();
            // The column's largest entry first (a branch-free scan); where it sits is only
            // needed when the diagonal entry does not win.
            // Small matrices: column k below the diagonal as a fixed-length copy (reused by
            // the update unless an interchange changes the column).
            let below_k = if N <= SMALL {
                below::<T, N>(&a[k * N..k * N + N], k)
            } else {
                [T::ZERO; N]
            };
            let colmax = if N <= SMALL {
                // Whole column, rows up to k zeroed, in two lanes: a fixed trip count.
                let mut m = [T::ZERO; 2];
                for (i, v) in below_k.iter().enumerate() {
                    let x = v.abs();
                    m[i & 1] = if x > m[i & 1] { x } else { m[i & 1] };
                }
                if m[1] > m[0] {
                    m[1]
                } else {
                    m[0]
                }
            } else {
                let mut colmax = T::ZERO;
                for v in &a[k * N + k + 1..k * N + N] {
                    let x = v.abs();
                    colmax = if x > colmax { x } else { colmax };
                }
                colmax
            };
            if absakk.max(colmax) <= tol {
                return Err(SingularPivot);
            }
            let (kp, kstep) = if absakk >= alpha * colmax {
                (k, 1)
            } else {
                let imax = k
                    + 1
                    + a[k * N + k + 1..k * N + N]
                        .iter()
                        .position(|v| v.abs() == colmax)
                        .unwrap_or(0);
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
                // ... and in the finished columns of L, so that P is one permutation.
                for j in 0..k {
                    a.swap(kk + j * N, kp + j * N);
                }
                self.perm.swap(kk, kp);
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
                self.dinv[k] = r;
                self.dinv_sub[k] = T::ZERO;
                if N <= SMALL {
                    // Small matrices: fixed-length column operations (unrolled and
                    // vectorised) from a copy of column k with rows up to k zeroed, so rows
                    // above the diagonal of the trailing columns are scratch that is never
                    // read; the right half of the columns skips the top half of the rows.
                    // Column k becomes L's column, already clean.
                    let colk = if kp == k {
                        below_k
                    } else {
                        below::<T, N>(&a[k * N..k * N + N], k)
                    };
                    for j in k + 1..N {
                        let t = r * colk[j];
                        let cj = &mut a[j * N..j * N + N];
                        if j >= N / 2 {
                            for (x, v) in cj[N / 2..].iter_mut().zip(&colk[N / 2..]) {
                                *x -= t * *v;
                            }
                        } else {
                            for (x, v) in cj.iter_mut().zip(&colk) {
                                *x -= t * *v;
                            }
                        }
                    }
                    for (x, v) in a[k * N..k * N + N].iter_mut().zip(&colk) {
                        *x = *v * r;
                    }
                } else {
                    // Column k is a[k*N..], columns j > k lie after it; two at a time
                    // (columns j and j + 1 share their rows from j + 1 on, so each entry
                    // of column k is loaded once for both).
                    let mut j = k + 1;
                    while j + 1 < N {
                        let (left, right) = a.split_at_mut(j * N);
                        let (aj, aj1) = (left[k * N + j], left[k * N + j + 1]);
                        if aj != T::ZERO || aj1 != T::ZERO {
                            let (t, t1) = (r * aj, r * aj1);
                            let colk = &left[k * N + j + 1..k * N + N];
                            let (cj, cj1) = right[..2 * N].split_at_mut(N);
                            cj[j] -= t * aj;
                            for ((x, x1), v) in
                                cj[j + 1..N].iter_mut().zip(&mut cj1[j + 1..N]).zip(colk)
                            {
                                *x -= t * *v;
                                *x1 -= t1 * *v;
                            }
                        }
                        j += 2;
                    }
                    if j < N {
                        let ajk = a[k * N + j];
                        a[j * N + j] -= r * ajk * ajk;
                    }
                    for v in a[k * N + k + 1..k * N + N].iter_mut() {
                        *v *= r;
                    }
                }
                if let Some(jt) = rows.as_deref_mut().filter(|_| N <= SMALL) {
                    // J rows below k lose L[i, k] times row k (forward_in_place on each row);
                    // large matrices do this after the loop, blocked.
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
                // D_k^{-1} in LAPACK `xSYTRS`'s scaled form: with e11 = d22 / d21 and
                // e22 = d11 / d21, D_k^{-1} = f [e11, -1; -1, e22], f = 1 / ((e11 e22 - 1) d21).
                let e11 = d22 / d21;
                let e22 = d11 / d21;
                let d21i = T::ONE / ((e11 * e22 - T::ONE) * d21);
                self.dinv[k] = e11 * d21i;
                self.dinv[k + 1] = e22 * d21i;
                self.dinv_sub[k] = -d21i;
                self.dinv_sub[k + 1] = T::ZERO;
                a[k * N + k + 1] = T::ZERO;
                if N <= SMALL {
                    // As for 1x1 pivots: copies of both columns below the block, the block's
                    // L columns W = [c0 c1] D_k^{-1} whole, fixed-length updates.
                    let c0 = below::<T, N>(&a[k * N..k * N + N], k + 1);
                    let c1 = below::<T, N>(&a[(k + 1) * N..(k + 1) * N + N], k + 1);
                    let w0: [T; N] = core::array::from_fn(|i| d21i * (e11 * c0[i] - c1[i]));
                    let w1: [T; N] = core::array::from_fn(|i| d21i * (e22 * c1[i] - c0[i]));
                    for j in k + 2..N {
                        let (f0, f1) = (w0[j], w1[j]);
                        let cj = &mut a[j * N..j * N + N];
                        let lo = if j >= N / 2 { N / 2 } else { 0 };
                        for ((x, v0), v1) in cj[lo..].iter_mut().zip(&c0[lo..]).zip(&c1[lo..]) {
                            *x -= *v0 * f0 + *v1 * f1;
                        }
                    }
                    a[k * N..k * N + N].copy_from_slice(&w0);
                    a[(k + 1) * N..(k + 1) * N + N].copy_from_slice(&w1);
                } else if k + 2 < N {
                    for j in k + 2..N {
                        let (ajk, ajk1) = (a[k * N + j], a[(k + 1) * N + j]);
                        let wk = d21i * (e11 * ajk - ajk1);
                        let wkp1 = d21i * (e22 * ajk1 - ajk);
                        let (left, right) = a.split_at_mut(j * N);
                        let ck = &left[k * N + j..k * N + N];
                        let ck1 = &left[(k + 1) * N + j..(k + 1) * N + N];
                        for ((x, v0), v1) in right[j..N].iter_mut().zip(ck).zip(ck1) {
                            *x -= *v0 * wk + *v1 * wkp1;
                        }
                        a[k * N + j] = wk;
                        a[(k + 1) * N + j] = wkp1;
                    }
                }
                if let Some(jt) = rows.as_deref_mut().filter(|_| N <= SMALL) {
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
            }
            k += kstep;
        }
        if N > SMALL {
            // Clear the diagonal (now in `dinv`) and the upper triangle, leaving exactly
            // L - I (small matrices wrote each column of L clean).
            for (j, col) in a.chunks_exact_mut(N).enumerate() {
                col[..=j].fill(T::ZERO);
            }
            // The rows of J were only permuted on the way (P J); now L^{-1} P J, blocked.
            if let Some(jt) = rows {
                forward_rows::<T, N, M>(a, jt.as_mut_slice());
            }
        }
        Ok(inertia)
    }

    /// `log|det A|` and whether `det A < 0`, from the stored pivots (`D` is kept as its
    /// inverse: a 1x1 block `1 / d`, a 2x2 block's determinant is `1 / det` of the stored
    /// one). No extra factorisation.
    pub fn log_abs_det(&self) -> (T, bool) {
        let mut log = T::ZERO;
        let mut neg = false;
        let mut k = 0;
        while k < N {
            let s = self.dinv_sub[k];
            let det_inv = if s == T::ZERO || k + 1 == N {
                k += 1;
                self.dinv[k - 1]
            } else {
                k += 2;
                self.dinv[k - 2] * self.dinv[k - 1] - s * s
            };
            log -= det_inv.abs().ln();
            if det_inv < T::ZERO {
                neg = !neg;
            }
        }
        (log, neg)
    }

    /// Solves `A x = b` in place (`b` of length `N`), with the factors from [`Self::factor`].
    pub fn solve_in_place(&self, b: &mut [T]) {
        self.forward_in_place(b, true);
        self.backward_in_place(b);
    }

    /// `b <- L^{-1} P b`, then `b <- D^{-1} b` when `apply_d`: with `y = L^{-1} P b`,
    /// `b' A^{-1} c = y_b' D^{-1} y_c`, which gives `J' A^{-1} J` as a symmetric product.
    #[inline(always)]
    pub fn forward_in_place(&self, b: &mut [T], apply_d: bool) {
        let mut t: [T; N] = core::array::from_fn(|i| b[self.perm[i] as usize]);
        let cols = &self.a.data.0;
        // Column k of L times t[k] off the rows below; small matrices take the whole
        // (zero-padded) column, a fixed trip count. The last column has nothing below.
        for k in 0..N.saturating_sub(1) {
            let lo = if N <= SMALL { 0 } else { k + 1 };
            let tk = t[k];
            for i in lo..N {
                t[i] -= cols[k][i] * tk;
            }
        }
        if apply_d {
            self.d_apply(&mut t);
        }
        b.copy_from_slice(&t);
    }

    /// `t <- D^{-1} t` from the stored diagonal and subdiagonal of `D^{-1}`.
    #[inline(always)]
    fn d_apply(&self, t: &mut [T; N]) {
        let mut y: [T; N] = core::array::from_fn(|k| self.dinv[k] * t[k]);
        for k in 1..N {
            let s = self.dinv_sub[k - 1];
            y[k - 1] += s * t[k];
            y[k] += s * t[k - 1];
        }
        *t = y;
    }

    /// `J <- D^{-1} J` on the rows of `J = jt'` (see [`Self::factor_in_place_with_rows`]).
    pub fn d_solve_rows<const M: usize>(&self, jt: &mut SMatrix<T, M, N>) {
        let data = jt.as_mut_slice();
        let mut k = 0;
        while k < N {
            let s = self.dinv_sub[k];
            if s == T::ZERO || k + 1 == N {
                let r = self.dinv[k];
                for x in data[k * M..k * M + M].iter_mut() {
                    *x *= r;
                }
                k += 1;
            } else {
                let (d0, d1) = (self.dinv[k], self.dinv[k + 1]);
                let (lo, hi) = data.split_at_mut((k + 1) * M);
                let (c0, c1) = (&mut lo[k * M..k * M + M], &mut hi[..M]);
                for (x0, x1) in c0.iter_mut().zip(c1.iter_mut()) {
                    (*x0, *x1) = (d0 * *x0 + s * *x1, s * *x0 + d1 * *x1);
                }
                k += 2;
            }
        }
    }

    /// `s <- s - Y' D^{-1} Y` for `Y = L^{-1} P J`, given `jt = Y'` (after
    /// [`Self::factor_in_place_with_rows`]): the Schur-complement update `s - J' A^{-1} J`. Updates the
    /// lower triangle of `s` (for small `M`, a little more: see below); callers mirror it.
    pub fn sub_quadratic_rows<const M: usize>(
        &self,
        jt: &SMatrix<T, M, N>,
        s: &mut SMatrix<T, M, M>,
    ) {
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
        if M > SMALL {
            // Large matrices: the lower triangle in 4 x 4 register blocks (a symmetric
            // rank-N update, each block of s read and written once), columns in groups of
            // four from the diagonal block down; the rows and columns left over take the
            // column path.
            let mut c0 = 0;
            while c0 + 4 <= M {
                let mut r0 = c0;
                while r0 + 4 <= M {
                    let acc = outer_sum4(
                        yd.chunks_exact(M)
                            .zip(zd.chunks_exact(M))
                            .map(|(ycol, zcol)| (four(zcol, c0), four(ycol, r0))),
                    );
                    for (j, a) in acc.iter().enumerate() {
                        let scol = &mut sd[(c0 + j) * M + r0..(c0 + j) * M + r0 + 4];
                        for (x, v) in scol.iter_mut().zip(a) {
                            *x -= *v;
                        }
                    }
                    r0 += 4;
                }
                if r0 < M {
                    for j in c0..c0 + 4 {
                        column(j, r0, &mut sd[j * M..j * M + M]);
                    }
                }
                c0 += 4;
            }
            for (c, scol) in sd.chunks_exact_mut(M).enumerate().skip(c0) {
                column(c, c, scol);
            }
            return;
        }
        for (c, scol) in sd.chunks_exact_mut(M).enumerate() {
            if c < M / 2 {
                column(c, 0, scol);
            } else {
                column(c, M / 2, scol);
            }
        }
    }

    /// `b <- D^{-1} b` alone (after `forward_in_place(b, false)`).
    #[inline(always)]
    pub fn d_solve_in_place(&self, b: &mut [T]) {
        let mut t = [T::ZERO; N];
        t.copy_from_slice(b);
        self.d_apply(&mut t);
        b.copy_from_slice(&t);
    }

    /// `b <- P' L'^{-1} b`: the second half of [`Self::solve_in_place`].
    #[inline(always)]
    pub fn backward_in_place(&self, b: &mut [T]) {
        let mut t = [T::ZERO; N];
        t.copy_from_slice(b);
        let cols = &self.a.data.0;
        // t[k] -= L[k+1.., k] . t[k+1..], bottom up; small matrices take the whole
        // (zero-padded) column.
        for k in (0..N.saturating_sub(1)).rev() {
            let lo = if N <= SMALL { 0 } else { k + 1 };
            t[k] -= crate::linalg::kernels::dot(&cols[k][lo..], &t[lo..]);
        }
        for (p, v) in self.perm.iter().zip(&t) {
            b[*p as usize] = *v;
        }
    }
}

/// A partial `L D L'` factorisation with threshold-delayed pivots (the multifrontal solvers'
/// rule, MA57 / MUMPS; docs/math.md section 7, "Delayed pivots across stages"), for the stable
/// sweep: a stage eliminates only the pivots that are large enough for their coupling to the
/// state, and carries the rest to the stage before.
///
/// The leading `n x n` block (`n <= N`, chosen at run time) of the storage holds a symmetric
/// matrix `Q` (lower triangle), and the `M x N` matrix `jt` the transposed coupling `N'` of
/// `Q`'s variables to `M` state variables that are not eliminated here (column `c` of `jt`
/// belongs to variable `c`). Bunch-Kaufman picks each candidate pivot (1x1 or 2x2) among the
/// variables not yet delayed; a candidate is eliminated only when
/// `|D^{-1}|_1 * max(|its column below it|, |its coupling|) <= 1 / tau`
/// (for a 1x1 pivot: `|d| >= tau * max(..)`), which bounds its Schur update of `Q` and of the
/// state block by `1 / tau` times the squared coupling; otherwise its variable is moved to
/// the end and delayed. The result is
///
/// ```text
/// P Q P' = [L11 0; L21 I] [D1 0; 0 Sc] [L11' L21'; 0 I],
/// ```
///
/// with `ne` eliminated variables (positions `0..ne` of `P`) and `n - ne` delayed ones
/// (positions `ne..n`): `Sc` (their Schur complement) and the updated coupling rows
/// `Gamma = (P N)_D - L21 L11^{-1} (P N)_E` are what the stage carries to the previous one;
/// `Y = L11^{-1} (P N)_E` (in `jt`'s first `ne` columns) gives the state's update
/// `S -= Y' D1^{-1} Y`. The inertia returned is that of `D1`; by Sylvester's law the inertia of
/// `Q` is it plus that of `Sc`, so a sweep that eliminates every carried block at some stage
/// counts the inertia exactly. With `tau = 0` nothing is delayed (plain Bunch-Kaufman).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct DelayedLdlt<T: Real, const N: usize> {
    /// The matrix (lower triangle); once factored, `L` strictly below the diagonal in the
    /// eliminated columns and `Sc` in the delayed block (lower triangle).
    a: SMatrix<T, N, N>,
    /// Diagonal of `D1^{-1}` (eliminated positions).
    dinv: [T; N],
    /// Subdiagonal of `D1^{-1}`: entry `k` for a 2x2 block in positions `k, k + 1`.
    dinv_sub: [T; N],
    /// `(P b)[i] = b[perm[i]]`.
    perm: [u32; N],
    /// Pivot size starting at each eliminated position: 1, 2, or 0 (second of a 2x2).
    kind: [u8; N],
    /// Size of the factored block.
    n: u32,
    /// Eliminated variables.
    ne: u32,
}

// SAFETY: a matrix and arrays of `T: Pod`, `u32` and `u8` arrays and two `u32`: all-zero
// bytes are valid.
unsafe impl<T: Real, const N: usize> bytemuck::Zeroable for DelayedLdlt<T, N> {}

impl<T: Real, const N: usize> DelayedLdlt<T, N> {
    /// An empty factorisation; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        a: crate::layer::zero_mat(),
        dinv: [T::ZERO; N],
        dinv_sub: [T::ZERO; N],
        perm: [0; N],
        kind: [0; N],
        n: 0,
        ne: 0,
    };

    /// The matrix to factor (its leading `n x n` block, lower triangle), filled in place.
    pub fn matrix_mut(&mut self) -> &mut SMatrix<T, N, N> {
        &mut self.a
    }

    /// Size of the factored block.
    pub fn size(&self) -> usize {
        self.n as usize
    }

    /// Number of eliminated variables (positions `0..eliminated()`).
    pub fn eliminated(&self) -> usize {
        self.ne as usize
    }

    /// The variable at position `i` of `P` (positions `eliminated()..size()` are delayed).
    pub fn variable(&self, i: usize) -> usize {
        self.perm[i] as usize
    }

    /// Entry `(i, j)` of the delayed block's Schur complement `Sc` (`i, j < size() -
    /// eliminated()`).
    pub fn schur(&self, i: usize, j: usize) -> T {
        let ne = self.ne as usize;
        let (r, c) = if i >= j { (i, j) } else { (j, i) };
        self.a[(ne + r, ne + c)]
    }

    /// Symmetric interchange of positions `p < q` (both at or after `k`, the first
    /// uneliminated position) in the block of size `n`, in the finished columns of `L`, in
    /// `jt` and in the permutation.
    fn interchange<const M: usize>(
        &mut self,
        k: usize,
        p: usize,
        q: usize,
        jt: &mut SMatrix<T, M, N>,
    ) {
        if p == q {
            return;
        }
        let n = self.n as usize;
        let a = &mut self.a;
        // rows/columns below q
        for i in q + 1..n {
            let t = a[(i, p)];
            a[(i, p)] = a[(i, q)];
            a[(i, q)] = t;
        }
        // between p and q: (j, p) <-> (q, j)
        for j in p + 1..q {
            let t = a[(j, p)];
            a[(j, p)] = a[(q, j)];
            a[(q, j)] = t;
        }
        let t = a[(p, p)];
        a[(p, p)] = a[(q, q)];
        a[(q, q)] = t;
        // columns before p inside the trailing block, and the finished columns of L
        // the finished columns of L (j < k) and the trailing columns k..p
        let _ = k;
        for j in 0..p {
            let t = a[(p, j)];
            a[(p, j)] = a[(q, j)];
            a[(q, j)] = t;
        }
        self.perm.swap(p, q);
        let d = jt.as_mut_slice();
        for r in 0..M {
            d.swap(p * M + r, q * M + r);
        }
    }

    /// Largest `|entry|` of column `c` of the coupling.
    fn coupling_max<const M: usize>(jt: &SMatrix<T, M, N>, c: usize) -> T {
        let mut m = T::ZERO;
        for v in &jt.as_slice()[c * M..c * M + M] {
            m = m.max(v.abs());
        }
        m
    }

    /// Factors the leading `n x n` block with threshold `tau` (see the type's docs), turning
    /// `jt` into `[Y' | Gamma']` on the way; at most `max_delayed` variables are delayed
    /// (after that every pivot is eliminated). Returns the inertia of `D1`. A pivot block
    /// below `eps_mach` times the largest entry is reported as singular when it cannot be
    /// delayed. On `Err` the contents are unspecified.
    pub fn factor<const M: usize>(
        &mut self,
        n: usize,
        jt: &mut SMatrix<T, M, N>,
        tau: T,
        max_delayed: usize,
    ) -> Result<Inertia, SingularPivot> {
        assert!(n <= N, "block larger than the storage");
        self.n = n as u32;
        let mut scale = T::ZERO;
        let mut finite = true;
        for j in 0..n {
            for i in j..n {
                let v = self.a[(i, j)];
                scale = scale.max(v.abs());
                finite &= v.finite();
            }
        }
        finite &= crate::real::all_finite(&jt.as_slice()[..n * M]);
        if !finite || !scale.finite() {
            return Err(SingularPivot);
        }
        for (i, p) in self.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        let tol = T::EPSILON * scale;
        let alpha = T::c(0.640_388_203_202_208_4);
        let mut inertia = Inertia::ZERO;
        let mut active = n; // positions k..active are candidates, active..n delayed
        let mut k = 0;
        while k < active {
            let may_delay = n - active < max_delayed;
            // Bunch-Kaufman's choice among the candidates k..active.
            let absakk = self.a[(k, k)].abs();
            let (mut colmax, mut imax) = (T::ZERO, k);
            for i in k + 1..active {
                let v = self.a[(i, k)].abs();
                if v > colmax {
                    colmax = v;
                    imax = i;
                }
            }
            if absakk.max(colmax) <= tol {
                if may_delay {
                    self.interchange(k, k, active - 1, jt);
                    active -= 1;
                    continue;
                }
                return Err(SingularPivot);
            }
            let (kp, kstep) = if absakk >= alpha * colmax {
                (k, 1)
            } else {
                let mut rowmax = T::ZERO;
                for j in k..imax {
                    rowmax = rowmax.max(self.a[(imax, j)].abs());
                }
                for i in imax + 1..active {
                    rowmax = rowmax.max(self.a[(i, imax)].abs());
                }
                if absakk >= alpha * colmax * (colmax / rowmax) {
                    (k, 1)
                } else if self.a[(imax, imax)].abs() >= alpha * rowmax {
                    (imax, 1)
                } else {
                    (imax, 2)
                }
            };
            // Bring the pivot to k (and k + 1).
            if kstep == 2 {
                // k stays, imax goes to k + 1
                self.interchange(k, k + 1, kp, jt);
            } else {
                self.interchange(k, k, kp, jt);
            }
            // The threshold test against everything the pivot's elimination touches: the
            // rest of its columns (delayed rows included) and its coupling to the state.
            let below_max = |s: &Self, c: usize| {
                let mut m = T::ZERO;
                for i in k + kstep..n {
                    m = m.max(s.a[(i, c)].abs());
                }
                m
            };
            if kstep == 1 {
                let d = self.a[(k, k)];
                let reach = below_max(self, k).max(Self::coupling_max(jt, k));
                let weak = d.abs() <= tol || d.abs() < tau * reach;
                if weak && may_delay {
                    self.interchange(k, k, active - 1, jt);
                    active -= 1;
                    continue;
                }
                if d.abs() <= tol {
                    return Err(SingularPivot);
                }
                inertia += Inertia::of_scalar(d, 1);
                let r = T::ONE / d;
                self.dinv[k] = r;
                self.dinv_sub[k] = T::ZERO;
                self.kind[k] = 1;
                for j in k + 1..n {
                    let t = r * self.a[(j, k)];
                    if t == T::ZERO {
                        // nothing to subtract (the decoupled complement's columns are zero)
                        continue;
                    }
                    for i in j..n {
                        let v = self.a[(i, k)];
                        self.a[(i, j)] -= t * v;
                    }
                }
                for i in k + 1..n {
                    self.a[(i, k)] *= r;
                }
                let data = jt.as_mut_slice();
                for i in k + 1..n {
                    let l = self.a[(i, k)];
                    if l == T::ZERO {
                        continue;
                    }
                    let (lo, hi) = data.split_at_mut(i * M);
                    for (x, y) in hi[..M].iter_mut().zip(&lo[k * M..k * M + M]) {
                        *x -= l * *y;
                    }
                }
                k += 1;
            } else {
                let (d11, d21, d22) = (self.a[(k, k)], self.a[(k + 1, k)], self.a[(k + 1, k + 1)]);
                let det = d11 * d22 - d21 * d21;
                let singular = det.abs() <= tol * tol || d21 == T::ZERO;
                let (i11, i21, i22) = if singular {
                    (T::ZERO, T::ZERO, T::ZERO)
                } else {
                    (d22 / det, -d21 / det, d11 / det)
                };
                let inv_norm = (i11.abs() + i21.abs()).max(i21.abs() + i22.abs());
                let reach = below_max(self, k)
                    .max(below_max(self, k + 1))
                    .max(Self::coupling_max(jt, k))
                    .max(Self::coupling_max(jt, k + 1));
                let weak = singular || inv_norm * reach * tau > T::ONE;
                if weak && may_delay {
                    // delay the candidate that started the search (now at k)
                    self.interchange(k, k, active - 1, jt);
                    active -= 1;
                    continue;
                }
                if singular {
                    return Err(SingularPivot);
                }
                if det < T::ZERO {
                    inertia.negative += 1;
                    inertia.positive += 1;
                } else {
                    inertia += Inertia::of_scalar(d11 + d22, 2);
                }
                self.dinv[k] = i11;
                self.dinv[k + 1] = i22;
                self.dinv_sub[k] = i21;
                self.dinv_sub[k + 1] = T::ZERO;
                self.kind[k] = 2;
                self.kind[k + 1] = 0;
                self.a[(k + 1, k)] = T::ZERO;
                for j in k + 2..n {
                    let (ajk, ajk1) = (self.a[(j, k)], self.a[(j, k + 1)]);
                    let w0 = i11 * ajk + i21 * ajk1;
                    let w1 = i21 * ajk + i22 * ajk1;
                    for i in j..n {
                        let (v0, v1) = (self.a[(i, k)], self.a[(i, k + 1)]);
                        self.a[(i, j)] -= v0 * w0 + v1 * w1;
                    }
                }
                for i in k + 2..n {
                    let (ajk, ajk1) = (self.a[(i, k)], self.a[(i, k + 1)]);
                    self.a[(i, k)] = i11 * ajk + i21 * ajk1;
                    self.a[(i, k + 1)] = i21 * ajk + i22 * ajk1;
                }
                let data = jt.as_mut_slice();
                for i in k + 2..n {
                    let (l0, l1) = (self.a[(i, k)], self.a[(i, k + 1)]);
                    let (lo, hi) = data.split_at_mut(i * M);
                    let (s0, s1) = (&lo[k * M..k * M + M], &lo[(k + 1) * M..(k + 1) * M + M]);
                    for ((x, y0), y1) in hi[..M].iter_mut().zip(s0).zip(s1) {
                        *x -= l0 * *y0 + l1 * *y1;
                    }
                }
                k += 2;
            }
        }
        self.ne = active as u32;
        Ok(inertia)
    }

    /// `b <- L^{-1} P b` on the block (`b` of length `size()`, in the original order): the
    /// first `eliminated()` entries are then the eliminated part, the rest the delayed
    /// variables' right-hand side `(P b)_D - L21 L11^{-1} (P b)_E`.
    pub fn forward(&self, b: &mut [T]) {
        let (n, ne) = (self.n as usize, self.ne as usize);
        let mut t = [T::ZERO; N];
        for i in 0..n {
            t[i] = b[self.perm[i] as usize];
        }
        let mut k = 0;
        while k < ne {
            if self.kind[k] == 2 {
                let (t0, t1) = (t[k], t[k + 1]);
                for (i, ti) in t.iter_mut().enumerate().take(n).skip(k + 2) {
                    *ti -= self.a[(i, k)] * t0 + self.a[(i, k + 1)] * t1;
                }
                k += 2;
            } else {
                let t0 = t[k];
                for (i, ti) in t.iter_mut().enumerate().take(n).skip(k + 1) {
                    *ti -= self.a[(i, k)] * t0;
                }
                k += 1;
            }
        }
        b[..n].copy_from_slice(&t[..n]);
    }

    /// `y <- D1^{-1} y` on the first `eliminated()` entries (after [`Self::forward`]).
    pub fn d_solve(&self, y: &mut [T]) {
        let ne = self.ne as usize;
        let mut k = 0;
        while k < ne {
            if self.kind[k] == 2 {
                let (a, b) = (y[k], y[k + 1]);
                let s = self.dinv_sub[k];
                y[k] = self.dinv[k] * a + s * b;
                y[k + 1] = s * a + self.dinv[k + 1] * b;
                k += 2;
            } else {
                y[k] *= self.dinv[k];
                k += 1;
            }
        }
    }

    /// The back substitution: given `w` with `D1^{-1}` applied to its first `eliminated()`
    /// entries and the delayed variables' values in the rest (positions of `P`), writes the
    /// solution in the original order.
    pub fn backward(&self, w: &mut [T]) {
        let (n, ne) = (self.n as usize, self.ne as usize);
        let mut t = [T::ZERO; N];
        t[..n].copy_from_slice(&w[..n]);
        let mut k = ne;
        while k > 0 {
            // the pivot ending at k - 1
            let start = if k >= 2 && self.kind[k - 2] == 2 {
                k - 2
            } else {
                k - 1
            };
            for c in start..k {
                let acc =
                    crate::linalg::kernels::dot(&self.a.as_slice()[c * N + k..c * N + n], &t[k..n]);
                t[c] -= acc;
            }
            k = start;
        }
        for (p, v) in self.perm[..n].iter().zip(&t[..n]) {
            w[*p as usize] = *v;
        }
    }

    /// `log|det D1|` and its sign over the eliminated pivots (1x1 and 2x2 blocks).
    pub fn log_det_pivots(&self) -> crate::stage::selinv::LogDet<T> {
        let ne = self.ne as usize;
        let (mut log, mut neg) = (T::ZERO, false);
        let mut k = 0;
        while k < ne {
            let det_inv = if self.kind[k] == 2 {
                let s = self.dinv_sub[k];
                k += 2;
                self.dinv[k - 2] * self.dinv[k - 1] - s * s
            } else {
                k += 1;
                self.dinv[k - 1]
            };
            log -= det_inv.abs().ln();
            neg ^= det_inv < T::ZERO;
        }
        crate::stage::selinv::LogDet {
            log_abs: log,
            sign: if neg { -1 } else { 1 },
        }
    }

    /// `s <- s - Y' D1^{-1} Y` for `Y = L11^{-1} (P N)_E`, the first `eliminated()` columns of
    /// `jt` after [`Self::factor`] (the whole of `s` is updated).
    pub fn sub_quadratic_rows<const M: usize>(
        &self,
        jt: &SMatrix<T, M, N>,
        s: &mut SMatrix<T, M, M>,
    ) {
        let ne = self.ne as usize;
        let yd = jt.as_slice();
        let sd = s.as_mut_slice();
        // Four columns of s at a time: their Z = D1^{-1} Y entries for every pivot, then the
        // rows from the diagonal block down in 4 x 4 register blocks; a block below the
        // diagonal also updates its mirror image above it.
        let mut zc = [[T::ZERO; 4]; N];
        let mut c0 = 0;
        while c0 < M {
            let cw = if M - c0 < 4 { M - c0 } else { 4 };
            let mut k = 0;
            while k < ne {
                if self.kind[k] == 2 {
                    let (d0, d1, sub) = (self.dinv[k], self.dinv[k + 1], self.dinv_sub[k]);
                    for j in 0..cw {
                        let (y0, y1) = (yd[k * M + c0 + j], yd[(k + 1) * M + c0 + j]);
                        zc[k][j] = d0 * y0 + sub * y1;
                        zc[k + 1][j] = sub * y0 + d1 * y1;
                    }
                    k += 2;
                } else {
                    for j in 0..cw {
                        zc[k][j] = self.dinv[k] * yd[k * M + c0 + j];
                    }
                    k += 1;
                }
            }
            let mut r0 = c0;
            while r0 < M {
                let rw = if M - r0 < 4 { M - r0 } else { 4 };
                let acc = if rw == 4 && cw == 4 {
                    outer_sum4(
                        yd.chunks_exact(M)
                            .zip(&zc[..ne])
                            .map(|(ycol, z)| (z, four(ycol, r0))),
                    )
                } else {
                    // a partial block at the edge: the same sums, run-time sized
                    let mut acc = [[T::ZERO; 4]; 4];
                    for (ycol, z) in yd.chunks_exact(M).zip(&zc[..ne]) {
                        for j in 0..cw {
                            for i in 0..rw {
                                acc[j][i] += z[j] * ycol[r0 + i];
                            }
                        }
                    }
                    acc
                };
                for (j, a) in acc.iter().enumerate().take(cw) {
                    for (i, v) in a.iter().enumerate().take(rw) {
                        let (r, c) = (r0 + i, c0 + j);
                        sd[c * M + r] -= *v;
                        if r0 != c0 {
                            sd[r * M + c] -= *v;
                        }
                    }
                }
                r0 += 4;
            }
            c0 += 4;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rng::SplitMix64;
    use std::vec::Vec;

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
        let eig = nalgebra::DMatrix::from_column_slice(N, N, m.as_slice())
            .symmetric_eigen()
            .eigenvalues;
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
            check::<30>(seed, 0.2);
            check::<33>(seed, -0.3);
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
        assert!(f.dinv_sub.iter().any(|&s| s != 0.0), "expected a 2x2 pivot");
        let b = SMatrix::<f64, 4, 1>::new(1.0, -2.0, 0.5, 3.0);
        let mut x = b;
        f.solve_in_place(x.as_mut_slice());
        assert!((m * x - b).norm() < 1e-13);
        let eig = nalgebra::DMatrix::from_column_slice(4, 4, m.as_slice())
            .symmetric_eigen()
            .eigenvalues;
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
        assert!(
            (direct - split).abs() < 1e-12 * (1.0 + direct.abs()),
            "{direct} vs {split}"
        );
    }

    #[test]
    fn fused_row_solves_match_the_vector_solves() {
        for seed in 0..100 {
            fused_rows::<7, 5>(seed);
        }
        // the large path (rows solved after the factorisation, blocked), with sizes that
        // are and are not multiples of the block
        for seed in 0..20 {
            fused_rows::<25, 5>(seed);
            fused_rows::<30, 37>(seed);
            fused_rows::<64, 64>(seed);
            fused_rows::<27, 2>(seed);
        }
    }

    fn fused_rows<const N: usize, const M: usize>(seed: u64) {
        let mut rng = SplitMix64::new(seed);
        let m = random_sym::<N>(&mut rng, if seed % 2 == 0 { 0.0 } else { 0.4 });
        let jt = SMatrix::<f64, M, N>::from_fn(|_, _| rng.symmetric());
        let (mut f1, mut f2) = (Ldlt::<f64, N>::ZERO, Ldlt::<f64, N>::ZERO);
        *f2.matrix_mut() = m;
        let mut y = jt;
        let r1 = f1.factor(&m);
        let r2 = f2.factor_in_place_with_rows(&mut y);
        assert_eq!(r1, r2);
        if r1.is_err() {
            return;
        }
        assert_eq!(f1.perm, f2.perm);
        // Each row of J against the vector path: L^{-1} P j, then D^{-1}, then P' L'^{-T}.
        let mut z = y;
        f2.d_solve_rows(&mut z);
        for r in 0..M {
            let mut half = jt.row(r).transpose();
            f1.forward_in_place(half.as_mut_slice(), false);
            assert!(
                (half - y.row(r).transpose()).norm() <= 1e-15 * N as f64 * (1.0 + half.norm()),
                "N {N} M {M} seed {seed}"
            );
            let mut full = jt.row(r).transpose();
            f1.solve_in_place(full.as_mut_slice());
            let mut x = z.row(r).transpose();
            f2.backward_in_place(x.as_mut_slice());
            assert!(
                (full - x).norm() < 1e-13 * N as f64 * (1.0 + full.norm()),
                "N {N} M {M} seed {seed}"
            );
        }
    }

    /// `s - J' A^{-1} J` on the lower triangle against a dense inverse, on the small path
    /// and on the blocked one (sizes that are and are not multiples of the block).
    fn check_quadratic_rows<const N: usize, const M: usize>(seed: u64) {
        let mut rng = SplitMix64::new(seed);
        let m = random_sym::<N>(&mut rng, 0.3);
        let jt = SMatrix::<f64, M, N>::from_fn(|_, _| rng.symmetric());
        let s0 = SMatrix::<f64, M, M>::from_fn(|_, _| rng.symmetric());
        let mut f = Ldlt::<f64, N>::ZERO;
        *f.matrix_mut() = m;
        let mut y = jt;
        f.factor_in_place_with_rows(&mut y).expect("nonsingular");
        let mut s = s0;
        f.sub_quadratic_rows(&y, &mut s);
        let dm = nalgebra::DMatrix::from_column_slice(N, N, m.as_slice());
        let inv = dm.clone().lu().try_inverse().expect("nonsingular");
        let j = nalgebra::DMatrix::from_column_slice(M, N, jt.as_slice());
        let want =
            nalgebra::DMatrix::from_column_slice(M, M, s0.as_slice()) - &j * &inv * j.transpose();
        let scale = 1.0 + (j.norm() * j.norm()) * inv.norm();
        for c in 0..M {
            for r in c..M {
                let e = (s[(r, c)] - want[(r, c)]).abs();
                assert!(
                    e < 1e-14 * scale * N as f64,
                    "N {N} M {M} ({r}, {c}): {e:e}"
                );
            }
        }
    }

    #[test]
    fn sub_quadratic_rows_is_the_schur_complement() {
        for seed in 0..20 {
            check_quadratic_rows::<7, 5>(seed);
            check_quadratic_rows::<8, 8>(seed);
            check_quadratic_rows::<26, 25>(seed);
            check_quadratic_rows::<30, 37>(seed);
            check_quadratic_rows::<64, 64>(seed);
            check_quadratic_rows::<33, 30>(seed);
            check_quadratic_rows::<40, 27>(seed);
        }
    }

    #[test]
    fn non_finite_entries_of_the_lower_triangle_are_reported_and_the_upper_is_not_read() {
        let mut rng = SplitMix64::new(4);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for (i, j) in [(0, 0), (5, 2), (7, 7), (7, 0)] {
                let mut m = random_sym::<8>(&mut rng, 0.3);
                let mut f = Ldlt::<f64, 8>::ZERO;
                m[(i, j)] = bad;
                assert_eq!(f.factor(&m), Err(SingularPivot), "{bad} at ({i}, {j})");
                // the same value above the diagonal only: ignored
                let mut m = random_sym::<8>(&mut rng, 0.3);
                let reference = m;
                if i != j {
                    m[(j, i)] = bad;
                    let mut fresh = Ldlt::<f64, 8>::ZERO;
                    assert_eq!(f.factor(&m), fresh.factor(&reference));
                }
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

    /// Checks a delayed factorisation of a random `n x n` block (some pivots made weak and
    /// strongly coupled) against dense f64 formulas for the Schur complement, the carried
    /// coupling, the state update, the solve and the inertia.
    fn check_delayed<const N: usize, const M: usize>(seed: u64, n: usize, tau: f64) -> usize {
        use nalgebra::DMatrix;
        let mut rng = SplitMix64::new(seed);
        let mut q = DMatrix::<f64>::zeros(n, n);
        for i in 0..n {
            for j in 0..=i {
                let v = rng.symmetric();
                q[(i, j)] = v;
                q[(j, i)] = v;
            }
        }
        let mut nt = DMatrix::<f64>::from_fn(M, n, |_, _| 0.1 * rng.symmetric());
        // weak, strongly coupled variables: a small row/column, a large coupling
        for c in 0..n {
            if rng.next_f64() < 0.3 {
                for j in 0..n {
                    q[(c, j)] *= 1e-4;
                    q[(j, c)] = q[(c, j)];
                }
                for r in 0..M {
                    nt[(r, c)] = rng.symmetric();
                }
            }
        }
        let mut f = DelayedLdlt::<f64, N>::ZERO;
        let mut jt = SMatrix::<f64, M, N>::zeros();
        for i in 0..n {
            for j in 0..=i {
                f.matrix_mut()[(i, j)] = q[(i, j)];
            }
            for r in 0..M {
                jt[(r, i)] = nt[(r, i)];
            }
        }
        let inertia = f.factor(n, &mut jt, tau, n).expect("factor");
        let ne = f.eliminated();
        let e: Vec<usize> = (0..ne).map(|i| f.variable(i)).collect();
        let d: Vec<usize> = (ne..n).map(|i| f.variable(i)).collect();
        let sub = |rows: &[usize], cols: &[usize]| {
            DMatrix::from_fn(rows.len(), cols.len(), |i, j| q[(rows[i], cols[j])])
        };
        let nsub = |cols: &[usize]| DMatrix::from_fn(M, cols.len(), |r, j| nt[(r, cols[j])]);
        let qee_inv = sub(&e, &e).try_inverse().unwrap_or(DMatrix::zeros(ne, ne));
        let scale = 1.0 + q.norm() * (1.0 + qee_inv.norm()).powi(2);
        let tol = 1e-12 * scale;
        // Schur complement and carried coupling
        let sc = sub(&d, &d) - sub(&d, &e) * &qee_inv * sub(&e, &d);
        for i in 0..d.len() {
            for j in 0..d.len() {
                assert!((f.schur(i, j) - sc[(i, j)]).abs() < tol, "seed {seed}: Sc");
            }
        }
        let gamma = nsub(&d) - nsub(&e) * &qee_inv * sub(&e, &d);
        for r in 0..M {
            for j in 0..d.len() {
                assert!(
                    (jt[(r, ne + j)] - gamma[(r, j)]).abs() < tol,
                    "seed {seed}: Gamma"
                );
            }
        }
        // state update
        let mut s = SMatrix::<f64, M, M>::identity();
        f.sub_quadratic_rows(&jt, &mut s);
        let want = DMatrix::<f64>::identity(M, M) - nsub(&e) * &qee_inv * nsub(&e).transpose();
        for r in 0..M {
            for c in 0..M {
                assert!(
                    (s[(r, c)] - want[(r, c)]).abs() < tol,
                    "seed {seed}: S update"
                );
            }
        }
        // solve: forward, D1, the delayed block densely, backward
        let b: Vec<f64> = (0..n).map(|_| rng.symmetric()).collect();
        let mut w = [0.0; N];
        w[..n].copy_from_slice(&b);
        f.forward(&mut w);
        f.d_solve(&mut w);
        let scm = DMatrix::from_fn(d.len(), d.len(), |i, j| f.schur(i, j));
        if !d.is_empty() {
            let rhs = DMatrix::from_fn(d.len(), 1, |i, _| w[ne + i]);
            let ud = scm.clone().lu().solve(&rhs).expect("Sc nonsingular");
            for i in 0..d.len() {
                w[ne + i] = ud[i];
            }
        }
        f.backward(&mut w);
        let x = q
            .clone()
            .lu()
            .solve(&DMatrix::from_column_slice(n, 1, &b))
            .unwrap();
        let err = (0..n).map(|i| (w[i] - x[i]).powi(2)).sum::<f64>().sqrt() / x.norm();
        assert!(err < 1e-9, "seed {seed}: solve error {err:e}");
        // inertia: D1's plus Sc's is Q's
        let count = |m: &DMatrix<f64>| {
            if m.nrows() == 0 {
                return 0;
            }
            m.clone()
                .symmetric_eigen()
                .eigenvalues
                .iter()
                .filter(|&&l| l < 0.0)
                .count()
        };
        assert_eq!(
            inertia.negative + count(&scm),
            count(&q),
            "seed {seed}: inertia"
        );
        assert_eq!(inertia.negative + inertia.positive + inertia.zero, ne);
        TWO_BY_TWO.fetch_add(
            f.kind[..ne].iter().filter(|&&k| k == 2).count(),
            core::sync::atomic::Ordering::Relaxed,
        );
        n - ne
    }

    static TWO_BY_TWO: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn delayed_pivots_match_the_dense_schur_complement() {
        let mut delayed = 0;
        for seed in 0..200 {
            delayed += check_delayed::<12, 5>(seed, 12, 0.1);
            delayed += check_delayed::<16, 3>(seed, 9, 0.1);
            // several 4 x 4 blocks of the state update, with a partial one
            delayed += check_delayed::<24, 13>(seed, 20, 0.1);
            assert_eq!(
                check_delayed::<10, 4>(seed, 10, 0.0),
                0,
                "tau 0 delays nothing"
            );
        }
        assert!(delayed > 200, "the test needs delayed pivots ({delayed})");
        let two = TWO_BY_TWO.load(core::sync::atomic::Ordering::Relaxed);
        assert!(two > 100, "the test needs 2x2 pivots ({two})");
    }

    #[test]
    fn a_weak_strongly_coupled_pivot_is_delayed() {
        // Q = diag(1e-6, 1, 2), variable 0 coupled with strength 1 to the state.
        let mut f = DelayedLdlt::<f64, 3>::ZERO;
        *f.matrix_mut() =
            SMatrix::<f64, 3, 3>::from_diagonal(&nalgebra::Vector3::new(1e-6, 1.0, 2.0));
        let mut jt = SMatrix::<f64, 2, 3>::new(1.0, 0.1, 0.0, 0.0, 0.0, 0.1);
        f.factor(3, &mut jt, 0.01, 3).unwrap();
        assert_eq!(f.eliminated(), 2);
        assert_eq!(f.variable(2), 0);
        assert_eq!(f.schur(0, 0), 1e-6);
        // with no room to delay it is eliminated
        let mut g = DelayedLdlt::<f64, 3>::ZERO;
        *g.matrix_mut() =
            SMatrix::<f64, 3, 3>::from_diagonal(&nalgebra::Vector3::new(1e-6, 1.0, 2.0));
        let mut jt = SMatrix::<f64, 2, 3>::new(1.0, 0.1, 0.0, 0.0, 0.0, 0.1);
        g.factor(3, &mut jt, 0.01, 0).unwrap();
        assert_eq!(g.eliminated(), 3);
    }
}
