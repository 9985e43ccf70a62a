//! tracefs: finding (or mounting) it, and reading the `oom:mark_victim`
//! record layout from its `format` file.
//!
//! The parser is pure (`parse_format`, `mark_victim_layout`); `read_*`
//! functions do the I/O and put the path into their errors.

use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

use common::{MarkVictimLayout, TpField};

/// Where tracefs lives: its own mount point since Linux 4.1, and the
/// debugfs path that older set-ups (and aya's own lookup) also accept.
const TRACEFS_PATHS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("tracefs is not mounted and mounting it on {path} failed: {source} (needs CAP_SYS_ADMIN, or mount it at boot: `mount -t tracefs nodev /sys/kernel/tracing`)")]
    Mount { path: PathBuf, source: io::Error },
    #[error("this kernel has no oom:mark_victim tracepoint ({path} is missing): oomrecorder needs CONFIG_TRACEPOINTS and Linux 5.8 or newer (ring buffer, boot clock), which all have it")]
    TracepointAbsent { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: FormatError },
}

/// One `field:` line of a tracefs `format` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    /// The C declaration without the name, e.g. `unsigned long`, `__data_loc char[]`.
    pub c_type: String,
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("line {line}: {what}")]
    Line { line: usize, what: &'static str },
    #[error("no `pid` field: not the oom:mark_victim format this recorder knows")]
    NoPid,
}

/// Parses a tracefs event `format` file (kernel/trace/trace_events.c,
/// `f_show`): lines of the form
/// `\tfield:<declaration>;\toffset:<n>;\tsize:<n>;\tsigned:<0|1>;`.
/// Other lines (`name:`, `ID:`, `print fmt:`) are skipped.
pub fn parse_format(text: &str) -> Result<Vec<FormatField>, FormatError> {
    let mut fields = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some(rest) = line.trim_start().strip_prefix("field:") else {
            continue;
        };
        let bad = |what| FormatError::Line { line: line_no, what };
        let mut parts = rest.split(';').map(str::trim);
        let declaration = parts.next().ok_or(bad("no declaration"))?;
        let mut offset = None;
        let mut size = None;
        let mut signed = None;
        for part in parts {
            if let Some(v) = part.strip_prefix("offset:") {
                offset = Some(v.parse::<u32>().map_err(|_| bad("offset is not a number"))?);
            } else if let Some(v) = part.strip_prefix("size:") {
                size = Some(v.parse::<u32>().map_err(|_| bad("size is not a number"))?);
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = Some(v == "1");
            }
        }
        // The name is the declaration's last word, minus any array suffix:
        // `__data_loc char[] comm`, `char comm[16]`, `int pid`.
        let (c_type, name) = declaration.rsplit_once(char::is_whitespace).ok_or(bad("no field name"))?;
        let name = name.split('[').next().unwrap_or(name);
        if name.is_empty() {
            return Err(bad("no field name"));
        }
        fields.push(FormatField {
            c_type: c_type.trim().to_owned(),
            name: name.to_owned(),
            offset: offset.ok_or(bad("no offset"))?,
            size: size.ok_or(bad("no size"))?,
            signed: signed.unwrap_or(false),
        });
    }
    Ok(fields)
}

/// What the recorder takes from a `mark_victim` format: the layout for the
/// program, and the names of the fields this kernel lacks (for the start-up log
/// and, later, `oomrecorder doctor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkVictim {
    pub layout: MarkVictimLayout,
    pub absent: Vec<&'static str>,
}

/// Maps the parsed fields onto [`MarkVictimLayout`]. A field is taken only when
/// its size is one the program can read (1, 2, 4 or 8 bytes; `comm` must be a
/// `__data_loc`); anything else is reported absent rather than misread.
pub fn mark_victim_layout(fields: &[FormatField]) -> Result<MarkVictim, FormatError> {
    let find = |name: &str| fields.iter().find(|f| f.name == name);
    let integer = |name: &str| match find(name) {
        Some(f) if matches!(f.size, 1 | 2 | 4 | 8) && !f.c_type.starts_with("__data_loc") => {
            TpField { offset: f.offset, size: f.size }
        }
        _ => TpField::ABSENT,
    };
    let pid = integer("pid");
    if !pid.is_present() {
        return Err(FormatError::NoPid);
    }
    let comm = match find("comm") {
        Some(f) if f.c_type.starts_with("__data_loc") && f.size == 4 => {
            TpField { offset: f.offset, size: f.size }
        }
        _ => TpField::ABSENT,
    };
    let layout = MarkVictimLayout {
        pid,
        comm,
        total_vm: integer("total_vm"),
        anon_rss: integer("anon_rss"),
        file_rss: integer("file_rss"),
        shmem_rss: integer("shmem_rss"),
        uid: integer("uid"),
        pgtables: integer("pgtables"),
        oom_score_adj: integer("oom_score_adj"),
    };
    let absent = [
        ("comm", layout.comm),
        ("total_vm", layout.total_vm),
        ("anon_rss", layout.anon_rss),
        ("file_rss", layout.file_rss),
        ("shmem_rss", layout.shmem_rss),
        ("uid", layout.uid),
        ("pgtables", layout.pgtables),
        ("oom_score_adj", layout.oom_score_adj),
    ]
    .into_iter()
    .filter(|(_, field)| !field.is_present())
    .map(|(name, _)| name)
    .collect();
    Ok(MarkVictim { layout, absent })
}

/// Returns the tracefs root, mounting tracefs on `/sys/kernel/tracing` when
/// no known path has it (fresh machines and CI hosts without systemd leave it
/// unmounted).
pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    if let Some(root) = TRACEFS_PATHS.iter().map(Path::new).find(|p| p.join("events").is_dir()) {
        return Ok(root.to_path_buf());
    }
    let target = PathBuf::from(TRACEFS_PATHS[0]);
    mount_tracefs(&target).map_err(|source| TracefsError::Mount { path: target.clone(), source })?;
    log::info!("mounted tracefs on {}", target.display());
    Ok(target)
}

fn mount_tracefs(target: &Path) -> io::Result<()> {
    let to_c = |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let source = to_c("nodev")?;
    let fstype = to_c("tracefs")?;
    let target = to_c(&target.to_string_lossy())?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; a null data pointer is allowed for tracefs.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads and maps `events/oom/mark_victim/format` under a tracefs root.
pub fn read_mark_victim(tracefs: &Path) -> Result<MarkVictim, TracefsError> {
    let path = tracefs.join("events/oom/mark_victim/format");
    let text = fs::read_to_string(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TracefsError::TracepointAbsent { path: path.clone() },
        _ => TracefsError::Read { path: path.clone(), source },
    })?;
    parse_format(&text)
        .and_then(|fields| mark_victim_layout(&fields))
        .map_err(|reason| TracefsError::Format { path, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Linux 6.18 (this project's CI host),
    /// /sys/kernel/tracing/events/oom/mark_victim/format.
    const FORMAT_6_18: &str = include_str!("../../../tests/fixtures/mark_victim-format-6.18.txt");

    /// The pre-72ba14deb40a shape (include/trace/events/oom.h up to 6.8): pid only.
    const FORMAT_PID_ONLY: &str = "name: mark_victim
ID: 512
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;

print fmt: \"pid=%d\", REC->pid
";

    #[test]
    fn parses_the_6_18_format() {
        let fields = parse_format(FORMAT_6_18).unwrap();
        let comm = fields.iter().find(|f| f.name == "comm").unwrap();
        assert_eq!(comm.c_type, "__data_loc char[]");
        assert_eq!((comm.offset, comm.size), (12, 4));
        let adj = fields.iter().find(|f| f.name == "oom_score_adj").unwrap();
        assert_eq!((adj.offset, adj.size, adj.signed), (64, 2, true));

        let mv = mark_victim_layout(&fields).unwrap();
        assert!(mv.absent.is_empty(), "absent: {:?}", mv.absent);
        assert_eq!(mv.layout.pid, TpField { offset: 8, size: 4 });
        assert_eq!(mv.layout.total_vm, TpField { offset: 16, size: 8 });
        assert_eq!(mv.layout.uid, TpField { offset: 48, size: 4 });
        assert_eq!(mv.layout.pgtables, TpField { offset: 56, size: 8 });
    }

    #[test]
    fn old_kernels_give_pid_only_and_say_what_is_absent() {
        let mv = mark_victim_layout(&parse_format(FORMAT_PID_ONLY).unwrap()).unwrap();
        assert_eq!(mv.layout.pid, TpField { offset: 8, size: 4 });
        assert_eq!(mv.layout.present_bits(), 0);
        assert_eq!(
            mv.absent,
            ["comm", "total_vm", "anon_rss", "file_rss", "shmem_rss", "uid", "pgtables", "oom_score_adj"]
        );
    }

    #[test]
    fn unreadable_sizes_are_absent_not_misread() {
        let text = "\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n\
                    \tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;\n\
                    \tfield:u8 total_vm[3];\toffset:28;\tsize:3;\tsigned:0;\n";
        let mv = mark_victim_layout(&parse_format(text).unwrap()).unwrap();
        assert!(!mv.layout.comm.is_present());
        assert!(!mv.layout.total_vm.is_present());
        assert_eq!(mv.layout.pid.offset, 8);
    }

    #[test]
    fn malformed_lines_are_errors_with_the_line_number() {
        let text = "format:\n\tfield:int pid;\toffset:eight;\tsize:4;\tsigned:1;\n";
        assert_eq!(parse_format(text), Err(FormatError::Line { line: 2, what: "offset is not a number" }));
        let no_size = "\tfield:int pid;\toffset:8;\tsigned:1;\n";
        assert_eq!(parse_format(no_size), Err(FormatError::Line { line: 1, what: "no size" }));
        assert_eq!(mark_victim_layout(&[]), Err(FormatError::NoPid));
    }

    #[test]
    fn a_missing_tracepoint_names_the_kernel_requirement() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_mark_victim(dir.path()).unwrap_err();
        assert!(matches!(err, TracefsError::TracepointAbsent { .. }), "{err}");
        assert!(err.to_string().contains("CONFIG_TRACEPOINTS"), "{err}");
    }
}
