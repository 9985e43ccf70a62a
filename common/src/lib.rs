//! Types shared by the eBPF program (`recorder-ebpf`) and the daemon
//! (`recorder`). Each layout is defined here once; both sides compile against it.
//!
//! Rules for every shared struct (they cross the kernel/user boundary as raw
//! bytes): `#[repr(C)]`, fixed-size arrays, integers instead of `bool`, explicit
//! padding fields so no byte is uninitialised, and a size assertion.
#![no_std]

use core::mem::size_of;

/// `TASK_COMM_LEN` in include/linux/sched.h: a task name is at most 15 bytes
/// plus a NUL.
pub const COMM_LEN: usize = 16;

/// Layout version of [`OomEvent`]. Bump it whenever a field moves; user space
/// refuses events of any other version instead of misreading them.
pub const OOM_EVENT_VERSION: u32 = 1;

/// Bits of [`OomEvent::present`]: which `oom:mark_victim` fields the running
/// kernel has. Kernels without commit 72ba14deb40a (mainline 6.9; backported
/// to the 6.1/5.15/5.10/5.4 stable lines in 2025) carry only `pid`.
pub mod present {
    pub const COMM: u32 = 1 << 0;
    pub const TOTAL_VM: u32 = 1 << 1;
    pub const ANON_RSS: u32 = 1 << 2;
    pub const FILE_RSS: u32 = 1 << 3;
    pub const SHMEM_RSS: u32 = 1 << 4;
    pub const UID: u32 = 1 << 5;
    pub const PGTABLES: u32 = 1 << 6;
    pub const OOM_SCORE_ADJ: u32 = 1 << 7;
}

/// One OOM victim, written by `oom_mark_victim` into the ring buffer.
///
/// Memory figures are in kB, exactly as the tracepoint gives them
/// (include/trace/events/oom.h, `TRACE_EVENT(mark_victim)`, which converts
/// pages with `K()`); fields whose bit is clear in `present` are zero and must
/// be read as unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomEvent {
    /// [`OOM_EVENT_VERSION`].
    pub version: u32,
    /// Bits from [`present`].
    pub present: u32,
    /// `bpf_ktime_get_boot_ns()` at the tracepoint: CLOCK_BOOTTIME, counts suspend.
    pub boot_ns: u64,
    /// `bpf_ktime_get_ns()` at the tracepoint: CLOCK_MONOTONIC, which does not
    /// count suspend, like the kernel log's timestamps.
    pub mono_ns: u64,
    /// Victim's `task->pid` (a thread id; equal to the tgid for a
    /// single-threaded process).
    pub victim_pid: i32,
    pub victim_uid: u32,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    /// The current task at the tracepoint, i.e. the task whose allocation
    /// triggered the OOM (or the oom_reaper / a group-kill walker).
    pub trigger_pid: u32,
    pub trigger_tgid: u32,
    /// `short` in the tracepoint, widened.
    pub oom_score_adj: i32,
    pub _pad: u32,
    pub victim_comm: [u8; COMM_LEN],
    pub trigger_comm: [u8; COMM_LEN],
}

pub const OOM_EVENT_SIZE: usize = 120;
const _: () = assert!(size_of::<OomEvent>() == OOM_EVENT_SIZE);

/// Where one tracepoint field sits in the raw record, as the tracefs `format`
/// file says (`offset:N; size:N;`). `size == 0` means this kernel lacks it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TpField {
    pub offset: u32,
    pub size: u32,
}

impl TpField {
    pub const ABSENT: TpField = TpField { offset: 0, size: 0 };

    pub const fn is_present(&self) -> bool {
        self.size != 0
    }
}

/// Field offsets of `oom:mark_victim` on the running kernel, read from
/// `/sys/kernel/tracing/events/oom/mark_victim/format` at start and handed to
/// the program as the global `MARK_VICTIM_LAYOUT`. Rust eBPF gets no CO-RE
/// relocations for tracepoint records, so this is how the program follows
/// layout changes across kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarkVictimLayout {
    pub pid: TpField,
    /// `__data_loc char[] comm`: a u32 whose low 16 bits are the string's
    /// offset in the record and high 16 bits its length
    /// (include/trace/stages/stage2_data_offsets.h).
    pub comm: TpField,
    pub total_vm: TpField,
    pub anon_rss: TpField,
    pub file_rss: TpField,
    pub shmem_rss: TpField,
    pub uid: TpField,
    pub pgtables: TpField,
    pub oom_score_adj: TpField,
}

const _: () = assert!(size_of::<MarkVictimLayout>() == 72);

impl MarkVictimLayout {
    /// Every field absent: the program's compiled-in default, replaced at load.
    pub const ABSENT: MarkVictimLayout = MarkVictimLayout {
        pid: TpField::ABSENT,
        comm: TpField::ABSENT,
        total_vm: TpField::ABSENT,
        anon_rss: TpField::ABSENT,
        file_rss: TpField::ABSENT,
        shmem_rss: TpField::ABSENT,
        uid: TpField::ABSENT,
        pgtables: TpField::ABSENT,
        oom_score_adj: TpField::ABSENT,
    };

    /// The [`present`] bits this layout will set in every event.
    pub const fn present_bits(&self) -> u32 {
        let mut bits = 0;
        if self.comm.is_present() {
            bits |= present::COMM;
        }
        if self.total_vm.is_present() {
            bits |= present::TOTAL_VM;
        }
        if self.anon_rss.is_present() {
            bits |= present::ANON_RSS;
        }
        if self.file_rss.is_present() {
            bits |= present::FILE_RSS;
        }
        if self.shmem_rss.is_present() {
            bits |= present::SHMEM_RSS;
        }
        if self.uid.is_present() {
            bits |= present::UID;
        }
        if self.pgtables.is_present() {
            bits |= present::PGTABLES;
        }
        if self.oom_score_adj.is_present() {
            bits |= present::OOM_SCORE_ADJ;
        }
        bits
    }
}

/// Indices into the per-CPU `COUNTERS` array. User space sums the CPUs.
pub mod counter {
    /// `oom:mark_victim` hits: every victim the kernel marked.
    pub const SEEN: u32 = 0;
    /// Events lost because the ring buffer was full (`bpf_ringbuf_reserve`
    /// returned NULL). Never silent: the daemon reports and stores the count.
    pub const RINGBUF_FULL: u32 = 1;
    /// Number of counters.
    pub const COUNT: u32 = 2;
}

/// Why raw ring-buffer bytes are not an [`OomEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is not exactly [`OOM_EVENT_SIZE`] bytes.
    Length { got: usize },
    /// The record was written by a program of another layout version.
    Version { got: u32 },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Length { got } => {
                write!(f, "event is {got} bytes, expected {OOM_EVENT_SIZE}")
            }
            DecodeError::Version { got } => {
                write!(f, "event layout version {got}, expected {OOM_EVENT_VERSION}")
            }
        }
    }
}

impl OomEvent {
    /// Decodes one ring-buffer record. The only way user space turns bytes
    /// into an event: the length and the version are checked first.
    pub fn decode(bytes: &[u8]) -> Result<OomEvent, DecodeError> {
        if bytes.len() != OOM_EVENT_SIZE {
            return Err(DecodeError::Length { got: bytes.len() });
        }
        // SAFETY: the length equals size_of::<OomEvent>() (checked above), every
        // field is a plain integer or byte array so any bit pattern is valid, and
        // read_unaligned makes no alignment assumption about the ring buffer.
        let event = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<OomEvent>()) };
        if event.version != OOM_EVENT_VERSION {
            return Err(DecodeError::Version { got: event.version });
        }
        Ok(event)
    }

    /// The event's bytes as the program writes them (for round-trip tests and
    /// for replaying events into the pipeline).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: OomEvent is repr(C) with explicit padding, so all
        // OOM_EVENT_SIZE bytes are initialised; the slice borrows self.
        unsafe { core::slice::from_raw_parts((self as *const OomEvent).cast::<u8>(), OOM_EVENT_SIZE) }
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C), integers only, no padding bytes (size asserted above).
    unsafe impl aya::Pod for super::MarkVictimLayout {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_round_trips() {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::COMM | present::ANON_RSS,
            boot_ns: 0x0102_0304_0506_0708,
            mono_ns: 42,
            victim_pid: 4242,
            victim_uid: 1000,
            total_vm_kb: 1,
            anon_rss_kb: 2,
            file_rss_kb: 3,
            shmem_rss_kb: 4,
            pgtables_kb: 5,
            trigger_pid: 6,
            trigger_tgid: 7,
            oom_score_adj: -1000,
            _pad: 0,
            victim_comm: *b"victim\0\0\0\0\0\0\0\0\0\0",
            trigger_comm: *b"trigger\0\0\0\0\0\0\0\0\0",
        };
        assert_eq!(OomEvent::decode(event.as_bytes()), Ok(event));
    }

    #[test]
    fn decode_checks_length_and_version() {
        let event = OomEvent { version: OOM_EVENT_VERSION, ..OomEvent::default() };
        let bytes = event.as_bytes();
        assert_eq!(
            OomEvent::decode(&bytes[..OOM_EVENT_SIZE - 1]),
            Err(DecodeError::Length { got: OOM_EVENT_SIZE - 1 })
        );
        let mut longer = [0u8; OOM_EVENT_SIZE + 8];
        longer[..OOM_EVENT_SIZE].copy_from_slice(bytes);
        assert_eq!(OomEvent::decode(&longer), Err(DecodeError::Length { got: OOM_EVENT_SIZE + 8 }));
        let old = OomEvent { version: 0, ..OomEvent::default() };
        assert_eq!(OomEvent::decode(old.as_bytes()), Err(DecodeError::Version { got: 0 }));
    }

    #[test]
    fn present_bits_follow_the_layout() {
        assert_eq!(MarkVictimLayout::ABSENT.present_bits(), 0);
        let layout = MarkVictimLayout {
            pid: TpField { offset: 8, size: 4 },
            anon_rss: TpField { offset: 24, size: 8 },
            ..MarkVictimLayout::ABSENT
        };
        assert_eq!(layout.present_bits(), present::ANON_RSS);
    }
}
