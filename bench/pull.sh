#!/usr/bin/env bash
# bench/pull.sh — pull + unpack of a ~120 MB Debian rootfs image (one gzip
# layer of ~50 MB) from a local registry: berth pull vs `skopeo copy` + `tar
# -xzf` of the layer vs `umoci unpack`, in one run, with ratios.
#
# Usage (as root): bash bench/pull.sh        BENCH_RUNS=N (default 3)
# Needs Debian packages: debootstrap docker-registry skopeo umoci hyperfine jq curl
# (installed if missing). The image is built once with debootstrap from the
# machine's configured Debian mirror and cached by tests/images/debian.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
runs=${BENCH_RUNS:-3}
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
skopeo copy -q --dest-tls-verify=false --insecure-policy "oci:$cache/oci:latest" "docker://127.0.0.1:$port/debian:bookworm"
img=127.0.0.1:$port/debian:bookworm
layer=$(skopeo inspect --tls-verify=false "docker://$img" | jq -r '.Layers[0]')
echo "image $img, layer $layer ($(skopeo inspect --tls-verify=false --raw "docker://$img" | jq '.layers[0].size') bytes gzip)" >&2

cat >"$work/skopeo-tar.sh" <<SH
set -e
rm -rf $work/s && mkdir -p $work/s/x
skopeo copy -q --src-tls-verify=false --insecure-policy docker://$img dir:$work/s/d
tar -xzf $work/s/d/${layer#sha256:} -C $work/s/x
SH
cat >"$work/umoci.sh" <<SH
set -e
rm -rf $work/u && mkdir -p $work/u && skopeo copy -q --src-tls-verify=false --insecure-policy docker://$img oci:$work/u/oci:latest
umoci unpack --image $work/u/oci:latest $work/u/bundle >/dev/null
SH
cat >"$work/berth.sh" <<SH
set -e
rm -rf $work/berth
$berth --root $work/berth --config /dev/null pull -q $img >/dev/null
SH
# One untimed run of each first: a failure shows its output here.
for s in skopeo-tar umoci berth; do bash "$work/$s.sh" || { echo "bench/pull.sh: $s.sh failed" >&2; exit 1; }; done
hyperfine --runs "$runs" --export-json "$work/r.json" \
    -n "skopeo copy + tar -xzf" "bash $work/skopeo-tar.sh" \
    -n "skopeo copy + umoci unpack" "bash $work/umoci.sh" \
    -n "berth pull" "bash $work/berth.sh"
jq -r '(.results|map({key:.command,value:.median})|from_entries) as $m
  | (.results[] | "\(.command): median \(.median*1000|round) ms"),
    "berth / (skopeo+tar): \(($m["berth pull"]/$m["skopeo copy + tar -xzf"])*100|round/100)",
    "berth / umoci: \(($m["berth pull"]/$m["skopeo copy + umoci unpack"])*100|round/100)"' "$work/r.json"
