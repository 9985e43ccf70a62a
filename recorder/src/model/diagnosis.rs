//! One sentence naming the cause of a kill, the way a senior SRE would say
//! it, from the record's own figures. The rules are tried in order; the
//! first that applies speaks. Each rule has a table-driven test from real
//! records (tests/fixtures, imported through the same parser the daemon uses).
//!
//! Figures come from the best source the record has: the memcg's memory.stat
//! as the kernel printed it (v2 keys in bytes; v1 `total_*` keys in bytes),
//! else the cgroup snapshot's memory.stat, else the victim's own RSS.

use super::{
    figures::human_bytes,
    json::{badness_of, oom_cgroup, oom_level},
    scope::{self, OomScope},
    Kill, Kind,
};

/// What the record alone cannot say: how many other victims shared a
/// memory.oom.group kill (the store counts them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub group_others: Option<usize>,
}

/// The rule that spoke, for tests and for JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Exiting,
    GroupKill,
    ScoreAdj,
    GlobalOom,
    Shmem,
    MemcgLimit,
    Unknown,
}

impl Rule {
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::Exiting => "exiting",
            Rule::GroupKill => "group_kill",
            Rule::ScoreAdj => "oom_score_adj",
            Rule::GlobalOom => "global_oom",
            Rule::Shmem => "shmem",
            Rule::MemcgLimit => "memcg_limit",
            Rule::Unknown => "unknown",
        }
    }
}

/// A memory.stat value in bytes, from the kernel's report or the snapshot.
fn stat(kill: &Kill, keys: &[&str]) -> Option<u64> {
    let from_report = kill.oom.memory_stat.as_ref().and_then(|pairs| {
        keys.iter().find_map(|key| pairs.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok()))
    });
    from_report.or_else(|| {
        let pairs = kill.snapshot.as_ref()?.memory_stat.as_ref()?;
        keys.iter().find_map(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
    })
}

/// The hard limit that was hit, in bytes.
fn limit_bytes(kill: &Kill) -> Option<u64> {
    // The report's usage line is the OOM memcg's; the counters read through
    // BTF name the level that hit its limit when the report was rate-limited.
    let from_counters = kill.kernel.as_ref().and_then(|k| {
        let level = k.inferred_oom_level()?;
        k.memcg.get(level).map(|l| l.memory_limit_bytes)
    });
    kill.oom
        .memory_limit_kb
        .map(|kb| kb * 1024)
        .or(from_counters)
        .or_else(|| kill.snapshot.as_ref().and_then(|s| s.memory_limit_bytes))
        .or(kill.memory_limit_bytes)
}

/// The limit that fired, and what the cgroup used at the kill.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// The cgroup whose limit was hit.
    pub cgroup: Option<String>,
    pub limit_bytes: Option<u64>,
    /// Its usage at the kill: the report's usage line, else the counters
    /// read at the kill (never the files read after it).
    pub usage_bytes: Option<u64>,
}

/// What `show` puts first about the memory: the limit hit and the usage.
pub fn fired(kill: &Kill) -> Fired {
    let at_level = oom_level(kill)
        .0
        .and_then(|level| kill.kernel.as_ref()?.memcg.get(level).map(|l| l.memory_usage_bytes));
    Fired {
        cgroup: oom_cgroup(kill),
        limit_bytes: limit_bytes(kill),
        usage_bytes: kill.oom.memory_usage_kb.map(|kb| kb.saturating_mul(1024)).or(at_level),
    }
}

/// Where, in the names people use: pod and container, else unit, else cgroup.
fn place(kill: &Kill) -> String {
    let c = kill.container.as_ref();
    match (c.and_then(|c| c.pod_name.as_deref()), c.and_then(|c| c.container_name.as_deref())) {
        (Some(pod), Some(container)) => return format!(" in pod {pod} (container {container})"),
        (Some(pod), None) => return format!(" in pod {pod}"),
        (None, Some(container)) => return format!(" in container {container}"),
        _ => {}
    }
    // A container without a name the node keeps: its id, as `docker ps`
    // shortens it, names it better than its scope unit.
    if let Some(id) = c.filter(|c| c.runtime.is_some()).and_then(|c| c.id.as_deref()) {
        return format!(" in container {}", id.chars().take(12).collect::<String>());
    }
    if let Some(unit) = c.and_then(|c| c.unit.as_deref()) {
        return format!(" in {unit}");
    }
    kill.oom
        .oom_cgroup
        .as_deref()
        .or(kill.cgroup.as_deref())
        .map(|cg| format!(" in cgroup {cg}"))
        .unwrap_or_default()
}

fn mib(bytes: u64) -> String {
    human_bytes(bytes)
}

/// The diagnosis of one record.
pub fn diagnose(kill: &Kill, context: &Context) -> (Rule, String) {
    let adj = kill.victim.figures.oom_score_adj;
    if kill.kind == Kind::Exiting {
        return (
            Rule::Exiting,
            "was already exiting when the kernel chose it: marked as OOM victim so its memory could be \
             reaped, not killed"
                .to_owned(),
        );
    }
    if let Some(group) = &kill.oom.group_cgroup {
        let others = context.group_others.map_or_else(String::new, |n| format!(" with {n} others"));
        return (Rule::GroupKill, format!("killed as part of memory.oom.group {group}{others}"));
    }
    // Which OOM it was, by the one classification every command shares
    // (without the rate-limited header, the kill line's reason still says).
    let scope = scope::classify(kill);
    let memcg_reason = scope == Some(OomScope::Memcg);
    let global = scope == Some(OomScope::Global);
    let rss = kill.victim.figures.rss_bytes();
    // A high oom_score_adj picked a task that was not the big one: its RSS
    // is a small share of what the OOM was about.
    if let (Some(adj), Some(rss)) = (adj, rss) {
        let scale = if global { None } else { limit_bytes(kill) };
        let small = scale.map_or(rss < 256 << 20, |limit| rss * 4 < limit);
        if adj >= 500 && small {
            return (
                Rule::ScoreAdj,
                format!("oom_score_adj {adj} made it the first choice although it used {}", mib(rss)),
            );
        }
    }
    if global {
        let badness = badness_of(kill)
            .and_then(|b| Some((b.points? * 1000).checked_div(b.totalpages as i64)?.clamp(0, 1000)));
        let chosen =
            badness.map_or_else(String::new, |score| format!(": chosen for badness {score} of 1000"));
        let adj = adj.map_or_else(String::new, |a| format!(", oom_score_adj {a}"));
        let rss = rss.map_or_else(String::new, |r| format!(", it used {}", mib(r)));
        return (Rule::GlobalOom, format!("host ran out of memory (global OOM){chosen}{adj}{rss}"));
    }
    let limit = limit_bytes(kill);
    let shmem =
        stat(kill, &["shmem", "total_shmem"]).or(kill.victim.figures.shmem_rss_kb.map(|kb| kb * 1024));
    if let (Some(limit), Some(shmem)) = (limit, shmem) {
        if limit > 0 && shmem * 2 > limit {
            return (
                Rule::Shmem,
                format!(
                    "page cache (tmpfs/shmem) filled the limit{}: shmem {} of {}",
                    place(kill),
                    mib(shmem),
                    mib(limit)
                ),
            );
        }
    }
    if let Some(limit) = limit.filter(|l| *l > 0) {
        let anon = stat(kill, &["anon", "total_rss"]).or(kill.victim.figures.anon_rss_kb.map(|kb| kb * 1024));
        let cache = stat(kill, &["file", "total_cache"]);
        let mut sentence = format!("hit its {} limit{}", mib(limit), place(kill));
        if let Some(anon) = anon {
            let share = anon * 100 / limit;
            sentence.push_str(&format!(": anon {} ({share}%)", mib(anon)));
            if share >= 80 {
                sentence.push_str(" — the processes' own heap");
            }
        }
        match cache {
            Some(0) => sentence.push_str("; no page cache left to reclaim"),
            Some(cache) => sentence.push_str(&format!("; page cache {} was reclaimable", mib(cache))),
            None => {}
        }
        match (kill.oom.swap_limit_kb, kill.oom.swap_usage_kb) {
            (Some(0), _) => sentence.push_str("; swap off"),
            (Some(limit), Some(usage)) => sentence.push_str(&format!(
                "; swap {} of {}",
                human_bytes(usage.saturating_mul(1024)),
                human_bytes(limit.saturating_mul(1024))
            )),
            _ => {}
        }
        return (Rule::MemcgLimit, sentence);
    }
    if memcg_reason {
        let used = rss.map_or_else(String::new, |r| format!(": it used {}", mib(r)));
        return (
            Rule::MemcgLimit,
            format!(
                "hit its memory cgroup's limit{}{used} (the kernel's report header was rate-limited)",
                place(kill)
            ),
        );
    }
    (Rule::Unknown, "killed by the kernel's OOM killer; the record holds too little to say why".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::import;

    /// Real records: a captured or era-shaped kernel log through the import
    /// path (the same parser as the daemon's).
    fn records(fixture: &str) -> Vec<Kill> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(fixture);
        let text = std::fs::read_to_string(path).unwrap();
        let text: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        import::read_kills(text.as_bytes()).unwrap().kills
    }

    fn by_pid(kills: &[Kill], pid: i32) -> Kill {
        kills.iter().find(|k| k.victim.pid == pid).unwrap_or_else(|| panic!("no pid {pid}")).clone()
    }

    #[test]
    fn each_rule_from_real_records() {
        let v2 = records("kmsg-oom-6.12-v2-group.txt");
        let single = v2.iter().find(|k| k.victim.comm.as_deref() == Some("oomt-single")).unwrap().clone();
        let member = v2.iter().find(|k| k.victim.comm.as_deref() == Some("oomt-sleeper")).unwrap().clone();
        let v1 = records("kmsg-oom-6.18-v1-memcg.txt");
        let shapes = records("kmsg-oom-6.19-shape.txt");
        let global = by_pid(&shapes, 1500);
        let mut adj_driven = by_pid(&shapes, 777);
        adj_driven.victim.figures.oom_score_adj = Some(1000);
        adj_driven.victim.figures.anon_rss_kb = Some(12 * 1024);
        let exiting = Kill { kind: Kind::Exiting, ..single.clone() };
        let mut shmem = single.clone();
        shmem.oom.memory_stat =
            Some(vec![("anon".into(), "1048576".into()), ("shmem".into(), "30000000".into())]);

        let table: [(&str, &Kill, Context, Rule, &[&str]); 7] = [
            (
                "6.12 v2 single",
                &single,
                Context::default(),
                Rule::MemcgLimit,
                &[
                    "hit its 32.0 MiB limit",
                    "anon 31.9 MiB (99%)",
                    "own heap",
                    "no page cache left",
                    "swap off",
                ],
            ),
            (
                "6.18 v1 memcg",
                &v1[0],
                Context::default(),
                Rule::MemcgLimit,
                &["hit its 64.0 MiB limit", "anon"],
            ),
            (
                "6.12 v2 group",
                &member,
                Context { group_others: Some(49) },
                Rule::GroupKill,
                &["memory.oom.group /group with 49 others"],
            ),
            (
                "6.19 global",
                &global,
                Context::default(),
                Rule::GlobalOom,
                &["host ran out of memory (global OOM)", "oom_score_adj 0"],
            ),
            (
                "adj 1000, 12 MiB",
                &adj_driven,
                Context::default(),
                Rule::ScoreAdj,
                &["oom_score_adj 1000 made it the first choice although it used 12."],
            ),
            ("exiting task", &exiting, Context::default(), Rule::Exiting, &["already exiting"]),
            ("tmpfs filled it", &shmem, Context::default(), Rule::Shmem, &["shmem 28.6 MiB of 32.0 MiB"]),
        ];
        for (name, kill, context, rule, phrases) in table {
            let (got, sentence) = diagnose(kill, &context);
            assert_eq!(got, rule, "{name}: {sentence}");
            for phrase in phrases {
                assert!(sentence.contains(phrase), "{name}: {sentence:?} lacks {phrase:?}");
            }
        }
    }

    #[test]
    fn a_rate_limited_kill_still_names_its_kind() {
        // 4.14 shape: two kills of a storm whose headers were rate-limited.
        let shapes = records("kmsg-oom-4.14-shape.txt");
        let lone =
            shapes.iter().find(|k| k.oom.constraint.is_none() && k.oom.memory_limit_kb.is_none()).unwrap();
        let (rule, sentence) = diagnose(lone, &Context::default());
        assert!(matches!(rule, Rule::MemcgLimit | Rule::GlobalOom), "{sentence}");
        assert!(sentence.contains("used") || sentence.contains("global"), "{sentence}");
    }

    #[test]
    fn a_bare_record_says_it_cannot_tell() {
        let (rule, _) = diagnose(&Kill::default(), &Context::default());
        assert_eq!(rule, Rule::Unknown);
    }
}
