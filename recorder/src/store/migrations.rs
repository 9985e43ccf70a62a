//! The schema: the numbered files in `migrations/`, embedded here and
//! applied in order; the applied version is SQLite's `user_version`.

use super::{Store, StoreError};

/// The migrations, in order: entry `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_kills.sql", include_str!("../../../migrations/001_kills.sql")),
    ("002_kernel_report.sql", include_str!("../../../migrations/002_kernel_report.sql")),
    ("003_kernel_state.sql", include_str!("../../../migrations/003_kernel_state.sql")),
    ("004_cgroup_snapshot.sql", include_str!("../../../migrations/004_cgroup_snapshot.sql")),
    ("005_list_indexes.sql", include_str!("../../../migrations/005_list_indexes.sql")),
    ("006_daemon_status.sql", include_str!("../../../migrations/006_daemon_status.sql")),
    ("007_write_failures.sql", include_str!("../../../migrations/007_write_failures.sql")),
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
            tx.pragma_update(None, "user_version", version).map_err(err)?;
            tx.commit().map_err(err)?;
            log::info!("database {}: applied migration {name}", self.path.display());
        }
        Ok(())
    }
}
