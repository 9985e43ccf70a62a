use std::process::ExitCode;

use clap::Parser;
use oomrecorder::{
    cli::exit::Exit,
    cli::{self, Cli, Command},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs its progress (to the journal under systemd); the query
    // commands only say something when it goes wrong.
    let default_level = if matches!(cli.command, Command::Run(_)) { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp(None)
        .init();
    match cli::dispatch(cli) {
        Ok(exit) => exit.into(),
        Err(error) => {
            // `oomrecorder list | head`: the reader has all it wanted. The one
            // place a closed pipe is handled, for every command.
            if is_broken_pipe(&error) {
                return Exit::Ok.into();
            }
            eprintln!("oomrecorder: {}", error_chain(&error));
            Exit::Error.into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, skipping a cause whose text the
/// message already contains (our errors often embed their source).
fn error_chain(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}
