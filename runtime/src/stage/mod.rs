//! The exact `(H + eps I)^{-1} b` solve: per-stage derivative blocks ("curvature"), the
//! eps-dependent Riccati factor sweep, and the two-sweep solve (docs/math.md sections 3 and 4).
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
//!
//! One file per step: [`curvature`] (the derivative blocks, forward and backward halves),
//! [`factor`] (the eps-dependent factor sweep), [`sweep`] (the two-sweep solve and the
//! product `(H + eps I) v` from the stored blocks), [`gram`] (the Gauss-Newton Gram matrix of
//! the Woodbury form), [`selinv`] (the log-determinant and the diagonal blocks of the inverse
//! from the factors).

pub mod curvature;
pub mod factor;
pub mod gram;
pub mod selinv;
pub mod stable;
pub mod sweep;

use nalgebra::SMatrix;

use crate::activation::Activation;
use crate::layer::{zero_mat, Layer};
use crate::linalg::kernels;
use crate::linalg::ldlt::Ldlt;
use crate::real::Real;

/// Everything the solve keeps for one stage: its derivative blocks (eps-independent) and its
/// factorisation at the current eps; the solves only read it (their per-right-hand-side
/// work lives in a [`Scratch`]). All sizes are fixed at compile time: `I1 = I + bias`,
/// `R = min(B, I1)`, `BO = B * O`, `RO = R * O` (checked).
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
        residual: false,
    };

    /// Cache hint for the sweeps: starts loading the stage-sized block just below this stage
    /// in memory (`below`, the next stage of a backward sweep over an array of stages) or
    /// just above it (a forward sweep). Deep nets' stages do not fit in the core's own
    /// caches; fetching the next one while this one is worked on keeps the cost per stage
    /// flat in depth. Harmless when the neighbour is something else.
    #[inline(always)]
    pub(crate) fn prefetch_next(&self, below: bool) {
        let size = core::mem::size_of::<Self>();
        let p = (self as *const Self).cast::<u8>();
        kernels::prefetch(
            if below {
                p.wrapping_sub(size)
            } else {
                p.wrapping_add(size)
            },
            size,
        );
    }

    /// `S vec(v)` for an `O x B` matrix `v` (sample-major vectors).
    pub(crate) fn s_apply(&self, v: &SMatrix<T, O, B>) -> SMatrix<T, O, B> {
        s_apply(&self.s, v)
    }
}

/// `S vec(v)` for an `O x B` matrix `v` and a `BO x BO` matrix `S` (sample-major vectors).
pub(crate) fn s_apply<T: Real, const O: usize, const B: usize, const BO: usize>(
    s: &SMatrix<T, BO, BO>,
    v: &SMatrix<T, O, B>,
) -> SMatrix<T, O, B> {
    let mut out = SMatrix::<T, O, B>::zeros();
    let (os, vs) = (out.as_mut_slice(), v.as_slice());
    let sd = s.as_slice();
    for b in 0..BO {
        let vb = vs[b];
        let col = &sd[b * BO..b * BO + BO];
        for (o, s) in os.iter_mut().zip(col) {
            *o += *s * vb;
        }
    }
    out
}

/// Per-right-hand-side work of one stage during a solve or a product from the stored
/// blocks: written by the backward (solve) or forward (product) half, read by the other.
/// Kept apart from [`Stage`] so the factors are only read while solving.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Scratch<T: Real, const O: usize, const R: usize, const B: usize> {
    /// `L^{-1} P` times the right-hand side's own part (`O x R`).
    pub(crate) xi0: SMatrix<T, O, R>,
    /// `G Qz` for the right-hand side's block `G` (`O x R`).
    pub(crate) gq: SMatrix<T, O, R>,
    /// Product: tangent of the pre-activation.
    pub(crate) tdu: SMatrix<T, O, B>,
    /// Product: tangent of the stage output.
    pub(crate) ty: SMatrix<T, O, B>,
}

// SAFETY: matrices of `T: Pod`.
unsafe impl<T: Real, const O: usize, const R: usize, const B: usize> bytemuck::Zeroable
    for Scratch<T, O, R, B>
{
}

impl<T: Real, const O: usize, const R: usize, const B: usize> Scratch<T, O, R, B> {
    /// All zeros.
    pub const ZERO: Self = Self {
        xi0: zero_mat(),
        gq: zero_mat(),
        tdu: zero_mat(),
        ty: zero_mat(),
    };
}

/// A dense, type-erased view of one stage's derivative blocks (docs/math.md section 1), for
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
    /// The stage's structured blocks, borrowed (the stable sweep of [`stable`] reads them).
    fn parts(&self) -> StageParts<'_, T>;
}

/// One stage's structured blocks (the fields of [`Stage`]) with its sizes, type-erased: every
/// matrix column-major.
#[derive(Clone, Copy, Debug)]
pub struct StageParts<'a, T> {
    /// Inputs per sample `I`.
    pub i: usize,
    /// Outputs per sample `O`.
    pub o: usize,
    /// Batch `B`.
    pub b: usize,
    /// `I + bias`.
    pub i1: usize,
    /// `R = min(B, I1)`.
    pub r: usize,
    /// Whether the stage is residual.
    pub residual: bool,
    /// `W` (`O x I`).
    pub w: &'a [T],
    /// `act'(u)` (`O x B`).
    pub s1: &'a [T],
    /// `c` (`O x B`).
    pub c: &'a [T],
    /// `d` (`O x B`).
    pub d: &'a [T],
    /// `Qz` (`I1 x R`).
    pub qz: &'a [T],
    /// `Rz` (`R x B`).
    pub rz: &'a [T],
    /// `S` as last written (`BO x BO`): for the last stage, the loss Hessian.
    pub s: &'a [T],
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
                        hxx[pidx(k, ip) * p + pidx(k, i)] +=
                            self.c[(k, n)] * zt[(i, n)] * zt[(ip, n)];
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
                        hzz[(n * I + ip) * bi + n * I + i] +=
                            self.c[(k, n)] * self.w[(k, i)] * self.w[(k, ip)];
                    }
                }
            }
        }
    }
    fn output_hessian(&self, s: &mut [T]) {
        s[..BO * BO].copy_from_slice(self.s.as_slice());
    }
    fn parts(&self) -> StageParts<'_, T> {
        StageParts {
            i: I,
            o: O,
            b: B,
            i1: I1,
            r: R,
            residual: self.residual,
            w: self.w.as_slice(),
            s1: self.s1.as_slice(),
            c: self.c.as_slice(),
            d: self.d.as_slice(),
            qz: self.qz.as_slice(),
            rz: self.rz.as_slice(),
            s: self.s.as_slice(),
        }
    }
}

impl<T: Real, A: Activation, const I: usize, const O: usize, const BIAS: bool, const RES: bool>
    Layer<T, A, I, O, BIAS, RES>
{
    /// Compile-time check that a `Stage`'s derived sizes belong to this layer at batch `B`.
    pub(crate) const fn check_stage<
        const B: usize,
        const I1: usize,
        const R: usize,
        const BO: usize,
        const BI: usize,
        const RO: usize,
    >() {
        assert!(
            I1 == I + BIAS as usize,
            "I1 must be I + 1 with a bias, I without"
        );
        assert!(R == if B < I1 { B } else { I1 }, "R must be min(B, I1)");
        assert!(BO == B * O, "BO must be B * O");
        assert!(RO == R * O, "RO must be R * O");
        assert!(BI == B * I, "BI must be B * I");
        assert!(!RES || I == O, "a residual layer needs I == O");
    }
}
