//! Capability check before the daemon touches anything.
//!
//! Loading a tracepoint program and a ring buffer needs CAP_BPF and
//! CAP_PERFMON (Linux 5.8+, include/uapi/linux/capability.h); CAP_SYS_ADMIN
//! grants both (and is what kernels before 5.8 require).

use std::{fs, io, path::Path};

pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// Parses the `CapEff:` line of `/proc/<pid>/status` (fs/proc/array.c,
/// `render_cap_t`: 16 hex digits).
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// The capabilities the daemon lacks, by name; empty when it can run.
pub fn missing_for_daemon(cap_eff: u64) -> Vec<&'static str> {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect()
}

/// Reads this process's effective capabilities.
pub fn read_cap_eff(proc_root: &Path) -> io::Result<u64> {
    let path = proc_root.join("self/status");
    let status = fs::read_to_string(&path)?;
    parse_cap_eff(&status).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("no CapEff line in {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_bpf_perfmon_can_run() {
        // A full root set as the kernel prints it since 5.9 (41 capabilities).
        assert_eq!(parse_cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"), Some(0x1ff_ffff_ffff));
        assert!(missing_for_daemon(0x1ff_ffff_ffff).is_empty());
        assert!(missing_for_daemon((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert!(missing_for_daemon(1 << CAP_SYS_ADMIN).is_empty());
    }

    #[test]
    fn names_what_is_missing() {
        assert_eq!(missing_for_daemon(0), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_for_daemon(1 << CAP_BPF), ["CAP_PERFMON"]);
        assert_eq!(parse_cap_eff("CapEff:\tnot-hex\n"), None);
        assert_eq!(parse_cap_eff("CapPrm:\t0\n"), None);
    }
}
