//! oomrecorder: records every Linux OOM kill with the kernel's own figures.
//!
//! The folders follow the data, from the kernel to the person asking:
//!
//! - [`kernel`]: how the running kernel differs, decided once at start
//!   (attach point, BTF offsets, memory cgroup version, capabilities, tracefs).
//! - [`sources`]: thin readers of each source of truth: the eBPF program's
//!   ring buffer, /dev/kmsg, the journal, the cgroup files, imported logs.
//! - [`report`]: the pure parser of the kernel's OOM report.
//! - [`model`]: the kill record, its figures and every conversion into it,
//!   badness, the diagnosis, and the JSON shape scripts rely on.
//! - [`pipeline`]: the daemon: readers, snapshotter and writer joined by
//!   channels, the join of facts into one record, retention, counters.
//! - [`store`]: SQLite: migrations, kills, filters, stats, state, runs.
//! - [`metrics`]: the Prometheus exposition (HTTP and textfile) for fleets.
//! - [`cli`]: the commands; a leaf that nothing else imports.
//!
//! [`clock`] and [`config`] serve every layer.

pub mod cli;
pub mod clock;
pub mod config;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod sources;
pub mod store;
