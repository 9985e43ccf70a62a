//! Least access to the history: files created 0600 (0640 in a configured
//! group) and the directory 0700 (0750) whatever the umask; a user who may
//! not read it gets one line saying who may; command lines carrying
//! secrets are kept redacted, or not at all, as configured.

use std::{os::unix::fs::MetadataExt, process::Stdio, time::Duration};

use super::*;

const SECRET: &str = "hunter2";
const TOKEN: &str = "s3cr3tK3yV4lue1234567";

/// A process beside the hog in its cgroup whose command line carries a
/// password and a token (dash keeps its own argv while `sleep` runs).
fn sidecar(cgroup: &MemCgroup) -> std::process::Child {
    let script = format!(
        "echo $$ > {} && exec sh -c 'sleep 1000' sidecar --password {SECRET} --api-key={TOKEN}",
        cgroup.path.join("cgroup.procs").display()
    );
    Command::new("/bin/sh").args(["-c", &script]).stdout(Stdio::null()).spawn().unwrap()
}

/// Runs the CLI as uid/gid 65534 with `groups` as its supplementary groups.
fn as_nobody(groups: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        command.arg("--clear-groups");
    } else {
        command.arg(format!("--groups={groups}"));
    }
    command.arg(BIN).args(args).env_remove("OOMRECORDER_DB").output().unwrap()
}

fn mode(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.mode() & 0o7777, meta.gid())
}

/// A daemon with `config`, umask 022 (outside the unit), one kill with the
/// sidecar beside it; returns the daemon, the db and the kill's record.
fn record_one_kill(work: &Path, config: &str) -> (Daemon, PathBuf, Value) {
    let state = work.join("state");
    let db = state.join("oomrecorder.db");
    let config_file = work.join("oomrecorder.toml");
    std::fs::write(&config_file, config).unwrap();
    let config_arg = config_file.display().to_string();
    let daemon = Daemon::start_after(&db, work, &["--config", &config_arg], Some("umask 022"));
    let comm = unique_name("acc-");
    let victim = victim_binary(work, &comm);
    let since_ns = now_ns();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut side = sidecar(&cgroup);
    std::thread::sleep(Duration::from_millis(200));
    let victims = kills(&cgroup, &victim, 1);
    let snapshotted = wait_until(Duration::from_secs(15), || {
        ours(&rows(&db), &victims, since_ns).first().is_some_and(|r| {
            let shown = cli_json(&["show", &r["id"].to_string(), "--json", "--db", db.to_str().unwrap()]);
            shown["cgroup"]["processes"].as_array().is_some_and(|p| p.len() >= 2)
        })
    });
    assert!(snapshotted, "no snapshot with the sidecar\n{}", daemon.log());
    let row = ours(&rows(&db), &victims, since_ns).remove(0);
    let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", db.to_str().unwrap()]);
    let _ = side.kill();
    let _ = side.wait();
    drop(cgroup);
    (daemon, db, shown)
}

#[test]
fn the_history_is_owner_only_and_says_who_may_read_it() {
    let _serial = serial("the_history_is_owner_only_and_says_who_may_read_it");
    let work = tempfile::tempdir().unwrap();
    // Others may walk to it, so only the store's own modes keep them out.
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (daemon, db, shown) = record_one_kill(work.path(), "");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    for file in [&db, &wal, &shm] {
        assert_eq!(mode(file).0, 0o600, "{} (umask 022)", file.display());
    }
    assert_eq!(mode(db.parent().unwrap()).0, 0o700, "the state directory the store created");
    // Full command lines by default, for root's eyes only.
    let text = shown.to_string();
    assert!(text.contains(SECRET), "cmdline = full keeps them: {shown:#}");

    let out = as_nobody("", &["list", "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("root only") && err.contains("sudo") && err.contains("group ="), "{err}");
    assert!(out.stdout.is_empty());
    let out = as_nobody("", &["show", "last", "--json", "--db", db.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET) && out.status.code() == Some(2));
    assert_eq!(daemon.stop().code(), Some(0));
    println!("access: db, -wal, -shm 0600 and directory 0700 under umask 022; as nobody: {}", err.trim());
}

#[test]
fn a_reading_group_sees_redacted_command_lines_and_none_keeps_nothing() {
    let _serial = serial("a_reading_group_sees_redacted_command_lines_and_none_keeps_nothing");
    // adm: the group Debian gives log readers (journald's files are theirs too).
    let adm = oomrecorder::config::lookup_group("adm").expect("Debian has group adm");
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (daemon, db, shown) = record_one_kill(work.path(), "group = \"adm\"\n");
    for file in [db.clone(), PathBuf::from(format!("{}-wal", db.display()))] {
        assert_eq!(mode(&file), (0o640, adm.gid), "{}", file.display());
    }
    assert_eq!(mode(db.parent().unwrap()), (0o750, adm.gid));
    // Shared with a group: redacted unless asked otherwise.
    let sidecar = shown["cgroup"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p["cmdline"].as_str().filter(|c| c.contains("sidecar")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no sidecar in {shown:#}"));
    assert_eq!(sidecar, "sh -c sleep 1000 sidecar --password <redacted> --api-key=<redacted>");
    assert!(!shown.to_string().contains(SECRET) && !shown.to_string().contains(TOKEN), "{shown:#}");

    // A member of adm reads it while the daemon writes; anyone else is told who may.
    let member = as_nobody(&adm.gid.to_string(), &["list", "--json", "--db", db.to_str().unwrap()]);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
    let listed: Value = serde_json::from_slice(&member.stdout).unwrap();
    assert!(!listed.as_array().unwrap().is_empty());
    let outsider = as_nobody("", &["list", "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&outsider.stderr);
    assert!(err.contains("members of group adm"), "{err}");
    assert_eq!(daemon.stop().code(), Some(0));
    // Stopped (no WAL left open), a member still reads it.
    let member = as_nobody(&adm.gid.to_string(), &["list", "--db", db.to_str().unwrap()]);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));

    let none = tempfile::tempdir().unwrap();
    let (daemon, _db, shown) = record_one_kill(none.path(), "cmdline = \"none\"\n");
    assert_eq!(shown["victim"]["cmdline"], Value::Null, "{shown:#}");
    let processes = shown["cgroup"]["processes"].as_array().unwrap();
    assert!(processes.iter().all(|p| p["cmdline"].is_null()), "{processes:#?}");
    assert!(!shown.to_string().contains(SECRET));
    assert_eq!(daemon.stop().code(), Some(0));
    println!("access: group adm reads 0640 files; sidecar kept as {sidecar:?}; cmdline = none keeps null");
}
