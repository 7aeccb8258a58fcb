//! Saving and loading a network's parameters: a checked byte record, usable without `std`
//! and without allocation.
//!
//! Every generated network has `to_bytes(&self, out: &mut [u8])`, `from_bytes(&[u8])`,
//! `load_bytes(&mut self, &[u8])` and the constants `ARCHITECTURE`, `ARCH_FINGERPRINT` and
//! `RECORD_BYTES`, and implements [`Record`] (which adds `to_vec`, `save` and `load` with
//! the `alloc` / `std` features). The format and every check are written once, here.
//!
//! # Format (version 1)
//!
//! All integers and parameters little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | `0..8` | magic [`MAGIC`], `b"TALLSKNY"` |
//! | `8..12` | format version (`u32`, [`VERSION`]) |
//! | `12..16` | scalar tag (`u32`): the byte width of the stored parameters, 4 (`f32`) or 8 (`f64`) |
//! | `16..24` | architecture fingerprint (`u64`, [`architecture_fingerprint`] of the net's `ARCHITECTURE`) |
//! | `24..32` | number of parameters `N` (`u64`) |
//! | `32..32 + N S` | the flat parameter vector (the layout of the net's `params`), `S` bytes each |
//! | last 8 | [`checksum`] of the parameter bytes (`u64`, FNV-1a 64) |
//!
//! so a record is [`record_bytes`]`(N, S)` = `40 + N S` bytes.
//!
//! The architecture fingerprint is computed at compile time from the declaration: the
//! layer kinds, widths and activations in order and the loss (consecutive identical layers
//! count the same whether declared as an array or one by one), but neither the batch nor
//! the scalar. So parameters trained by an `f64` net at batch 32 load into an `f32` net of
//! the same layers declared at batch 1 (the deploy form): `f32` records widen exactly,
//! `f64` records round with `as f32` (an entry beyond the `f32` range is an error).
//!
//! # Checks
//!
//! Loading checks, in this order, and stops at the first failure with a [`RecordError`]:
//! the length covers a header, the magic, the version, the scalar tag, the architecture
//! fingerprint, the parameter count, the exact length, the checksum, then every parameter
//! (finite, and finite after conversion to the net's scalar). Only then are the
//! parameters written: a failed load leaves the network exactly as it was.
//!
//! ```
//! use tall_skinny::prelude::*;
//! use tall_skinny::runtime::record::RecordError;
//!
//! #[tall_skinny_net(batch = 8)]
//! struct Train {
//!     inp: Dense<2, 6, Tanh>,
//!     body: [Residual<6, Tanh>; 3],
//!     head: Dense<6, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! // The same layers in f32 at batch 1: the deploy form.
//! #[tall_skinny_net(batch = 1, scalar = f32)]
//! struct Deploy {
//!     inp: Dense<2, 6, Tanh>,
//!     body: [Residual<6, Tanh>; 3],
//!     head: Dense<6, 1, Identity>,
//!     loss: Mse<1>,
//! }
//!
//! let net = Train::init(3);
//! let mut bytes = [0u8; Train::RECORD_BYTES];
//! net.to_bytes(&mut bytes)?;
//!
//! let small = Deploy::from_bytes(&bytes)?;
//! let (y64, y32) = (net.forward_one(&[0.3, -0.7])?, small.forward_one(&[0.3, -0.7])?);
//! assert!((y64[0] - f64::from(y32[0])).abs() < 1e-5);
//!
//! // One flipped bit in the parameters: the checksum catches it, nothing is loaded.
//! bytes[40] ^= 1;
//! let mut other = Deploy::init(9);
//! let before = other.clone();
//! assert!(matches!(other.load_bytes(&bytes), Err(RecordError::ChecksumMismatch { .. })));
//! assert_eq!(other.forward_one(&[0.3, -0.7])?, before.forward_one(&[0.3, -0.7])?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::chain::{ChainMut, Params};
use crate::real::Real;

/// The first 8 bytes of every record.
pub const MAGIC: [u8; 8] = *b"TALLSKNY";
/// The format version this runtime writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the parameters: magic, version, scalar tag, fingerprint, count.
pub const HEADER_BYTES: usize = 32;
/// Bytes after the parameters: the checksum.
pub const TRAILER_BYTES: usize = 8;

/// The length of a record of `n_params` parameters of `scalar_bytes` bytes each (4 for
/// `f32`, 8 for `f64`).
pub const fn record_bytes(n_params: usize, scalar_bytes: usize) -> usize {
    HEADER_BYTES + n_params * scalar_bytes + TRAILER_BYTES
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The architecture fingerprint of a net's `ARCHITECTURE` description: FNV-1a 64 of its
/// bytes. Evaluated at compile time for every generated net (`ARCH_FINGERPRINT`).
pub const fn architecture_fingerprint(description: &str) -> u64 {
    let bytes = description.as_bytes();
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// The checksum of a record's parameter bytes: FNV-1a 64. Every step (`xor` a byte, then
/// multiply by an odd constant) is a bijection of the state, so any change of a single
/// byte always changes the checksum.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// The scalar type of the parameters stored in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `f32`, tag 4.
    F32,
    /// `f64`, tag 8.
    F64,
}

impl Scalar {
    /// The scalar of `T` (`f32` or `f64`).
    pub fn of<T: Real>() -> Self {
        if core::mem::size_of::<T>() == 4 {
            Scalar::F32
        } else {
            Scalar::F64
        }
    }

    /// Bytes per parameter (the tag stored in a record).
    pub const fn bytes(self) -> usize {
        match self {
            Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }

    fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            4 => Some(Scalar::F32),
            8 => Some(Scalar::F64),
            _ => None,
        }
    }

    /// `"f32"` or `"f64"`.
    pub const fn name(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
        }
    }
}

/// The header of a record, as read by [`read_header`] (checked: magic, version and scalar
/// tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The format version.
    pub version: u32,
    /// The scalar of the stored parameters.
    pub scalar: Scalar,
    /// The architecture fingerprint of the net that wrote it.
    pub architecture: u64,
    /// The number of parameters.
    pub n_params: u64,
}

/// Why a record could not be written or loaded. Loading stops at the first of these and
/// leaves the network unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RecordError {
    /// The output buffer of `to_bytes` is shorter than `RECORD_BYTES`.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The record's length is not what its header (or, shorter than a header, the net)
    /// implies: truncated, or with bytes appended.
    WrongLength {
        /// The length a complete record has.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The first 8 bytes are not [`MAGIC`]: not a tall-skinny record.
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this runtime does not read.
    UnsupportedVersion {
        /// The version in the record.
        found: u32,
        /// The version this runtime reads.
        supported: u32,
    },
    /// A scalar tag other than 4 (`f32`) or 8 (`f64`).
    UnknownScalar {
        /// The tag in the record.
        tag: u32,
    },
    /// The record was written by a net of another architecture (other layers, widths,
    /// activations or loss).
    ArchitectureMismatch {
        /// The fingerprint of the net loading it (`ARCH_FINGERPRINT`).
        expected: u64,
        /// The fingerprint in the record.
        found: u64,
    },
    /// The architecture fingerprint matches but the parameter count does not (a corrupt
    /// header).
    ParameterCount {
        /// The net's `N_PARAMS`.
        expected: usize,
        /// The count in the record.
        found: u64,
    },
    /// The parameter bytes do not match the stored checksum: the record is corrupt.
    ChecksumMismatch {
        /// The checksum stored in the record.
        stored: u64,
        /// The checksum of the parameter bytes found.
        computed: u64,
    },
    /// A stored parameter is NaN or infinite (index into the flat parameter vector).
    NonFiniteParameter {
        /// Index into the flat parameter vector.
        index: usize,
    },
    /// A finite `f64` parameter is beyond the range of the `f32` net loading it.
    F32Overflow {
        /// Index into the flat parameter vector.
        index: usize,
        /// The stored value.
        value: f64,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordError::BufferTooSmall { needed, len } => write!(
                f,
                "the output buffer holds {len} bytes but the record needs {needed} (RECORD_BYTES)"
            ),
            RecordError::WrongLength { expected, found } => write!(
                f,
                "the record is {found} bytes long but a complete record is {expected} bytes \
                 (truncated or with bytes appended)"
            ),
            RecordError::BadMagic { found } => write!(
                f,
                "not a tall-skinny record: the first 8 bytes are {found:02x?}, not \"TALLSKNY\""
            ),
            RecordError::UnsupportedVersion { found, supported } => write!(
                f,
                "record format version {found} is not supported (this runtime reads version {supported})"
            ),
            RecordError::UnknownScalar { tag } => write!(
                f,
                "unknown scalar tag {tag} (4 is f32, 8 is f64)"
            ),
            RecordError::ArchitectureMismatch { expected, found } => write!(
                f,
                "the record was written by another architecture: its fingerprint is \
                 {found:#018x}, this net's is {expected:#018x}"
            ),
            RecordError::ParameterCount { expected, found } => write!(
                f,
                "the record holds {found} parameters but the net has {expected}"
            ),
            RecordError::ChecksumMismatch { stored, computed } => write!(
                f,
                "the record is corrupt: stored checksum {stored:#018x}, parameters hash to {computed:#018x}"
            ),
            RecordError::NonFiniteParameter { index } => {
                write!(f, "stored parameter {index} is not finite")
            }
            RecordError::F32Overflow { index, value } => write!(
                f,
                "stored parameter {index} = {value:e} is beyond the range of f32"
            ),
        }
    }
}

impl core::error::Error for RecordError {}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads and checks the header of a record (length at least [`HEADER_BYTES`], magic,
/// version, scalar tag), without looking at the parameters.
pub fn read_header(bytes: &[u8]) -> Result<Header, RecordError> {
    if bytes.len() < HEADER_BYTES {
        return Err(RecordError::WrongLength {
            expected: HEADER_BYTES + TRAILER_BYTES,
            found: bytes.len(),
        });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[0..8]);
    if magic != MAGIC {
        return Err(RecordError::BadMagic { found: magic });
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(RecordError::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let tag = u32_at(bytes, 12);
    let scalar = Scalar::from_tag(tag).ok_or(RecordError::UnknownScalar { tag })?;
    Ok(Header {
        version,
        scalar,
        architecture: u64_at(bytes, 16),
        n_params: u64_at(bytes, 24),
    })
}

/// Writes the record of `layers` (architecture fingerprint `arch`, `n` parameters) to the
/// front of `out`; returns its length. Called by the generated `to_bytes`.
pub fn write_record<T: Real, Ls: Params<T>>(
    layers: &Ls,
    arch: u64,
    n: usize,
    out: &mut [u8],
) -> Result<usize, RecordError> {
    let scalar = Scalar::of::<T>();
    let needed = record_bytes(n, scalar.bytes());
    if out.len() < needed {
        return Err(RecordError::BufferTooSmall {
            needed,
            len: out.len(),
        });
    }
    let out = &mut out[..needed];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(scalar.bytes() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&arch.to_le_bytes());
    out[24..32].copy_from_slice(&(n as u64).to_le_bytes());
    let (payload, trailer) = out[HEADER_BYTES..].split_at_mut(n * scalar.bytes());
    let mut at = 0;
    layers.each_param(&mut |v: T| {
        match scalar {
            // Exact: `T` is `f32` here.
            Scalar::F32 => payload[at..at + 4].copy_from_slice(&(v.to_f64() as f32).to_le_bytes()),
            Scalar::F64 => payload[at..at + 8].copy_from_slice(&v.to_f64().to_le_bytes()),
        }
        at += scalar.bytes();
    });
    debug_assert_eq!(at, payload.len());
    trailer.copy_from_slice(&checksum(payload).to_le_bytes());
    Ok(needed)
}

/// Stored parameter `index` of a payload of scalar `scalar`, widened to `f64` (exact).
#[inline]
fn param_at(payload: &[u8], scalar: Scalar, index: usize) -> f64 {
    match scalar {
        Scalar::F32 => f64::from(f32::from_bits(u32_at(payload, 4 * index))),
        Scalar::F64 => f64::from_bits(u64_at(payload, 8 * index)),
    }
}

/// Checks a whole record for a net of architecture `arch` with `n` parameters of scalar
/// `T`; returns the scalar and the parameter bytes. Nothing is written.
pub fn check_record<T: Real>(
    arch: u64,
    n: usize,
    bytes: &[u8],
) -> Result<(Scalar, &[u8]), RecordError> {
    if bytes.len() < HEADER_BYTES {
        return Err(RecordError::WrongLength {
            expected: record_bytes(n, Scalar::of::<T>().bytes()),
            found: bytes.len(),
        });
    }
    let header = read_header(bytes)?;
    if header.architecture != arch {
        return Err(RecordError::ArchitectureMismatch {
            expected: arch,
            found: header.architecture,
        });
    }
    if header.n_params != n as u64 {
        return Err(RecordError::ParameterCount {
            expected: n,
            found: header.n_params,
        });
    }
    let expected = record_bytes(n, header.scalar.bytes());
    if bytes.len() != expected {
        return Err(RecordError::WrongLength {
            expected,
            found: bytes.len(),
        });
    }
    let (payload, trailer) = bytes[HEADER_BYTES..].split_at(n * header.scalar.bytes());
    let (stored, computed) = (u64_at(trailer, 0), checksum(payload));
    if stored != computed {
        return Err(RecordError::ChecksumMismatch { stored, computed });
    }
    for index in 0..n {
        let value = param_at(payload, header.scalar, index);
        if !value.is_finite() {
            return Err(RecordError::NonFiniteParameter { index });
        }
        if !T::c(value).finite() {
            return Err(RecordError::F32Overflow { index, value });
        }
    }
    Ok((header.scalar, payload))
}

/// Checks the record `bytes` completely (see [`check_record`]), then sets the parameters of
/// `layers` from it; on any error nothing is written. Called by the generated `load_bytes`.
pub fn read_record<T: Real, Ls: ChainMut<T>>(
    mut layers: Ls,
    arch: u64,
    n: usize,
    bytes: &[u8],
) -> Result<(), RecordError> {
    let (scalar, payload) = check_record::<T>(arch, n, bytes)?;
    let mut index = 0;
    layers.fill_params(&mut || {
        let v = T::c(param_at(payload, scalar, index));
        index += 1;
        v
    });
    debug_assert_eq!(index, n);
    Ok(())
}

/// A network whose parameters can be saved and loaded as a checked byte record (see the
/// [module docs](self) for the format). Implemented by every generated network, whose
/// inherent `to_bytes` / `load_bytes` / `from_bytes` do the same without the import.
///
/// ```
/// use tall_skinny::prelude::*;
///
/// #[tall_skinny_net(batch = 4)]
/// struct Net {
///     inp: Dense<1, 4, Tanh>,
///     head: Dense<4, 1, Identity>,
///     loss: Mse<1>,
/// }
///
/// fn roundtrip<N: Record>(net: &N, into: &mut N) -> Result<(), RecordError> {
///     let mut buf = [0u8; 1024];
///     let len = net.to_bytes(&mut buf)?;
///     assert_eq!(len, N::RECORD_BYTES);
///     into.load_bytes(&buf[..len])
/// }
///
/// let (a, mut b) = (Net::init(1), Net::ZERO);
/// roundtrip(&a, &mut b)?;
/// assert_eq!(a.forward(&[[0.5]; 4])?, b.forward(&[[0.5]; 4])?);
/// // With `std`: `a.save(path)?` and `b.load(path)?` (a file holding the same bytes).
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Record {
    /// The net's scalar.
    type Scalar: Real;
    /// The description the architecture fingerprint is computed from: layer kinds, widths,
    /// activations and the loss (no batch, no scalar).
    const ARCHITECTURE: &'static str;
    /// [`architecture_fingerprint`] of [`Self::ARCHITECTURE`].
    const ARCH_FINGERPRINT: u64;
    /// The length of this net's records.
    const RECORD_BYTES: usize;

    /// Writes the record of the parameters to the front of `out` (at least
    /// `RECORD_BYTES` long); returns its length.
    fn to_bytes(&self, out: &mut [u8]) -> Result<usize, RecordError>;

    /// Sets the parameters from a record, after checking all of it; on an error the net is
    /// unchanged.
    fn load_bytes(&mut self, bytes: &[u8]) -> Result<(), RecordError>;

    /// The record as a vector of `RECORD_BYTES` bytes.
    #[cfg(feature = "alloc")]
    fn to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec![0u8; Self::RECORD_BYTES];
        let len = self
            .to_bytes(&mut out)
            .expect("the buffer is RECORD_BYTES long");
        out.truncate(len);
        out
    }

    /// Writes the record to the file `path` (created or truncated).
    #[cfg(feature = "std")]
    fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), FileError> {
        std::fs::write(path, self.to_vec()).map_err(FileError::Io)
    }

    /// Sets the parameters from the record in the file `path`, after checking all of it; on
    /// an error the net is unchanged.
    #[cfg(feature = "std")]
    fn load(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), FileError> {
        let bytes = std::fs::read(path).map_err(FileError::Io)?;
        self.load_bytes(&bytes).map_err(FileError::Record)
    }
}

/// Why [`Record::save`] or [`Record::load`] failed.
#[cfg(feature = "std")]
#[derive(Debug)]
pub enum FileError {
    /// Reading or writing the file failed.
    Io(std::io::Error),
    /// The file is not a valid record for this net.
    Record(RecordError),
}

#[cfg(feature = "std")]
impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "record file: {e}"),
            FileError::Record(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io(e) => Some(e),
            FileError::Record(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_published_test_vectors() {
        // FNV-1a 64 of "" and "a" (Fowler, Noll, Vo: the reference test vectors).
        assert_eq!(checksum(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(checksum(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(architecture_fingerprint("foobar"), checksum(b"foobar"));
    }

    #[test]
    fn every_single_byte_change_changes_the_checksum() {
        let base: [u8; 64] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let c = checksum(&base);
        for i in 0..base.len() {
            for d in 1..=255u8 {
                let mut b = base;
                b[i] ^= d;
                assert_ne!(checksum(&b), c, "byte {i}, xor {d}");
            }
        }
    }
}
