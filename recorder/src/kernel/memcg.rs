//! The memory controller's hierarchy: cgroup v1's `memory` controller or
//! cgroup2, and where it is mounted. Decided once, here, for everything
//! that depends on it (the swap counter the eBPF program reads, where the
//! snapshot reads the cgroup's files, what `doctor` reports).

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Where cgroup file systems are mounted on every host this runs on.
pub const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

/// v1 (the `memory` controller's own hierarchy) or v2 (cgroup2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemcgVersion {
    V1,
    V2,
}

/// Where the memory cgroup hierarchy is mounted: the cgroup v1 memory
/// controller, or cgroup2 (at /sys/fs/cgroup, or /sys/fs/cgroup/unified on
/// hybrid systems).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: MemcgVersion,
    pub root: PathBuf,
}

/// Finds the memory controller's hierarchy under `sys_fs_cgroup`.
pub fn memory_hierarchy(sys_fs_cgroup: &Path) -> Option<Hierarchy> {
    let v1 = sys_fs_cgroup.join("memory");
    if v1.join("memory.usage_in_bytes").exists() {
        return Some(Hierarchy { version: MemcgVersion::V1, root: v1 });
    }
    for root in [sys_fs_cgroup.to_path_buf(), sys_fs_cgroup.join("unified")] {
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Some(Hierarchy { version: MemcgVersion::V2, root });
        }
    }
    None
}

impl MemcgVersion {
    /// 1 or 2, as records and `doctor` say it.
    pub const fn number(self) -> u8 {
        match self {
            MemcgVersion::V1 => 1,
            MemcgVersion::V2 => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_memory_mount_wins_then_cgroup2_at_the_root_or_unified() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(memory_hierarchy(root.path()), None, "no memory controller anywhere");
        let unified = root.path().join("unified");
        fs::create_dir_all(&unified).unwrap();
        fs::write(unified.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        assert_eq!(
            memory_hierarchy(root.path()),
            Some(Hierarchy { version: MemcgVersion::V2, root: unified.clone() }),
            "hybrid: cgroup2 at /sys/fs/cgroup/unified"
        );
        fs::write(root.path().join("cgroup.controllers"), "memory\n").unwrap();
        assert_eq!(memory_hierarchy(root.path()).map(|h| h.root), Some(root.path().to_path_buf()));
        let v1 = root.path().join("memory");
        fs::create_dir_all(&v1).unwrap();
        fs::write(v1.join("memory.usage_in_bytes"), "0\n").unwrap();
        assert_eq!(memory_hierarchy(root.path()), Some(Hierarchy { version: MemcgVersion::V1, root: v1 }));
    }
}
