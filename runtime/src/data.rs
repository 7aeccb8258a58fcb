//! Data sets as slices of samples: seeded splits and shuffled mini-batches of a net's fixed
//! batch size. `no_std`, no allocation (the shuffle order lives in a buffer the caller
//! provides; with the `alloc` feature [`MiniBatches::with_vec`] owns one).
//!
//! A data set is two slices of equal length: inputs (`[[T; I]]`) and one target per sample
//! (`[[T; O]]` rows, or `usize` labels for a classifier). [`shuffle_split`] shuffles both
//! in place (together) and cuts them into train / validation / test; [`MiniBatches`] draws
//! `[[T; I]; B]` / `[S; B]` batches, in a fresh seeded permutation every epoch.
//!
//! ```
//! use tall_skinny_runtime::data::{shuffle_split, MiniBatches, Remainder};
//!
//! let mut xs: Vec<[f64; 2]> = (0..10).map(|k| [k as f64, 1.0]).collect();
//! let mut ts: Vec<[f64; 1]> = (0..10).map(|k| [2.0 * k as f64]).collect();
//! let split = shuffle_split(&mut xs, &mut ts, 7, 2, 2).unwrap();
//! assert_eq!((split.train.0.len(), split.val.0.len(), split.test.0.len()), (6, 2, 2));
//!
//! let mut order = [0usize; 6];
//! let mut batches =
//!     MiniBatches::new(split.train.0, split.train.1, &mut order[..], 1, Remainder::Drop).unwrap();
//! let (x, t): ([[f64; 2]; 4], [[f64; 1]; 4]) = batches.next_batch().unwrap();
//! assert_eq!(t[0][0], 2.0 * x[0][0]); // inputs and targets stay paired
//! assert_eq!(batches.dropped_per_epoch(4), 2); // 6 = 1 * 4 + 2
//! ```

use crate::rng::SplitMix64;

/// What can go wrong building a split or a mini-batch iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataError {
    /// The inputs and the targets (or the order buffer) differ in length.
    LengthMismatch {
        /// Number of input samples.
        samples: usize,
        /// Length of the other slice.
        len: usize,
    },
    /// The data set has no samples.
    Empty,
    /// The validation and test sizes asked for leave no training sample.
    SplitTooLarge {
        /// Samples in the data set.
        samples: usize,
        /// Validation samples asked for.
        val: usize,
        /// Test samples asked for.
        test: usize,
    },
    /// With [`Remainder::Drop`], an epoch must hold at least one batch.
    FewerSamplesThanBatch {
        /// Samples in the data set.
        samples: usize,
        /// The batch size.
        batch: usize,
    },
}

impl core::fmt::Display for DataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            DataError::LengthMismatch { samples, len } => write!(
                f,
                "{samples} input samples but a slice of length {len}: the lengths must agree"
            ),
            DataError::Empty => f.write_str("the data set has no samples"),
            DataError::SplitTooLarge { samples, val, test } => write!(
                f,
                "{val} validation and {test} test samples leave none of the {samples} for training"
            ),
            DataError::FewerSamplesThanBatch { samples, batch } => write!(
                f,
                "{samples} samples cannot fill one batch of {batch} with Remainder::Drop"
            ),
        }
    }
}

impl core::error::Error for DataError {}

/// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below `n / 2^64`).
#[inline]
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Shuffles `xs` and `ts` in place with the same seeded Fisher-Yates permutation (pairs
/// stay together).
pub fn shuffle_pairs<X, S>(xs: &mut [X], ts: &mut [S], seed: u64) -> Result<(), DataError> {
    if xs.len() != ts.len() {
        return Err(DataError::LengthMismatch {
            samples: xs.len(),
            len: ts.len(),
        });
    }
    let mut rng = SplitMix64::new(seed);
    for i in (1..xs.len()).rev() {
        let j = below(&mut rng, i + 1);
        xs.swap(i, j);
        ts.swap(i, j);
    }
    Ok(())
}

/// A data set as (inputs, targets).
pub type Part<'a, X, S> = (&'a [X], &'a [S]);

/// Three disjoint parts of a shuffled data set (see [`shuffle_split`]).
#[derive(Clone, Copy, Debug)]
pub struct Split<'a, X, S> {
    /// The first `n - val - test` samples.
    pub train: Part<'a, X, S>,
    /// The next `val` samples.
    pub val: Part<'a, X, S>,
    /// The last `test` samples.
    pub test: Part<'a, X, S>,
}

/// Shuffles the data set in place ([`shuffle_pairs`] with `seed`) and cuts it into `train`
/// (the rest), `val` and `test` samples. Every sample lands in exactly one part; the same
/// seed gives the same split. At least one training sample must remain.
pub fn shuffle_split<'a, X, S>(
    xs: &'a mut [X],
    ts: &'a mut [S],
    seed: u64,
    val: usize,
    test: usize,
) -> Result<Split<'a, X, S>, DataError> {
    shuffle_pairs(xs, ts, seed)?;
    let n = xs.len();
    if n == 0 {
        return Err(DataError::Empty);
    }
    if val.saturating_add(test) >= n {
        return Err(DataError::SplitTooLarge {
            samples: n,
            val,
            test,
        });
    }
    let (xs, ts) = (&*xs, &*ts);
    let (tr, rest) = (n - val - test, n - test);
    Ok(Split {
        train: (&xs[..tr], &ts[..tr]),
        val: (&xs[tr..rest], &ts[tr..rest]),
        test: (&xs[rest..], &ts[rest..]),
    })
}

/// `round(fraction * n)` samples, for the sizes of [`shuffle_split`] (e.g.
/// `split_size(442, 0.15)` = 66). `fraction` is clamped to `[0, 1]`; NaN gives 0.
pub fn split_size(n: usize, fraction: f64) -> usize {
    let f = if fraction > 0.0 {
        fraction.min(1.0)
    } else {
        0.0
    };
    let v = f * n as f64 + 0.5;
    (v as usize).min(n)
}

/// What happens to the `n mod B` samples that do not fill an epoch's last batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remainder {
    /// Batches run on across epoch boundaries: the last batch of an epoch is completed with
    /// the first samples of the next epoch's permutation. No sample is dropped and every
    /// sample is drawn exactly once per epoch; a batch that straddles two epochs may hold
    /// one sample twice (once from each epoch).
    Carry,
    /// Every epoch yields `n / B` full batches; the `n mod B` samples at the end of its
    /// permutation (different ones each epoch) are skipped ([`MiniBatches::dropped`] counts
    /// them). Needs `n >= B`.
    Drop,
}

/// A seeded, shuffled stream of mini-batches over a data set (inputs `xs`, targets `ts`),
/// drawing a fresh permutation every epoch (SplitMix64 from `seed`: the same seed gives the
/// same batches). `Ix` is the order buffer: `&mut [usize]` of the data set's length in
/// `no_std`, or a `Vec<usize>` ([`Self::with_vec`]).
#[derive(Debug)]
pub struct MiniBatches<'a, X, S, Ix> {
    xs: &'a [X],
    ts: &'a [S],
    order: Ix,
    rng: SplitMix64,
    pos: usize,
    epoch: usize,
    dropped: usize,
    remainder: Remainder,
}

impl<'a, X: Copy, S: Copy, Ix: AsRef<[usize]> + AsMut<[usize]>> MiniBatches<'a, X, S, Ix> {
    /// A stream over `xs` / `ts` with the order buffer `order` (of their length; its
    /// contents are overwritten). Errors on lengths that differ or an empty data set.
    pub fn new(
        xs: &'a [X],
        ts: &'a [S],
        mut order: Ix,
        seed: u64,
        remainder: Remainder,
    ) -> Result<Self, DataError> {
        for len in [ts.len(), order.as_ref().len()] {
            if len != xs.len() {
                return Err(DataError::LengthMismatch {
                    samples: xs.len(),
                    len,
                });
            }
        }
        if xs.is_empty() {
            return Err(DataError::Empty);
        }
        for (k, o) in order.as_mut().iter_mut().enumerate() {
            *o = k;
        }
        let mut s = MiniBatches {
            xs,
            ts,
            order,
            rng: SplitMix64::new(seed),
            pos: 0,
            epoch: 0,
            dropped: 0,
            remainder,
        };
        s.shuffle();
        Ok(s)
    }

    fn shuffle(&mut self) {
        let order = self.order.as_mut();
        for i in (1..order.len()).rev() {
            let j = below(&mut self.rng, i + 1);
            order.swap(i, j);
        }
    }

    fn next_epoch(&mut self) {
        self.epoch += 1;
        self.pos = 0;
        self.shuffle();
    }

    /// The data set the batches are drawn from (inputs, targets).
    pub fn data(&self) -> Part<'a, X, S> {
        (self.xs, self.ts)
    }

    /// Samples in the data set.
    pub fn len(&self) -> usize {
        self.xs.len()
    }

    /// Never true (an empty data set is refused).
    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }

    /// Epochs completed (every sample drawn, or dropped, once per epoch).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Samples skipped so far ([`Remainder::Drop`]; always 0 with [`Remainder::Carry`]).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Samples skipped per epoch at batch size `batch`: `n mod batch` with
    /// [`Remainder::Drop`], 0 with [`Remainder::Carry`].
    pub fn dropped_per_epoch(&self, batch: usize) -> usize {
        match self.remainder {
            Remainder::Drop => self.len() % batch.max(1),
            Remainder::Carry => 0,
        }
    }

    /// Batches per epoch at batch size `batch` (`n / batch` with [`Remainder::Drop`],
    /// `n / batch` on average, as a fraction rounded up, with [`Remainder::Carry`]).
    pub fn batches_per_epoch(&self, batch: usize) -> usize {
        match self.remainder {
            Remainder::Drop => self.len() / batch.max(1),
            Remainder::Carry => self.len().div_ceil(batch.max(1)),
        }
    }

    /// Fills `x` and `t` with the next batch of `B` samples (see [`Remainder`]). Returns
    /// true when this batch completed an epoch. With [`Remainder::Drop`] and fewer than `B`
    /// samples, returns [`DataError::FewerSamplesThanBatch`].
    pub fn fill<const B: usize>(
        &mut self,
        x: &mut [X; B],
        t: &mut [S; B],
    ) -> Result<bool, DataError> {
        let n = self.len();
        if self.remainder == Remainder::Drop && n < B {
            return Err(DataError::FewerSamplesThanBatch {
                samples: n,
                batch: B,
            });
        }
        let mut ended = false;
        for k in 0..B {
            if self.pos == n {
                self.next_epoch();
            }
            let i = self.order.as_ref()[self.pos];
            x[k] = self.xs[i];
            t[k] = self.ts[i];
            self.pos += 1;
            if self.pos == n {
                ended = true;
            }
        }
        if self.remainder == Remainder::Drop && n - self.pos < B {
            self.dropped += n - self.pos;
            if self.pos < n {
                ended = true;
            }
            self.next_epoch();
        }
        Ok(ended)
    }

    /// The next batch by value (see [`Self::fill`], whose errors it returns).
    pub fn next_batch<const B: usize>(&mut self) -> Result<([X; B], [S; B]), DataError> {
        let mut x = [self.xs[0]; B];
        let mut t = [self.ts[0]; B];
        self.fill(&mut x, &mut t)?;
        Ok((x, t))
    }
}

#[cfg(feature = "alloc")]
impl<'a, X: Copy, S: Copy> MiniBatches<'a, X, S, alloc::vec::Vec<usize>> {
    /// [`Self::new`] with an order buffer of its own.
    pub fn with_vec(
        xs: &'a [X],
        ts: &'a [S],
        seed: u64,
        remainder: Remainder,
    ) -> Result<Self, DataError> {
        Self::new(xs, ts, alloc::vec![0; xs.len()], seed, remainder)
    }
}
