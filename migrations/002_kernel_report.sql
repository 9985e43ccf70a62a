-- 002: the kernel's own report joins each record, and kills can be known
-- from the kernel log alone (recovered after downtime, or imported).
--
-- Rebuilds `kills` (SQLite cannot relax NOT NULL in place) so that time,
-- boot id and boot clock may be unknown: an imported `dmesg` line has no boot
-- id, and a kill recovered from the kernel log has no eBPF boot-clock stamp.

CREATE TABLE kills_v2 (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT    NOT NULL DEFAULT 'kill', -- 'kill', or 'exiting' (marked, not killed)
    time_ns            INTEGER,           -- wall clock at the kill, Unix ns
    boot_id            TEXT,              -- /proc/sys/kernel/random/boot_id
    boot_ns            INTEGER,           -- CLOCK_BOOTTIME at the kill (eBPF)
    mono_ns            INTEGER,           -- CLOCK_MONOTONIC at the kill (eBPF)
    kmsg_usec          INTEGER,           -- kernel log stamp of the Killed process line
    recorded_ns        INTEGER NOT NULL,
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
    trigger_uid        INTEGER,
    trigger_gfp_mask   TEXT,
    trigger_order      INTEGER,
    cgroup             TEXT,
    memory_limit_bytes INTEGER,
    oom_constraint     TEXT,              -- CONSTRAINT_MEMCG, CONSTRAINT_NONE, ...
    oom_cgroup         TEXT,              -- the cgroup whose limit was hit
    task_cgroup        TEXT,              -- the victim's own memory cgroup
    oom_json           TEXT,              -- the whole `oom` object (usage, stat, tasks, ...)
    report_lines       TEXT,              -- JSON array: this kill's raw kernel lines
    fingerprint        TEXT               -- identity of an imported kill (import twice = once)
);

INSERT INTO kills_v2 (id, time_ns, boot_id, boot_ns, mono_ns, recorded_ns, sources,
    victim_pid, victim_tgid, victim_comm, victim_uid, total_vm_kb, anon_rss_kb, file_rss_kb,
    shmem_rss_kb, pgtables_kb, oom_score_adj, trigger_pid, trigger_tgid, trigger_comm,
    cgroup, memory_limit_bytes)
SELECT id, time_ns, boot_id, boot_ns, mono_ns, recorded_ns, sources,
    victim_pid, victim_tgid, victim_comm, victim_uid, total_vm_kb, anon_rss_kb, file_rss_kb,
    shmem_rss_kb, pgtables_kb, oom_score_adj, trigger_pid, trigger_tgid, trigger_comm,
    cgroup, memory_limit_bytes
FROM kills;

DROP TABLE kills;
ALTER TABLE kills_v2 RENAME TO kills;

CREATE UNIQUE INDEX kills_by_event ON kills (boot_id, boot_ns, victim_pid);
CREATE INDEX kills_by_time ON kills (time_ns);
CREATE INDEX kills_by_victim ON kills (boot_id, victim_pid);
CREATE UNIQUE INDEX kills_by_fingerprint ON kills (fingerprint);

-- How far the daemon has read the kernel log of each boot: on start it
-- resumes after this record, so catch-up neither misses nor repeats.
CREATE TABLE kmsg_cursor (
    boot_id TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL
);

-- Small named values the daemon keeps between runs (the journal cursor).
CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
