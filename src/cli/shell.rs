//! `splitlab completions SHELL` and `splitlab man`: shell completion scripts and the man page,
//! both generated from the clap definition so they never drift from the real flags.

use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

/// Prints the completion script for `args.shell` (bash: `source <(splitlab completions bash)`).
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "splitlab", &mut script);
    let script = String::from_utf8(script).context("the completion script is UTF-8")?;
    say_raw!("{script}")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page in roff (`splitlab man > splitlab.1; man ./splitlab.1`): the command, its
/// subcommands with their one-line purposes, and each subcommand's flags.
pub fn man(_: &ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = super::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .context("cannot render the man page")?;
    // One section per subcommand, as git's and cargo's pages list their commands' options.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("splitlab {}", sub.get_name());
        let sub = sub.clone().bin_name(name.clone());
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let man = clap_mangen::Man::new(sub);
        man.render_synopsis_section(&mut page)
            .and_then(|()| man.render_description_section(&mut page))
            .and_then(|()| man.render_options_section(&mut page))
            .with_context(|| format!("cannot render the man page of {name}"))?;
    }
    let page = String::from_utf8(page).context("the man page is UTF-8")?;
    say_raw!("{page}")?;
    Ok(ExitCode::SUCCESS)
}
