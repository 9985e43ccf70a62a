//! The kernel side of oomrecorder: copies each OOM victim's figures into a
//! ring buffer, from the `mark_victim` raw tracepoint (the victim's
//! `task_struct`, read at offsets user space resolved from BTF) or, on kernels
//! whose raw tracepoint carries no task, from the `oom:mark_victim`
//! tracepoint's record. User space decides what the figures mean; the one
//! decision taken here is which victims of a memory.oom.group kill may share
//! one copy of their cgroup's figures ([`group_kill_key`]), since the ring
//! buffer cannot hold a full copy for each of thousands of victims.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns, bpf_ktime_get_ns, bpf_probe_read_kernel_buf,
        generated,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use common::{
    counter, dpresent, eflags, kfield, kpresent, mpresent, off, present, KernelLayout, MarkVictimLayout,
    MemcgDetail, MemcgPart, OomEvent, OomEventFull, TpField, AT_LIMIT_PAGES, CGROUP_MAX_DEPTH,
    CGROUP_NAME_LEN, COMM_LEN, LRU_LISTS, MAX_NODES, MAX_ZONES, MEMCG_EVENT_SLOTS, MEMCG_MAX_LEVELS,
    MEMCG_STAT_SLOTS, NO_INDEX, OOM_EVENT_VERSION,
};

/// Field offsets of `oom:mark_victim` on the running kernel, written by the
/// loader from the tracefs `format` file before the program is loaded.
#[no_mangle]
static MARK_VICTIM_LAYOUT: MarkVictimLayout = MarkVictimLayout::ABSENT;

/// Offsets into the kernel's structures, resolved by user space from
/// /sys/kernel/btf/vmlinux (recorder/src/kernel.rs) before the raw tracepoint
/// program is loaded.
#[no_mangle]
static KERNEL_LAYOUT: KernelLayout = KernelLayout::ABSENT;

/// Reads of `KERNEL_LAYOUT`, each volatile (the compiler must not fold in
/// the ABSENT default the loader overwrites) and each of one member: the
/// whole layout would not fit on the 512-byte eBPF stack.
#[derive(Clone, Copy)]
struct Layout;

impl Layout {
    #[inline(always)]
    fn get<T: Copy>(at: *const T) -> T {
        // SAFETY: `at` points into the KERNEL_LAYOUT static, which lives for
        // the program's lifetime and holds only plain integers.
        unsafe { core::ptr::read_volatile(at) }
    }

    #[inline(always)]
    fn has(self, field: u64) -> bool {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.fields)) & field == field
    }

    /// The offset at index `member` of `common::off`.
    #[inline(always)]
    fn at(self, member: usize) -> u32 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.offsets[member]))
    }

    #[inline(always)]
    fn page_shift(self) -> u32 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.page_shift))
    }

    #[inline(always)]
    fn mm_rss_stride(self) -> u32 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.mm_rss_stride))
    }

    #[inline(always)]
    fn mm_rss_index(self, i: usize) -> u32 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.mm_rss_index[i]))
    }

    #[inline(always)]
    fn stat_index(self, slot: usize) -> u16 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.stat_index[slot]))
    }

    #[inline(always)]
    fn event_index(self, slot: usize) -> u16 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.event_index[slot]))
    }

    #[inline(always)]
    fn pending_width(self) -> u32 {
        Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.pending_width))
    }

    /// (`nr_nodes`, `nr_zones`, `nr_lru`), each capped for the verifier.
    #[inline(always)]
    fn lru_shape(self) -> (u32, u32, u32) {
        let nodes = Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.nr_nodes));
        let zones = Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.nr_zones));
        let lru = Self::get(core::ptr::addr_of!(KERNEL_LAYOUT.nr_lru));
        (nodes.min(MAX_NODES), zones.min(MAX_ZONES), lru)
    }
}

/// 2 MiB: about 6,900 events of 296 bytes (with the 8-byte record header),
/// or 800 of the 2,608-byte records that carry a cgroup's figures. A
/// memory.oom.group kill sends one such record per cgroup and OOM and a
/// short event per victim, so the buffer holds a 5,000-task group kill
/// even when user space cannot read until the kernel is done (one CPU). A
/// fuller buffer is counted, never silently lost. Its pages are mapped into
/// the daemon twice (the consumer's view wraps), so they count twice in its
/// RSS: the reason it is not larger.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(2 * 1024 * 1024, 0);

/// One all-zero event per CPU, never written: the source that clears a ring
/// buffer reservation (which the kernel does not zero) in one helper call,
/// since the event is too large for the 512-byte eBPF stack.
#[map]
static ZERO: PerCpuArray<OomEventFull> = PerCpuArray::with_max_entries(1, 0);

/// The key ([`group_kill_key`]) of the last record with cgroup figures this
/// CPU sent, zeros when it had none: a later member of the same group kill
/// gets a short record that refers to those figures. Per CPU, so that it
/// needs no lock of its own; the walk moving to another CPU (it may
/// reschedule between members) only costs one more full record.
#[map]
static LAST_MEMCG: PerCpuArray<[u64; 3]> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU counters indexed by `common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[inline(always)]
fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a per-CPU array; the program
        // cannot be preempted by itself on the same CPU while it runs.
        unsafe { *slot += 1 };
    }
}

/// Reads an unsigned integer field of 1, 2, 4 or 8 bytes (the tracefs `size:`);
/// an absent field reads as 0 and its `present` bit stays clear.
#[inline(always)]
fn read_unsigned(ctx: &TracePointContext, field: TpField) -> u64 {
    // SAFETY: read_at goes through bpf_probe_read_kernel, which fails cleanly
    // (returns an error, here mapped to 0) on any bad address.
    unsafe {
        match field.size {
            8 => ctx.read_at::<u64>(field.offset as usize).unwrap_or(0),
            4 => ctx.read_at::<u32>(field.offset as usize).map(u64::from).unwrap_or(0),
            2 => ctx.read_at::<u16>(field.offset as usize).map(u64::from).unwrap_or(0),
            1 => ctx.read_at::<u8>(field.offset as usize).map(u64::from).unwrap_or(0),
            _ => 0,
        }
    }
}

/// Sign-extends a field read by [`read_unsigned`] (for `pid`, `oom_score_adj`).
#[inline(always)]
fn read_signed(ctx: &TracePointContext, field: TpField) -> i64 {
    let raw = read_unsigned(ctx, field);
    match field.size {
        2 => raw as u16 as i16 as i64,
        4 => raw as u32 as i32 as i64,
        _ => raw as i64,
    }
}

#[tracepoint]
pub fn oom_mark_victim(ctx: TracePointContext) -> u32 {
    bump(counter::SEEN);
    // SAFETY: the global is a plain struct the loader rewrites before load;
    // a volatile read keeps the compiler from folding in the ABSENT default.
    let layout = unsafe { core::ptr::read_volatile(&MARK_VICTIM_LAYOUT) };
    emit::<OomEvent>(|ev| {
        ev.present = layout.present_bits();
        ev.victim_pid = read_signed(&ctx, layout.pid) as i32;
        ev.victim_uid = read_unsigned(&ctx, layout.uid) as u32;
        ev.total_vm_kb = read_unsigned(&ctx, layout.total_vm);
        ev.anon_rss_kb = read_unsigned(&ctx, layout.anon_rss);
        ev.file_rss_kb = read_unsigned(&ctx, layout.file_rss);
        ev.shmem_rss_kb = read_unsigned(&ctx, layout.shmem_rss);
        ev.pgtables_kb = read_unsigned(&ctx, layout.pgtables);
        ev.oom_score_adj = read_signed(&ctx, layout.oom_score_adj) as i32;
        if layout.comm.is_present() {
            // __data_loc: low 16 bits are the string's offset in the record, high
            // 16 bits its length including the NUL (include/trace/stages/).
            let loc = read_unsigned(&ctx, layout.comm) as u32;
            let offset = (loc & 0xffff) as usize;
            // The copy is always COMM_LEN bytes (the verifier wants a constant
            // size); bytes after the NUL are ignored by user space.
            // SAFETY: pointer arithmetic only; the result is never
            // dereferenced here, only handed to the checked helper below.
            let src = unsafe { (ctx.as_ptr() as *const u8).add(offset) };
            // SAFETY: bpf_probe_read_kernel_buf tolerates any address and
            // writes exactly the destination's COMM_LEN bytes.
            if unsafe { bpf_probe_read_kernel_buf(src, &mut ev.victim_comm) }.is_err() {
                ev.present &= !present::COMM;
            }
        }
    });
    0
}

/// A plain kernel value (an integer or a pointer): all zero is a valid one.
trait Plain: Copy {
    const ZERO: Self;
}

macro_rules! plain {
    ($($t:ty = $zero:expr),*) => { $(impl Plain for $t { const ZERO: Self = $zero; })* };
}
plain!(u8 = 0, u16 = 0, u32 = 0, u64 = 0, i16 = 0, i32 = 0, i64 = 0, *const u8 = core::ptr::null());

/// Copies a `T` from `base + offset` in kernel memory into `dst`; false for
/// a null base or a failed read, which leaves `dst` zero (the helper clears
/// its destination on failure). Every read goes to a defined destination
/// and hands back a plain flag, never an `Option`: the payload of a `None`
/// is undefined, and LLVM may carry an undefined value in a stack slot it
/// never writes on that path, which the 5.10 verifier rejects
/// (`invalid read from stack`; later kernels let privileged programs read
/// uninitialised stack).
#[inline(always)]
fn read_to<T>(dst: &mut T, base: *const u8, offset: u32) -> bool {
    // SAFETY: `dst` is size_of::<T>() writable bytes (a local or this
    // program's ring-buffer reservation); bpf_probe_read_kernel checks the
    // kernel address and never faults. Every T read here is integers or
    // pointers, valid for any bit pattern.
    !base.is_null()
        && unsafe {
            generated::bpf_probe_read_kernel(
                dst as *mut T as *mut c_void,
                core::mem::size_of::<T>() as u32,
                base.wrapping_add(offset as usize) as *const c_void,
            )
        } == 0
}

/// A `T` at `base + offset` and whether it was read; zero when not.
#[inline(always)]
fn read<T: Plain>(base: *const u8, offset: u32) -> (T, bool) {
    let mut value = T::ZERO;
    let ok = read_to(&mut value, base, offset);
    (value, ok)
}

#[inline(always)]
fn read_ptr(base: *const u8, offset: u32) -> *const u8 {
    read::<*const u8>(base, offset).0
}

/// Copies `len` bytes of kernel memory to `dst`; false when the read failed
/// (the helper then zeroes `dst`).
#[inline(always)]
fn read_into(dst: *mut u8, len: u32, src: *const u8) -> bool {
    // SAFETY: `dst` points into this program's ring-buffer reservation with
    // at least `len` bytes left (callers pass field sizes); the helper checks
    // the kernel address.
    !src.is_null()
        && unsafe { generated::bpf_probe_read_kernel(dst as *mut c_void, len, src as *const c_void) } == 0
}

/// A ring-buffer record: an event alone, or one with its memory cgroups.
trait Record {
    fn event(&mut self) -> &mut OomEvent;
}

impl Record for OomEvent {
    #[inline(always)]
    fn event(&mut self) -> &mut OomEvent {
        self
    }
}

impl Record for OomEventFull {
    #[inline(always)]
    fn event(&mut self) -> &mut OomEvent {
        &mut self.event
    }
}

/// Reserves one record, zeroes it, stamps what every record carries (layout
/// version, both clocks, the trigger: the current task), lets `fill` add the
/// rest, and submits it; returns whether it did. A reservation that fails,
/// or cannot be zeroed, is counted with the ring-buffer drops: never a
/// silent loss.
#[inline(always)]
fn emit<T: Record + 'static>(fill: impl FnOnce(&mut T)) -> bool {
    let Some(mut entry) = EVENTS.reserve::<T>(0) else {
        bump(counter::RINGBUF_FULL);
        return false;
    };
    let Some(record) = zeroed(&mut entry) else {
        bump(counter::RINGBUF_FULL);
        entry.discard(0);
        return false;
    };
    let ev = record.event();
    ev.version = OOM_EVENT_VERSION;
    // SAFETY: a helper without arguments (Linux 5.8+).
    ev.boot_ns = unsafe { bpf_ktime_get_boot_ns() };
    // SAFETY: a helper without arguments (Linux 4.1+).
    ev.mono_ns = unsafe { bpf_ktime_get_ns() };
    // bpf_get_current_pid_tgid: tgid in the upper 32 bits, pid in the lower.
    let pid_tgid = bpf_get_current_pid_tgid();
    ev.trigger_pid = pid_tgid as u32;
    ev.trigger_tgid = (pid_tgid >> 32) as u32;
    // Straight into the record (no copy on the stack); left zero on failure.
    // SAFETY: the destination is the record's COMM_LEN bytes.
    unsafe { generated::bpf_get_current_comm(ev.trigger_comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32) };
    fill(record);
    entry.submit(0);
    true
}

/// Clears a ring-buffer reservation (the kernel hands it out as it was) by
/// copying the all-zero `ZERO` entry (the largest record) over it.
#[inline(always)]
fn zeroed<T: 'static>(entry: &mut aya_ebpf::maps::ring_buf::RingBufEntry<T>) -> Option<&mut T> {
    let zero = ZERO.get_ptr(0)?;
    let e = entry.as_mut_ptr();
    if !read_into(e as *mut u8, core::mem::size_of::<T>() as u32, zero as *const u8) {
        return None;
    }
    // SAFETY: `e` is this program's reservation of one T, now fully
    // initialised (zeroed; every record is plain integers); it lives until
    // submit or discard.
    Some(unsafe { &mut *e })
}

/// `mark_victim` raw tracepoint (include/trace/events/oom.h, TP_PROTO since
/// 72ba14deb40a: `struct task_struct *task, uid_t uid`): arg 0 is the victim.
/// The current task is the trigger, never the victim: every victim figure is
/// read from arg 0.
#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn oom_mark_victim_raw(ctx: RawTracePointContext) -> u32 {
    bump(counter::SEEN);
    let layout = Layout;
    let task: *const u8 = ctx.arg::<*const c_void>(0) as *const u8;
    // task->cgroups->subsys[memory_cgrp_id]: the victim's memory css, and
    // container_of(css, struct mem_cgroup, css).
    let (cset, css) = if layout.has(kfield::MEMCG_CSS) {
        let cset = read_ptr(task, layout.at(off::TASK_CGROUPS));
        (cset, read_ptr(cset, layout.at(off::CSS_SET_MEMORY)))
    } else {
        (core::ptr::null(), core::ptr::null())
    };
    let memcg = if layout.has(kfield::MEMCG) && !css.is_null() {
        css.wrapping_sub(layout.at(off::MEMCG_CSS) as usize)
    } else {
        core::ptr::null()
    };
    let kn = if layout.has(kfield::CGROUP_KN) && !css.is_null() {
        read_ptr(read_ptr(css, layout.at(off::CSS_CGROUP)), layout.at(off::CGROUP_KN))
    } else {
        core::ptr::null()
    };
    let mut key = [0u64; 3];
    group_kill_key(&mut key, layout, task, cset, css, kn);
    let last = LAST_MEMCG.get_ptr_mut(0).unwrap_or_default();
    // A key of zeros is no key: every victim but a group kill's members.
    let same = key[0] != 0 && !last.is_null() && {
        // SAFETY: this CPU's slot of a per-CPU array; the program does not
        // preempt itself on one CPU.
        let seen = unsafe { &*last };
        seen[0] == key[0] && seen[1] == key[1] && seen[2] == key[2]
    };
    if same {
        emit::<OomEvent>(|ev| {
            victim(ev, layout, task, kn);
            ev.memcg_key = memcg as u64;
            ev.flags = eflags::SAME_MEMCG;
        });
        return 0;
    }
    let sent = emit::<OomEventFull>(|full| {
        victim(&mut full.event, layout, task, kn);
        full.event.memcg_key = memcg as u64;
        full.event.flags = eflags::HAS_MEMCG;
        cgroup_path(&mut full.memcg, layout, kn);
        if !css.is_null() && layout.has(kfield::MEMCG) {
            memcg_counters(&mut full.memcg, layout, css);
        }
    });
    if sent && !last.is_null() {
        // SAFETY: as above. Every full record sets it, keyless ones to
        // zeros: a short one always refers to the last full one this CPU
        // sent.
        unsafe { *last = key };
    }
    0
}

/// The kernel stack size the iterator check trusts: `THREAD_SIZE` is 16 KiB
/// on x86-64 (arch/x86/include/asm/page_64_types.h: `PAGE_SIZE << 2`,
/// doubled under KASAN) and at least that on arm64. A larger stack only
/// makes the check miss (a full record), never pass wrongly: every address
/// it accepts is inside the current task's own stack.
const STACK_BOUND: u64 = 16 << 10;

/// Iterators of a `css_set` looked at: the walk's own is added at the head
/// of `task_iters` (kernel/cgroup/cgroup.c, `css_task_iter_advance_css_set`),
/// behind at most the readers of `cgroup.procs` that started later.
const ITERS_LOOKED_AT: u32 = 4;

/// The key that lets the members of one memory.oom.group kill share one
/// record of their cgroup's figures: `[cgroup id, sum of oom_group_kill over
/// the cgroup and its ancestors, trigger's task_struct]`, or zeros (no key:
/// the victim gets its own figures) for every victim that is not a member
/// of a group kill or whose key cannot be read whole.
///
/// Why two victims with the same key are victims of the same group kill,
/// with the kernel's code (mm/oom_kill.c, mm/memcontrol.c, 5.10 to 6.18):
///
/// 1. Every OOM kill runs under `oom_lock`, and `mark_oom_victim()`, which
///    fires this tracepoint, "has to be called with oom_lock held": the
///    victims of one `oom_kill_process()` are marked after every victim of
///    any earlier one.
/// 2. A group kill's members are marked from `mem_cgroup_scan_tasks(group,
///    oom_kill_memcg_member)`, which walks each cgroup of the group's
///    subtree with a `struct css_task_iter` on the stack of the current task.
///    While the member is marked, that iterator is on the `task_iters` list
///    of the `css_set` it walks, with `cur_task` the member's thread group
///    leader (`css_task_iter_next`), and `ss` the memory controller. The
///    only other memory-controller walks (`select_bad_process`,
///    `dump_tasks`) never mark a victim, and the chosen victim is marked
///    before the walk starts. So a victim counts as a member only when such
///    an iterator, inside the current task's own kernel stack, sits on the
///    victim's own `css_set`; the css_set then is one the walk reached, so
///    the victim's memory cgroup lies in the group's subtree.
/// 3. Before that walk, `oom_kill_process()` bumps `MEMCG_OOM_GROUP_KILL`
///    of the group, which `memcg_memory_event()` also adds to its ancestors
///    on cgroup v2 (not with memory_localevents): the sum over the member's
///    cgroup and all its ancestors counts every group kill of any group
///    that contains it, and only grows (the counters are only incremented;
///    a cgroup's ancestors never change).
/// 4. The cgroup id (`kernfs_node.id`) is never reused within a boot.
///
/// Take a member A of kill K and a later member B of another kill L with
/// the same cgroup id: L started after K ended (1), and bumped the counter
/// of its group, an ancestor-or-self of B's cgroup (2), before marking B
/// (3): the sum at B exceeds the sum at A. Equal keys thus mean the same
/// kill, and a short record refers to figures of its own kill. Kernels
/// without the counter (5.10) or the iterator fields get no key.
///
/// Without point 2 the sum alone would not do: a chosen victim is marked
/// before its kill's bump, and two OOMs without a group kill in between
/// (a global OOM triggered by the same task, which bumps no counter at
/// all) would share a key. Nor would the trigger (in the key only to
/// narrow it further): the same task can trigger many OOMs.
#[inline(always)]
fn group_kill_key(
    key: &mut [u64; 3],
    layout: Layout,
    task: *const u8,
    cset: *const u8,
    css: *const u8,
    kn: *const u8,
) {
    let needed =
        kfield::GROUP_WALK | kfield::MEMCG | kfield::MEMCG_EVENTS | kfield::KN_ID | kfield::CSS_PARENT;
    let index = layout.event_index(common::memstat::OOM_GROUP_KILL_SLOT);
    if !layout.has(needed) || index == NO_INDEX || cset.is_null() || css.is_null() {
        return;
    }
    // SAFETY: a helper without arguments (Linux 4.8+).
    let current = unsafe { generated::bpf_get_current_task() } as *const u8;
    if !in_group_walk(layout, task, cset, css, current) {
        return;
    }
    let (id, ok) = read::<u64>(kn, layout.at(off::KN_ID));
    if !ok || id == 0 {
        return;
    }
    let mut sum = 0u64;
    let mut level = css;
    let mut depth = 0;
    while depth < MEMCG_MAX_LEVELS {
        if level.is_null() {
            break;
        }
        let memcg = level.wrapping_sub(layout.at(off::MEMCG_CSS) as usize);
        let events = memcg.wrapping_add(layout.at(off::MEMCG_EVENTS) as usize);
        let (count, ok) = read::<u64>(events, u32::from(index) * 8);
        if !ok {
            return;
        }
        sum = sum.wrapping_add(count);
        level = read_ptr(level, layout.at(off::CSS_PARENT));
        depth += 1;
    }
    // An ancestor not summed could be the group: no key.
    if !level.is_null() {
        return;
    }
    *key = [id, sum, current as u64];
}

/// Whether `task` is being marked by a memory.oom.group walk of the current
/// task (point 2 of [`group_kill_key`]): an iterator in the current task's
/// stack, on the victim's `css_set`, of the memory controller, at the
/// victim's thread group leader.
#[inline(always)]
fn in_group_walk(
    layout: Layout,
    task: *const u8,
    cset: *const u8,
    css: *const u8,
    current: *const u8,
) -> bool {
    let stack = read_ptr(current, layout.at(off::TASK_STACK)) as u64;
    let leader = read_ptr(task, layout.at(off::TASK_GROUP_LEADER));
    let ss = read_ptr(css, layout.at(off::CSS_SS));
    if stack == 0 || leader.is_null() || ss.is_null() {
        return false;
    }
    let head = cset.wrapping_add(layout.at(off::CSS_SET_TASK_ITERS) as usize);
    // list_head.next is its first member.
    let mut node = read_ptr(head, 0);
    let mut i = 0;
    while i < ITERS_LOOKED_AT {
        if node.is_null() || node == head {
            return false;
        }
        let it = node.wrapping_sub(layout.at(off::ITER_NODE) as usize);
        let at = it as u64;
        if at >= stack
            && at < stack + STACK_BOUND
            && read_ptr(it, layout.at(off::ITER_SS)) == ss
            && read_ptr(it, layout.at(off::ITER_CUR_TASK)) == leader
        {
            return true;
        }
        node = read_ptr(node, 0);
        i += 1;
    }
    false
}

/// The victim's own figures, read from its `task_struct` and `mm_struct`;
/// `kn` is its memory cgroup's kernfs node.
#[inline(always)]
fn victim(ev: &mut OomEvent, layout: Layout, task: *const u8, kn: *const u8) {
    // Figures stay in the kernel's own units (pages, bytes): user space
    // converts them (recorder/src/model/figures.rs).
    ev.page_shift = layout.page_shift();

    if layout.has(kfield::TASK_PID) {
        read_to(&mut ev.victim_pid, task, layout.at(off::TASK_PID));
    }
    if layout.has(kfield::TASK_TGID) && read_to(&mut ev.victim_tgid, task, layout.at(off::TASK_TGID)) {
        ev.kpresent |= kpresent::TGID;
    }
    if layout.has(kfield::TASK_COMM)
        && read_into(
            ev.victim_comm.as_mut_ptr(),
            COMM_LEN as u32,
            task.wrapping_add(layout.at(off::TASK_COMM) as usize),
        )
    {
        ev.present |= present::COMM;
    }
    if layout.has(kfield::TASK_START_TIME)
        && read_to(&mut ev.start_time_ns, task, layout.at(off::TASK_START_TIME))
    {
        ev.kpresent |= kpresent::START_TIME;
    }
    if layout.has(kfield::TASK_FAULTS)
        && read_to(&mut ev.min_flt, task, layout.at(off::TASK_MIN_FLT))
        && read_to(&mut ev.maj_flt, task, layout.at(off::TASK_MAJ_FLT))
    {
        ev.kpresent |= kpresent::FAULTS;
    }
    if layout.has(kfield::UID)
        && read_to(
            &mut ev.victim_uid,
            read_ptr(task, layout.at(off::TASK_REAL_CRED)),
            layout.at(off::CRED_UID),
        )
    {
        ev.present |= present::UID;
    }
    if layout.has(kfield::OOM_SCORE_ADJ) {
        let signal = read_ptr(task, layout.at(off::TASK_SIGNAL));
        let (adj, ok) = read::<i16>(signal, layout.at(off::SIGNAL_OOM_SCORE_ADJ));
        if ok {
            ev.oom_score_adj = i32::from(adj);
            ev.present |= present::OOM_SCORE_ADJ;
        }
    }
    let mm = if layout.has(kfield::MM) { read_ptr(task, layout.at(off::TASK_MM)) } else { core::ptr::null() };
    if layout.has(kfield::TOTAL_VM) && read_to(&mut ev.total_vm_pages, mm, layout.at(off::MM_TOTAL_VM)) {
        ev.kpresent |= kpresent::TOTAL_VM;
    }
    if layout.has(kfield::RSS) {
        let mut ok = true;
        let mut i = 0;
        while i < 4 {
            // get_mm_counter() (include/linux/mm.h) clamps a negative
            // percpu_counter approximation to 0; the raw value is kept here.
            let index = layout.mm_rss_index(i) & 7;
            ok &= read_to(&mut ev.rss_pages[i], mm, layout.at(off::MM_RSS) + index * layout.mm_rss_stride());
            i += 1;
        }
        if ok {
            ev.kpresent |= kpresent::RSS;
        }
    }
    if layout.has(kfield::PGTABLES) && read_to(&mut ev.pgtables_bytes, mm, layout.at(off::MM_PGTABLES_BYTES))
    {
        ev.kpresent |= kpresent::PGTABLES;
    }
    if layout.has(kfield::NODENAME) {
        let uts = read_ptr(read_ptr(task, layout.at(off::TASK_NSPROXY)), layout.at(off::NSPROXY_UTS_NS));
        // __NEW_UTS_LEN + 1 bytes (include/uapi/linux/utsname.h).
        if !uts.is_null()
            && read_into(
                ev.nodename.as_mut_ptr(),
                65,
                uts.wrapping_add(layout.at(off::UTS_NODENAME) as usize),
            )
        {
            ev.kpresent |= kpresent::NODENAME;
        }
    }
    if layout.has(kfield::KN_ID) && read_to(&mut ev.cgroup_id, kn, layout.at(off::KN_ID)) {
        ev.kpresent |= kpresent::CGROUP_ID;
    }
}

/// Names of the kernfs nodes from the victim's memory cgroup up to (not
/// including) the hierarchy's root, leaf first.
#[inline(always)]
fn cgroup_path(ev: &mut MemcgPart, layout: Layout, leaf: *const u8) {
    if leaf.is_null() {
        return;
    }
    let mut kn = leaf;
    let mut depth = 0;
    let mut complete = true;
    while depth < CGROUP_MAX_DEPTH {
        let parent = read_ptr(kn, layout.at(off::KN_PARENT));
        if parent.is_null() {
            break;
        }
        let name = read_ptr(kn, layout.at(off::KN_NAME));
        let slot = &mut ev.cgroup_names[depth];
        // SAFETY: `slot` is CGROUP_NAME_LEN bytes of the reservation; the
        // helper checks the kernel address and always NUL-terminates.
        let len = unsafe {
            generated::bpf_probe_read_kernel_str(
                slot.as_mut_ptr() as *mut c_void,
                CGROUP_NAME_LEN as u32,
                name as *const c_void,
            )
        };
        // A name that filled the slot may be cut: the path is then unknown.
        if len <= 0 || len as usize >= CGROUP_NAME_LEN {
            complete = false;
        }
        kn = parent;
        depth += 1;
        // Stored in the loop, never used after it (see memcg_counters).
        opaque_store(&mut ev.cgroup_depth, depth as u32);
    }
    // Stopped by the depth bound with a parent still above: incomplete. (A
    // stop at the root read the null parent already: false again.)
    if !read_ptr(kn, layout.at(off::KN_PARENT)).is_null() {
        complete = false;
    }
    if complete {
        ev.present |= mpresent::CGROUP_PATH;
    }
}

/// A store the compiler keeps where it is written (inside a loop), rather
/// than moving it after the loop with the counter kept in a register.
#[inline(always)]
fn opaque_store(dst: &mut u32, value: u32) {
    // SAFETY: `dst` is a valid, exclusive u32.
    unsafe { core::ptr::write_volatile(dst, value) };
}

/// Page counters of the victim's memory cgroup and its ancestors (css.parent)
/// up to the root, in pages.
///
/// No loop counter outlives its loop (`memcg_levels`, `oom_level` here and
/// `cgroup_depth` in [`cgroup_path`] go into the record inside the loop and
/// are read back from it where needed): a counter that indexes the record
/// is a value the verifier must know exactly, so each loop exit would leave
/// a state of its own and everything after the loop would be verified once
/// per exit, and per combination of exits of consecutive loops. The 5.10
/// and 6.1 verifiers gave up on that at their limit of a million
/// instructions (6.18 prunes it: 55,000).
#[inline(always)]
fn memcg_counters(ev: &mut MemcgPart, layout: Layout, leaf_css: *const u8) {
    let mut css = leaf_css;
    let mut level = 0;
    // Each optional counter stays known only if it was read at every level.
    let mut flags = mpresent::MEMCG;
    if layout.has(kfield::PC_LOW) {
        flags |= mpresent::MEMCG_LOW;
    }
    if layout.has(kfield::PC_HIGH) {
        flags |= mpresent::MEMCG_HIGH;
    }
    if layout.has(kfield::PC_MIN) {
        flags |= mpresent::MEMCG_MIN;
    }
    if layout.has(kfield::MEMCG_SWAP) {
        flags |= mpresent::MEMCG_SWAP;
        if layout.has(kfield::MEMCG_MEMSW) {
            flags |= mpresent::MEMCG_MEMSW;
        }
    }
    // The cgroup whose limit was hit, to read its own figures too. The one
    // decision made here: user space cannot go back for them later. The
    // same rule as user space's (`KernelState::inferred_oom_level`): the
    // lowest level with a limit whose usage is within AT_LIMIT_PAGES of it.
    // A limit of PAGE_COUNTER_MAX (include/linux/page_counter.h: LONG_MAX /
    // PAGE_SIZE) is no limit.
    let unlimited = (i64::MAX as u64) >> layout.page_shift();
    // Null until found; its level goes straight into the record.
    let mut oom_memcg: *const u8 = core::ptr::null();
    let mut own: *const u8 = core::ptr::null();
    while level < MEMCG_MAX_LEVELS {
        if css.is_null() {
            break;
        }
        // container_of(css, struct mem_cgroup, css).
        let memcg = css.wrapping_sub(layout.at(off::MEMCG_CSS) as usize);
        let memory = memcg.wrapping_add(layout.at(off::MEMCG_MEMORY) as usize);
        let (usage, read_usage) = read::<u64>(memory, layout.at(off::PC_USAGE));
        let (max, read_max) = read::<u64>(memory, layout.at(off::PC_MAX));
        if !(read_usage && read_max) {
            break;
        }
        let c = &mut ev.memcg[level];
        c.usage = usage;
        c.max = max;
        if level == 0 {
            own = memcg;
        }
        if oom_memcg.is_null() && max < unlimited && max.saturating_sub(usage) <= AT_LIMIT_PAGES {
            oom_memcg = memcg;
            opaque_store(&mut ev.oom_level, level as u32);
            ev.present |= mpresent::OOM_LEVEL;
        }
        if layout.has(kfield::PC_LOW) && !read_to(&mut c.low, memory, layout.at(off::PC_LOW)) {
            flags &= !mpresent::MEMCG_LOW;
        }
        if layout.has(kfield::PC_HIGH) && !read_to(&mut c.high, memory, layout.at(off::PC_HIGH)) {
            flags &= !mpresent::MEMCG_HIGH;
        }
        if layout.has(kfield::PC_MIN) && !read_to(&mut c.min, memory, layout.at(off::PC_MIN)) {
            flags &= !mpresent::MEMCG_MIN;
        }
        if layout.has(kfield::MEMCG_SWAP) {
            let swap = memcg.wrapping_add(layout.at(off::MEMCG_SWAP) as usize);
            if !read_to(&mut c.swap_usage, swap, layout.at(off::PC_USAGE))
                || !read_to(&mut c.swap_max, swap, layout.at(off::PC_MAX))
            {
                flags &= !mpresent::MEMCG_SWAP;
            }
        }
        level += 1;
        // In the loop, never after it: see above.
        opaque_store(&mut ev.memcg_levels, level as u32);
        if !layout.has(kfield::CSS_PARENT) {
            break;
        }
        css = read_ptr(css, layout.at(off::CSS_PARENT));
    }
    if own.is_null() {
        return;
    }
    ev.present |= flags;
    memcg_detail(&mut ev.details[0], layout, own, 0);
    ev.detail_count = 1;
    if !oom_memcg.is_null() && oom_memcg != own {
        // Read back from the record: a value the verifier does not know.
        // SAFETY: a field of the reservation, written above.
        let at = unsafe { core::ptr::read_volatile(&ev.oom_level) };
        memcg_detail(&mut ev.details[1], layout, oom_memcg, at);
        ev.detail_count = 2;
    }
}

/// A memory cgroup's own figures: its `memory.stat` items at the indices
/// user space resolved, its `memory.events`, and its settings.
#[inline(always)]
fn memcg_detail(d: &mut MemcgDetail, layout: Layout, memcg: *const u8, level: u32) {
    d.level = level;
    if layout.has(kfield::MEMCG_STATS) {
        let mut vmstats = memcg.wrapping_add(layout.at(off::MEMCG_VMSTATS) as usize);
        if layout.has(kfield::VMSTATS_PTR) {
            vmstats = read_ptr(memcg, layout.at(off::MEMCG_VMSTATS));
        }
        if !vmstats.is_null() {
            let state = vmstats.wrapping_add(layout.at(off::VMSTATS_STATE) as usize);
            let mut ok = true;
            let mut slot = 0;
            while slot < MEMCG_STAT_SLOTS {
                let index = layout.stat_index(slot);
                if index != NO_INDEX {
                    let (value, read_ok) = read::<i64>(state, u32::from(index) * 8);
                    d.stats[slot] = value;
                    if read_ok {
                        d.stat_slots |= 1 << slot;
                    } else {
                        ok = false;
                    }
                }
                slot += 1;
            }
            if ok {
                d.present |= dpresent::STATS;
            }
            if layout.has(kfield::MEMCG_PENDING) {
                let read_pending = match layout.pending_width() {
                    4 => {
                        let (p, ok) = read::<u32>(vmstats, layout.at(off::VMSTATS_PENDING));
                        d.pending_updates = u64::from(p);
                        ok
                    }
                    _ => read_to(&mut d.pending_updates, vmstats, layout.at(off::VMSTATS_PENDING)),
                };
                if read_pending {
                    d.present |= dpresent::PENDING;
                }
            }
        }
    }
    if layout.has(kfield::MEMCG_EVENTS) {
        let events = memcg.wrapping_add(layout.at(off::MEMCG_EVENTS) as usize);
        let mut ok = true;
        let mut slot = 0;
        while slot < MEMCG_EVENT_SLOTS {
            let index = layout.event_index(slot);
            if index != NO_INDEX {
                let (value, read_ok) = read::<u64>(events, u32::from(index) * 8);
                d.events[slot] = value;
                if read_ok {
                    d.event_slots |= 1 << slot;
                } else {
                    ok = false;
                }
            }
            slot += 1;
        }
        if ok {
            d.present |= dpresent::EVENTS;
        }
    }
    if layout.has(kfield::MEMCG_LRU) {
        lru_sizes(d, layout, memcg);
    }
    if layout.has(kfield::MEMCG_OOM_GROUP) {
        let (group, ok) = read::<u8>(memcg, layout.at(off::MEMCG_OOM_GROUP));
        if ok {
            d.oom_group = u32::from(group);
            d.present |= dpresent::OOM_GROUP;
        }
    }
    if layout.has(kfield::MEMCG_SWAPPINESS)
        && read_to(&mut d.swappiness, memcg, layout.at(off::MEMCG_SWAPPINESS))
    {
        d.present |= dpresent::SWAPPINESS;
    }
    if layout.has(kfield::MEMCG_KMEM) {
        let kmem = memcg.wrapping_add(layout.at(off::MEMCG_KMEM) as usize);
        if read_to(&mut d.kmem_usage, kmem, layout.at(off::PC_USAGE))
            && read_to(&mut d.kmem_max, kmem, layout.at(off::PC_MAX))
        {
            d.present |= dpresent::KMEM;
        } else {
            d.kmem_usage = 0;
            d.kmem_max = 0;
        }
    }
}

/// `lru_zone_size[zone][lru]` of every node's `mem_cgroup_per_node`,
/// summed per list.
#[inline(always)]
fn lru_sizes(d: &mut MemcgDetail, layout: Layout, memcg: *const u8) {
    let (nodes, zones, nr_lru) = layout.lru_shape();
    let mut node = 0;
    while node < nodes {
        let pn = read_ptr(memcg, layout.at(off::MEMCG_NODEINFO) + node * 8);
        if pn.is_null() {
            return;
        }
        let sizes = pn.wrapping_add(layout.at(off::PN_LRU_ZONE_SIZE) as usize);
        let mut zone = 0;
        while zone < zones {
            let mut lru = 0;
            while lru < LRU_LISTS as u32 {
                let (pages, ok) = read::<u64>(sizes, (zone * nr_lru + lru) * 8);
                if !ok {
                    return;
                }
                d.lru_pages[lru as usize] += pages;
                lru += 1;
            }
            zone += 1;
        }
        node += 1;
    }
    d.present |= dpresent::LRU;
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// GPL-compatible, as `bpf_probe_read_kernel` requires.
#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
