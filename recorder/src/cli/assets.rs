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
use clap_mangen::{
    roff::{bold, roman, Roff},
    Man,
};

use super::{exit::Exit, manual, Cli};

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
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_owned();
        fs::write(man.join(format!("oomrecorder-{name}.1")), page(sub.clone(), &name)?)?;
    }
    fs::write(man.join("oomrecorder.1"), page(cli, "oomrecorder")?)?;
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

/// One man page: what clap_mangen renders from the command's definition
/// (name, synopsis, description, options with the global ones apart,
/// subcommands), then the written sections ([`manual::sections`]), then
/// the version.
fn page(cmd: clap::Command, name: &str) -> io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone());
    let mut page = Vec::new();
    // Each render starts with roff's apostrophe preamble; the page has it once.
    let mut part = |render: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| -> io::Result<()> {
        let mut text = Vec::new();
        render(&mut text)?;
        let skip = if page.is_empty() { 0 } else { preamble_len(&text) };
        page.extend_from_slice(&text[skip..]);
        Ok(())
    };
    part(&|w| man.render_title(w))?;
    part(&|w| man.render_name_section(w))?;
    part(&|w| man.render_synopsis_section(w))?;
    part(&|w| man.render_description_section(w))?;
    part(&|w| man.render_options_section(w))?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        part(&|w| man.render_subcommands_section(w))?;
    }
    for (title, paragraphs) in manual::sections(name) {
        let mut roff = Roff::new();
        roff.control("SH", [title]);
        for (term, text) in paragraphs {
            if term.is_empty() {
                roff.control("PP", []).text([roman(text)]);
            } else {
                roff.control("TP", []).text([bold(term)]).text([roman(text)]);
            }
        }
        part(&|w| roff.to_writer(w))?;
    }
    part(&|w| man.render_version_section(w))?;
    Ok(page)
}

/// The length of roff's preamble at the start of `text` (two lines).
fn preamble_len(text: &[u8]) -> usize {
    let mut newlines = text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1);
    let _first = newlines.next();
    newlines.next().unwrap_or(0)
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

    /// Real pages: each has the written sections, the global options apart,
    /// a description that is not its name line, and list and show their
    /// JSON keys.
    #[test]
    fn man_pages_have_their_sections() {
        let dir = tempfile::tempdir().unwrap();
        write_assets(dir.path()).unwrap();
        let read = |page: &str| fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        for page in [
            "oomrecorder.1",
            "oomrecorder-list.1",
            "oomrecorder-show.1",
            "oomrecorder-status.1",
            "oomrecorder-run.1",
        ] {
            let text = read(page);
            for section in [
                "SH NAME",
                "SH SYNOPSIS",
                "SH DESCRIPTION",
                "SH OPTIONS",
                "SH \"GLOBAL OPTIONS\"",
                "SH EXAMPLES",
                "SH \"EXIT STATUS\"",
                "SH ENVIRONMENT",
                "SH FILES",
                "SH \"SEE ALSO\"",
            ] {
                assert!(text.contains(&format!(".{section}")), "{page} lacks .{section}");
            }
            assert_eq!(text.matches(".ds Aq").count(), 2, "{page}: one preamble");
            let lines: Vec<&str> = text.lines().collect();
            let after = |heading: &str| lines.iter().position(|l| *l == heading).map(|i| lines[i + 1]);
            assert_ne!(
                after(".SH NAME").map(|l| l.split(" \\- ").nth(1)),
                after(".SH DESCRIPTION").map(Some),
                "{page}"
            );
        }
        let list = read("oomrecorder-list.1");
        assert!(list.contains(".SH JSON") && list.contains("container_name") && list.contains("incident_id"));
        let show = read("oomrecorder-show.1");
        assert!(show.contains(".SH JSON") && show.contains("cgroup.at_kill.memsw_limit_bytes"));
        assert!(read("oomrecorder.1").contains("oomrecorder\\-show(1)"), "SEE ALSO names the pages");
    }
}
