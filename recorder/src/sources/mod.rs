//! Thin readers of each source of truth. Each turns what it reads into the
//! model's types and knows nothing of the pipeline that consumes it.

pub mod cgroup;
pub mod ebpf;
pub mod import;
pub mod journal;
pub mod kmsg;
