#!/usr/bin/env bash
# bench/many.sh — many containers through berth's daemon: start N `sleep 1000`
# containers (`run -d`) from parallel clients, report containers/second and
# that all N are running, then remove them all (`rm -f`, parallel too) and
# check nothing is left: no containers, no `berth shim` processes, no mounts
# beneath berth's root (host's and daemon's mount tables), no cgroup
# directories /sys/fs/cgroup/*/berth/<id>, no per-container state (the
# container's and the runtime's directories, the monitor's socket, the overlay
# plugin's snapshot).
#
# Usage (as root):  bash bench/many.sh
#   BENCH_N=N          containers (default 500)
#   BENCH_PARALLEL=P   concurrent clients (default 8, xargs -P)
#   BENCH_BATCH=B      start them in batches of B to show the rate as the
#                      count grows (default 100)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#
# Everything lives in one temp dir (berth's root, its socket, the image),
# removed at exit with whatever ran in it. Exits 1 if a container failed to
# start or anything is left after the removal.
# Needs Debian packages: umoci busybox-static curl (installed if missing).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

n=${BENCH_N:-500}
par=${BENCH_PARALLEL:-8}
batch=${BENCH_BATCH:-100}

bench_need_root "it starts a daemon and containers"
bench_packages umoci curl /bin/busybox:busybox-static
bench_build_berth

bench_workdir
cgroup_dirs() {  # cgroup directories of the containers whose ids are in $work/ids
    local id
    [ -s "$work/ids" ] || return 0
    while read -r id; do
        [ -n "$id" ] || continue
        for d in /sys/fs/cgroup/*/berth/"$id" /sys/fs/cgroup/*/*/berth/"$id"; do [ -d "$d" ] && echo "$d"; done
    done <"$work/ids"
    return 0
}
remove_cgroups() {  # processes of containers whose monitor was killed at exit, then their cgroups
    local d p
    for d in $(cgroup_dirs); do
        for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    sleep 0.2
    for d in $(cgroup_dirs); do rmdir "$d" 2>/dev/null; done
}
bench_at_exit remove_cgroups

bench_berth_daemon
: >"$work/ids"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.1f", n / (b - a)}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

echo "starting $n containers (run -d busybox sleep 1000), $par clients at a time" >&2
failed=0 started=0
t0=$(now)
while [ "$started" -lt "$n" ]; do
    k=$(( n - started < batch ? n - started : batch ))
    tb=$(now)
    seq "$k" | xargs -P "$par" -I{} "${bc[@]}" run -d --network none busybox sleep 1000 \
        >>"$work/ids" 2>>"$work/run-errors" || failed=1
    te=$(now)
    started=$((started + k))
    echo "  containers $((started - k + 1))-$started: $(secs "$tb" "$te") s, $(rate "$k" "$tb" "$te") containers/s" >&2
done
t1=$(now)
running=$("${bc[@]}" ps -q | wc -l)
shims=$(bench_shim_pids | wc -l)
fds=$(ls "/proc/$bpid/fd" | wc -l)
mounts_of() { cat /proc/self/mountinfo "/proc/$bpid/mountinfo" | awk -v r="$root/" 'index($5, r) == 1' | sort -u | wc -l; }
state_of() {  # per-container files and directories left for the ids in $work/ids
    local id k=0 d
    while read -r id; do
        for d in "$root/containers/$id" "$root/runtime/$id" "$root/sock/${id:0:16}"* "$root/plugins/overlay/snapshots/$id"; do
            [ -e "$d" ] && k=$((k + 1))
        done
    done <"$work/ids"
    echo "$k"
}
run_mounts=$(mounts_of) run_cg=$(cgroup_dirs | wc -l) run_state=$(state_of)
threads=$(awk '/^Threads:/ {print $2}' "/proc/$bpid/status")
drss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$bpid/status")
if [ "$failed" != 0 ]; then
    echo "bench/many.sh: some runs failed; first errors:" >&2; sort "$work/run-errors" | uniq -c | sort -rn | head -5 >&2
fi

echo "removing them (rm -f, $par clients at a time, 25 ids each)" >&2
t2=$(now)
"${bc[@]}" ps -aq | xargs -r -P "$par" -n 25 "${bc[@]}" rm -f >/dev/null 2>"$work/rm-errors" || failed=1
t3=$(now)
sleep 1   # monitors exit after their container is gone

left_ctr=$("${bc[@]}" ps -aq | wc -l)
left_shims=$(bench_shim_pids | wc -l)
left_mounts=$(mounts_of)
left_cg=$(cgroup_dirs | wc -l)
left_dirs=$(state_of)

echo
echo "started:  $(wc -l <"$work/ids") of $n in $(secs "$t0" "$t1") s = $(rate "$n" "$t0" "$t1") containers/s ($par parallel clients)"
echo "running:  $running (berth ps -q | wc -l), $shims berth shims, $run_mounts rootfs mounts, $run_cg cgroup dirs, $run_state state files/dirs"
echo "          daemon at $running containers: ${drss} MB RSS, $threads threads, $fds fds"
echo "removed:  in $(secs "$t2" "$t3") s = $(rate "$n" "$t2" "$t3") containers/s"
echo "left:     $left_ctr containers, $left_shims shims, $left_mounts mounts under the root, $left_cg cgroup dirs, $left_dirs state files/dirs"
ok=1
[ "$running" = "$n" ] && [ "$failed" = 0 ] || ok=0
[ "$left_ctr" = 0 ] && [ "$left_shims" = 0 ] && [ "$left_mounts" = 0 ] && [ "$left_cg" = 0 ] && [ "$left_dirs" = 0 ] || ok=0
if [ "$ok" = 1 ]; then echo "PASS: all $n ran, nothing left"; else echo "FAIL"; [ ! -s "$work/rm-errors" ] || head -5 "$work/rm-errors"; exit 1; fi
