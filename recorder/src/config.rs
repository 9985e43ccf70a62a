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

use crate::pipeline::{
    daemon::MetricsConfig,
    retention::{DEFAULT_MAX_AGE_DAYS, DEFAULT_MAX_RECORDS},
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
        Settings {
            db,
            retention,
            max_records: (max_records > 0).then_some(max_records),
            metrics,
            journal_entries: file.journal_entries.unwrap_or(true),
        }
    }
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
    fn only_a_default_file_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.toml");
        assert_eq!(read_config(&absent, false).unwrap(), Config::default());
        let err = read_config(&absent, true).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }) && err.to_string().contains("absent.toml"), "{err}");
    }
}
