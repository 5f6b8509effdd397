#!/usr/bin/env bash
# examples/quickstart.sh — on a fresh Debian 12 machine, as root: install what
# berth needs, build it, make a busybox image, serve it from a local registry
# (Debian's docker-registry on a free loopback port), then `berth pull` it and
# `berth run` a real container from it, first without a daemon, then through
# `berth daemon` (the Docker Engine API) with the berth CLI and, when there is
# one, the docker CLI. This is the README's first command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends busybox-static libseccomp-dev pkg-config gcc libc6-dev \
    docker-registry skopeo umoci curl python3 nftables iproute2 util-linux >/dev/null
rustup target add wasm32-wasip2
cargo build --release -p berth
berth=$PWD/target/release/berth

work=$(mktemp -d /tmp/berth-quickstart-XXXXXX)
cleanup() {
    [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null
    if [ -n "${daemonpid:-}" ]; then
        kill "$daemonpid" 2>/dev/null
        wait "$daemonpid" 2>/dev/null || true
    fi
    [ -z "${netns:-}" ] || ip netns del "$netns"
    rm -rf "$work"
}
trap cleanup EXIT

# A busybox image, packed as an OCI layout by umoci.
umoci init --layout "$work/oci"
umoci new --image "$work/oci:latest"
umoci unpack --image "$work/oci:latest" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$rootfs/bin/"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
umoci repack --image "$work/oci:latest" "$work/bundle"
umoci config --image "$work/oci:latest" --config.cmd /bin/sh --config.env PATH=/bin

# A local registry on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false --insecure-policy "oci:$work/oci:latest" "docker://127.0.0.1:$port/busybox:latest"

# berth: pull through the registry plugin, unpack with the overlay plugin, run.
export BERTH_ROOT=$work/berth BERTH_CONFIG=/dev/null
"$berth" pull "127.0.0.1:$port/busybox"
"$berth" images
"$berth" run --rm "127.0.0.1:$port/busybox" sh -c 'echo "hello from $(hostname), pid $$"; ps; ls /sys/class/net'

# The same through the daemon: it owns the containers; the CLI is its client.
# The daemon gets a network namespace of its own here, so that its default
# bridge (berth0), NAT rules and published ports stay out of this machine's
# network while you try it (on a real host, run it as is: it makes berth0 as
# docker makes docker0). Its root gets the image with `save` + `load`.
unset BERTH_ROOT
"$berth" --root "$work/berth" save -o "$work/busybox.tar" "127.0.0.1:$port/busybox"
"$berth" --root "$work/berthd" load -q -i "$work/busybox.tar"
netns=berth-quickstart-$$
ip netns add "$netns" && ip -n "$netns" link set lo up
nsenter --net="/run/netns/$netns" "$berth" daemon --root "$work/berthd" --config /dev/null \
    -H "unix://$work/berth.sock" 2>"$work/daemon.log" &
daemonpid=$!
export BERTH_HOST=unix://$work/berth.sock
for _ in $(seq 100); do "$berth" ps >/dev/null 2>&1 && break; sleep 0.1; done
id=$("$berth" run -d --name hello -p 8080:80 "127.0.0.1:$port/busybox" \
    sh -c 'echo "hello from the daemon" | tee /tmp/index.html; httpd -p 80 -h /tmp; sleep 1000')
"$berth" ps
"$berth" exec hello sh -c 'echo "exec in $(hostname), $(ip -o -4 addr show eth0 | cut -d" " -f7)"'
"$berth" run --rm "127.0.0.1:$port/busybox" wget -qO- http://hello/index.html   # by name
nsenter --net="/run/netns/$netns" curl -s http://127.0.0.1:8080/index.html      # published port
"$berth" logs hello
if command -v docker >/dev/null; then
    DOCKER_HOST=$BERTH_HOST docker ps
fi
"$berth" rm -f "$id" >/dev/null

