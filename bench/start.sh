#!/usr/bin/env bash
# bench/start.sh — container start latency: `berth runtime run` vs `runc run`
# vs `crun run` of one busybox bundle running /bin/true, in one hyperfine run.
#
# Usage (as root):  bash bench/start.sh
#   BENCH_BERTH=0      leave berth out (e.g. before it is built)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#   BENCH_RUNS=N       runs per runtime (default 200), BENCH_WARMUP=N (default 10)
#   BENCH_ROUNDS=N     split the runs into N alternating rounds (default 5)
#
# hyperfine runs one command's runs back to back, so a slow spell of the
# machine (page reclaim, a neighbour's job) lands on one runtime only. The
# runs are therefore split into rounds that alternate the runtimes, and the
# medians are taken over all rounds' runs together.
# Needs Debian packages: hyperfine runc crun busybox-static jq (installed with
# apt-get if missing, saying so).
#
# crun refuses hybrid cgroups (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified), so on such hosts all runtimes run inside one private
# mount namespace where that mount is covered by an empty tmpfs (64 MiB:
# crun leaves a directory with a cgroup.procs file there per run, and a
# full tmpfs fails it after ~250 runs in 1 MiB).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${BENCH_RUNS:-200}
rounds=${BENCH_ROUNDS:-5}
warmup=${BENCH_WARMUP:-10}
with_berth=${BENCH_BERTH:-1}
berth=${BERTH_BIN:-$here/target/release/berth}

[ "$(id -u)" = 0 ] || { echo "bench/start.sh: run as root (it creates containers)" >&2; exit 1; }

need=()
for pair in hyperfine:hyperfine runc:runc crun:crun jq:jq /bin/busybox:busybox-static; do
    cmd=${pair%%:*} pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -x "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
done
if [ ${#need[@]} -gt 0 ]; then
    echo "bench/start.sh: installing missing Debian packages: ${need[*]}" >&2
    apt-get update && apt-get install -y --no-install-recommends "${need[@]}"
fi

if [ "$with_berth" != 0 ] && [ ! -x "$berth" ]; then
    echo "bench/start.sh: $berth missing; building it (cargo build --release -p berth)" >&2
    (cd "$here" && cargo build --release -p berth)
fi

work=$(mktemp -d /tmp/berth-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
rootfs=$bundle/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list-full); do
    [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
(cd "$bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/true"]' "$bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$bundle/config.json"

# One command per runtime; `sh -c 'exec …'` only to give every run a fresh
# container id ($$). The same wrapper costs every runtime the same; its cost
# alone is the "sh -c exec true" row.
cmds=(-n "sh -c exec true (wrapper baseline)" "sh -c 'exec /bin/true'")
cmds+=(-n crun "sh -c 'exec crun --root $work/crun run -b $bundle bench-crun-\$\$'")
cmds+=(-n runc "sh -c 'exec runc --root $work/runc run -b $bundle bench-runc-\$\$'")
if [ "$with_berth" != 0 ]; then
    cmds+=(-n berth "sh -c 'exec $berth runtime --root $work/berth run -b $bundle bench-berth-\$\$'")
fi
per_round=$(( (runs + rounds - 1) / rounds ))
# One shell runs all rounds, so the hybrid-cgroup workaround below is set up once.
round_script='
    work=$1 warmup=$2 per_round=$3 rounds=$4; shift 4
    for r in $(seq 1 "$rounds"); do
        hyperfine -N --style basic --warmup "$warmup" --runs "$per_round" \
            --export-json "$work/round-$r.json" "$@" >/dev/null || exit 1
        echo "round $r of $rounds done" >&2
    done'
run_rounds=(sh -c "$round_script" sh "$work" "$warmup" "$per_round" "$rounds" "${cmds[@]}")

if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && [ -d /sys/fs/cgroup/memory ]; then
    echo "hybrid cgroups: running all runtimes with /sys/fs/cgroup/unified covered by a tmpfs" >&2
    unshare -m --propagation private sh -c \
        'umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=64m none /sys/fs/cgroup/unified && exec "$@"' \
        sh "${run_rounds[@]}"
else
    "${run_rounds[@]}"
fi

# All rounds' run times per command, with median, mean, stddev and min over them.
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
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | ["runtime", "runs", "median ms", "mean ms", "stddev ms", "min ms"],
    (.results[] | [.command, .runs, (.median | ms), (.mean | ms), (.stddev // 0 | ms), (.min | ms)]),
    [],
    (if $m.berth then
        ["berth/crun median", ($m.berth / $m.crun * 100 | round / 100)],
        ["berth/runc median", ($m.berth / $m.runc * 100 | round / 100)]
     else empty end),
    ["runc/crun median", ($m.runc / $m.crun * 100 | round / 100)]
  | @tsv' "$work/results.json" | column -t -s $'\t'
