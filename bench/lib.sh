# bench/lib.sh — what the benchmark scripts share. Each sources it first
# (`. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`); it only sets variables and
# defines functions, and is not meant to be run on its own.
#
# Sets:  here (the repository), berth ($BERTH_BIN, default
#        target/release/berth), me (bench/NAME.sh, for messages),
#        docker_cli (docker's CLI, or empty), bench_lib (this file).
#
#   bench_need_root WHY             exit unless root
#   bench_packages CMD:PKG|CMD …    install the Debian packages whose command
#                                   (or, for /a/path, file) is missing; their
#                                   package scripts start no services
#   bench_build_berth               build $berth (release) if it is missing
#   bench_workdir [NAME]            $work, a temp dir; at exit everything that
#                                   ran in it is stopped and it is removed
#                                   (berth's daemon and its monitors, what
#                                   bench_at_exit names, mounts beneath it,
#                                   namespaces from bench_netns, paths from
#                                   bench_remove_at_exit/bench_rmdir_at_exit)
#   bench_at_exit CMD               run CMD at exit (before the unmounting)
#   bench_remove_at_exit PATH …     remove each PATH at exit if it does not exist now
#   bench_rmdir_at_exit DIR …       remove each DIR's tree of empty directories
#                                   at exit if it does not exist now
#   bench_netns NAME                a network namespace with lo up, deleted at exit
#   bench_busybox_rootfs DIR        busybox-static and its applets, passwd, group
#   bench_busybox_image             $layout: that rootfs as an OCI layout made
#                                   with umoci (loads as localhost/busybox:latest)
#   bench_start_berth CONFIG [VAR=VAL …]
#                                   berth's daemon on $root (default $work/berth)
#                                   in network namespace $bns, made once, with
#                                   VAR=VAL in its environment, its log appended
#                                   to $work/berth-daemon.log; returns once it
#                                   answers on $bsock; sets $bpid, $start_ms (ms
#                                   until it answered) and the client command $bc
#   bench_berth_daemon [VAR=VAL …]  bench_busybox_image loaded into $root as
#                                   busybox:latest, then bench_start_berth
#   bench_dockerd [DOCKERD-ARG …]   dockerd (and its containerd) in a network
#                                   namespace of its own, data in $work/docker;
#                                   $dpid, $dcpid, client command $dc
#   bench_wait_ping SOCK PID NAME LOG   wait until the daemon answers /_ping
#   bench_stop_pid PID [SECS]       SIGTERM, wait, then SIGKILL
#   bench_pids_matching GLOB        pids whose space-joined command line matches
#   bench_shim_pids                 pids of the monitors of berth's containers
#   bench_rounds RUNS ROUNDS WARMUP DIR HYPERFINE-COMMAND-ARGS …
#                                   RUNS runs of each command in ROUNDS rounds
#                                   that alternate the commands; DIR/round-R.json
#   bench_merge_rounds FILE …       every command's times over all rounds:
#                                   median, mean, min, stddev, runs (JSON)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034  # for the scripts (bench/start.sh sources it again under unshare)
bench_lib=$here/bench/lib.sh
me=bench/$(basename "${BASH_SOURCE[1]:-$0}")
berth=${BERTH_BIN:-$here/target/release/berth}
docker_cli=$(command -v docker || true)
work='' root='' bsock='' bpid='' bns='' start_ms='' dpid='' dcpid=''
bc=() dc=()
bench_made_ns=() bench_exit_hooks=() bench_leftovers=() bench_empty_dirs=()

bench_need_root() {  # WHY
    [ "$(id -u)" = 0 ] || { echo "$me: run as root${1:+ ($1)}" >&2; exit 1; }
}

bench_packages() {  # CMD:PKG or CMD (the package of that name) …
    local need=() pair cmd pkg made_policy=0 rc=0
    for pair in "$@"; do
        cmd=${pair%%:*} pkg=${pair#*:}
        if [ "${cmd#/}" != "$cmd" ]; then [ -x "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
    done
    [ ${#need[@]} -gt 0 ] || return 0
    echo "$me: installing missing Debian packages: ${need[*]}" >&2
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Keep package scripts (docker.io's, podman's) from starting services.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } || rc=$?
    [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
    return "$rc"
}

bench_build_berth() {
    [ ! -x "$berth" ] || return 0
    echo "$me: $berth missing; building it (cargo build --release -p berth)" >&2
    (cd "$here" && cargo build --release -p berth)
}

bench_workdir() {  # [NAME]: /tmp/berth-bench-NAME-XXXXXX (NAME: the script's)
    work=$(mktemp -d "/tmp/berth-bench-${1:-$(basename "$me" .sh)}-XXXXXX")
    trap bench_cleanup EXIT
    # The docker CLI's own config (podman reads it too, for auth).
    export DOCKER_CONFIG=$work/docker-cli
    mkdir -p "$DOCKER_CONFIG" && echo "{}" >"$DOCKER_CONFIG/config.json"
}

bench_at_exit() { bench_exit_hooks+=("$1"); }

bench_remove_at_exit() {
    local p
    for p in "$@"; do [ -e "$p" ] || bench_leftovers+=("$p"); done
}

bench_rmdir_at_exit() {
    local p
    for p in "$@"; do [ -e "$p" ] || bench_empty_dirs+=("$p"); done
}

bench_netns() {  # NAME
    ip netns add "$1" && bench_made_ns+=("$1") && ip -n "$1" link set lo up
}

bench_stop_pid() {  # PID [seconds]: SIGTERM, wait, then SIGKILL
    local pid=$1 t=${2:-20}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

bench_pids_matching() {  # PATTERN (a shell glob over the space-joined cmdline)
    local f c
    for f in /proc/[0-9]*/cmdline; do
        { c=$(tr '\0' ' ' <"$f"); } 2>/dev/null || continue
        # shellcheck disable=SC2254
        case "$c" in $1) f=${f#/proc/}; echo "${f%/cmdline}" ;; esac
    done
}

bench_shim_pids() { bench_pids_matching "* shim --runtime-root $root/runtime *"; }

bench_cleanup() {
    set +e
    # Names of its own: the hooks run in here and may use the scripts' variables.
    local _ids _p _m _n _h
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        _ids=$("${bc[@]}" ps -aq 2>/dev/null)
        [ -z "$_ids" ] || echo "$_ids" | xargs -n 50 "${bc[@]}" rm -f >/dev/null 2>&1
    fi
    bench_stop_pid "$bpid"
    # Monitors of containers the daemon could not remove (their cmdline names our root).
    if [ -n "$root" ]; then for _p in $(bench_shim_pids); do kill -KILL "$_p" 2>/dev/null; done; fi
    for _h in "${bench_exit_hooks[@]}"; do eval "$_h"; done
    # Mounts left beneath the temp dir (overlay roots, docker's private binds), deepest first.
    for _m in $(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$_m" 2>/dev/null || umount -l "$_m" 2>/dev/null
    done
    for _n in "${bench_made_ns[@]}"; do ip netns del "$_n"; done
    for _p in "${bench_leftovers[@]}"; do rm -rf "$_p"; done
    for _p in "${bench_empty_dirs[@]}"; do [ ! -d "$_p" ] || find "$_p" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$work"
}

bench_wait_ping() {  # SOCKET PID NAME LOG (30 s at most)
    for _ in $(seq 3000); do
        curl -fs --unix-socket "$1" http://d/_ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.01
    done
    echo "$me: $3 did not come up; its log:" >&2; tail -20 "$4" >&2; exit 1
}

bench_busybox_rootfs() {  # DIR
    local rootfs=$1 applet
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,var,mnt,tmp}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list-full); do
        [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
}

# The busybox image: an OCI layout made with umoci (as tests/src/images.rs).
bench_busybox_image() {
    layout=$work/busybox   # loads as localhost/busybox:latest
    local bundle=$work/umoci-bundle
    umoci init --layout "$layout"
    umoci new --image "$layout:latest"
    umoci unpack --image "$layout:latest" "$bundle" >/dev/null
    bench_busybox_rootfs "$bundle/rootfs"
    umoci repack --image "$layout:latest" "$bundle"
    umoci config --image "$layout:latest" --config.cmd /bin/sh \
        --config.env PATH=/bin:/sbin:/usr/bin --config.workingdir /
    rm -rf "$bundle"
}

bench_start_berth() {  # CONFIG [VAR=VALUE …]
    root=${root:-$work/berth} bsock=$work/berth.sock
    if [ -z "$bns" ]; then
        # In a network namespace of its own: berth0, its rules and ip_forward stay there.
        bns=berth-bench-$(basename "$me" .sh)b-$$
        bench_netns "$bns"
    fi
    local config=$1 t0
    shift
    t0=$(date +%s%N)
    nsenter --net="/run/netns/$bns" env "$@" "$berth" daemon --root "$root" --config "$config" \
        -H "unix://$bsock" >>"$work/berth-daemon.log" 2>&1 &
    bpid=$!
    bench_wait_ping "$bsock" "$bpid" "berth daemon" "$work/berth-daemon.log"
    # shellcheck disable=SC2034  # for the scripts
    start_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    bc=("$berth" -H "unix://$bsock")
}

bench_berth_daemon() {  # [VAR=VALUE …]
    bench_busybox_image
    root=${root:-$work/berth}
    # Loading first also compiles the default plugins into <root>/plugin-cache,
    # so the daemon below starts as it would on any day but the first.
    "$berth" --root "$root" --config /dev/null load -i "$layout" -q >/dev/null
    "$berth" --root "$root" --config /dev/null tag localhost/busybox:latest busybox:latest
    bench_start_berth /dev/null "$@"
}

bench_dockerd() {  # [DOCKERD-ARG …]
    local ns c
    ns=berth-bench-$(basename "$me" .sh)-$$
    # What dockerd and containerd make outside --data-root & co, and the
    # cgroupfs parent docker makes in every hierarchy.
    bench_remove_at_exit /etc/docker/key.json /run/containerd /run/docker
    for c in /sys/fs/cgroup/*/; do bench_rmdir_at_exit "${c}docker"; done
    bench_at_exit bench_stop_dockerd
    bench_netns "$ns"
    mkdir -p "$work/docker"
    nsenter --net="/run/netns/$ns" dockerd --data-root "$work/docker/data" \
        --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
        -H "unix://$work/docker.sock" "$@" \
        >"$work/dockerd.log" 2>&1 &
    dpid=$!
    bench_wait_ping "$work/docker.sock" "$dpid" dockerd "$work/dockerd.log"
    dcpid=$(pgrep -P "$dpid" -x containerd || true)
    dc=("$docker_cli" -H "unix://$work/docker.sock")
}

bench_stop_dockerd() {
    local ids p
    if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
        ids=$("${dc[@]}" ps -aq 2>/dev/null)
        [ -z "$ids" ] || "${dc[@]}" rm -f $ids >/dev/null 2>&1
    fi
    bench_stop_pid "$dpid" 30
    bench_stop_pid "$dcpid" 10
    for p in $(bench_pids_matching "*containerd-shim-runc-v2 *-address $work/docker/exec/*"); do kill -KILL "$p" 2>/dev/null; done
}

# hyperfine runs one command's runs back to back, so a slow spell of this
# shared machine would land on one command only: the runs are split into
# rounds that alternate the commands, and medians are taken over all rounds.
bench_rounds() {  # RUNS ROUNDS WARMUP DIR HYPERFINE-COMMAND-ARGS …
    local runs=$1 rounds=$2 warmup=$3 dir=$4 r
    shift 4
    local per_round=$(( (runs + rounds - 1) / rounds ))
    for r in $(seq 1 "$rounds"); do
        hyperfine -N --style basic --warmup "$warmup" --runs "$per_round" \
            --export-json "$dir/round-$r.json" "$@" >/dev/null
        echo "round $r of $rounds done" >&2
    done
}

bench_merge_rounds() {  # ROUND-JSON …
    jq -s '
      def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                         else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      [.[].results[]] | group_by(.command)
      | {results: map(
          [.[].times[]] as $t
          | ($t | add / length) as $mean
          | {command: .[0].command, median: ($t | median), mean: $mean, min: ($t | min),
             stddev: (($t | map((. - $mean) * (. - $mean)) | add / length) | sqrt),
             runs: ($t | length)})}' "$@"
}
