//! Arbitrary text -> token streams -> `tall_skinny_codegen::expand`. See `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tall_skinny_fuzz::check_text(data);
});
