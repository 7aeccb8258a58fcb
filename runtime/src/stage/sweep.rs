//! The two sweeps of a solve with a factored stage (backward for the linear terms, forward
//! for the solution), and `(H + eps I) v` from the stored blocks.

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::Layer;
use crate::linalg::kernels;
use crate::real::Real;

use super::{Scratch, Stage};

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// `(H + eps I) v` from the stored blocks, forward half: the tangent of this stage's
    /// output along `v` (its block `v`, input tangent `y_in`), kept in `scr.ty`.
    pub(crate) fn apply_forward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        scr: &mut Scratch<T, O, R, B>,
        v: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
    ) {
        st.prefetch_next(false);
        let gv = Self::unit_rows::<I1>(v);
        // du_n,k = W_k y_n + [V_k, vb_k] zt_n, with zt_n = Qz Rz[:, n]
        let mut du = (gv * st.qz) * st.rz;
        if let Some(y) = y_in {
            du += st.w * y;
        }
        let mut y_out = st.s1.component_mul(&du);
        if let (true, Some(y)) = (RES, y_in) {
            for (o, v) in y_out.as_mut_slice().iter_mut().zip(y.as_slice()) {
                *o += *v;
            }
        }
        scr.tdu = du;
        scr.ty = y_out;
    }

    /// `(H + eps I) v` from the stored blocks, backward half: given the tangent `r` of the
    /// output adjoint, writes this stage's block of `(H + eps I) v` to `out` and returns the
    /// tangent of the input adjoint.
    pub(crate) fn apply_backward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        scr: &Scratch<T, O, R, B>,
        v: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
        r: &SMatrix<T, O, B>,
        eps: T,
        out: &mut [T],
    ) -> SMatrix<T, I, B> {
        debug_assert_eq!(out.len(), Self::N_PARAMS);
        st.prefetch_next(true);
        let ddelta = r.component_mul(&st.s1) + st.c.component_mul(&scr.tdu);
        // unit rows of (H v): ddelta Zt' + d [y; 0]'
        let mut hv = (ddelta * st.rz.transpose()) * st.qz.transpose();
        if let Some(y) = y_in {
            for k in 0..O {
                for i in 0..I {
                    let mut acc = T::ZERO;
                    for n in 0..B {
                        acc += st.d[(k, n)] * y[(i, n)];
                    }
                    hv[(k, i)] += acc;
                }
            }
        }
        for k in 0..O {
            for i in 0..I {
                out[k * I + i] = hv[(k, i)] + eps * v[k * I + i];
            }
            if BIAS {
                out[O * I + k] = hv[(k, I)] + eps * v[O * I + k];
            }
        }
        // r_in = W' ddelta + V' d (+ r)
        let mut r_in = st.w.tr_mul(&ddelta);
        for n in 0..B {
            for k in 0..O {
                let dk = st.d[(k, n)];
                for i in 0..I {
                    r_in[(i, n)] += v[k * I + i] * dk;
                }
            }
        }
        if RES {
            for (o, x) in r_in.as_mut_slice().iter_mut().zip(r.as_slice()) {
                *o += *x;
            }
        }
        r_in
    }

    /// `G`: the stage's block of a flat vector as an `O x I1` matrix (row `k` = `[W_k, b_k]`).
    #[inline(always)]
    fn unit_rows<const I1: usize>(g: &[T]) -> SMatrix<T, O, I1> {
        debug_assert_eq!(g.len(), Self::N_PARAMS);
        let mut m = SMatrix::<T, O, I1>::zeros();
        for k in 0..O {
            for i in 0..I {
                m[(k, i)] = g[k * I + i];
            }
            if BIAS {
                m[(k, I)] = g[O * I + k];
            }
        }
        m
    }

    /// `G Qz` (`O x R`) for this stage's block `g` of a flat vector (`G` its `O x I1` unit
    /// rows), read straight from the flat layout.
    #[inline(always)]
    fn g_qz<const I1: usize, const R: usize>(g: &[T], qz: &SMatrix<T, I1, R>) -> SMatrix<T, O, R> {
        let (gw, gb) = g.split_at(O * I);
        let mut out = SMatrix::<T, O, R>::zeros();
        for (q, col) in qz
            .as_slice()
            .chunks_exact(I1)
            .zip(out.as_mut_slice().chunks_exact_mut(O))
        {
            for (k, o) in col.iter_mut().enumerate() {
                let mut acc = kernels::dot(&gw[k * I..k * I + I], &q[..I]);
                if BIAS {
                    acc += gb[k] * q[I];
                }
                *o = acc;
            }
        }
        out
    }

    /// Solve, backward sweep for one stage: stores the linear term `s_out` of the value at
    /// the stage output and returns the one at its input.
    pub(crate) fn solve_backward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        scr: &mut Scratch<T, O, R, B>,
        g: &[T],
        s_out: &SMatrix<T, O, B>,
        eps: T,
    ) -> SMatrix<T, I, B> {
        debug_assert_eq!(g.len(), Self::N_PARAMS);
        st.prefetch_next(true);
        let gq = Self::g_qz(g, &st.qz); // O x R
                                        // xi (O x R, rank-major flat) = Tm^{-1} (G Qz - (act' s_out) Rz')
        let mut xi = gq;
        {
            let u = kernels::hadamard(&st.s1, s_out);
            let (xd, rz) = (xi.as_mut_slice(), st.rz.as_slice());
            for (n, un) in u.as_slice().chunks_exact(O).enumerate() {
                for (j, xj) in xd.chunks_exact_mut(O).enumerate() {
                    kernels::axpy(xj, -rz[j + n * R], un);
                }
            }
        }
        st.tm.forward_in_place(xi.as_mut_slice(), false);
        scr.xi0 = xi;
        scr.gq = gq;
        st.tm.d_solve_in_place(xi.as_mut_slice());
        st.tm.backward_in_place(xi.as_mut_slice());
        let e0 = kernels::mul(&xi, &st.rz); // O x B
                                            // q = S vec(act' e0) + s_out;  t = act' q + c e0
        let mut q = st.s_apply(&kernels::hadamard(&st.s1, &e0));
        let mut t = SMatrix::<T, O, B>::zeros();
        {
            let (qd, td) = (q.as_mut_slice(), t.as_mut_slice());
            let (s1, c, e, so) = (
                st.s1.as_slice(),
                st.c.as_slice(),
                e0.as_slice(),
                s_out.as_slice(),
            );
            for p in 0..BO {
                qd[p] += so[p];
                td[p] = s1[p] * qd[p] + c[p] * e[p];
            }
        }
        // s_in = W' t + K_W' d (+ q), where the gain's weight columns are
        // K_W = Xi Qz_z' + (G_W - G Qz Qz_z') / eps, so that
        // K_W' d = Qz_z (Xi' d - (G Qz)' d / eps) + G_W' d / eps.
        let mut s_in = kernels::tr_mul(&st.w, &t);
        let mut coef = kernels::tr_mul(&xi, &st.d); // R x B
        if O * I1 > RO {
            let inv_eps = T::ONE / eps;
            let gqd = kernels::tr_mul(&gq, &st.d);
            kernels::axpy(coef.as_mut_slice(), -inv_eps, gqd.as_slice());
            // G_W' d / eps, reading G_W's rows (contiguous in the flat layout).
            let gw = &g[..O * I];
            for (n, col) in s_in.as_mut_slice().chunks_exact_mut(I).enumerate() {
                let mut acc = [T::ZERO; I];
                for (k, grow) in gw.chunks_exact(I).enumerate() {
                    kernels::axpy(&mut acc, st.d.as_slice()[n * O + k] * inv_eps, grow);
                }
                for (o, a) in col.iter_mut().zip(&acc) {
                    *o += *a;
                }
            }
        }
        // + Qz_z coef
        {
            let (sd, qz, cf) = (s_in.as_mut_slice(), st.qz.as_slice(), coef.as_slice());
            for (n, col) in sd.chunks_exact_mut(I).enumerate() {
                for (j, q) in qz.chunks_exact(I1).enumerate() {
                    kernels::axpy(col, cf[j + n * R], &q[..I]);
                }
            }
        }
        if RES {
            for (o, v) in s_in.as_mut_slice().iter_mut().zip(q.as_slice()) {
                *o += *v;
            }
        }
        s_in
    }

    /// Solve, forward sweep for one stage: from the input perturbation `y_in` (`None` for
    /// the first stage) writes this stage's block of the solution to `x` and returns the
    /// output perturbation. Uses `xi0` and `G Qz` from the backward sweep and the
    /// half-solved gain `Y`: `xi = P' L'^{-1} D^{-1} (xi0 - Y y_in)`.
    pub(crate) fn solve_forward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        scr: &Scratch<T, O, R, B>,
        g: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
        eps: T,
        x: &mut [T],
    ) -> SMatrix<T, O, B> {
        debug_assert_eq!(x.len(), Self::N_PARAMS);
        debug_assert_eq!(g.len(), Self::N_PARAMS);
        st.prefetch_next(false);
        let mut xi = scr.xi0;
        let mut e = SMatrix::<T, O, B>::zeros();
        if let Some(y) = y_in {
            // xi -= Y y  (Y' stored: dot products of contiguous columns)
            let yv = y.as_slice();
            let kd = st.kt.as_slice();
            for (q, xq) in xi.as_mut_slice().iter_mut().enumerate() {
                *xq -= kernels::dot(&kd[q * BI..q * BI + BI], yv);
            }
            e = kernels::mul(&st.w, y);
        }
        st.tm.d_solve_in_place(xi.as_mut_slice());
        st.tm.backward_in_place(xi.as_mut_slice());
        // x = Xi Qz' + (Gh - Gh Qz Qz') / eps with Gh = G - [d y', 0]:
        // x = Gh / eps + U Qz' with U = Xi - Gh Qz / eps, Gh Qz = G Qz - d (y' Qz_z).
        let (xw, xb) = x.split_at_mut(O * I);
        let (gw, gb) = g.split_at(O * I);
        let qzs = st.qz.as_slice();
        if O * I1 > RO {
            let inv_eps = T::ONE / eps;
            let mut u = xi;
            kernels::axpy(u.as_mut_slice(), -inv_eps, scr.gq.as_slice());
            if let Some(y) = y_in {
                // u += d (y' Qz_z) / eps
                let ud = u.as_mut_slice();
                let qz = st.qz.as_slice();
                for (n, ycol) in y.as_slice().chunks_exact(I).enumerate() {
                    let dn = &st.d.as_slice()[n * O..n * O + O];
                    for (j, q) in qz.chunks_exact(I1).enumerate() {
                        let f = kernels::dot(ycol, &q[..I]) * inv_eps;
                        kernels::axpy(&mut ud[j * O..j * O + O], f, dn);
                    }
                }
            }
            for k in 0..O {
                let row = &mut xw[k * I..k * I + I];
                for (xi_, gi) in row.iter_mut().zip(&gw[k * I..k * I + I]) {
                    *xi_ = *gi * inv_eps;
                }
                if let Some(y) = y_in {
                    for (n, ycol) in y.as_slice().chunks_exact(I).enumerate() {
                        let dk = st.d[(k, n)] * inv_eps;
                        for (xi_, yi) in row.iter_mut().zip(ycol) {
                            *xi_ -= dk * *yi;
                        }
                    }
                }
                for (j, q) in qzs.chunks_exact(I1).enumerate() {
                    let ukj = u[(k, j)];
                    for (xi_, qi) in row.iter_mut().zip(&q[..I]) {
                        *xi_ += ukj * *qi;
                    }
                }
                if BIAS {
                    let mut acc = gb[k] * inv_eps;
                    for (j, q) in qzs.chunks_exact(I1).enumerate() {
                        acc += u[(k, j)] * q[I];
                    }
                    xb[k] = acc;
                }
            }
        } else {
            // Tm is the whole stage matrix: x = Xi Qz'.
            for k in 0..O {
                let row = &mut xw[k * I..k * I + I];
                row.fill(T::ZERO);
                for (j, q) in qzs.chunks_exact(I1).enumerate() {
                    let xkj = xi[(k, j)];
                    for (xi_, qi) in row.iter_mut().zip(&q[..I]) {
                        *xi_ += xkj * *qi;
                    }
                }
                if BIAS {
                    let mut acc = T::ZERO;
                    for (j, q) in qzs.chunks_exact(I1).enumerate() {
                        acc += xi[(k, j)] * q[I];
                    }
                    xb[k] = acc;
                }
            }
        }
        let exi = kernels::mul(&xi, &st.rz);
        for (o, v) in e.as_mut_slice().iter_mut().zip(exi.as_slice()) {
            *o += *v;
        }
        let mut y_out = kernels::hadamard(&st.s1, &e);
        if let (true, Some(y)) = (RES, y_in) {
            for (o, v) in y_out.as_mut_slice().iter_mut().zip(y.as_slice()) {
                *o += *v;
            }
        }
        y_out
    }
}
