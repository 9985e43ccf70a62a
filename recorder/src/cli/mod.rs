//! Command line: one module per subcommand; arguments are parsed by clap into
//! typed structs before any work starts.

pub mod assets;
pub mod doctor;
pub mod exit;
pub mod filter;
pub mod format;
pub mod import;
pub mod list;
pub mod prune;
pub mod run;
pub mod show;
pub mod stats;
pub mod status;
pub mod watch;
pub mod when;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::config::DEFAULT_DB;
use crate::config::{self, RetentionFlags, Settings, DEFAULT_CONFIG};
use exit::Exit;

#[derive(Debug, Parser)]
#[command(name = "oomrecorder", version, about = "Records every Linux OOM kill and keeps the evidence")]
pub struct Cli {
    /// SQLite database the daemon writes and the other commands read
    /// [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]
    #[arg(long, global = true, env = "OOMRECORDER_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Configuration file (only the default one may be missing)
    /// [default: /etc/oomrecorder/oomrecorder.toml]
    #[arg(long, global = true, env = "OOMRECORDER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

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
    /// Print each new kill as it is recorded, until interrupted.
    Watch(watch::WatchArgs),
    /// Count kills per container, pod, unit and command.
    Stats(stats::StatsArgs),
    /// Is the daemon running, what did it lose, and does its count of kills
    /// match the kernel's? Exit 0 only if all is well.
    Status(status::StatusArgs),
    /// Delete old kills now, as the daemon does daily (by age and record cap).
    Prune(prune::PruneArgs),
    /// Record the kills in kernel logs (dmesg, journalctl -k, syslog, /dev/kmsg dumps).
    Import(import::ImportArgs),
    /// Check what the recorder can do on this kernel: BTF, attach point, each field.
    Doctor(doctor::DoctorArgs),
    /// Write man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets(assets::AssetsArgs),
}

/// Runs the parsed command. Errors are for main to print; their exit code is 2.
pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    // Packaging needs no configuration (and must not fail on a bad one).
    if let Command::GenerateAssets(args) = &cli.command {
        return assets::run(args);
    }
    // Neither does the check of the machine (it reads no database).
    if let Command::Doctor(args) = &cli.command {
        return doctor::run(args);
    }
    let settings = settings(&cli)?;
    // A path that cannot work is refused before anything runs (`db = ""`
    // once made the daemon record into a temporary database).
    let writes = matches!(cli.command, Command::Run(_) | Command::Import(_) | Command::Prune(_));
    config::check_db(&settings.db, &db_origin(&cli, &settings), writes)?;
    match cli.command {
        Command::Run(args) => run::run(&settings, &args),
        Command::List(args) => list::run(&settings.db, &args),
        Command::Show(args) => show::run(&settings.db, &args),
        Command::Watch(args) => watch::run(&settings.db, &args),
        Command::Stats(args) => stats::run(&settings.db, &args),
        Command::Status(args) => status::run(&settings.db, &args),
        Command::Prune(_) => prune::run(&settings),
        Command::Import(args) => import::run(&settings, &args),
        Command::GenerateAssets(args) => assets::run(&args),
        Command::Doctor(args) => doctor::run(&args),
    }
}

/// Where the database path came from, for an error about it.
fn db_origin(cli: &Cli, settings: &Settings) -> String {
    if cli.db.is_some() {
        "--db (or OOMRECORDER_DB)".to_owned()
    } else if settings.db.as_os_str() != DEFAULT_DB {
        format!("`db` in {}", config_path(cli).0.display())
    } else {
        "the default".to_owned()
    }
}

/// The configuration file to read, and whether the user named it.
fn config_path(cli: &Cli) -> (PathBuf, bool) {
    match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    }
}

/// Who may read what `run`, `import` and `prune` write: the configured
/// group, looked up now, so a misspelt one stops the command before it starts.
pub fn sharing(settings: &Settings) -> anyhow::Result<crate::store::Sharing> {
    let group = settings.group.as_deref().map(config::lookup_group).transpose()?;
    Ok(crate::store::Sharing { group })
}

/// Reads the configuration file and applies precedence: flag (or
/// environment) over file over default. Every command reads it, so `list`
/// finds the database the daemon was configured to write.
fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let (path, explicit) = config_path(cli);
    let file = config::read_config(&path, explicit)?;
    let flags = match &cli.command {
        Command::Run(args) => RetentionFlags { max_age_days: args.max_age, max_records: args.max_records },
        Command::Prune(args) => RetentionFlags { max_age_days: args.max_age, max_records: args.max_records },
        _ => RetentionFlags::default(),
    };
    Ok(Settings::resolve(cli.db.as_deref(), flags, file))
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
        assert_eq!(cli.db, Some(PathBuf::from("/tmp/x.db")));
        if std::env::var_os("OOMRECORDER_DB").is_none() {
            let cli = Cli::try_parse_from(["oomrecorder", "show", "3"]).unwrap();
            assert_eq!(cli.db, None, "left to the configuration file, then DEFAULT_DB");
        }
        assert!(Cli::try_parse_from(["oomrecorder", "list", "--limit", "x"]).is_err());
    }

    #[test]
    fn the_config_file_sets_what_flags_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "db = \"/srv/file.db\"\nretention_days = 7\nmax_records = 9\n").unwrap();
        let config = path.to_str().unwrap();
        let from_file =
            settings(&Cli::try_parse_from(["oomrecorder", "--config", config, "run"]).unwrap()).unwrap();
        assert_eq!(from_file.db, PathBuf::from("/srv/file.db"));
        assert_eq!(from_file.retention, Some(std::time::Duration::from_secs(7 * 86_400)));
        assert_eq!(from_file.max_records, Some(9));
        let flagged = settings(
            &Cli::try_parse_from([
                "oomrecorder",
                "run",
                "--config",
                config,
                "--db",
                "/x.db",
                "--retention-days",
                "0",
                "--max-records",
                "0",
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (flagged.db, flagged.retention, flagged.max_records),
            (PathBuf::from("/x.db"), None, None)
        );
        let pruning = settings(
            &Cli::try_parse_from(["oomrecorder", "prune", "--config", config, "--max-age", "30d"]).unwrap(),
        )
        .unwrap();
        assert_eq!(pruning.retention, Some(std::time::Duration::from_secs(30 * 86_400)));
        assert_eq!(pruning.max_records, Some(9), "the file's cap, not a flag");

        let missing = dir.path().join("missing.toml");
        let cli =
            Cli::try_parse_from(["oomrecorder", "list", "--config", missing.to_str().unwrap()]).unwrap();
        assert!(settings(&cli).is_err(), "a named configuration file must exist");
    }
}
