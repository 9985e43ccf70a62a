//! The schema: the numbered files in `migrations/`, embedded here and
//! applied in order; the applied version is SQLite's `user_version`.

use super::{Store, StoreError};
use crate::model::{scope, Kill, Oom};

/// The migrations, in order: entry `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_kills.sql", include_str!("../../../migrations/001_kills.sql")),
    ("002_kernel_report.sql", include_str!("../../../migrations/002_kernel_report.sql")),
    ("003_kernel_state.sql", include_str!("../../../migrations/003_kernel_state.sql")),
    ("004_cgroup_snapshot.sql", include_str!("../../../migrations/004_cgroup_snapshot.sql")),
    ("005_list_indexes.sql", include_str!("../../../migrations/005_list_indexes.sql")),
    ("006_daemon_status.sql", include_str!("../../../migrations/006_daemon_status.sql")),
    ("007_oom_scope.sql", include_str!("../../../migrations/007_oom_scope.sql")),
    ("008_write_failures.sql", include_str!("../../../migrations/008_write_failures.sql")),
    ("009_kernel_counted_twice.sql", include_str!("../../../migrations/009_kernel_counted_twice.sql")),
    ("010_lean_rows.sql", include_str!("../../../migrations/010_lean_rows.sql")),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

impl Store {
    /// Applies every migration after `from`, each in its own transaction with
    /// its `user_version` bump, so a crash leaves a consistent version.
    pub(super) fn migrate(&mut self, from: u32) -> Result<(), StoreError> {
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = index as u32 + 1;
            let err = |source| StoreError::Migrate { path: self.path.clone(), name, source };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            if *name == "007_oom_scope.sql" {
                backfill_scope(&tx).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", version).map_err(err)?;
            tx.commit().map_err(err)?;
            log::info!("database {}: applied migration {name}", self.path.display());
        }
        Ok(())
    }
}

/// Classifies the rows stored before `oom_scope` existed, with the one
/// rule the writer uses for new ones ([`scope::classify`]). It reads only
/// the columns that rule looks at (the report's facts and the kill-time
/// state, both there since 003): a later migration's columns
/// do not exist yet when this one runs.
fn backfill_scope(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut select = tx.prepare("SELECT id, oom_json, kernel_json FROM kills")?;
    let mut update = tx.prepare("UPDATE kills SET oom_scope = ?1 WHERE id = ?2")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let (oom, kernel): (Option<String>, Option<String>) = (row.get(1)?, row.get(2)?);
        // A row whose JSON columns do not parse keeps NULL: the migration
        // must not fail on what `show` reports as malformed.
        let Ok(oom) = oom.map_or(Ok(Oom::default()), |text| serde_json::from_str(&text)) else { continue };
        let Ok(kernel) = kernel.map(|text| serde_json::from_str(&text)).transpose() else { continue };
        if let Some(scope) = scope::classify(&Kill { oom, kernel, ..Kill::default() }) {
            update.execute((scope.as_str(), id))?;
        }
    }
    Ok(())
}
