//! What the man pages say beyond the options clap knows: examples, exit
//! status, environment, files, see also, and each command's JSON schema.
//!
//! The schemas are data, one list of key paths per command: the man page
//! prints them, and tests check that the JSON each command prints has
//! exactly these keys (`a[]` is each element of array `a`; `m.*` is an
//! object whose keys are the kernel's, such as memory.stat's).

use std::collections::BTreeSet;

use serde_json::Value;

/// A key of a command's JSON, and what it holds.
pub type Key = (&'static str, &'static str);

/// A row of `list --json`, `list --json-lines` and `watch --json-lines`.
pub const LIST_ROW: &[Key] = &[
    ("id", "the record's id (what `show ID` takes)"),
    ("time", "when the kernel killed the victim, RFC 3339 UTC with milliseconds"),
    (
        "kind",
        "`kill`, or `exiting` for a task the kernel only marked as victim because it was already exiting",
    ),
    ("pid", "the victim's pid"),
    ("comm", "the victim's command name (the kernel's comm)"),
    ("cgroup", "the victim's memory cgroup path"),
    ("anon_rss_kb", "the victim's anonymous RSS at the kill, kB"),
    ("memory_limit_bytes", "the limit that was hit, bytes (null for none or unknown)"),
    ("sources", "where the record's facts came from: ebpf, kmsg, journal, import, cgroup"),
    ("container_id", "the container's id"),
    ("pod_uid", "the Kubernetes pod's uid"),
    ("pod_namespace", "the pod's namespace"),
    ("pod_name", "the pod's name"),
    ("container_name", "the container's name"),
    ("unit", "the innermost systemd service or scope"),
    ("runtime", "the container runtime: containerd, cri-o, docker, podman, lxc"),
    ("image", "the container's image"),
];

/// What a `list --incidents` row adds to [`LIST_ROW`] (whose keys are the
/// incident's first victim's).
pub const INCIDENT_ROW: &[Key] = &[
    ("incident_id", "the incident's id: its first victim's record id"),
    ("victims", "how many tasks the OOM killed"),
    ("victim_ids", "the victims' record ids"),
    ("group_cgroup", "the memory.oom.group cgroup of a group kill; null for a kill of one task"),
];

/// One memory cgroup's page counters at the kill.
const LEVEL: &[Key] = &[
    ("path", "the cgroup's path"),
    ("memory_usage_bytes", "memory charged to it"),
    ("memory_limit_bytes", "its hard limit (null: max)"),
    ("memory_low_bytes", "memory.low"),
    ("memory_high_bytes", "memory.high (v1: none; null: max)"),
    ("memory_min_bytes", "memory.min"),
    ("swap_usage_bytes", "v2: swap charged; v1: memory+swap (memsw)"),
    ("swap_limit_bytes", "v2: memory.swap.max; v1: the memsw limit (null: max)"),
    ("memsw_usage_bytes", "v1: memory+swap charged (null on v2)"),
    ("memsw_limit_bytes", "v1: the memory+swap limit (null on v2, or max)"),
];

/// What a memory cgroup's own figures at the kill add to [`LEVEL`].
const AT_KILL: &[Key] = &[
    ("source", "`ebpf`: read by the raw tracepoint program at the kill"),
    ("memory_stat.*", "memory.stat items by cgroup v2's keys, bytes"),
    ("events.*", "memory.events counters"),
    ("oom_group", "memory.oom.group"),
    ("swappiness", "memory.swappiness"),
    ("kmem_usage_bytes", "v1's kernel memory counter"),
    ("kmem_limit_bytes", "v1's kernel memory limit (null: max)"),
    ("lru_bytes.*", "bytes on each LRU list, exact at the kill"),
    ("working_set_bytes", "usage − inactive_file"),
    ("memory_stat_pending_updates", "updates the kernel had not yet flushed into memory_stat"),
    ("memory_stat_fresh", "whether memory_stat was as fresh as the kernel's own readers see it"),
    ("memory_stat_lag_bound_pages", "at most how many pages memory_stat may lack"),
    ("online_cpus", "CPUs online at the kill (each batches its updates to memory_stat)"),
];

/// `show --json`: one record, everything it holds.
const SHOW: &[Key] = &[
    ("id", "the record's id"),
    ("kind", "`kill` or `exiting`"),
    ("time", "when the kernel killed the victim, RFC 3339 UTC with milliseconds"),
    ("time_ns", "the same, Unix ns"),
    ("boot_id", "the boot the kill happened in (/proc/sys/kernel/random/boot_id)"),
    ("boot_ns", "CLOCK_BOOTTIME at the kill (eBPF)"),
    ("mono_ns", "CLOCK_MONOTONIC at the kill (eBPF)"),
    ("kmsg_usec", "the kernel log's stamp of the kill line, µs since boot"),
    ("recorded_time", "when the record was stored"),
    ("sources", "where the facts came from: ebpf, kmsg, journal, import, cgroup"),
    ("diagnosis.rule", "the rule that named the cause: memcg_limit, global_oom, group_kill, oom_score_adj, shmem, exiting, unknown"),
    ("diagnosis.text", "the one-line cause `show` prints first"),
    ("incident.id", "the OOM's id: its first victim's record id"),
    ("incident.group_cgroup", "the memory.oom.group cgroup of a group kill, else null"),
    ("incident.victims", "how many tasks the OOM killed"),
    ("incident.members[].id", "each victim's record id"),
    ("incident.members[].pid", "each victim's pid"),
    ("incident.members[].comm", "each victim's command name"),
    ("victim.pid", "the victim's pid"),
    ("victim.tgid", "its thread group id"),
    ("victim.comm", "its command name"),
    ("victim.uid", "its uid"),
    ("victim.total_vm_kb", "its virtual memory, kB"),
    ("victim.anon_rss_kb", "anonymous RSS at the kill, kB"),
    ("victim.file_rss_kb", "file RSS at the kill, kB"),
    ("victim.shmem_rss_kb", "shmem RSS at the kill, kB"),
    ("victim.pgtables_kb", "its page tables, kB"),
    ("victim.oom_score_adj", "its oom_score_adj"),
    ("victim.age_ms", "time from its fork to the kill"),
    ("victim.min_flt", "its minor faults"),
    ("victim.maj_flt", "its major faults"),
    ("victim.swapents_kb", "its swapped-out memory, kB"),
    ("victim.rss_pages.file", "mm rss_stat, pages"),
    ("victim.rss_pages.anon", "mm rss_stat, pages"),
    ("victim.rss_pages.swapents", "mm rss_stat, pages"),
    ("victim.rss_pages.shmem", "mm rss_stat, pages"),
    ("victim.pgtables_bytes", "its page tables, bytes"),
    ("victim.nodename", "its UTS hostname (a container's own)"),
    ("victim.badness.points", "the kernel's oom_badness() recomputed (null for oom_score_adj -1000)"),
    ("victim.badness.rss_pages", "RSS in the badness"),
    ("victim.badness.swap_pages", "swap in the badness"),
    ("victim.badness.pgtables_pages", "page tables in the badness"),
    ("victim.badness.adj_pages", "oom_score_adj × totalpages / 1000"),
    ("victim.badness.totalpages", "the memory the OOM was about, pages"),
    ("victim.cmdline", "its command line, read at the kill"),
    ("victim.exe", "its executable"),
    ("trigger.pid", "the task that was allocating when the victim was chosen"),
    ("trigger.tgid", "its thread group id"),
    ("trigger.comm", "its command name"),
    ("trigger.uid", "its uid"),
    ("trigger.gfp_mask", "the allocation's gfp_mask, as the kernel printed it"),
    ("trigger.order", "the allocation's order"),
    ("oom.reason", "the kill line's reason: `Memory cgroup out of memory`, `Out of memory`, ..."),
    ("oom.constraint", "the kernel's constraint: CONSTRAINT_MEMCG, CONSTRAINT_NONE, ..."),
    ("oom.scope", "which OOM: memcg, global, cpuset or mempolicy (the constraint, else the reason, else the counters at the kill); what stats and --memcg/--global use"),
    ("oom.global", "the report's global_oom"),
    ("oom.oom_cgroup", "the cgroup whose limit was hit"),
    ("oom.oom_cgroup_inferred", "true when the log named none and oom_cgroup is the lowest cgroup at its limit at the kill"),
    ("oom.task_cgroup", "the victim's memory cgroup, as the report names it"),
    ("oom.group_cgroup", "the memory.oom.group cgroup of a group kill"),
    ("oom.memory_usage_kb", "the report's memory usage line, kB"),
    ("oom.memory_limit_kb", "its limit, kB (null: max)"),
    ("oom.failcnt", "its failcnt"),
    ("oom.swap_usage_kb", "the report's swap line (v2), kB"),
    ("oom.swap_limit_kb", "its limit, kB (null: max)"),
    ("oom.memsw_usage_kb", "the report's memory+swap line (v1), kB"),
    ("oom.memsw_limit_kb", "its limit, kB (null: max)"),
    ("oom.memory_stat.*", "the report's memory.stat, numbers as numbers (v1 keys in bytes)"),
    ("oom.tasks[].*", "the report's task table, each row by its columns, numbers as numbers"),
    ("oom.score", "the badness score pre-5.1 kernels print"),
    ("oom.reaped.anon_rss_kb", "left after the oom_reaper, kB"),
    ("oom.reaped.file_rss_kb", "left after the oom_reaper, kB"),
    ("oom.reaped.shmem_rss_kb", "left after the oom_reaper, kB"),
    ("cgroup.path", "the victim's memory cgroup"),
    ("cgroup.id", "its id (the cgroup directory's inode)"),
    ("cgroup.version", "1 or 2: the memory controller's hierarchy"),
    ("cgroup.memory_limit_bytes", "its hard limit (v1 limit_in_bytes, v2 memory.max; null: none)"),
    ("cgroup.snapshot_delay_us", "how long after the kill its files were read"),
    ("cgroup.memory_usage_bytes", "from its files, after the kill"),
    ("cgroup.memory_high_bytes", "from its files (v1: the soft limit; null: max)"),
    ("cgroup.memory_low_bytes", "from its files"),
    ("cgroup.memory_peak_bytes", "from its files"),
    ("cgroup.swap_usage_bytes", "from its files (v2)"),
    ("cgroup.swap_limit_bytes", "from its files (v2; null: max)"),
    ("cgroup.memsw_usage_bytes", "from its files (v1: memory+swap)"),
    ("cgroup.memsw_limit_bytes", "from its files (v1: memory+swap; null: max)"),
    ("cgroup.failcnt", "from its files (v1)"),
    ("cgroup.events.*", "memory.events (v1: memory.oom_control)"),
    ("cgroup.events_local.*", "memory.events.local"),
    ("cgroup.memory_stat.*", "memory.stat, after the kill"),
    ("cgroup.working_set_bytes", "usage − inactive_file, after the kill"),
    ("cgroup.processes[].pid", "a process left in the cgroup"),
    ("cgroup.processes[].comm", "its command name"),
    ("cgroup.processes[].cmdline", "its command line"),
    ("cgroup.processes[].rss_kb", "its RSS, kB"),
    ("cgroup.snapshot_problems", "what could not be read, and why"),
    ("container.runtime", "containerd, cri-o, docker, podman, lxc"),
    ("container.id", "the container's id"),
    ("container.pod_uid", "the pod's uid"),
    ("container.pod_namespace", "the pod's namespace"),
    ("container.pod_name", "the pod's name"),
    ("container.container_name", "the container's name"),
    ("container.qos", "the pod's QoS class"),
    ("container.unit", "the innermost systemd service or scope"),
    ("container.slice", "the innermost systemd slice"),
    ("container.image", "the container's image"),
    ("container.runtime_namespace", "the runtime's own namespace (containerd's default, k8s.io, moby)"),
    ("container.notes", "why a name is unknown: the runtime's file that was missing or damaged"),
    ("kernel_report.lines", "this kill's lines of the kernel's report, in order"),
    ("notes", "why a figure is null or a comm was cut (import), as sentences; empty for most records"),
];

/// `show --json`'s keys: [`SHOW`], and the memory cgroups' counters at the
/// kill under `cgroup.at_kill`, `cgroup.oom_cgroup_at_kill` (the cgroup
/// whose limit was hit, when it is an ancestor) and `cgroup.ancestors[]`.
pub fn show_keys() -> Vec<(String, &'static str)> {
    let mut keys: Vec<(String, &'static str)> = SHOW.iter().map(|(k, a)| ((*k).to_owned(), *a)).collect();
    for prefix in ["cgroup.at_kill", "cgroup.oom_cgroup_at_kill"] {
        keys.extend(LEVEL.iter().chain(AT_KILL).map(|(k, a)| (format!("{prefix}.{k}"), *a)));
    }
    keys.extend(LEVEL.iter().map(|(k, a)| (format!("cgroup.ancestors[].{k}"), *a)));
    keys
}

/// `stats --json`.
pub const STATS: &[Key] = &[
    ("since", "the range's start, or null"),
    ("until", "the range's end, or null"),
    ("total", "kills counted"),
    ("memcg", "of them, a memory cgroup's OOM"),
    ("global", "of them, the machine's OOM"),
    ("unknown_constraint", "of them, records that cannot say which"),
    ("other_constraint", "of them, a cpuset's or memory policy's OOM"),
    ("containers[].container_id", "a container"),
    ("containers[].container_name", "its name"),
    ("containers[].kills", "its kills"),
    ("pods[].pod_name", "a pod"),
    ("pods[].pod_namespace", "its namespace"),
    ("pods[].kills", "its kills"),
    ("units[].unit", "a systemd unit"),
    ("units[].kills", "its kills"),
    ("comms[].comm", "a command name"),
    ("comms[].kills", "its kills"),
];

/// `status --json`.
pub const STATUS: &[Key] = &[
    ("running", "whether the daemon runs (its run's pid is a live oomrecorder on this boot)"),
    ("pid", "its pid, while it runs"),
    ("uptime_s", "how long it has run"),
    ("attach_point", "raw_tracepoint or tracepoint"),
    ("version", "its version"),
    ("records_total", "kills in the database, counted now"),
    ("records_this_run", "kills its run stored"),
    ("counters_as_of", "when the daemon last wrote its counters (within 5 s of a change, and at stop)"),
    ("counters_age_s", "how old they are"),
    ("database_bytes", "the database and its WAL"),
    ("pipeline.victims_seen", "victims the eBPF program saw"),
    ("pipeline.events_received", "events that reached the daemon"),
    ("pipeline.kmsg_records", "kernel log records read"),
    ("pipeline.writes_pending", "kills held in memory while the store fails"),
    ("pipeline.stored_late", "kills stored after a failed write"),
    ("losses.ringbuf_full", "victims lost to a full ring buffer"),
    ("losses.decode", "events that could not be decoded"),
    ("losses.kmsg_overrun", "kernel log records overwritten before they were read"),
    ("losses.without_kernel_report", "kills stored without their kernel report"),
    ("losses.snapshots_missed", "cgroup snapshots missed"),
    ("losses.write_failures", "writes given up on"),
    ("losses.queue_full", "kills given up because too many were pending"),
    ("write_error", "why writes fail now, {message, since}; null while they succeed"),
    ("set_aside", "a damaged database set aside, {path, damage, time_ns}; null when none was"),
    ("audit.kernel_oom_kills", "/proc/vmstat oom_kill since the daemon started"),
    (
        "audit.counted_twice",
        "of those, victims the kernel counted twice (a memory.oom.group kill's chosen one)",
    ),
    ("pipeline.kernel_counted_twice", "kernel log lines that repeat a group kill's chosen victim"),
    ("audit.recorded_kills", "records of kind kill stored since then on this boot"),
    ("audit.missing", "the difference"),
    ("audit.matches", "whether they match"),
    ("audit.summary", "the audit in words"),
];

/// `doctor --json`.
pub const DOCTOR: &[Key] = &[
    ("can_run", "whether the recorder can run here"),
    ("kernel", "the kernel's release"),
    ("btf.available", "whether /sys/kernel/btf/vmlinux is there"),
    ("btf.detail", "what it is, when available"),
    ("btf.reason", "why not, when not"),
    ("attach.point", "the attach point chosen"),
    ("attach.reason", "why"),
    ("fields[].name", "a figure read through BTF"),
    ("fields[].available", "whether this kernel has it"),
    ("fields[].detail", "its offset, when available"),
    ("fields[].reason", "why not, when not"),
    ("tracefs.available", "whether tracefs is mounted"),
    ("tracefs.detail", "where"),
    ("tracefs.reason", "why not"),
    ("memory_cgroup_version", "1 or 2"),
    ("cgroup_mounts", "the cgroup mounts"),
    ("capabilities.missing", "capabilities the daemon lacks"),
    ("capabilities.error", "why they could not be read"),
];

/// The key paths of a JSON value, in the schemas' notation: `a[].b` for
/// the keys of an array's objects, `a` for an array of values; the
/// children of a `*` key in `schema` are not walked.
pub fn key_paths(value: &Value, schema: &BTreeSet<String>) -> BTreeSet<String> {
    fn walk(value: &Value, path: &str, schema: &BTreeSet<String>, out: &mut BTreeSet<String>) {
        let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
        match value {
            Value::Object(_) if schema.contains(&join("*")) => {
                out.insert(join("*"));
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &join(k), schema, out);
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for item in items {
                    walk(item, &format!("{path}[]"), schema, out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", schema, &mut out);
    out
}

/// The written sections of one command's page (`name` is `oomrecorder` or
/// a subcommand): each a title and its paragraphs, `(term, text)`.
pub fn sections(name: &str) -> Vec<(&'static str, Vec<(String, String)>)> {
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items.iter().map(|(t, d)| ((*t).to_owned(), (*d).to_owned())).collect()
    };
    let keys = |items: &[Key]| pairs(items);
    let mut out = Vec::new();
    out.push(("EXAMPLES", pairs(examples(name))));
    let json = |what: &str, mut rows: Vec<(String, String)>| {
        let intro = format!(
            "{what} Keys are only ever added, never renamed or removed; numbers are numbers; a value the \
             recorder does not know is null, never 0, and so is a limit that is none (the kernel's max). \
             `a[].b` is key b of each element of array a; `m.*` an object of the kernel's own keys."
        );
        rows.insert(0, (String::new(), intro));
        ("JSON", rows)
    };
    match name {
        "list" => {
            let mut rows = keys(LIST_ROW);
            rows.extend(
                INCIDENT_ROW.iter().map(|(k, d)| ((*k).to_owned(), format!("{d} (--incidents only)"))),
            );
            out.push(json(
                "--json prints one array of rows, each written as it is read; --json-lines one row per line.",
                rows,
            ));
        }
        "watch" => out.push(json("--json-lines prints one row of list --json per new kill.", keys(LIST_ROW))),
        "show" => out.push(json(
            "--json prints one object: the record, its diagnosis and its incident.",
            show_keys().into_iter().map(|(k, d)| (k, d.to_owned())).collect(),
        )),
        "stats" => out.push(json("--json prints one object; each list is most kills first.", keys(STATS))),
        "status" => out.push(json("--json prints one object.", keys(STATUS))),
        "doctor" => out.push(json("--json prints one object.", keys(DOCTOR))),
        _ => {}
    }
    out.push(("EXIT STATUS", pairs(&exit_status(name))));
    out.push(("ENVIRONMENT", pairs(ENVIRONMENT)));
    out.push(("FILES", pairs(FILES)));
    let mut see_also: Vec<(String, String)> = Vec::new();
    let pages: Vec<String> = std::iter::once("oomrecorder".to_owned())
        .chain(PAGES.iter().map(|p| format!("oomrecorder-{p}")))
        .filter(|p| *p != page_name(name))
        .map(|p| format!("{p}(1)"))
        .collect();
    see_also.push((
        String::new(),
        format!(
            "{}, coredumpctl(1), dmesg(1), journalctl(1), systemd.resource-control(5), proc(5)",
            pages.join(", ")
        ),
    ));
    out.push(("SEE ALSO", see_also));
    out
}

/// Every subcommand with a page.
const PAGES: [&str; 9] = ["run", "list", "show", "watch", "stats", "status", "prune", "import", "doctor"];

fn page_name(name: &str) -> String {
    if name == "oomrecorder" {
        name.to_owned()
    } else {
        format!("oomrecorder-{name}")
    }
}

fn examples(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "run" => &[
            ("systemctl enable --now oomrecorder", "run it as the packaged, sandboxed service"),
            (
                "oomrecorder run --db /tmp/oom.db --max-records 1000",
                "in the foreground, into another database",
            ),
        ],
        "list" => &[
            ("oomrecorder list", "the newest 50 kills"),
            ("oomrecorder list --since 2h --pod web-1", "one pod's kills of the last two hours"),
            ("oomrecorder list --memcg --boot -1", "memory cgroup OOMs of the boot before this one"),
            ("oomrecorder list --incidents", "one line per OOM: a memory.oom.group kill's victims as one"),
            ("oomrecorder list --json --limit 0 | jq -r '.[].image'", "every kill, for a script"),
        ],
        "show" => &[
            ("oomrecorder show", "the newest kill in full"),
            ("oomrecorder show --comm java", "the newest kill of a java process"),
            ("oomrecorder show --container web", "the newest kill in container web"),
            ("oomrecorder show 42 --raw", "kill 42, with the kernel's report whole"),
            ("oomrecorder show --json | jq .cgroup.at_kill", "its memory cgroup's figures at the kill"),
        ],
        "watch" => &[
            ("oomrecorder watch", "each new kill as it is recorded, until Ctrl-C"),
            ("oomrecorder watch --namespace shop --json-lines", "a namespace's new kills, for a log shipper"),
        ],
        "stats" => &[
            ("oomrecorder stats --since 1w --top 5", "who got killed this week"),
            ("oomrecorder stats --json --namespace batch", "one namespace, for a script"),
        ],
        "status" => &[
            ("oomrecorder status", "is the daemon running, what did it lose, does the kernel's count match"),
            ("oomrecorder status --json | jq .losses", "the losses, for monitoring"),
            ("oomrecorder status || page-someone", "exit 0 only when all is well"),
        ],
        "prune" => &[
            ("oomrecorder prune --dry-run --max-age 30d", "what a 30-day retention would delete"),
            ("oomrecorder prune --max-records 10000", "keep the newest 10,000 kills"),
        ],
        "import" => &[
            ("dmesg | oomrecorder import -", "this boot's kills (merged with what the daemon recorded)"),
            ("oomrecorder import /var/log/kern.log*", "kills in syslog files"),
            ("oomrecorder import --journal-dir /mnt/old/var/log/journal", "another machine's journal"),
        ],
        "doctor" => &[
            ("oomrecorder doctor", "what this kernel gives the recorder"),
            ("oomrecorder doctor --json", "the same, for a script"),
        ],
        _ => &[
            ("oomrecorder list --since 1h", "the kills of the last hour"),
            ("oomrecorder show", "the newest kill: the diagnosis, who and what, then the evidence"),
            ("oomrecorder show --container web", "the newest kill in a container"),
            ("oomrecorder stats --since 1w", "who gets killed"),
            ("oomrecorder status", "is the recorder running and losing nothing"),
        ],
    }
}

fn exit_status(name: &str) -> Vec<(&'static str, &'static str)> {
    let one = match name {
        "show" => "no such record, or none the filters select",
        "status" => "the daemon is not running, lost something, or its count differs from the kernel's",
        _ => "no such record (show), or something to look at (status)",
    };
    let two = match name {
        "doctor" => "the recorder cannot run on this machine (doctor reports why)",
        _ => "a usage error, or a runtime error (a missing or damaged database, ...), on stderr",
    };
    vec![("0", "done (a closed pipe, as in `oomrecorder list | head`, is success)"), ("1", one), ("2", two)]
}

const ENVIRONMENT: &[(&str, &str)] = &[
    ("OOMRECORDER_DB", "the database, as --db (a flag wins over it; it wins over the configuration file)"),
    ("OOMRECORDER_CONFIG", "the configuration file, as --config"),
    ("RUST_LOG", "the log level (run logs at info by default, the other commands at warn)"),
    (
        "NOTIFY_SOCKET",
        "run sends READY=1 there once attached (systemd Type=notify); unset or empty: no one to tell",
    ),
    ("COLUMNS", "the table's width on a terminal that does not report its size"),
    ("TZ", "the time zone times are shown in (JSON is always UTC)"),
];

const FILES: &[(&str, &str)] = &[
    (
        "/etc/oomrecorder/oomrecorder.toml",
        "the configuration: db, max_age_days, max_records, metrics_listen, metrics_textfile, \
         metrics_comm_label, journal_entries, cmdline (full, redacted or none), group; each key is \
         explained in the shipped file",
    ),
    ("/var/lib/oomrecorder/oomrecorder.db", "the history (SQLite, with its -wal and -shm files)"),
    ("/dev/kmsg", "the kernel's log, read by run and by import (to know this boot's own dmesg)"),
    ("/sys/kernel/btf/vmlinux", "the kernel's BTF: which fields the raw tracepoint program reads"),
    ("/sys/fs/cgroup", "the victims' cgroup files, read right after each kill"),
    ("/proc/vmstat", "the kernel's own count of OOM kills (status's audit)"),
    ("/proc/sys/kernel/random/boot_id", "the running boot (--boot 0, import)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cli::{doctor, stats, status},
        model::{
            incident,
            json::{incident_summary, kill_summary},
            run::{Audit, Run},
            Kill,
        },
        store::{Count, Stats},
    };

    fn set(keys: &[Key]) -> BTreeSet<String> {
        keys.iter().map(|(k, _)| (*k).to_owned()).collect()
    }

    /// The documented keys and the printed ones, both ways.
    fn same(what: &str, documented: &BTreeSet<String>, printed: &BTreeSet<String>) {
        let undocumented: Vec<_> = printed.difference(documented).collect();
        let absent: Vec<_> = documented.difference(printed).collect();
        assert!(
            undocumented.is_empty() && absent.is_empty(),
            "{what}: undocumented {undocumented:?}, documented but absent {absent:?}"
        );
    }

    #[test]
    fn list_and_incident_rows_have_exactly_the_documented_keys() {
        let row = set(LIST_ROW);
        same("list", &row, &key_paths(&kill_summary(&Kill::default()), &row));
        let mut incident_row = row.clone();
        incident_row.extend(set(INCIDENT_ROW));
        let one = incident::of(&Kill::default(), Vec::new());
        same("list --incidents", &incident_row, &key_paths(&incident_summary(&one), &incident_row));
    }

    #[test]
    fn stats_status_and_doctor_have_exactly_the_documented_keys() {
        let count = |key: &str, label: Option<&str>| Count {
            key: key.into(),
            label: label.map(str::to_owned),
            kills: 1,
        };
        let counted = Stats {
            by_container: vec![count("c", Some("web"))],
            by_pod: vec![count("p", Some("ns"))],
            by_unit: vec![count("u", None)],
            by_comm: vec![count("x", None)],
            ..Stats::default()
        };
        let keys = set(STATS);
        same("stats", &keys, &key_paths(&stats::to_json(&counted, Some(1), None), &keys));

        let run =
            Run { pid: 1, boot_id: "b".into(), attach_point: "raw_tracepoint".into(), ..Run::default() };
        let live = status::Status {
            running: true,
            run: Some(run),
            uptime_s: Some(1),
            counters_age_s: Some(1),
            records_total: 1,
            database_bytes: 1,
            audit: Some(Audit::new(1, 2, 0, 1)),
            no_audit: None,
            set_aside: None,
        };
        let keys = set(STATUS);
        same("status", &keys, &key_paths(&status::to_json(&live), &keys));

        // One report where everything is there, one where nothing is: each
        // status has its `detail` or its `reason`.
        let report = |ok: bool| {
            let status = |what: &str| if ok { Ok(what.to_owned()) } else { Err(format!("no {what}")) };
            let mut plan = crate::kernel::plan(Err("no BTF".into()), None, 4096);
            for field in &mut plan.fields {
                field.status = status("offset");
            }
            doctor::Report {
                kernel: Some("6.18".into()),
                btf: status("btf"),
                plan,
                memcg: None,
                tracefs: status("tracefs"),
                cgroup_mounts: vec!["/sys/fs/cgroup (v2)".into()],
                missing_caps: if ok { Ok(vec!["CAP_BPF"]) } else { Err("cannot read".into()) },
            }
        };
        let keys = set(DOCTOR);
        let mut printed = key_paths(&report(true).to_json(), &keys);
        printed.extend(key_paths(&report(false).to_json(), &keys));
        same("doctor", &keys, &printed);
    }

    #[test]
    fn every_page_has_the_written_sections() {
        for name in std::iter::once("oomrecorder").chain(PAGES) {
            let titles: Vec<&str> = sections(name).iter().map(|(t, _)| *t).collect();
            for want in ["EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"] {
                assert!(titles.contains(&want), "{name} lacks {want}");
            }
            assert!(!examples(name).is_empty());
            if matches!(name, "list" | "show" | "watch" | "stats" | "status" | "doctor") {
                assert!(titles.contains(&"JSON"), "{name} documents its JSON");
            }
        }
    }
}
