#!/bin/sh
# Builds the libFuzzer targets on a STABLE toolchain: the coverage instrumentation cargo-fuzz
# adds (without its nightly-only AddressSanitizer, which safe Rust does not need) is made of
# stable -C flags. With a nightly toolchain, `cargo fuzz build` / `cargo fuzz run` work as well.
# Usage: fuzz/build.sh [TARGET...]   (default: all). Binaries: fuzz/target/<host>/release/TARGET
set -eu
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing"
# An explicit --target keeps the flags off build scripts and proc macros (as cargo-fuzz does).
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$#" -eq 0 ]; then
  cargo build --release --target "$host" --bins
else
  for t in "$@"; do cargo build --release --target "$host" --bin "$t"; done
fi
