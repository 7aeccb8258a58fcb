//! Log-determinant and selected inversion from a factored stage (docs/math.md section 8).
//!
//! The Riccati sweep is a block `L D L'` of `H + eps I` whose pivots are the stage matrices
//! `Rt_l`, so `log|det(H + eps I)| = sum_l log|det Rt_l|` with
//! `det Rt_l = eps^(p - RO) det Tm_l`, read from the stored Bunch-Kaufman pivots.
//!
//! The diagonal blocks of `(H + eps I)^{-1}` come from one forward recursion over the
//! stored factors: in the sweep's variables `x_l = -K_l y_{l-1} + e_l` with the `e_l`
//! "independent with covariance" `Rt_l^{-1}` (the `L D L'` statement),
//!
//! ```text
//! Sigma_l = Rt_l^{-1} + K_l P_{l-1} K_l'                 (the l-th diagonal block)
//! P_l     = F_l P_{l-1} F_l' + B_l Rt_l^{-1} B_l',  F_l = A_l - B_l K_l,   P_0 = 0.
//! ```
//!
//! In the crate's structured factors (docs/math.md section 4):
//! `Rt^{-1} = (Qz kron I) Tm^{-1} (Qz kron I)' + (Pi_c kron I) / eps`,
//! `K = (Qz kron I) X + (Pi_c kron I) N_d / eps` with `X = Tm^{-1} J = P' L'^{-1} D^{-1} Y`
//! (`Y' = kt`, stored), `N_d[(i, k), (n, i')] = d[k, n] delta(i, i')`, and, because
//! `Zt' Pi_c = 0`, `B K = D (Rz' kron I) X` and `B Rt^{-1} B' = D (Rz' kron I) Tm^{-1}
//! (Rz kron I) D`. Nothing of size `p x p` is formed for the diagonal.

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::Layer;
use crate::real::Real;

use super::Stage;

/// `log|det|` of a symmetric matrix and its sign.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogDet<T> {
    /// `log|det A|` (natural logarithm); `-inf` for a singular matrix.
    pub log_abs: T,
    /// `+1` or `-1`: the sign of `det A` (`(-1)^negative eigenvalues`).
    pub sign: i8,
}

impl<T: Real> LogDet<T> {
    /// The determinant 1 (log 0, sign +).
    pub const ONE: Self = LogDet {
        log_abs: T::ZERO,
        sign: 1,
    };

    /// `log|det|` of the product.
    pub fn times(self, o: Self) -> Self {
        LogDet {
            log_abs: self.log_abs + o.log_abs,
            sign: self.sign * o.sign,
        }
    }

    /// `count` eigenvalues all equal to `value`.
    pub fn of_scalar(value: T, count: usize) -> Self {
        if count == 0 {
            return Self::ONE;
        }
        LogDet {
            log_abs: value.abs().ln() * T::c(count as f64),
            sign: if value < T::ZERO && count % 2 == 1 {
                -1
            } else {
                1
            },
        }
    }
}

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// `log|det Rt|` and its sign for the factored stage at `eps` (`Tm`'s pivots and `eps`
    /// on the complement).
    pub(crate) fn log_det_stage<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        eps: T,
    ) -> LogDet<T> {
        let (l, neg) = st.tm.log_abs_det();
        LogDet {
            log_abs: l,
            sign: if neg { -1 } else { 1 },
        }
        .times(LogDet::of_scalar(eps, O * I1 - RO))
    }

    /// The flat index of unit `k`, input-with-bias `i` in this stage's parameter block.
    #[inline(always)]
    fn fidx(k: usize, i: usize) -> usize {
        if i < I {
            k * I + i
        } else {
            O * I + k
        }
    }

    /// Selected inversion, one stage of the forward recursion: from `P_{l-1}` (`p_in`, none
    /// for the first stage) writes the diagonal of `Sigma_l` to `diag` (this stage's
    /// parameter block) and, when `block` is given, the whole `p x p` block `Sigma_l`
    /// (column-major, the stage's flat parameter order); returns `P_l`.
    #[allow(clippy::needless_range_loop)] // index arithmetic over the stage's blocks
    pub(crate) fn selinv_stage<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        p_in: Option<&SMatrix<T, BI, BI>>,
        eps: T,
        diag: &mut [T],
        block: Option<&mut [T]>,
    ) -> SMatrix<T, BO, BO> {
        debug_assert_eq!(diag.len(), Self::N_PARAMS);
        let complement = O * I1 > RO;
        let inv_eps = if complement { T::ONE / eps } else { T::ZERO };
        // Tm^{-1} (RO x RO), symmetrised.
        let mut winv = SMatrix::<T, RO, RO>::identity();
        for col in winv.as_mut_slice().chunks_exact_mut(RO) {
            st.tm.solve_in_place(col);
        }
        let half = T::c(0.5);
        let winv = (winv + winv.transpose()) * half;
        // Pi_c = I - Qz Qz' (I1 x I1): the complement of the inputs' span.
        let pic = if complement {
            SMatrix::<T, I1, I1>::identity() - st.qz * st.qz.transpose()
        } else {
            SMatrix::<T, I1, I1>::zeros()
        };
        // X = Tm^{-1} J (RO x BI) from Y' = kt (the first stage has no state: P_0 = 0).
        let x = p_in.map(|_| {
            let mut x = st.kt.transpose();
            for col in x.as_mut_slice().chunks_exact_mut(RO) {
                st.tm.d_solve_in_place(col);
                st.tm.backward_in_place(col);
            }
            x
        });
        // Rows (i, k) of K for one unit k, i = 0..I1 (I1 x BI).
        let k_unit = |x: &SMatrix<T, RO, BI>, k: usize| {
            let mut xk = SMatrix::<T, R, BI>::zeros();
            for j in 0..R {
                for b in 0..BI {
                    xk[(j, b)] = x[(j * O + k, b)];
                }
            }
            let mut kk = st.qz * xk;
            if complement {
                for n in 0..B {
                    let f = st.d[(k, n)] * inv_eps;
                    for iz in 0..I {
                        for i in 0..I1 {
                            kk[(i, n * I + iz)] += f * pic[(i, iz)];
                        }
                    }
                }
            }
            kk
        };
        // Tm^{-1}'s (k, k') block in rank coordinates (R x R).
        let wblock = |k: usize, kp: usize| {
            SMatrix::<T, R, R>::from_fn(|j, jp| winv[(j * O + k, jp * O + kp)])
        };
        // diag(K_k P K_k') for unit k, with K_k = Qz Xk + C_k, C_k[i, (n, iz)] = f_kn Pi_c[i, iz]
        // (f_kn = d[k, n] / eps): the three terms of (Qz Xk + C_k) P (Qz Xk + C_k)', each in
        // its small form. The complement's term needs `cpc[n][n'][i] = (Pi_c P_nn' Pi_c')_ii`
        // once per stage (P_nn' the I x I block of samples n, n').
        let mut cpc = [[[T::ZERO; I1]; B]; B];
        if let (true, Some(p)) = (complement, p_in) {
            for n in 0..B {
                for np in 0..B {
                    for i in 0..I1 {
                        let mut acc = T::ZERO;
                        for iz in 0..I {
                            let mut row = T::ZERO; // (Pi_c P_nn')[i, iz]
                            for izp in 0..I {
                                row += pic[(i, izp)] * p[(n * I + izp, np * I + iz)];
                            }
                            acc += row * pic[(i, iz)];
                        }
                        cpc[n][np][i] = acc;
                    }
                }
            }
        }
        for k in 0..O {
            let qwq = st.qz * wblock(k, k) * st.qz.transpose();
            let mut kpk = [T::ZERO; I1];
            if let (Some(p), Some(x)) = (p_in, &x) {
                let mut xk = SMatrix::<T, R, BI>::zeros();
                for j in 0..R {
                    for b in 0..BI {
                        xk[(j, b)] = x[(j * O + k, b)];
                    }
                }
                let t = xk * p; // R x BI
                let aa = t * xk.transpose(); // R x R
                for i in 0..I1 {
                    let mut a = T::ZERO;
                    for j in 0..R {
                        for jp in 0..R {
                            a += st.qz[(i, j)] * aa[(j, jp)] * st.qz[(i, jp)];
                        }
                    }
                    kpk[i] = a;
                }
                if complement {
                    // v[j, iz] = sum_n' f_kn' T[j, (n', iz)]
                    let mut v = SMatrix::<T, R, I>::zeros();
                    for np in 0..B {
                        let f = st.d[(k, np)] * inv_eps;
                        for iz in 0..I {
                            for j in 0..R {
                                v[(j, iz)] += f * t[(j, np * I + iz)];
                            }
                        }
                    }
                    for i in 0..I1 {
                        let mut cross = T::ZERO;
                        for j in 0..R {
                            let mut vp = T::ZERO;
                            for iz in 0..I {
                                vp += v[(j, iz)] * pic[(i, iz)];
                            }
                            cross += st.qz[(i, j)] * vp;
                        }
                        let mut c = T::ZERO;
                        for n in 0..B {
                            let fn_ = st.d[(k, n)] * inv_eps;
                            for np in 0..B {
                                c += fn_ * st.d[(k, np)] * inv_eps * cpc[n][np][i];
                            }
                        }
                        kpk[i] += cross + cross + c;
                    }
                }
            }
            for i in 0..I1 {
                diag[Self::fidx(k, i)] = qwq[(i, i)] + pic[(i, i)] * inv_eps + kpk[i];
            }
        }
        if let Some(out) = block {
            let p = Self::N_PARAMS;
            debug_assert!(out.len() >= p * p);
            for k in 0..O {
                let kk = x.as_ref().map(|x| k_unit(x, k));
                let kkp = match (&kk, p_in) {
                    (Some(kk), Some(p)) => Some(kk * p),
                    _ => None,
                };
                for kq in 0..O {
                    let mut m = st.qz * wblock(k, kq) * st.qz.transpose();
                    if k == kq {
                        m += pic * inv_eps;
                    }
                    if let (Some(kkp), Some(x)) = (&kkp, &x) {
                        m += kkp * k_unit(x, kq).transpose();
                    }
                    for i in 0..I1 {
                        for ip in 0..I1 {
                            out[Self::fidx(kq, ip) * p + Self::fidx(k, i)] = m[(i, ip)];
                        }
                    }
                }
            }
        }
        // P_l = F P F' + Z' Tm^{-1} Z, Z = (Rz kron I) D (RO x BO),
        // F = A - D (Rz' kron I) X (BO x BI).
        let z = SMatrix::<T, RO, BO>::from_fn(|r, c| {
            let (j, k) = (r / O, r % O);
            let (n, kp) = (c / O, c % O);
            if k == kp {
                st.rz[(j, n)] * st.s1[(k, n)]
            } else {
                T::ZERO
            }
        });
        let mut p_out = z.transpose() * winv * z;
        if let (Some(p), Some(x)) = (p_in, &x) {
            let zx = z.transpose() * x; // D (Rz' kron I) X
            let mut f = -zx;
            for n in 0..B {
                for k in 0..O {
                    for iz in 0..I {
                        let mut a = st.s1[(k, n)] * st.w[(k, iz)];
                        if RES && k == iz {
                            a += T::ONE;
                        }
                        f[(n * O + k, n * I + iz)] += a;
                    }
                }
            }
            p_out += f * p * f.transpose();
        }
        (p_out + p_out.transpose()) * half
    }
}
