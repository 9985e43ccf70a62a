//! Clocks: turning the eBPF program's boot-clock timestamps into wall-clock
//! time, and the boot id that, with boot-clock ns, names an instant exactly
//! (so later joins with kernel log records, in µs since boot, are exact).

use std::{fs, io, path::Path};

/// Reads `/proc/sys/kernel/random/boot_id` (a UUID regenerated at each boot,
/// drivers/char/random.c).
pub fn read_boot_id(proc_root: &Path) -> io::Result<String> {
    let path = proc_root.join("sys/kernel/random/boot_id");
    let id = fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    Ok(id.trim().to_owned())
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec; clock ids are constants that
    // exist since Linux 2.6.39 (CLOCK_BOOTTIME), so the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_BOOTTIME now, in ns: the clock of `bpf_ktime_get_boot_ns()`.
pub fn boot_ns_now() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

/// Wall-clock (Unix) ns for an instant `ns` on `clock`. The offset between
/// the two clocks is read now, bracketed by two reads of `clock`, so a clock
/// step (NTP, settimeofday) since start-up is followed.
fn to_wall_ns(clock: libc::clockid_t, ns: u64) -> i64 {
    let before = clock_ns(clock);
    let real = clock_ns(libc::CLOCK_REALTIME);
    let after = clock_ns(clock);
    let offset = real - (before + after) / 2;
    (i128::from(ns) + offset) as i64
}

/// Wall-clock ns for a CLOCK_BOOTTIME instant (the eBPF event's stamp).
pub fn boot_to_wall_ns(boot_ns: u64) -> i64 {
    to_wall_ns(libc::CLOCK_BOOTTIME, boot_ns)
}

/// Wall-clock ns for a CLOCK_MONOTONIC instant, such as a kernel log stamp
/// (`local_clock()`, which like CLOCK_MONOTONIC stops in suspend).
pub fn mono_to_wall_ns(mono_ns: u64) -> i64 {
    to_wall_ns(libc::CLOCK_MONOTONIC, mono_ns)
}

/// CLOCK_MONOTONIC now, in ns: the kernel log's clock.
pub fn mono_ns_now() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// Wall-clock now, in Unix ns.
pub fn wall_ns_now() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_converts_to_now() {
        let wall = boot_to_wall_ns(boot_ns_now());
        let drift = (wall - wall_ns_now()).abs();
        assert!(drift < 1_000_000_000, "converted boot clock is {drift} ns away from the wall clock");
    }

    #[test]
    fn boot_id_is_read_from_the_given_proc_and_trimmed() {
        let proc_root = tempfile::tempdir().unwrap();
        let dir = proc_root.path().join("sys/kernel/random");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("boot_id"), "90e19252-c4f3-4f33-b61e-680af3ffcadb\n").unwrap();
        assert_eq!(read_boot_id(proc_root.path()).unwrap(), "90e19252-c4f3-4f33-b61e-680af3ffcadb");
        let missing = read_boot_id(&proc_root.path().join("absent")).unwrap_err();
        assert!(missing.to_string().contains("absent/sys/kernel/random/boot_id"), "{missing}");
    }
}
