#!/usr/bin/env bash
# bench/commit.sh — `commit` of an ended container whose writable layer holds
# a 10 MB change (incompressible bytes), through each warm daemon: berth (its
# daemon, its CLI) vs docker (Debian's docker.io), alternating rounds;
# prints medians and berth/docker (target ≤ 0.5×). Every run makes a new
# dangling image of 10 MB in both engines; all of it goes with the temp dir.
#
# Usage (as root):  bash bench/commit.sh
#   BENCH_RUNS=N (default 20), BENCH_ROUNDS=N (default 4), BENCH_WARMUP=N (default 1)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
# Needs Debian packages: hyperfine jq umoci busybox-static curl docker.io
# (installed if missing).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
runs=${BENCH_RUNS:-20}
rounds=${BENCH_ROUNDS:-4}
warmup=${BENCH_WARMUP:-1}

bench_need_root "it starts daemons and containers"
bench_packages hyperfine jq umoci curl /bin/busybox:busybox-static dockerd:docker.io
docker_cli=$(command -v docker || true)
[ -n "$docker_cli" ] || { echo "$me: no docker CLI" >&2; exit 1; }
bench_build_berth
bench_workdir
bench_remove_at_exit /etc/docker/key.json /run/containerd /run/docker
bench_rmdir_at_exit /run/runc

change='head -c 10485760 /dev/urandom > /change && sync'
bench_berth_daemon
"${bc[@]}" run --name changed --network none busybox sh -c "$change"
"${bc[@]}" save -o "$work/busybox.tar" busybox:latest
bench_dockerd
"${dc[@]}" load -q -i "$work/busybox.tar" >/dev/null
"${dc[@]}" run --name changed --network none busybox sh -c "$change"
# One commit of each first: a failure shows here, not inside hyperfine.
"${bc[@]}" commit changed >/dev/null
"${dc[@]}" commit changed >/dev/null

bench_rounds "$runs" "$rounds" "$warmup" "$work" \
    -n berth "$berth -H unix://$bsock commit changed" \
    -n docker "$docker_cli -H unix://$work/docker.sock commit changed"
bench_merge_rounds "$work"/round-*.json >"$work/results.json"
echo
jq -r '
  def ms: . * 1000 | . * 100 | round / 100;
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | ["engine", "runs", "median ms", "mean ms", "min ms"],
    (.results | sort_by(.median)[] | [.command, .runs, (.median | ms), (.mean | ms), (.min | ms)]),
    [],
    ["berth/docker median", ($m.berth / $m.docker * 1000 | round / 1000), "target <= 0.5"]
  | @tsv' "$work/results.json" | column -t -s $'\t'
