-- 008: what the writer holds back when the store fails (disk full, locked,
-- damaged), so `status` can say what is pending and what was given up, and
-- why; and a record's notes about figures it does not keep.

ALTER TABLE daemon_runs ADD COLUMN writes_pending INTEGER NOT NULL DEFAULT 0;  -- held in memory now
ALTER TABLE daemon_runs ADD COLUMN stored_late    INTEGER NOT NULL DEFAULT 0;  -- stored after a failed write
ALTER TABLE daemon_runs ADD COLUMN queue_full     INTEGER NOT NULL DEFAULT 0;  -- given up: too many pending
ALTER TABLE daemon_runs ADD COLUMN write_error    TEXT;     -- why writes fail now; NULL when they succeed
ALTER TABLE daemon_runs ADD COLUMN write_error_ns INTEGER;  -- since when (wall clock)

-- JSON array of sentences: a figure an imported log printed that its
-- kernel cannot have (stored as NULL), a comm cut to the kernel's length.
ALTER TABLE kills ADD COLUMN notes TEXT;
