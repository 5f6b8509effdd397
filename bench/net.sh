#!/usr/bin/env bash
# bench/net.sh — berth's networking against the plumbing it replaces, in one run:
#  1. attach + detach of a container to a bridge network: berth's own time
#     (the daemon logs each attach and detach with its duration; `network
#     connect` / `disconnect` of a running container, BENCH_RUNS times) vs the
#     same plumbing made with the `ip` command (veth into a namespace, enslave,
#     address, route, up; then delete) vs Debian's CNI `bridge` plugin
#     (containernetworking-plugins, host-local IPAM) invoked directly, ADD then
#     DEL. Target: berth's attach median ≤ 3 ms.
#  2. TCP throughput container ↔ container with iperf3 on a berth network vs a
#     bare veth + bridge pair made with `ip`. Target: ≥ 0.9× the bare pair.
#
# Usage (as root):  bash bench/net.sh
#   BENCH_RUNS=N    attach/detach runs (default 100)
#   BENCH_SECS=N    seconds per iperf3 run (default 5)
#   BERTH_BIN=PATH  berth binary (default: target/release/berth, built if missing)
#
# Everything happens in network namespaces made here (berth's daemon in its
# own; the `ip` and CNI baselines in theirs) and in one temp dir, all removed
# at exit: the host's network is never touched. iperf3 runs inside the busybox
# containers from read-only binds of the host's /usr, /lib and /lib64.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=${BENCH_RUNS:-100}
secs=${BENCH_SECS:-5}

bench_need_root "it makes namespaces and containers"
bench_packages hyperfine jq umoci curl iperf3 /bin/busybox:busybox-static \
    /usr/lib/cni/bridge:containernetworking-plugins nft:nftables
bench_build_berth

bench_workdir
tag=$$
ipns=bnet-ip-$tag ipc=bnet-ipc-$tag cnins=bnet-cni-$tag cnic=bnet-cnic-$tag
pa=bnet-pa-$tag pb=bnet-pb-$tag
# The bare pair's iperf3 server runs detached (-D): its pid file says which to stop.
stop_iperf3() { [ ! -s "$work/iperf3.pid" ] || kill "$(cat "$work/iperf3.pid")" 2>/dev/null; }
bench_at_exit stop_iperf3

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# --- 1. berth: attach and detach, timed by the daemon itself -----------------
bench_berth_daemon BERTH_LOG=berth_engine::networks=debug
"${bc[@]}" network create --subnet 10.250.0.0/16 benchnet >/dev/null
"${bc[@]}" run -d --network none --name idle busybox sleep 100000 >/dev/null
for _ in $(seq 5); do "${bc[@]}" network connect benchnet idle; "${bc[@]}" network disconnect benchnet idle; done  # warm-up
skip=$(grep -c -E ' (attached|detached) ' "$work/berth-daemon.log" || true)
for _ in $(seq "$runs"); do "${bc[@]}" network connect benchnet idle; "${bc[@]}" network disconnect benchnet idle; done
times() { tail -n +"$((skip + 1))" "$work/berth-daemon.log" | sed 's/\x1b\[[0-9;]*m//g' | grep " $1 " | sed -n 's/.*micros=\([0-9]*\).*/\1/p'; }
attach=$(times attached | median) detach=$(times detached | median)

# --- 2. the same plumbing with the ip command ---------------------------------
bench_netns "$ipns"; bench_netns "$ipc"
ip -n "$ipns" link add br0 type bridge && ip -n "$ipns" addr add 10.251.0.1/16 dev br0 && ip -n "$ipns" link set br0 up
cat >"$work/ip.sh" <<EOF
ip -n $ipns link add vh0 type veth peer name eth0 netns $ipc
ip -n $ipns link set vh0 master br0 up
ip -n $ipc addr add 10.251.0.2/16 dev eth0
ip -n $ipc link set eth0 up
ip -n $ipc route add default via 10.251.0.1
ip -n $ipns link del vh0
EOF

# --- 3. Debian's CNI bridge plugin, ADD then DEL -------------------------------
bench_netns "$cnins"; bench_netns "$cnic"
cat >"$work/cni.json" <<EOF
{"cniVersion": "1.0.0", "name": "benchcni", "type": "bridge", "bridge": "cni0", "isGateway": true,
 "ipMasq": false, "ipam": {"type": "host-local", "subnet": "10.252.0.0/16", "dataDir": "$work/cni-ipam"}}
EOF
cat >"$work/cni.sh" <<EOF
export CNI_CONTAINERID=bench CNI_NETNS=/run/netns/$cnic CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
CNI_COMMAND=ADD /usr/lib/cni/bridge <$work/cni.json >/dev/null
CNI_COMMAND=DEL /usr/lib/cni/bridge <$work/cni.json >/dev/null
EOF
nsenter --net="/run/netns/$cnins" bash "$work/cni.sh"   # fails loudly here, not in hyperfine
hyperfine -N --style basic --warmup 3 --runs "$runs" --export-json "$work/base.json" \
    -n ip "bash $work/ip.sh" -n cni "nsenter --net=/run/netns/$cnins bash $work/cni.sh" \
    -n bash-startup "bash -c :" >/dev/null
base() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1e6 | round' "$work/base.json"; }
shell=$(base bash-startup)

# --- 4. iperf3: berth containers vs a bare veth + bridge pair -----------------
mnt=(-v /usr:/usr:ro -v /lib:/lib:ro -v /lib64:/lib64:ro)
"${bc[@]}" run -d --network benchnet --name ipsrv "${mnt[@]}" busybox /usr/bin/iperf3 -s >/dev/null
sleep 0.5
"${bc[@]}" run --rm --network benchnet "${mnt[@]}" busybox /usr/bin/iperf3 -c ipsrv -t "$secs" -J >"$work/berth-iperf.json"
bench_netns "$pa"; bench_netns "$pb"
ip -n "$ipns" link add va type veth peer name eth0 netns "$pa"
ip -n "$ipns" link add vb type veth peer name eth0 netns "$pb"
for v in va vb; do ip -n "$ipns" link set "$v" master br0 up; done
ip -n "$pa" addr add 10.253.0.2/16 dev eth0 && ip -n "$pa" link set eth0 up
ip -n "$pb" addr add 10.253.0.3/16 dev eth0 && ip -n "$pb" link set eth0 up
ip -n "$ipns" addr add 10.253.0.1/16 dev br0
nsenter --net="/run/netns/$pa" iperf3 -s -B 10.253.0.2 -D -I "$work/iperf3.pid"
sleep 0.5
nsenter --net="/run/netns/$pb" iperf3 -c 10.253.0.2 -t "$secs" -J >"$work/bare-iperf.json"
gbit() { jq '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' "$1"; }
tb=$(gbit "$work/berth-iperf.json") tp=$(gbit "$work/bare-iperf.json")

echo
printf '%-44s %s\n' "attach, median (berth, timed in the daemon)" "$(awk -v u="$attach" 'BEGIN {printf "%.2f ms   target <= 3 ms", u / 1000}')"
printf '%-44s %s\n' "detach, median (berth)" "$(awk -v u="$detach" 'BEGIN {printf "%.2f ms", u / 1000}')"
printf '%-44s %s\n' "attach + detach, median (berth)" "$(awk -v a="$attach" -v d="$detach" 'BEGIN {printf "%.2f ms", (a + d) / 1000}')"
printf '%-44s %s\n' "attach + detach with ip, median" "$(awk -v u="$(base ip)" -v s="$shell" 'BEGIN {printf "%.2f ms (%.2f ms without bash start-up)", u / 1000, (u - s) / 1000}')"
printf '%-44s %s\n' "ADD + DEL with CNI bridge, median" "$(awk -v u="$(base cni)" -v s="$shell" 'BEGIN {printf "%.2f ms (%.2f ms without bash start-up)", u / 1000, (u - s) / 1000}')"
printf '%-44s %s\n' "iperf3 TCP, berth containers" "$tb Gbit/s"
printf '%-44s %s\n' "iperf3 TCP, bare veth + bridge" "$tp Gbit/s"
printf '%-44s %s\n' "berth / bare" "$(awk -v a="$tb" -v b="$tp" 'BEGIN {printf "%.2f   target >= 0.9", a / b}')"
