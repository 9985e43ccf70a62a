//! Configuration errors are refused before anything runs: the command
//! exits 2 at once, names the setting and where it came from, attaches
//! nothing and creates nothing.

use std::time::Instant;

use super::*;

/// `oomrecorder ARGS --config FILE` with `config` as the file; exit code,
/// stderr, seconds.
fn with_config(work: &Path, config: &str, args: &[&str]) -> (Option<i32>, String, f64) {
    let file = work.join("oomrecorder.toml");
    std::fs::write(&file, config).unwrap();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&file)
        .env_remove("OOMRECORDER_DB")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), started.elapsed().as_secs_f64())
}

#[test]
fn configuration_errors_stop_every_command_before_it_starts() {
    let _serial = serial("configuration_errors_stop_every_command_before_it_starts");
    let work = tempfile::tempdir().unwrap();
    let config_path = work.path().join("oomrecorder.toml");
    let config_name = config_path.display().to_string();
    let read_only = Tmpfs::mount_with("size=1m,ro");
    let in_read_only = read_only.path.join("oomrecorder.db");
    let dir = work.path().display().to_string();
    let cases: [(String, &[&str], Vec<&str>); 7] = [
        // The case: once 106 `recorded kill` lines and nothing on disk.
        ("db = \"\"\n".into(), &["run"], vec!["is empty", &config_name]),
        ("db = \"\"\n".into(), &["list"], vec!["is empty"]),
        (format!("db = \"{dir}\"\n"), &["run"], vec!["is a directory"]),
        (format!("db = \"{dir}\"\n"), &["status"], vec!["is a directory"]),
        (
            format!("db = \"{}\"\n", in_read_only.display()),
            &["run"],
            vec!["not writable", "Read-only file system"],
        ),
        ("cmdline = \"some\"\n".into(), &["run"], vec!["line 1", "full"]),
        ("group = \"no-such-group-oomrecorder\"\n".into(), &["run"], vec!["no such group"]),
    ];
    for (config, args, says) in &cases {
        let (code, err, secs) = with_config(work.path(), config, args);
        assert_eq!(code, Some(2), "{args:?} with {config:?}: {err}");
        for word in says {
            assert!(err.contains(word), "{args:?} with {config:?}: no {word:?} in {err}");
        }
        assert!(!err.contains("attached") && !err.contains("recorded"), "it ran: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(secs < 5.0, "{secs:.1} s");
        println!("config {:?} → {args:?}: exit 2 in {secs:.2} s: {}", config.trim(), err.trim());
    }
    assert_eq!(
        std::fs::read_dir(&read_only.path).unwrap().count(),
        0,
        "nothing created on the read-only disk"
    );
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["oomrecorder.toml"], "nothing created beside the configuration");
}
