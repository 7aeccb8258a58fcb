//! The eps-dependent factor sweep of one stage (docs/math.md sections 3 and 4): build and factor
//! the stage matrix `Tm` on the range of the stage inputs, and pass the value Hessian `S` to
//! the stage before.

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::Layer;
use crate::linalg::kernels;
use crate::linalg::ldlt::{Inertia, SingularPivot};
use crate::real::Real;

use super::Stage;

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// Factor sweep for one stage at `eps`: builds and factors `Tm`, and writes the value
    /// Hessian at the stage input to `prev` (the previous stage's `S`; none for the first
    /// stage, whose input is data). Returns the inertia of the stage matrix `Rt` (`Tm` plus
    /// `eps` on the complement).
    pub(crate) fn factor_impl<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        eps: T,
        prev: Option<&mut SMatrix<T, BI, BI>>,
    ) -> Result<Inertia, SingularPivot> {
        const { Self::check_stage::<B, I1, R, BO, BI, RO>() };
        st.prefetch_next(true);
        let s1f = st.s1.as_slice();
        if B == 1 {
            // One sample (so R = 1, RO = O): Tm = r^2 (D S D + C) + eps I, one pass.
            let r2 = st.rz.as_slice()[0] * st.rz.as_slice()[0];
            let (sd, cf) = (st.s.as_slice(), st.c.as_slice());
            let md = st.tm.matrix_mut().as_mut_slice();
            // (The factorisation reads the lower triangle only: the right half of the columns
            // skips the top half of the rows, with fixed trip counts.)
            for (kp, mcol) in md.chunks_exact_mut(RO).enumerate() {
                let f = r2 * s1f[kp];
                let lo = if kp >= O / 2 { O / 2 } else { 0 };
                for ((x, sv), sk) in mcol[lo..]
                    .iter_mut()
                    .zip(&sd[kp * BO + lo..kp * BO + O])
                    .zip(&s1f[lo..])
                {
                    *x = f * *sk * *sv;
                }
                mcol[kp] += r2 * cf[kp] + eps;
            }
        } else {
            // T = (Rz kron I_O) D S   (RO x BO): block (j, m) = sum_n Rz[j, n] D_n S_nm.
            let mut tmat = SMatrix::<T, RO, BO>::zeros();
            {
                let sd = st.s.as_slice();
                let td = tmat.as_mut_slice();
                for col in 0..BO {
                    let scol = &sd[col * BO..col * BO + BO];
                    let tcol = &mut td[col * RO..col * RO + RO];
                    for j in 0..R {
                        let tj = &mut tcol[j * O..j * O + O];
                        for n in 0..B {
                            let r = st.rz[(j, n)];
                            if r == T::ZERO {
                                continue;
                            }
                            let sn = &scol[n * O..n * O + O];
                            let dn = &s1f[n * O..n * O + O];
                            for k in 0..O {
                                tj[k] += r * dn[k] * sn[k];
                            }
                        }
                    }
                }
            }
            // Tm = T D (Rz' kron I_O) + (Rz kron I) C (Rz' kron I) + eps I   (RO x RO, rank-major),
            // built in the factorisation's own storage.
            let tm = st.tm.matrix_mut();
            // (slice fill: nalgebra's element iterator is far slower for this)
            tm.as_mut_slice().fill(T::ZERO);
            {
                let td = tmat.as_slice();
                let md = tm.as_mut_slice();
                for jp in 0..R {
                    for kp in 0..O {
                        let col = jp * O + kp;
                        let mcol = &mut md[col * RO..col * RO + RO];
                        for m in 0..B {
                            let f = st.rz[(jp, m)] * st.s1[(kp, m)];
                            if f == T::ZERO {
                                continue;
                            }
                            let tcol = &td[(m * O + kp) * RO..(m * O + kp) * RO + RO];
                            for (x, t) in mcol.iter_mut().zip(tcol) {
                                *x += f * *t;
                            }
                        }
                    }
                }
            }
            for j in 0..R {
                for jp in 0..R {
                    for k in 0..O {
                        let mut acc = T::ZERO;
                        for n in 0..B {
                            acc += st.rz[(j, n)] * st.rz[(jp, n)] * st.c[(k, n)];
                        }
                        tm[(j * O + k, jp * O + k)] += acc;
                    }
                }
            }
            for q in 0..RO {
                tm[(q, q)] += eps;
            }
        }
        let complement = O * I1 - RO;
        // On the complement the stage matrix is exactly eps I, decoupled from Tm (an
        // orthogonal change of basis): its solve is a division, exact for any nonzero eps
        // whose reciprocal is finite. How small eps may be relative to the rest is a question
        // of the whole sweep's accuracy (see `solve_refined`), not of this pivot.
        if complement > 0 && (eps == T::ZERO || !(T::ONE / eps).finite()) {
            return Err(SingularPivot);
        }
        let complement_inertia = Inertia::of_scalar(eps, complement);
        let Some(sp) = prev else {
            return Ok(st.tm.factor_in_place()? + complement_inertia);
        };

        // With A_m = D_m W (+ I) (the stage's input Jacobian for sample m), everything below
        // is built from the transposed blocks
        //   G_mn = A_m' S_mn D_n + delta_mn W' C_n        (I x O, i.e. F_nm'):
        //   J'  = [G_mn] (Rz' kron I) + [Qz_z d_m']       (BI x RO, stored as `kt`),
        //   S_prev_mn = G_mn W (+ A_m' S_mn if residual) - (d_m . d_n) Pi / eps,
        // where Pi = I - Qz_z Qz_z' projects onto parameter directions orthogonal to every
        // input (docs/math.md section 4). Only the blocks m >= n (lower triangle) are built.
        let (s1f, cf, df) = (st.s1.as_slice(), st.c.as_slice(), st.d.as_slice());
        let inv_eps = if complement > 0 {
            T::ONE / eps
        } else {
            T::ZERO
        };
        let wt = kernels::transpose(&st.w);
        let (wd, wtd, sd, qzs) = (
            st.w.as_slice(),
            wt.as_slice(),
            st.s.as_slice(),
            st.qz.as_slice(),
        );
        // Pi as a matrix when Qz has several columns; with one column q it is applied as
        // I - q q' on the fly.
        let mut pi = SMatrix::<T, I, I>::zeros();
        if complement > 0 && R > 1 {
            for (ip, col) in pi.as_mut_slice().chunks_exact_mut(I).enumerate() {
                col[ip] = T::ONE;
                for q in qzs.chunks_exact(I1) {
                    kernels::axpy(col, -q[ip], &q[..I]);
                }
            }
        }
        let jd = st.kt.as_mut_slice();
        let spd = sp.as_mut_slice();
        for m in 0..B {
            for n in 0..B {
                // Column k of AS = A_m' S_mn = W' D_m S_mn (+ S_mn), then of G = AS D_n
                // (+ W' C_n), then its share of J', each from registers.
                let mut asm = SMatrix::<T, I, O>::zeros();
                let mut g = SMatrix::<T, I, O>::zeros();
                for k in 0..O {
                    let scol = &sd[(n * O + k) * BO + m * O..(n * O + k) * BO + m * O + O];
                    let mut acc = [T::ZERO; I];
                    if RES {
                        // I == O here.
                        for (x, v) in acc.iter_mut().zip(scol) {
                            *x = *v;
                        }
                    }
                    for (kp, (sv, sk)) in scol.iter().zip(&s1f[m * O..m * O + O]).enumerate() {
                        kernels::axpy(&mut acc, *sv * *sk, &wtd[kp * I..kp * I + I]);
                    }
                    if RES {
                        asm.as_mut_slice()[k * I..k * I + I].copy_from_slice(&acc);
                    }
                    let sk = s1f[n * O + k];
                    for x in acc.iter_mut() {
                        *x *= sk;
                    }
                    if n == m {
                        kernels::axpy(&mut acc, cf[n * O + k], &wtd[k * I..k * I + I]);
                    }
                    g.as_mut_slice()[k * I..k * I + I].copy_from_slice(&acc);
                    // J'[(m, .), (j, k)] = Qz_z[:, j] d[k, m] + sum_n Rz[j, n] G_mn[:, k]
                    for j in 0..R {
                        let r = st.rz[(j, n)];
                        let col = &mut jd[(j * O + k) * BI + m * I..(j * O + k) * BI + m * I + I];
                        if n == 0 {
                            let dk = df[m * O + k];
                            for ((x, qi), gi) in
                                col.iter_mut().zip(&qzs[j * I1..j * I1 + I]).zip(&acc)
                            {
                                *x = *qi * dk + r * *gi;
                            }
                        } else if r != T::ZERO {
                            kernels::axpy(col, r, &acc);
                        }
                    }
                }
                if m < n {
                    continue;
                }
                // S_prev block (m, n) = G W (+ AS) - (d_n . d_m) Pi / eps, column by column
                // straight into `sp`; diagonal blocks only on (a little more than) their
                // lower triangle, with fixed trip counts: rows h.. for the right half.
                let f = if complement > 0 {
                    kernels::dot(&df[n * O..n * O + O], &df[m * O..m * O + O]) * inv_eps
                } else {
                    T::ZERO
                };
                let gd = g.as_slice();
                // (a macro rather than a closure: `lo` must stay a literal for the loops to
                // unroll)
                macro_rules! column {
                    ($i:expr, $lo:expr) => {{
                        let (i, lo) = ($i, $lo);
                        let mut acc = [T::ZERO; I];
                        if RES {
                            acc[lo..].copy_from_slice(&asm.as_slice()[i * I + lo..i * I + I]);
                        }
                        if complement > 0 {
                            if R == 1 {
                                let q = &qzs[..I];
                                kernels::axpy(&mut acc[lo..], f * q[i], &q[lo..]);
                            } else {
                                kernels::axpy(
                                    &mut acc[lo..],
                                    -f,
                                    &pi.as_slice()[i * I + lo..i * I + I],
                                );
                            }
                        }
                        for (k, wk) in wd[i * O..i * O + O].iter().enumerate() {
                            kernels::axpy(&mut acc[lo..], *wk, &gd[k * I + lo..k * I + I]);
                        }
                        let off = (n * I + i) * BI + m * I;
                        spd[off + lo..off + I].copy_from_slice(&acc[lo..]);
                        if complement > 0 && R == 1 {
                            // the identity part of Pi (row i >= lo)
                            spd[off + i] -= f;
                        }
                    }};
                }
                for i in 0..I {
                    if m == n && i >= I / 2 {
                        column!(i, I / 2);
                    } else {
                        column!(i, 0);
                    }
                }
            }
        }
        let jt = &mut st.kt;
        // Factor Tm, turning J into Y = L^{-1} P J on the way (on the transpose); then
        // S_prev -= J' Tm^{-1} J = Y' D^{-1} Y. Y is kept for the solve's forward sweep.
        // Then the lower triangle is mirrored.
        let inertia = st.tm.factor_in_place_with_rows(jt)? + complement_inertia;
        st.tm.sub_quadratic_rows(jt, sp);
        let spd = sp.as_mut_slice();
        for col in 0..BI {
            for row in col + 1..BI {
                spd[row * BI + col] = spd[col * BI + row];
            }
        }
        Ok(inertia)
    }
}
