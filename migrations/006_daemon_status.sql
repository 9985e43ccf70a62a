-- 006: one row per daemon run, with the loss counters of every stage of the
-- pipeline, so `oomrecorder status` can say what the daemon saw, stored and
-- lost without talking to it. The writer thread updates the row every few
-- seconds and once more at stop. Counters count since the run started.

CREATE TABLE daemon_runs (
    id                     INTEGER PRIMARY KEY,
    pid                    INTEGER NOT NULL,
    boot_id                TEXT    NOT NULL,
    started_ns             INTEGER NOT NULL,  -- wall clock
    last_update_ns         INTEGER NOT NULL,
    stopped_ns             INTEGER,           -- NULL while running (or after a crash)
    attach_point           TEXT    NOT NULL,  -- 'raw_tracepoint' or 'tracepoint'
    version                TEXT    NOT NULL,  -- oomrecorder's version
    victims_seen           INTEGER NOT NULL DEFAULT 0,  -- by the eBPF program
    events_received        INTEGER NOT NULL DEFAULT 0,  -- by user space
    records_stored         INTEGER NOT NULL DEFAULT 0,  -- new kill rows
    ringbuf_full           INTEGER NOT NULL DEFAULT 0,
    undecodable            INTEGER NOT NULL DEFAULT 0,
    kmsg_records           INTEGER NOT NULL DEFAULT 0,
    kmsg_lost              INTEGER NOT NULL DEFAULT 0,
    without_kernel_report  INTEGER NOT NULL DEFAULT 0,  -- no kmsg line ever joined
    snapshots_missed       INTEGER NOT NULL DEFAULT 0,
    write_failures         INTEGER NOT NULL DEFAULT 0,  -- messages never stored
    vmstat_oom_kill_start  INTEGER,           -- /proc/vmstat oom_kill at start
    vmstat_oom_kill_now    INTEGER            -- ... at the last update
);

CREATE INDEX daemon_runs_by_start ON daemon_runs (started_ns);
