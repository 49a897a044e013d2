//! Fuzz target `routing`: see `tern_fuzz::routing` for the input format and the properties.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern_fuzz::routing::run(data));
