//! The exact `(H + eps I)^{-1} b` solve: per-stage derivative blocks ("curvature"), the
//! eps-dependent Riccati factor sweep, and the two-sweep solve (math.md sections 3 and 4).
//!
//! Each parameterised layer is one stage. For a stage with input width `I`, output width
//! `O`, batch `B` and input-with-bias `zt_n = [z_n; 1]` (`I1` rows), the stage matrix
//! `Rt = eps I + U M U'` never appears: with a thin QR `Zt = Qz Rz` (`R = min(B, I1)`
//! columns), `Rt` acts as the symmetric `(R O) x (R O)` matrix
//! `Tm = eps I + (I kron Rz) M (I kron Rz)'` on the range of `I kron Qz` and as `eps I` on its
//! complement. `Tm` is factored with Bunch-Kaufman `L D L'` (`H` is usually indefinite), so
//! every stage costs `O((R O)^3 + (B O)^2 B I)` instead of `O((O I1)^3)`.
//!
//! Index conventions: activation vectors are sample-major (`n * O + k`), i.e. the
//! column-major storage of an `O x B` matrix; `Tm` is rank-major (`j * O + k`, the
//! column-major storage of an `O x R` matrix), so `Tm = (Rz kron I_O) M (Rz' kron I_O)`.

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::{zero_mat, Layer};
use crate::ldlt::{Inertia, Ldlt, SingularPivot};
use crate::real::Real;

/// Everything the solve keeps for one stage: its derivative blocks (eps-independent), its
/// factorisation at the current eps, and solve scratch. All sizes are fixed at compile
/// time: `I1 = I + bias`, `R = min(B, I1)`, `BO = B * O`, `RO = R * O` (checked).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Stage<
    T: Real,
    const I: usize,
    const O: usize,
    const B: usize,
    const I1: usize,
    const R: usize,
    const BO: usize,
    const BI: usize,
    const RO: usize,
> {
    /// The stage's weights `W` (`O x I`), copied so the solve needs no network.
    pub w: SMatrix<T, O, I>,
    /// `act'(u)` per unit and sample.
    pub s1: SMatrix<T, O, B>,
    /// `c = beta * act''(u)` (`beta` the adjoint of the stage output).
    pub c: SMatrix<T, O, B>,
    /// `d = beta * act'(u)`.
    pub d: SMatrix<T, O, B>,
    /// Orthonormal columns spanning the inputs-with-bias `[z_n; 1]` (`I1 x R`).
    pub qz: SMatrix<T, I1, R>,
    /// `Zt = Qz Rz` (`R x B`).
    pub rz: SMatrix<T, R, B>,
    /// `S`: Hessian of the value function at the stage output (`BO x BO`); for the last
    /// stage, the loss Hessian.
    pub s: SMatrix<T, BO, BO>,
    /// The factored stage matrix `Tm` (`RO x RO`).
    pub tm: Ldlt<T, RO>,
    /// `K' = (Tm^{-1} J)'` (`BI x RO`): how the stage's rank coordinates respond to an
    /// input perturbation (the feedback gain of the Riccati sweep, in structured form).
    pub kt: SMatrix<T, BI, RO>,
    /// Solve scratch: `Tm^{-1}` times the right-hand side's own part (`O x R`).
    pub xi0: SMatrix<T, O, R>,
    /// Scratch of [`Layer::apply_forward`]: tangent of the pre-activation.
    pub tdu: SMatrix<T, O, B>,
    /// Scratch of [`Layer::apply_forward`]: tangent of the stage output.
    pub ty: SMatrix<T, O, B>,
    /// Whether the stage is residual (`f = z + act(..)`); set by the curvature pass.
    pub residual: bool,
}

// SAFETY: matrices of `T: Pod` and `Ldlt` (itself `Zeroable`): all-zero bytes are valid.
unsafe impl<
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    > bytemuck::Zeroable for Stage<T, I, O, B, I1, R, BO, BI, RO>
{
}

impl<
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    > Stage<T, I, O, B, I1, R, BO, BI, RO>
{
    /// All zeros; usable in `const` and `static` items.
    pub const ZERO: Self = Self {
        w: zero_mat(),
        s1: zero_mat(),
        c: zero_mat(),
        d: zero_mat(),
        qz: zero_mat(),
        rz: zero_mat(),
        s: zero_mat(),
        tm: Ldlt::ZERO,
        kt: zero_mat(),
        xi0: zero_mat(),
        tdu: zero_mat(),
        ty: zero_mat(),
        residual: false,
    };

    /// `S vec(v)` for an `O x B` matrix `v` (sample-major vectors).
    fn s_apply(&self, v: &SMatrix<T, O, B>) -> SMatrix<T, O, B> {
        let mut out = SMatrix::<T, O, B>::zeros();
        let (os, vs) = (out.as_mut_slice(), v.as_slice());
        let sd = self.s.as_slice();
        for b in 0..BO {
            let vb = vs[b];
            let col = &sd[b * BO..b * BO + BO];
            for (o, s) in os.iter_mut().zip(col) {
                *o += *s * vb;
            }
        }
        out
    }

    /// `Hl y` for the last stage, whose `S` is the loss Hessian.
    pub fn output_hessian_apply(&self) -> SMatrix<T, O, B> {
        self.s_apply(&self.ty)
    }

    /// Sets `S` to the block-diagonal loss Hessian (`block(n)` for sample `n`).
    pub fn set_output_hessian(&mut self, block: impl Fn(usize) -> SMatrix<T, O, O>) {
        self.s = zero_mat();
        for n in 0..B {
            let h = block(n);
            for a in 0..O {
                for b in 0..O {
                    self.s[(n * O + a, n * O + b)] = h[(a, b)];
                }
            }
        }
    }
}

/// A dense, type-erased view of one stage's derivative blocks (math.md section 1), for
/// baselines and tests: never used by the solve itself, which works on the structure.
/// Matrices are written column-major into caller slices; activations are sample-major and
/// parameters in the flat layout (`W` row-major, then the bias).
pub trait StageView<T: Real> {
    /// `B * I`: rows of the stage input.
    fn input_len(&self) -> usize;
    /// `B * O`: rows of the stage output.
    fn output_len(&self) -> usize;
    /// Parameters of the stage.
    fn param_len(&self) -> usize;
    /// Writes `A` (out x in), `B` (out x p), `Hxx` (p x p), `Hxz` (p x in), `Hzz` (in x in).
    fn dense_blocks(&self, a: &mut [T], b: &mut [T], hxx: &mut [T], hxz: &mut [T], hzz: &mut [T]);
    /// Writes `S` (out x out): for the last stage, the loss Hessian.
    fn output_hessian(&self, s: &mut [T]);
}

impl<
        T: Real,
        const I: usize,
        const O: usize,
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    > StageView<T> for Stage<T, I, O, B, I1, R, BO, BI, RO>
{
    fn input_len(&self) -> usize {
        B * I
    }
    fn output_len(&self) -> usize {
        BO
    }
    fn param_len(&self) -> usize {
        O * I + if I1 > I { O } else { 0 }
    }
    fn dense_blocks(&self, a: &mut [T], b: &mut [T], hxx: &mut [T], hxz: &mut [T], hzz: &mut [T]) {
        let (bi, p) = (B * I, self.param_len());
        for v in a.iter_mut().chain(b.iter_mut()).chain(hxx.iter_mut()) {
            *v = T::ZERO;
        }
        for v in hxz.iter_mut().chain(hzz.iter_mut()) {
            *v = T::ZERO;
        }
        let zt = self.qz * self.rz; // I1 x B
        // parameter index of (unit k, input-with-bias i)
        let pidx = |k: usize, i: usize| if i < I { k * I + i } else { O * I + k };
        for n in 0..B {
            for k in 0..O {
                let row = n * O + k;
                for i in 0..I {
                    let mut v = self.s1[(k, n)] * self.w[(k, i)];
                    if self.residual && i == k {
                        v += T::ONE;
                    }
                    a[(n * I + i) * BO + row] = v;
                }
                for i in 0..I1 {
                    b[pidx(k, i) * BO + row] = self.s1[(k, n)] * zt[(i, n)];
                }
                for i in 0..I1 {
                    for ip in 0..I1 {
                        hxx[pidx(k, ip) * p + pidx(k, i)] += self.c[(k, n)] * zt[(i, n)] * zt[(ip, n)];
                    }
                    for iz in 0..I {
                        let mut v = self.c[(k, n)] * zt[(i, n)] * self.w[(k, iz)];
                        if i == iz {
                            v += self.d[(k, n)];
                        }
                        hxz[(n * I + iz) * p + pidx(k, i)] += v;
                    }
                }
                for i in 0..I {
                    for ip in 0..I {
                        hzz[(n * I + ip) * bi + n * I + i] += self.c[(k, n)] * self.w[(k, i)] * self.w[(k, ip)];
                    }
                }
            }
        }
    }
    fn output_hessian(&self, s: &mut [T]) {
        s[..BO * BO].copy_from_slice(self.s.as_slice());
    }
}

/// Householder QR of `zt` (`M x B`): `zt = Qz Rz` with `Qz` (`M x R`) orthonormal columns
/// and `Rz` (`R x B`), `R = min(M, B)`. Rank-deficient inputs are fine: `Qz` stays
/// orthonormal and `Rz` gets zero rows.
fn thin_qr<T: Real, const M: usize, const B: usize, const R: usize>(
    zt: &SMatrix<T, M, B>,
    qz: &mut SMatrix<T, M, R>,
    rz: &mut SMatrix<T, R, B>,
) {
    let mut a = *zt;
    let mut v = SMatrix::<T, M, R>::zeros();
    let mut beta = [T::ZERO; R];
    for j in 0..R {
        let mut norm2 = T::ZERO;
        for i in j..M {
            norm2 += a[(i, j)] * a[(i, j)];
        }
        if norm2 == T::ZERO {
            continue; // identity reflector
        }
        let norm = norm2.sqrt();
        let alpha = if a[(j, j)] > T::ZERO { -norm } else { norm };
        let mut vn2 = T::ZERO;
        for i in j..M {
            v[(i, j)] = a[(i, j)];
        }
        v[(j, j)] -= alpha;
        for i in j..M {
            vn2 += v[(i, j)] * v[(i, j)];
        }
        if vn2 == T::ZERO {
            continue;
        }
        beta[j] = (T::ONE + T::ONE) / vn2;
        for col in j..B {
            let mut s = T::ZERO;
            for i in j..M {
                s += v[(i, j)] * a[(i, col)];
            }
            s *= beta[j];
            for i in j..M {
                a[(i, col)] -= s * v[(i, j)];
            }
        }
    }
    // Rz: the first R rows of the reduced matrix, upper trapezoidal (below-diagonal
    // entries are zero up to rounding, and set to exactly zero).
    for j in 0..R {
        for col in 0..B {
            rz[(j, col)] = if col >= j { a[(j, col)] } else { T::ZERO };
        }
    }
    *qz = SMatrix::zeros();
    for j in 0..R {
        qz[(j, j)] = T::ONE;
    }
    for j in (0..R).rev() {
        if beta[j] == T::ZERO {
            continue;
        }
        for col in 0..R {
            let mut s = T::ZERO;
            for i in j..M {
                s += v[(i, j)] * qz[(i, col)];
            }
            s *= beta[j];
            for i in j..M {
                qz[(i, col)] -= s * v[(i, j)];
            }
        }
    }
}

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    const fn check_stage<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>() {
        assert!(I1 == I + BIAS as usize, "I1 must be I + 1 with a bias, I without");
        assert!(R == if B < I1 { B } else { I1 }, "R must be min(B, I1)");
        assert!(BO == B * O, "BO must be B * O");
        assert!(RO == R * O, "RO must be R * O");
        assert!(BI == B * I, "BI must be B * I");
        assert!(!RES || I == O, "a residual layer needs I == O");
    }

    /// Curvature, forward half: evaluates the stage on `z`, records `act'`, `act''` (kept in
    /// `c` until the backward half), the weights and the QR of the inputs; returns the
    /// stage output.
    pub fn curv_forward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        &self,
        z: &SMatrix<T, I, B>,
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
    ) -> SMatrix<T, O, B> {
        const { Self::check_stage::<B, I1, R, BO, BI, RO>() };
        let mut out = self.w * z;
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
    pub fn curv_backward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
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
        let mut beta_in = st.w.tr_mul(&st.d);
        if RES {
            for (o, b) in beta_in.as_mut_slice().iter_mut().zip(beta.as_slice()) {
                *o += *b;
            }
        }
        beta_in
    }

    /// Factor sweep for one stage at `eps`: builds and factors `Tm`, and writes the value
    /// Hessian at the stage input to `prev` (the previous stage's `S`). Returns the inertia
    /// of the stage matrix `Rt` (`Tm` plus `eps` on the complement).
    pub fn factor_stage<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        eps: T,
        prev: &mut SMatrix<T, BI, BI>,
    ) -> Result<Inertia, SingularPivot> {
        Self::factor_impl::<B, I1, R, BO, BI, RO>(st, eps, Some(prev))
    }

    /// [`Self::factor_stage`] for the first stage, whose input is data (no `S` to pass on).
    pub fn factor_first<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        eps: T,
    ) -> Result<Inertia, SingularPivot> {
        Self::factor_impl::<B, I1, R, BO, BI, RO>(st, eps, None)
    }

    fn factor_impl<
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
        let s1f = st.s1.as_slice();
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
        tm.fill(T::ZERO);
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
        let mut inertia = st.tm.factor_in_place()?;
        let complement = O * I1 - RO;
        if complement > 0 {
            // On the complement the stage matrix is exactly eps I, decoupled from Tm (an
            // orthogonal change of basis): its solve is a division, exact for any nonzero eps
            // whose reciprocal is finite. How small eps may be relative to the rest is a
            // question of the whole sweep's accuracy (see `solve_refined`), not of this pivot.
            if eps == T::ZERO || !(T::ONE / eps).finite() {
                return Err(SingularPivot);
            }
            inertia += Inertia::of_scalar(eps, complement);
        }
        let Some(sp) = prev else { return Ok(inertia) };

        // A_m = diag(act'(u_m)) W (+ I), per sample.
        let mut am = [SMatrix::<T, O, I>::zeros(); B];
        for (m, a) in am.iter_mut().enumerate() {
            for i in 0..I {
                for k in 0..O {
                    a[(k, i)] = st.s1[(k, m)] * st.w[(k, i)];
                }
                if RES {
                    a[(i, i)] += T::ONE;
                }
            }
        }
        // With SA = S A (blocks S_nm A_m) and F = D S A + C Omega_z (F_nm = D_n SA_nm +
        // delta_nm C_n W):  J = (Rz kron I) F + [d_m Qz[0..I, j]'],  and
        // A' S A + Hzz = Omega_z' F + R' S A  (block (n, m): W' F_nm (+ SA_nm if residual)).
        // J is stored transposed (jt = J', BI x RO) so that the triangular solves below work
        // on contiguous columns.
        let mut jt = SMatrix::<T, BI, RO>::zeros();
        for j in 0..R {
            for m in 0..B {
                let q = st.qz.fixed_view::<I, 1>(0, j);
                let dm = st.d.column(m);
                jt.fixed_view_mut::<I, O>(m * I, j * O).copy_from(&(q * dm.transpose()));
            }
        }
        // Pi = I - Qz_z Qz_z' (parameter directions orthogonal to every input).
        let mut pi = SMatrix::<T, I, I>::identity();
        if complement > 0 {
            let qzz = st.qz.fixed_rows::<I>(0);
            pi -= qzz * qzz.transpose();
        }
        let inv_eps = if complement > 0 { T::ONE / eps } else { T::ZERO };
        for m in 0..B {
            for n in 0..B {
                let s_nm = st.s.fixed_view::<O, O>(n * O, m * O);
                let sa: SMatrix<T, O, I> = s_nm * am[m];
                let mut f = sa;
                for i in 0..I {
                    for k in 0..O {
                        f[(k, i)] *= st.s1[(k, n)];
                    }
                }
                if n == m {
                    for i in 0..I {
                        for k in 0..O {
                            f[(k, i)] += st.c[(k, n)] * st.w[(k, i)];
                        }
                    }
                }
                // J_jm += Rz[j, n] F_nm  (transposed into jt)
                for j in 0..R {
                    let r = st.rz[(j, n)];
                    if r != T::ZERO {
                        for k in 0..O {
                            for i in 0..I {
                                jt[(m * I + i, j * O + k)] += r * f[(k, i)];
                            }
                        }
                    }
                }
                if n < m {
                    continue;
                }
                // Lower blocks of S_prev: W' F_nm (+ SA_nm) - (d_n . d_m) Pi / eps.
                let mut blk: SMatrix<T, I, I> = st.w.tr_mul(&f);
                if RES {
                    for i in 0..I {
                        for ip in 0..I {
                            blk[(i, ip)] += sa[(i, ip)];
                        }
                    }
                }
                if complement > 0 {
                    let dd = st.d.column(n).dot(&st.d.column(m));
                    blk -= pi * (dd * inv_eps);
                }
                sp.fixed_view_mut::<I, I>(n * I, m * I).copy_from(&blk);
            }
        }
        // S_prev -= J' Tm^{-1} J = Y' D^{-1} Y with Y = L^{-1} P J (on the transpose jt);
        // the lower triangle is kept and mirrored (the upper blocks were never written).
        st.tm.forward_rows(&mut jt);
        st.tm.sub_quadratic_rows(&jt, sp);
        // Keep K = Tm^{-1} J (transposed) for the solve's forward sweep.
        st.tm.d_solve_rows(&mut jt);
        st.tm.backward_rows(&mut jt);
        st.kt = jt;
        for col in 0..BI {
            for row in col + 1..BI {
                sp[(col, row)] = sp[(row, col)];
            }
        }
        Ok(inertia)
    }

    /// `(H + eps I) v` from the stored blocks, forward half: the tangent of this stage's
    /// output along `v` (its block `v`, input tangent `y_in`), kept in `st.ty`.
    pub fn apply_forward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        v: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
    ) {
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
        st.tdu = du;
        st.ty = y_out;
    }

    /// `(H + eps I) v` from the stored blocks, backward half: given the tangent `r` of the
    /// output adjoint, writes this stage's block of `(H + eps I) v` to `out` and returns the
    /// tangent of the input adjoint.
    pub fn apply_backward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        v: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
        r: &SMatrix<T, O, B>,
        eps: T,
        out: &mut [T],
    ) -> SMatrix<T, I, B> {
        debug_assert_eq!(out.len(), Self::N_PARAMS);
        let ddelta = r.component_mul(&st.s1) + st.c.component_mul(&st.tdu);
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

    /// Solve, backward sweep for one stage: stores the linear term `s_out` of the value at
    /// the stage output and returns the one at its input.
    pub fn solve_backward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
        g: &[T],
        s_out: &SMatrix<T, O, B>,
        eps: T,
    ) -> SMatrix<T, I, B> {
        let gm = Self::unit_rows::<I1>(g);
        let gq = gm * st.qz; // O x R
        // xi (O x R, rank-major flat) = Tm^{-1} (G Qz - (act' s_out) Rz')
        let mut xi = gq - st.s1.component_mul(s_out) * st.rz.transpose();
        st.tm.solve_in_place(xi.as_mut_slice());
        st.xi0 = xi;
        let e0 = xi * st.rz; // O x B
        // q = S vec(act' e0) + s_out
        let q = st.s_apply(&st.s1.component_mul(&e0)) + s_out;
        let t = st.s1.component_mul(&q) + st.c.component_mul(&e0);
        // K = Xi Qz' + (G - G Qz Qz') / eps; its W columns meet d.
        let mut kmat = xi * st.qz.transpose();
        if O * I1 > RO {
            kmat += (gm - gq * st.qz.transpose()) * (T::ONE / eps);
        }
        let mut s_in = st.w.tr_mul(&t) + kmat.fixed_columns::<I>(0).tr_mul(&st.d);
        if RES {
            for (o, v) in s_in.as_mut_slice().iter_mut().zip(q.as_slice()) {
                *o += *v;
            }
        }
        s_in
    }

    /// Solve, forward sweep for one stage: from the input perturbation `y_in` (`None` for
    /// the first stage) writes this stage's block of the solution to `x` and returns the
    /// output perturbation. Uses `xi0` from the backward sweep and the gain `K`:
    /// `xi = xi0 - K y_in`.
    pub fn solve_forward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        g: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
        eps: T,
        x: &mut [T],
    ) -> SMatrix<T, O, B> {
        debug_assert_eq!(x.len(), Self::N_PARAMS);
        let mut xi = st.xi0;
        let mut e = SMatrix::<T, O, B>::zeros();
        if let Some(y) = y_in {
            // xi -= K y  (K' stored: dot products of contiguous columns)
            let yv = y.as_slice();
            let kd = st.kt.as_slice();
            for (q, xq) in xi.as_mut_slice().iter_mut().enumerate() {
                let col = &kd[q * BI..q * BI + BI];
                let mut acc = T::ZERO;
                for (kc, yc) in col.iter().zip(yv) {
                    acc += *kc * *yc;
                }
                *xq -= acc;
            }
            e = st.w * y;
        }
        // x = Xi Qz' + (Gh - Gh Qz Qz') / eps, Gh = G - [d y', 0]
        let mut xm = xi * st.qz.transpose();
        if O * I1 > RO {
            let mut gh = Self::unit_rows::<I1>(g);
            if let Some(y) = y_in {
                let hy = st.d * y.transpose(); // O x I
                let mut ghw = gh.fixed_columns_mut::<I>(0);
                ghw -= hy;
            }
            xm += (gh - (gh * st.qz) * st.qz.transpose()) * (T::ONE / eps);
        }
        for k in 0..O {
            for i in 0..I {
                x[k * I + i] = xm[(k, i)];
            }
            if BIAS {
                x[O * I + k] = xm[(k, I)];
            }
        }
        e += xi * st.rz;
        let mut y_out = st.s1.component_mul(&e);
        if let (true, Some(y)) = (RES, y_in) {
            for (o, v) in y_out.as_mut_slice().iter_mut().zip(y.as_slice()) {
                *o += *v;
            }
        }
        y_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn qr_check<const M: usize, const B: usize, const R: usize>(seed: u64, rank_one: bool) {
        let mut rng = SplitMix64::new(seed);
        let mut zt = SMatrix::<f64, M, B>::from_fn(|_, _| rng.symmetric());
        if rank_one {
            let c0 = zt.column(0).into_owned();
            for n in 0..B {
                zt.set_column(n, &(c0 * (n as f64 + 1.0)));
            }
        }
        let mut q = SMatrix::<f64, M, R>::zeros();
        let mut r = SMatrix::<f64, R, B>::zeros();
        thin_qr(&zt, &mut q, &mut r);
        assert!((q * r - zt).norm() < 1e-14 * (1.0 + zt.norm()));
        assert!((q.transpose() * q - SMatrix::<f64, R, R>::identity()).norm() < 1e-14);
    }

    #[test]
    fn thin_qr_reconstructs_with_orthonormal_columns() {
        for seed in 0..50 {
            qr_check::<5, 3, 3>(seed, false);
            qr_check::<3, 5, 3>(seed, false);
            qr_check::<4, 1, 1>(seed, false);
            qr_check::<6, 4, 4>(seed, true);
            qr_check::<4, 4, 4>(seed, false);
        }
    }
}
