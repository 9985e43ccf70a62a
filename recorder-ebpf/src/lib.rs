// The eBPF program is the `oomrecorder` bin (src/main.rs); this empty no_std
// library only lets the crate sit in the workspace.
#![no_std]
