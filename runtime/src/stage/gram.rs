//! The Gauss-Newton stage work: the Gram matrix `C'J J'C` of the Woodbury form, one stage at
//! a time, and the Riccati form's blocks (the Hessian's with the adjoint terms dropped).

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::{Layer, Tape};
use crate::real::Real;

use super::Stage;

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// Gauss-Newton Gram matrix, one stage: given `M` adjoints `r` of the stage output (column
    /// `a` belongs to sample `a / (M / B)` and is zero on every other sample, so only that
    /// sample's block is stored), adds this stage's part of `J J'` restricted to them,
    /// `gram[a][b] += (delta_a . delta_b) ([z_n; 1] . [z_m; 1])`, to the lower triangle of
    /// `gram`, and returns the adjoints of the stage input (`J_l' r` without the parameter
    /// part). `z` is the stage input and `tape` its forward record.
    pub(crate) fn gram_backward<const B: usize, const M: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        tape: &Tape<T, O, B>,
        r: &SMatrix<T, O, M>,
        gram: &mut SMatrix<T, M, M>,
    ) -> SMatrix<T, I, M> {
        let per = M / B;
        let mut delta = *r;
        for a in 0..M {
            let n = a / per;
            for k in 0..O {
                delta[(k, a)] *= tape.d1[(k, n)];
            }
        }
        // zz[n][m] = z_n . z_m (+ 1 with a bias)
        let ztz = z.tr_mul(z);
        let bias = if BIAS { T::ONE } else { T::ZERO };
        let dd = delta.as_slice();
        for b in 0..M {
            let db = &dd[b * O..b * O + O];
            let mb = b / per;
            for a in b..M {
                let da = &dd[a * O..a * O + O];
                let mut acc = T::ZERO;
                for k in 0..O {
                    acc += da[k] * db[k];
                }
                gram[(a, b)] += acc * (ztz[(a / per, mb)] + bias);
            }
        }
        let mut r_in = self.w.tr_mul(&delta);
        if RES {
            for (o, x) in r_in.as_mut_slice().iter_mut().zip(r.as_slice()) {
                *o += *x;
            }
        }
        r_in
    }
}

/// Drops every adjoint (`beta`) term of a stage filled by the Hessian's curvature pass
/// (`c = beta act''` and `d = beta act'` set to zero): what remains are the Gauss-Newton
/// blocks, so the same factor sweep and solve work on `G + eps I`.
pub fn drop_adjoint_terms<
    T: Real,
    const I: usize,
    const O: usize,
    const B: usize,
    const I1: usize,
    const R: usize,
    const BO: usize,
    const BI: usize,
    const RO: usize,
>(
    st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
) {
    st.c = SMatrix::zeros();
    st.d = SMatrix::zeros();
}
