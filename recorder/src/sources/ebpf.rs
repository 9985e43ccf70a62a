//! Loading and attaching the eBPF program chosen by [`crate::kernel::plan`]:
//! the `mark_victim` raw tracepoint with BTF offsets as a global, or the
//! `oom:mark_victim` tracepoint with its tracefs record layout as a global.

use aya::{
    maps::{MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, RawTracePoint, TracePoint},
    Ebpf, EbpfError, EbpfLoader, VerifierLogLevel,
};
use common::{counter, KernelLayout, MarkVictimLayout};

use crate::kernel::AttachPoint;

/// The eBPF object built by `build.rs` (crate `recorder-ebpf`), embedded once.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/oomrecorder"));

const PROGRAM: &str = "oom_mark_victim";
const RAW_PROGRAM: &str = "oom_mark_victim_raw";
const EVENTS_MAP: &str = "EVENTS";
const COUNTERS_MAP: &str = "COUNTERS";
const LAYOUT_GLOBAL: &str = "MARK_VICTIM_LAYOUT";
const KERNEL_LAYOUT_GLOBAL: &str = "KERNEL_LAYOUT";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "the embedded eBPF object is empty: this binary was built with AYA_BUILD_SKIP=1; rebuild without it"
    )]
    EmptyObject,
    #[error("loading the eBPF object")]
    Object(#[source] EbpfError),
    #[error("the eBPF object has no {what} `{name}` (binary and object out of step; rebuild)")]
    Missing { what: &'static str, name: &'static str },
    #[error("loading program {program} into the kernel")]
    Program { program: &'static str, source: ProgramError },
    #[error("attaching {program} to the {hook}")]
    Attach { program: &'static str, hook: &'static str, source: ProgramError },
    #[error("opening map {name}")]
    Map { name: &'static str, source: MapError },
}

/// Sums of the program's per-CPU counters (`common::counter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Victims the program saw.
    pub seen: u64,
    /// Victims lost because the ring buffer was full.
    pub ringbuf_full: u64,
}

/// The attached program and the maps user space reads.
pub struct Probe {
    /// Owns the program and its attachment: dropping it detaches.
    pub ebpf: Ebpf,
    pub events: RingBuf<MapData>,
    pub counters: CounterMap,
}

pub struct CounterMap(PerCpuArray<MapData, u64>);

impl CounterMap {
    pub fn read(&self) -> Result<Counters, MapError> {
        let sum = |index: u32| -> Result<u64, MapError> {
            Ok(self.0.get(&index, 0)?.iter().fold(0u64, |acc, v| acc.wrapping_add(*v)))
        };
        Ok(Counters { seen: sum(counter::SEEN)?, ringbuf_full: sum(counter::RINGBUF_FULL)? })
    }
}

/// The ring buffer's size for this kernel, and why. With the group-kill key
/// (`kfield::GROUP_WALK`, 5.15+: `MEMCG_OOM_GROUP_KILL`) the members of a
/// memory.oom.group kill send short records (304 bytes with the ring's
/// header) and 2 MiB holds about 6,800 of them even if the daemon read
/// nothing during the kill. Without it (5.10) every victim sends its
/// cgroup's figures (2,616 bytes): 2 MiB held about 800, and the matrix's
/// 5,000-task group kill lost 46 under qemu; 8 MiB holds about 3,200, and
/// the daemon drains while the kernel walks the group. The kernel
/// allocates the pages at load and maps every one of them, twice, when
/// user space maps the ring (`ringbuf_map_mmap_user`, kernel/bpf/ringbuf.c,
/// calls `remap_vmalloc_range`, which inserts each page): the 2 MiB ring is
/// 4 MiB of the daemon's resident memory from the start.
fn ring_bytes(kernel: &KernelLayout) -> (u32, &'static str) {
    if kernel.has(common::kfield::GROUP_WALK) {
        (2 << 20, "a group kill's members share their cgroup's figures")
    } else {
        (8 << 20, "every victim carries its cgroup's figures on this kernel")
    }
}

impl Probe {
    /// Loads the program for `attach` (the other one stays unloaded) with
    /// both layouts as globals, and attaches it.
    pub fn load(
        attach: AttachPoint,
        layout: &MarkVictimLayout,
        kernel: &KernelLayout,
    ) -> Result<Probe, LoadError> {
        if EBPF_OBJECT.is_empty() {
            return Err(LoadError::EmptyObject);
        }
        let (ring, why) = ring_bytes(kernel);
        log::info!("ring buffer: {} MiB ({why})", ring >> 20);
        let mut ebpf = EbpfLoader::new()
            // Statistics only: a rejection still logs the verifier's error
            // and its instruction count, but no state per instruction. With
            // aya's default (per-instruction logging), a rejected program is
            // verified again with a log buffer ten times larger on each
            // ENOSPC: under qemu TCG a 5.10 kernel spent minutes on that
            // before the daemon could say why it could not attach.
            .verifier_log_level(VerifierLogLevel::STATS)
            .override_global(LAYOUT_GLOBAL, layout, true)
            .override_global(KERNEL_LAYOUT_GLOBAL, kernel, true)
            .map_max_entries(EVENTS_MAP, ring)
            .load(EBPF_OBJECT)
            .map_err(LoadError::Object)?;
        match attach {
            AttachPoint::RawTracepoint => {
                let program: &mut RawTracePoint = ebpf
                    .program_mut(RAW_PROGRAM)
                    .ok_or(LoadError::Missing { what: "program", name: RAW_PROGRAM })?
                    .try_into()
                    .map_err(|source| LoadError::Program { program: RAW_PROGRAM, source })?;
                program.load().map_err(|source| LoadError::Program { program: RAW_PROGRAM, source })?;
                program.attach("mark_victim").map_err(|source| LoadError::Attach {
                    program: RAW_PROGRAM,
                    hook: "mark_victim raw tracepoint",
                    source,
                })?;
            }
            AttachPoint::Tracepoint => {
                let program: &mut TracePoint = ebpf
                    .program_mut(PROGRAM)
                    .ok_or(LoadError::Missing { what: "program", name: PROGRAM })?
                    .try_into()
                    .map_err(|source| LoadError::Program { program: PROGRAM, source })?;
                program.load().map_err(|source| LoadError::Program { program: PROGRAM, source })?;
                program.attach("oom", "mark_victim").map_err(|source| LoadError::Attach {
                    program: PROGRAM,
                    hook: "oom:mark_victim tracepoint",
                    source,
                })?;
            }
        }

        let map = |ebpf: &mut Ebpf, name| ebpf.take_map(name).ok_or(LoadError::Missing { what: "map", name });
        let events = RingBuf::try_from(map(&mut ebpf, EVENTS_MAP)?)
            .map_err(|source| LoadError::Map { name: EVENTS_MAP, source })?;
        let counters = PerCpuArray::try_from(map(&mut ebpf, COUNTERS_MAP)?)
            .map_err(|source| LoadError::Map { name: COUNTERS_MAP, source })?;
        Ok(Probe { ebpf, events, counters: CounterMap(counters) })
    }
}

/// Lifts RLIMIT_MEMLOCK: kernels before 5.11 charge BPF maps to it (5.11+
/// charge the memory cgroup instead). Best effort: a
/// failure only matters on those kernels, and shows there as a map error.
pub fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: a valid rlimit struct passed by reference for the call's duration.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!("could not lift RLIMIT_MEMLOCK: {}", std::io::Error::last_os_error());
    }
}
