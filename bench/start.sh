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
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=${BENCH_RUNS:-200}
rounds=${BENCH_ROUNDS:-5}
warmup=${BENCH_WARMUP:-10}
with_berth=${BENCH_BERTH:-1}

bench_need_root "it creates containers"
bench_packages hyperfine runc crun jq /bin/busybox:busybox-static
[ "$with_berth" = 0 ] || bench_build_berth

bench_workdir
bundle=$work/bundle
bench_busybox_rootfs "$bundle/rootfs"
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

if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && [ -d /sys/fs/cgroup/memory ]; then
    echo "hybrid cgroups: running all runtimes with /sys/fs/cgroup/unified covered by a tmpfs" >&2
    # One shell runs all rounds, so the workaround is set up once.
    unshare -m --propagation private bash -c \
        'set -e; umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=64m none /sys/fs/cgroup/unified
         . "$1"; shift; bench_rounds "$@"' \
        bash "$bench_lib" "$runs" "$rounds" "$warmup" "$work" "${cmds[@]}"
else
    bench_rounds "$runs" "$rounds" "$warmup" "$work" "${cmds[@]}"
fi

# All rounds' run times per command, with median, mean, stddev and min over them.
bench_merge_rounds "$work"/round-*.json >"$work/results.json"

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
