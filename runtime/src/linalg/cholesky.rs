//! Cholesky of the small symmetric positive definite matrices (the Woodbury form's
//! `eps I + U'U`), by nalgebra.

use nalgebra::SMatrix;

use crate::real::Real;

/// In-place Cholesky of the lower triangle of the `M x M` matrix `a` (`a = L L'`; `a` becomes
/// `L`, zero above the diagonal), by nalgebra's `Cholesky`. Fails when a pivot is not
/// positive (NaN included) or the factor is not finite; `a` is then unchanged.
pub fn cholesky_in_place<T: Real, const M: usize>(a: &mut SMatrix<T, M, M>) -> Result<(), ()> {
    let l = nalgebra::Cholesky::new(*a).ok_or(())?.unpack();
    if !crate::real::all_finite(l.as_slice()) {
        return Err(());
    }
    *a = l;
    Ok(())
}

/// Solves `L L' x = b` in place with the factor of [`cholesky_in_place`].
pub fn cholesky_solve<T: Real, const M: usize>(l: &SMatrix<T, M, M>, b: &mut [T]) {
    let mut v = nalgebra::SVectorViewMut::<T, M>::from_slice(b);
    // The diagonal is positive (checked when factoring), so neither solve can fail.
    l.solve_lower_triangular_mut(&mut v);
    l.tr_solve_lower_triangular_mut(&mut v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_spd() {
        let mut rng = crate::rng::SplitMix64::new(3);
        let x = SMatrix::<f64, 5, 5>::from_fn(|_, _| rng.symmetric());
        let a = x * x.transpose() + SMatrix::<f64, 5, 5>::identity() * 0.1;
        let mut l = a;
        cholesky_in_place(&mut l).unwrap();
        let b = [1.0, -2.0, 0.5, 3.0, 0.25];
        let mut y = b;
        cholesky_solve(&l, &mut y);
        let r = a * nalgebra::SVector::<f64, 5>::from_column_slice(&y);
        for i in 0..5 {
            assert!((r[i] - b[i]).abs() < 1e-12);
        }
        let mut neg = -a;
        assert!(cholesky_in_place(&mut neg).is_err());
    }
}
