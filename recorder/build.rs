//! Builds the eBPF object (crate `recorder-ebpf`, bin `oomrecorder`) with the
//! nightly toolchain through aya-build and leaves it at `$OUT_DIR/oomrecorder`,
//! where `sources/ebpf.rs` embeds it.

use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let ebpf = aya_build::Package {
        name: "recorder-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../recorder-ebpf"),
        ..Default::default()
    };
    println!("cargo:rerun-if-changed=../common/src");
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::default())?;

    // AYA_BUILD_SKIP=1 (for quick host-only checks) builds no object; leave an
    // empty one so include_bytes_aligned! compiles. Loading it then fails with
    // a clear error at run time, never silently.
    let object = PathBuf::from(env::var("OUT_DIR")?).join("oomrecorder");
    if !object.exists() {
        fs::write(&object, [])?;
    }
    Ok(())
}
