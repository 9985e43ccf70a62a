//! The kernel side of oomrecorder: copies each OOM victim's figures from the
//! `oom:mark_victim` tracepoint into a ring buffer. No logic lives here; user
//! space decides what the figures mean.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns, bpf_ktime_get_ns,
        bpf_probe_read_kernel_buf,
    },
    macros::{map, tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::TracePointContext,
    EbpfContext,
};
use common::{counter, MarkVictimLayout, OomEvent, TpField, COMM_LEN, OOM_EVENT_VERSION};

/// Field offsets of `oom:mark_victim` on the running kernel, written by the
/// loader from the tracefs `format` file before the program is loaded.
#[no_mangle]
static MARK_VICTIM_LAYOUT: MarkVictimLayout = MarkVictimLayout::ABSENT;

/// 256 KiB holds about 2,000 events: a group kill of that many tasks between
/// two reads of user space. A fuller buffer is counted, never silently lost.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

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

    let Some(mut entry) = EVENTS.reserve::<OomEvent>(0) else {
        bump(counter::RINGBUF_FULL);
        return 0;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut event = OomEvent {
        version: OOM_EVENT_VERSION,
        present: layout.present_bits(),
        // SAFETY: helpers without arguments; both exist since Linux 5.8.
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        mono_ns: unsafe { bpf_ktime_get_ns() },
        victim_pid: read_signed(&ctx, layout.pid) as i32,
        victim_uid: read_unsigned(&ctx, layout.uid) as u32,
        total_vm_kb: read_unsigned(&ctx, layout.total_vm),
        anon_rss_kb: read_unsigned(&ctx, layout.anon_rss),
        file_rss_kb: read_unsigned(&ctx, layout.file_rss),
        shmem_rss_kb: read_unsigned(&ctx, layout.shmem_rss),
        pgtables_kb: read_unsigned(&ctx, layout.pgtables),
        // bpf_get_current_pid_tgid: tgid in the upper 32 bits, pid in the lower.
        trigger_pid: pid_tgid as u32,
        trigger_tgid: (pid_tgid >> 32) as u32,
        oom_score_adj: read_signed(&ctx, layout.oom_score_adj) as i32,
        _pad: 0,
        victim_comm: [0; COMM_LEN],
        trigger_comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
    };
    if layout.comm.is_present() {
        // __data_loc: low 16 bits are the string's offset in the record, high
        // 16 bits its length including the NUL (include/trace/stages/).
        let loc = read_unsigned(&ctx, layout.comm) as u32;
        let offset = (loc & 0xffff) as usize;
        // The copy is always COMM_LEN bytes (the verifier wants a constant
        // size); bytes after the NUL are ignored by user space.
        // SAFETY: bpf_probe_read_kernel_buf tolerates any address.
        let src = unsafe { (ctx.as_ptr() as *const u8).add(offset) };
        if unsafe { bpf_probe_read_kernel_buf(src, &mut event.victim_comm) }.is_err() {
            event.present &= !common::present::COMM;
        }
    }
    entry.write(event);
    entry.submit(0);
    0
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
