#!/bin/busybox sh
# /init of the kernel-matrix guest (busybox sh). Brings up the memory
# controller on cgroup v2 (or, with oomt.cgroup=v1 on the kernel command line,
# as a cgroup v1 hierarchy), starts the freshly built recorder, makes real OOM
# kills, then prints the kernel log and the recorder's records between
# markers on the console for the host (tests/kernels/matrix.rs) to compare.
# Victims are copies of dd and busybox named oomt-*, so their comm is unique.
#
# Kernel command line (set by matrix.rs):
#   oomt.cgroup=v1|v2        the memory controller's hierarchy (default v2)
#   oomt.groups=N,M,...      memory.oom.group kills of N tasks each (v2 only)
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
# tracefs is left unmounted on purpose: the recorder must mount it itself.

fail() { echo "=== GUEST FAILED: $*"; poweroff -f; }
# Guest seconds since boot at each phase, for the host's timing figures.
stamp() { echo "=== TIME $1 $(cut -d' ' -f1 /proc/uptime)"; }
vmstat_oom_kill() { sed -n 's/^oom_kill //p' /proc/vmstat; }
# The eBPF program's own counters (victims seen, events dropped because the
# ring buffer was full), read from the kernel with bpftool: what reached the
# ring buffer even when the daemon never got to read its counters.
bpf_counters() { bpftool map dump name COUNTERS -j 2>&1 | tr -d '\n '; }
# print_gz NAME: stdin as a gzip+base64 section (serial output is slow
# under TCG; a 5,000-task group kill's log and records are megabytes).
print_gz() {
    echo "=== $1 GZ BEGIN"
    gzip -c | base64
    echo "=== $1 GZ END"
}

cgroup=v2
groups=""
for arg in $(cat /proc/cmdline); do
    case $arg in
        oomt.cgroup=*) cgroup=${arg#*=} ;;
        oomt.groups=*) groups=$(echo "${arg#*=}" | tr ',' ' ') ;;
    esac
done

case $cgroup in
    v2)
        CG=/sys/fs/cgroup
        mount -t cgroup2 cgroup2 $CG
        echo +memory > $CG/cgroup.subtree_control || fail "cannot enable the memory controller"
        ;;
    v1)
        # The layout of a hybrid systemd host (and of the CI host): the memory
        # controller on its own v1 hierarchy, cgroup2 without it beside.
        mount -t tmpfs cgroup /sys/fs/cgroup
        mkdir /sys/fs/cgroup/memory /sys/fs/cgroup/unified
        mount -t cgroup -o memory memory /sys/fs/cgroup/memory || fail "cannot mount the v1 memory hierarchy"
        mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
        CG=/sys/fs/cgroup/memory
        [ -e $CG/memory.usage_in_bytes ] || fail "no memory.usage_in_bytes on the v1 hierarchy"
        grep -q '^[0-9]*:memory:/$' /proc/self/cgroup || fail "/proc/self/cgroup has no v1 memory line"
        ;;
    *) fail "unknown oomt.cgroup=$cgroup" ;;
esac
echo "=== GUEST kernel $(uname -r) $(uname -v)"
echo "=== GUEST cgroup $cgroup"
echo "=== GUEST cpus $(grep -c ^processor /proc/cpuinfo) memory $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
stamp init

oomrecorder run --db /tmp/oom.db > /tmp/daemon.log 2>&1 &
daemon=$!
i=0
until grep -q "attached oom_mark_victim" /tmp/daemon.log; do
    i=$((i + 1))
    [ $i -gt 600 ] && { cat /tmp/daemon.log; fail "recorder not attached after 60 s"; }
    kill -0 $daemon 2>/dev/null || { cat /tmp/daemon.log; fail "recorder exited"; }
    sleep 0.1
done
stamp attached

# What the recorder finds on this kernel (BTF, attach point, each field),
# once the daemon has mounted tracefs, so that doctor also reads the
# tracepoint's format; the host checks it and keeps it in the console log.
echo "=== DOCTOR BEGIN"
oomrecorder doctor
echo "=== DOCTOR EXIT $?"
echo "=== DOCTOR END"
echo "=== DOCTOR JSON BEGIN"
oomrecorder doctor --json | tr -d '\n'
echo
echo "=== DOCTOR JSON END"
echo "=== MARK_VICTIM FORMAT BEGIN"
cat /sys/kernel/tracing/events/oom/mark_victim/format
echo "=== MARK_VICTIM FORMAT END"

# new_cgroup NAME LIMIT: a child with a hard limit (bytes or `max`) and no swap.
new_cgroup() {
    mkdir $CG/$1 || fail "mkdir cgroup $1"
    if [ $cgroup = v2 ]; then
        echo $2 > $CG/$1/memory.max || fail "memory.max of $1"
        [ -e $CG/$1/memory.swap.max ] && echo 0 > $CG/$1/memory.swap.max
    else
        [ $2 = max ] && return
        echo $2 > $CG/$1/memory.limit_in_bytes || fail "memory.limit_in_bytes of $1"
        # memsw must stay >= the limit; equal means no swap for the cgroup.
        [ -e $CG/$1/memory.memsw.limit_in_bytes ] && echo $2 > $CG/$1/memory.memsw.limit_in_bytes
    fi
}

# (a) single kills: one dd allocating 4x the limit, three times.
new_cgroup single 32M
for n in 1 2 3; do
    sh -c "echo \$\$ > $CG/single/cgroup.procs && exec /bin/oomt-single if=/dev/zero of=/dev/null bs=128M count=1"
done
echo "=== INODE /single $(stat -c %i $CG/single)"
stamp singles

# (b) memory.oom.group kills: TASKS-1 sleepers and one hog, all killed
# together. The sleepers are forked, without an exec, by one small static
# program inside the cgroup (tests/kernels/sleepers.rs, installed as
# oomt-sleeper: its children's comm), which then leaves it and reaps them;
# the limit is set once they all run, 64 MiB above what they use, and the
# hog's 256 MiB buffer crosses it.
group_kill() {
    name=$1 tasks=$2
    new_cgroup $name max
    echo 1 > $CG/$name/memory.oom.group || fail "memory.oom.group of $name"
    rm -f /tmp/spawned
    want=$((tasks - 1))
    sh -c "echo \$\$ > $CG/$name/cgroup.procs && exec /bin/oomt-sleeper $want $CG/cgroup.procs /tmp/spawned" &
    spawner=$!
    i=0
    # It creates the file once every child is forked and it has left.
    until [ -e /tmp/spawned ]; do
        kill -0 $spawner 2>/dev/null || fail "the sleepers of $name did not start"
        i=$((i + 1)); [ $i -gt 3000 ] && fail "$want sleepers of $name did not start"; sleep 0.1
    done
    [ "$(wc -l < $CG/$name/cgroup.procs)" -eq $want ] || fail "$name holds $(wc -l < $CG/$name/cgroup.procs) tasks, want $want"
    usage=$(cat $CG/$name/memory.current)
    echo $((usage + (64 << 20))) > $CG/$name/memory.max || fail "memory.max of $name"
    stamp "$name-started"
    echo "=== GROUP $name tasks $tasks usage $usage"
    before=$(vmstat_oom_kill)
    echo "=== COUNTERS $name before $(bpf_counters)"
    sh -c "echo \$\$ > $CG/$name/cgroup.procs && exec /bin/oomt-grphog if=/dev/zero of=/dev/null bs=256M count=1"
    stamp "$name-hog-killed"
    wait $spawner
    i=0
    while [ -s $CG/$name/cgroup.procs ]; do
        i=$((i + 1)); [ $i -gt 1200 ] && fail "$name not emptied"; sleep 0.1
    done
    stamp "$name-emptied"
    echo "=== COUNTERS $name after $(bpf_counters)"
    echo "=== GROUP $name vmstat_oom_kill $(($(vmstat_oom_kill) - before))"
    # kn->id of each test cgroup is its directory's inode number.
    echo "=== INODE /$name $(stat -c %i $CG/$name)"
}
if [ $cgroup = v2 ]; then
    g=0
    for tasks in $groups; do
        g=$((g + 1))
        group_kill group$g $tasks
    done
fi

echo "=== VMSTAT oom_kill $(vmstat_oom_kill)"
# Under TCG the daemon stores a 5,000-task group kill for a while after the
# kernel is done: status is the daemon's account once it has stored every
# kill the kernel counted (up to 180 s; its audit takes off the chosen
# victim of each group kill, which vmstat counts twice).
# A deadline on the guest's clock, not a count of tries: each try is a
# process start, seconds under TCG.
deadline=$(( $(cut -d. -f1 /proc/uptime) + 180 ))
until missing=$(oomrecorder status --json --db /tmp/oom.db | tr -d '\n ' | sed -n 's/.*"missing":\([0-9]*\).*/\1/p') &&
      [ -n "$missing" ] && [ "$missing" -eq 0 ]; do
    [ "$(cut -d. -f1 /proc/uptime)" -gt $deadline ] && { echo "=== STORE WAIT gave up, missing $missing"; break; }
    sleep 1
done
stamp stored
# The daemon's own account of every stage (losses by stage, the audit)
# while it runs; status re-reads a mismatch for up to 7 s.
echo "=== STATUS BEGIN"
oomrecorder status --json --db /tmp/oom.db | tr -d '\n'
echo
echo "=== STATUS END"
stamp status
kill -TERM $daemon
# The daemon's peak RSS (VmHWM) until it exits.
while hwm=$(sed -n 's/^VmHWM: *//p' /proc/$daemon/status 2>/dev/null) && [ -n "$hwm" ]; do
    peak=$hwm
    sleep 0.5
done
wait $daemon
echo "=== DAEMON EXIT $?"
echo "=== DAEMON PEAK RSS $peak"
stamp stopped

# Every record's list row; `show --json` in full for the single kills and,
# of each group, for the hog and a sample of 5 members (each `show` is a
# process start, most of a second under TCG). Before the kernel log is
# printed, so that it also holds any kill of these commands.
oomrecorder list --json-lines --limit 1000000 --db /tmp/oom.db > /tmp/list.jsonl
echo "=== LIST EXIT $?"
awk -v groups="$groups" '
    BEGIN { n = split(groups, t, " "); for (i = 1; i <= n; i++) stride["\"/group" i "\""] = int(t[i] / 5) > 1 ? int(t[i] / 5) : 1 }
    {
        id = $0; sub(/.*"id":/, "", id); sub(/[,}].*/, "", id)
        cg = $0; sub(/.*"cgroup":/, "", cg); sub(/,.*/, "", cg)
        if (!(cg in stride) || $0 ~ /"comm":"oomt-grphog"/ || seen[cg]++ % stride[cg] == 0) print id
    }' /tmp/list.jsonl > /tmp/show-ids
failed=0
for id in $(cat /tmp/show-ids); do
    oomrecorder show "$id" --json --db /tmp/oom.db > /tmp/show.json || failed=$((failed + 1))
    tr -d '\n' < /tmp/show.json
    echo
done > /tmp/records.jsonl
echo "=== SHOW FAILED $failed"
stamp shown
dmesg | print_gz KMSG
echo "=== LIST BEGIN"
cat /tmp/list.jsonl
echo "=== LIST END"
print_gz RECORDS < /tmp/records.jsonl
print_gz "DAEMON LOG" < /tmp/daemon.log
stamp printed
poweroff -f
