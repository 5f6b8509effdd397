#!/usr/bin/env bash
# tests/images/debian.sh — builds the larger test image once: a Debian
# bookworm minbase rootfs (debootstrap, from the machine's configured Debian
# mirror; ~120 MB unpacked, one ~50 MB gzip layer) packed as an OCI layout
# with umoci, cached in $BERTH_DEBIAN_IMAGE (default /var/tmp/berth-debian).
# Prints the layout's path (`oci` in the cache). Used by .ci/run before the
# tests (tests/tests/images_debian.rs) and by bench/pull.sh.
# Needs root and the Debian packages debootstrap and umoci.
set -euo pipefail
cache=${BERTH_DEBIAN_IMAGE:-/var/tmp/berth-debian}
if [ ! -f "$cache/oci/index.json" ]; then
    for p in debootstrap umoci; do
        command -v "$p" >/dev/null || { echo "$0: $p is missing: apt-get install $p" >&2; exit 1; }
    done
    # The first active `URIs:` (deb822) or `deb` line that points at a Debian archive.
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -v '^#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    tmp="$cache.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    echo "building the Debian test image with debootstrap from $mirror (once)" >&2
    debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >/dev/null
    umoci init --layout "$tmp/oci"
    umoci new --image "$tmp/oci:latest"
    umoci unpack --image "$tmp/oci:latest" "$tmp/bundle" >/dev/null
    rm -rf "$tmp/bundle/rootfs" && mv "$tmp/rootfs" "$tmp/bundle/rootfs"
    umoci repack --image "$tmp/oci:latest" "$tmp/bundle"
    umoci config --image "$tmp/oci:latest" --config.cmd /bin/bash
    rm -rf "$tmp/bundle" "$cache"
    mv "$tmp" "$cache"
    trap - EXIT
fi
echo "$cache/oci"
