//! The record of one OOM victim, as the store keeps it and the CLI shows it.
//!
//! Every figure is an `Option`: `None` means the recorder does not know it
//! (the kernel did not give it), and is written as `null`, never as 0.

use common::{present, OomEvent, COMM_LEN};

/// Where a record's facts came from; named in the JSON `sources` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `oom:mark_victim` tracepoint, read by the eBPF program at the kill.
    Ebpf,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        match name {
            "ebpf" => Some(Source::Ebpf),
            _ => None,
        }
    }
}

/// The victim: the task the kernel chose and killed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Victim {
    pub pid: i32,
    pub tgid: Option<i32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
}

/// The trigger: the task that was running (allocating) when the kernel marked
/// the victim. Not the victim, and not necessarily in the victim's cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trigger {
    pub pid: Option<i32>,
    pub tgid: Option<i32>,
    pub comm: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// Row id; `None` until stored.
    pub id: Option<i64>,
    /// Wall clock at the kill, Unix ns, converted from `boot_ns`.
    pub time_ns: i64,
    /// `/proc/sys/kernel/random/boot_id` of the boot the kill happened in.
    pub boot_id: String,
    /// CLOCK_BOOTTIME at the kill.
    pub boot_ns: u64,
    /// CLOCK_MONOTONIC at the kill (the kernel log's clock, which stops in suspend).
    pub mono_ns: Option<u64>,
    /// Wall clock when the record was stored, Unix ns.
    pub recorded_ns: i64,
    pub sources: Vec<Source>,
    pub victim: Victim,
    pub trigger: Trigger,
    /// The victim's memory cgroup path (filled by later sources).
    pub cgroup: Option<String>,
    /// That cgroup's memory limit in bytes (filled by later sources).
    pub memory_limit_bytes: Option<u64>,
}

/// A task name from a fixed `TASK_COMM_LEN` buffer: up to the first NUL;
/// bytes that are not UTF-8 (a task can name itself anything) become U+FFFD.
pub fn comm_from_bytes(raw: &[u8; COMM_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Kill {
    /// Builds the record of one ring-buffer event. `time_ns` and `recorded_ns`
    /// come from the caller so this stays pure.
    pub fn from_event(event: &OomEvent, boot_id: &str, time_ns: i64, recorded_ns: i64) -> Kill {
        let has = |bit: u32| event.present & bit != 0;
        let kb = |bit: u32, value: u64| has(bit).then_some(value);
        Kill {
            id: None,
            time_ns,
            boot_id: boot_id.to_owned(),
            boot_ns: event.boot_ns,
            mono_ns: Some(event.mono_ns),
            recorded_ns,
            sources: vec![Source::Ebpf],
            victim: Victim {
                pid: event.victim_pid,
                // The tracepoint carries the victim's pid (a thread id) only.
                tgid: None,
                comm: has(present::COMM).then(|| comm_from_bytes(&event.victim_comm)),
                uid: has(present::UID).then_some(event.victim_uid),
                total_vm_kb: kb(present::TOTAL_VM, event.total_vm_kb),
                anon_rss_kb: kb(present::ANON_RSS, event.anon_rss_kb),
                file_rss_kb: kb(present::FILE_RSS, event.file_rss_kb),
                shmem_rss_kb: kb(present::SHMEM_RSS, event.shmem_rss_kb),
                pgtables_kb: kb(present::PGTABLES, event.pgtables_kb),
                oom_score_adj: has(present::OOM_SCORE_ADJ).then_some(event.oom_score_adj),
            },
            trigger: Trigger {
                pid: Some(event.trigger_pid as i32),
                tgid: Some(event.trigger_tgid as i32),
                comm: Some(comm_from_bytes(&event.trigger_comm)),
            },
            cgroup: None,
            memory_limit_bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::OOM_EVENT_VERSION;

    #[test]
    fn absent_fields_are_unknown_not_zero() {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::ANON_RSS,
            victim_pid: 7,
            anon_rss_kb: 0,
            total_vm_kb: 0,
            ..OomEvent::default()
        };
        let kill = Kill::from_event(&event, "b", 1, 2);
        assert_eq!(kill.victim.anon_rss_kb, Some(0), "a present zero stays a zero");
        assert_eq!(kill.victim.total_vm_kb, None);
        assert_eq!(kill.victim.comm, None);
        assert_eq!(kill.victim.oom_score_adj, None);
        assert_eq!(kill.victim.tgid, None);
    }

    #[test]
    fn comm_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(comm_from_bytes(b"a b(c).d-e\0junk!"), "a b(c).d-e");
        assert_eq!(comm_from_bytes(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm_from_bytes(b"ok\xff\0\0\0\0\0\0\0\0\0\0\0\0\0"), "ok\u{fffd}");
    }
}
