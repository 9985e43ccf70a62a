//! The configuration file, `/etc/oomrecorder/oomrecorder.toml`.
//!
//! `parse` is pure; `read_config` opens the file and puts its path into every
//! error. Precedence, resolved by [`Settings::resolve`]: a command-line flag,
//! then the environment (`OOMRECORDER_DB`, which clap folds into the flag),
//! then this file, then the built-in default.

use std::{
    fs, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    model::cmdline::CmdlinePolicy,
    pipeline::{
        daemon::MetricsConfig,
        retention::{DEFAULT_MAX_AGE_DAYS, DEFAULT_MAX_RECORDS},
    },
};

/// Where the package installs the file (a conffile, every key commented out).
pub const DEFAULT_CONFIG: &str = "/etc/oomrecorder/oomrecorder.toml";

/// Where the daemon keeps its records unless told otherwise (the service's
/// StateDirectory).
pub const DEFAULT_DB: &str = "/var/lib/oomrecorder/oomrecorder.db";

/// What the file may set. Unknown keys are errors: a misspelt `retention_day`
/// silently keeping everything forever is worse than refusing to start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SQLite database.
    pub db: Option<PathBuf>,
    /// Kills older than this many days are deleted; 0 keeps them whatever
    /// their age. `retention_days`, its name before the record cap, is still
    /// accepted (giving both is an error: serde reports a duplicate field).
    #[serde(alias = "retention_days")]
    pub max_age_days: Option<u32>,
    /// At most this many kills are kept (the oldest go); 0: no cap.
    pub max_records: Option<u64>,
    /// `run` serves Prometheus metrics on this address (`127.0.0.1:9977`).
    pub metrics_listen: Option<SocketAddr>,
    /// `run` writes the metrics to this file for node_exporter's textfile
    /// collector.
    pub metrics_textfile: Option<PathBuf>,
    /// The victim's command name as a metrics label (one series per name).
    pub metrics_comm_label: Option<bool>,
    /// One structured journal entry per kill, where a journal runs.
    pub journal_entries: Option<bool>,
    /// What a record keeps of command lines: `full`, `redacted` or `none`.
    pub cmdline: Option<CmdlinePolicy>,
    /// A group that may read the history (files 0640, directory 0750);
    /// without one, only root may.
    pub group: Option<String>,
}

/// The retention flags of `run` and `prune`, before precedence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionFlags {
    pub max_age_days: Option<u32>,
    pub max_records: Option<u64>,
}

/// `--max-age`: days, written `180` or `180d`.
pub fn parse_max_age(text: &str) -> Result<u32, String> {
    text.strip_suffix('d')
        .unwrap_or(text)
        .parse()
        .map_err(|_| format!("`{text}` is not a number of days (180, or 180d; 0 keeps everything)"))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("configuration file {path}, line {line}: {message}")]
    Invalid { path: PathBuf, line: usize, message: String },
    #[error("the database path from {origin} is empty: nothing would reach the disk; name a file (the default is {DEFAULT_DB})")]
    EmptyDb { origin: String },
    #[error("the database path {path} (from {origin}) {why}")]
    BadDb { origin: String, path: PathBuf, why: String },
    #[error("`group = \"{name}\"` in the configuration: {why}")]
    BadGroup { name: String, why: String },
}

/// A parse failure before it knows which file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; toml reports a byte span, people read lines.
    pub line: usize,
    pub message: String,
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Config, ParseError> {
    toml::from_str(text).map_err(|e: toml::de::Error| ParseError {
        line: e.span().map_or(1, |span| line_of(text, span.start)),
        // The message alone: toml's Display repeats the source with a caret,
        // which is noise in a one-line journal entry.
        message: e.message().trim().to_owned(),
    })
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads the file at `path`. A missing file is an empty configuration only
/// when `path` is the default one (a host without the package's conffile);
/// a file the user named must exist.
pub fn read_config(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
        Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
    }
}

/// The settings every command runs with, after precedence is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub db: PathBuf,
    /// Kills older than this are deleted; `None` keeps them whatever their age.
    pub retention: Option<Duration>,
    /// At most this many kills are kept; `None`: no cap.
    pub max_records: Option<u64>,
    /// The file's metrics settings (`run`'s flags override them).
    pub metrics: MetricsConfig,
    pub journal_entries: bool,
    /// What records keep of command lines.
    pub cmdline: CmdlinePolicy,
    /// The group that may read the history, by name (resolved by [`lookup_group`]).
    pub group: Option<String>,
}

impl Settings {
    /// Flag (or environment, through clap) over file over default.
    pub fn resolve(db_flag: Option<&Path>, flags: RetentionFlags, file: Config) -> Settings {
        let db = db_flag.map(Path::to_path_buf).or(file.db).unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
        let days = flags.max_age_days.or(file.max_age_days).unwrap_or(DEFAULT_MAX_AGE_DAYS);
        let retention = (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400));
        let max_records = flags.max_records.or(file.max_records).unwrap_or(DEFAULT_MAX_RECORDS);
        let metrics = MetricsConfig {
            listen: file.metrics_listen,
            textfile: file.metrics_textfile,
            comm_label: file.metrics_comm_label.unwrap_or(false),
        };
        // A history a group may read keeps redacted command lines unless
        // the file asks for them in full.
        let group = file.group.filter(|g| !g.is_empty());
        let default_cmdline = if group.is_some() { CmdlinePolicy::Redacted } else { CmdlinePolicy::Full };
        Settings {
            db,
            retention,
            max_records: (max_records > 0).then_some(max_records),
            metrics,
            journal_entries: file.journal_entries.unwrap_or(true),
            cmdline: file.cmdline.unwrap_or(default_cmdline),
            group,
        }
    }
}

/// A group that may read the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// Looks a group up by name (getgrnam_r: /etc/group, or NSS).
pub fn lookup_group(name: &str) -> Result<Group, ConfigError> {
    let bad = |why: String| ConfigError::BadGroup { name: name.to_owned(), why };
    let c_name = std::ffi::CString::new(name).map_err(|_| bad("the name holds a NUL byte".into()))?;
    let mut entry = std::mem::MaybeUninit::<libc::group>::uninit();
    let mut buffer = vec![0 as libc::c_char; 16_384];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is to memory owned here and valid for the call:
    // the entry, the buffer (with its true length) and the result pointer.
    let rc = unsafe {
        libc::getgrnam_r(c_name.as_ptr(), entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut found)
    };
    if rc != 0 {
        return Err(bad(format!("cannot look it up: {}", io::Error::from_raw_os_error(rc))));
    }
    if found.is_null() {
        return Err(bad("no such group on this machine".into()));
    }
    // SAFETY: getgrnam_r returned 0 with a non-NULL result: `entry` is filled.
    let gid = unsafe { entry.assume_init() }.gr_gid;
    Ok(Group { name: name.to_owned(), gid })
}

/// Refuses a database path that cannot work, before anything runs: empty
/// (SQLite would open a temporary database that vanishes at exit), a
/// directory, not a regular file, and for a command that writes (`writes`)
/// a file or directory this process cannot write. `origin` says where the
/// path came from, for the message.
pub fn check_db(path: &Path, origin: &str, writes: bool) -> Result<(), ConfigError> {
    let bad = |why: String| ConfigError::BadDb { origin: origin.to_owned(), path: path.to_path_buf(), why };
    if path.as_os_str().is_empty() {
        return Err(ConfigError::EmptyDb { origin: origin.to_owned() });
    }
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(bad("is a directory: name a file in it".into())),
        Ok(meta) if !meta.is_file() => return Err(bad("is not a regular file".into())),
        Ok(_) if writes && !may_write(path) => {
            return Err(bad(format!("is not writable by this process: {}", io::Error::last_os_error())))
        }
        _ => {}
    }
    if !writes {
        return Ok(());
    }
    // The directory must take new files too: SQLite keeps its WAL and SHM
    // beside the database. A missing one is created: its nearest existing
    // ancestor must be writable.
    let mut dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    loop {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(bad(format!(
                    "is out of reach: cannot create it, {} is not a directory",
                    dir.display()
                )))
            }
            Err(_) => match dir.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(parent) => dir = parent,
                None => break,
            },
        }
    }
    if !may_write(dir) {
        let why = io::Error::last_os_error();
        return Err(bad(format!(
            "cannot be written: its directory {} is not writable ({why})",
            dir.display()
        )));
    }
    Ok(())
}

/// access(2) W_OK (and X_OK for a directory): as the kernel decides it for
/// this process, read-only file systems included.
fn may_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    let mode = if path.is_dir() { libc::W_OK | libc::X_OK } else { libc::W_OK };
    // SAFETY: access(2) reads the NUL-terminated path, which lives for the call.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file the package installs: every key commented out, so parsing it
    /// must give the built-in defaults.
    const SHIPPED: &str = include_str!("../../packaging/oomrecorder.toml");

    #[test]
    fn the_shipped_file_is_all_defaults() {
        assert_eq!(parse(SHIPPED), Ok(Config::default()));
        assert_eq!(
            Settings::resolve(None, RetentionFlags::default(), parse(SHIPPED).unwrap()),
            Settings {
                db: PathBuf::from(DEFAULT_DB),
                retention: Some(Duration::from_secs(180 * 86_400)),
                max_records: Some(100_000),
                metrics: MetricsConfig::default(),
                journal_entries: true,
                cmdline: CmdlinePolicy::Full,
                group: None,
            }
        );
    }

    #[test]
    fn the_shipped_file_uncommented_parses() {
        // Every `# key = value` line of the shipped file, uncommented, is valid:
        // the documented defaults are real syntax, not prose.
        let uncommented: String = SHIPPED
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = parse(&uncommented).unwrap();
        assert_eq!(config.db.as_deref(), Some(Path::new(DEFAULT_DB)));
        assert_eq!(config.max_age_days, Some(DEFAULT_MAX_AGE_DAYS));
        assert_eq!(config.max_records, Some(DEFAULT_MAX_RECORDS));
        assert_eq!(config.metrics_listen, Some("127.0.0.1:9977".parse().unwrap()));
        assert!(config.metrics_textfile.is_some());
        assert_eq!((config.metrics_comm_label, config.journal_entries), (Some(false), Some(true)));
    }

    #[test]
    fn a_listen_address_that_is_not_one_names_its_line() {
        let err = parse("db = \"/x.db\"\nmetrics_listen = \"localhost\"\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.message.contains("socket address"), "{err:?}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = parse("db = \"/srv/oom.db\"\nmax_age_days = 30\nmax_records = 5\n").unwrap();
        let from_file = Settings::resolve(None, RetentionFlags::default(), file.clone());
        assert_eq!(from_file.db, PathBuf::from("/srv/oom.db"));
        assert_eq!(from_file.retention, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(from_file.max_records, Some(5));

        let flags = RetentionFlags { max_age_days: Some(0), max_records: Some(0) };
        let flagged = Settings::resolve(Some(Path::new("/tmp/x.db")), flags, file);
        assert_eq!(
            flagged,
            Settings {
                db: PathBuf::from("/tmp/x.db"),
                retention: None,
                max_records: None,
                metrics: MetricsConfig::default(),
                journal_entries: true,
                cmdline: CmdlinePolicy::Full,
                group: None,
            }
        );
    }

    #[test]
    fn retention_days_is_still_accepted_as_max_age_days() {
        assert_eq!(parse("retention_days = 30\n").unwrap().max_age_days, Some(30));
        let both = parse("retention_days = 30\nmax_age_days = 7\n").unwrap_err();
        assert!(both.message.contains("duplicate"), "{both:?}");
        assert_eq!(parse_max_age("180d"), Ok(180));
        assert_eq!(parse_max_age("0"), Ok(0));
        assert!(parse_max_age("6 months").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("# comment\ndb = \"/x.db\"\nretention_days = \"thirty\"\n").unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(err.message.contains("expected u32"), "{err:?}");

        let err = parse("\n\nretention_day = 3\n").unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(err.message.contains("retention_day"), "{err:?}");

        let err = parse("db = \"/x.db\"\ndb = [\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");

        assert!(parse("retention_days = -1\n").is_err(), "negative days must be refused");
    }

    #[test]
    fn read_config_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomrecorder.toml");
        fs::write(&path, "db = \"/x.db\"\n\nretention_days = true\n").unwrap();
        let err = read_config(&path, true).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()) && text.contains("line 3"), "{text}");
    }

    #[test]
    fn cmdline_and_group_are_read_and_sharing_redacts_by_default() {
        let file = parse("cmdline = \"none\"\n").unwrap();
        assert_eq!(Settings::resolve(None, RetentionFlags::default(), file).cmdline, CmdlinePolicy::None);
        let shared = Settings::resolve(None, RetentionFlags::default(), parse("group = \"adm\"\n").unwrap());
        assert_eq!((shared.group.as_deref(), shared.cmdline), (Some("adm"), CmdlinePolicy::Redacted));
        let asked = parse("group = \"adm\"\ncmdline = \"full\"\n").unwrap();
        assert_eq!(Settings::resolve(None, RetentionFlags::default(), asked).cmdline, CmdlinePolicy::Full);
        let err = parse("\ncmdline = \"some\"\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert!(err.message.contains("full") && err.message.contains("redacted"), "{err:?}");
    }

    #[test]
    fn a_database_path_that_cannot_work_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let empty = check_db(Path::new(""), "`db` in x.toml", true).unwrap_err();
        assert!(
            empty.to_string().contains("`db` in x.toml") && empty.to_string().contains("empty"),
            "{empty}"
        );
        assert!(check_db(Path::new(""), "--db", false).is_err(), "readers too");
        let is_dir = check_db(dir.path(), "--db", false).unwrap_err();
        assert!(is_dir.to_string().contains("is a directory"), "{is_dir}");
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let under_a_file = check_db(&file.join("oom.db"), "--db", true).unwrap_err();
        assert!(under_a_file.to_string().contains("is not a directory"), "{under_a_file}");
        check_db(&dir.path().join("new/dir/oom.db"), "--db", true).unwrap();
        check_db(&dir.path().join("oom.db"), "--db", false).unwrap();
    }

    #[test]
    fn only_a_default_file_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.toml");
        assert_eq!(read_config(&absent, false).unwrap(), Config::default());
        let err = read_config(&absent, true).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }) && err.to_string().contains("absent.toml"), "{err}");
    }
}
