//! The checked byte record (`to_bytes` / `from_bytes` / `load_bytes`, `save` / `load`):
//! the bytes decoded by hand against the documented layout (an independent FNV-1a and
//! little-endian reader written here), bit-exact round trips, the f64 -> f32 conversion
//! against `as f32`, and every error path, each followed by a check that the net is
//! unchanged.

use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 4)]
struct Train {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

/// The deploy form: same layers, f32, batch 1.
#[tall_skinny_net(batch = 1, scalar = f32)]
struct Deploy {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

/// Same layers, f64, batch 7, the residual stages declared one by one, other field names.
#[tall_skinny_net(batch = 7)]
struct Unrolled {
    first: Dense<3, 6, Tanh>,
    r1: Residual<6, Tanh>,
    r2: Residual<6, Tanh>,
    r3: Residual<6, Tanh>,
    last: Dense<6, 2, Identity>,
    l: Mse<2>,
}

/// Same sizes (same `N_PARAMS`), another activation.
#[tall_skinny_net(batch = 4)]
struct OtherAct {
    inp: Dense<3, 6, Sin>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

/// Same sizes and activations, another loss.
#[tall_skinny_net(batch = 4)]
struct OtherLoss {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 3],
    head: Dense<6, 2, Identity>,
    loss: SoftmaxCrossEntropy<2>,
}

/// One residual stage more.
#[tall_skinny_net(batch = 4)]
struct Deeper {
    inp: Dense<3, 6, Tanh>,
    body: [Residual<6, Tanh>; 4],
    head: Dense<6, 2, Identity>,
    loss: Mse<2>,
}

const N: usize = Train::N_PARAMS;

/// FNV-1a 64, written from its definition (offset basis 14695981039346656037, prime
/// 1099511628211).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 14695981039346656037;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(1099511628211);
    }
    h
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap())
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap())
}

/// Recomputes the trailer after an edit of the payload (a record that passes the checksum).
fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 8;
    let c = fnv1a(&bytes[32..end]);
    bytes[end..].copy_from_slice(&c.to_le_bytes());
}

fn trained() -> Train {
    // Parameters with a spread of magnitudes and full mantissas, not just the init.
    let mut net = Train::init(11);
    let mut p = [0.0; N];
    net.params(&mut p);
    for (k, v) in p.iter_mut().enumerate() {
        *v += (k as f64 * 0.7311).sin() * 1e-3 + 1e-9 * k as f64;
    }
    net.set_params(&p).unwrap();
    net
}

fn record(net: &Train) -> Vec<u8> {
    let mut out = vec![0u8; Train::RECORD_BYTES];
    assert_eq!(net.to_bytes(&mut out).unwrap(), Train::RECORD_BYTES);
    out
}

fn params_f32(net: &Deploy) -> [f32; N] {
    let mut p = [0.0f32; N];
    net.params(&mut p);
    p
}

fn params_f64(net: &Train) -> [f64; N] {
    let mut p = [0.0; N];
    net.params(&mut p);
    p
}

#[test]
fn the_bytes_follow_the_documented_layout() {
    let net = trained();
    let bytes = record(&net);
    assert_eq!(bytes.len(), 40 + 8 * N);
    assert_eq!(&bytes[0..8], b"TALLSKNY");
    assert_eq!(le32(&bytes[8..12]), 1, "version");
    assert_eq!(le32(&bytes[12..16]), 8, "scalar tag of f64");
    assert_eq!(le64(&bytes[16..24]), Train::ARCH_FINGERPRINT);
    assert_eq!(le64(&bytes[24..32]), N as u64);
    let p = params_f64(&net);
    for (k, chunk) in bytes[32..32 + 8 * N].chunks_exact(8).enumerate() {
        assert_eq!(le64(chunk), p[k].to_bits(), "parameter {k}");
    }
    assert_eq!(le64(&bytes[32 + 8 * N..]), fnv1a(&bytes[32..32 + 8 * N]));

    let small = Deploy::from_bytes(&bytes).unwrap();
    let mut b32 = vec![0u8; Deploy::RECORD_BYTES];
    small.to_bytes(&mut b32).unwrap();
    assert_eq!(b32.len(), 40 + 4 * N);
    assert_eq!(le32(&b32[12..16]), 4, "scalar tag of f32");
    assert_eq!(le64(&b32[16..24]), Train::ARCH_FINGERPRINT);
    let q = params_f32(&small);
    for (k, chunk) in b32[32..32 + 4 * N].chunks_exact(4).enumerate() {
        assert_eq!(le32(chunk), q[k].to_bits(), "parameter {k}");
    }
    assert_eq!(le64(&b32[32 + 4 * N..]), fnv1a(&b32[32..32 + 4 * N]));
}

#[test]
fn the_fingerprint_ignores_batch_scalar_field_names_and_array_form() {
    assert_eq!(
        Train::ARCHITECTURE,
        "Dense<3, 6, Tanh> -> [Residual<6, Tanh>; 3] -> Dense<6, 2, Identity> -> Mse<2>"
    );
    assert_eq!(Deploy::ARCHITECTURE, Train::ARCHITECTURE);
    assert_eq!(Unrolled::ARCHITECTURE, Train::ARCHITECTURE);
    assert_eq!(Deploy::ARCH_FINGERPRINT, Train::ARCH_FINGERPRINT);
    assert_eq!(
        Train::ARCH_FINGERPRINT,
        fnv1a(Train::ARCHITECTURE.as_bytes())
    );
    for other in [
        OtherAct::ARCH_FINGERPRINT,
        OtherLoss::ARCH_FINGERPRINT,
        Deeper::ARCH_FINGERPRINT,
    ] {
        assert_ne!(other, Train::ARCH_FINGERPRINT);
    }
    assert_eq!(OtherAct::N_PARAMS, N);
    assert_eq!(OtherLoss::N_PARAMS, N);
    assert_eq!(Train::RECORD_BYTES, 40 + 8 * N);
    assert_eq!(Deploy::RECORD_BYTES, 40 + 4 * N);
}

#[test]
fn f64_round_trip_is_bit_exact_at_any_batch() {
    let net = trained();
    let bytes = record(&net);
    let back = Train::from_bytes(&bytes).unwrap();
    let (p, q) = (params_f64(&net), params_f64(&back));
    assert!(p.iter().zip(&q).all(|(a, b)| a.to_bits() == b.to_bits()));

    // Batch-only (and declaration-form) difference: loads, same numbers.
    let un = Unrolled::from_bytes(&bytes).unwrap();
    let mut r = [0.0; N];
    un.params(&mut r);
    assert!(p.iter().zip(&r).all(|(a, b)| a.to_bits() == b.to_bits()));
    let x = [0.3, -1.2, 0.8];
    assert_eq!(un.forward_one(&x).unwrap(), net.forward_one(&x).unwrap());
}

#[test]
fn f64_to_f32_equals_as_f32_and_f32_widens_exactly() {
    let net = trained();
    let small = Deploy::from_bytes(&record(&net)).unwrap();
    let (p, q) = (params_f64(&net), params_f32(&small));
    for k in 0..N {
        assert_eq!(q[k].to_bits(), (p[k] as f32).to_bits(), "parameter {k}");
    }
    // And back: the f32 record into an f64 net is the exact widening.
    let mut b32 = vec![0u8; Deploy::RECORD_BYTES];
    small.to_bytes(&mut b32).unwrap();
    let wide = Train::from_bytes(&b32).unwrap();
    let w = params_f64(&wide);
    for k in 0..N {
        assert_eq!(w[k], f64::from(q[k]), "parameter {k}");
    }
}

/// Every load of `bytes` into a fresh net and an initialised one fails with `want(err)`
/// true and leaves the parameters bit-identical.
fn rejects(bytes: &[u8], want: impl Fn(&RecordError) -> bool) {
    let mut net = Train::init(5);
    let before = params_f64(&net);
    let err = net.load_bytes(bytes).unwrap_err();
    assert!(want(&err), "unexpected error {err:?}");
    let after = params_f64(&net);
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(!err.to_string().is_empty());

    let mut small = Deploy::init(5);
    let before = params_f32(&small);
    assert!(small.load_bytes(bytes).is_err());
    let after = params_f32(&small);
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn one_corrupt_byte_anywhere_in_the_parameters_or_checksum_is_a_checksum_error() {
    let good = record(&trained());
    for at in 32..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            rejects(&bad, |e| matches!(e, RecordError::ChecksumMismatch { .. }));
        }
    }
}

#[test]
fn corrupt_headers_name_what_is_wrong() {
    let good = record(&trained());
    let mut bad = good.clone();
    bad[0] = b'X';
    rejects(
        &bad,
        |e| matches!(e, RecordError::BadMagic { found } if found[0] == b'X'),
    );
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    rejects(&bad, |e| {
        *e == RecordError::UnsupportedVersion {
            found: 2,
            supported: 1,
        }
    });
    let mut bad = good.clone();
    bad[12..16].copy_from_slice(&2u32.to_le_bytes());
    rejects(&bad, |e| *e == RecordError::UnknownScalar { tag: 2 });
    let mut bad = good.clone();
    bad[24..32].copy_from_slice(&(N as u64 + 1).to_le_bytes());
    rejects(&bad, |e| {
        *e == RecordError::ParameterCount {
            expected: N,
            found: N as u64 + 1,
        }
    });
}

#[test]
fn truncated_or_extended_records_are_wrong_length() {
    let good = record(&trained());
    for len in 0..good.len() {
        rejects(
            &good[..len],
            |e| matches!(e, RecordError::WrongLength { found, .. } if *found == len),
        );
    }
    let mut long = good.clone();
    long.push(0);
    rejects(&long, |e| {
        *e == RecordError::WrongLength {
            expected: good.len(),
            found: good.len() + 1,
        }
    });
    // A header-sized prefix names the full length it implies.
    rejects(&good[..40], |e| {
        *e == RecordError::WrongLength {
            expected: good.len(),
            found: 40,
        }
    });
}

#[test]
fn another_architecture_is_an_error_naming_both_fingerprints() {
    let bytes = record(&trained());
    let mut other = OtherAct::init(2);
    let err = other.load_bytes(&bytes).unwrap_err();
    assert_eq!(
        err,
        RecordError::ArchitectureMismatch {
            expected: OtherAct::ARCH_FINGERPRINT,
            found: Train::ARCH_FINGERPRINT,
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{:#018x}", Train::ARCH_FINGERPRINT)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{:#018x}", OtherAct::ARCH_FINGERPRINT)),
        "{msg}"
    );
    assert!(OtherLoss::from_bytes(&bytes).is_err());
    assert!(matches!(
        Deeper::from_bytes(&bytes),
        Err(RecordError::ArchitectureMismatch { .. })
    ));
}

#[test]
fn non_finite_and_f32_overflowing_parameters_are_rejected() {
    let good = record(&trained());
    for (k, bad_value) in [
        (0, f64::NAN),
        (17, f64::INFINITY),
        (N - 1, f64::NEG_INFINITY),
    ] {
        let mut bad = good.clone();
        bad[32 + 8 * k..40 + 8 * k].copy_from_slice(&bad_value.to_le_bytes());
        reseal(&mut bad);
        rejects(&bad, |e| *e == RecordError::NonFiniteParameter { index: k });
    }
    // A NaN in an f32 record too.
    let mut b32 = vec![0u8; Deploy::RECORD_BYTES];
    Deploy::init(1).to_bytes(&mut b32).unwrap();
    b32[32 + 4 * 5..32 + 4 * 6].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b32);
    rejects(&b32, |e| *e == RecordError::NonFiniteParameter { index: 5 });

    // Finite in f64, beyond f32: loads into the f64 net, not into the f32 one.
    let mut big = good.clone();
    big[32 + 8 * 3..40 + 8 * 3].copy_from_slice(&1e39f64.to_le_bytes());
    reseal(&mut big);
    let wide = Train::from_bytes(&big).unwrap();
    assert_eq!(params_f64(&wide)[3], 1e39);
    let mut small = Deploy::init(4);
    let before = params_f32(&small);
    assert_eq!(
        small.load_bytes(&big).unwrap_err(),
        RecordError::F32Overflow {
            index: 3,
            value: 1e39
        }
    );
    assert_eq!(params_f32(&small), before);
    // f32::MAX itself (and a value that rounds to it) converts.
    let mut edge = good.clone();
    edge[32..40].copy_from_slice(&f64::from(f32::MAX).to_le_bytes());
    reseal(&mut edge);
    assert_eq!(params_f32(&Deploy::from_bytes(&edge).unwrap())[0], f32::MAX);
}

#[test]
fn a_short_output_buffer_is_an_error() {
    let net = trained();
    let mut out = vec![0u8; Train::RECORD_BYTES - 1];
    assert_eq!(
        net.to_bytes(&mut out).unwrap_err(),
        RecordError::BufferTooSmall {
            needed: Train::RECORD_BYTES,
            len: Train::RECORD_BYTES - 1
        }
    );
    assert!(out.iter().all(|&b| b == 0), "nothing written");
    // A longer buffer: the record goes to the front.
    let mut out = vec![0xAAu8; Train::RECORD_BYTES + 10];
    assert_eq!(net.to_bytes(&mut out).unwrap(), Train::RECORD_BYTES);
    assert_eq!(&out[..Train::RECORD_BYTES], &record(&net)[..]);
}

#[test]
fn save_and_load_through_a_file() {
    let dir = std::env::temp_dir().join(format!("tall-skinny-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.tsk");
    let net = trained();
    net.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), net.to_vec());
    let mut small = Deploy::ZERO;
    small.load(&path).unwrap();
    assert_eq!(
        params_f32(&small),
        params_f64(&net).map(|v| v as f32),
        "the file holds the same record"
    );
    // A missing file is an I/O error; a file of another architecture a record error.
    let mut other = OtherAct::init(1);
    assert!(matches!(
        other.load(dir.join("missing.tsk")),
        Err(tall_skinny::runtime::record::FileError::Io(_))
    ));
    assert!(matches!(
        other.load(&path),
        Err(tall_skinny::runtime::record::FileError::Record(
            RecordError::ArchitectureMismatch { .. }
        ))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

// serde (the runtime's `serde` feature, on for the tests through the dev-dependency).

#[test]
fn serde_json_round_trip_is_exact_and_checked() {
    let net = trained();
    let json = serde_json::to_string(&net).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["architecture"], Train::ARCHITECTURE);
    assert_eq!(v["fingerprint"], Train::ARCH_FINGERPRINT);
    assert_eq!(v["scalar"], "f64");
    assert_eq!(v["params"].as_array().unwrap().len(), N);

    // f64 -> f64 through JSON text: bit-exact (serde_json prints the shortest round trip and,
    // with its `float_roundtrip` feature, parses it back exactly).
    let back: Train = serde_json::from_str(&json).unwrap();
    let (p, q) = (params_f64(&net), params_f64(&back));
    assert!(p.iter().zip(&q).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Into the f32 batch-1 form: `as f32` of each, as the byte record gives.
    let small: Deploy = serde_json::from_str(&json).unwrap();
    assert_eq!(params_f32(&small), p.map(|v| v as f32));
    // Batch-only difference: loads.
    let un: Unrolled = serde_json::from_str(&json).unwrap();
    let x = [0.1, 0.2, -0.3];
    assert_eq!(un.forward_one(&x).unwrap(), net.forward_one(&x).unwrap());
    // The fields in another order (a hand-edited file) still load.
    let reordered = format!(
        "{{\"params\":{},\"scalar\":\"f64\",\"fingerprint\":{},\"architecture\":\"x\"}}",
        v["params"],
        Train::ARCH_FINGERPRINT
    );
    let r: Train = serde_json::from_str(&reordered).unwrap();
    assert_eq!(params_f64(&r), p);
}

#[test]
fn serde_rejects_other_architectures_and_wrong_counts() {
    let json = serde_json::to_string(&trained()).unwrap();
    let err = serde_json::from_str::<OtherAct>(&json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another architecture"), "{err}");
    assert!(
        err.contains(&format!("{:#018x}", Train::ARCH_FINGERPRINT)),
        "{err}"
    );

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["params"].as_array_mut().unwrap().pop();
    assert!(
        serde_json::from_value::<Train>(v.clone()).is_err(),
        "one too few"
    );
    v["params"].as_array_mut().unwrap().push(1.0.into());
    v["params"].as_array_mut().unwrap().push(1.0.into());
    assert!(
        serde_json::from_value::<Train>(v.clone()).is_err(),
        "one too many"
    );
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_object_mut().unwrap().remove("fingerprint");
    let err = serde_json::from_value::<Train>(v).unwrap_err().to_string();
    assert!(err.contains("fingerprint"), "{err}");
    // A value beyond f32 into the f32 net is an error, not an infinity.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["params"][4] = 1e39.into();
    assert!(serde_json::from_value::<Train>(v.clone()).is_ok());
    assert!(serde_json::from_value::<Deploy>(v).is_err());
}

/// Optimizer and training configs (feature `serde`) go through JSON and back unchanged, and
/// a config that deserialises to invalid values is still refused when an optimizer or a
/// trainer is built from it: deserialising is not a way around validation.
#[test]
fn configs_round_trip_through_serde_and_stay_validated() {
    use tall_skinny::runtime::optim::{
        AdamConfig, LevenbergMarquardt, LmConfig, LmDamping, NewtonConfig, SgdConfig,
        TrustRegionConfig,
    };
    use tall_skinny::runtime::train::{TrainConfig, Trainer, ValidateEvery};

    fn round<C: serde::Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug>(
        c: C,
    ) -> String {
        let json = serde_json::to_string(&c).unwrap();
        let back: C = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{json}");
        json
    }
    let lm = LmConfig::<f64>::default()
        .with_lambda(0.25)
        .with_damping(LmDamping::StepBound);
    let json = round(lm);
    assert!(json.contains("StepBound"), "{json}");
    round(LmConfig::<f32>::default());
    round(NewtonConfig::<f64>::default());
    round(TrustRegionConfig::<f64>::default());
    round(AdamConfig::<f32>::default());
    round(SgdConfig::<f64>::default());
    let tc = TrainConfig::<f64>::default()
        .with_patience(3)
        .with_validate_every(ValidateEvery::Steps(7));
    round(tc);

    // A negative lambda in the JSON: deserialises (it is a number), refused when used.
    let bad = json.replace("\"lambda\":0.25", "\"lambda\":-1.0");
    assert_ne!(bad, json, "the edit must hit the lambda field: {json}");
    let bad: LmConfig<f64> = serde_json::from_str(&bad).unwrap();
    let err = LevenbergMarquardt::<Train>::boxed(bad)
        .err()
        .expect("refused");
    assert_eq!(err.field, "lambda", "{err}");
    let bad_tc: TrainConfig<f64> =
        serde_json::from_str(&round(tc).replace("\"patience\":3", "\"patience\":0")).unwrap();
    assert_eq!(bad_tc.patience, 0);
    let err = Trainer::<Train>::new(bad_tc).err().expect("refused");
    assert_eq!(err.field, "patience", "{err}");
}
