//! The one module that knows how kernels differ: which hook the recorder
//! attaches to, and where each figure it reads sits in the kernel's own
//! structures on the running kernel.
//!
//! Rust eBPF gets no compiler-emitted CO-RE relocations, so offsets are
//! resolved here, at start, from the kernel's BTF (`/sys/kernel/btf/vmlinux`)
//! and handed to the program as the global [`KernelLayout`], with one bit per
//! field: a field this kernel lacks (or whose type has an unexpected shape)
//! is skipped by the program and recorded as unknown, and [`Plan::fields`]
//! says why, for the start-up log and `oomrecorder doctor`.
//!
//! The BTF reader is `btfparse` (Apache-2.0, maintained, builds on rustc
//! 1.95): it resolves member paths through anonymous structs and unions
//! (`mm_struct`'s fields sit in one) and array indices (`subsys[4]`).
//! aya-obj's own BTF parser, already linked through aya, keeps its type and
//! member accessors crate-private, so it cannot answer "offset of
//! task_struct.start_time"; btf-rs is LGPL, which does not fit this
//! project's MIT/Apache licence.
//!
//! [`plan`] is pure (BTF bytes and facts in, a plan out); [`read_plan`] does
//! the I/O.

use std::{fs, io, path::Path};

use btfparse::{Readable, TypeInformation, TypeVariant};
use common::{kfield, KernelLayout};

pub mod caps;
pub mod memcg;
pub mod tracefs;
pub mod vmstat;

pub use memcg::MemcgVersion;

/// Where the kernel publishes its own BTF (CONFIG_DEBUG_INFO_BTF, 5.4+).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: not BTF this recorder can read: {reason}")]
    Parse { path: String, reason: String },
}

/// Which program the loader loads and attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachPoint {
    /// `raw_tp/mark_victim`, whose first argument is the victim's
    /// `task_struct`: every figure below is read from the kernel's structures.
    RawTracepoint,
    /// `oom:mark_victim`: only the tracepoint record's fields.
    Tracepoint,
}

impl AttachPoint {
    pub const fn as_str(self) -> &'static str {
        match self {
            AttachPoint::RawTracepoint => "raw_tracepoint mark_victim",
            AttachPoint::Tracepoint => "tracepoint oom:mark_victim",
        }
    }
}

/// One figure the recorder reads through BTF, and whether this kernel has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldStatus {
    /// The JSON key(s) the figure fills.
    pub name: &'static str,
    /// `Ok(where it is read)` or `Err(why it is absent)`.
    pub status: Result<String, String>,
}

/// What the recorder does on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub attach: AttachPoint,
    /// Why this attach point.
    pub attach_reason: String,
    pub layout: KernelLayout,
    pub fields: Vec<FieldStatus>,
}

/// `&[u8]` as btfparse's input.
struct Bytes<'a>(&'a [u8]);

impl Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buffer.len()).and_then(|end| self.0.get(start..end)) {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(btfparse::ErrorKind::EOF, "read past the end of the BTF data")),
        }
    }
}

/// Parsed kernel BTF.
pub struct Btf(TypeInformation);

impl Btf {
    pub fn parse(bytes: &[u8]) -> Result<Btf, String> {
        TypeInformation::new(&Bytes(bytes)).map(Btf).map_err(|e| e.message().to_owned())
    }

    /// A named struct's type id. `id_of` keeps the last type of a name; the
    /// kernel's BTF can also hold a forward declaration of the same name.
    fn struct_id(&self, name: &str) -> Result<u32, String> {
        let is_struct = |tid: u32| matches!(self.0.from_id(tid), Some(TypeVariant::Struct(_)));
        if let Some(tid) = self.0.id_of(name).filter(|t| is_struct(*t)) {
            return Ok(tid);
        }
        self.0
            .get()
            .iter()
            .find_map(|(tid, t)| match t {
                TypeVariant::Struct(s) if s.name().as_deref() == Some(name) => Some(*tid),
                _ => None,
            })
            .ok_or_else(|| format!("no struct {name} in BTF"))
    }

    /// Byte offset of `path` in struct `ty`, and the member's type id.
    fn member(&self, ty: &str, path: &str) -> Result<(u32, u32), String> {
        let tid = self.struct_id(ty)?;
        match self.0.offset_of(tid, path) {
            Ok((member_tid, btfparse::Offset::ByteOffset(offset))) => Ok((member_tid, offset)),
            Ok((_, btfparse::Offset::BitOffsetAndSize(..))) => Err(format!("{ty}.{path} is a bitfield")),
            Err(e) => Err(format!("{ty}.{path}: {}", e.message())),
        }
    }

    /// Byte offset of `ty.path`, checked to be `size` bytes wide: a member
    /// whose size changed is a shape this recorder does not know.
    fn offset(&self, ty: &str, path: &str, size: usize) -> Result<u32, String> {
        let (member_tid, offset) = self.member(ty, path)?;
        let got = self.0.size_of(member_tid).map_err(|e| format!("{ty}.{path}: {}", e.message()))?;
        if got != size {
            return Err(format!("{ty}.{path} is {got} bytes, expected {size}"));
        }
        Ok(offset)
    }

    /// Strips typedefs and qualifiers.
    fn resolve(&self, mut tid: u32) -> Option<TypeVariant> {
        for _ in 0..32 {
            match self.0.from_id(tid)? {
                TypeVariant::Typedef(t) => tid = *t.tid(),
                TypeVariant::Const(t) => tid = *t.tid(),
                TypeVariant::Volatile(t) => tid = *t.tid(),
                TypeVariant::Restrict(t) => tid = *t.tid(),
                TypeVariant::TypeTag(t) => tid = *t.tid(),
                other => return Some(other),
            }
        }
        None
    }

    fn name_of(&self, tid: u32) -> Option<String> {
        match self.resolve(tid)? {
            TypeVariant::Struct(s) => s.name().clone(),
            _ => None,
        }
    }

    /// Value of an enumerator, searched in every enum (the MM counters live
    /// in an anonymous one).
    fn enumerator(&self, name: &str) -> Option<u32> {
        self.0.get().values().find_map(|t| match t {
            TypeVariant::Enum(e) => {
                e.named_value_list().iter().find(|v| v.name == name).map(|v| match v.value {
                    btfparse::Integer32Value::Signed(x) => x as u32,
                    btfparse::Integer32Value::Unsigned(x) => x,
                })
            }
            _ => None,
        })
    }

    /// Whether `btf_trace_mark_victim` (the raw tracepoint's BTF prototype,
    /// include/linux/tracepoint.h `btf_trace_##name`: `void *` then the
    /// TP_PROTO arguments) takes the victim's `struct task_struct *` first.
    fn mark_victim_takes_task(&self) -> Result<(), String> {
        let tid = self
            .0
            .id_of("btf_trace_mark_victim")
            .ok_or("no btf_trace_mark_victim in BTF (kernel without the oom tracepoints?)")?;
        let Some(TypeVariant::Ptr(ptr)) = self.resolve(tid) else {
            return Err("btf_trace_mark_victim is not a function pointer".into());
        };
        let Some(TypeVariant::FuncProto(proto)) = self.resolve(*ptr.tid()) else {
            return Err("btf_trace_mark_victim is not a function pointer".into());
        };
        let first = proto.parameter_list().get(1).ok_or("mark_victim has no arguments")?;
        match self.resolve(first.tid()) {
            Some(TypeVariant::Ptr(p)) if self.name_of(*p.tid()).as_deref() == Some("task_struct") => Ok(()),
            // Before 72ba14deb40a (mainline 6.9, backported to 6.1.y/5.15.y
            // and older stable lines in 2025): TP_PROTO(int pid).
            _ => {
                Err("mark_victim's raw tracepoint passes a pid, not the task (kernel before 72ba14deb40a)"
                    .into())
            }
        }
    }
}

/// Accumulates offsets, bits and the per-field report.
struct Builder<'a> {
    btf: &'a Btf,
    layout: KernelLayout,
    fields: Vec<FieldStatus>,
}

impl Builder<'_> {
    /// Runs `resolve`; on success sets `bit` and reports `name` available.
    fn field(
        &mut self,
        name: &'static str,
        bit: u64,
        resolve: impl FnOnce(&Btf, &mut KernelLayout) -> Result<String, String>,
    ) -> bool {
        let mut layout = self.layout;
        let status = resolve(self.btf, &mut layout);
        if status.is_ok() {
            layout.fields |= bit;
            self.layout = layout;
        }
        let ok = status.is_ok();
        self.fields.push(FieldStatus { name, status });
        ok
    }
}

const PTR: usize = 8;
const LONG: usize = 8;

/// Decides the attach point and resolves every offset. `btf` is the parsed
/// vmlinux BTF or why it is unavailable; `page_size` is the kernel's.
pub fn plan(btf: Result<&Btf, String>, memcg_version: Option<MemcgVersion>, page_size: u64) -> Plan {
    let mut layout = KernelLayout::ABSENT;
    layout.page_shift = page_size.trailing_zeros();
    let btf = match btf {
        Ok(btf) => btf,
        Err(why) => {
            return Plan {
                attach: AttachPoint::Tracepoint,
                attach_reason: format!("no BTF ({why}): the raw tracepoint's task cannot be read"),
                layout,
                fields: FIELD_NAMES
                    .iter()
                    .map(|name| FieldStatus { name, status: Err(format!("no BTF: {why}")) })
                    .collect(),
            };
        }
    };
    let mut b = Builder { btf, layout, fields: Vec::new() };

    // include/linux/sched.h, struct task_struct.
    let pid = b.field("victim.pid", kfield::TASK_PID, |btf, l| {
        l.task_pid = btf.offset("task_struct", "pid", 4)?;
        Ok(format!("task_struct.pid at {}", l.task_pid))
    });
    b.field("victim.tgid", kfield::TASK_TGID, |btf, l| {
        l.task_tgid = btf.offset("task_struct", "tgid", 4)?;
        Ok(format!("task_struct.tgid at {}", l.task_tgid))
    });
    b.field("victim.comm", kfield::TASK_COMM, |btf, l| {
        l.task_comm = btf.offset("task_struct", "comm", common::COMM_LEN)?;
        Ok(format!("task_struct.comm at {}", l.task_comm))
    });
    // start_time: CLOCK_MONOTONIC ns at fork (kernel/fork.c, copy_process).
    b.field("victim.age_ms", kfield::TASK_START_TIME, |btf, l| {
        l.task_start_time = btf.offset("task_struct", "start_time", 8)?;
        Ok(format!("task_struct.start_time at {}", l.task_start_time))
    });
    b.field("victim.min_flt, victim.maj_flt", kfield::TASK_FAULTS, |btf, l| {
        l.task_min_flt = btf.offset("task_struct", "min_flt", LONG)?;
        l.task_maj_flt = btf.offset("task_struct", "maj_flt", LONG)?;
        Ok(format!("task_struct.min_flt at {}, maj_flt at {}", l.task_min_flt, l.task_maj_flt))
    });
    // task_uid() reads real_cred (include/linux/cred.h); the tracepoint and
    // the Killed process line print it.
    b.field("victim.uid", kfield::UID, |btf, l| {
        l.task_real_cred = btf.offset("task_struct", "real_cred", PTR)?;
        l.cred_uid = btf.offset("cred", "uid.val", 4)?;
        Ok(format!("task_struct.real_cred at {}, cred.uid at {}", l.task_real_cred, l.cred_uid))
    });
    // include/linux/sched/signal.h: short oom_score_adj.
    b.field("victim.oom_score_adj", kfield::OOM_SCORE_ADJ, |btf, l| {
        l.task_signal = btf.offset("task_struct", "signal", PTR)?;
        l.signal_oom_score_adj = btf.offset("signal_struct", "oom_score_adj", 2)?;
        Ok(format!(
            "task_struct.signal at {}, signal_struct.oom_score_adj at {}",
            l.task_signal, l.signal_oom_score_adj
        ))
    });
    // include/linux/mm_types.h, struct mm_struct.
    let mm = b.field("victim mm", kfield::MM, |btf, l| {
        l.task_mm = btf.offset("task_struct", "mm", PTR)?;
        Ok(format!("task_struct.mm at {}", l.task_mm))
    });
    let needs_mm = |mm: bool| if mm { Ok(()) } else { Err("task_struct.mm is absent".to_owned()) };
    b.field("victim.total_vm_kb", kfield::TOTAL_VM, |btf, l| {
        needs_mm(mm)?;
        l.mm_total_vm = btf.offset("mm_struct", "total_vm", LONG)?;
        Ok(format!("mm_struct.total_vm at {}", l.mm_total_vm))
    });
    b.field("victim.rss_pages", kfield::RSS, |btf, l| {
        needs_mm(mm)?;
        let how = rss_layout(btf, l)?;
        Ok(how)
    });
    // mm_pgtables_bytes(): atomic_long_t pgtables_bytes (CONFIG_MMU).
    b.field("victim.pgtables_bytes", kfield::PGTABLES, |btf, l| {
        needs_mm(mm)?;
        l.mm_pgtables_bytes = btf.offset("mm_struct", "pgtables_bytes", LONG)?;
        Ok(format!("mm_struct.pgtables_bytes at {}", l.mm_pgtables_bytes))
    });
    // include/linux/nsproxy.h, include/linux/utsname.h.
    b.field("victim.nodename", kfield::NODENAME, |btf, l| {
        l.task_nsproxy = btf.offset("task_struct", "nsproxy", PTR)?;
        l.nsproxy_uts_ns = btf.offset("nsproxy", "uts_ns", PTR)?;
        l.uts_nodename = btf.offset("uts_namespace", "name.nodename", 65)?;
        Ok(format!(
            "nsproxy.uts_ns at {}, uts_namespace.name.nodename at {}",
            l.nsproxy_uts_ns, l.uts_nodename
        ))
    });
    // include/linux/cgroup-defs.h: css_set.subsys[memory_cgrp_id], the
    // victim's memory css (on v1 the memory hierarchy's, on v2 the unified
    // one's nearest memory-enabled cgroup: what task_memcg prints).
    let css = b.field("cgroup (memory css)", kfield::MEMCG_CSS, |btf, l| {
        let id = btf
            .enumerator("memory_cgrp_id")
            .ok_or("no memory_cgrp_id in enum cgroup_subsys_id (CONFIG_MEMCG off)")?;
        l.task_cgroups = btf.offset("task_struct", "cgroups", PTR)?;
        l.css_set_memory = btf.offset("css_set", &format!("subsys[{id}]"), PTR)?;
        Ok(format!("task_struct.cgroups at {}, css_set.subsys[{id}] at {}", l.task_cgroups, l.css_set_memory))
    });
    let needs_css = |css: bool| if css { Ok(()) } else { Err("the memory css is absent".to_owned()) };
    // include/linux/kernfs.h: `parent` became `__parent` in 6.15.
    let kn = b.field("cgroup.path", kfield::CGROUP_KN, |btf, l| {
        needs_css(css)?;
        l.css_cgroup = btf.offset("cgroup_subsys_state", "cgroup", PTR)?;
        l.cgroup_kn = btf.offset("cgroup", "kn", PTR)?;
        l.kn_name = btf.offset("kernfs_node", "name", PTR)?;
        let (field, offset) = match btf.offset("kernfs_node", "__parent", PTR) {
            Ok(offset) => ("__parent", offset),
            Err(_) => ("parent", btf.offset("kernfs_node", "parent", PTR)?),
        };
        l.kn_parent = offset;
        Ok(format!("kernfs_node.name at {}, .{field} at {}", l.kn_name, l.kn_parent))
    });
    // kn->id: a u64 since 5.5 (a union kernfs_node_id before).
    b.field("cgroup.id", kfield::KN_ID, |btf, l| {
        if !kn {
            return Err("the cgroup's kernfs node is absent".into());
        }
        l.kn_id = btf.offset("kernfs_node", "id", 8)?;
        Ok(format!("kernfs_node.id at {}", l.kn_id))
    });
    // include/linux/memcontrol.h (struct mem_cgroup) and
    // include/linux/page_counter.h (struct page_counter).
    let memcg = b.field("cgroup.at_kill memory usage/limit", kfield::MEMCG, |btf, l| {
        needs_css(css)?;
        l.memcg_css = btf.offset("mem_cgroup", "css", btf_size(btf, "cgroup_subsys_state")?)?;
        l.memcg_memory = btf.member("mem_cgroup", "memory")?.1;
        l.pc_usage = btf.offset("page_counter", "usage", LONG)?;
        l.pc_max = btf.offset("page_counter", "max", LONG)?;
        Ok(format!(
            "mem_cgroup.memory at {}, page_counter.usage at {}, .max at {}",
            l.memcg_memory, l.pc_usage, l.pc_max
        ))
    });
    let needs_memcg = |m: bool| if m { Ok(()) } else { Err("mem_cgroup.memory is absent".to_owned()) };
    b.field("cgroup.ancestors", kfield::CSS_PARENT, |btf, l| {
        needs_memcg(memcg)?;
        l.css_parent = btf.offset("cgroup_subsys_state", "parent", PTR)?;
        Ok(format!("cgroup_subsys_state.parent at {}", l.css_parent))
    });
    b.field("memory_low_bytes", kfield::PC_LOW, |btf, l| {
        needs_memcg(memcg)?;
        l.pc_low = btf.offset("page_counter", "low", LONG)?;
        Ok(format!("page_counter.low at {}", l.pc_low))
    });
    b.field("memory_high_bytes", kfield::PC_HIGH, |btf, l| {
        needs_memcg(memcg)?;
        l.pc_high = btf.offset("page_counter", "high", LONG)?;
        Ok(format!("page_counter.high at {}", l.pc_high))
    });
    b.field("memory_min_bytes", kfield::PC_MIN, |btf, l| {
        needs_memcg(memcg)?;
        l.pc_min = btf.offset("page_counter", "min", LONG)?;
        Ok(format!("page_counter.min at {}", l.pc_min))
    });
    // v2 charges swap to `swap`; v1 to `memsw` (memory + swap, what the v1
    // report's `memory+swap:` line prints). They share a union in 6.x.
    let (swap_member, swap_bits) = match memcg_version {
        Some(MemcgVersion::V1) => ("memsw", kfield::MEMCG_SWAP | kfield::MEMCG_MEMSW),
        _ => ("swap", kfield::MEMCG_SWAP),
    };
    b.field("swap_usage_bytes, swap_limit_bytes", swap_bits, |btf, l| {
        needs_memcg(memcg)?;
        if memcg_version.is_none() {
            return Err("no memory controller mounted (cgroup v1 or v2)".into());
        }
        l.memcg_swap = btf.member("mem_cgroup", swap_member)?.1;
        Ok(format!("mem_cgroup.{swap_member} at {}", l.memcg_swap))
    });

    let (attach, attach_reason) = match (pid, btf.mark_victim_takes_task()) {
        (true, Ok(())) => (
            AttachPoint::RawTracepoint,
            "BTF's btf_trace_mark_victim passes the victim's task_struct".to_owned(),
        ),
        (false, _) => (AttachPoint::Tracepoint, "task_struct.pid not found in BTF".to_owned()),
        (true, Err(why)) => (AttachPoint::Tracepoint, why),
    };
    Plan { attach, attach_reason, layout: b.layout, fields: b.fields }
}

/// The names [`plan`] reports, in order (for the no-BTF case).
const FIELD_NAMES: [&str; 21] = [
    "victim.pid",
    "victim.tgid",
    "victim.comm",
    "victim.age_ms",
    "victim.min_flt, victim.maj_flt",
    "victim.uid",
    "victim.oom_score_adj",
    "victim mm",
    "victim.total_vm_kb",
    "victim.rss_pages",
    "victim.pgtables_bytes",
    "victim.nodename",
    "cgroup (memory css)",
    "cgroup.path",
    "cgroup.id",
    "cgroup.at_kill memory usage/limit",
    "cgroup.ancestors",
    "memory_low_bytes",
    "memory_high_bytes",
    "memory_min_bytes",
    "swap_usage_bytes, swap_limit_bytes",
];

fn btf_size(btf: &Btf, name: &str) -> Result<usize, String> {
    let tid = btf.struct_id(name)?;
    btf.0.size_of(tid).map_err(|e| e.message().to_owned())
}

/// `mm->rss_stat` in either layout (include/linux/mm_types.h): before 6.2
/// `struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }`, from 6.2
/// `struct percpu_counter rss_stat[NR_MM_COUNTERS]` whose `count` (s64) is
/// what get_mm_counter() reads. Decided from the member's type, not from the
/// kernel version (distributions backport).
fn rss_layout(btf: &Btf, l: &mut KernelLayout) -> Result<String, String> {
    let (tid, base) = btf.member("mm_struct", "rss_stat")?;
    // Kernel order: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES
    // (include/linux/mm_types_task.h), from the BTF enum when it is there.
    let names = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"];
    for (slot, name) in names.iter().enumerate() {
        l.mm_rss_index[slot] = btf.enumerator(name).unwrap_or(slot as u32);
    }
    if l.mm_rss_index.iter().any(|i| *i > 7) {
        return Err(format!("unexpected MM counter indices {:?}", l.mm_rss_index));
    }
    match btf.resolve(tid) {
        Some(TypeVariant::Array(array)) => {
            let element = *array.element_tid();
            if btf.name_of(element).as_deref() != Some("percpu_counter") {
                return Err("mm_struct.rss_stat is an array of an unknown type".into());
            }
            let count = btf.offset("percpu_counter", "count", 8)?;
            let stride = btf.0.size_of(element).map_err(|e| e.message().to_owned())? as u32;
            l.mm_rss = base + count;
            l.mm_rss_stride = stride;
            Ok(format!(
                "mm_struct.rss_stat at {base}: percpu_counter[] (6.2+), count at +{count}, stride {stride}"
            ))
        }
        Some(TypeVariant::Struct(s)) if s.name().as_deref() == Some("mm_rss_stat") => {
            let count = btf.offset("mm_rss_stat", "count[0]", LONG)?;
            l.mm_rss = base + count;
            l.mm_rss_stride = LONG as u32;
            Ok(format!("mm_struct.rss_stat at {base}: mm_rss_stat of atomic_long_t (before 6.2)"))
        }
        _ => Err("mm_struct.rss_stat has a shape this recorder does not know".into()),
    }
}

/// `MemTotal` and `SwapTotal` of `/proc/meminfo` (fs/proc/meminfo.c), kB:
/// totalram_pages() and total_swap_pages, the badness of a global OOM.
pub fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    (kb("MemTotal:"), kb("SwapTotal:"))
}

/// Machine-wide facts stamped on each record's kernel state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    pub memcg_version: Option<MemcgVersion>,
    pub ram_pages: Option<u64>,
    pub swap_pages: Option<u64>,
}

impl Machine {
    pub fn read(memcg_version: Option<MemcgVersion>) -> Machine {
        let page_kb = (page_size() / 1024).max(1);
        let (ram, swap) = fs::read_to_string("/proc/meminfo").map(|t| parse_meminfo(&t)).unwrap_or_default();
        Machine {
            memcg_version,
            ram_pages: ram.map(|kb| kb / page_kb),
            swap_pages: swap.map(|kb| kb / page_kb),
        }
    }

    pub fn stamp(&self, kernel: &mut crate::model::KernelState) {
        kernel.cgroup_version = self.memcg_version.map(MemcgVersion::number);
        kernel.ram_pages = self.ram_pages;
        kernel.swap_pages = self.swap_pages;
    }
}

/// The kernel's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
}

/// Reads and parses the running kernel's BTF.
pub fn read_btf(path: &Path) -> Result<Btf, KernelError> {
    let shown = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| KernelError::Read { path: shown.clone(), source })?;
    Btf::parse(&bytes).map_err(|reason| KernelError::Parse { path: shown, reason })
}

/// The plan for the running kernel: its BTF, its memory controller, its
/// page size.
pub fn read_plan() -> (Plan, Option<MemcgVersion>) {
    let memcg = memcg::memory_hierarchy(Path::new(memcg::SYS_FS_CGROUP)).map(|h| h.version);
    let btf = read_btf(Path::new(VMLINUX_BTF));
    let plan = plan(btf.as_ref().map_err(|e| e.to_string()), memcg, page_size());
    (plan, memcg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_btf_falls_back_to_the_tracepoint_and_says_why() {
        let plan = plan(Err("missing".into()), Some(MemcgVersion::V2), 4096);
        assert_eq!(plan.attach, AttachPoint::Tracepoint);
        assert_eq!(plan.layout.fields, 0);
        assert_eq!(plan.fields.len(), FIELD_NAMES.len());
        assert!(plan.fields.iter().all(|f| f.status.as_ref().is_err_and(|e| e.contains("missing"))));
    }

    /// A tiny BTF blob (include/uapi/linux/btf.h), to test shapes the host's
    /// kernel does not have.
    #[derive(Default)]
    struct BtfBuilder {
        types: Vec<u8>,
        strings: Vec<u8>,
        count: u32,
    }

    impl BtfBuilder {
        fn new() -> Self {
            BtfBuilder { strings: vec![0], ..Default::default() }
        }
        fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            offset
        }
        fn push(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32, extra: &[u32]) -> u32 {
            let name = self.name(name);
            for word in [name, (kind << 24) | vlen, size_or_type].iter().chain(extra) {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
            self.count += 1;
            self.count
        }
        fn int(&mut self, name: &str, size: u32) -> u32 {
            self.push(name, 1, 0, size, &[size * 8])
        }
        fn ptr(&mut self, to: u32) -> u32 {
            self.push("", 2, 0, to, &[])
        }
        fn array(&mut self, of: u32, index: u32, n: u32) -> u32 {
            self.push("", 3, 0, 0, &[of, index, n])
        }
        /// Members: (name, type, byte offset).
        fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let mut extra = Vec::new();
            for (member, ty, offset) in members {
                extra.extend([self.name(member), *ty, offset * 8]);
            }
            self.push(name, 4, members.len() as u32, size, &extra)
        }
        fn fwd(&mut self, name: &str) -> u32 {
            self.push(name, 7, 0, 0, &[])
        }
        fn typedef(&mut self, name: &str, to: u32) -> u32 {
            self.push(name, 8, 0, to, &[])
        }
        fn func_proto(&mut self, params: &[u32]) -> u32 {
            let extra: Vec<u32> = params.iter().flat_map(|t| [0, *t]).collect();
            self.push("", 13, params.len() as u32, 0, &extra)
        }
        fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&0xeb9f_u16.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for word in [24, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// A kernel whose task_struct has pid/tgid and an 8-byte `start_time`
    /// of an unexpected 4-byte shape, no mm, no cgroups; `task_arg` picks the
    /// raw tracepoint's first argument (the task, or a pid).
    fn small_kernel(pid_size: u32, task_arg: bool) -> Vec<u8> {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let wide = b.int("long", pid_size);
        let char_ = b.int("char", 1);
        let index = b.int("unsigned int", 4);
        let comm = b.array(char_, index, 16);
        let task = b.strukt(
            "task_struct",
            64,
            &[
                ("pid", if pid_size == 4 { int } else { wide }, 0),
                ("tgid", int, 8),
                ("comm", comm, 16),
                ("start_time", int, 32),
            ],
        );
        // Declared after the struct, so a by-name lookup finds it last.
        b.fwd("task_struct");
        let task_ptr = b.ptr(task);
        let void_ptr = b.ptr(0);
        let first = if task_arg { task_ptr } else { int };
        let proto = b.func_proto(&[void_ptr, first, int]);
        let fn_ptr = b.ptr(proto);
        b.typedef("btf_trace_mark_victim", fn_ptr);
        b.build()
    }

    fn status<'a>(plan: &'a Plan, name: &str) -> &'a Result<String, String> {
        &plan.fields.iter().find(|f| f.name == name).expect(name).status
    }

    #[test]
    fn missing_fields_and_odd_shapes_are_absent_with_the_reason() {
        let btf = Btf::parse(&small_kernel(4, true)).expect("the small kernel's BTF parses");
        let plan = plan(Ok(&btf), Some(MemcgVersion::V2), 4096);
        assert_eq!(plan.attach, AttachPoint::RawTracepoint, "{}", plan.attach_reason);
        assert_eq!(plan.layout.task_tgid, 8);
        assert!(plan.layout.has(kfield::TASK_PID | kfield::TASK_TGID | kfield::TASK_COMM));
        // A forward declaration of task_struct does not hide the struct.
        assert!(status(&plan, "victim.tgid").is_ok());
        let shape = status(&plan, "victim.age_ms").as_ref().unwrap_err();
        assert!(shape.contains("is 4 bytes, expected 8"), "{shape}");
        assert!(!plan.layout.has(kfield::TASK_START_TIME));
        let missing = status(&plan, "victim mm").as_ref().unwrap_err();
        assert!(missing.contains("mm"), "{missing}");
        for dependent in ["victim.rss_pages", "victim.pgtables_bytes"] {
            assert!(status(&plan, dependent).as_ref().unwrap_err().contains("task_struct.mm is absent"));
        }
        let memcg = status(&plan, "cgroup (memory css)").as_ref().unwrap_err();
        assert!(memcg.contains("memory_cgrp_id"), "{memcg}");
        assert_eq!(
            plan.layout.fields,
            kfield::TASK_PID | kfield::TASK_TGID | kfield::TASK_COMM,
            "only what resolved is handed to the program"
        );
    }

    #[test]
    fn a_pid_only_raw_tracepoint_or_an_odd_pid_falls_back_to_the_tracepoint() {
        let old = Btf::parse(&small_kernel(4, false)).unwrap();
        let plan_old = plan(Ok(&old), Some(MemcgVersion::V2), 4096);
        assert_eq!(plan_old.attach, AttachPoint::Tracepoint);
        assert!(plan_old.attach_reason.contains("72ba14deb40a"), "{}", plan_old.attach_reason);
        let odd = Btf::parse(&small_kernel(8, true)).unwrap();
        let plan_odd = plan(Ok(&odd), Some(MemcgVersion::V2), 4096);
        assert_eq!(plan_odd.attach, AttachPoint::Tracepoint);
        assert!(status(&plan_odd, "victim.pid").as_ref().unwrap_err().contains("expected 4"));
    }

    #[test]
    fn garbage_is_not_btf() {
        assert!(Btf::parse(b"not btf at all").is_err());
        assert!(Btf::parse(&[]).is_err());
    }

    #[test]
    fn meminfo_totals() {
        let text = "MemTotal:        2030000 kB\nMemFree: 1 kB\nSwapTotal:             0 kB\n";
        assert_eq!(parse_meminfo(text), (Some(2_030_000), Some(0)));
        assert_eq!(parse_meminfo(""), (None, None));
    }
}
