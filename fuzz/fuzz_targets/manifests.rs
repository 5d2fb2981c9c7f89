//! libFuzzer target: `splitlab::fuzz::manifests` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitlab::fuzz::manifests(data));
