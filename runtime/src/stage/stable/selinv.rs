//! Log-determinant and diagonal of the inverse from the backward-stable factors
//! (docs/math.md section 8.8).
//!
//! The delayed-pivot sweep is a symmetric block `L D L'` of `A + eps I` whose pivots are
//! every stage's eliminated block `D1_l` (1x1 and 2x2 blocks): `log|det| = sum log|det D1_l|`
//! and the sign is `(-1)^negative` of the exact inertia.
//!
//! The diagonal of the inverse follows the solve's forward sweep. At stage `l` the sweep
//! computes the block's variables `w` (range, complement, and the variables carried into `l`
//! from `l + 1`) from the state it inherits, `s = [y; v]` (the stage input's sensitivity `y`
//! and the values `v` of the variables this stage delayed to `l - 1`), and from the stage's own
//! part of `D^{-1} L^{-1} b`, call it `e`:
//!
//! ```text
//! w = G s + H e,   H e = P' backward([e; 0]),   G s = P' backward([-D1^{-1} L11^{-1} (P N' y)_E; v]).
//! ```
//!
//! `A^{-1} = L'^{-1} D^{-1} L^{-1}` says: if the `e` of all stages were independent with
//! covariance `D1_l^{-1}`, the sweep's output would have covariance `A^{-1}`. So
//! `Cov(w) = G Cov(s) G' + H D1^{-1} H'` (`e` is independent of `s`, which depends only on
//! earlier stages), the stage's parameters are a fixed linear map of `w` (`Qz` and `Qc`), and
//! the next state `[y_next; v_next]` (`y_next = A y + B_r w`, `v_next` the carried-in part of
//! `w`) has a covariance computed from `Cov(s)`, `G Cov(s)` and `Cov(w)`. Nothing here divides
//! by a pivot the threshold test refused, which is what keeps it accurate where the plain
//! recursion's `Rt^{-1}` is large.

#![allow(clippy::needless_range_loop)] // index arithmetic over run-time stage sizes

use nalgebra::SMatrix;

use crate::chain::StageStack;
use crate::curvature::Curvature;
use crate::error::SolveError;
use crate::layer::zero_mat;
use crate::real::{all_finite, Real};
use crate::stage::selinv::LogDet;

use super::{a_at, pidx, StableFactors};

/// Scratch of [`StableFactors::diag_inv`] (sized like the factors: `M` state rows, `NQ`
/// block variables). Allocate once (`tall_skinny::boxed_zeroed`); its contents between calls
/// do not matter.
#[repr(C)]
pub struct StableSelinvScratch<T: Real, const M: usize, const NQ: usize> {
    /// `Cov(y)`, `Cov(y, v)`, `Cov(v)` of the state entering the stage.
    cyy: SMatrix<T, M, M>,
    cyv: SMatrix<T, M, NQ>,
    cvv: SMatrix<T, NQ, NQ>,
    /// `G`'s columns for `y` and for `v`.
    gy: SMatrix<T, NQ, M>,
    gv: SMatrix<T, NQ, NQ>,
    /// `G Cov(s)`: `Cov(w, y)` and `Cov(w, v)`.
    gcy: SMatrix<T, NQ, M>,
    gcv: SMatrix<T, NQ, NQ>,
    /// `H` and `H D1^{-1}`.
    h: SMatrix<T, NQ, NQ>,
    hd: SMatrix<T, NQ, NQ>,
    /// `Cov(w)`.
    cw: SMatrix<T, NQ, NQ>,
    /// The next state's covariance blocks, and `B_r Cov(w)` on the way.
    nyy: SMatrix<T, M, M>,
    nyv: SMatrix<T, M, NQ>,
    bcw: SMatrix<T, M, NQ>,
}

// SAFETY: matrices of `T: Pod` only: all-zero bytes are valid.
unsafe impl<T: Real, const M: usize, const NQ: usize> bytemuck::Zeroable
    for StableSelinvScratch<T, M, NQ>
{
}

impl<T: Real, const M: usize, const NQ: usize> StableSelinvScratch<T, M, NQ> {
    /// Zeroed scratch; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        cyy: zero_mat(),
        cyv: zero_mat(),
        cvv: zero_mat(),
        gy: zero_mat(),
        gv: zero_mat(),
        gcy: zero_mat(),
        gcv: zero_mat(),
        h: zero_mat(),
        hd: zero_mat(),
        cw: zero_mat(),
        nyy: zero_mat(),
        nyv: zero_mat(),
        bcw: zero_mat(),
    };

    /// Size of this scratch in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();
}

impl<T: Real, const W: usize, const M: usize, const NQ: usize, const L: usize>
    StableFactors<T, W, M, NQ, L>
{
    /// Checks that these factors belong to `curv` as it is now.
    fn check_current<S: StageStack<Scalar = T>, const N: usize>(
        &self,
        curv: &Curvature<S, N>,
    ) -> Result<(), SolveError> {
        if !self.factored || !curv.is_filled() || self.n_params != N || self.depth != S::DEPTH {
            return Err(SolveError::NoCurvature);
        }
        if curv.fingerprint() != Some(self.fingerprint) {
            return Err(SolveError::Stale);
        }
        Ok(())
    }

    /// `log|det(A + eps I)|` and its sign from the eliminated pivots of every stage (no extra
    /// sweep); the sign is `(-1)^inertia().negative`. Errors: [`SolveError::NoCurvature`] when
    /// not factored (or the last factorisation failed).
    pub fn log_det(&self) -> Result<LogDet<T>, SolveError> {
        if !self.factored {
            return Err(SolveError::NoCurvature);
        }
        let mut ld = LogDet::ONE;
        for st in &self.stages[..self.depth] {
            ld = ld.times(st.f.log_det_pivots());
        }
        Ok(ld)
    }

    /// The diagonal of `(A + eps I)^{-1}` into `d` (the flat parameter order), by one forward
    /// recursion over the stored factors (module docs; `O(n^2 (n + M))` per stage for a block
    /// of `n` variables). Errors: [`SolveError::NoCurvature`] when not factored,
    /// [`SolveError::Stale`] when `curv` was refilled since, [`SolveError::NonFiniteResult`].
    pub fn diag_inv<S: StageStack<Scalar = T>, const N: usize>(
        &self,
        curv: &Curvature<S, N>,
        scratch: &mut StableSelinvScratch<T, M, NQ>,
        d: &mut [T; N],
    ) -> Result<(), SolveError> {
        self.check_current(curv)?;
        let sc = scratch;
        let mut off = 0;
        // entries of the state entering stage l: sy = rows of y, sv = delayed values
        let (mut sy, mut sv) = (0usize, 0usize);
        for l in 0..self.depth {
            let p = Self::parts(curv, l);
            let (ni, no, nb, i1, nr) = (p.i, p.o, p.b, p.i1, p.r);
            let (ro, co) = (nr * no, (i1 - nr) * no);
            let st = &self.stages[l];
            let (n, ne) = (st.f.size(), st.f.eliminated());
            debug_assert_eq!(sv, n - ne);
            let qc = &st.qc;
            // G's columns: the forward sweep with e = 0 on a unit state entry
            for row in 0..sy {
                let mut w = [T::ZERO; NQ];
                for c in 0..n {
                    w[c] = -st.nt[(row, c)];
                }
                st.f.forward(&mut w);
                st.f.d_solve(&mut w);
                w[ne..n].fill(T::ZERO);
                st.f.backward(&mut w);
                sc.gy.column_mut(row).as_mut_slice()[..n].copy_from_slice(&w[..n]);
            }
            for a in 0..sv {
                let mut w = [T::ZERO; NQ];
                w[ne + a] = T::ONE;
                st.f.backward(&mut w);
                sc.gv.column_mut(a).as_mut_slice()[..n].copy_from_slice(&w[..n]);
            }
            // H and H D1^{-1}: unit entries of e (eliminated positions)
            for c in 0..ne {
                let mut w = [T::ZERO; NQ];
                w[c] = T::ONE;
                st.f.backward(&mut w);
                sc.h.column_mut(c).as_mut_slice()[..n].copy_from_slice(&w[..n]);
            }
            for c in 0..ne {
                // column c of D1^{-1}: its 1x1 or 2x2 block
                let mut u = [T::ZERO; NQ];
                u[c] = T::ONE;
                st.f.d_solve(&mut u);
                // D1^{-1} is block diagonal with blocks of size 1 or 2: column c has its
                // entries in rows c - 1 ..= c + 1 only
                let (lo, hi) = (c.saturating_sub(1), (c + 2).min(ne));
                for r in 0..n {
                    let mut acc = T::ZERO;
                    for cc in lo..hi {
                        acc += sc.h[(r, cc)] * u[cc];
                    }
                    sc.hd[(r, c)] = acc;
                }
            }
            // G Cov(s): Cov(w, y) = Gy Cyy + Gv Cyv', Cov(w, v) = Gy Cyv + Gv Cvv
            for c in 0..sy {
                for r in 0..n {
                    let mut acc = T::ZERO;
                    for k in 0..sy {
                        acc += sc.gy[(r, k)] * sc.cyy[(k, c)];
                    }
                    for a in 0..sv {
                        acc += sc.gv[(r, a)] * sc.cyv[(c, a)];
                    }
                    sc.gcy[(r, c)] = acc;
                }
            }
            for c in 0..sv {
                for r in 0..n {
                    let mut acc = T::ZERO;
                    for k in 0..sy {
                        acc += sc.gy[(r, k)] * sc.cyv[(k, c)];
                    }
                    for a in 0..sv {
                        acc += sc.gv[(r, a)] * sc.cvv[(a, c)];
                    }
                    sc.gcv[(r, c)] = acc;
                }
            }
            // Cov(w) = (G Cov(s)) G' + H D1^{-1} H' (lower triangle, then mirrored)
            for c in 0..n {
                for r in c..n {
                    let mut acc = T::ZERO;
                    for k in 0..sy {
                        acc += sc.gcy[(r, k)] * sc.gy[(c, k)];
                    }
                    for a in 0..sv {
                        acc += sc.gcv[(r, a)] * sc.gv[(c, a)];
                    }
                    for e in 0..ne {
                        acc += sc.hd[(r, e)] * sc.h[(c, e)];
                    }
                    sc.cw[(r, c)] = acc;
                    sc.cw[(c, r)] = acc;
                }
            }
            // the parameters: x(k, i) = sum_j w[j O + k] Qz[i, j] + sum_c w[ro + c O + k] Qc_c[i]
            let coef = |k: usize, i: usize, q: usize| -> T {
                // coefficient of w[q] in x(k, i) (q < ro + co)
                let (blk, kk) = (q / no, q % no);
                if kk != k {
                    T::ZERO
                } else if blk < nr {
                    p.qz[blk * i1 + i]
                } else {
                    qc[blk - nr][i]
                }
            };
            let xs = &mut d[off..];
            for k in 0..no {
                for i in 0..i1 {
                    let mut v = T::ZERO;
                    for b1 in 0..i1 {
                        let q1 = b1 * no + k;
                        let c1 = coef(k, i, q1);
                        if c1 == T::ZERO {
                            continue;
                        }
                        for b2 in 0..i1 {
                            let q2 = b2 * no + k;
                            v += c1 * coef(k, i, q2) * sc.cw[(q1, q2)];
                        }
                    }
                    xs[pidx(&p, k, i)] = v;
                }
            }
            off += no * i1;
            if l + 1 == self.depth {
                break;
            }
            // the next state: y' = A y + B_r w (BO rows), v' = w[ro + co..n]
            let bo = nb * no;
            let c_in = n - ro - co;
            // y'(nn, k) = s1 (sum_i W[k, i] y(nn, i) + sum_j Rz[j, nn] w[j O + k]) (+ y(nn, k))
            let ay = |r: usize, col: usize| -> T {
                // A[(nn, k), (nn', i)]
                let (nn, k) = (r / no, r % no);
                let (np, i) = (col / ni, col % ni);
                if nn != np || l == 0 {
                    return T::ZERO;
                }
                a_at(&p, nn, k, i)
            };
            let bw = |r: usize, q: usize| -> T {
                let (nn, k) = (r / no, r % no);
                if q >= ro || q % no != k {
                    return T::ZERO;
                }
                p.s1[nn * no + k] * p.rz[nn * nr + q / no]
            };
            // B_r Cov(w) (bo x n)
            for c in 0..n {
                for r in 0..bo {
                    let mut acc = T::ZERO;
                    for j in 0..nr {
                        acc += bw(r, j * no + r % no) * sc.cw[(j * no + r % no, c)];
                    }
                    sc.bcw[(r, c)] = acc;
                }
            }
            // Cov(y') = A Cyy A' + A Cov(y, w) B' + B Cov(w, y) A' + B Cov(w) B'
            for c in 0..bo {
                for r in c..bo {
                    let mut acc = T::ZERO;
                    for j in 0..nr {
                        acc += sc.bcw[(r, j * no + c % no)] * bw(c, j * no + c % no);
                    }
                    if sy > 0 {
                        // A Cov(y, w) B' + its transpose, and A Cyy A'
                        for k in 0..sy {
                            let (ark, ack) = (ay(r, k), ay(c, k));
                            if ark == T::ZERO && ack == T::ZERO {
                                continue;
                            }
                            let mut bwc = T::ZERO; // (Cov(w, y) ' B')[k, c] = sum_q gcy[q, k] B[c, q]
                            let mut bwr = T::ZERO;
                            for j in 0..nr {
                                bwc += sc.gcy[(j * no + c % no, k)] * bw(c, j * no + c % no);
                                bwr += sc.gcy[(j * no + r % no, k)] * bw(r, j * no + r % no);
                            }
                            acc += ark * bwc + ack * bwr;
                            if ark != T::ZERO {
                                let mut cyya = T::ZERO;
                                for kk in 0..sy {
                                    cyya += sc.cyy[(k, kk)] * ay(c, kk);
                                }
                                acc += ark * cyya;
                            }
                        }
                    }
                    sc.nyy[(r, c)] = acc;
                    sc.nyy[(c, r)] = acc;
                }
            }
            // Cov(y', v') = A Cov(y, w_c) + B Cov(w, w_c)
            for a in 0..c_in {
                let q = ro + co + a;
                for r in 0..bo {
                    let mut acc = sc.bcw[(r, q)];
                    for k in 0..sy {
                        let ark = ay(r, k);
                        if ark != T::ZERO {
                            acc += ark * sc.gcy[(q, k)];
                        }
                    }
                    sc.nyv[(r, a)] = acc;
                }
            }
            // Cov(v') = Cov(w)[c, c]
            for a in 0..c_in {
                for b in 0..c_in {
                    sc.cvv[(a, b)] = sc.cw[(ro + co + a, ro + co + b)];
                }
            }
            for c in 0..bo {
                for r in 0..bo {
                    sc.cyy[(r, c)] = sc.nyy[(r, c)];
                }
                for a in 0..c_in {
                    sc.cyv[(c, a)] = sc.nyv[(c, a)];
                }
            }
            sy = bo;
            sv = c_in;
        }
        if !all_finite(d) {
            return Err(SolveError::NonFiniteResult);
        }
        Ok(())
    }

    /// `trace((A + eps I)^{-1})`: the sum of [`Self::diag_inv`] (written to `d` on the way).
    pub fn trace_inv<S: StageStack<Scalar = T>, const N: usize>(
        &self,
        curv: &Curvature<S, N>,
        scratch: &mut StableSelinvScratch<T, M, NQ>,
        d: &mut [T; N],
    ) -> Result<T, SolveError> {
        self.diag_inv(curv, scratch, d)?;
        Ok(d.iter().fold(T::ZERO, |a, v| a + *v))
    }
}
