//! Compile-time behaviour of `#[tall_skinny_net]`, checked inside the compiler with trybuild.
//!
//! Each folder under `tests/ui/` holds one kind of mistake; every `.rs` there must fail to
//! compile with exactly the diagnostics in the `.stderr` beside it. `tests/ui/pass/` holds
//! declarations that must compile and run.
//!
//! After a deliberate change of a message, regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test it ui::` and read the diff of the `.stderr` files before
//! committing them: each must show the intended message, on the intended token, and nothing
//! else (no cascade of follow-up errors).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    for kind in [
        "widths", "names", "loss", "shape", "args", "zero", "multiple", "custom", "handles",
    ] {
        t.compile_fail(format!("tests/ui/{kind}/*.rs"));
    }
}
