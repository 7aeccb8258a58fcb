//! Dense kernels on the small fixed-size matrices of one stage: products ([`kernels`]), the
//! symmetric-indefinite `L D L'` with its inertia ([`ldlt`]), the thin QR of the stage inputs
//! ([`qr`]) and Cholesky ([`cholesky`]).

pub mod cholesky;
pub mod kernels;
pub mod ldlt;
pub mod qr;
