//! Prometheus metrics of the recorded OOM kills, for fleets.
//!
//! The model ([`Metrics`]) is fed by the daemon (kills, losses, the kernel's
//! own count, the audit) and rendered in the Prometheus text format (0.0.4)
//! by the official client, `prometheus-client`. Two ways out: a small HTTP
//! listener serving `GET /metrics` ([`MetricsServer`]) and a file for
//! node_exporter's textfile collector ([`write_textfile`], [`textfile_loop`]).
//! This module depends on nothing else in the crate: the daemon wires it in.
//!
//! # Series
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `oomrecorder_oom_kills_total` | counter | `namespace,pod,container,unit,scope,constraint` (+`comm` opt-in) |
//! | `oomrecorder_last_oom_kill_timestamp_seconds` | gauge | the same |
//! | `oomrecorder_oom_kills_by_scope_total` | counter | `scope` |
//! | `oomrecorder_victim_rss_bytes` | histogram | `scope` |
//! | `oomrecorder_kernel_oom_kills_total` | counter | |
//! | `oomrecorder_events_lost_total` | counter | `stage` |
//! | `oomrecorder_audit_unrecorded_oom_kills` | gauge | |
//! | `oomrecorder_build_info` | gauge (1) | `version,attach` |
//!
//! Label names are kube-state-metrics' (`namespace`, `pod`, `container`), so
//! `... * on (namespace, pod) group_left (node) kube_pod_info` joins without
//! `label_replace`. Nothing unbounded or unique per kill is a label: no pid,
//! container id, pod uid or cgroup path; the victim's `comm` only when the
//! operator opts in ([`MetricsOptions::comm_label`]), since every new command
//! name is a new series.
//!
//! # The counter-initialisation pitfall, and what this exposition does
//!
//! A series that first appears at value N is invisible to `increase()` and
//! `rate()` in Prometheus 2.x: they need two samples, so the kill that
//! created the series (the first kill of a brand-new pod, which is the usual
//! case: pods are named per replica set) counts for nothing. Prometheus'
//! advice is to initialise every label set at 0, but the pods that will be
//! killed are not known before they are. So:
//!
//! - The per-pod series carry the all-time count *and*
//!   `oomrecorder_last_oom_kill_timestamp_seconds`. The alert "a pod was
//!   OOM-killed" fires on the timestamp (`> time() - 600`), which is exact
//!   from the first sample on: no counter arithmetic at all.
//! - Everything whose label sets *are* known up front is exposed at 0 from
//!   the daemon's start: `oomrecorder_oom_kills_by_scope_total` and the RSS
//!   histogram for each of the six scopes, and `events_lost` for each stage.
//!   `increase()` over those is exact, including a node's first kill; the
//!   dashboard's node- and scope-level panels use them.
//! - Counting the kills of one pod in a window (the "repeated kills" rule,
//!   the per-pod panels) uses `max_over_time(c[w]) - c offset w` for series
//!   that existed at the window's start, `or max_over_time(c[w]) -
//!   min_over_time(c[w]) + 1` for series that (re)appeared inside it, whose
//!   first sample is itself a kill (a series only appears because of one).
//!   See packaging/prometheus/oomrecorder-rules.yml.
//!
//! Not chosen: exposing a new pod's series at 0 for a first scrape and at
//! its real value afterwards. It lies about when the kill happened, is
//! wrong with two Prometheus replicas scraping the same daemon, and cannot
//! work for the textfile collector.
//!
//! # Ten minutes, then gone
//!
//! A per-pod series whose last kill is more than [`SERIES_TTL`] old is left
//! out of the exposition: a scrape after the pod is deleted still sees the
//! kill, but series of gone containers do not pile up. Its all-time count is
//! kept (as a 64-bit hash of the label set and a count, about 20 bytes per
//! label set ever killed, bounded by the store's `max_records`), so a
//! container killed again an hour later reappears at its true count.

mod http;
mod model;
mod textfile;

pub use http::MetricsServer;
pub use model::{
    Clock, Constraint, KillLabels, LossStage, Metrics, MetricsOptions, Scope, SystemClock, RSS_BUCKETS_BYTES,
    SERIES_TTL,
};
pub use textfile::{textfile_loop, write_textfile};

use std::{fmt, io, net::SocketAddr, path::PathBuf};

/// `Content-Type` of the exposition: the Prometheus text format, 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What can go wrong here, with the address or path it concerns.
#[derive(Debug)]
pub enum MetricsError {
    /// The listener could not bind (in use, no permission, no such address).
    Bind { addr: SocketAddr, source: io::Error },
    /// The textfile (or its `.tmp` sibling) could not be written or renamed.
    Textfile { path: PathBuf, source: io::Error },
    /// The encoder failed; writing into a `String` cannot, so this is a bug.
    Encode,
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::Bind { addr, source } => {
                write!(f, "cannot listen for metrics on {addr}: {source}")
            }
            MetricsError::Textfile { path, source } => {
                write!(f, "cannot write the metrics file {}: {source}", path.display())
            }
            MetricsError::Encode => f.write_str("encoding the metrics failed"),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsError::Bind { source, .. } | MetricsError::Textfile { source, .. } => Some(source),
            MetricsError::Encode => None,
        }
    }
}

#[cfg(test)]
mod testing;
