//! The `splitlab` binary: parse the command line, run it, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the C library's allocator: the gateway allocates a few dozen small
/// objects per relayed request (headers, bodies, futures), and glibc's malloc and free took
/// about a twelfth of its instructions (docs/benchmarks.md, "The allocator"). Built without
/// transparent huge pages (`no_thp`): with them a `run`'s peak RSS was 68 MB instead of 28.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = splitlab::cli::Cli::parse();
    match splitlab::cli::run(cli) {
        Ok(code) => code,
        // The reader of stdout went away (`splitlab run | head -1`): nothing more is wanted,
        // and every output file was already written, so stop quietly, as ripgrep does.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", splitlab::cli::readable_error(&err));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
