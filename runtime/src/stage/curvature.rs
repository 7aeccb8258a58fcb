//! The curvature pass: every per-stage derivative block at one batch (nothing here depends
//! on eps). The forward half records `act'`, `act''`, the weights and the QR of the stage
//! inputs; the backward half contracts them with the adjoint `beta`.

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::Layer;
use crate::linalg::kernels;
use crate::linalg::qr::thin_qr;
use crate::real::Real;

use super::Stage;

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// Curvature, forward half: evaluates the stage on `z`, records `act'`, `act''` (kept in
    /// `c` until the backward half), the weights and the QR of the inputs; returns the
    /// stage output.
    pub(crate) fn curv_forward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        &self,
        z: &SMatrix<T, I, B>,
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
    ) -> SMatrix<T, O, B> {
        const { Self::check_stage::<B, I1, R, BO, BI, RO>() };
        let mut out = kernels::mul(&self.w, z);
        for n in 0..B {
            for k in 0..O {
                let u = out[(k, n)] + if BIAS { self.b[k] } else { T::ZERO };
                let (f, d1, d2) = A::d2(u);
                out[(k, n)] = f;
                st.s1[(k, n)] = d1;
                st.c[(k, n)] = d2;
            }
        }
        if RES {
            for (o, zi) in out.as_mut_slice().iter_mut().zip(z.as_slice()) {
                *o += *zi;
            }
        }
        st.w = self.w;
        st.residual = RES;
        let mut zt = SMatrix::<T, I1, B>::zeros();
        for n in 0..B {
            for i in 0..I {
                zt[(i, n)] = z[(i, n)];
            }
            if BIAS {
                zt[(I, n)] = T::ONE;
            }
        }
        thin_qr(&zt, &mut st.qz, &mut st.rz);
        out
    }

    /// Curvature, backward half: given the adjoint `beta` of the stage output, sets
    /// `c = beta act''`, `d = beta act'` and returns the adjoint of the stage input.
    pub(crate) fn curv_backward<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        beta: &SMatrix<T, O, B>,
    ) -> SMatrix<T, I, B> {
        for n in 0..B {
            for k in 0..O {
                let bk = beta[(k, n)];
                st.c[(k, n)] *= bk;
                st.d[(k, n)] = bk * st.s1[(k, n)];
            }
        }
        let mut beta_in = kernels::tr_mul(&st.w, &st.d);
        if RES {
            for (o, b) in beta_in.as_mut_slice().iter_mut().zip(beta.as_slice()) {
                *o += *b;
            }
        }
        beta_in
    }
}
