//! Thin Householder QR of the small stage-input matrices (`[z_n; 1]` per sample).

use nalgebra::SMatrix;

use crate::real::Real;

/// Householder QR of `zt` (`M x B`): `zt = Qz Rz` with `Qz` (`M x R`) orthonormal columns
/// and `Rz` (`R x B`), `R = min(M, B)`. Rank-deficient inputs are fine: `Qz` stays
/// orthonormal and `Rz` gets zero rows.
pub fn thin_qr<T: Real, const M: usize, const B: usize, const R: usize>(
    zt: &SMatrix<T, M, B>,
    qz: &mut SMatrix<T, M, R>,
    rz: &mut SMatrix<T, R, B>,
) {
    if B == 1 {
        // One column: Qz = zt / |zt|, Rz = |zt| (for a zero column, Qz = e_0 and Rz = 0, as
        // the identity reflector below would give).
        let norm = zt
            .as_slice()
            .iter()
            .fold(T::ZERO, |acc, x| acc + *x * *x)
            .sqrt();
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
