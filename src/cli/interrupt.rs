//! SIGINT and SIGTERM for the commands that write an output directory.
//!
//! Owns: the exit status of an interrupted command (128 + the signal: 130 for SIGINT, 143 for
//! SIGTERM, as shells report them) and, for `run` and `compare`, the handler that removes the
//! run's staging directory ([`crate::report::write::StagedDir`]) before exiting.
//!
//! Must not: touch the output directory itself: until its commit it holds the previous run's
//! files, untouched, and the commit finishes before the handler exits.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;

/// The signal that interrupted this process (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Records that `signal` arrived (the live commands stop their run and write what they have).
pub(crate) fn record(signal: i32) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Waits for SIGINT or SIGTERM (inside a tokio runtime) and returns its number.
pub(crate) async fn next_signal() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return SIGINT;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => SIGINT,
            _ = term.recv() => SIGTERM,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        SIGINT
    }
}

/// The exit status of a command that ran to its end: 128 + the signal if one `interrupted` it
/// (the outputs then cover the run up to the signal), else `code`. A signal after the run (Ctrl-C
/// to end `live --metrics-linger`) does not count.
pub(crate) fn exit_code(interrupted: bool, code: ExitCode) -> ExitCode {
    match SIGNAL.load(Ordering::SeqCst) {
        sig if interrupted && sig != 0 => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        _ => code,
    }
}

/// The name of the signal that interrupted the run (`SIGINT`, `SIGTERM`), for messages.
pub(crate) fn recorded_name() -> &'static str {
    signal_name(SIGNAL.load(Ordering::SeqCst))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// For a command that cannot stop part-way with anything worth keeping (`run`, `compare`): on
/// SIGINT or SIGTERM, remove every staging directory not yet committed (a commit in progress
/// finishes first), then exit with 128 + the signal. The output directory keeps the previous
/// run's files, or has all of this run's if the commit came first.
pub(crate) fn exit_on_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal handler")?;
    // Register before returning, so a signal that comes right after is already caught.
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        let _guard = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        )
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            #[cfg(unix)]
            let sig = {
                let (mut int, mut term) = signals;
                runtime.block_on(async {
                    tokio::select! {
                        _ = int.recv() => SIGINT,
                        _ = term.recv() => SIGTERM,
                    }
                })
            };
            #[cfg(not(unix))]
            let sig = runtime.block_on(next_signal());
            // Held until exit: no commit starts after this.
            let (_staged, abandoned) = crate::report::write::abandon_staged();
            if abandoned > 0 {
                eprintln!(
                    "interrupted by {}: outputs not written (the output directory keeps its \
                     earlier files)",
                    signal_name(sig)
                );
            } else {
                eprintln!("interrupted by {}", signal_name(sig));
            }
            std::process::exit(128 + sig);
        })
        .context("cannot start the signal handler")?;
    Ok(())
}
