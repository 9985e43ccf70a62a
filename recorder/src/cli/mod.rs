//! Command line: one module per subcommand; arguments are parsed by clap into
//! typed structs before any work starts.

pub mod assets;
pub mod doctor;
pub mod exit;
pub mod filter;
pub mod format;
pub mod import;
pub mod list;
pub mod manual;
pub mod prune;
pub mod run;
pub mod show;
pub mod stats;
pub mod status;
pub mod table;
pub mod watch;
pub mod when;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::config::DEFAULT_DB;
use crate::config::{self, RetentionFlags, Settings, DEFAULT_CONFIG};
use exit::Exit;

#[derive(Debug, Parser)]
#[command(
    name = "oomrecorder",
    version,
    propagate_version = true,
    about = "Records every Linux OOM kill and keeps the evidence",
    long_about = "When the kernel kills a process for lack of memory, the evidence goes with it. \
oomrecorder run (a daemon, normally the packaged systemd service) records every OOM kill \
with the victim's figures read through eBPF at the instant of the kill, the kernel's own \
report, the victim's cgroup files and who it was (container, image, pod, unit) into a \
local SQLite history. The other commands read that history, while the daemon writes it, \
without changing it (prune and import excepted): list and show it as coredumpctl does, \
watch it, count it (stats), and check the daemon lost nothing (status)."
)]
pub struct Cli {
    /// SQLite database the daemon writes and the other commands read
    /// [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]
    #[arg(long, global = true, env = "OOMRECORDER_DB", value_name = "PATH", help_heading = GLOBAL)]
    pub db: Option<PathBuf>,

    /// Configuration file (only the default one may be missing)
    /// [default: /etc/oomrecorder/oomrecorder.toml]
    #[arg(long, global = true, env = "OOMRECORDER_CONFIG", value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The heading every command's help and man page puts the options every
/// command takes under, apart from its own.
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(
        about = "Run the recorder: attach to the kernel and store every OOM kill",
        long_about = "The daemon. It attaches an eBPF program to the kernel's mark_victim \
tracepoint (the raw tracepoint where BTF allows, reading the victim's task and memory cgroups \
at the kill), reads the kernel's OOM reports from /dev/kmsg (and, at start, what it missed \
from the ring buffer and the journal), reads the victim's cgroup files right after each \
kill, and joins all of it into one record per victim. It tells systemd READY=1 once \
attached, applies the retention limits at start, daily and as kills come in, and on \
SIGTERM stores what is in flight and exits 0."
    )]
    Run(run::RunArgs),
    #[command(
        about = "List recorded kills, newest first",
        long_about = "One line per kill (or per incident with --incidents), newest first, \
narrowed by the filters, which must all hold. The table is cut to the terminal's width: the \
time stays whole, a cgroup path is cut from the left, and CONTAINER, POD and IMAGE appear \
when a row has one (IMAGE where there is room); in a pipe nothing is cut. --json and \
--json-lines write each row as it is read, for any number of kills."
    )]
    List(list::ListArgs),
    #[command(
        about = "Show one recorded kill in full",
        long_about = "One kill as coredumpctl info shows a crash: first the diagnosis (the cause \
in one sentence), then who was killed and what ran out (command line, executable, container, \
image, pod, unit, the limit that fired and the usage at the kill, the RSS, the incident), then \
the evidence: every figure each source gave, the kernel state read at the kill, the cgroup's \
files with the processes left in it, and the kernel's report. With no id, the newest kill \
the filters select."
    )]
    Show(show::ShowArgs),
    #[command(
        about = "Print each new kill as it is recorded, until interrupted",
        long_about = "Prints each kill the daemon records from the moment it starts, as list's \
table rows (or --json-lines), reading the database read-only four times a second, so it never \
holds the daemon up. It takes list's filters. Ctrl-C, SIGTERM or a closed pipe end it with 0."
    )]
    Watch(watch::WatchArgs),
    #[command(
        about = "Count kills per container, pod, unit and command",
        long_about = "Who gets killed: the kills the filters select, counted per container, \
pod, systemd unit and command (the --top N of each), and by which OOM they were: a memory \
cgroup's limit, the whole machine's memory, or a cpuset's or memory policy's."
    )]
    Stats(stats::StatsArgs),
    #[command(
        about = "Is the daemon running, what did it lose, does its count match the kernel's?",
        long_about = "Reads the daemon's current run from the database: whether it runs, its \
uptime and attach point, the records stored, and what each stage of its pipeline counted and \
lost (as of its last update, every 5 s, which it says). Then it audits the run: the kernel's \
own count of OOM kills since the daemon started (/proc/vmstat oom_kill) against the kills \
recorded since then on this boot. Exit 0 only if the daemon runs, lost nothing and the counts \
match."
    )]
    Status(status::StatusArgs),
    #[command(
        about = "Delete old kills now, as the daemon does daily",
        long_about = "Applies the retention limits by hand: deletes kills older than the \
maximum age, then the oldest beyond the record cap, and says what it deleted. --dry-run says \
what it would delete and deletes nothing."
    )]
    Prune(prune::PruneArgs),
    #[command(
        about = "Record the kills in kernel logs (dmesg, journalctl -k, syslog, /dev/kmsg dumps)",
        long_about = "Reads kernel logs in the forms people have them (raw dmesg, dmesg -T in any \
locale, journalctl -k and syslog, /dev/kmsg dumps, grep -n output, pasted fragments; - is \
stdin; --journal-dir reads journal files) and records each OOM kill they report. A raw \
dmesg of the running boot gets its boot id and real times, and a kill the daemon already \
recorded is merged into its record; importing the same input again adds nothing."
    )]
    Import(import::ImportArgs),
    #[command(
        about = "Check what the recorder can do on this kernel: BTF, attach point, each field",
        long_about = "Prints the kernel version, whether BTF is there, the attach point chosen \
and why, each figure read through BTF (available, with its offset, or absent, with the \
reason), tracefs, the cgroup mounts and the capabilities. It changes nothing; it exits 0 when \
the recorder can run here, 2 otherwise."
    )]
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
        Command::Prune(args) => prune::run(&settings, &args),
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

    /// `--help` puts the options every command takes apart from its own.
    #[test]
    fn help_groups_the_global_options_apart() {
        let mut cli = Cli::command();
        cli.build();
        let list = cli.find_subcommand_mut("list").unwrap();
        let help = list.render_help().to_string();
        let global = help.find("Global options:").unwrap_or_else(|| panic!("{help}"));
        let (own, globals) = help.split_at(global);
        assert!(globals.contains("--db <PATH>") && globals.contains("--config <PATH>"), "{help}");
        assert!(!own.contains("--db <PATH>") && own.contains("--comm <COMM>"), "{help}");
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
