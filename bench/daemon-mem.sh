#!/usr/bin/env bash
# bench/daemon-mem.sh — memory of berth's daemon: idle right after start (the
# default storage plugin loaded; target RSS ≤ 15 MB), then what each running
# container costs the engine with N `sleep 1000` containers up (target ≤ 1 MB
# per container); dockerd + containerd (+ containerd-shim-runc-v2) the same
# way for comparison when docker is installed.
#
# Usage (as root):  bash bench/daemon-mem.sh
#   BENCH_N=N          containers to start (default 50)
#   BENCH_SETTLE=S     seconds to wait before each reading (default 2)
#   BENCH_DOCKER=0     leave docker out (it is measured only if dockerd is installed;
#                      bench/run.sh installs it)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#
# Figures: RSS (VmRSS) and PSS (Pss of /proc/PID/smaps_rollup) in MB (MiB).
# Each container is monitored by its own `berth shim` process, which runs the
# same berth binary as the daemon: RSS counts those shared pages in full in
# every process, PSS divides each shared page among the processes mapping it,
# so PSS sums add up. Per container = (daemon PSS after − daemon PSS idle +
# Σ shim PSS) / N; the containers' own processes (sleep) are not counted.
# docker's per-container figure is the same over dockerd + containerd +
# the containerd-shim-runc-v2 processes. dockerd runs in a network namespace
# made for it (`nsenter --net`), --iptables=false --bridge=none, everything
# in one temp dir removed at exit with whatever ran in it.
# Needs Debian packages: umoci busybox-static curl (installed if missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_N:-50}
settle=${BENCH_SETTLE:-2}
with_docker=${BENCH_DOCKER:-1}
berth=${BERTH_BIN:-$here/target/release/berth}

[ "$(id -u)" = 0 ] || { echo "bench/daemon-mem.sh: run as root (it starts daemons and containers)" >&2; exit 1; }

need=()
for pair in umoci:umoci curl:curl /bin/busybox:busybox-static; do
    cmd=${pair%%:*} pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -x "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
done
if [ ${#need[@]} -gt 0 ]; then
    echo "bench/daemon-mem.sh: installing missing Debian packages: ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
docker_cli=$(command -v docker || true)
if [ "$with_docker" != 0 ] && { ! command -v dockerd >/dev/null || [ -z "$docker_cli" ]; }; then
    echo "bench/daemon-mem.sh: dockerd not installed; measuring berth only (bench/run.sh installs docker.io)" >&2
    with_docker=0
fi

if [ ! -x "$berth" ]; then
    echo "bench/daemon-mem.sh: $berth missing; building it (cargo build --release -p berth)" >&2
    (cd "$here" && cargo build --release -p berth)
fi

work=$(mktemp -d /tmp/berth-bench-mem-XXXXXX)
ns=berth-bench-mem-$$
root=$work/berth bsock=$work/berth.sock
bpid='' dpid='' dcpid='' made_ns=0
leftovers=()
for p in /etc/docker/key.json /run/containerd /run/docker; do [ -e "$p" ] || leftovers+=("$p"); done
# The cgroupfs parent docker makes in every hierarchy: removed with rmdir
# (only if empty) at exit if it did not exist before.
empty_dirs=()
for c in /sys/fs/cgroup/*/; do [ -e "${c}docker" ] || empty_dirs+=("${c}docker"); done
export DOCKER_CONFIG=$work/docker-cli

stop_pid() {  # PID [seconds]: SIGTERM, wait, then SIGKILL
    local pid=$1 t=${2:-20}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
pids_matching() {  # PATTERN (a shell glob over the space-joined cmdline)
    local f c
    for f in /proc/[0-9]*/cmdline; do
        { c=$(tr '\0' ' ' <"$f"); } 2>/dev/null || continue
        # shellcheck disable=SC2254
        case "$c" in $1) f=${f#/proc/}; echo "${f%/cmdline}" ;; esac
    done
}
shim_pids() { pids_matching "* shim --runtime-root $root/runtime *"; }
docker_shim_pids() { pids_matching "*containerd-shim-runc-v2 *-address $work/docker/exec/*"; }
cleanup() {
    set +e
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$("$berth" -H "unix://$bsock" ps -aq 2>/dev/null)
        [ -z "$ids" ] || "$berth" -H "unix://$bsock" rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$bpid"
    for p in $(shim_pids); do kill -KILL "$p" 2>/dev/null; done
    if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
        ids=$("$docker_cli" -H "unix://$work/docker.sock" ps -aq 2>/dev/null)
        [ -z "$ids" ] || "$docker_cli" -H "unix://$work/docker.sock" rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$dpid" 30
    stop_pid "$dcpid" 10
    for p in $(docker_shim_pids); do kill -KILL "$p" 2>/dev/null; done
    for m in $(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    [ "$made_ns" = 0 ] || ip netns del "$ns"
    for p in "${leftovers[@]}"; do rm -rf "$p"; done
    for p in "${empty_dirs[@]}"; do [ ! -d "$p" ] || find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; done
    [ "${made_bns:-0}" = 0 ] || ip netns del "$bns"
    rm -rf "$work"
}
trap cleanup EXIT

# kB of RSS and PSS summed over PIDs (smaps_rollup; a PID gone meanwhile counts 0).
mem() {
    local rss=0 pss=0 r p pid
    for pid in "$@"; do
        read -r r p < <(awk '/^Rss:/ {r = $2} /^Pss:/ {p = $2} END {print r + 0, p + 0}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0 0)
        rss=$((rss + r)) pss=$((pss + p))
    done
    echo "$rss $pss"
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# The biggest mappings of a process by RSS, grouped by what they map and
# their permissions; "private" is what no other process shares (for a file
# mapping: pages the process wrote, e.g. relocated .data.rel.ro).
top_maps() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6) " " $2}
         /^Rss:/ {rss[name] += $2} /^Pss:/ {pss[name] += $2}
         /^Private_(Clean|Dirty):/ {prv[name] += $2}
         END {for (k in rss) if (rss[k] >= 200)
                  printf "%8.1f MB RSS %6.1f MB PSS %6.1f MB private  %s\n", rss[k] / 1024, pss[k] / 1024, prv[k] / 1024, k}' \
        "/proc/$1/smaps" | sort -rn | head -"${2:-8}"
}
wait_ping() {  # SOCKET PID NAME LOG
    for _ in $(seq 300); do
        curl -fs --unix-socket "$1" http://d/_ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/daemon-mem.sh: $3 did not come up; its log:" >&2; tail -20 "$4" >&2; exit 1
}

# The busybox image: an OCI layout made with umoci (as tests/src/images.rs).
layout=$work/busybox bundle=$work/umoci-bundle   # loads as localhost/busybox:latest
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$bundle" >/dev/null
rootfs=$bundle/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,var,mnt,tmp}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
umoci repack --image "$layout:latest" "$bundle"
umoci config --image "$layout:latest" --config.cmd /bin/sh \
    --config.env PATH=/bin:/sbin:/usr/bin --config.workingdir /
rm -rf "$bundle"

# Loading first also compiles the default plugins into <root>/plugin-cache,
# so the daemon below starts as it would on any day but the first.
"$berth" --root "$root" --config /dev/null load -i "$layout" -q >/dev/null
"$berth" --root "$root" --config /dev/null tag localhost/busybox:latest busybox:latest
# In a network namespace of its own: berth0, its rules and ip_forward stay there.
bns=berth-bench-memb-$$
ip netns add "$bns" && made_bns=1
ip -n "$bns" link set lo up
nsenter --net="/run/netns/$bns" "$berth" daemon --root "$root" --config /dev/null -H "unix://$bsock" >"$work/berth-daemon.log" 2>&1 &
bpid=$!
wait_ping "$bsock" "$bpid" "berth daemon" "$work/berth-daemon.log"
sleep "$settle"
read -r b_rss0 b_pss0 < <(mem "$bpid")
b_hwm0=$(awk '/^VmHWM:/ {print $2}' "/proc/$bpid/status")
b_thr0=$(awk '/^Threads:/ {print $2}' "/proc/$bpid/status")
echo "berth daemon idle: its largest mappings" >&2
top_maps "$bpid" >&2

bc=("$berth" -H "unix://$bsock")
echo "starting $n berth containers (sleep 1000)" >&2
for _ in $(seq "$n"); do "${bc[@]}" run -d --network none busybox sleep 1000 >/dev/null; done
sleep "$settle"
running=$("${bc[@]}" ps -q | wc -l)
[ "$running" = "$n" ] || { echo "bench/daemon-mem.sh: $running berth containers running, not $n" >&2; exit 1; }
mapfile -t shims < <(shim_pids)
[ "${#shims[@]}" = "$n" ] || echo "bench/daemon-mem.sh: ${#shims[@]} berth shims for $n containers" >&2
read -r b_rss1 b_pss1 < <(mem "$bpid")
read -r s_rss s_pss < <(mem "${shims[@]}")
b_thr1=$(awk '/^Threads:/ {print $2}' "/proc/$bpid/status")
echo "berth daemon with $n containers: its largest mappings" >&2
top_maps "$bpid" >&2
echo "one berth shim: its largest mappings" >&2
top_maps "${shims[0]}" 6 >&2

if [ "$with_docker" != 0 ]; then
    ip netns add "$ns" && made_ns=1
    ip -n "$ns" link set lo up
    mkdir -p "$work/docker"
    nsenter --net="/run/netns/$ns" dockerd --data-root "$work/docker/data" \
        --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
        -H "unix://$work/docker.sock" --iptables=false --ip-masq=false --bridge=none \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    wait_ping "$work/docker.sock" "$dpid" dockerd "$work/dockerd.log"
    dcpid=$(pgrep -P "$dpid" -x containerd || true)
    [ -n "$dcpid" ] || { echo "bench/daemon-mem.sh: no containerd under dockerd" >&2; exit 1; }
    dc=("$docker_cli" -H "unix://$work/docker.sock")
    "${bc[@]}" save -o "$work/busybox.tar" busybox:latest
    "${dc[@]}" load -q -i "$work/busybox.tar" >/dev/null
    sleep "$settle"
    read -r d_rss0 d_pss0 < <(mem "$dpid")
    read -r c_rss0 c_pss0 < <(mem "$dcpid")
    echo "starting $n docker containers (sleep 1000)" >&2
    for _ in $(seq "$n"); do "${dc[@]}" run -d --network none busybox sleep 1000 >/dev/null; done
    sleep "$settle"
    running=$("${dc[@]}" ps -q | wc -l)
    [ "$running" = "$n" ] || { echo "bench/daemon-mem.sh: $running docker containers running, not $n" >&2; exit 1; }
    mapfile -t dshims < <(docker_shim_pids)
    read -r d_rss1 d_pss1 < <(mem "$dpid")
    read -r c_rss1 c_pss1 < <(mem "$dcpid")
    read -r ds_rss ds_pss < <(mem "${dshims[@]}")
fi

echo
{
    echo -e "what\tRSS MB\tPSS MB\tnote"
    echo -e "berth daemon, idle\t$(mb "$b_rss0")\t$(mb "$b_pss0")\tpeak RSS $(mb "$b_hwm0") MB, $b_thr0 threads; target RSS <= 15 MB"
    echo -e "berth daemon, $n containers\t$(mb "$b_rss1")\t$(mb "$b_pss1")\t$b_thr1 threads"
    echo -e "berth shims, $n (sum)\t$(mb "$s_rss")\t$(mb "$s_pss")\tone berth shim each"
    echo -e "berth per container\t$(mb $(( (b_rss1 - b_rss0 + s_rss) / n )))\t$(mb $(( (b_pss1 - b_pss0 + s_pss) / n )))\t(daemon growth + shims) / $n; target <= 1 MB (PSS)"
    if [ "$with_docker" != 0 ]; then
        echo -e "dockerd + containerd, idle\t$(mb $((d_rss0 + c_rss0)))\t$(mb $((d_pss0 + c_pss0)))\tdockerd $(mb "$d_rss0") + containerd $(mb "$c_rss0") MB RSS"
        echo -e "dockerd + containerd, $n containers\t$(mb $((d_rss1 + c_rss1)))\t$(mb $((d_pss1 + c_pss1)))\tdockerd $(mb "$d_rss1") + containerd $(mb "$c_rss1") MB RSS"
        echo -e "containerd-shim-runc-v2, ${#dshims[@]} (sum)\t$(mb "$ds_rss")\t$(mb "$ds_pss")\t"
        echo -e "docker per container\t$(mb $(( (d_rss1 + c_rss1 - d_rss0 - c_rss0 + ds_rss) / n )))\t$(mb $(( (d_pss1 + c_pss1 - d_pss0 - c_pss0 + ds_pss) / n )))\t(daemons' growth + shims) / $n"
    fi
} | column -t -s $'\t'
echo "per container counts PSS: the shims run the daemon's binary and share its pages,"
echo "which RSS counts in full in every process (containers' own processes not counted)"
echo
awk -v b="$b_rss0" 'BEGIN {printf "berth daemon idle RSS / 15 MB target: %.2f\n", b / 1024 / 15}'
awk -v p="$(( (b_pss1 - b_pss0 + s_pss) / n ))" 'BEGIN {printf "berth per-container PSS / 1 MB target: %.2f\n", p / 1024}'
if [ "$with_docker" != 0 ]; then
    awk -v b="$b_rss0" -v d="$((d_rss0 + c_rss0))" 'BEGIN {printf "berth daemon / (dockerd + containerd) idle RSS: %.3f\n", b / d}'
    awk -v b="$(( b_pss1 - b_pss0 + s_pss ))" -v d="$(( d_pss1 + c_pss1 - d_pss0 - c_pss0 + ds_pss ))" \
        'BEGIN {printf "berth / docker per-container PSS: %.3f\n", b / d}'
fi
