#!/usr/bin/env bash
# bench/daemon-mem.sh — memory of berth's daemon as a new user meets it:
#   1. first start on a fresh root (empty root, the root's own empty compile
#      cache, a network namespace of its own): the time until the socket
#      answers, and the idle figure; the median of BENCH_STARTS starts
#      (target RSS ≤ 15 MB);
#   2. after a pull from a registry (Debian's docker-registry in the daemon's
#      namespace, the image pushed there with skopeo) and a `run --rm` on the
#      default bridge (target RSS ≤ 15 MB);
#   3. with N `sleep 1000` containers up: what each one costs (target ≤ 1 MB
#      PSS per container); then after all N are removed (target: within 1 MB
#      of the idle figure);
#   4. restarted on the same root (warm compile cache), idle; then after
#      loading an external plugin (examples/network-macvlan from berth.toml,
#      compiled on first use);
# and dockerd + containerd (+ containerd-shim-runc-v2) the same way for
# comparison when docker is installed.
#
# Usage (as root):  bash bench/daemon-mem.sh
#   BENCH_N=N          containers to start (default 50)
#   BENCH_STARTS=K     first starts on fresh roots (default 5)
#   BENCH_SETTLE=S     seconds to wait before each settled reading (default 2)
#   BENCH_DOCKER=0     leave docker out (it is measured only if dockerd is installed;
#                      bench/run.sh installs it)
#   BERTH_BIN=PATH     berth binary (default: target/release/berth, built if missing)
#
# Figures: RSS (VmRSS) and PSS (Pss of /proc/PID/smaps_rollup) in MB (MiB).
# A settled reading is taken BENCH_SETTLE seconds after the last request;
# "right after" is read as soon as the last command returned, before the
# daemon, idle for a second, gave back what it no longer uses (free heap,
# its mappings of code and compiled plugins; see core/cli/src/daemon/memory.rs).
# Each container is monitored by its own `berth shim` process, which runs the
# same berth binary as the daemon: RSS counts those shared pages in full in
# every process, PSS divides each shared page among the processes mapping it,
# so PSS sums add up. Per container = (daemon PSS with N − daemon PSS before
# + Σ shim PSS) / N; the containers' own processes (sleep) are not counted.
# docker's per-container figure is the same over dockerd + containerd +
# the containerd-shim-runc-v2 processes; dockerd runs with --iptables=false
# --bridge=none in a network namespace of its own.
# Needs Debian packages: umoci busybox-static curl docker-registry skopeo
# (installed if missing), and the wasm32-wasip2 target (for the example plugin).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

n=${BENCH_N:-50}
starts=${BENCH_STARTS:-5}
settle=${BENCH_SETTLE:-2}
with_docker=${BENCH_DOCKER:-1}

bench_need_root "it starts daemons and containers"
bench_packages umoci curl /bin/busybox:busybox-static /usr/bin/docker-registry:docker-registry skopeo
if [ "$with_docker" != 0 ] && { ! command -v dockerd >/dev/null || [ -z "$docker_cli" ]; }; then
    echo "$me: dockerd not installed; measuring berth only (bench/run.sh installs docker.io)" >&2
    with_docker=0
fi
bench_build_berth
bench_workdir mem
# The root's own plugin-cache (as a user has it), never a shared one.
unset BERTH_PLUGIN_CACHE

# kB of RSS and PSS summed over PIDs (smaps_rollup; a PID gone meanwhile counts 0).
mem() {
    local rss=0 pss=0 r p pid
    for pid in "$@"; do
        read -r r p < <(awk '/^Rss:/ {r = $2} /^Pss:/ {p = $2} END {print r + 0, p + 0}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0 0)
        rss=$((rss + r)) pss=$((pss + p))
    done
    echo "$rss $pss"
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
anon_kb() { awk '/^Anonymous:/ {print $2}' "/proc/$1/smaps_rollup"; }
rss_kb() { mem "$1" | cut -d' ' -f1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# The biggest mappings of a process by RSS, grouped by what they map and
# their permissions; "private" is what no other process shares.
top_maps() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6) " " $2}
         /^Rss:/ {rss[name] += $2} /^Pss:/ {pss[name] += $2}
         /^Private_(Clean|Dirty):/ {prv[name] += $2}
         END {for (k in rss) if (rss[k] >= 200)
                  printf "%8.1f MB RSS %6.1f MB PSS %6.1f MB private  %s\n", rss[k] / 1024, pss[k] / 1024, prv[k] / 1024, k}' \
        "/proc/$1/smaps" | sort -rn | head -"${2:-8}"
}
# reading NAME: the daemon's RSS and PSS (kB) once settled, into NAME_rss and
# NAME_pss; NAME_now is its RSS right away (before settling).
reading() {
    printf -v "${1}_now" '%s' "$(rss_kb "$bpid")"
    sleep "$settle"
    local r p
    read -r r p < <(mem "$bpid")
    printf -v "${1}_rss" '%s' "$r"
    printf -v "${1}_pss" '%s' "$p"
}
stop_berth() { bench_stop_pid "$bpid" || true; bpid=''; }

bench_busybox_image

# 1. First starts on fresh roots, each in a namespace of its own (the last
#    one's berth0 would be in the way).
fresh_ms=() fresh_rss=() fresh_pss=()
for i in $(seq "$starts"); do
    if [ "$i" -gt 1 ]; then
        stop_berth
        rm -rf "$root"
    fi
    root=$work/fresh-$i
    bns=berth-bench-mem$i-$$
    bench_netns "$bns"
    bench_start_berth /dev/null
    fresh_ms+=("$start_ms")
    reading one
    fresh_rss+=("$one_rss") fresh_pss+=("$one_pss")
done
first_ms=$(median "${fresh_ms[@]}")
idle_rss=$(median "${fresh_rss[@]}") idle_pss=$(median "${fresh_pss[@]}")
idle_now=$one_now
b_hwm0=$(awk '/^VmHWM:/ {print $2}' "/proc/$bpid/status")
b_thr0=$(awk '/^Threads:/ {print $2}' "/proc/$bpid/status")
b_anon0=$(anon_kb "$bpid")
echo "berth daemon idle on a fresh root: its largest mappings" >&2
top_maps "$bpid" >&2
grep -E 'compil|installed' "$work/berth-daemon.log" | tail -3 >&2 || true

# 2. A pull from a registry in the daemon's namespace, and a run --rm on the
#    default bridge.
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:5000\n' \
    "$work/registry/data" >"$work/registry/config.yml"
nsenter --net="/run/netns/$bns" /usr/bin/docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
rpid=$!
bench_at_exit 'bench_stop_pid "$rpid" 5'
for _ in $(seq 100); do
    nsenter --net="/run/netns/$bns" curl -fs http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && break
    sleep 0.1
done
nsenter --net="/run/netns/$bns" skopeo copy -q --dest-tls-verify=false \
    "oci:$layout:latest" docker://127.0.0.1:5000/busybox:latest
"${bc[@]}" pull -q 127.0.0.1:5000/busybox:latest >/dev/null
"${bc[@]}" tag 127.0.0.1:5000/busybox:latest busybox:latest
"${bc[@]}" run --rm busybox true
reading pulled
b_anon1=$(anon_kb "$bpid")
echo "berth daemon after a pull and a run --rm: its largest mappings" >&2
top_maps "$bpid" >&2

# 3. N containers; then all of them removed.
echo "starting $n berth containers (sleep 1000)" >&2
for _ in $(seq "$n"); do "${bc[@]}" run -d --network none busybox sleep 1000 >/dev/null; done
running=$("${bc[@]}" ps -q | wc -l)
[ "$running" = "$n" ] || { echo "$me: $running berth containers running, not $n" >&2; exit 1; }
reading many
mapfile -t shims < <(bench_shim_pids)
[ "${#shims[@]}" = "$n" ] || echo "$me: ${#shims[@]} berth shims for $n containers" >&2
read -r s_rss s_pss < <(mem "${shims[@]}")
b_thr1=$(awk '/^Threads:/ {print $2}' "/proc/$bpid/status")
echo "berth daemon with $n containers: its largest mappings" >&2
top_maps "$bpid" >&2
echo "one berth shim: its largest mappings" >&2
top_maps "${shims[0]}" 6 >&2
[ "$with_docker" = 0 ] || "${bc[@]}" save -o "$work/busybox.tar" busybox:latest
"${bc[@]}" ps -aq | xargs -n 50 "${bc[@]}" rm -f >/dev/null
reading gone
b_anon2=$(anon_kb "$bpid")

# 4. Restarted on the same root (warm cache), with an external plugin in
#    berth.toml; then that plugin loaded (compiled on first use).
macvlan=$here/target/wasm-examples/wasm32-wasip2/release/network_macvlan.wasm
(cd "$here/examples/network-macvlan" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET \
    cargo build -q --release --target wasm32-wasip2 --target-dir "$here/target/wasm-examples")
printf '[plugin.macvlan]\nkind = "network"\nwasm = "%s"\nlink-prefixes = ["mv"]\npools = ["10.99.0.0/16"]\nmacvlan-parents = ["par0"]\n' \
    "$macvlan" >"$work/berth.toml"
stop_berth
bench_start_berth "$work/berth.toml"
warm_ms=$start_ms
reading warm
ip -n "$bns" link add par0 type veth peer name par1
ip -n "$bns" link set par0 up
"${bc[@]}" network create -d macvlan --subnet 10.99.0.0/24 -o parent=par0 lan >/dev/null
reading external
echo "berth daemon after loading the macvlan plugin: its largest mappings" >&2
top_maps "$bpid" >&2
grep -E 'plugin="macvlan"' "$work/berth-daemon.log" | grep -E 'compil' | tail -2 >&2 || true
"${bc[@]}" network rm lan >/dev/null

if [ "$with_docker" != 0 ]; then
    bench_dockerd --iptables=false --ip-masq=false --bridge=none
    [ -n "$dcpid" ] || { echo "$me: no containerd under dockerd" >&2; exit 1; }
    "${dc[@]}" load -q -i "$work/busybox.tar" >/dev/null
    sleep "$settle"
    read -r d_rss0 d_pss0 < <(mem "$dpid")
    read -r c_rss0 c_pss0 < <(mem "$dcpid")
    echo "starting $n docker containers (sleep 1000)" >&2
    for _ in $(seq "$n"); do "${dc[@]}" run -d --network none busybox sleep 1000 >/dev/null; done
    sleep "$settle"
    running=$("${dc[@]}" ps -q | wc -l)
    [ "$running" = "$n" ] || { echo "$me: $running docker containers running, not $n" >&2; exit 1; }
    mapfile -t dshims < <(bench_pids_matching "*containerd-shim-runc-v2 *-address $work/docker/exec/*")
    read -r d_rss1 d_pss1 < <(mem "$dpid")
    read -r c_rss1 c_pss1 < <(mem "$dcpid")
    read -r ds_rss ds_pss < <(mem "${dshims[@]}")
fi

per_rss=$(( (many_rss - pulled_rss + s_rss) / n )) per_pss=$(( (many_pss - pulled_pss + s_pss) / n ))
echo
{
    echo -e "what\tRSS MB\tPSS MB\tright after\tnote"
    echo -e "berth daemon, first start on a fresh root\t-\t-\t-\t$first_ms ms to the socket answering (median of $starts: ${fresh_ms[*]} ms)"
    echo -e "berth daemon, idle, fresh root\t$(mb "$idle_rss")\t$(mb "$idle_pss")\t$(mb "$idle_now")\tmedian of $starts; anon $(mb "$b_anon0") MB, peak RSS $(mb "$b_hwm0") MB, $b_thr0 threads; target RSS <= 15 MB"
    echo -e "berth daemon, after pull + run --rm\t$(mb "$pulled_rss")\t$(mb "$pulled_pss")\t$(mb "$pulled_now")\tanon $(mb "$b_anon1") MB; target RSS <= 15 MB"
    echo -e "berth daemon, $n containers\t$(mb "$many_rss")\t$(mb "$many_pss")\t$(mb "$many_now")\t$b_thr1 threads"
    echo -e "berth shims, $n (sum)\t$(mb "$s_rss")\t$(mb "$s_pss")\t\tone berth shim each"
    echo -e "berth per container\t$(mb "$per_rss")\t$(mb "$per_pss")\t\t(daemon growth + shims) / $n; target <= 1 MB (PSS)"
    echo -e "berth daemon, after the $n came and went\t$(mb "$gone_rss")\t$(mb "$gone_pss")\t$(mb "$gone_now")\tanon $(mb "$b_anon2") MB; $(mb $((gone_rss - idle_rss))) MB over idle (target <= 1 MB)"
    echo -e "berth daemon, restarted (warm cache), idle\t$(mb "$warm_rss")\t$(mb "$warm_pss")\t$(mb "$warm_now")\t$warm_ms ms to the socket answering"
    echo -e "berth daemon, after loading an external plugin\t$(mb "$external_rss")\t$(mb "$external_pss")\t$(mb "$external_now")\tthe macvlan example, compiled on first use"
    if [ "$with_docker" != 0 ]; then
        echo -e "dockerd + containerd, idle\t$(mb $((d_rss0 + c_rss0)))\t$(mb $((d_pss0 + c_pss0)))\t\tdockerd $(mb "$d_rss0") + containerd $(mb "$c_rss0") MB RSS"
        echo -e "dockerd + containerd, $n containers\t$(mb $((d_rss1 + c_rss1)))\t$(mb $((d_pss1 + c_pss1)))\t\tdockerd $(mb "$d_rss1") + containerd $(mb "$c_rss1") MB RSS"
        echo -e "containerd-shim-runc-v2, ${#dshims[@]} (sum)\t$(mb "$ds_rss")\t$(mb "$ds_pss")\t\t"
        echo -e "docker per container\t$(mb $(( (d_rss1 + c_rss1 - d_rss0 - c_rss0 + ds_rss) / n )))\t$(mb $(( (d_pss1 + c_pss1 - d_pss0 - c_pss0 + ds_pss) / n )))\t\t(daemons' growth + shims) / $n"
    fi
} | column -t -s $'\t'
echo "per container counts PSS: the shims run the daemon's binary and share its pages,"
echo "which RSS counts in full in every process (containers' own processes not counted)"
echo
awk -v b="$idle_rss" 'BEGIN {printf "berth daemon idle RSS (fresh root) / 15 MB target: %.2f\n", b / 1024 / 15}'
awk -v b="$pulled_rss" 'BEGIN {printf "berth daemon RSS after pull + run --rm / 15 MB target: %.2f\n", b / 1024 / 15}'
awk -v b="$gone_rss" -v i="$idle_rss" 'BEGIN {printf "berth daemon RSS after %d containers came and went - idle: %.1f MB (target <= 1)\n", '"$n"', (b - i) / 1024}'
awk -v p="$per_pss" 'BEGIN {printf "berth per-container PSS / 1 MB target: %.2f\n", p / 1024}'
if [ "$with_docker" != 0 ]; then
    awk -v b="$warm_rss" -v d="$((d_rss0 + c_rss0))" 'BEGIN {printf "berth daemon / (dockerd + containerd) idle RSS: %.3f\n", b / d}'
    awk -v b="$((many_pss - pulled_pss + s_pss))" -v d="$((d_pss1 + c_pss1 - d_pss0 - c_pss0 + ds_pss))" \
        'BEGIN {printf "berth / docker per-container PSS: %.3f\n", b / d}'
fi
