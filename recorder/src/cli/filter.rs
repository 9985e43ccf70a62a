//! The selection flags `list` and `stats` share, validated into a
//! [`store::Filter`](crate::store::Filter) before any query runs.

use std::str::FromStr;

use clap::Args;
use jiff::Timestamp;

use super::when;
use crate::{
    model::scope::OomScope,
    store::{Filter, Store, StoreError},
};

/// Where the kernel names the running boot (random per boot, see
/// Documentation/admin-guide/sysctl/kernel.rst, `random`).
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

#[derive(Debug, Args)]
pub struct TimeArgs {
    /// Only kills at or after WHEN: RFC 3339, a date, a local date and time,
    /// `today`, `yesterday`, or a span ago (2h, 3d, 1w)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<Timestamp>,
    /// Only kills at or before WHEN (same forms as --since)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<Timestamp>,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub time: TimeArgs,
    /// Only victims with this command name (exactly, as the kernel's comm)
    #[arg(long, value_name = "COMM")]
    pub comm: Option<String>,
    /// Only victims with this PID
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Only kills whose victim, task or OOM cgroup path contains TEXT
    #[arg(long, value_name = "TEXT")]
    pub cgroup: Option<String>,
    /// Only kills in this container: a prefix of its id, or its name
    #[arg(long, value_name = "ID|NAME")]
    pub container: Option<String>,
    /// Only kills in containers of this image: as the runtime names it
    /// (nginx:1.25), or without its tag (nginx)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Only kills in the Kubernetes pod of this name
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Only kills in pods of this Kubernetes namespace
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Only kills in this systemd unit (service or scope)
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// Only kills of one boot: 0 the current one, -1 the one before, -N, or a boot id
    #[arg(long, value_name = "BOOT", allow_hyphen_values = true)]
    pub boot: Option<BootSpec>,
    /// Only system-wide OOMs: the kernel's CONSTRAINT_NONE, else a kill line
    /// saying "Out of memory", else no memory cgroup at its limit at the kill
    #[arg(long, conflicts_with = "memcg")]
    pub global: bool,
    /// Only OOMs of a memory cgroup's limit: CONSTRAINT_MEMCG, else a kill
    /// line saying "Memory cgroup out of memory", else a cgroup at its limit
    #[arg(long)]
    pub memcg: bool,
}

/// `clap` reports this error with exit code 2; its text names every accepted form.
fn parse_when(text: &str) -> Result<Timestamp, when::WhenError> {
    when::parse_now(text)
}

/// A `--boot` value: how many boots back (0 is the running one), or an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootSpec {
    Back(u32),
    Id(String),
}

impl FromStr for BootSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(BootSpec::Back(0));
        }
        if let Some(n) = s.strip_prefix('-') {
            return n
                .parse::<u32>()
                .map(BootSpec::Back)
                .map_err(|_| format!("`{s}` is not a boot: use 0, -1, -N or a boot id"));
        }
        // boot_id is a UUID; accept any hex-and-dash text so a pasted id works.
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(BootSpec::Id(s.to_ascii_lowercase()));
        }
        Err(format!("`{s}` is not a boot: use 0, -1, -N or a boot id"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("reading the current boot id from {path}: {source}")]
    BootId { path: &'static str, source: std::io::Error },
    #[error("--boot -{back}: the database has records of only {known} earlier boot(s)")]
    NoSuchBoot { back: u32, known: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The boot `spec` names, given the running boot and the boots with records
/// ordered by their earliest record. Earlier boots are counted back from the
/// newest one that is not the running boot.
pub fn resolve_boot(spec: &BootSpec, current: &str, boots: &[String]) -> Result<String, FilterError> {
    match spec {
        BootSpec::Id(id) => Ok(id.clone()),
        BootSpec::Back(0) => Ok(current.to_owned()),
        BootSpec::Back(back) => {
            let earlier: Vec<&String> = boots.iter().filter(|b| *b != current).collect();
            let index = earlier.len().checked_sub(*back as usize);
            index
                .and_then(|i| earlier.get(i))
                .map(|b| (*b).clone())
                .ok_or(FilterError::NoSuchBoot { back: *back, known: earlier.len() })
        }
    }
}

fn current_boot_id() -> Result<String, FilterError> {
    std::fs::read_to_string(BOOT_ID_PATH)
        .map(|s| s.trim().to_owned())
        .map_err(|source| FilterError::BootId { path: BOOT_ID_PATH, source })
}

fn ns(ts: Option<Timestamp>) -> Option<i64> {
    // Instants past year 2262 do not fit i64 ns; clamp rather than fail.
    ts.map(|t| {
        i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() < 0 { i64::MIN } else { i64::MAX })
    })
}

impl TimeArgs {
    pub fn filter(&self) -> Filter {
        Filter { since_ns: ns(self.since), until_ns: ns(self.until), ..Filter::default() }
    }
}

impl FilterArgs {
    /// The store filter these flags mean; reads the store only for `--boot -N`.
    pub fn filter(&self, store: &Store) -> Result<Filter, FilterError> {
        let boot_id = match &self.boot {
            None => None,
            Some(BootSpec::Id(id)) => Some(id.clone()),
            Some(spec) => Some(resolve_boot(spec, &current_boot_id()?, &store.boots()?)?),
        };
        let scope = match (self.global, self.memcg) {
            (true, _) => Some(OomScope::Global),
            (_, true) => Some(OomScope::Memcg),
            _ => None,
        };
        Ok(Filter {
            comm: self.comm.clone(),
            pid: self.pid,
            cgroup: self.cgroup.clone(),
            container: self.container.clone(),
            image: self.image.clone(),
            pod: self.pod.clone(),
            namespace: self.namespace.clone(),
            unit: self.unit.clone(),
            boot_id,
            scope,
            ..self.time.filter()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_count_back_from_the_newest_earlier_one() {
        let boots: Vec<String> = ["a", "b", "cur"].iter().map(|s| s.to_string()).collect();
        let back = |n| resolve_boot(&BootSpec::Back(n), "cur", &boots).ok();
        assert_eq!(back(0).as_deref(), Some("cur"));
        assert_eq!(back(1).as_deref(), Some("b"));
        assert_eq!(back(2).as_deref(), Some("a"));
        assert_eq!(back(3), None);
        // The running boot may have no records yet.
        let boots = &boots[..2];
        assert_eq!(resolve_boot(&BootSpec::Back(1), "cur", boots).ok().as_deref(), Some("b"));
    }

    #[test]
    fn boot_values_parse() {
        assert_eq!("0".parse(), Ok(BootSpec::Back(0)));
        assert_eq!("-2".parse(), Ok(BootSpec::Back(2)));
        assert_eq!("90E19252-c4f3".parse(), Ok(BootSpec::Id("90e19252-c4f3".into())));
        assert!("last".parse::<BootSpec>().is_err());
        assert!("-x".parse::<BootSpec>().is_err());
    }
}
