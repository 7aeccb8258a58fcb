//! Declarations that once crashed (or could crash) the macro, found by the fuzzers in
//! `fuzz/` or by reading the size arithmetic: each must give valid code or a compile error,
//! never a panic. The property is the fuzzers' own (`fuzz/src/lib.rs`): on `Ok` the
//! expansion parses as a Rust file; on `Err` there is at least one message; and what the
//! proc macro emits (`expand_or_error`) always parses.

use proc_macro2::TokenStream;
use tall_skinny_codegen::{expand, expand_or_error};

fn tokens(s: &str) -> TokenStream {
    s.parse().expect("test input tokenises")
}

/// Expands and checks the property; returns the error messages (empty on success).
fn run(attr: &str, item: &str) -> Vec<String> {
    let (attr, item) = (tokens(attr), tokens(item));
    let emitted = expand_or_error(attr.clone(), item.clone());
    syn::parse2::<syn::File>(emitted).expect("expand_or_error output parses");
    match expand(attr, item) {
        Ok(code) => {
            syn::parse2::<syn::File>(code).expect("expansion parses");
            Vec::new()
        }
        Err(e) => {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            assert!(!msgs.is_empty());
            msgs
        }
    }
}

/// Expects a compile error one of whose messages contains `needle`.
fn expect_error(attr: &str, item: &str, needle: &str) {
    let msgs = run(attr, item);
    assert!(
        msgs.iter().any(|m| m.contains(needle)),
        "expected an error containing {needle:?}, got {msgs:#?}"
    );
}

const MAX: &str = "18446744073709551615";

#[test]
fn huge_batch_is_an_error() {
    // b * inputs overflowed usize in the stage type (expand.rs) before this was checked.
    expect_error(
        &format!("batch = {MAX}"),
        "struct Net { a: Dense<2, 2, Tanh>, loss: Mse<2> }",
        "storage",
    );
}

#[test]
fn batch_times_width_squared_overflow_is_an_error() {
    // (batch * outputs)^2 in the curvature storage estimate overflowed.
    expect_error(
        "batch = 4294967296",
        "struct Net { a: Dense<16, 16, Tanh>, loss: Mse<16> }",
        "storage",
    );
}

#[test]
fn parameter_count_fitting_usize_but_not_memory_is_an_error() {
    // N = 2^62 + 2^31 fits in usize, but N * 8 bytes does not.
    expect_error(
        "",
        "struct Net { a: Dense<2147483648, 2147483648, Identity>, loss: Mse<2147483648> }",
        "storage",
    );
}

#[test]
fn huge_widths_are_an_error() {
    expect_error(
        "",
        &format!("struct Net {{ a: Dense<{MAX}, {MAX}, Tanh>, loss: Mse<{MAX}> }}"),
        "usize",
    );
    expect_error(
        "",
        &format!("struct Net {{ a: Residual<{MAX}, Tanh>, loss: Mse<{MAX}> }}"),
        "usize",
    );
    expect_error(
        "",
        &format!("struct Net {{ a: DenseNoBias<{MAX}, 1, Tanh>, loss: Mse<1> }}"),
        "storage",
    );
}

#[test]
fn huge_array_lengths_are_an_error() {
    expect_error(
        "",
        &format!("struct Net {{ a: [Residual<2, Tanh>; {MAX}], loss: Mse<2> }}"),
        "usize",
    );
    expect_error(
        "",
        "struct Net { a: [Residual<1, Tanh>; 4611686018427387903], loss: Mse<1> }",
        "storage",
    );
}

#[test]
fn literals_beyond_u64_are_an_error() {
    let big = "340282366920938463463374607431768211456";
    let msgs = run(
        &format!("batch = {big}"),
        &format!("struct Net {{ a: Dense<{big}, 2, Tanh>, loss: Mse<2> }}"),
    );
    assert!(!msgs.is_empty());
}

#[test]
fn large_but_representable_net_expands() {
    // Big, but its storage fits: the macro generates it (rustc decides about the stack).
    assert!(run(
        "batch = 8",
        "struct Net { a: Dense<16, 16, Tanh>, b: [Residual<16, Tanh>; 100000], loss: Mse<16> }"
    )
    .is_empty());
}

/// Found by the `structured` target (crash-c1d3bb48469b6e51fb07ec23cbadd82779fec79a) when run
/// against the code before the storage check: `batch = 2^62` times 8 inputs overflowed in
/// the stage type (expand.rs).
#[test]
fn fuzz_crash_batch_2_pow_62() {
    expect_error(
        "batch = 4611686018427387904",
        "pub struct Net { l0: DenseNoBias<8, 6, Softplus>, loss: Mse<6> }",
        "storage",
    );
}
