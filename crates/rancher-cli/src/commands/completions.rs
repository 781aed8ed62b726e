//! `rancherctl completions SHELL`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Exit;

/// Prints the completion script for `shell` on stdout.
pub fn print(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rancherctl", &mut script);
    crate::output::stdout_or_quit(&script);
    Ok(Exit::Done)
}
