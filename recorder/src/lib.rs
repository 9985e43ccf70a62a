//! oomrecorder: records every Linux OOM kill with the kernel's own figures.
//!
//! One module per source of truth: `loader` (eBPF program and attach point),
//! `tracefs` (tracepoint layout), `report` (the kernel's kmsg OOM
//! report), `kill` (the record), `store` (SQLite),
//! `daemon` (the pipeline), `cli` (commands).

pub mod caps;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod exit;
pub mod kill;
pub mod loader;
pub mod report;
pub mod store;
pub mod tracefs;
