//! oomrecorder: records every Linux OOM kill with the kernel's own figures.
//!
//! One module per source of truth: `loader` (eBPF program and attach point),
//! `tracefs` (tracepoint layout), `report` (the kernel's kmsg OOM
//! report), `kill` (the record), `store` (SQLite),
//! `daemon` (the pipeline), `cli` (commands).

pub mod caps;
pub mod cgroupfs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod correlate;
pub mod daemon;
pub mod diagnosis;
pub mod exit;
pub mod identity;
pub mod import;
pub mod journal;
pub mod kernel;
pub mod kernel_log;
pub mod kill;
pub mod kmsg;
pub mod loader;
pub mod metrics;
pub mod report;
pub mod retention;
pub mod runs;
pub mod snapshotter;
pub mod store;
pub mod tracefs;
pub mod writer;
