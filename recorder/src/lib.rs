//! oomrecorder: records every Linux OOM kill with the kernel's own figures.
//!
//! One module per source of truth: `loader` (eBPF program and attach point),
//! `tracefs` (tracepoint layout), `kill` (the record), `store` (SQLite),
//! `daemon` (the pipeline), `cli` (commands).

pub mod caps;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod exit;
pub mod kill;
pub mod loader;
pub mod retention;
pub mod store;
pub mod tracefs;
