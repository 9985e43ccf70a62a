//! `oomrecorder run`: the sources joined to one writer by channels.
//!
//! The eBPF ring buffer and /dev/kmsg are read on one event loop
//! ([`daemon`]), the journal and the cgroup snapshots on threads of their
//! own; every fact goes to the [`writer`], the one owner of the SQLite
//! connection, where [`join`] decides which record it belongs to. The
//! sources never wait on the disk.

pub mod counters;
pub mod daemon;
pub mod events;
pub mod footprint;
pub mod join;
pub mod journal;
pub mod kernel_log;
pub mod notify;
pub mod publish;
pub mod retention;
pub mod snapshotter;
#[cfg(test)]
mod tests;
pub mod writer;
