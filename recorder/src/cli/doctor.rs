//! `oomrecorder doctor`: what the recorder can do on this machine, and why
//! not when it cannot. Changes nothing (it does not even mount tracefs).

use std::{fs, io::Write, path::Path};

use clap::Args;
use serde_json::{json, Value};

use super::{exit::Exit, format};
use crate::kernel::{self, caps, memcg, tracefs, AttachPoint, MemcgVersion, Plan};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON object for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Everything `doctor` found.
#[derive(Debug)]
pub struct Report {
    pub kernel: Option<String>,
    pub btf: Result<String, String>,
    pub plan: Plan,
    pub memcg: Option<MemcgVersion>,
    pub tracefs: Result<String, String>,
    pub cgroup_mounts: Vec<String>,
    pub missing_caps: Result<Vec<&'static str>, String>,
}

impl Report {
    /// The recorder can run: it has the capabilities and a hook to attach.
    pub fn can_run(&self) -> bool {
        let hook = self.plan.attach == AttachPoint::RawTracepoint || self.tracefs.is_ok();
        hook && self.missing_caps.as_ref().is_ok_and(Vec::is_empty)
    }

    pub fn gather() -> Report {
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned());
        let memcg = memcg::memory_hierarchy(Path::new(memcg::SYS_FS_CGROUP)).map(|h| h.version);
        let btf = kernel::read_btf(Path::new(kernel::VMLINUX_BTF));
        let plan = kernel::plan(btf.as_ref().map_err(|e| e.to_string()), memcg, kernel::page_size());
        let btf = btf.map(|_| format!("{} (parsed)", kernel::VMLINUX_BTF)).map_err(|e| e.to_string());
        let tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .map(Path::new)
            .find(|p| p.join("events").is_dir())
            .ok_or_else(|| "not mounted (`oomrecorder run` mounts it on /sys/kernel/tracing)".to_owned())
            .and_then(|root| match tracefs::read_mark_victim(root) {
                Ok(mv) if mv.absent.is_empty() => {
                    Ok(format!("{}: oom:mark_victim with every field", root.display()))
                }
                Ok(mv) => Ok(format!("{}: oom:mark_victim without {}", root.display(), mv.absent.join(", "))),
                Err(e) => Err(e.to_string()),
            });
        let cgroup_mounts = fs::read_to_string("/proc/self/mounts")
            .map(|text| {
                text.lines()
                    .filter(|l| matches!(l.split_whitespace().nth(2), Some("cgroup" | "cgroup2")))
                    .filter_map(|l| {
                        let mut f = l.split_whitespace();
                        let (_, at, fstype, options) = (f.next()?, f.next()?, f.next()?, f.next()?);
                        Some(match fstype {
                            "cgroup" => {
                                let controllers: Vec<&str> = options
                                    .split(',')
                                    .filter(|o| {
                                        !matches!(
                                            *o,
                                            "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime"
                                        )
                                    })
                                    .collect();
                                format!("{at} (v1: {})", controllers.join(","))
                            }
                            _ => format!("{at} (v2)"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing_caps =
            caps::read_cap_eff(Path::new("/proc")).map(caps::missing_for_daemon).map_err(|e| e.to_string());
        Report { kernel, btf, plan, memcg, tracefs, cgroup_mounts, missing_caps }
    }

    pub fn to_json(&self) -> Value {
        let status = |r: &Result<String, String>| match r {
            Ok(detail) => json!({ "available": true, "detail": detail }),
            Err(why) => json!({ "available": false, "reason": why }),
        };
        json!({
            "can_run": self.can_run(),
            "kernel": self.kernel,
            "btf": status(&self.btf),
            "attach": { "point": self.plan.attach.as_str(), "reason": self.plan.attach_reason },
            "fields": self.plan.fields.iter().map(|f| {
                let mut v = status(&f.status);
                v["name"] = json!(f.name);
                v
            }).collect::<Vec<_>>(),
            "tracefs": status(&self.tracefs),
            "memory_cgroup_version": self.memcg.map(MemcgVersion::number),
            "cgroup_mounts": self.cgroup_mounts,
            "capabilities": match &self.missing_caps {
                Ok(missing) => json!({ "missing": missing }),
                Err(e) => json!({ "error": e }),
            },
        })
    }

    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let line = |r: &Result<String, String>| match r {
            Ok(detail) => format!("yes: {detail}"),
            Err(why) => format!("NO: {why}"),
        };
        writeln!(out, "kernel:       {}", self.kernel.as_deref().unwrap_or("unknown"))?;
        writeln!(out, "BTF:          {}", line(&self.btf))?;
        writeln!(out, "attach point: {} ({})", self.plan.attach.as_str(), self.plan.attach_reason)?;
        writeln!(out, "tracefs:      {}", line(&self.tracefs))?;
        let memcg = self.memcg.map_or("none found".to_owned(), |v| format!("cgroup v{}", v.number()));
        writeln!(out, "memory cgroup: {memcg}")?;
        for mount in &self.cgroup_mounts {
            writeln!(out, "  mount {mount}")?;
        }
        match &self.missing_caps {
            Ok(missing) if missing.is_empty() => writeln!(out, "capabilities: enough to run")?,
            Ok(missing) => writeln!(out, "capabilities: missing {}", missing.join(", "))?,
            Err(e) => writeln!(out, "capabilities: cannot read ({e})")?,
        }
        writeln!(out, "fields read at the kill through BTF:")?;
        let raw = self.plan.attach == AttachPoint::RawTracepoint;
        for f in &self.plan.fields {
            match &f.status {
                Ok(detail) if raw => writeln!(out, "  {:<36} yes  {detail}", f.name)?,
                Ok(_) => writeln!(out, "  {:<36} no   the raw tracepoint is not used", f.name)?,
                Err(why) => writeln!(out, "  {:<36} no   {why}", f.name)?,
            }
        }
        let verdict = if self.can_run() { "the recorder can run" } else { "the recorder cannot run" };
        writeln!(out, "{verdict}")
    }
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<Exit> {
    let report = Report::gather();
    let exit = if report.can_run() { Exit::Ok } else { Exit::Error };
    format::to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
            writeln!(out)
        } else {
            report.write_text(out)
        }
    })?;
    Ok(exit)
}
