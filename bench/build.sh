#!/usr/bin/env bash
# bench/build.sh — `build` of a 5-step Dockerfile (FROM busybox, RUN, COPY
# of 10 MB, ENV, CMD), uncached (--no-cache) and fully cached, through each
# warm daemon: berth (its daemon, its CLI) vs Debian's dockerd with the
# classic builder (the 20.10 client, DOCKER_BUILDKIT=0) and with BuildKit
# (DOCKER_BUILDKIT=1), alternating rounds; prints medians and berth/classic
# (target <= 0.5x for both) and berth's cached build (target <= 30 ms).
# Every uncached run makes new dangling images; all of it goes with the
# temp dir.
#
# Usage (as root):  bash bench/build.sh
#   BENCH_RUNS=N (default 20), BENCH_ROUNDS=N (default 4), BENCH_WARMUP=N (default 1)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#   DOCKER_CLI=PATH    the docker client (default /opt/docker-20.10/docker, as
#                      .ci/run unpacks it; docker 28 without buildx has no BuildKit)
# Needs Debian packages: hyperfine jq umoci busybox-static curl docker.io
# (installed if missing).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
runs=${BENCH_RUNS:-20}
rounds=${BENCH_ROUNDS:-4}
warmup=${BENCH_WARMUP:-1}

bench_need_root "it starts daemons and containers"
bench_packages hyperfine jq umoci curl /bin/busybox:busybox-static dockerd:docker.io
docker_cli=${DOCKER_CLI:-/opt/docker-20.10/docker}
[ -x "$docker_cli" ] || docker_cli=$(command -v docker || true)
[ -n "$docker_cli" ] || { echo "$me: no docker CLI" >&2; exit 1; }
bench_build_berth
bench_workdir
bench_remove_at_exit /etc/docker/key.json /run/containerd /run/docker
bench_rmdir_at_exit /run/runc

ctx=$work/context
mkdir -p "$ctx"
head -c 10485760 /dev/urandom >"$ctx/big"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest
RUN echo built > /built
COPY big /big
ENV MODE=bench
CMD ["cat", "/built"]
DOCKERFILE

bench_berth_daemon
"${bc[@]}" save -o "$work/busybox.tar" busybox:latest
bench_dockerd
"${dc[@]}" load -q -i "$work/busybox.tar" >/dev/null
# One build of each first (this also fills each cache): a failure shows
# here, not inside hyperfine.
"${bc[@]}" build -q "$ctx" >/dev/null
DOCKER_BUILDKIT=0 "${dc[@]}" build -q "$ctx" >/dev/null
DOCKER_BUILDKIT=1 "${dc[@]}" build -q "$ctx" >/dev/null

dsock="unix://$work/docker.sock"
bench_rounds "$runs" "$rounds" "$warmup" "$work" \
    -n berth-uncached "$berth -H unix://$bsock build -q --no-cache $ctx" \
    -n classic-uncached "env DOCKER_BUILDKIT=0 $docker_cli -H $dsock build -q --no-cache $ctx" \
    -n buildkit-uncached "env DOCKER_BUILDKIT=1 $docker_cli -H $dsock build -q --no-cache $ctx" \
    -n berth-cached "$berth -H unix://$bsock build -q $ctx" \
    -n classic-cached "env DOCKER_BUILDKIT=0 $docker_cli -H $dsock build -q $ctx" \
    -n buildkit-cached "env DOCKER_BUILDKIT=1 $docker_cli -H $dsock build -q $ctx"
bench_merge_rounds "$work"/round-*.json >"$work/results.json"
echo
jq -r '
  def ms: . * 1000 | . * 100 | round / 100;
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | ["build", "runs", "median ms", "mean ms", "min ms"],
    (.results | sort_by(.command)[] | [.command, .runs, (.median | ms), (.mean | ms), (.min | ms)]),
    [],
    ["berth/classic uncached", ($m["berth-uncached"] / $m["classic-uncached"] * 1000 | round / 1000), "target <= 0.5"],
    ["berth/classic cached", ($m["berth-cached"] / $m["classic-cached"] * 1000 | round / 1000), "target <= 0.5"],
    ["berth/buildkit uncached", ($m["berth-uncached"] / $m["buildkit-uncached"] * 1000 | round / 1000), ""],
    ["berth/buildkit cached", ($m["berth-cached"] / $m["buildkit-cached"] * 1000 | round / 1000), ""],
    ["berth cached ms", ($m["berth-cached"] | ms), "target <= 30"]
  | @tsv' "$work/results.json" | column -t -s $'\t'
