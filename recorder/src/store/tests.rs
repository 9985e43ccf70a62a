//! The store's own rules: schema, round trips, state, prune.

use std::path::Path;

use rusqlite::Connection;

use super::*;
use crate::model::{Figures, Kill, Kind, Source, Trigger, Victim};

pub(crate) fn sample_kill(pid: i32, boot_ns: u64) -> Kill {
    Kill {
        time_ns: Some(1_764_000_000_000_000_000 + boot_ns as i64),
        boot_id: Some("0f0e0d0c-0b0a-0908-0706-050403020100".into()),
        boot_ns: Some(boot_ns),
        mono_ns: Some(boot_ns.saturating_sub(5)),
        recorded_ns: 1_764_000_000_500_000_000,
        sources: vec![Source::Ebpf],
        victim: Victim {
            pid,
            tgid: None,
            comm: Some("hog (x)".into()),
            figures: Figures {
                uid: Some(0),
                total_vm_kb: Some(104_000),
                anon_rss_kb: Some(98_000),
                file_rss_kb: Some(1_200),
                shmem_rss_kb: Some(0),
                pgtables_kb: Some(240),
                oom_score_adj: Some(-17),
            },
            cmdline: None,
            exe: None,
        },
        trigger: Trigger {
            pid: Some(pid),
            tgid: Some(pid),
            comm: Some("hog (x)".into()),
            ..Trigger::default()
        },
        ..Kill::default()
    }
}

#[test]
fn the_kmsg_cursor_only_moves_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    assert_eq!(store.kmsg_cursor("b").unwrap(), None);
    store.set_kmsg_cursor("b", 10).unwrap();
    store.set_kmsg_cursor("b", 7).unwrap();
    assert_eq!(store.kmsg_cursor("b").unwrap(), Some(10));
    assert_eq!(store.kmsg_cursor("other").unwrap(), None);
}

#[test]
fn a_version_1_database_upgrades_with_its_kills() {
    // Written by the walking skeleton's daemon: 5 real kills on 6.18.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/db/schema-v1-5-kills.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy(fixture, &path).unwrap();
    let store = Store::open(&path, Access::ReadWrite).unwrap();
    let kills = store.list(&Filter::default()).unwrap();
    assert_eq!(kills.len(), 5);
    for kill in &kills {
        assert_eq!(kill.sources, [Source::Ebpf]);
        assert_eq!(kill.victim.comm.as_deref(), Some("demo-hog"));
        assert!(kill.boot_id.is_some() && kill.boot_ns.is_some() && kill.time_ns.is_some());
        assert_eq!(kill.kind, Kind::Kill);
    }
    let version: u32 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn migrations_validate_and_are_numbered_in_order() {
    let conn = Connection::open_in_memory().unwrap();
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        assert!(name.starts_with(&format!("{:03}_", index + 1)), "{name} out of order");
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Every file in migrations/ is embedded, and nothing else.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn insert_get_list_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/oom.db");
    let mut store = Store::open(&path, Access::ReadWrite).unwrap();
    let first = sample_kill(100, 1_000);
    let second = Kill {
        victim: Victim {
            comm: None,
            figures: Figures { anon_rss_kb: None, ..first.victim.figures },
            ..first.victim.clone()
        },
        ..sample_kill(101, 2_000)
    };
    let id1 = store.insert(&first).unwrap();
    let id2 = store.insert(&second).unwrap();
    assert_ne!(id1, id2);

    let got = store.get(id1).unwrap().unwrap();
    assert_eq!(got, Kill { id: Some(id1), ..first.clone() });
    let got2 = store.get(id2).unwrap().unwrap();
    assert_eq!(got2.victim.figures.anon_rss_kb, None, "unknown stays unknown");
    assert_eq!(store.get(id2 + 100).unwrap(), None);

    let reader = Store::open(&path, Access::ReadOnly).unwrap();
    let all = reader.list(&Filter::default()).unwrap();
    assert_eq!(all.iter().map(|k| k.id.unwrap()).collect::<Vec<_>>(), [id2, id1], "newest first");
    assert_eq!(reader.list(&Filter { limit: Some(1), ..Filter::default() }).unwrap().len(), 1);
}

#[test]
fn kernel_state_round_trips_and_stays_null_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    let state = crate::model::KernelState {
        page_size: 4096,
        age_ms: Some(48),
        rss_pages: Some(crate::model::RssPages { file: 439, anon: 16_320, swapents: 0, shmem: 0 }),
        nodename: Some("vm".into()),
        cgroup_path: Some("/a/b".into()),
        cgroup_id: Some(6635),
        cgroup_version: Some(1),
        memcg: vec![crate::model::MemcgLevel {
            path: Some("/a/b".into()),
            memory_usage_bytes: 1,
            memory_limit_bytes: 2,
            ..Default::default()
        }],
        ..Default::default()
    };
    let with = Kill { kernel: Some(state), ..sample_kill(1, 1_000) };
    let id = store.insert(&with).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap(), Kill { id: Some(id), ..with });
    let without = sample_kill(2, 2_000);
    let id = store.insert(&without).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap().kernel, None);
}

#[test]
fn losses_are_summed_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    for count in [3, 4] {
        let loss = Loss { time_ns: 1, boot_id: "b".into(), reason: "ringbuf_full", count, detail: None };
        store.record_loss(&loss).unwrap();
    }
    assert_eq!(store.loss_count("ringbuf_full").unwrap(), 7);
    assert_eq!(store.loss_count("decode").unwrap(), 0);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    for access in [Access::ReadWrite, Access::ReadOnly] {
        let err = Store::open(&path, access).err().expect("a newer schema must be refused");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    assert!(!dir.path().join("future.db-wal").exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_an_error_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = b"this is not a database, and it is long enough to have a header........".repeat(10);
    std::fs::write(&path, &text).unwrap();
    let err = Store::open(&path, Access::ReadWrite).err().expect("must refuse");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), text);
}

#[test]
fn prune_deletes_only_what_is_older_than_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    let old = sample_kill(1, 1_000);
    let new = sample_kill(2, 9_000);
    let (old_ns, new_ns) = (old.time_ns.unwrap(), new.time_ns.unwrap());
    store.insert(&old).unwrap();
    let kept = store.insert(&new).unwrap();
    let loss = |time_ns| Loss { time_ns, boot_id: "b".into(), reason: "decode", count: 1, detail: None };
    store.record_loss(&loss(old_ns)).unwrap();
    store.record_loss(&loss(new_ns)).unwrap();

    // The cutoff is exclusive: a kill exactly at it stays.
    assert_eq!(store.prune_older_than(new_ns).unwrap(), 1);
    let left: Vec<i64> = store.list(&Filter::default()).unwrap().iter().map(|k| k.id.unwrap()).collect();
    assert_eq!(left, [kept]);
    assert_eq!(store.loss_count("decode").unwrap(), 1);
    assert_eq!(store.prune_older_than(new_ns).unwrap(), 0, "nothing more to delete");
}

#[test]
fn reading_a_missing_database_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = Store::open(&path, Access::ReadOnly).err().unwrap();
    assert!(err.to_string().contains("absent.db"), "{err}");
    assert!(!path.exists(), "a reader must not create the file");
}

/// Rows stored before `oom_scope` existed are classified by the upgrade
/// with the same rule as new ones: the constraint, else the kill line's
/// reason; a row that says neither stays unknown.
#[test]
fn the_upgrade_to_version_7_classifies_the_kills_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    {
        let conn = Connection::open(&path).unwrap();
        for (name, sql) in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        let rows = [
            (
                1,
                Some("CONSTRAINT_NONE"),
                Some(r#"{"constraint":"CONSTRAINT_NONE","reason":"Out of memory"}"#),
            ),
            (2, None, Some(r#"{"reason":"Memory cgroup out of memory"}"#)),
            (3, None, Some(r#"{"reason":"Out of memory"}"#)),
            (4, None, None),
        ];
        for (pid, constraint, oom_json) in rows {
            conn.execute(
                "INSERT INTO kills (recorded_ns, sources, victim_pid, oom_constraint, oom_json)
                 VALUES (1, '[\"kmsg\"]', ?1, ?2, ?3)",
                (pid, constraint, oom_json),
            )
            .unwrap();
        }
    }
    let store = Store::open(&path, Access::ReadWrite).unwrap();
    let scopes: Vec<(i32, Option<String>)> = store
        .conn
        .prepare("SELECT victim_pid, oom_scope FROM kills ORDER BY victim_pid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [(1, Some("global")), (2, Some("memcg")), (3, Some("global")), (4, None)];
    assert_eq!(scopes, want.map(|(p, s)| (p, s.map(str::to_owned))));
}

/// Each fact sets the scope it knows: the counters read at the kill first,
/// then the kernel's own word replaces them.
#[test]
fn the_reports_scope_replaces_the_counters_guess() {
    use crate::model::{scope::OomScope, KernelState, MemcgLevel};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    let roomy =
        MemcgLevel { memory_usage_bytes: 1 << 20, memory_limit_bytes: 64 << 20, ..MemcgLevel::default() };
    let event = Kill {
        kernel: Some(KernelState { page_size: 4096, memcg: vec![roomy], ..KernelState::default() }),
        ..sample_kill(9, 1_000)
    };
    let id = store.insert(&event).unwrap();
    let scope_of = |store: &Store| -> Option<String> {
        store.conn.query_row("SELECT oom_scope FROM kills WHERE id = ?1", [id], |r| r.get(0)).unwrap()
    };
    assert_eq!(scope_of(&store).as_deref(), Some("global"), "no cgroup at its limit");
    let mut report = sample_kill(9, 1_000);
    report.oom.reason = Some("Memory cgroup out of memory".into());
    store.set_report(id, &report, &[Source::Ebpf, Source::Kmsg]).unwrap();
    assert_eq!(scope_of(&store).as_deref(), Some("memcg"));
    let filter = Filter { scope: Some(OomScope::Memcg), ..Filter::default() };
    assert_eq!(store.list(&filter).unwrap().len(), 1);
}

/// A kill whose report came first holds only what its cgroup path says of
/// the container; the snapshot that comes after names it (the runtime's
/// files) and must win. Seen in CI: a kubelet-systemd container's kill
/// stored without its name, image and pod when its kernel line won the race.
#[test]
fn the_snapshots_identity_replaces_the_paths_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    let path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod815d2b0d_0000_4000_8000_000000000001.slice/cri-containerd-8601fe2ef4d1.scope";
    let from_path = crate::model::identity::from_path(path);
    let first = Kill { container: Some(from_path.clone()), ..sample_kill(42, 1) };
    let id = store.insert(&first).unwrap();
    let named = crate::model::identity::Identity {
        container_name: Some("hog".into()),
        pod_name: Some("web-0".into()),
        pod_namespace: Some("shop".into()),
        image: Some("docker.io/library/nginx:1.25".into()),
        ..from_path.clone()
    };
    let snapshot = Kill { container: Some(named.clone()), ..sample_kill(42, 1) };
    store.set_snapshot(id, &snapshot, &[Source::Ebpf, Source::Cgroup]).unwrap();
    let stored = store.get(id).unwrap().unwrap();
    assert_eq!(stored.container, Some(named));
    // A snapshot that names nothing keeps what the path said.
    let id2 = store.insert(&Kill { container: Some(from_path.clone()), ..sample_kill(43, 2) }).unwrap();
    store.set_snapshot(id2, &Kill { container: None, ..sample_kill(43, 2) }, &[Source::Ebpf]).unwrap();
    assert_eq!(store.get(id2).unwrap().unwrap().container, Some(from_path));
}

/// `oom_json` leaves unknown facts out, and rows stored before that, with
/// their `null`s, read back the same.
#[test]
fn the_oom_column_leaves_unknowns_out_and_reads_older_rows_the_same() {
    let oom = crate::model::Oom {
        reason: Some("Memory cgroup out of memory".into()),
        group_cgroup: Some("/a".into()),
        global: Some(false),
        ..crate::model::Oom::default()
    };
    let rusqlite::types::Value::Text(text) = rows::oom_json(&oom) else { panic!("no text") };
    assert!(!text.contains("null"), "{text}");
    let older = r#"{"reason":"Memory cgroup out of memory","constraint":null,"oom_cgroup":null,
        "task_cgroup":null,"global":false,"group_cgroup":"/a","memory_usage_kb":null,"tasks":null}"#;
    assert_eq!(serde_json::from_str::<crate::model::Oom>(older).unwrap(), oom);
    assert_eq!(serde_json::from_str::<crate::model::Oom>(&text).unwrap(), oom);
}

/// Since migration 010 the JSON columns leave out what has a column of
/// its own (the cgroup paths, the names `list` filters on), and a record
/// reads back whole from both; a row stored before, which holds them in
/// its JSON as well, reads the same.
#[test]
fn the_json_columns_leave_out_what_has_a_column_and_read_older_rows_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod815d2b0d_0000_4000_8000_000000000001.slice";
    let task = format!("{pod}/cri-containerd-8601fe2ef4d1.scope");
    let kill = Kill {
        oom: crate::model::Oom {
            reason: Some("Memory cgroup out of memory".into()),
            oom_cgroup: Some(pod.into()),
            task_cgroup: Some(task.clone()),
            ..crate::model::Oom::default()
        },
        container: Some(crate::model::identity::Identity {
            container_name: Some("hog".into()),
            pod_name: Some("web-0".into()),
            pod_namespace: Some("shop".into()),
            image: Some("docker.io/library/nginx:1.25".into()),
            ..crate::model::identity::from_path(&task)
        }),
        ..sample_kill(42, 1)
    };
    let id = store.insert(&kill).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap(), Kill { id: Some(id), ..kill.clone() });
    let (oom_json, container_json): (String, String) = store
        .conn
        .query_row("SELECT oom_json, container_json FROM kills WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(!oom_json.contains("kubepods"), "the paths are in their columns only: {oom_json}");
    for name in ["8601fe2ef4d1", "pod_uid", "web-0", "shop", "\"hog\""] {
        assert!(!container_json.contains(name), "{name} is in its column only: {container_json}");
    }
    assert!(container_json.contains("nginx:1.25"), "the image has no column: {container_json}");

    // A row as a version-9 binary wrote it: everything in the JSON too.
    let full_oom =
        serde_json::json!({"reason": "Memory cgroup out of memory", "oom_cgroup": pod, "task_cgroup": task});
    let c = kill.container.as_ref().unwrap();
    let full_container = serde_json::json!({
        "runtime": c.runtime, "id": c.id, "pod_uid": c.pod_uid, "qos": c.qos,
        "pod_namespace": c.pod_namespace, "pod_name": c.pod_name, "container_name": c.container_name,
        "image": c.image, "unit": c.unit, "slice": c.slice, "runtime_namespace": c.runtime_namespace,
    });
    store
        .conn
        .execute(
            "UPDATE kills SET oom_json = ?1, container_json = ?2 WHERE id = ?3",
            (full_oom.to_string(), full_container.to_string(), id),
        )
        .unwrap();
    assert_eq!(store.get(id).unwrap().unwrap(), Kill { id: Some(id), ..kill });
}
