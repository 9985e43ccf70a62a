//! `oomrecorder generate-assets DIR` (hidden): the man pages and shell
//! completions, rendered from the same clap definition the binary parses with.
//!
//! The package ships copies kept in `packaging/generated/`, so that a plain
//! `cargo deb` (and `cargo deb --install`) needs no step before it; a unit
//! test fails when those copies no longer match the command line. A build
//! script cannot do this: it would need the whole CLI, which is the crate
//! it is building.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::exit::Exit;
use super::Cli;

#[derive(Debug, Args)]
pub struct AssetsArgs {
    /// Directory to write `man/` and `completions/` into (created if needed).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The shells we ship completions for, and the file name each one's
/// vendor-completions directory expects.
const SHELLS: [(Shell, &str); 3] =
    [(Shell::Bash, "oomrecorder"), (Shell::Zsh, "_oomrecorder"), (Shell::Fish, "oomrecorder.fish")];

pub fn run(args: &AssetsArgs) -> anyhow::Result<Exit> {
    let paths = write_assets(&args.dir)?;
    super::format::to_stdout(|out| paths.iter().try_for_each(|path| writeln!(out, "{}", path.display())))
}

/// Writes every asset under `dir` and returns their paths, sorted.
pub fn write_assets(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    // One page per visible command: oomrecorder.1, oomrecorder-run.1, ...
    clap_mangen::generate_to(Cli::command(), &man)?;
    for (shell, name) in SHELLS {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "oomrecorder", &mut text);
        fs::write(completions.join(name), text)?;
    }
    let mut written = Vec::new();
    for sub in [&man, &completions] {
        for entry in fs::read_dir(sub)? {
            written.push(entry?.path());
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copies the package ships must be what this binary would generate.
    #[test]
    fn shipped_assets_are_current() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/generated");
        let fresh = tempfile::tempdir().unwrap();
        let written = write_assets(fresh.path()).unwrap();
        let fix = "regenerate them: cargo run -- generate-assets packaging/generated";
        for path in &written {
            let relative = path.strip_prefix(fresh.path()).unwrap();
            let old = fs::read(shipped.join(relative))
                .unwrap_or_else(|e| panic!("packaging/generated/{} ({e}): {fix}", relative.display()));
            assert!(
                old == fs::read(path).unwrap(),
                "packaging/generated/{} is stale: {fix}",
                relative.display()
            );
        }
        let count = |dir: &Path| {
            ["man", "completions"].iter().map(|d| fs::read_dir(dir.join(d)).unwrap().count()).sum::<usize>()
        };
        assert_eq!(count(&shipped), written.len(), "packaging/generated has files nothing generates: {fix}");
        assert!(written.iter().any(|p| p.ends_with("man/oomrecorder-list.1")), "{written:?}");
    }
}
