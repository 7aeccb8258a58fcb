//! The backward-stable sweep: the Riccati sweep with delayed pivots across stages
//! (docs/math.md section 7.4), on the stages' structured blocks.
//!
//! At stage `l` the block of controls is `u = [rho; gamma; zeta]`: the range coordinates
//! `rho` (`R O` of them, block `Tm`, section 4.2), the complement coordinates `gamma`
//! (`(I1 - R) O`, block `eps I`, coupled to the state only through the `d` term of `Hxz`),
//! and the variables `zeta` carried from stage `l + 1` (their Schur block `Lambda`, coupling
//! `Gamma` to this stage's output, linear term `t`). With `B_r` the stage's output Jacobian
//! on the range and `A` its input Jacobian,
//!
//! ```text
//! Q = [[Tm, 0, (Gamma B_r)'], [0, eps I, 0], [Gamma B_r, 0, Lambda]],
//! N = [J; N_c; Gamma A],   N_c[(c, k), (n, i)] = Qc[i, c] d[k, n],
//! ```
//!
//! and [`DelayedLdlt`] factors `Q` with the threshold test against `N` (a pivot whose
//! elimination would add more than `|N_j| / tau` to `S` is carried to stage `l - 1`); the
//! value Hessian passed back is `Hzz + A' S A - Y' D1^{-1} Y` (no `1 / eps` term: the
//! complement is never eliminated at its own stage unless it is decoupled). The first stage
//! eliminates everything, so the inertia is exact (Sylvester's law over the congruence of
//! the whole elimination). Per stage the factored block is `O I1 + r` with `r` the carried
//! set, at most the caller's capacity; the work is linear in depth.
//!
//! The storage [`StableFactors`] is sized at compile time by its caller: `W` at least every
//! stage's `I1`, `M` at least every stage's `B I` and `B O`, `NQ` at least every stage's
//! `O I1` (the capacity left, `NQ - O I1` of the stage before, bounds the carried set),
//! `L` at least the depth. It lives beside the [`Curvature`] it was factored from and
//! checks its fingerprint on every solve.

#![allow(clippy::needless_range_loop)] // index arithmetic over run-time stage sizes

use nalgebra::SMatrix;

use crate::chain::StageStack;
use crate::curvature::Curvature;
use crate::error::{ConfigError, SolveError};
use crate::layer::{check_vector, zero_mat};
use crate::linalg::kernels;
use crate::linalg::ldlt::{DelayedLdlt, Inertia};
use crate::real::{all_finite, Real};

use super::StageParts;

mod selinv;
pub use selinv::StableSelinvScratch;

/// One stage's part of [`StableFactors`].
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct StableStage<T: Real, const W: usize, const M: usize, const NQ: usize> {
    /// The complement basis `Qc` of the stage (columns `0..I1 - R`), fixed by the factor.
    qc: [[T; W]; W],
    /// The partial factorisation of the stage block.
    f: DelayedLdlt<T, NQ>,
    /// `[Y' | Gamma']` after the factorisation (`M x NQ`, rows = the stage input).
    jt: SMatrix<T, M, NQ>,
    /// The coupling `N'` before it (variable order), for the forward sweep.
    nt: SMatrix<T, M, NQ>,
    /// Per right-hand side: the linear term `q` (variable order).
    q: [T; NQ],
    /// Per right-hand side: `L^{-1} P q` (position order).
    z: [T; NQ],
}

/// Storage and handle of the backward-stable (delayed-pivot) factorisation of `A + eps I`
/// for a [`Curvature`] (the exact Hessian or the Riccati form of Gauss-Newton): see the
/// module docs for the sizes. Allocate it once (`tall_skinny::boxed_zeroed` or a `static`),
/// [`Self::factor`] it from a filled curvature at an eps, then [`Self::solve`] as often as
/// needed. No allocation; everything generated code would call is `no_std`.
#[repr(C)]
pub struct StableFactors<T: Real, const W: usize, const M: usize, const NQ: usize, const L: usize> {
    stages: [StableStage<T, W, M, NQ>; L],
    /// The value Hessian of the stage being factored.
    s: SMatrix<T, M, M>,
    /// The one passed to the stage before.
    sp: SMatrix<T, M, M>,
    depth: usize,
    n_params: usize,
    eps: T,
    inertia: Inertia,
    fingerprint: u64,
    factored: bool,
    max_carried: usize,
    max_s: T,
}

// SAFETY: matrices and arrays of `T: Pod`, `DelayedLdlt` (Zeroable), integers, a bool and an
// `Inertia` of integers: all-zero bytes are valid (the unfactored state).
unsafe impl<T: Real, const W: usize, const M: usize, const NQ: usize, const L: usize>
    bytemuck::Zeroable for StableFactors<T, W, M, NQ, L>
{
}

/// A size the storage is too small for.
fn too_small(field: &'static str, value: usize, requirement: &'static str) -> SolveError {
    SolveError::Config(ConfigError {
        field,
        value: value as f64,
        requirement,
    })
}

/// An orthonormal basis `Qc` of the complement of `Qz`'s columns in `R^{I1}` (columns
/// `0..I1 - R` of the result, each of length `I1`), by Gram-Schmidt (twice) on the unit
/// vectors that keep the most of their length.
fn complement_basis<T: Real, const W: usize>(p: &StageParts<'_, T>) -> [[T; W]; W] {
    let (i1, r) = (p.i1, p.r);
    let mut basis = [[T::ZERO; W]; W];
    // the columns found so far: Qz's, then Qc's
    let col = |basis: &[[T; W]; W], c: usize, i: usize| {
        if c < r {
            p.qz[c * i1 + i]
        } else {
            basis[c - r][i]
        }
    };
    for c in 0..i1 - r {
        let mut best = [T::ZERO; W];
        let mut best_norm = -T::ONE;
        for e in 0..i1 {
            let mut v = [T::ZERO; W];
            v[e] = T::ONE;
            for _ in 0..2 {
                for k in 0..r + c {
                    let mut dot = T::ZERO;
                    for i in 0..i1 {
                        dot += col(&basis, k, i) * v[i];
                    }
                    for (i, vi) in v.iter_mut().enumerate().take(i1) {
                        *vi -= dot * col(&basis, k, i);
                    }
                }
            }
            let nrm = v[..i1].iter().fold(T::ZERO, |a, x| a + *x * *x).sqrt();
            if nrm > best_norm {
                best_norm = nrm;
                best = v;
            }
        }
        for i in 0..i1 {
            basis[c][i] = best[i] / best_norm;
        }
    }
    basis
}

/// The parameter index of (unit `k`, input-with-bias `i`) in the flat layout (`W` row-major,
/// then the bias).
#[inline(always)]
fn pidx(p: &StageParts<'_, impl Real>, k: usize, i: usize) -> usize {
    if i < p.i {
        k * p.i + i
    } else {
        p.o * p.i + k
    }
}

/// `A_m[k, i]`: the input Jacobian of sample `m` (`D_m W (+ I)`).
#[inline(always)]
fn a_at<T: Real>(p: &StageParts<'_, T>, m: usize, k: usize, i: usize) -> T {
    let v = p.s1[m * p.o + k] * p.w[i * p.o + k];
    if p.residual && i == k {
        v + T::ONE
    } else {
        v
    }
}

impl<T: Real, const W: usize, const M: usize, const NQ: usize, const L: usize>
    StableFactors<T, W, M, NQ, L>
{
    const ZERO_STAGE: StableStage<T, W, M, NQ> = StableStage {
        qc: [[T::ZERO; W]; W],
        f: DelayedLdlt::ZERO,
        jt: zero_mat(),
        nt: zero_mat(),
        q: [T::ZERO; NQ],
        z: [T::ZERO; NQ],
    };

    /// Unfactored storage; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        stages: [Self::ZERO_STAGE; L],
        s: zero_mat(),
        sp: zero_mat(),
        depth: 0,
        n_params: 0,
        eps: T::ZERO,
        inertia: Inertia::ZERO,
        fingerprint: 0,
        factored: false,
        max_carried: 0,
        max_s: T::ZERO,
    };

    /// Size of this storage in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// The eps of the last successful [`Self::factor`].
    pub fn eps(&self) -> T {
        self.eps
    }

    /// The inertia of `A + eps I` (from the eliminated pivots; exact).
    pub fn inertia(&self) -> Inertia {
        self.inertia
    }

    /// Most variables carried into any stage by the last factorisation.
    pub fn max_carried(&self) -> usize {
        self.max_carried
    }

    /// Largest `|S|` entry over the stages' value Hessians (the loss Hessian excluded) in the
    /// last factorisation: of order one when the sweep is stable.
    pub fn max_value_hessian(&self) -> T {
        self.max_s
    }

    /// Stage `l`'s structured blocks.
    fn parts<S: StageStack<Scalar = T>, const N: usize>(
        curv: &Curvature<S, N>,
        l: usize,
    ) -> StageParts<'_, T> {
        curv.stages
            .stage(l)
            .expect("stage index below the depth")
            .parts()
    }

    /// Factors `A + eps I` from a filled curvature, pivots failing the threshold test
    /// `|pivot| >= tau |its coupling|` delayed to the stage before (`tau` in `[0, 1)`; 0 is the
    /// plain order; 0.01 to 0.1 is the useful range, docs/math.md section 7.4). Returns the
    /// inertia. Errors: [`SolveError::NoCurvature`], [`SolveError::NonFiniteEps`],
    /// [`SolveError::Config`] for a `tau` out of range or a storage too small for the net,
    /// [`SolveError::Singular`] when a pivot is numerically zero and cannot be delayed.
    pub fn factor<S: StageStack<Scalar = T>, const N: usize>(
        &mut self,
        curv: &Curvature<S, N>,
        eps: T,
        tau: T,
    ) -> Result<Inertia, SolveError> {
        self.factored = false;
        if !curv.is_filled() {
            return Err(SolveError::NoCurvature);
        }
        if !eps.finite() {
            return Err(SolveError::NonFiniteEps);
        }
        if !(tau >= T::ZERO && tau < T::ONE) {
            return Err(SolveError::Config(ConfigError {
                field: "tau",
                value: tau.to_f64(),
                requirement: "in [0, 1)",
            }));
        }
        let depth = S::DEPTH;
        if depth > L {
            return Err(too_small("L", L, "at least the number of stages"));
        }
        for l in 0..depth {
            let p = Self::parts(curv, l);
            if p.i1 > W {
                return Err(too_small("W", W, "at least every stage's inputs + bias"));
            }
            if p.b * p.i > M || p.b * p.o > M {
                return Err(too_small("M", M, "at least batch times every width"));
            }
            if p.o * p.i1 > NQ {
                return Err(too_small(
                    "NQ",
                    NQ,
                    "at least every stage's parameter count",
                ));
            }
        }
        // S of the last stage: the loss Hessian.
        {
            let p = Self::parts(curv, depth - 1);
            let bo = p.b * p.o;
            self.s.as_mut_slice().fill(T::ZERO);
            for c in 0..bo {
                for r in 0..bo {
                    self.s[(r, c)] = p.s[c * bo + r];
                }
            }
        }
        let mut inertia = Inertia::ZERO;
        let (mut max_carried, mut max_s) = (0, T::ZERO);
        let mut carried = 0; // variables carried into the stage being factored
        for l in (0..depth).rev() {
            let p = Self::parts(curv, l);
            let (ni, no, nb, i1, nr) = (p.i, p.o, p.b, p.i1, p.r);
            let (ro, co) = (nr * no, (i1 - nr) * no);
            let n = ro + co + carried;
            max_carried = max_carried.max(carried);
            let (lo, hi) = self.stages.split_at_mut(l + 1);
            let st = &mut lo[l];
            st.qc = complement_basis::<T, W>(&p);
            let qc = &st.qc;
            let next = hi.first();
            let next_ne = next.map_or(0, |x| x.f.eliminated());
            // Gamma[a, row]: carried variable a's coupling to this stage's output
            let gamma = |a: usize, row: usize| next.map_or(T::ZERO, |x| x.jt[(row, next_ne + a)]);
            let s = &self.s;

            // T1' = ((Rz kron I) D S)' (BO x RO), kept in `nt` until the coupling is built:
            // column (j, k) gains Rz[j, m] D_m[k] times column (m, k) of the symmetric S.
            st.nt.as_mut_slice().fill(T::ZERO);
            {
                let (sd, ntd) = (s.as_slice(), st.nt.as_mut_slice());
                let bo = nb * no;
                for j in 0..nr {
                    for k in 0..no {
                        let ncol = &mut ntd[(j * no + k) * M..(j * no + k) * M + bo];
                        for m in 0..nb {
                            let f = p.rz[m * nr + j] * p.s1[m * no + k];
                            if f == T::ZERO {
                                continue;
                            }
                            kernels::axpy(ncol, f, &sd[(m * no + k) * M..(m * no + k) * M + bo]);
                        }
                    }
                }
            }
            // Q (lower triangle)
            {
                let a = st.f.matrix_mut();
                {
                    let ad = a.as_mut_slice();
                    for c in 0..n {
                        ad[c * NQ + c..c * NQ + n].fill(T::ZERO);
                    }
                }
                // Tm = T1 D (Rz' kron I) + (Rz kron I) C (Rz' kron I) + eps I
                for jp in 0..nr {
                    for kp in 0..no {
                        let colq = jp * no + kp;
                        for nn in 0..nb {
                            let f = p.s1[nn * no + kp] * p.rz[nn * nr + jp];
                            if f == T::ZERO {
                                continue;
                            }
                            for row in colq..ro {
                                a[(row, colq)] += f * st.nt[(nn * no + kp, row)];
                            }
                        }
                    }
                }
                for j in 0..nr {
                    for jp in 0..=j {
                        for k in 0..no {
                            let mut acc = T::ZERO;
                            for nn in 0..nb {
                                acc += p.rz[nn * nr + j] * p.rz[nn * nr + jp] * p.c[nn * no + k];
                            }
                            a[(j * no + k, jp * no + k)] += acc;
                        }
                    }
                }
                for q in 0..ro + co {
                    a[(q, q)] += eps;
                }
                // carried: Lambda, and Gamma B_r against the range
                if let Some(x) = next {
                    for bb in 0..carried {
                        for aa in bb..carried {
                            a[(ro + co + aa, ro + co + bb)] = x.f.schur(aa, bb);
                        }
                    }
                    for aa in 0..carried {
                        for j in 0..nr {
                            for k in 0..no {
                                let mut acc = T::ZERO;
                                for nn in 0..nb {
                                    acc += gamma(aa, nn * no + k)
                                        * p.s1[nn * no + k]
                                        * p.rz[nn * nr + j];
                                }
                                a[(ro + co + aa, j * no + k)] = acc;
                            }
                        }
                    }
                }
            }
            st.nt.as_mut_slice().fill(T::ZERO);
            self.sp.as_mut_slice().fill(T::ZERO);
            if l > 0 {
                // Omega_mn = A_m' S_mn D_n + delta_mn W' C_n and AS = A_m' S_mn (I x O):
                // the range coupling J' and the base of the next S. Column k of AS is
                // W' (D_m S_mn[:, k]) (+ S_mn[:, k] if residual): a dot product with each
                // column of W; then J' and S_prev gain multiples of Omega's column k, each
                // a contiguous run of rows (m, 0..I).
                let (sd, ntd, spd) = (s.as_slice(), st.nt.as_mut_slice(), self.sp.as_mut_slice());
                for m in 0..nb {
                    for nn in 0..nb {
                        for k in 0..no {
                            let col = (nn * no + k) * M + m * no;
                            let scol = &sd[col..col + no];
                            let mut ds = [T::ZERO; M];
                            for ((x, sv), s1v) in ds[..no]
                                .iter_mut()
                                .zip(scol)
                                .zip(&p.s1[m * no..m * no + no])
                            {
                                *x = *s1v * *sv;
                            }
                            let (mut asv, mut om) = ([T::ZERO; W], [T::ZERO; W]);
                            for i in 0..ni {
                                let mut as_ik = T::ZERO;
                                for (wv, dv) in p.w[i * no..i * no + no].iter().zip(&ds[..no]) {
                                    as_ik += *wv * *dv;
                                }
                                if p.residual {
                                    as_ik += scol[i]; // (I == O)
                                }
                                asv[i] = as_ik;
                                om[i] = as_ik * p.s1[nn * no + k];
                                if m == nn {
                                    om[i] += p.w[i * no + k] * p.c[nn * no + k];
                                }
                            }
                            // J'[(m, i), (j, k)] += Rz[j, n] Omega_mn[i, k]
                            for j in 0..nr {
                                let r = p.rz[nn * nr + j];
                                let c0 = (j * no + k) * M + m * ni;
                                kernels::axpy(&mut ntd[c0..c0 + ni], r, &om[..ni]);
                            }
                            // S_prev[(m, i), (n, i')] += Omega[i, k] W[k, i'] (+ AS)
                            for ip in 0..ni {
                                let wv = p.w[ip * no + k];
                                let c0 = (nn * ni + ip) * M + m * ni;
                                kernels::axpy(&mut spd[c0..c0 + ni], wv, &om[..ni]);
                            }
                            if p.residual {
                                let c0 = (nn * ni + k) * M + m * ni;
                                kernels::axpy(&mut spd[c0..c0 + ni], T::ONE, &asv[..ni]);
                            }
                        }
                    }
                }
                for m in 0..nb {
                    for i in 0..ni {
                        let row = m * ni + i;
                        for k in 0..no {
                            let dk = p.d[m * no + k];
                            for j in 0..nr {
                                st.nt[(row, j * no + k)] += p.qz[j * i1 + i] * dk;
                            }
                            for c in 0..i1 - nr {
                                st.nt[(row, ro + c * no + k)] = qc[c][i] * dk;
                            }
                        }
                        for aa in 0..carried {
                            let mut acc = T::ZERO;
                            for k in 0..no {
                                acc += gamma(aa, m * no + k) * a_at(&p, m, k, i);
                            }
                            st.nt[(row, ro + co + aa)] = acc;
                        }
                    }
                }
            }
            st.jt = st.nt;
            let (tau_l, cap) = if l == 0 {
                (T::ZERO, 0)
            } else {
                let prev = Self::parts(curv, l - 1);
                (tau, NQ - prev.o * prev.i1)
            };
            let mine =
                st.f.factor(n, &mut st.jt, tau_l, cap)
                    .map_err(|_| SolveError::Singular { stage: l })?;
            inertia += mine;
            if l > 0 {
                st.f.sub_quadratic_rows(&st.jt, &mut self.sp);
                let bi = nb * ni;
                for c in 0..bi {
                    for r in c + 1..bi {
                        let v = (self.sp[(r, c)] + self.sp[(c, r)]) * T::c(0.5);
                        self.sp[(r, c)] = v;
                        self.sp[(c, r)] = v;
                    }
                }
                core::mem::swap(&mut self.s, &mut self.sp);
                max_s = max_s.max(self.s.amax());
                if !max_s.finite() {
                    return Err(SolveError::Singular { stage: l });
                }
            }
            carried = n - st.f.eliminated();
        }
        self.depth = depth;
        self.n_params = N;
        self.eps = eps;
        self.inertia = inertia;
        self.fingerprint = curv.fingerprint().unwrap_or(0);
        self.factored = true;
        self.max_carried = max_carried;
        self.max_s = max_s;
        Ok(inertia)
    }

    /// Solves `(A + eps I) x = b` with the factors of the last [`Self::factor`] on `curv`
    /// (two sweeps, linear in depth). Errors: [`SolveError::NoCurvature`] when not factored
    /// (or the last factorisation failed), [`SolveError::Stale`] when `curv` was refilled
    /// since, [`SolveError::Net`] for a non-finite `b`, [`SolveError::NonFiniteResult`].
    pub fn solve<S: StageStack<Scalar = T>, const N: usize>(
        &mut self,
        curv: &Curvature<S, N>,
        b: &[T; N],
        x: &mut [T; N],
    ) -> Result<(), SolveError> {
        if !self.factored || !curv.is_filled() || self.n_params != N || self.depth != S::DEPTH {
            return Err(SolveError::NoCurvature);
        }
        if curv.fingerprint() != Some(self.fingerprint) {
            return Err(SolveError::Stale);
        }
        check_vector(b)?;
        let depth = self.depth;
        let mut offsets = [0usize; L];
        {
            let mut o = 0;
            for (l, off) in offsets.iter_mut().enumerate().take(depth) {
                *off = o;
                let p = Self::parts(curv, l);
                o += p.o * p.i + if p.i1 > p.i { p.o } else { 0 };
            }
        }
        // backward: the linear terms
        let mut lin = [T::ZERO; M];
        let mut carried = 0;
        for l in (0..depth).rev() {
            let p = Self::parts(curv, l);
            let (ni, no, nb, i1, nr) = (p.i, p.o, p.b, p.i1, p.r);
            let (ro, co) = (nr * no, (i1 - nr) * no);
            let n = ro + co + carried;
            let (lo, hi) = self.stages.split_at_mut(l + 1);
            let st = &mut lo[l];
            let qc = st.qc;
            let next = hi.first();
            let g = &b[offsets[l]..];
            let gu = |k: usize, i: usize| g[pidx(&p, k, i)];
            for j in 0..nr {
                for k in 0..no {
                    let mut acc = T::ZERO;
                    for nn in 0..nb {
                        acc += lin[nn * no + k] * p.s1[nn * no + k] * p.rz[nn * nr + j];
                    }
                    for i in 0..i1 {
                        acc -= gu(k, i) * p.qz[j * i1 + i];
                    }
                    st.q[j * no + k] = acc;
                }
            }
            for c in 0..i1 - nr {
                for k in 0..no {
                    let mut acc = T::ZERO;
                    for i in 0..i1 {
                        acc -= gu(k, i) * qc[c][i];
                    }
                    st.q[ro + c * no + k] = acc;
                }
            }
            if let Some(x) = next {
                let ne = x.f.eliminated();
                st.q[ro + co..n].copy_from_slice(&x.z[ne..ne + carried]);
            }
            st.z = st.q;
            st.f.forward(&mut st.z);
            if l > 0 {
                let mut zd = st.z;
                st.f.d_solve(&mut zd);
                let ne = st.f.eliminated();
                let mut new = [T::ZERO; M];
                for m in 0..nb {
                    for i in 0..ni {
                        let mut acc = T::ZERO;
                        for k in 0..no {
                            acc += a_at(&p, m, k, i) * lin[m * no + k];
                        }
                        let row = m * ni + i;
                        for (c, zc) in zd.iter().enumerate().take(ne) {
                            acc -= st.jt[(row, c)] * *zc;
                        }
                        new[row] = acc;
                    }
                }
                lin = new;
            }
            carried = n - st.f.eliminated();
        }
        // forward: each stage's stationarity, its carried values from the stage before
        let mut y = [T::ZERO; M];
        let mut values = [T::ZERO; NQ];
        for l in 0..depth {
            let p = Self::parts(curv, l);
            let (ni, no, nb, i1, nr) = (p.i, p.o, p.b, p.i1, p.r);
            let (ro, co) = (nr * no, (i1 - nr) * no);
            let st = &self.stages[l];
            let (n, ne) = (st.f.size(), st.f.eliminated());
            let qc = &st.qc;
            let bi = nb * ni;
            let mut w = [T::ZERO; NQ];
            for c in 0..n {
                let mut acc = st.q[c];
                if l > 0 {
                    for (row, yr) in y.iter().enumerate().take(bi) {
                        acc += st.nt[(row, c)] * *yr;
                    }
                }
                w[c] = -acc;
            }
            st.f.forward(&mut w);
            st.f.d_solve(&mut w);
            w[ne..n].copy_from_slice(&values[..n - ne]);
            st.f.backward(&mut w);
            let xs = &mut x[offsets[l]..];
            for k in 0..no {
                for i in 0..i1 {
                    let mut v = T::ZERO;
                    for j in 0..nr {
                        v += w[j * no + k] * p.qz[j * i1 + i];
                    }
                    for (c, qcc) in qc.iter().enumerate().take(i1 - nr) {
                        v += w[ro + c * no + k] * qcc[i];
                    }
                    xs[pidx(&p, k, i)] = v;
                }
            }
            let mut ynew = [T::ZERO; M];
            for nn in 0..nb {
                for k in 0..no {
                    let mut u = T::ZERO;
                    if l > 0 {
                        for i in 0..ni {
                            u += p.w[i * no + k] * y[nn * ni + i];
                        }
                    }
                    for j in 0..nr {
                        u += w[j * no + k] * p.rz[nn * nr + j];
                    }
                    let mut v = p.s1[nn * no + k] * u;
                    if p.residual && l > 0 {
                        v += y[nn * ni + k];
                    }
                    ynew[nn * no + k] = v;
                }
            }
            y = ynew;
            let r_out = n - ro - co;
            values[..r_out].copy_from_slice(&w[ro + co..n]);
        }
        if !all_finite(x) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }
}
