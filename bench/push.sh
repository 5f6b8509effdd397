#!/usr/bin/env bash
# bench/push.sh — push of the ~120 MB Debian test image (one gzip layer of
# ~50 MB) to a local registry: `berth push` (daemonless, the image loaded into
# its root) vs `skopeo copy` of the same OCI layout, each into a registry
# emptied before every run (so every blob goes up), alternating rounds; then
# berth's second push, every blob already there. Prints medians, berth/skopeo
# (target ≤ 1.0×) and the second push (target ≤ 100 ms).
#
# Usage (as root):  bash bench/push.sh
#   BENCH_RUNS=N (default 6), BENCH_ROUNDS=N (default 3)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
# Needs Debian packages: debootstrap docker-registry skopeo umoci hyperfine jq
# curl (installed if missing). The image is built once with debootstrap and
# cached by tests/images/debian.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
runs=${BENCH_RUNS:-6}
rounds=${BENCH_ROUNDS:-3}
bench_need_root
bench_packages debootstrap docker-registry skopeo umoci hyperfine jq curl
bench_build_berth
layout=$(bash "$here/tests/images/debian.sh")
cache=$(dirname "$layout")

bench_workdir
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
bench_at_exit "bench_stop_pid $regpid"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

b=("$berth" --root "$work/berth" --config /dev/null)
loaded=$("${b[@]}" load -i "$cache/oci" | sed -n 's/^Loaded image: //p' | head -1)
img=127.0.0.1:$port/debian:bookworm
"${b[@]}" tag "$loaded" "$img"
size=$(jq '[.layers[].size] | add' "$cache/oci/blobs/sha256/$(jq -r '.manifests[0].digest' "$cache/oci/index.json" | cut -d: -f2)")
echo "image $img: $size bytes of layers" >&2
empty="rm -rf $work/registry/docker"
# One untimed run of each first: a failure shows its output here.
$empty && "${b[@]}" push -q "$img" >/dev/null
$empty && skopeo copy -q --dest-tls-verify=false --insecure-policy "oci:$cache/oci:latest" "docker://$img"
per=$(( (runs + rounds - 1) / rounds ))
for r in $(seq 1 "$rounds"); do
    hyperfine -N --style basic --runs "$per" --prepare "$empty" --export-json "$work/round-$r.json" \
        -n "berth push" "${b[*]} push -q $img" \
        -n "skopeo copy" "skopeo copy -q --dest-tls-verify=false --insecure-policy oci:$cache/oci:latest docker://$img" >/dev/null
    echo "round $r of $rounds done" >&2
done
"${b[@]}" push -q "$img" >/dev/null
hyperfine -N --style basic --warmup 1 --runs 10 --export-json "$work/again.json" \
    -n "berth push (all present)" "${b[*]} push -q $img" >/dev/null
bench_merge_rounds "$work"/round-*.json "$work/again.json" >"$work/results.json"
echo
jq -r '
  def ms: . * 1000 | . * 100 | round / 100;
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | ["command", "runs", "median ms", "mean ms", "min ms"],
    (.results[] | [.command, .runs, (.median | ms), (.mean | ms), (.min | ms)]),
    [],
    ["berth/skopeo median", ($m."berth push" / $m."skopeo copy" * 1000 | round / 1000), "target <= 1.0"],
    ["second push median ms", ($m."berth push (all present)" | ms), "target <= 100"]
  | @tsv' "$work/results.json" | column -t -s $'\t'
