//! nalgebra at the boundary: zero-copy conversions between a network's arrays and
//! nalgebra matrices.
//!
//! A net's batch of inputs is `[[T; I]; B]`: `B` samples of `I` entries, each sample
//! contiguous. nalgebra's `SMatrix<T, I, B>` stores exactly that (its `ArrayStorage` is
//! `[[T; I]; B]`, column-major: one column per sample), so a batch *is* an `I x B` matrix
//! with one sample per column, and the conversions below are reference casts (bytemuck's
//! checked `cast_ref`, possible because both types are `Pod` with the same size and
//! alignment), not copies. The same holds for outputs (`[[T; O]; B]`), one sample
//! (`[T; I]` is `SVector<T, I>`), a parameter vector (`[T; N_PARAMS]` is
//! `SVector<T, N_PARAMS>`), and a data set of any length (`&[[T; I]]` is an `I x n`
//! matrix view, or a slice of `SVector<T, I>`).
//!
//! Note the orientation: nalgebra's matrix of a batch has a *column* per sample (`I x B`),
//! the transpose of the row-per-sample design matrix of statistics texts.
//!
//! By value, nalgebra's own API does the same without this module:
//! `SMatrix::from_array_storage(ArrayStorage(x))` and `m.data.0` move a batch in and out.
//!
//! ```
//! use tall_skinny::runtime::boundary;
//! use tall_skinny::runtime::nalgebra::{Matrix2x3, SMatrix, SVector};
//!
//! let batch = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]; // 3 samples of 2 inputs
//! let m: &SMatrix<f64, 2, 3> = boundary::as_matrix(&batch);
//! assert_eq!(*m, Matrix2x3::new(1.0, 3.0, 5.0, 2.0, 4.0, 6.0)); // a column per sample
//! assert!(core::ptr::eq(m.as_slice().as_ptr(), batch[0].as_ptr())); // no copy
//! assert_eq!(boundary::as_batch(m), &batch);
//!
//! let v: &SVector<f64, 2> = boundary::as_vector(&batch[1]);
//! assert_eq!(v.norm_squared(), 25.0);
//!
//! // A data set of any length as an I x n matrix view.
//! let data = vec![[1.0, 0.0]; 73];
//! let view = boundary::samples_view(&data);
//! assert_eq!(view.shape(), (2, 73));
//! assert_eq!(view.column_sum()[0], 73.0); // the sum of the samples
//! ```

use nalgebra::{
    Const, DVectorView, DVectorViewMut, Dyn, MatrixView, MatrixViewMut, SMatrix, SVector,
};

use crate::real::Real;

/// A batch `[[T; I]; B]` as the `I x B` matrix it is (a column per sample). Zero-copy.
#[inline]
pub fn as_matrix<T: Real, const I: usize, const B: usize>(x: &[[T; I]; B]) -> &SMatrix<T, I, B> {
    bytemuck::cast_ref(x)
}

/// [`as_matrix`] for writing.
#[inline]
pub fn as_matrix_mut<T: Real, const I: usize, const B: usize>(
    x: &mut [[T; I]; B],
) -> &mut SMatrix<T, I, B> {
    bytemuck::cast_mut(x)
}

/// An `I x B` matrix as the batch `[[T; I]; B]` it stores (column `j` is sample `j`; the
/// same as `&m.data.0`). Zero-copy.
#[inline]
pub fn as_batch<T: Real, const I: usize, const B: usize>(m: &SMatrix<T, I, B>) -> &[[T; I]; B] {
    bytemuck::cast_ref(m)
}

/// [`as_batch`] for writing.
#[inline]
pub fn as_batch_mut<T: Real, const I: usize, const B: usize>(
    m: &mut SMatrix<T, I, B>,
) -> &mut [[T; I]; B] {
    bytemuck::cast_mut(m)
}

/// One sample (or a parameter vector `[T; N_PARAMS]`) as an `SVector`. Zero-copy.
#[inline]
pub fn as_vector<T: Real, const N: usize>(x: &[T; N]) -> &SVector<T, N> {
    bytemuck::cast_ref(x)
}

/// [`as_vector`] for writing (for example a parameter vector updated with nalgebra's
/// arithmetic, then handed back to `set_params`).
#[inline]
pub fn as_vector_mut<T: Real, const N: usize>(x: &mut [T; N]) -> &mut SVector<T, N> {
    bytemuck::cast_mut(x)
}

/// An `SVector` as the array it stores. Zero-copy.
#[inline]
pub fn as_array<T: Real, const N: usize>(v: &SVector<T, N>) -> &[T; N] {
    bytemuck::cast_ref(v)
}

/// A data set of any number of samples as a slice of `SVector`s. Zero-copy.
#[inline]
pub fn as_vectors<T: Real, const I: usize>(xs: &[[T; I]]) -> &[SVector<T, I>] {
    bytemuck::cast_slice(xs)
}

/// A slice of `SVector`s as samples (what `forward_all`, `evaluate` and the mini-batch
/// iterator take). Zero-copy.
#[inline]
pub fn as_samples<T: Real, const I: usize>(vs: &[SVector<T, I>]) -> &[[T; I]] {
    bytemuck::cast_slice(vs)
}

/// A data set of `n` samples as an `I x n` matrix view (a column per sample). Zero-copy.
#[inline]
pub fn samples_view<T: Real, const I: usize>(xs: &[[T; I]]) -> MatrixView<'_, T, Const<I>, Dyn> {
    MatrixView::from_slice_generic(bytemuck::cast_slice(xs), Const::<I>, Dyn(xs.len()))
}

/// [`samples_view`] for writing (e.g. the outputs `forward_all` fills, standardised in
/// place).
#[inline]
pub fn samples_view_mut<T: Real, const I: usize>(
    xs: &mut [[T; I]],
) -> MatrixViewMut<'_, T, Const<I>, Dyn> {
    let n = xs.len();
    MatrixViewMut::from_slice_generic(bytemuck::cast_slice_mut(xs), Const::<I>, Dyn(n))
}

/// A flat slice (a parameter vector, a gradient) as a dynamically sized vector view, for
/// code written against `DVector`. Zero-copy; `DVector::from_column_slice` copies it into an
/// owned `DVector` where one is needed (with `alloc`).
#[inline]
pub fn slice_view<T: Real>(xs: &[T]) -> DVectorView<'_, T> {
    DVectorView::from_slice(xs, xs.len())
}

/// [`slice_view`] for writing.
#[inline]
pub fn slice_view_mut<T: Real>(xs: &mut [T]) -> DVectorViewMut<'_, T> {
    let n = xs.len();
    DVectorViewMut::from_slice(xs, n)
}
