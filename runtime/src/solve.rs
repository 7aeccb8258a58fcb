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
use crate::kernels;
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
    /// `Y' = (L^{-1} P J)'` (`BI x RO`), with `P Tm P' = L D L'`: the feedback gain of the
    /// Riccati sweep `K = Tm^{-1} J = P' L'^{-1} D^{-1} Y`, kept half-solved (the factor
    /// needs `Y` for the Schur complement anyway; the solve finishes it per right-hand side).
    pub kt: SMatrix<T, BI, RO>,
    /// Solve scratch: `L^{-1} P` times the right-hand side's own part (`O x R`).
    pub xi0: SMatrix<T, O, R>,
    /// Solve scratch: `G Qz` for the right-hand side's block `G` (`O x R`).
    pub gq: SMatrix<T, O, R>,
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
        gq: zero_mat(),
        tdu: zero_mat(),
        ty: zero_mat(),
        residual: false,
    };

    /// Cache hint for the sweeps: starts loading the stage-sized block just below this stage
    /// in memory (`below`, the next stage of a backward sweep over an array of stages) or
    /// just above it (a forward sweep). Deep nets' stages do not fit in the core's own
    /// caches; fetching the next one while this one is worked on keeps the cost per stage
    /// flat in depth. Harmless when the neighbour is something else.
    #[inline(always)]
    fn prefetch_next(&self, below: bool) {
        let size = core::mem::size_of::<Self>();
        let p = (self as *const Self).cast::<u8>();
        kernels::prefetch(if below { p.wrapping_sub(size) } else { p.wrapping_add(size) }, size);
    }

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
    if B == 1 {
        // One column: Qz = zt / |zt|, Rz = |zt| (for a zero column, Qz = e_0 and Rz = 0, as
        // the identity reflector below would give).
        let norm = zt.as_slice().iter().fold(T::ZERO, |acc, x| acc + *x * *x).sqrt();
        let (qd, rd) = (qz.as_mut_slice(), rz.as_mut_slice());
        if norm == T::ZERO {
            qd.fill(T::ZERO);
            qd[0] = T::ONE;
            rd[0] = T::ZERO;
        } else {
            let inv = T::ONE / norm;
            for (q, x) in qd.iter_mut().zip(zt.as_slice()) {
                *q = *x * inv;
            }
            rd[0] = norm;
        }
        return;
    }
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
        let mut beta_in = kernels::tr_mul(&st.w, &st.d);
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
                for ((x, sv), sk) in mcol[lo..].iter_mut().zip(&sd[kp * BO + lo..kp * BO + O]).zip(&s1f[lo..]) {
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
        let Some(sp) = prev else { return Ok(st.tm.factor_in_place()? + complement_inertia) };

        // With A_m = D_m W (+ I) (the stage's input Jacobian for sample m), everything below
        // is built from the transposed blocks
        //   G_mn = A_m' S_mn D_n + delta_mn W' C_n        (I x O, i.e. F_nm'):
        //   J'  = [G_mn] (Rz' kron I) + [Qz_z d_m']       (BI x RO, stored as `kt`),
        //   S_prev_mn = G_mn W (+ A_m' S_mn if residual) - (d_m . d_n) Pi / eps,
        // where Pi = I - Qz_z Qz_z' projects onto parameter directions orthogonal to every
        // input (math.md section 4). Only the blocks m >= n (lower triangle) are built.
        let (s1f, cf, df) = (st.s1.as_slice(), st.c.as_slice(), st.d.as_slice());
        let inv_eps = if complement > 0 { T::ONE / eps } else { T::ZERO };
        let wt = kernels::transpose(&st.w);
        let (wd, wtd, sd, qzs) = (st.w.as_slice(), wt.as_slice(), st.s.as_slice(), st.qz.as_slice());
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
                            for ((x, qi), gi) in col.iter_mut().zip(&qzs[j * I1..j * I1 + I]).zip(&acc) {
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
                let f = if complement > 0 { kernels::dot(&df[n * O..n * O + O], &df[m * O..m * O + O]) * inv_eps } else { T::ZERO };
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
                                kernels::axpy(&mut acc[lo..], -f, &pi.as_slice()[i * I + lo..i * I + I]);
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

    /// `(H + eps I) v` from the stored blocks, forward half: the tangent of this stage's
    /// output along `v` (its block `v`, input tangent `y_in`), kept in `st.ty`.
    pub fn apply_forward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
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
        st.prefetch_next(true);
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

    /// `G Qz` (`O x R`) for this stage's block `g` of a flat vector (`G` its `O x I1` unit
    /// rows), read straight from the flat layout.
    #[inline(always)]
    fn g_qz<const I1: usize, const R: usize>(g: &[T], qz: &SMatrix<T, I1, R>) -> SMatrix<T, O, R> {
        let (gw, gb) = g.split_at(O * I);
        let mut out = SMatrix::<T, O, R>::zeros();
        for (q, col) in qz.as_slice().chunks_exact(I1).zip(out.as_mut_slice().chunks_exact_mut(O)) {
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
    pub fn solve_backward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &mut Stage<T, I, O, B, I1, R, BO, BI, RO>,
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
        st.xi0 = xi;
        st.gq = gq;
        st.tm.d_solve_in_place(xi.as_mut_slice());
        st.tm.backward_in_place(xi.as_mut_slice());
        let e0 = kernels::mul(&xi, &st.rz); // O x B
        // q = S vec(act' e0) + s_out;  t = act' q + c e0
        let mut q = st.s_apply(&kernels::hadamard(&st.s1, &e0));
        let mut t = SMatrix::<T, O, B>::zeros();
        {
            let (qd, td) = (q.as_mut_slice(), t.as_mut_slice());
            let (s1, c, e, so) = (st.s1.as_slice(), st.c.as_slice(), e0.as_slice(), s_out.as_slice());
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
    pub fn solve_forward<const B: usize, const I1: usize, const R: usize, const BO: usize, const BI: usize, const RO: usize>(
        st: &Stage<T, I, O, B, I1, R, BO, BI, RO>,
        g: &[T],
        y_in: Option<&SMatrix<T, I, B>>,
        eps: T,
        x: &mut [T],
    ) -> SMatrix<T, O, B> {
        debug_assert_eq!(x.len(), Self::N_PARAMS);
        debug_assert_eq!(g.len(), Self::N_PARAMS);
        st.prefetch_next(false);
        let mut xi = st.xi0;
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
            kernels::axpy(u.as_mut_slice(), -inv_eps, st.gq.as_slice());
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
    fn thin_qr_of_a_zero_column_is_orthonormal() {
        let (mut q, mut r) = (SMatrix::<f64, 4, 1>::zeros(), SMatrix::<f64, 1, 1>::zeros());
        thin_qr(&SMatrix::<f64, 4, 1>::zeros(), &mut q, &mut r);
        assert_eq!(q.norm(), 1.0);
        assert_eq!(r[(0, 0)], 0.0);
    }

    #[test]
    fn thin_qr_reconstructs_with_orthonormal_columns() {
        for seed in 0..50 {
            qr_check::<5, 3, 3>(seed, false);
            qr_check::<3, 5, 3>(seed, false);
            qr_check::<4, 1, 1>(seed, false);
            qr_check::<1, 1, 1>(seed, false);
            qr_check::<6, 4, 4>(seed, true);
            qr_check::<4, 4, 4>(seed, false);
        }
    }
}
