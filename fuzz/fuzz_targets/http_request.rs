//! libFuzzer target: `splitlab::fuzz::http_request` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| splitlab::fuzz::http_request(data));
