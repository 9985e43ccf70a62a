//! `oomt-sleeper COUNT LEAVE_TO READY`: the kernel matrix's group-kill
//! sleepers. Started inside the group's cgroup, it forks COUNT children that
//! sleep until killed, moves itself to the cgroup whose `cgroup.procs` is
//! LEAVE_TO (so that only the children are in the group), creates READY, and
//! reaps the children as the group kill ends them.
//!
//! Why not busybox: a fork and an exec of busybox per sleeper took 124 s for
//! 5,000 of them under qemu TCG; a fork of this small static program without
//! an exec is a fraction of that. The children inherit the comm
//! (`oomt-sleeper`, the file's name), which is what the matrix matches.
//!
//! Built by tests/kernels/matrix.rs with plain rustc (static, no crates), so
//! it runs in the initramfs without libraries.

use std::{fs, process::ExitCode};

extern "C" {
    fn fork() -> i32;
    fn pause() -> i32;
    fn wait(status: *mut i32) -> i32;
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(count), Some(leave_to), Some(ready)) =
        (args.get(1).and_then(|n| n.parse::<u32>().ok()), args.get(2), args.get(3))
    else {
        eprintln!("usage: oomt-sleeper COUNT LEAVE_TO READY");
        return ExitCode::FAILURE;
    };
    for n in 0..count {
        // SAFETY: fork in a single-threaded process; the child only calls
        // pause, which is async-signal-safe, and never returns.
        match unsafe { fork() } {
            0 => loop {
                // SAFETY: no arguments; returns only on a handled signal.
                unsafe { pause() };
            },
            pid if pid < 0 => {
                eprintln!("oomt-sleeper: fork {n} of {count}: {}", std::io::Error::last_os_error());
                return ExitCode::FAILURE;
            }
            _ => {}
        }
    }
    if let Err(e) = fs::write(leave_to, std::process::id().to_string()) {
        eprintln!("oomt-sleeper: leave to {leave_to}: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = fs::write(ready, "") {
        eprintln!("oomt-sleeper: create {ready}: {e}");
        return ExitCode::FAILURE;
    }
    // Reaps every child; -1 (ECHILD) once none is left.
    // SAFETY: a null status pointer is allowed.
    while unsafe { wait(std::ptr::null_mut()) } >= 0 {}
    ExitCode::SUCCESS
}
