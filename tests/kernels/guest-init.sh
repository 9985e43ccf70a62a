#!/bin/busybox sh
# /init of the kernel-matrix guest (busybox sh). Brings up cgroup2 with the
# memory controller, starts the freshly built recorder, makes real OOM kills,
# then prints the kernel log and the recorder's records between markers on
# the console for the host (tests/kernels/matrix.rs) to compare.
# Victims are copies of dd and sleep named oomt-*, so their comm is unique.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# tracefs is left unmounted on purpose: the recorder must mount it itself.

fail() { echo "=== GUEST FAILED: $*"; poweroff -f; }
echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "cannot enable the memory controller"
echo "=== GUEST kernel $(uname -r) $(uname -v)"

# What the recorder finds on this kernel (BTF, attach point, each field),
# before it runs; the host checks it and keeps it in the console log.
echo "=== DOCTOR BEGIN"
oomrecorder doctor
echo "=== DOCTOR EXIT $?"
echo "=== DOCTOR END"

oomrecorder run --db /tmp/oom.db > /tmp/daemon.log 2>&1 &
daemon=$!
i=0
until grep -q "attached oom_mark_victim" /tmp/daemon.log; do
    i=$((i + 1))
    [ $i -gt 600 ] && { cat /tmp/daemon.log; fail "recorder not attached after 60 s"; }
    kill -0 $daemon 2>/dev/null || { cat /tmp/daemon.log; fail "recorder exited"; }
    sleep 0.1
done

# new_cgroup NAME LIMIT: a v2 child with a hard limit and no swap.
new_cgroup() {
    mkdir /sys/fs/cgroup/$1 || fail "mkdir cgroup $1"
    echo $2 > /sys/fs/cgroup/$1/memory.max
    [ -e /sys/fs/cgroup/$1/memory.swap.max ] && echo 0 > /sys/fs/cgroup/$1/memory.swap.max
}

# (a) single kills: one dd allocating 4x the limit, three times.
new_cgroup single 32M
for n in 1 2 3; do
    sh -c 'echo $$ > /sys/fs/cgroup/single/cgroup.procs && exec /bin/oomt-single if=/dev/zero of=/dev/null bs=128M count=1'
done

# (b) a memory.oom.group kill: 49 sleepers and one hog, all killed together.
new_cgroup group 64M
echo 1 > /sys/fs/cgroup/group/memory.oom.group
n=0
sleepers=""
while [ $n -lt 49 ]; do
    sh -c 'echo $$ > /sys/fs/cgroup/group/cgroup.procs && exec /bin/oomt-sleeper 600' &
    sleepers="$sleepers $!"
    n=$((n + 1))
done
i=0
until [ "$(wc -l < /sys/fs/cgroup/group/cgroup.procs)" -ge 49 ]; do
    i=$((i + 1)); [ $i -gt 600 ] && fail "sleepers did not start"; sleep 0.1
done
sh -c 'echo $$ > /sys/fs/cgroup/group/cgroup.procs && exec /bin/oomt-grphog if=/dev/zero of=/dev/null bs=256M count=1'
for p in $sleepers; do wait $p; done
i=0
while [ -s /sys/fs/cgroup/group/cgroup.procs ]; do
    i=$((i + 1)); [ $i -gt 600 ] && fail "group not emptied"; sleep 0.1
done

# kn->id of each test cgroup is its directory's inode number.
echo "=== INODE /single $(stat -c %i /sys/fs/cgroup/single)"
echo "=== INODE /group $(stat -c %i /sys/fs/cgroup/group)"

sleep 1
kill -TERM $daemon
wait $daemon
echo "=== DAEMON EXIT $?"

echo "=== KMSG BEGIN"
dmesg
echo "=== KMSG END"
echo "=== RECORDS BEGIN"
for id in $(oomrecorder list --json --limit 100000 --db /tmp/oom.db | sed -n 's/^ *"id": \([0-9]*\),*$/\1/p'); do
    oomrecorder show "$id" --json --db /tmp/oom.db | tr -d '\n'
    echo
done
echo "=== RECORDS END"
echo "=== DAEMON LOG BEGIN"
cat /tmp/daemon.log
echo "=== DAEMON LOG END"
poweroff -f
