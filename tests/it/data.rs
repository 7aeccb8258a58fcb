//! Seeded splits and mini-batches: every sample lands in exactly one part, inputs and
//! targets stay paired, each epoch is a permutation, and the remainder is treated as
//! documented (`Carry`: no sample lost; `Drop`: `n mod B` skipped per epoch, counted).

use tall_skinny::runtime::data::{
    shuffle_pairs, shuffle_split, split_size, DataError, MiniBatches, Remainder,
};

/// Samples `k` tagged by their index: input `[k, -k]`, target `3k`.
fn data(n: usize) -> (Vec<[f64; 2]>, Vec<[f64; 1]>) {
    (
        (0..n).map(|k| [k as f64, -(k as f64)]).collect(),
        (0..n).map(|k| [3.0 * k as f64]).collect(),
    )
}

fn id(x: &[f64; 2]) -> usize {
    x[0] as usize
}

#[test]
fn split_is_a_seeded_partition() {
    let (mut xs, mut ts) = data(103);
    let s = shuffle_split(&mut xs, &mut ts, 42, 15, 10).unwrap();
    assert_eq!(
        (s.train.0.len(), s.val.0.len(), s.test.0.len()),
        (78, 15, 10)
    );
    let mut seen = [0u32; 103];
    for part in [s.train, s.val, s.test] {
        for (x, t) in part.0.iter().zip(part.1) {
            assert_eq!(t[0], 3.0 * x[0]);
            assert_eq!(x[1], -x[0]);
            seen[id(x)] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1));
    // Shuffled (103! orders; identity has probability ~1e-164) and deterministic.
    let order: Vec<usize> = s.train.0.iter().map(id).collect();
    assert_ne!(order, (0..78).collect::<Vec<_>>());
    let (mut xs2, mut ts2) = data(103);
    let s2 = shuffle_split(&mut xs2, &mut ts2, 42, 15, 10).unwrap();
    assert_eq!(order, s2.train.0.iter().map(id).collect::<Vec<_>>());
    let (mut xs3, mut ts3) = data(103);
    let s3 = shuffle_split(&mut xs3, &mut ts3, 43, 15, 10).unwrap();
    assert_ne!(order, s3.train.0.iter().map(id).collect::<Vec<_>>());
}

#[test]
fn split_errors_and_sizes() {
    let (mut xs, mut ts) = data(10);
    assert_eq!(
        shuffle_split(&mut xs, &mut ts, 1, 5, 5).unwrap_err(),
        DataError::SplitTooLarge {
            samples: 10,
            val: 5,
            test: 5
        }
    );
    assert_eq!(
        shuffle_split(&mut xs, &mut ts[..9], 1, 1, 1).unwrap_err(),
        DataError::LengthMismatch {
            samples: 10,
            len: 9
        }
    );
    let (mut e, mut f): (Vec<[f64; 2]>, Vec<[f64; 1]>) = (vec![], vec![]);
    assert_eq!(
        shuffle_split(&mut e, &mut f, 1, 0, 0).unwrap_err(),
        DataError::Empty
    );
    assert_eq!(split_size(442, 0.15), 66);
    assert_eq!(split_size(10, f64::NAN), 0);
    assert_eq!(split_size(10, 2.0), 10);
    assert!(shuffle_pairs(&mut xs, &mut ts[..3], 0).is_err());
}

#[test]
fn carry_draws_every_sample_once_per_epoch_across_batches() {
    let (xs, ts) = data(23);
    let mut order = [0usize; 23];
    let mut mb = MiniBatches::new(&xs, &ts, &mut order[..], 5, Remainder::Carry).unwrap();
    assert_eq!(mb.batches_per_epoch(4), 6);
    // 23 * 4 = 92 = 23 batches of 4: exactly four epochs, no sample lost.
    let mut stream = Vec::new();
    for _ in 0..23 {
        let (x, t): ([[f64; 2]; 4], [[f64; 1]; 4]) = mb.next_batch().unwrap();
        for (x, t) in x.iter().zip(&t) {
            assert_eq!(t[0], 3.0 * x[0]);
            stream.push(id(x));
        }
    }
    assert_eq!(mb.dropped(), 0);
    assert_eq!(
        mb.epoch(),
        3,
        "the fourth epoch's permutation is drawn lazily"
    );
    let mut epochs = Vec::new();
    for e in stream.chunks(23) {
        let mut s = e.to_vec();
        s.sort();
        assert_eq!(s, (0..23).collect::<Vec<_>>());
        epochs.push(e.to_vec());
    }
    assert_ne!(epochs[0], epochs[1], "each epoch reshuffles");
}

#[test]
fn drop_skips_the_remainder_and_counts_it() {
    let (xs, ts) = data(23);
    let mut mb = MiniBatches::with_vec(&xs, &ts, 9, Remainder::Drop).unwrap();
    assert_eq!(mb.batches_per_epoch(4), 5);
    assert_eq!(mb.dropped_per_epoch(4), 3);
    let mut x = [[0.0; 2]; 4];
    let mut t = [[0.0; 1]; 4];
    let mut epoch = Vec::new();
    let mut skipped_ids = Vec::new();
    for b in 0..5 {
        let ended = mb.fill(&mut x, &mut t).unwrap();
        assert_eq!(ended, b == 4);
        epoch.extend(x.iter().map(id));
    }
    assert_eq!(mb.epoch(), 1);
    assert_eq!(mb.dropped(), 3);
    let mut s = epoch.clone();
    s.sort();
    s.dedup();
    assert_eq!(s.len(), 20, "no repeats within an epoch");
    for k in 0..23 {
        if !epoch.contains(&k) {
            skipped_ids.push(k);
        }
    }
    assert_eq!(skipped_ids.len(), 3);
    // Over many epochs every sample is drawn (the skipped ones differ per epoch).
    let mut count = [0usize; 23];
    for _ in 0..200 {
        mb.fill(&mut x, &mut t).unwrap();
        for v in &x {
            count[id(v)] += 1;
        }
    }
    assert_eq!(mb.dropped(), 3 * mb.epoch());
    assert!(count.iter().all(|&c| c > 0));
}

#[test]
fn same_seed_same_batches_and_bad_arguments() {
    let (xs, ts) = data(10);
    let mut a = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
    let mut b = MiniBatches::with_vec(&xs, &ts, 3, Remainder::Carry).unwrap();
    for _ in 0..7 {
        let (xa, _): ([[f64; 2]; 3], [[f64; 1]; 3]) = a.next_batch().unwrap();
        let (xb, _): ([[f64; 2]; 3], [[f64; 1]; 3]) = b.next_batch().unwrap();
        assert_eq!(xa, xb);
    }
    let mut short = [0usize; 9];
    assert_eq!(
        MiniBatches::new(&xs, &ts, &mut short[..], 0, Remainder::Carry).unwrap_err(),
        DataError::LengthMismatch {
            samples: 10,
            len: 9
        }
    );
    let mut d = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Drop).unwrap();
    assert_eq!(
        d.next_batch::<16>().unwrap_err(),
        DataError::FewerSamplesThanBatch {
            samples: 10,
            batch: 16
        }
    );
    // Carry with fewer samples than the batch: whole epochs fill the batch.
    let mut c = MiniBatches::with_vec(&xs, &ts, 0, Remainder::Carry).unwrap();
    let (x, _) = c.next_batch::<25>().unwrap();
    let mut count = [0usize; 10];
    for v in &x {
        count[id(v)] += 1;
    }
    assert!(count.iter().all(|&k| k == 2 || k == 3));
    assert_eq!(c.epoch(), 2);
}
