//! The kernel's own count of OOM kills, `/proc/vmstat` `oom_kill` (4.13+):
//! the truth every audit of the recorder is checked against.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum VmstatError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} has no `oom_kill` counter (kernels before 4.13 lack it)")]
    NoOomKill { path: PathBuf },
}

/// The `oom_kill` line of `/proc/vmstat`. The kernel counts one per task it
/// kills (`count_vm_event(OOM_KILL)` in `__oom_kill_process`, mm/oom_kill.c),
/// machine-wide, memcg and global OOMs alike; a task already exiting that is
/// only marked as victim (`task_will_free_mem()` path) is not counted.
pub fn parse_vmstat_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
}

pub fn read_vmstat_oom_kill(proc_root: &Path) -> Result<u64, VmstatError> {
    let path = proc_root.join("vmstat");
    let text =
        fs::read_to_string(&path).map_err(|source| VmstatError::Read { path: path.clone(), source })?;
    parse_vmstat_oom_kill(&text).ok_or(VmstatError::NoOomKill { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmstat_oom_kill_is_read_from_its_own_line() {
        let text = "nr_free_pages 12\noom_kill_other 9\noom_kill 53\npgfault 7\n";
        assert_eq!(parse_vmstat_oom_kill(text), Some(53));
        assert_eq!(parse_vmstat_oom_kill("nr_free_pages 12\n"), None);
    }
}
