//! libFuzzer target: `splitlab::fuzz::kn_flags` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitlab::fuzz::kn_flags(data));
