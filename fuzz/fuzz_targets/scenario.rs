//! libFuzzer target: `splitlab::fuzz::scenario_bytes` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitlab::fuzz::scenario_bytes(data));
