//! The systemd journal's copy of the kernel log: for kills of earlier boots
//! (catch-up after downtime across a reboot), for when /dev/kmsg cannot be
//! read, and for `oomrecorder import --journal-dir`.
//!
//! Kernel entries carry `_TRANSPORT=kernel`, `_BOOT_ID`, and
//! `_SOURCE_MONOTONIC_TIMESTAMP`: the kernel log record's own µs since boot
//! (systemd's journald-kmsg.c copies it from /dev/kmsg), so a journal line
//! joins an eBPF event exactly like a /dev/kmsg line does.
//!
//! The `systemd` crate's `Journal` is not `Send`: everything here runs on the
//! one thread that opened it.

use std::{collections::HashMap, path::Path};

use systemd::journal::{self, Journal, JournalSeek};

use crate::{
    clock,
    model::{from_report, Kill, Source},
    report::{Item, Line, Parser},
};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal{}", .dir.as_deref().map(|d| format!(" in {}", d.display())).unwrap_or_default())]
    Open { dir: Option<std::path::PathBuf>, source: systemd::Error },
    #[error("reading the journal")]
    Read(#[source] systemd::Error),
}

pub struct KernelJournal {
    pub(crate) journal: Journal,
    /// One parser per boot: a report never spans boots.
    parsers: HashMap<String, Parser>,
    source: Source,
    /// The journal's id for the running boot and the kernel's, when they
    /// differ (see [`KernelJournal::alias_current_boot`]).
    boot_alias: Option<(String, String)>,
    pub entries: u64,
}

impl KernelJournal {
    /// The system journal of this machine.
    pub fn open_system() -> Result<KernelJournal, JournalError> {
        let journal = journal::OpenOptions::default()
            .system(true)
            .local_only(true)
            .open()
            .map_err(|source| JournalError::Open { dir: None, source })?;
        KernelJournal::new(journal, None, Source::Journal)
    }

    /// Journal files in `dir` (e.g. a copy of another machine's
    /// /var/log/journal/<machine-id>).
    pub fn open_dir(dir: &Path) -> Result<KernelJournal, JournalError> {
        let journal = journal::OpenDirectoryOptions::default()
            .open_directory(dir.to_string_lossy().as_ref())
            .map_err(|source| JournalError::Open { dir: Some(dir.to_path_buf()), source })?;
        KernelJournal::new(journal, Some(dir.to_path_buf()), Source::Import)
    }

    fn new(
        mut journal: Journal,
        dir: Option<std::path::PathBuf>,
        source: Source,
    ) -> Result<KernelJournal, JournalError> {
        journal.match_add("_TRANSPORT", "kernel").map_err(|source| JournalError::Open { dir, source })?;
        Ok(KernelJournal { journal, parsers: HashMap::new(), source, boot_alias: None, entries: 0 })
    }

    /// Makes the journal's entries of the running boot carry the kernel's
    /// boot id. They differ when journald runs in a container: systemd-nspawn
    /// gives the container its own /proc/sys/kernel/random/boot_id, which
    /// journald stamps on kernel lines, while the recorder (in a service
    /// whose /proc/sys is the kernel's) sees the real one. Without the alias,
    /// a kill would be recorded twice, once per boot id. The running boot is
    /// the one of the newest kernel entry, if that entry's stamp is not later
    /// than the uptime now.
    pub fn alias_current_boot(&mut self, kernel_boot_id: &str) -> Result<(), JournalError> {
        self.journal.seek(JournalSeek::Tail).map_err(JournalError::Read)?;
        if self.journal.previous().map_err(JournalError::Read)? == 0 {
            return Ok(());
        }
        let newest = field(&mut self.journal, "_BOOT_ID").map(|b| hyphenate(&b));
        let usec: Option<u64> =
            field(&mut self.journal, "_SOURCE_MONOTONIC_TIMESTAMP").and_then(|u| u.parse().ok());
        let uptime_usec = clock::mono_ns_now() / 1_000;
        if let (Some(newest), Some(usec)) = (newest, usec) {
            if newest != kernel_boot_id && usec <= uptime_usec {
                log::info!("the journal calls this boot {newest}; recording its kernel lines as boot {kernel_boot_id}");
                self.boot_alias = Some((newest, kernel_boot_id.to_owned()));
            }
        }
        Ok(())
    }

    /// Positions after `cursor` (an earlier run's), or at the oldest entry.
    pub fn seek(&mut self, cursor: Option<&str>) -> Result<(), JournalError> {
        let result = match cursor {
            Some(cursor) => self.journal.seek(JournalSeek::Cursor { cursor: cursor.to_owned() }).map(|_| {
                // The cursor's own entry was read last time: step past it.
                let _ = self.journal.next();
            }),
            None => self.journal.seek(JournalSeek::Head).map(drop),
        };
        result.map_err(JournalError::Read)
    }

    /// Reads every kernel entry from the current position to the end,
    /// handing each kill to `found`. Returns the cursor of the last entry.
    pub fn read_to_end(&mut self, mut found: impl FnMut(Kill)) -> Result<Option<String>, JournalError> {
        let mut last_cursor = None;
        while self.journal.next().map_err(JournalError::Read)? > 0 {
            self.entries += 1;
            let Some(message) = field(&mut self.journal, "MESSAGE") else { continue };
            let boot_id =
                field(&mut self.journal, "_BOOT_ID").map(|b| hyphenate(&b)).map(|b| match &self.boot_alias {
                    Some((journal_id, kernel_id)) if *journal_id == b => kernel_id.clone(),
                    _ => b,
                });
            let usec = field(&mut self.journal, "_SOURCE_MONOTONIC_TIMESTAMP").and_then(|u| u.parse().ok());
            let realtime = self.journal.timestamp_usec().ok();
            let parser = self.parsers.entry(boot_id.clone().unwrap_or_default()).or_default();
            let recorded_ns = clock::wall_ns_now();
            for text in message.lines() {
                for item in parser.push(Line { usec, text }) {
                    if let Item::Kill(kk) = item {
                        let time_ns = realtime.map(|us| us as i64 * 1_000);
                        let mut kill = from_report::from_kernel(
                            &kk,
                            self.source,
                            boot_id.as_deref(),
                            time_ns,
                            recorded_ns,
                        );
                        if self.source == Source::Import {
                            // Imported journals are found again by entry, so a
                            // second import adds nothing.
                            kill.fingerprint =
                                self.journal.cursor().ok().map(|c| format!("journal:{c}:{}", kk.pid));
                        }
                        found(kill);
                    }
                }
            }
            last_cursor = self.journal.cursor().ok();
        }
        Ok(last_cursor)
    }
}

/// One field of the journal's current entry, as text; `None` when absent.
fn field(journal: &mut Journal, name: &str) -> Option<String> {
    journal
        .get_data(name)
        .ok()
        .flatten()
        .and_then(|f| f.value().map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// `_BOOT_ID` is 32 hex digits; /proc/sys/kernel/random/boot_id, which the
/// rest of the recorder uses, is the same UUID with hyphens.
pub fn hyphenate(id: &str) -> String {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return id.to_owned();
    }
    format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_ids_match_procs_form() {
        assert_eq!(hyphenate("90e19252c4f34f33b61e680af3ffcadb"), "90e19252-c4f3-4f33-b61e-680af3ffcadb");
        assert_eq!(hyphenate("not-an-id"), "not-an-id");
    }
}
