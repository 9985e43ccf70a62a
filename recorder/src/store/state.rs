//! What the store keeps besides the kills: values between runs (the journal
//! cursor), how far the kernel log was read on each boot, what the daemon
//! knows it lost, and the retention deletes.

use rusqlite::OptionalExtension;

use super::{Store, StoreError};

/// Something the daemon knows it did not record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub time_ns: i64,
    pub boot_id: String,
    pub reason: &'static str,
    pub count: u64,
    pub detail: Option<String>,
}

impl Store {
    /// A value kept between runs (see the `state` table).
    pub fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM state WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// The last kernel-log sequence number read on `boot_id`, if any.
    pub fn kmsg_cursor(&self, boot_id: &str) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row("SELECT seq FROM kmsg_cursor WHERE boot_id = ?1", [boot_id], |row| {
                row.get::<_, i64>(0)
            })
            .optional()
            .map(|seq| seq.map(|s| s as u64))
            .map_err(|e| self.sql(e))
    }

    pub fn set_kmsg_cursor(&mut self, boot_id: &str, seq: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO kmsg_cursor (boot_id, seq) VALUES (?1, ?2)
                 ON CONFLICT (boot_id) DO UPDATE SET seq = max(seq, excluded.seq)",
                (boot_id, seq as i64),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    pub fn record_loss(&mut self, loss: &Loss) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO losses (time_ns, boot_id, reason, count, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                (loss.time_ns, &loss.boot_id, loss.reason, loss.count as i64, &loss.detail),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Total losses recorded for one reason (all boots).
    pub fn loss_count(&self, reason: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(SUM(count), 0) FROM losses WHERE reason = ?1", [reason], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// Deletes kills (and loss records) whose wall-clock time is before
    /// `cutoff_ns`, in one transaction; returns how many kills went.
    /// Deletes the oldest kills beyond the newest `keep`; returns how many.
    /// Oldest by the same clock as [`Store::prune_older_than`].
    pub fn prune_beyond(&mut self, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM kills WHERE id IN (
                     SELECT id FROM kills ORDER BY COALESCE(time_ns, recorded_ns) DESC, id DESC
                     LIMIT -1 OFFSET ?1)",
                [keep],
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// What [`Store::prune_older_than`] and then [`Store::prune_beyond`]
    /// would delete, counted on a read-only store (`prune --dry-run`): the
    /// kills before `cutoff_ns`, and of the rest those beyond the newest
    /// `keep`, by the same clock.
    pub fn would_prune(&self, cutoff_ns: Option<i64>, keep: Option<u64>) -> Result<(u64, u64), StoreError> {
        let count = |sql: &str, param: i64| {
            self.conn
                .query_row(sql, [param], |row| row.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| self.sql(e))
        };
        let by_age = match cutoff_ns {
            Some(cutoff) => {
                count("SELECT count(*) FROM kills WHERE COALESCE(time_ns, recorded_ns) < ?1", cutoff)?
            }
            None => 0,
        };
        let left = self.kill_count()? - by_age;
        Ok((by_age, keep.map_or(0, |keep| left.saturating_sub(keep))))
    }

    pub fn prune_older_than(&mut self, cutoff_ns: i64) -> Result<u64, StoreError> {
        let tx =
            self.conn.transaction().map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
        let result = tx
            // A kill of unknown time (an imported syslog line has no year)
            // ages from when it was recorded.
            .execute("DELETE FROM kills WHERE COALESCE(time_ns, recorded_ns) < ?1", [cutoff_ns])
            .and_then(|kills| tx.execute("DELETE FROM losses WHERE time_ns < ?1", [cutoff_ns]).map(|_| kills))
            .and_then(|kills| tx.commit().map(|()| kills as u64));
        result.map_err(|e| self.sql(e))
    }
}
