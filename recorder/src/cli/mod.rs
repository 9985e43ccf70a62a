//! Command line: one module per subcommand; arguments are parsed by clap into
//! typed structs before any work starts.

pub mod format;
pub mod import;
pub mod json;
pub mod list;
pub mod run;
pub mod show;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// Where the daemon keeps its records unless told otherwise (the service's
/// StateDirectory).
pub const DEFAULT_DB: &str = "/var/lib/oomrecorder/oomrecorder.db";

#[derive(Debug, Parser)]
#[command(name = "oomrecorder", version, about = "Records every Linux OOM kill and keeps the evidence")]
pub struct Cli {
    /// SQLite database the daemon writes and the other commands read.
    #[arg(long, global = true, env = "OOMRECORDER_DB", default_value = DEFAULT_DB, value_name = "PATH")]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the recorder: attach to the kernel and store every OOM kill.
    Run(run::RunArgs),
    /// List recorded kills, newest first.
    List(list::ListArgs),
    /// Show one recorded kill in full.
    Show(show::ShowArgs),
    /// Record the kills in kernel logs (dmesg, journalctl -k, syslog, /dev/kmsg dumps).
    Import(import::ImportArgs),
}

/// Runs the parsed command. Errors are for main to print; their exit code is 2.
pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Run(args) => run::run(&cli.db, &args),
        Command::List(args) => list::run(&cli.db, &args),
        Command::Show(args) => show::run(&cli.db, &args),
        Command::Import(args) => import::run(&cli.db, &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn db_is_global_and_defaults() {
        let cli = Cli::try_parse_from(["oomrecorder", "list", "--db", "/tmp/x.db"]).unwrap();
        assert_eq!(cli.db, PathBuf::from("/tmp/x.db"));
        let cli = Cli::try_parse_from(["oomrecorder", "show", "3"]).unwrap();
        if std::env::var_os("OOMRECORDER_DB").is_none() {
            assert_eq!(cli.db, PathBuf::from(DEFAULT_DB));
        }
        assert!(Cli::try_parse_from(["oomrecorder", "list", "--limit", "x"]).is_err());
    }
}
