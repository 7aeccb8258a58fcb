//! Structured-but-wrong declarations built with `arbitrary` -> `tall_skinny_codegen::expand`.
//! See `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tall_skinny_fuzz::Input;

fuzz_target!(|input: Input| {
    tall_skinny_fuzz::check_input(&input);
});
