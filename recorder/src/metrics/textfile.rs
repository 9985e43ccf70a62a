//! The exposition as a file, for node_exporter's textfile collector
//! (`--collector.textfile.directory`, Debian: /var/lib/prometheus/node-exporter),
//! on hosts that already run node_exporter and want no listener at all.

use std::{
    ffi::OsString,
    fs::{self, File, Permissions},
    future::Future,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{Metrics, MetricsError};

/// Writes the exposition to `PATH.tmp`, then renames it to `path`: the
/// collector reads either the previous file or the new one, never half of
/// one (rename(2) replaces atomically within a file system), and it ignores
/// the `.tmp` file (it reads only `*.prom`). Mode 0644 whatever the umask
/// (the unit's is 0077): node_exporter runs as another user.
pub fn write_textfile(metrics: &Metrics, path: &Path) -> Result<(), MetricsError> {
    let text = metrics.encode()?;
    let tmp = tmp_path(path);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.set_permissions(Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        // No fsync: the file is rewritten every few seconds and at start,
        // and a rename over an existing file is flushed first by ext4 and
        // xfs anyway.
        drop(file);
        Ok(())
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(MetricsError::Textfile { path: tmp, source });
    }
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        MetricsError::Textfile { path: path.to_owned(), source }
    })
}

/// `PATH` with `.tmp` appended to its file name.
fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Rewrites the file every `every` until `shutdown` completes, then removes
/// it: a stopped daemon's numbers must not be served as current forever
/// (`absent(oomrecorder_build_info)` then fires). A failing write is logged
/// once per run of failures. The daemon may also call [`write_textfile`]
/// right after a kill, so the file never lags a kill by a whole interval.
pub async fn textfile_loop<F>(metrics: Metrics, path: PathBuf, every: Duration, shutdown: F)
where
    F: Future<Output = ()>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing = false;
    loop {
        match write_textfile(&metrics, &path) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                log::warn!("{e}");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("cannot remove the metrics file {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{testing::ManualClock, KillLabels, MetricsOptions, Scope};
    use std::{os::unix::fs::MetadataExt, sync::Arc};

    fn metrics() -> Metrics {
        let m = Metrics::with_clock(MetricsOptions::default(), Arc::new(ManualClock::at(5000.0)));
        let labels =
            KillLabels { unit: "backup.service".into(), scope: Scope::Unit, ..KillLabels::default() };
        m.record_kill(&labels, 4990.0, None);
        m
    }

    #[test]
    fn writes_the_exposition_readable_by_others_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomrecorder.prom");
        fs::write(&path, "old").unwrap();
        let m = metrics();
        write_textfile(&m, &path).expect("write");
        assert_eq!(fs::read_to_string(&path).unwrap(), m.encode().unwrap());
        assert!(fs::read_to_string(&path).unwrap().contains("unit=\"backup.service\""));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["oomrecorder.prom"], "no .tmp file left behind");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_tmp_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir/oomrecorder.prom");
        let err = write_textfile(&metrics(), &path).expect_err("no directory");
        assert!(err.to_string().contains("no-such-dir/oomrecorder.prom.tmp"), "{err}");
    }

    #[test]
    fn rename_failure_names_the_path_and_removes_the_tmp() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should be: rename(2) fails.
        let path = dir.path().join("oomrecorder.prom");
        fs::create_dir_all(path.join("x")).unwrap();
        let err = write_textfile(&metrics(), &path).expect_err("rename over a directory");
        assert!(err.to_string().contains("oomrecorder.prom:"), "{err}");
        assert!(!tmp_path(&path).exists());
    }

    #[tokio::test]
    async fn the_loop_writes_then_removes_the_file_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomrecorder.prom");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(textfile_loop(metrics(), path.clone(), Duration::from_secs(3600), async {
            let _ = stopped.await;
        }));
        for _ in 0..500 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(path.exists(), "written at once, not after the first interval");
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(!path.exists(), "removed at shutdown");
    }
}
