-- 001: one row per OOM victim, and the losses the daemon counted.
-- Times are Unix ns (wall clock) or ns on a named boot's clocks; sizes are
-- kB where the kernel reports kB, bytes where it reports bytes. NULL means
-- unknown, never zero.

CREATE TABLE kills (
    id                 INTEGER PRIMARY KEY,
    time_ns            INTEGER NOT NULL,  -- wall clock at the kill, from boot_ns
    boot_id            TEXT    NOT NULL,  -- /proc/sys/kernel/random/boot_id
    boot_ns            INTEGER NOT NULL,  -- CLOCK_BOOTTIME at the kill
    mono_ns            INTEGER,           -- CLOCK_MONOTONIC at the kill (kernel log clock)
    recorded_ns        INTEGER NOT NULL,  -- wall clock when stored
    sources            TEXT    NOT NULL,  -- JSON array of source names
    victim_pid         INTEGER NOT NULL,
    victim_tgid        INTEGER,
    victim_comm        TEXT,
    victim_uid         INTEGER,
    total_vm_kb        INTEGER,
    anon_rss_kb        INTEGER,
    file_rss_kb        INTEGER,
    shmem_rss_kb       INTEGER,
    pgtables_kb        INTEGER,
    oom_score_adj      INTEGER,
    trigger_pid        INTEGER,
    trigger_tgid       INTEGER,
    trigger_comm       TEXT,
    cgroup             TEXT,
    memory_limit_bytes INTEGER,
    -- One kill is one instant on one boot for one task: replaying the same
    -- event (recovery, import) must not make a second row.
    UNIQUE (boot_id, boot_ns, victim_pid)
);

CREATE INDEX kills_by_time ON kills (time_ns);

-- Every event the daemon knows it did not record, with why. Later loss
-- accounting sums these against the kernel's own oom_kill counters.
CREATE TABLE losses (
    id       INTEGER PRIMARY KEY,
    time_ns  INTEGER NOT NULL,  -- wall clock when the loss was noticed
    boot_id  TEXT    NOT NULL,
    reason   TEXT    NOT NULL,  -- 'ringbuf_full', 'decode', ...
    count    INTEGER NOT NULL,
    detail   TEXT
);
