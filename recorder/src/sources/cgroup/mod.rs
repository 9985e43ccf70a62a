//! The victim's memory cgroup as its files show it, and who it was from the
//! node's own files.

pub mod bolt;
pub mod files;
pub mod runtimes;
