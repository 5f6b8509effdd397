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
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=${BENCH_RUNS:-50}
rounds=${BENCH_ROUNDS:-5}
warmup=${BENCH_WARMUP:-2}
with_docker=${BENCH_DOCKER:-1}
with_podman=${BENCH_PODMAN:-1}

bench_need_root "it starts daemons and containers"
pkgs=(hyperfine jq umoci curl /bin/busybox:busybox-static)
[ "$with_docker" = 0 ] || pkgs+=(dockerd:docker.io)
[ "$with_podman" = 0 ] || pkgs+=(podman)
bench_packages "${pkgs[@]}"
docker_cli=$(command -v docker || true)
[ "$with_docker" = 0 ] || [ -n "$docker_cli" ] || { echo "$me: no docker CLI" >&2; exit 1; }
bench_build_berth

bench_workdir
# Paths dockerd/containerd/podman may create outside --data-root & co; removed
# at exit only if they did not exist before.
bench_remove_at_exit /etc/docker/key.json /run/containerd /var/lib/containers/cache /run/docker /run/libpod /etc/cni
# Left empty by them: runc's default state root (podman's runc) and the
# cgroupfs parents docker and podman make in every hierarchy; removed with
# rmdir (only if empty) at exit if they did not exist before.
bench_rmdir_at_exit /run/runc
for c in /sys/fs/cgroup/*/; do bench_rmdir_at_exit "${c}docker" "${c}libpod_parent"; done

# berth: the busybox image loaded with the daemonless CLI, then the daemon.
bench_berth_daemon
"${bc[@]}" run --rm --network none busybox true   # fails loudly here, not in hyperfine
"${bc[@]}" run --rm busybox true
"${bc[@]}" save -o "$work/busybox.tar" busybox:latest

cmds=(-n berth "$berth -H unix://$bsock run --rm --network none busybox true"
      -n berth-bridge "$berth -H unix://$bsock run --rm busybox true")

if [ "$with_docker" != 0 ]; then
    bench_dockerd
    "${dc[@]}" load -q -i "$work/busybox.tar" >/dev/null
    "${dc[@]}" run --rm --network none busybox true
    "${dc[@]}" run --rm busybox true
    echo "docker: $("${dc[@]}" version -f 'server {{.Server.Version}}, client {{.Client.Version}}'), containerd $(containerd --version | awk '{print $3}'), $(runc --version | head -1)" >&2
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

bench_rounds "$runs" "$rounds" "$warmup" "$work" "${cmds[@]}"
left=$("${bc[@]}" ps -aq | wc -l)
[ "$left" = 0 ] || echo "$me: berth has $left containers left after --rm runs" >&2

bench_merge_rounds "$work"/round-*.json >"$work/results.json"

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
