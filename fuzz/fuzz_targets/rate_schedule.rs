//! libFuzzer target: `splitlab::fuzz::rate_schedule` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitlab::fuzz::rate_schedule(data));
