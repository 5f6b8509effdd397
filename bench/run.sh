#!/usr/bin/env bash
# bench/run.sh — `run --rm busybox true` through a warm daemon, image
# present, with `--network none` and on the default bridge network: berth (its
# daemon, its CLI) vs docker (Debian's docker.io: dockerd + containerd + runc)
# vs podman (Debian's podman, daemonless, runc; `none` only), in one hyperfine
# run with alternating rounds; prints medians and the ratios berth/docker for
# both networks (target ≤ 0.15× each) and berth/podman.
#
# Usage (as root):  bash bench/run.sh
#   BENCH_RUNS=N       runs per engine (default 50), BENCH_WARMUP=N per round (default 2)
#   BENCH_ROUNDS=N     split the runs into N alternating rounds (default 5)
#   BENCH_DOCKER=0     leave docker out;  BENCH_PODMAN=0  leave podman out
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#
# Everything lives in one temp dir, removed at exit with whatever ran in it:
# berth's root and socket; dockerd's data root, exec root, pid file and
# socket, with dockerd (and the containerd it starts) inside a network
# namespace made for it (`nsenter --net`, not `ip netns exec`, which remounts
# /sys and hides the cgroups), and berth's daemon inside another: their
# bridges (docker0, berth0), NAT rules and ip_forward live there, and the
# host's network is never touched; podman's --root/--runroot/--tmpdir. podman runs
# with --cgroup-manager cgroupfs --events-backend file --runtime runc and
# `--ulimit nofile=20000:20000 --ulimit nproc=32768:32768` (this machine's
# bounding set lacks CAP_SYS_RESOURCE: podman's default rlimits fail).
# All three run the same image: a busybox OCI layout made with umoci, loaded
# into berth, then `berth save` (a docker-save tar) loaded into docker/podman.
# hyperfine runs one command's runs back to back, so a slow spell of this
# shared 2-core machine would land on one engine only: the runs are split into
# rounds that alternate the engines, and medians are over all rounds' runs.
# Needs Debian packages: hyperfine jq umoci busybox-static curl, and docker.io
# / podman unless left out (installed with apt-get if missing, saying so; their
# package scripts are kept from starting services by a policy-rc.d).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${BENCH_RUNS:-50}
rounds=${BENCH_ROUNDS:-5}
warmup=${BENCH_WARMUP:-2}
with_docker=${BENCH_DOCKER:-1}
with_podman=${BENCH_PODMAN:-1}
berth=${BERTH_BIN:-$here/target/release/berth}

[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root (it starts daemons and containers)" >&2; exit 1; }

need=()
for pair in hyperfine:hyperfine jq:jq umoci:umoci curl:curl /bin/busybox:busybox-static; do
    cmd=${pair%%:*} pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -x "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
done
[ "$with_docker" = 0 ] || command -v dockerd >/dev/null || need+=(docker.io)
[ "$with_podman" = 0 ] || command -v podman >/dev/null || need+=(podman)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench/run.sh: installing missing Debian packages: ${need[*]}" >&2
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Keep docker.io's and podman's package scripts from starting services.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
docker_cli=$(command -v docker || true)
[ "$with_docker" = 0 ] || [ -n "$docker_cli" ] || { echo "bench/run.sh: no docker CLI" >&2; exit 1; }

if [ ! -x "$berth" ]; then
    echo "bench/run.sh: $berth missing; building it (cargo build --release -p berth)" >&2
    (cd "$here" && cargo build --release -p berth)
fi

work=$(mktemp -d /tmp/berth-bench-run-XXXXXX)
ns=berth-bench-run-$$ bns=berth-bench-runb-$$
bpid='' dpid='' dcpid='' made_ns=0 made_bns=0
# Paths dockerd/containerd/podman may create outside --data-root & co; removed
# at exit only if they did not exist before.
leftovers=()
for p in /etc/docker/key.json /run/containerd /var/lib/containers/cache /run/docker /run/libpod /etc/cni; do
    [ -e "$p" ] || leftovers+=("$p")
done
# Left empty by them: runc's default state root (podman's runc) and the
# cgroupfs parents docker and podman make in every hierarchy; removed with
# rmdir (only if empty) at exit if they did not exist before.
empty_dirs=()
[ -e /run/runc ] || empty_dirs+=(/run/runc)
for c in /sys/fs/cgroup/*/; do for n in docker libpod_parent; do [ -e "$c$n" ] || empty_dirs+=("$c$n"); done; done
# The docker CLI's own config in the temp dir (podman reads it too, for auth).
export DOCKER_CONFIG=$work/docker-cli
mkdir -p "$DOCKER_CONFIG" && echo "{}" >"$DOCKER_CONFIG/config.json"

stop_pid() {  # PID [seconds]: SIGTERM, wait, then SIGKILL
    local pid=$1 t=${2:-20}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
shim_pids() {  # PIDs of `berth shim` monitors of containers under our root
    local f c
    for f in /proc/[0-9]*/cmdline; do
        { c=$(tr '\0' ' ' <"$f"); } 2>/dev/null || continue
        case "$c" in *" shim --runtime-root $work/berth/runtime "*) f=${f#/proc/}; echo "${f%/cmdline}" ;; esac
    done
}
cleanup() {
    set +e
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$("$berth" -H "unix://$work/berth.sock" ps -aq 2>/dev/null)
        [ -z "$ids" ] || "$berth" -H "unix://$work/berth.sock" rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$bpid"
    # Monitors of containers the daemon could not remove (their cmdline names our root).
    for p in $(shim_pids); do kill -KILL "$p" 2>/dev/null; done
    if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
        ids=$("$docker_cli" -H "unix://$work/docker.sock" ps -aq 2>/dev/null)
        [ -z "$ids" ] || "$docker_cli" -H "unix://$work/docker.sock" rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$dpid" 30
    stop_pid "$dcpid" 10
    # Mounts left beneath the temp dir (overlay roots, docker's private binds), deepest first.
    for m in $(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    [ "$made_ns" = 0 ] || ip netns del "$ns"
    [ "$made_bns" = 0 ] || ip netns del "$bns"
    for p in "${leftovers[@]}"; do rm -rf "$p"; done
    for p in "${empty_dirs[@]}"; do [ ! -d "$p" ] || find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

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

# berth: load the image with the daemonless CLI, then start the daemon.
root=$work/berth bsock=$work/berth.sock
"$berth" --root "$root" --config /dev/null load -i "$layout" -q >/dev/null
"$berth" --root "$root" --config /dev/null tag localhost/busybox:latest busybox:latest
ip netns add "$bns" && made_bns=1
ip -n "$bns" link set lo up
nsenter --net="/run/netns/$bns" "$berth" daemon --root "$root" --config /dev/null -H "unix://$bsock" >"$work/berth-daemon.log" 2>&1 &
bpid=$!
wait_ping() {  # SOCKET PID NAME LOG
    for _ in $(seq 300); do
        curl -fs --unix-socket "$1" http://d/_ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/run.sh: $3 did not come up; its log:" >&2; tail -20 "$4" >&2; exit 1
}
wait_ping "$bsock" "$bpid" "berth daemon" "$work/berth-daemon.log"
berth_c=("$berth" -H "unix://$bsock")
"${berth_c[@]}" run --rm --network none busybox true   # fails loudly here, not in hyperfine
"${berth_c[@]}" run --rm busybox true
"${berth_c[@]}" save -o "$work/busybox.tar" busybox:latest

cmds=(-n berth "$berth -H unix://$bsock run --rm --network none busybox true"
      -n berth-bridge "$berth -H unix://$bsock run --rm busybox true")

if [ "$with_docker" != 0 ]; then
    ip netns add "$ns" && made_ns=1
    ip -n "$ns" link set lo up
    mkdir -p "$work/docker"
    nsenter --net="/run/netns/$ns" dockerd --data-root "$work/docker/data" \
        --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
        -H "unix://$work/docker.sock" \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    wait_ping "$work/docker.sock" "$dpid" dockerd "$work/dockerd.log"
    dcpid=$(pgrep -P "$dpid" -x containerd || true)
    docker_c=("$docker_cli" -H "unix://$work/docker.sock")
    "${docker_c[@]}" load -q -i "$work/busybox.tar" >/dev/null
    "${docker_c[@]}" run --rm --network none busybox true
    "${docker_c[@]}" run --rm busybox true
    echo "docker: $("${docker_c[@]}" version -f 'server {{.Server.Version}}, client {{.Client.Version}}'), containerd $(containerd --version | awk '{print $3}'), $(runc --version | head -1)" >&2
    cmds+=(-n docker "$docker_cli -H unix://$work/docker.sock run --rm --network none busybox true"
           -n docker-bridge "$docker_cli -H unix://$work/docker.sock run --rm busybox true")
fi

if [ "$with_podman" != 0 ]; then
    pg="podman --root $work/podman/root --runroot $work/podman/run --tmpdir $work/podman/tmp"
    pg+=" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc"
    if podman --help 2>/dev/null | grep -q -- --network-config-dir; then
        pg+=" --network-config-dir $work/podman/net"
    fi
    $pg load -q -i "$work/busybox.tar" >/dev/null
    pr="run --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 busybox true"
    $pg $pr
    echo "podman: $(podman --version)" >&2
    cmds+=(-n podman "$pg $pr")
fi

per_round=$(( (runs + rounds - 1) / rounds ))
for r in $(seq 1 "$rounds"); do
    hyperfine -N --style basic --warmup "$warmup" --runs "$per_round" \
        --export-json "$work/round-$r.json" "${cmds[@]}" >/dev/null
    echo "round $r of $rounds done" >&2
done
left=$("${berth_c[@]}" ps -aq | wc -l)
[ "$left" = 0 ] || echo "bench/run.sh: berth has $left containers left after --rm runs" >&2

jq -s '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  [.[].results[]] | group_by(.command)
  | {results: map(
      [.[].times[]] as $t
      | ($t | add / length) as $mean
      | {command: .[0].command, median: ($t | median), mean: $mean, min: ($t | min),
         stddev: (($t | map((. - $mean) * (. - $mean)) | add / length) | sqrt),
         runs: ($t | length)})}' "$work"/round-*.json >"$work/results.json"

echo
jq -r '
  def ms: . * 1000 | . * 100 | round / 100;
  def r: . * 1000 | round / 1000;
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | ["engine", "runs", "median ms", "mean ms", "stddev ms", "min ms"],
    (.results | sort_by(.median)[] | [.command, .runs, (.median | ms), (.mean | ms), (.stddev // 0 | ms), (.min | ms)]),
    [],
    (if $m.docker then ["berth/docker median (none)", ($m.berth / $m.docker | r), "target <= 0.15"] else empty end),
    (if $m."docker-bridge" then ["berth/docker median (bridge)", ($m."berth-bridge" / $m."docker-bridge" | r), "target <= 0.15"] else empty end),
    (if $m.podman then ["berth/podman median", ($m.berth / $m.podman | r)] else empty end)
  | @tsv' "$work/results.json" | column -t -s $'\t'
