//! `show`'s evidence, after the first block: the figures each source
//! gave, in full (victim, trigger, the report's OOM facts, the kernel state
//! read at the kill, the cgroup's files, the kernel's report).

use std::io::Write;

use super::text;
use crate::{
    cli::format,
    model::{identity::Identity, json, kernel_state::MemcgFigures, snapshot::Snapshot, KernelState, Kill},
};

/// Kernel report lines shown without `--raw`: the trigger, the usage lines
/// and the start of memory.stat; the task table and the rest on request.
const REPORT_LINES: usize = 12;

/// `report_with`: the record that keeps the report's header when this
/// kill's does not (a memory.oom.group kill's first victim).
pub(super) fn write(
    out: &mut dyn Write,
    kill: &Kill,
    raw: bool,
    report_with: Option<i64>,
) -> std::io::Result<()> {
    let v = &kill.victim;
    let t = &kill.trigger;
    let o = &kill.oom;
    let comm = text(v.comm.as_deref());
    writeln!(out)?;
    writeln!(out, "Victim (the task the kernel killed)")?;
    writeln!(out, "  PID:           {}", v.pid)?;
    writeln!(out, "  TGID:          {}", format::opt(v.tgid))?;
    writeln!(out, "  Command:       {comm}")?;
    writeln!(out, "  Command line:  {}", text(v.cmdline.as_deref()))?;
    writeln!(out, "  Executable:    {}", text(v.exe.as_deref()))?;
    writeln!(out, "  UID:           {}", format::opt(v.figures.uid))?;
    for (label, value) in [
        ("Total VM:", v.figures.total_vm_kb),
        ("Anon RSS:", v.figures.anon_rss_kb),
        ("File RSS:", v.figures.file_rss_kb),
        ("Shmem RSS:", v.figures.shmem_rss_kb),
        ("Page tables:", v.figures.pgtables_kb),
    ] {
        let exact = value.map(|kb| format!(" ({kb} kB)")).unwrap_or_default();
        writeln!(out, "  {label:<14} {}{exact}", format::kb(value))?;
    }
    writeln!(out, "  oom_score_adj: {}", format::opt(v.figures.oom_score_adj))?;
    writeln!(out)?;
    writeln!(out, "Trigger (the task allocating when the kernel chose the victim)")?;
    writeln!(out, "  PID:           {}", format::opt(t.pid))?;
    writeln!(out, "  TGID:          {}", format::opt(t.tgid))?;
    writeln!(out, "  Command:       {}", text(t.comm.as_deref()))?;
    writeln!(out, "  UID:           {}", format::opt(t.uid))?;
    writeln!(
        out,
        "  Allocation:    gfp_mask={}, order={}",
        t.gfp_mask.as_deref().unwrap_or("-"),
        format::opt(t.order)
    )?;
    writeln!(out)?;
    writeln!(out, "OOM")?;
    writeln!(out, "  Reason:        {}", text(o.reason.as_deref()))?;
    writeln!(out, "  Constraint:    {}", o.constraint.as_deref().unwrap_or("-"))?;
    writeln!(
        out,
        "  OOM cgroup:    {}",
        o.oom_cgroup.as_deref().unwrap_or(if o.global == Some(true) { "(global OOM)" } else { "-" })
    )?;
    writeln!(out, "  Task cgroup:   {}", o.task_cgroup.as_deref().or(kill.cgroup.as_deref()).unwrap_or("-"))?;
    if let Some(group) = &o.group_cgroup {
        writeln!(out, "  Group kill:    every task in {group} (memory.oom.group)")?;
    }
    let usage = |usage: Option<u64>, limit: Option<u64>| match (usage, limit) {
        (None, None) => "-".to_owned(),
        (u, l) => format!("{} of {}", format::kb(u), format::limit_kb(l)),
    };
    writeln!(
        out,
        "  Memory:        {} (failcnt {})",
        usage(o.memory_usage_kb, o.memory_limit_kb),
        format::opt(o.failcnt)
    )?;
    // cgroup v1 prints memory+swap where v2 prints swap.
    if o.memsw_usage_kb.is_some() || o.memsw_limit_kb.is_some() {
        writeln!(out, "  Memory+swap:   {}", usage(o.memsw_usage_kb, o.memsw_limit_kb))?;
    } else {
        writeln!(out, "  Swap:          {}", usage(o.swap_usage_kb, o.swap_limit_kb))?;
    }
    if let Some(r) = &o.reaped {
        writeln!(
            out,
            "  Reaped:        anon {}, file {}, shmem {} left after the oom_reaper",
            format::kb(Some(r.anon_rss_kb)),
            format::kb(Some(r.file_rss_kb)),
            format::kb(Some(r.shmem_rss_kb))
        )?;
    }
    if let Some(tasks) = &o.tasks {
        writeln!(out, "  Tasks in the cgroup at the kill: {}", tasks.len())?;
    }
    if let Some(k) = &kill.kernel {
        write_kernel_state(out, kill, k)?;
    }
    if let Some(c) = &kill.container {
        write_container(out, c)?;
    }
    if let Some(snap) = &kill.snapshot {
        write_snapshot(out, snap)?;
    }
    if !kill.kernel_report.is_empty() {
        writeln!(out)?;
        let total = kill.kernel_report.len();
        writeln!(out, "Kernel report ({total} lines)")?;
        // Without --raw: the report's own statements (mm/oom_kill.c
        // dump_header, mem_cgroup_print_oom_*), not the call trace, register
        // dump, memory.stat body or task table; the kill line last.
        let is_statement = |l: &str| {
            ["memory:", "swap:", "memory+swap:", "kmem:", "Memory cgroup", "oom-kill:", "Tasks ", "CPU:"]
                .iter()
                .any(|p| l.starts_with(p))
                || l.contains(" invoked oom-killer:")
                || l.contains("Killed process")
        };
        let lines: Vec<&String> = if raw {
            kill.kernel_report.iter().collect()
        } else {
            let mut picked: Vec<&String> =
                kill.kernel_report.iter().filter(|l| is_statement(l)).take(REPORT_LINES).collect();
            if let Some(last) = kill.kernel_report.last().filter(|l| !picked.contains(l)) {
                picked.push(last);
            }
            picked
        };
        for line in &lines {
            writeln!(out, "  {}", format::escape(line))?;
        }
        if lines.len() < total {
            writeln!(out, "  ({} more lines: --raw shows the report whole)", total - lines.len())?;
        }
    }
    // A group kill's header (memory.stat, the task table) is kept once,
    // with its first victim (model::from_report).
    let has_header = kill.kernel_report.iter().any(|l| l.contains(" invoked oom-killer:"));
    if let Some(id) = report_with.filter(|_| !has_header) {
        writeln!(out, "  (the OOM's report is kept once, with its first victim: oomrecorder show {id})")?;
    }
    Ok(())
}

/// Who the victim was: container, pod, unit.
fn write_container(out: &mut dyn Write, c: &Identity) -> std::io::Result<()> {
    let shown = [
        ("Runtime:", &c.runtime),
        ("Container:", &c.container_name),
        ("Container id:", &c.id),
        ("Image:", &c.image),
        ("Pod:", &c.pod_name),
        ("Namespace:", &c.pod_namespace),
        ("Pod uid:", &c.pod_uid),
        ("QoS class:", &c.qos),
        ("Unit:", &c.unit),
        ("Slice:", &c.slice),
    ];
    if shown.iter().all(|(_, v)| v.is_none()) {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Who (from the cgroup path and the node's files)")?;
    for (label, value) in shown {
        if let Some(value) = value {
            writeln!(out, "  {label:<14} {}", format::escape(value))?;
        }
    }
    Ok(())
}

/// The cgroup's files as read right after the kill.
fn write_snapshot(out: &mut dyn Write, s: &Snapshot) -> std::io::Result<()> {
    // The files' "no limit" was read as none (sources::cgroup::files).
    let limit = |b: Option<u64>| b.map_or_else(|| "max".to_owned(), format::bytes);
    writeln!(out)?;
    writeln!(
        out,
        "Cgroup files, read {} after the kill (the victim's pages may already be freed)",
        s.delay_us.map_or_else(|| "?".to_owned(), |us| format!("{us} µs"))
    )?;
    writeln!(out, "  Path:          {}", text(s.path.as_deref()))?;
    writeln!(
        out,
        "  Memory:        {} of {}",
        format::bytes_opt(s.memory_usage_bytes),
        limit(s.memory_limit_bytes)
    )?;
    if s.memsw_usage_bytes.is_some() {
        writeln!(
            out,
            "  Memory+swap:   {} of {}",
            format::bytes_opt(s.memsw_usage_bytes),
            limit(s.memsw_limit_bytes)
        )?;
    }
    writeln!(out, "  Working set:   {}", format::bytes_opt(s.working_set_bytes))?;
    writeln!(out, "  Peak:          {}", format::bytes_opt(s.memory_peak_bytes))?;
    if let Some(events) = &s.events {
        let line: Vec<String> = events.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "  Events:        {}", line.join(", "))?;
    }
    if !s.processes.is_empty() {
        writeln!(out, "  Processes left in the cgroup:")?;
        for p in &s.processes {
            writeln!(
                out,
                "    {:>7}  {:<16} {:>10}  {}",
                p.pid,
                text(p.comm.as_deref()),
                format::kb(p.rss_kb),
                p.cmdline.as_deref().map(format::escape).unwrap_or_default()
            )?;
        }
    }
    for problem in &s.problems {
        writeln!(out, "  Not read:      {problem}")?;
    }
    Ok(())
}

/// What the raw tracepoint program read from the kernel at the kill.
fn write_kernel_state(out: &mut dyn Write, kill: &Kill, k: &KernelState) -> std::io::Result<()> {
    let bytes = |b: Option<u64>| b.map_or_else(|| "-".to_owned(), format::bytes);
    let limit = |b: Option<u64>| match b {
        Some(b) if k.is_unlimited(b) => "max".to_owned(),
        other => bytes(other),
    };
    // v1 charges swap to memsw, memory+swap: its counter is labelled so.
    let swap = if k.cgroup_version == Some(1) { "memory+swap" } else { "swap" };
    writeln!(out)?;
    writeln!(out, "Kernel state at the kill (read through BTF)")?;
    writeln!(out, "  Age:           {}", k.age_ms.map_or("-".to_owned(), |ms| format!("{ms} ms")))?;
    writeln!(out, "  Faults:        minor {}, major {}", format::opt(k.min_flt), format::opt(k.maj_flt))?;
    if let Some(r) = k.rss_pages {
        writeln!(
            out,
            "  rss_stat:      file {}, anon {}, swapents {}, shmem {} pages",
            r.file, r.anon, r.swapents, r.shmem
        )?;
    }
    writeln!(out, "  Page tables:   {}", bytes(k.pgtables_bytes))?;
    writeln!(out, "  Hostname:      {}", text(k.nodename.as_deref()))?;
    let version = k.cgroup_version.map_or(String::new(), |v| format!(" (v{v})"));
    writeln!(
        out,
        "  Cgroup:        {}{version}, id {}",
        text(k.cgroup_path.as_deref()),
        format::opt(k.cgroup_id)
    )?;
    let (level, inferred) = json::oom_level(kill);
    for (i, l) in k.memcg.iter().enumerate() {
        let mark = match (level == Some(i), inferred) {
            (true, Some(true)) => "  <- OOM cgroup (inferred)",
            (true, _) => "  <- OOM cgroup",
            _ => "",
        };
        writeln!(
            out,
            "    {}: {} of {}, {swap} {} of {}{mark}",
            text(l.path.as_deref()),
            format::bytes(l.memory_usage_bytes),
            limit(Some(l.memory_limit_bytes)),
            bytes(l.swap_usage_bytes),
            limit(l.swap_limit_bytes),
        )?;
    }
    for d in &k.details {
        write_memcg_figures(out, k, d)?;
    }
    if let Some(b) = json::badness_of(kill) {
        writeln!(
            out,
            "  Badness:       {} = rss {} + swap {} + page tables {} + adj {} (totalpages {})",
            format::opt(b.points),
            b.rss_pages,
            b.swap_pages,
            b.pgtables_pages,
            b.adj_pages,
            b.totalpages
        )?;
    }
    Ok(())
}

/// One memory cgroup's own figures at the kill: the exact LRU sizes, what
/// memory.stat held (and whether the kernel had flushed it), its events.
fn write_memcg_figures(out: &mut dyn Write, k: &KernelState, d: &MemcgFigures) -> std::io::Result<()> {
    let path = text(k.memcg.get(d.level).and_then(|l| l.path.as_deref()));
    writeln!(out, "  At the kill, {path}:")?;
    if let Some(lru) = &d.lru_bytes {
        let line: Vec<String> = lru.iter().map(|(key, v)| format!("{key} {}", format::bytes(*v))).collect();
        writeln!(out, "    LRU (exact):   {}", line.join(", "))?;
    }
    if let Some(stat) = &d.memory_stat {
        const SHOWN: [&str; 10] = [
            "anon",
            "file",
            "shmem",
            "kernel",
            "kernel_stack",
            "pagetables",
            "sock",
            "percpu",
            "slab_unreclaimable",
            "swapcached",
        ];
        let line: Vec<String> = SHOWN
            .iter()
            .filter_map(|key| stat.iter().find(|(k, _)| k == key))
            .map(|(key, v)| format!("{key} {}", format::bytes(*v)))
            .collect();
        let freshness = match (d.stat_fresh(k.online_cpus), d.stat_lag_bound_pages(k.online_cpus)) {
            (Some(true), Some(bound)) => format!("flushed, lags at most {bound} pages"),
            (Some(false), _) => "not flushed since the kernel's last periodic flush (up to 2 s)".to_owned(),
            _ => "freshness unknown on this kernel".to_owned(),
        };
        writeln!(out, "    memory.stat:   {} ({freshness})", line.join(", "))?;
    }
    if let Some(events) = &d.events {
        let line: Vec<String> = events.iter().map(|(key, v)| format!("{key} {v}")).collect();
        writeln!(out, "    events:        {}", line.join(", "))?;
    }
    let mut settings = Vec::new();
    if let Some(group) = d.oom_group {
        settings.push(format!("memory.oom.group {}", u8::from(group)));
    }
    if let Some(swappiness) = d.swappiness {
        settings.push(format!("swappiness {swappiness}"));
    }
    if !settings.is_empty() {
        writeln!(out, "    settings:      {}", settings.join(", "))?;
    }
    Ok(())
}
