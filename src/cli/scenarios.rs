//! `splitlab scenarios [show NAME]`: the scenarios shipped inside the binary, with what each
//! is for, and one printed whole to start a scenario of your own from.

use std::process::ExitCode;

use anyhow::bail;

use crate::scenario::shipped;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print a shipped scenario's file (redirect it to a file to start your own).
    Show {
        /// The scenario's name, as `splitlab scenarios` lists it.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.action {
        None => {
            let width = shipped::all().map(|s| s.name.len()).max().unwrap_or(0);
            for s in shipped::all() {
                say!("{:width$}  {}", s.name, s.purpose())?;
            }
            say!()?;
            say!("Run one with `splitlab run NAME` from any directory; `splitlab scenarios show NAME` prints it.")?;
        }
        Some(Action::Show { name }) => {
            let Some(found) = shipped::find(name) else {
                bail!(
                    "no shipped scenario is named {name:?} (shipped: {})",
                    shipped::names()
                );
            };
            say_raw!("{}", found.text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
