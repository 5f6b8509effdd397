#!/usr/bin/env bash
# bench/plugin.sh — what a plugin call costs the host (issue 3): a fresh
# instance of a precompiled plugin plus one cheap export call (target: p50 ≤
# 50 µs) and one host call (target: ≤ 1 µs), measured by
# core/host/examples/plugin_bench.rs; prints a table with PASS/MISS.
#
# Usage: bash bench/plugin.sh [--iters N] [--host-calls N] [--rounds N]
#   defaults: 10000 calls of each export; host calls: 21 rounds of 100000.
# Builds berth-host's example in release (wasmtime too: several minutes the
# first time). Needs the wasm32-wasip2 target (rustup target add wasm32-wasip2)
# for the default plugins and the test fixture. No root needed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$here"
exec cargo run --release --quiet --example plugin_bench -p berth-host -- "$@"
