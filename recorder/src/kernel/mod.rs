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
//! Which figures exist, and through which members, is the table in
//! [`fields`]; reading BTF is [`btf`].
//!
//! [`plan`] is pure (BTF bytes and facts in, a plan out); [`read_plan`] does
//! the I/O.

use std::{fs, io, path::Path};

use common::{kfield, KernelLayout};

pub mod btf;
pub mod caps;
pub mod fields;
pub mod memcg;
pub mod memstat;
pub mod tracefs;
pub mod vmstat;

pub use btf::Btf;
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

/// Decides the attach point and resolves every offset. `btf` is the parsed
/// vmlinux BTF or why it is unavailable; `page_size` is the kernel's.
pub fn plan(btf: Result<&Btf, String>, memcg_version: Option<MemcgVersion>, page_size: u64) -> Plan {
    plan_for(btf, memcg_version, page_size, 1)
}

/// [`plan`] for a machine of `nr_nodes` NUMA nodes (`nr_node_ids`).
pub fn plan_for(
    btf: Result<&Btf, String>,
    memcg_version: Option<MemcgVersion>,
    page_size: u64,
    nr_nodes: u32,
) -> Plan {
    let mut layout = KernelLayout::ABSENT;
    layout.page_shift = page_size.trailing_zeros();
    layout.nr_nodes = nr_nodes;
    let btf = match btf {
        Ok(btf) => btf,
        Err(why) => {
            return Plan {
                attach: AttachPoint::Tracepoint,
                attach_reason: format!("no BTF ({why}): the raw tracepoint's task cannot be read"),
                layout,
                fields: fields::all_absent(&why),
            };
        }
    };
    let fields = fields::resolve(btf, memcg_version, &mut layout);
    let (attach, attach_reason) = match (layout.has(kfield::TASK_PID), btf.mark_victim_takes_task()) {
        (true, Ok(())) => (
            AttachPoint::RawTracepoint,
            "BTF's btf_trace_mark_victim passes the victim's task_struct".to_owned(),
        ),
        (false, _) => (AttachPoint::Tracepoint, "task_struct.pid not found in BTF".to_owned()),
        (true, Err(why)) => (AttachPoint::Tracepoint, why),
    };
    Plan { attach, attach_reason, layout, fields }
}

/// `nr_node_ids` from `/sys/devices/system/node/possible`, a cpulist such
/// as `0`, `0-1` or `0-3,5` (Documentation/ABI/stable/sysfs-devices-node):
/// the highest node id plus one.
pub fn parse_node_count(text: &str) -> Option<u32> {
    let highest = text
        .trim()
        .split(',')
        .filter_map(|range| range.rsplit('-').next()?.trim().parse::<u32>().ok())
        .max()?;
    highest.checked_add(1)
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
    pub online_cpus: Option<u32>,
}

impl Machine {
    pub fn read(memcg_version: Option<MemcgVersion>) -> Machine {
        let page_kb = (page_size() / 1024).max(1);
        let (ram, swap) = fs::read_to_string("/proc/meminfo").map(|t| parse_meminfo(&t)).unwrap_or_default();
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        Machine {
            memcg_version,
            ram_pages: ram.map(|kb| kb / page_kb),
            swap_pages: swap.map(|kb| kb / page_kb),
            online_cpus: u32::try_from(cpus).ok().filter(|n| *n > 0),
        }
    }

    pub fn stamp(&self, kernel: &mut crate::model::KernelState) {
        kernel.cgroup_version = self.memcg_version.map(MemcgVersion::number);
        kernel.ram_pages = self.ram_pages;
        kernel.swap_pages = self.swap_pages;
        kernel.online_cpus = self.online_cpus;
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
    let nodes =
        fs::read_to_string("/sys/devices/system/node/possible").ok().and_then(|t| parse_node_count(&t));
    // No node directory: a kernel without CONFIG_NUMA, one node.
    let plan = plan_for(btf.as_ref().map_err(|e| e.to_string()), memcg, page_size(), nodes.unwrap_or(1));
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
        assert_eq!(plan.fields.len(), fields::FIELDS.len());
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
        fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
            let mut extra = Vec::new();
            for (value_name, value) in values {
                extra.extend([self.name(value_name), *value as u32]);
            }
            self.push(name, 6, values.len() as u32, 4, &extra)
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
        assert_eq!(plan.layout.at(common::off::TASK_TGID), 8);
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
    fn node_counts_from_the_possible_list() {
        assert_eq!(parse_node_count("0\n"), Some(1));
        assert_eq!(parse_node_count("0-1\n"), Some(2));
        assert_eq!(parse_node_count("0-3,5\n"), Some(6));
        assert_eq!(parse_node_count(""), None);
    }

    #[test]
    fn meminfo_totals() {
        let text = "MemTotal:        2030000 kB\nMemFree: 1 kB\nSwapTotal:             0 kB\n";
        assert_eq!(parse_meminfo(text), (Some(2_030_000), Some(0)));
        assert_eq!(parse_meminfo(""), (None, None));
    }

    fn enums(values: &[(&str, i32)]) -> Btf {
        let mut b = BtfBuilder::new();
        b.enumeration("node_stat_item", values);
        Btf::parse(&b.build()).expect("a BTF of one enum")
    }

    fn slot(key: &str) -> usize {
        common::memstat::ITEMS.iter().position(|i| i.key == key).expect(key)
    }

    #[test]
    fn memory_stat_is_indexed_by_the_enum_when_the_array_is_full_length() {
        let btf =
            enums(&[("NR_ANON_MAPPED", 3), ("NR_FILE_PAGES", 4), ("MEMCG_KMEM", 8), ("MEMCG_NR_STAT", 10)]);
        let (indexing, index) = memstat::stat_indices(&btf, 10).unwrap();
        assert_eq!(indexing, memstat::Indexing::Direct);
        assert_eq!((index[slot("anon")], index[slot("file")], index[slot("kernel")]), (3, 4, 8));
        assert_eq!(index[slot("shmem")], common::NO_INDEX, "an item this kernel lacks is not read");
    }

    #[test]
    fn a_compacted_memory_stat_follows_the_kernels_item_order_and_must_fill_the_array() {
        // A kernel built without CONFIG_SWAP: NR_SWAPCACHE is absent from
        // the enum and from the compacted array alike.
        let btf = enums(&[
            ("NR_INACTIVE_ANON", 0),
            ("NR_ACTIVE_ANON", 1),
            ("NR_ANON_MAPPED", 17),
            ("NR_FILE_PAGES", 19),
            ("MEMCG_SWAP", 51),
            ("MEMCG_KMEM", 55),
            ("MEMCG_NR_STAT", 58),
        ]);
        let (indexing, index) = memstat::stat_indices(&btf, 6).unwrap();
        assert_eq!(indexing, memstat::Indexing::Compacted);
        assert_eq!(
            (index[slot("inactive_anon")], index[slot("anon")], index[slot("file")], index[slot("kernel")]),
            (0, 2, 3, 5)
        );
        assert_eq!(index[slot("swapcached")], common::NO_INDEX);
        let unknown = memstat::stat_indices(&btf, 7).unwrap_err();
        assert!(unknown.contains("compacted") && unknown.contains("6 of the known"), "{unknown}");
        assert!(memstat::stat_indices(&enums(&[("NR_ANON_MAPPED", 1)]), 4).is_err(), "no MEMCG_NR_STAT");
    }

    #[test]
    fn memory_events_are_indexed_by_their_enum() {
        let mut b = BtfBuilder::new();
        b.enumeration(
            "memcg_memory_event",
            &[("MEMCG_LOW", 0), ("MEMCG_HIGH", 1), ("MEMCG_MAX", 2), ("MEMCG_OOM", 3), ("MEMCG_OOM_KILL", 4)],
        );
        let btf = Btf::parse(&b.build()).unwrap();
        let index = memstat::event_indices(&btf, 8);
        assert_eq!(&index[..6], &[0, 1, 2, 3, 4, common::NO_INDEX], "oom_group_kill is 5.12+");
        assert_eq!(memstat::event_indices(&btf, 3)[3], common::NO_INDEX, "beyond the array");
    }
}
