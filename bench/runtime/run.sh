#!/usr/bin/env bash
# Runtime benchmark (issue "Instances"): start-to-exit of /bin/true in a new
# instance, from the same busybox-static root filesystem, in the same run:
#   cairn run            (image imported from the rootfs directory)
#   crun run, runc run   (one OCI bundle: the rootfs directory, read-only root)
#   podman run --rm --network none   (image imported from a tar of the rootfs)
#   bare                 (floor: bench/runtime/bare.c, clone into new
#                         namespaces + read-only overlay root + exec, nothing
#                         else; skipped when no C compiler is found)
# Medians, means, minimums and ratios go to the terminal and to the
# "## runtime" section of bench/RESULTS.md.
#
# Every command is run by hyperfine with -N (no shell in between): crun and
# runc delete their container when `run` returns, so one fixed container id
# per tool serves every run and no wrapper script is needed.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench-runtime; removed at exit)
#   RUNS         timed runs per tool, in total over all rounds (default 200, min 100)
#   ROUNDS       the tools are measured one after the other, ROUNDS times, and
#                the runs of all rounds pooled (default 2), so a burst of other
#                activity on the machine does not land on one tool only
#   WARMUP       untimed runs before each tool's timed runs, per round (default 5)
#   TRACE_RUNS   runs of `CAIRN_TRACE=1 cairn run` for the phase breakdown
#                (default 50; 0 = skip)
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 60; the CPU load seen is recorded)
#   BENCH_STRICT 1 = also exit non-zero when cairn is slower than crun
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench-runtime}"
RUNS="${RUNS:-200}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-5}"
TRACE_RUNS="${TRACE_RUNS:-50}"
QUIET_WAIT="${QUIET_WAIT:-60}"
[ "$RUNS" -ge 100 ] || die "RUNS must be at least 100 (the issue asks for >= 100 runs per tool)"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))
RUNS=$((PER_ROUND * ROUNDS))

TAG="bench:bb"
PODMAN_IMAGE="localhost/bench-bb"
CRUN_ID="cairn-bench-crun"
RUNC_ID="cairn-bench-runc"
[ "$(id -u)" = 0 ] || die "the runtime benchmark needs root"

# Host paths the peers create on first use, outside the work dir. Whatever of
# these did not exist before the run is removed at exit. (podman's storage,
# run dir, events log and network config are all pointed into the work dir,
# see below; these are the ones that cannot be.)
HOST_PATHS=(/run/crun /run/runc /run/libpod /run/containers /var/lib/containers
	/etc/containers/networks /etc/cni/net.d/cni.lock)
# Parent cgroups the tools leave behind, in every mounted hierarchy: cairn's
# "cairn" (rmdir'ed, never recursively: cairn removes its instances' cgroups
# itself) and podman's "libpod_parent" (holds an empty "conmon"; removed with
# its empty children). Only those this run created; rmdir fails on a cgroup
# that still has processes, so nothing in use is touched.
CG_PARENTS=() CG_PODMAN=()
for h in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do
	CG_PARENTS+=("$h/cairn") CG_PODMAN+=("$h/libpod_parent")
done
declare -A PREEXISTING
for p in "${HOST_PATHS[@]}" "${CG_PARENTS[@]}" "${CG_PODMAN[@]}"; do
	if [ -e "$p" ]; then PREEXISTING[$p]=1; fi
done

export CONTAINERS_CONF="$WORK/containers.conf"
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf"

umount_under() {   # every mount at or below $1, deepest first
	findmnt -rn -o TARGET 2>/dev/null | awk -v w="$1" '$0 == w || index($0, w "/") == 1' |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
cleanup() {
	set +e
	if [ -f "$CONTAINERS_STORAGE_CONF" ] && command -v podman >/dev/null; then
		podman rm -a -f >/dev/null 2>&1
		podman rmi -a -f >/dev/null 2>&1
	fi
	for id in "$CRUN_ID" "$CRUN_ID-probe"; do
		command -v crun >/dev/null && crun delete -f "$id" >/dev/null 2>&1
	done
	for id in "$RUNC_ID" "$RUNC_ID-probe"; do
		command -v runc >/dev/null && runc delete -f "$id" >/dev/null 2>&1
	done
	for m in "$WORK"/cgroup-v1-*; do   # the hierarchies mounted for crun, emptied first
		mountpoint -q "$m" 2>/dev/null && find "$m" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -d "$WORK" ] && umount_under "$WORK"
	rm -rf "$WORK"
	for p in "${HOST_PATHS[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || rm -rf "$p"
	done
	for p in "${CG_PARENTS[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || rmdir "$p" 2>/dev/null
	done
	for p in "${CG_PODMAN[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || [ ! -d "$p" ] || find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_pkg() {   # ensure_pkg PACKAGE: apt-get install PACKAGE unless installed
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed' && return 0
	log "installing $1"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null
	fi
}
ensure_cmd hyperfine hyperfine
ensure_cmd jq jq
ensure_cmd crun crun
ensure_cmd runc runc
ensure_cmd podman podman
ensure_pkg busybox-static

if [ -d "$WORK" ]; then umount_under "$WORK"; rm -rf "$WORK"; fi   # an interrupted run
mkdir -p "$WORK/out"
OUT="$WORK/out"
ROOTFS="$WORK/rootfs"
FAIL=()     # problems that make the run a failure
NOTES=()    # things worth recording

# ---- the root filesystem, the same for every tool ---------------------------
"$REPO_ROOT/examples/mkrootfs.sh" "$ROOTFS"
ROOTFS_FILES="$(find "$ROOTFS" | wc -l)"
ROOTFS_KB="$(du -s -k "$ROOTFS" | cut -f1)"

# ---- hybrid cgroups: crun 1.8 refuses to run when the cgroup2 hierarchy of a
# hybrid host holds controllers ("cgroups in hybrid mode not supported, drop
# all controllers from cgroupv2"). For the benchmark only, those controllers
# (typically hugetlb, which has no v1 hierarchy) get a v1 hierarchy under the
# work dir, which moves them out of cgroup2; unmounted at exit. This stays for
# the whole run, so every tool sees the same host.
CGMODE="v1"
[ -e /sys/fs/cgroup/cgroup.controllers ] && CGMODE="v2 (unified)"
V1_MOUNTED=()
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
	[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	CGMODE="hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified holding: $(tr -s ' \n' ' ' </sys/fs/cgroup/unified/cgroup.controllers | sed 's/ $//;s/^$/nothing/'))"
	for ctl in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
		mkdir -p "$WORK/cgroup-v1-$ctl"
		if mount -t cgroup -o "$ctl" cgroup "$WORK/cgroup-v1-$ctl"; then
			V1_MOUNTED+=("$ctl")
		else
			NOTES+=("could not mount a v1 hierarchy for the $ctl controller; crun (and podman, which runs crun) may refuse to start")
		fi
	done
fi

# ---- cairn -------------------------------------------------------------------
# The binary is copied into the work dir first and that copy is what runs:
# src/ may be rebuilt while the benchmark runs (it takes a few minutes), and
# the rounds must not measure different binaries. Its revision is taken now.
CR="$WORK/cairn"
CAIRN_OK=0
CAIRN_SRC="$CAIRN"
REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || REV="$REV (src/ differs from it)"
if [ ! -x "$CAIRN_SRC" ]; then
	FAIL+=("cairn binary $CAIRN_SRC not found; cairn not measured")
elif ! cp "$CAIRN_SRC" "$WORK/cairn-bin"; then
	FAIL+=("cannot copy $CAIRN_SRC; cairn not measured")
elif ! { CAIRN="$WORK/cairn-bin"
	CAIRN_BUILT="$(date -u -r "$CAIRN_SRC" '+%Y-%m-%d %H:%M:%S UTC')"
	CAIRN_SUM="$(sha256sum "$CAIRN" | cut -c1-12)"; }; then
	FAIL+=("cannot checksum the copy of $CAIRN_SRC; cairn not measured")
elif ! CAIRN_ID="$("$CAIRN" --root "$CR" import "$ROOTFS" "$TAG" 2>"$OUT/cairn-import.err")"; then
	FAIL+=("\`cairn import\` failed: $(head -c 400 "$OUT/cairn-import.err" | tr '\n' ' ')")
else
	CAIRN_OK=1
fi

# ---- one OCI bundle for crun and runc ------------------------------------------
# `runc spec` (crun's is the same apart from the hostname and ociVersion), with
# the root made read-only (it already is), the command /bin/true, no terminal.
# Its other defaults are kept: namespaces pid, network, ipc, uts, mount; the
# default capabilities, masked and read-only paths; no seccomp profile.
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE"
(cd "$BUNDLE" && runc spec)
jq --arg r "$ROOTFS" '.root.path = $r | .root.readonly = true | .process.terminal = false
	| .process.args = ["/bin/true"]' "$BUNDLE/config.json" >"$BUNDLE/config.json.new"
mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
OCI_NS="$(jq -r '[.linux.namespaces[].type] | join(", ")' "$BUNDLE/config.json")"
OCI_SECCOMP="$(jq -r 'if .linux.seccomp then "yes" else "none" end' "$BUNDLE/config.json")"

# ---- podman: storage, run dir, events and network config in the work dir -----
# default_ulimits: podman's default nofile limit is above this host's hard
# limit of 20000 (`ulimit -Hn`), which makes every `podman run` fail.
HARD_NOFILE="$(ulimit -Hn)"
NOFILE=1048576; [ "$HARD_NOFILE" = unlimited ] || [ "$HARD_NOFILE" -ge "$NOFILE" ] || NOFILE="$HARD_NOFILE"
HARD_NPROC="$(ulimit -Hu)"
NPROC=32768; [ "$HARD_NPROC" = unlimited ] || [ "$HARD_NPROC" -ge "$NPROC" ] || NPROC="$HARD_NPROC"
mkdir -p "$WORK/podman"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]

[network]
network_backend = "netavark"
network_config_dir = "$WORK/podman/net"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/podman/events.log"
tmp_dir = "$WORK/podman/tmp"
volume_path = "$WORK/podman/volumes"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/podman/root"
runroot = "$WORK/podman/run"
EOF
PODMAN_OK=0
if tar -C "$ROOTFS" -c . | podman import -q - "$PODMAN_IMAGE" >"$OUT/podman-import.out" 2>&1; then
	PODMAN_OK=1
else
	FAIL+=("\`podman import\` failed: $(head -c 400 "$OUT/podman-import.out" | tr '\n' ' ')")
fi

# ---- bare floor -------------------------------------------------------------------
BARE_OK=0
CC="$(command -v cc || command -v gcc || true)"
if [ -n "$CC" ] && "$CC" -O2 -o "$WORK/bare" "$HERE/bare.c" 2>"$OUT/bare-cc.err"; then
	mkdir -p "$WORK/bare-empty" "$WORK/bare-mnt"
	BARE_OK=1
else
	NOTES+=("bare floor not measured: no C compiler, or bench/runtime/bare.c did not build")
fi

# ---- the commands --------------------------------------------------------------
TOOLS=()
declare -A CMD LABEL OK
if [ "$BARE_OK" = 1 ]; then
	TOOLS+=(bare)
	LABEL[bare]="bare: clone + ro overlay + pivot_root + exec"
	CMD[bare]="$WORK/bare $ROOTFS $WORK/bare-empty $WORK/bare-mnt /bin/true"
fi
if [ "$CAIRN_OK" = 1 ]; then
	TOOLS+=(cairn)
	LABEL[cairn]="cairn run"
	CMD[cairn]="$CAIRN --root $CR run $TAG -- /bin/true"
fi
TOOLS+=(crun runc)
LABEL[crun]="crun run"
CMD[crun]="crun run --bundle $BUNDLE $CRUN_ID"
LABEL[runc]="runc run"
CMD[runc]="runc run --bundle $BUNDLE $RUNC_ID"
if [ "$PODMAN_OK" = 1 ]; then
	TOOLS+=(podman)
	LABEL[podman]="podman run --rm --network none"
	CMD[podman]="podman run --rm --network none $PODMAN_IMAGE /bin/true"
fi

# run_in TOOL ARGV...: run ARGV (instead of /bin/true) the way TOOL is measured;
# for crun and runc, in a copy of the bundle whose process.args is ARGV.
run_in() {
	local t=$1; shift
	case $t in
	bare) "$WORK/bare" "$ROOTFS" "$WORK/bare-empty" "$WORK/bare-mnt" "$@" ;;
	cairn) "$CAIRN" --root "$CR" run "$TAG" -- "$@" ;;
	podman) podman run --rm --network none "$PODMAN_IMAGE" "$@" ;;
	crun | runc)
		local b="$WORK/bundle-$t-probe" id="$CRUN_ID"
		[ "$t" = runc ] && id="$RUNC_ID"
		local i=0 jqargs=() expr=""
		for a in "$@"; do   # (not jq --args: jq would take "-c" for its own option)
			jqargs+=(--arg "a$i" "$a"); expr="$expr${expr:+, }\$a$i"; i=$((i + 1))
		done
		mkdir -p "$b"
		jq "${jqargs[@]}" ".process.args = [$expr]" "$BUNDLE/config.json" >"$b/config.json"
		"$t" run --bundle "$b" "$id-probe" ;;
	esac
}

# ---- sanity: every tool runs /bin/true once, and probes of what it set up ------
# 1. A shell inside: the namespaces that differ from the host's, whether the
#    root is writable, seccomp, no_new_privs, effective capabilities.
# 2. `sleep` inside, seen from the host: the cgroup (memory controller on v1)
#    the command runs in, compared with the cgroup this script runs in.
PROBE_SH='touch /.bench-probe 2>&- && echo root=rw || echo root=ro
for n in cgroup ipc mnt net pid uts user; do echo "ns $n $(readlink /proc/self/ns/$n)"; done
grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status'
own_cgroup() {   # own_cgroup PID: its memory cgroup (v1), or its v2 cgroup
	awk -F: '$2 == "memory" { m = $3 } $1 == "0" && $2 == "" { u = $3 }
		END { print (m != "" ? m : u) }' "/proc/$1/cgroup" 2>/dev/null
}
CG_WHICH="v2"; grep -q '^[0-9]*:memory:' /proc/self/cgroup && CG_WHICH="memory controller"
declare -A HOSTNS
for n in cgroup ipc mnt net pid uts user; do HOSTNS[$n]="$(readlink /proc/self/ns/$n)"; done
MYCG="$(own_cgroup $$)"
declare -A NEWNS ROOTMODE SECCOMP NNP CAPEFF CGROUP
for t in "${TOOLS[@]}"; do
	OK[$t]=0
	rc=0
	# shellcheck disable=SC2086 # CMD is split on purpose, like hyperfine -N does
	${CMD[$t]} >"$OUT/$t-check.out" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		FAIL+=("\`${CMD[$t]}\` failed (exit $rc): $(head -c 400 "$OUT/$t-check.out" | tr '\n' ' '); $t not measured")
		continue
	fi
	OK[$t]=1
	run_in "$t" /bin/sh -c "$PROBE_SH" >"$OUT/$t-probe.out" 2>&1 || true
	new=()
	while read -r _ n v; do if [ "$v" != "${HOSTNS[$n]}" ]; then new+=("$n"); fi; done < <(grep '^ns ' "$OUT/$t-probe.out")
	NEWNS[$t]="${new[*]:-?}"
	ROOTMODE[$t]="$(sed -n 's/^root=//p' "$OUT/$t-probe.out")"
	case "$(awk '/^Seccomp:/ { print $2 }' "$OUT/$t-probe.out")" in
	2) SECCOMP[$t]=filter ;; 1) SECCOMP[$t]=strict ;; 0) SECCOMP[$t]=none ;; *) SECCOMP[$t]="?" ;;
	esac
	NNP[$t]="$(awk '/^NoNewPrivs:/ { print ($2 ? "yes" : "no") }' "$OUT/$t-probe.out")"
	CAPEFF[$t]="$(awk '/^CapEff:/ { print $2 }' "$OUT/$t-probe.out")"
	[ -n "${ROOTMODE[$t]}" ] || NOTES+=("the probe in $t printed nothing usable: $(head -c 300 "$OUT/$t-probe.out" | tr '\n' ' ')")
	# The cgroup probe: a sleep with an argument nothing else uses.
	arg="1.$RANDOM"
	run_in "$t" /bin/sleep "$arg" >"$OUT/$t-sleep.out" 2>&1 &
	spid=$! cg=""
	for _ in $(seq 1 100); do
		pid="$(pgrep -f -x "/bin/sleep $arg" | sed -n 1p || true)"
		if [ -n "$pid" ]; then cg="$(own_cgroup "$pid")"; break; fi
		sleep 0.02
	done
	wait "$spid" || true
	# Container ids in cgroup names, as <id>.
	cg="$(sed -E "s/$CRUN_ID-probe|$RUNC_ID-probe|[0-9a-f]{64}/<id>/g" <<<"$cg")"
	if [ -z "$cg" ]; then CGROUP[$t]="?"
	elif [ "$cg" = "$MYCG" ]; then CGROUP[$t]="none (the caller's)"
	else CGROUP[$t]="own: \`${cg#"$MYCG"}\` under the caller's"; [ "${cg#"$MYCG"}" = "$cg" ] && CGROUP[$t]="own: \`$cg\`"
	fi
done

# ---- measure ---------------------------------------------------------------------
declare -A BUSY
bench_round() {   # bench_round TOOL ROUND
	local t=$1 r=$2 busy
	wait_quiet "$QUIET_WAIT" ||
		NOTES+=("machine was ${QUIET_BUSY}% CPU busy with other work before $t, round $r (waited ${QUIET_WAIT}s); expect noise")
	busy="$QUIET_BUSY"
	[ -z "${BUSY[$t]:-}" ] || [ "$busy" -gt "${BUSY[$t]}" ] || busy="${BUSY[$t]}"
	BUSY[$t]="$busy"
	log "measuring $t, round $r/$ROUNDS ($PER_ROUND runs)"
	hyperfine -N --style basic --runs "$PER_ROUND" --warmup "$WARMUP" \
		--export-json "$OUT/$t.$r.json" -n "$t" "${CMD[$t]}" >&2
}
for r in $(seq 1 "$ROUNDS"); do
	for t in "${TOOLS[@]}"; do
		[ "${OK[$t]}" = 1 ] || continue
		if ! bench_round "$t" "$r"; then
			FAIL+=("hyperfine failed for $t in round $r (a run exited non-zero?)")
			OK[$t]=0
		fi
	done
done

# Leftovers a tool should have removed.
crun list 2>/dev/null | grep -q "^$CRUN_ID " && NOTES+=("crun left container $CRUN_ID behind")
runc list 2>/dev/null | grep -q "^$RUNC_ID " && NOTES+=("runc left container $RUNC_ID behind")
[ "$CAIRN_OK" = 1 ] && [ -n "$(ls -A "$CR/instances" 2>/dev/null)" ] &&
	NOTES+=("cairn left instance directories behind in $CR/instances: $(ls "$CR/instances" | wc -l)")
[ "$PODMAN_OK" = 1 ] && [ -n "$(podman ps -a -q 2>/dev/null)" ] &&
	NOTES+=("podman left containers behind: $(podman ps -a -q | wc -l)")

# ---- statistics over the pooled runs of all rounds (ms) -------------------------
declare -A N MED MEAN MIN MAX
for t in "${TOOLS[@]}"; do
	[ "${OK[$t]}" = 1 ] || continue
	read -r "N[$t]" "MED[$t]" "MEAN[$t]" "MIN[$t]" "MAX[$t]" < <(jq -rs '
		[.[].results[0].times[]] | sort | length as $n
		| [$n, (if $n % 2 == 1 then .[($n - 1) / 2] else (.[$n / 2 - 1] + .[$n / 2]) / 2 end),
		   (add / $n), .[0], .[-1]]
		| [.[0]] + (.[1:] | map(. * 1000 * 1000 | round / 1000)) | @tsv' "$OUT/$t".*.json)
done
fmt() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
MEASURED=()
for t in "${TOOLS[@]}"; do if [ "${OK[$t]}" = 1 ]; then MEASURED+=("$t"); fi; done
declare -A RATIO
for t in "${MEASURED[@]}"; do
	RATIO[$t]="-"
	[ "${OK[cairn]:-0}" = 1 ] && RATIO[$t]="$(ratio "${MED[$t]}" "${MED[cairn]}")x"
done
GOAL_V="not measured"; AIM_V="not measured"
if [ "${OK[cairn]:-0}" = 1 ] && [ "${OK[crun]:-0}" = 1 ]; then
	CRUN_OVER_CAIRN="$(ratio "${MED[crun]}" "${MED[cairn]}")"
	HALF_CRUN="$(awk -v c="${MED[crun]}" 'BEGIN { printf "%.2f", c / 2 }')"
	if ge "${MED[crun]}" "${MED[cairn]}"; then GOAL_V="met"; else GOAL_V="NOT met"; fi
	if ge "$HALF_CRUN" "${MED[cairn]}"; then AIM_V="met"; else AIM_V="NOT met"; fi
fi

# ---- where cairn's time goes: CAIRN_TRACE=1 phase timings (untimed runs) ---------
TRACE_LINES=()
if [ "${OK[cairn]:-0}" = 1 ] && [ "$TRACE_RUNS" -gt 0 ]; then
	for _ in $(seq 1 "$TRACE_RUNS"); do
		# shellcheck disable=SC2086
		CAIRN_TRACE=1 ${CMD[cairn]} 2>>"$OUT/trace.err" >/dev/null || true
	done
	# Median of each phase line, in the order the phases are printed.
	mapfile -t TRACE_LINES < <(awk -F'  +' '/^cairn-trace: / {
			name = $1; sub(/^cairn-trace: /, "", name); v = $2; sub(/ ms$/, "", v)
			if (!(name in cnt)) order[++k] = name
			vals[name, ++cnt[name]] = v + 0
		}
		END {
			for (i = 1; i <= k; i++) {
				n = order[i]; c = cnt[n]
				for (a = 1; a <= c; a++) x[a] = vals[n, a]
				for (a = 2; a <= c; a++) { v = x[a]; b = a - 1
					while (b >= 1 && x[b] > v) { x[b + 1] = x[b]; b-- } x[b + 1] = v }
				m = (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
				printf "%s\t%.2f\n", n, m
			}
		}' "$OUT/trace.err")
fi

# ---- report -------------------------------------------------------------------------
# ---- run -d of an HTTP server to its published port answering ----------------------
# Each sample: start the clock, `cairn run -d -p PORT:8080 … httpd`, then GET
# the page until it answers 200 (polled every 0.5 ms); stop the clock; rm -f.
HTTP_TODO="not measured (cairn missing)"
if [ -n "${CAIRN_ID:-}" ]; then
	HTTP_STATS=$(python3 - "$CAIRN" "$CR" "$TAG" <<'PY'
import socket, statistics, subprocess, sys, time
cairn, root, tag = sys.argv[1:4]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
samples = []
for i in range(20):
    port = free_port()
    t0 = time.perf_counter()
    iid = subprocess.run([cairn, "--root", root, "run", "-d", "-p", f"127.0.0.1:{port}:8080", tag,
                          "--", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
                         check=True, capture_output=True, text=True).stdout.strip()
    deadline = t0 + 10
    while True:
        try:
            # the relay closes a connection at once while nothing listens
            # inside yet: that reads empty, and we try again
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                if b" 200 " in c.recv(64):
                    break
        except OSError:
            pass
        if time.perf_counter() > deadline:
            sys.exit("timed out")
        time.sleep(0.0005)
    samples.append((time.perf_counter() - t0) * 1000)
    subprocess.run([cairn, "--root", root, "rm", "-f", iid], check=True, capture_output=True)
print(f"{statistics.median(samples):.1f} {min(samples):.1f} {max(samples):.1f} {len(samples)}")
PY
) && read -r HTTP_MED HTTP_MIN HTTP_MAX HTTP_N <<<"$HTTP_STATS" &&
		HTTP_TODO="\`cairn run -d -p\` of busybox httpd to the published port answering GET with 200: median $HTTP_MED ms (min $HTTP_MIN, max $HTTP_MAX, $HTTP_N runs; each run then \`cairn rm -f\`)" ||
		HTTP_TODO="FAILED to measure run -d of an HTTP server to its published port answering"
fi
{
	printf '\nruntime benchmark: start-to-exit of /bin/true, %s runs per tool (%s rounds of %s), hyperfine -N\n' "$RUNS" "$ROUNDS" "$PER_ROUND"
	printf '%-46s %9s %9s %9s %9s %9s\n' "tool" "median ms" "mean ms" "min ms" "max ms" "x cairn"
	for t in "${MEASURED[@]}"; do
		printf '%-46s %9s %9s %9s %9s %9s\n' "${LABEL[$t]}" "$(fmt "${MED[$t]}")" "$(fmt "${MEAN[$t]}")" \
			"$(fmt "${MIN[$t]}")" "$(fmt "${MAX[$t]}")" "${RATIO[$t]}"
	done
	if [ -n "${CRUN_OVER_CAIRN:-}" ]; then
		printf 'goal: cairn median <= crun median: crun/cairn = %sx: %s\n' "$CRUN_OVER_CAIRN" "$GOAL_V"
		printf 'aim:  cairn median <= crun median / 2 (%s ms): %s\n' "$HALF_CRUN" "$AIM_V"
	fi
	if [ "${#TRACE_LINES[@]}" -gt 0 ]; then
		printf 'cairn phases (CAIRN_TRACE=1, median of %s runs, ms as printed):\n' "$TRACE_RUNS"
		for l in "${TRACE_LINES[@]}"; do printf '  %-30s %8s\n' "${l%%$'\t'*}" "${l#*$'\t'}"; done
	fi
	printf '%s\n' "$HTTP_TODO"
	for f in "${FAIL[@]+"${FAIL[@]}"}"; do printf 'FAILURE: %s\n' "$f"; done
	for f in "${NOTES[@]+"${NOTES[@]}"}"; do printf 'note: %s\n' "$f"; done
	echo
} >&2

PODMAN_RT="$(podman info --format '{{.Host.OCIRuntime.Name}} at {{.Host.OCIRuntime.Path}}' 2>/dev/null | sed -n 1p)"
PODMAN_DRV="$(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
SEC="$OUT/section.md"
{
	echo "## runtime"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Machine: $(machine_info "$WORK"); cgroups $CGMODE; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- cairn: \`$CAIRN_SRC\` ($("$CAIRN" --version 2>/dev/null || echo '?'); built ${CAIRN_BUILT:-?}, sha256 ${CAIRN_SUM:-?}...), source revision $REV when the run started; run from a copy at \`$CAIRN\` so a rebuild during the run cannot change it"
	echo "- Peers: $(crun --version | sed -n 1p), $(runc --version | sed -n 1p), $(podman --version) (OCI runtime: ${PODMAN_RT:-?}; storage driver ${PODMAN_DRV:-?}), $(hyperfine --version)"
	echo "- Root filesystem: \`examples/mkrootfs.sh\` from Debian busybox-static $(dpkg-query -W -f '${Version}' busybox-static): $ROOTFS_FILES entries, $ROOTFS_KB KB. cairn imports that directory (image \`${CAIRN_ID:-not imported}\`); it is the OCI bundle's root for crun and runc; podman imports a tar of it."
	echo "- Method: start-to-exit of \`/bin/true\`, timed by hyperfine with \`-N\` (no shell: crun and runc delete their container when \`run\` returns, so a fixed container id per tool works and no wrapper is needed). Each tool: $ROUNDS rounds of $WARMUP warm-up + $PER_ROUND timed runs, the tools one after the other in each round; the $RUNS timed runs of all rounds are pooled for median / mean / min / max. Before each round of each tool the script waits (at most ${QUIET_WAIT} s) for the machine to be idle (< 10% CPU); the highest CPU busy % seen is in the table. \"x cairn\" = the tool's median / cairn's median."
	[ "${#V1_MOUNTED[@]}" -gt 0 ] && echo "- Hybrid cgroups: crun 1.8.1 refuses to run while the cgroup2 hierarchy holds controllers (\"cgroups in hybrid mode not supported\"), so for the whole run (all tools) the script mounts a v1 hierarchy for ${V1_MOUNTED[*]} (\`mount -t cgroup -o ${V1_MOUNTED[*]// /,} cgroup \$W/cgroup-v1-...\`), unmounted at exit. podman runs crun too."
	echo "- podman: storage, run dir, events log and network config in the work dir (\`CONTAINERS_CONF\`, \`CONTAINERS_STORAGE_CONF\`), \`cgroup_manager = \"cgroupfs\"\`, \`default_ulimits = [\"nofile=$NOFILE:$NOFILE\", \"nproc=$NPROC:$NPROC\"]\` (podman's default nofile exceeds this host's hard limit of $HARD_NOFILE, and every \`podman run\` fails)."
	echo "- OCI bundle: \`runc spec\` with \`root.path\` = the rootfs, \`root.readonly = true\`, \`process.args = [\"/bin/true\"]\`, \`process.terminal = false\`; otherwise its defaults (namespaces $OCI_NS; seccomp profile: $OCI_SECCOMP)."
	echo
	echo "What each tool set up (untimed probes: a \`/bin/sh -c\` inside each tool prints the namespaces that differ from the host's, whether the root is writable, /proc/self/status; a \`/bin/sleep\` inside each tool, looked at from the host, gives the cgroup the command runs in, relative to the cgroup of the caller (this script)):"
	echo
	echo "| tool | new namespaces | root | seccomp | no_new_privs | CapEff | cgroup ($CG_WHICH) |"
	echo "|---|---|---|---|---|---|---|"
	for t in "${MEASURED[@]}"; do
		echo "| ${LABEL[$t]} | ${NEWNS[$t]:-?} | ${ROOTMODE[$t]:-?} | ${SECCOMP[$t]:-?} | ${NNP[$t]:-?} | ${CAPEFF[$t]:-?} | ${CGROUP[$t]:-?} |"
	done
	echo
	echo "So the tools do not set up exactly the same thing: the OCI bundle from \`runc spec\` has no seccomp profile and no cgroup namespace (crun and runc do drop capabilities further and set no_new_privs); podman runs the issue's command, without \`--read-only\`, so its root is a writable overlay layer. The bare floor does no security setup at all."
	echo
	echo "| tool | median ms | mean ms | min ms | max ms | x cairn | runs | CPU busy before |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for t in "${MEASURED[@]}"; do
		if [ "$t" = cairn ]; then b='**'; else b=''; fi
		echo "| ${LABEL[$t]} | $b$(fmt "${MED[$t]}")$b | $(fmt "${MEAN[$t]}") | $(fmt "${MIN[$t]}") | $(fmt "${MAX[$t]}") | ${RATIO[$t]} | ${N[$t]} | ${BUSY[$t]}% |"
	done
	echo
	if [ -n "${CRUN_OVER_CAIRN:-}" ]; then
		echo "| goal (issue \"Instances\") | value | |"
		echo "|---|---:|---|"
		echo "| cairn at most crun's time: crun median / cairn median | ${CRUN_OVER_CAIRN}x (>= 1x) | $GOAL_V |"
		echo "| aim, 2x faster than crun: cairn median <= crun median / 2 | $(fmt "${MED[cairn]}") ms <= $HALF_CRUN ms | $AIM_V |"
		echo
	fi
	if [ "${#TRACE_LINES[@]}" -gt 0 ]; then
		echo "cairn's phases, \`CAIRN_TRACE=1\` over $TRACE_RUNS more runs, median of each line (ms, as printed: at this revision \"image loaded\" counts from the start of the command's work, the \"run: ...\" runtime phases are cumulative from the start of the runtime, \"instance dir removed\" is its own duration):"
		echo
		echo "| phase | median ms |"
		echo "|---|---:|"
		for l in "${TRACE_LINES[@]}"; do echo "| ${l%%$'\t'*} | ${l#*$'\t'} |"; done
		echo
	fi
	echo "- **$HTTP_TODO**"
	for f in "${FAIL[@]+"${FAIL[@]}"}"; do echo "- **FAILURE:** $f"; done
	for f in "${NOTES[@]+"${NOTES[@]}"}"; do echo "- Note: $f"; done
	echo
	echo "Commands (\`bench/runtime/run.sh\`; \`\$W\` = \`@WORK@\`):"
	echo
	echo '```sh'
	echo "examples/mkrootfs.sh \$W/rootfs"
	echo "$CAIRN --root \$W/cairn import \$W/rootfs $TAG"
	echo "(cd \$W/bundle && runc spec)   # then the jq edits above"
	echo "export CONTAINERS_CONF=\$W/containers.conf CONTAINERS_STORAGE_CONF=\$W/storage.conf"
	echo "tar -C \$W/rootfs -c . | podman import - $PODMAN_IMAGE"
	[ "$BARE_OK" = 1 ] && echo "cc -O2 -o \$W/bare bench/runtime/bare.c"
	for t in "${MEASURED[@]}"; do
		echo "hyperfine -N --runs $PER_ROUND --warmup $WARMUP '${CMD[$t]}'   # x $ROUNDS rounds"
	done
	echo '```'
} | sed "s#$WORK#\$W#g; s#@WORK@#$WORK#" >"$SEC"
results_put_section runtime "$SEC"
log "wrote section \"## runtime\" of $RESULTS_MD"

if [ "${#FAIL[@]}" -gt 0 ]; then exit 1; fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$GOAL_V" != met ]; then exit 1; fi
exit 0
