//! The daemon's journal reader, on its own thread (the `systemd` crate's
//! `Journal` is not `Send`).

use std::sync::atomic::Ordering;

use super::writer::ToWriter;
use crate::sources::journal::{JournalError, KernelJournal};

/// Where the daemon keeps how far it read the journal.
pub const CURSOR_KEY: &str = "journal_cursor";

/// The daemon's journal reader, on its own thread: first the catch-up (kills
/// of this and earlier boots that the journal holds and the store lacks; the
/// store merges what it already has), then, when /dev/kmsg cannot be read,
/// the live kernel log from the journal until `stop` is set.
pub fn follow(
    boot_id: &str,
    cursor: Option<String>,
    live: bool,
    tx: std::sync::mpsc::Sender<ToWriter>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut journal = match KernelJournal::open_system() {
        Ok(journal) => journal,
        Err(e) => {
            log::info!("no systemd journal to catch up from ({e}); earlier boots' kills are not recovered");
            return;
        }
    };
    let send_all = |journal: &mut KernelJournal| -> Result<(), JournalError> {
        let mut kills = 0;
        let cursor = journal.read_to_end(|kill| {
            kills += 1;
            let _ = tx.send(ToWriter::Kill(Box::new(kill)));
        })?;
        if let Some(value) = cursor {
            let _ = tx.send(ToWriter::State { key: CURSOR_KEY, value });
        }
        if kills > 0 {
            log::info!("journal: {kills} kills read");
        }
        Ok(())
    };
    let result = journal
        .alias_current_boot(boot_id)
        .and_then(|()| journal.seek(cursor.as_deref()))
        .and_then(|()| send_all(&mut journal));
    if let Err(e) = result {
        log::warn!("journal catch-up stopped: {e}");
        return;
    }
    if !live {
        return;
    }
    log::info!("reading the kernel log from the journal (/dev/kmsg is not readable)");
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = journal.journal.wait(Some(std::time::Duration::from_secs(1))) {
            log::warn!("journal: {e}; no longer following it");
            return;
        }
        if let Err(e) = send_all(&mut journal) {
            log::warn!("journal: {e}; no longer following it");
            return;
        }
    }
}
