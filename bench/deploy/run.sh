#!/usr/bin/env bash
# Deploy benchmark (issue "deploys"): cairn's daemon (its own --root, its own
# ports) deploying a service like examples/hello (busybox httpd serving a page
# that names its version) with 3 replicas, blue-green, keep_previous 1:
# (a) deploy time, build excluded: RUNS deploys alternating the already built
#     images hello:v1 and hello:v2 (`cairn deploy --image`); the command's own
#     timings (`--json`: instances started, healthy, traffic switched, total)
#     and, measured outside, the time from the start of the command to the
#     first response served by the new version (bench/deploy/switch.py polls
#     the environment's address on a keep-alive connection); goal < 1 s
# (b) rollback to the warm previous release: RUNS rollbacks in a row (each
#     goes back to the other image), from the start of the command to the
#     first response served by the old version; goal < 100 ms
# (c) zero downtime: `wrk -t2 -c32 --latency` running through CYCLES
#     deploy + rollback cycles; wrk's non-2xx and socket errors (expected 0)
# (d) the peer: haproxy 2.6 in front of two nginx backends with wrk -t2 -c32
#     running, (i) `set server be/s1 state drain` (then ready) over the stats
#     socket, HAP_DRAINS runs, (ii) `haproxy -sf` reloads, HAP_RELOADS runs;
#     wrk's errors in each run.
# Medians to the terminal and to the "## deploy" section of bench/RESULTS.md.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn; a copy is run)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench-deploy; removed at exit)
#   RUNS         timed deploys, and timed rollbacks (default 10, min 5)
#   CYCLES       deploy + rollback cycles under wrk (default 5)
#   HAPROXY      1 (default) = part (d); 0 = skip it
#   HAP_DRAINS   haproxy drain runs (default 5); HAP_RELOADS reload runs (default 3)
#   POLL_MS      pause between the polling client's requests (default 1)
#   PORT_BASE    first TCP port used on 127.0.0.1 (default 27200; +0 the
#                environment, +1 its admin, +10..+12 nginx and haproxy)
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 30; the CPU busy % and load are recorded)
#   BENCH_STRICT 1 = also exit non-zero when a goal is not met
# shellcheck disable=SC2046,SC2091 # commands built as words, split on purpose
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench-deploy}"
RUNS="${RUNS:-10}"
CYCLES="${CYCLES:-5}"
HAPROXY="${HAPROXY:-1}"
HAP_DRAINS="${HAP_DRAINS:-5}"
HAP_RELOADS="${HAP_RELOADS:-3}"
POLL_MS="${POLL_MS:-1}"
PORT_BASE="${PORT_BASE:-27200}"
QUIET_WAIT="${QUIET_WAIT:-30}"
GOAL_DEPLOY_MS=1000
GOAL_ROLLBACK_MS=100
[ "$(id -u)" = 0 ] || die "the deploy benchmark needs root (instances are containers)"
[ "$RUNS" -ge 5 ] || die "RUNS must be at least 5"

ENV_PORT=$PORT_BASE
ADMIN_PORT=$((PORT_BASE + 1))
NG1_PORT=$((PORT_BASE + 10))
NG2_PORT=$((PORT_BASE + 11))
HAP_PORT=$((PORT_BASE + 12))
URL="http://127.0.0.1:$ENV_PORT/"

# ---- peers -------------------------------------------------------------------------
need_pkgs=()
for pair in wrk:wrk python3:python3; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need_pkgs+=(busybox-static)
if [ "$HAPROXY" = 1 ]; then
	command -v haproxy >/dev/null 2>&1 || need_pkgs+=(haproxy)
	command -v nginx >/dev/null 2>&1 || need_pkgs+=(nginx-light)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || log "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null ||
		log "apt-get install ${need_pkgs[*]} failed"
fi
for c in wrk python3; do command -v "$c" >/dev/null || die "$c missing"; done
if [ "$HAPROXY" = 1 ] && ! { command -v haproxy && command -v nginx; } >/dev/null; then
	log "haproxy or nginx missing: no part (d)"
	HAPROXY=0
fi
ports=("$ENV_PORT" "$ADMIN_PORT")
[ "$HAPROXY" = 1 ] && ports+=("$NG1_PORT" "$NG2_PORT" "$HAP_PORT")
for p in "${ports[@]}"; do
	if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (set PORT_BASE)"; fi
done

# ---- processes: every one started here is stopped by pid at exit -----------------------
ROOT="$WORK/root"
DAEMON_PID="" ROUTER_PID="" WRK_PID="" NG1_PID="" NG2_PID=""
HAP_PIDS=() # every haproxy process (daemonized: from its pidfile)
CG_PARENTS=()
for h in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do CG_PARENTS+=("$h/cairn"); done
declare -A PREEXISTING
for p in "${CG_PARENTS[@]}"; do [ -e "$p" ] && PREEXISTING[$p]=1; done
stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then SIGKILL
	local pid=$1 sig=${2:-TERM} i
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
list_instances() {
	"$CAIRN" --root "$ROOT" ps -a --json 2>/dev/null |
		python3 -c 'import json, sys
for i in json.load(sys.stdin): print(i["id"])' 2>/dev/null || true
}
cleanup() {
	set +e
	stop_pid "$WRK_PID" INT
	local p
	for p in "${HAP_PIDS[@]}"; do stop_pid "$p"; done
	stop_pid "$NG1_PID"
	stop_pid "$NG2_PID"
	stop_pid "$DAEMON_PID"
	stop_pid "$ROUTER_PID"
	if [ -x "$WORK/cairn-bin" ] && [ -d "$ROOT" ]; then
		for id in $(list_instances); do "$CAIRN" --root "$ROOT" rm -f "$id" >/dev/null 2>&1; done
	fi
	WRK_PID="" DAEMON_PID="" ROUTER_PID="" NG1_PID="" NG2_PID="" HAP_PIDS=()
	if [ -d "$WORK" ]; then # no mount may be left under the work dir
		findmnt -rn -o TARGET | awk -v w="$WORK" 'index($0, w "/") == 1' | sort -r |
			while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	fi
	for p in "${CG_PARENTS[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || rmdir "$p" 2>/dev/null
	done
	[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK/out"
CAIRN_SRC="$CAIRN"
[ -x "$CAIRN_SRC" ] || die "cairn binary $CAIRN_SRC not found (ninja -C build)"
cp "$CAIRN_SRC" "$WORK/cairn-bin"
CAIRN="$WORK/cairn-bin"
C=("$CAIRN" --root "$ROOT")
REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || REV="$REV (src/ differs from it)"
CAIRN_BUILT="$(date -u -r "$CAIRN_SRC" '+%Y-%m-%d %H:%M:%S UTC')"
CAIRN_SUM="$(sha256sum "$CAIRN" | cut -c1-12)"
MACHINE="$(machine_info "$WORK")"
loadavg() { cut -d' ' -f1 /proc/loadavg; }
quiet() { # quiet: wait for an idle machine; sets BUSY and LOAD
	if ! wait_quiet "$QUIET_WAIT"; then log "still busy (${QUIET_BUSY}% CPU) after ${QUIET_WAIT}s: measuring anyway"; fi
	BUSY=$QUIET_BUSY
	LOAD="$(loadavg)"
}
PROBLEMS=()
r1() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.1f", v }'; }

# ---- the images: the base (busybox-static) and hello:v1, hello:v2 -------------------
"$REPO_ROOT/examples/mkrootfs.sh" "$WORK/rootfs"
"${C[@]}" import "$WORK/rootfs" busybox:demo >/dev/null 2>&1
cp -a "$REPO_ROOT/examples/hello" "$WORK/hello"
t0=$(date +%s%N)
"${C[@]}" build -q -t hello:v1 "$WORK/hello" >/dev/null
BUILD1_MS=$((($(date +%s%N) - t0) / 1000000))
echo "hello from v2" >"$WORK/hello/www/index.html"
t0=$(date +%s%N)
"${C[@]}" build -q -t hello:v2 "$WORK/hello" >/dev/null
BUILD2_MS=$((($(date +%s%N) - t0) / 1000000))
image_id() { "${C[@]}" images --json 2>/dev/null | python3 -c 'import json, sys
for i in json.load(sys.stdin):
    if "%s:%s" % (i.get("name"), i.get("tag")) == sys.argv[1]: print(i.get("id")); break' "$1" 2>/dev/null || true; }
V1_ID="$(image_id hello:v1)"
V2_ID="$(image_id hello:v2)"

# The service file: examples/hello/cairn.yml with the image given by --image,
# one environment on this benchmark's ports.
cat >"$WORK/cairn.yml" <<EOF
service: hello
image: hello:v1
run:
  command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
  port: 8080
health: { http: /healthz, interval: 100ms, timeout: 1s, healthy_after: 2 }
deploy: { strategy: blue-green, drain_timeout: 5s, keep_previous: 1 }
environments:
  bench: { replicas: 3, listen: 127.0.0.1:$ENV_PORT, admin: 127.0.0.1:$ADMIN_PORT }
EOF

# ---- the daemon (it starts the router) ---------------------------------------------------
"${C[@]}" daemon >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for i in $(seq 200); do "${C[@]}" status >/dev/null 2>&1 && break; sleep 0.05; done
"${C[@]}" status >/dev/null 2>&1 || die "the daemon did not start: $(cat "$WORK/daemon.log")"
router_call() { # router_call JSON: the router's answer (its control socket)
	python3 - "$ROOT/router.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.settimeout(5); s.connect(sys.argv[1])
s.send(sys.argv[2].encode()); print(s.recv(1 << 20).decode())
PY
}
ROUTER_PID="$(router_call '{"op":"ping"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')"
[ -n "$ROUTER_PID" ] || die "no router pid"
log "daemon pid $DAEMON_PID, router pid $ROUTER_PID"

# The two commands as words (no path here holds a space), used unquoted.
deploy_cmd() { echo "${C[*]} deploy --json -f $WORK/cairn.yml --image hello:$1 bench"; }
rollback_cmd() { echo "${C[*]} rollback --json bench"; }
# switch OUT EXPECT CMD...: the command under switch.py; its JSON in OUT
switch() {
	local out=$1 expect=$2
	shift 2
	python3 "$HERE/switch.py" "$URL" "$expect" 30 "$POLL_MS" -- "$@" >"$out"
}
jget() { python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = d
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("-" if v is None else v)' "$1" "$2"; }
# done_field OUT FIELD: a timing from the command's own "done" line (--json)
done_field() { python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
done = [json.loads(l) for l in d["stdout"].splitlines() if l.startswith("{") and "\"done\"" in l]
t = done[-1].get("timings", {}) if done else {}
v = t.get(sys.argv[2])
print("-" if v is None else v)' "$1" "$2"; }
outcome() { python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
done = [json.loads(l) for l in d["stdout"].splitlines() if l.startswith("{") and "\"done\"" in l]
print(done[-1].get("outcome", "?") if done else "none")' "$1"; }
messages() { python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for l in d["stdout"].splitlines():
    if l.startswith("{"):
        j = json.loads(l)
        if j.get("message"): print("%7.3fs  %s" % (j.get("ms", 0) / 1000, j["message"]))' "$1"; }

# ---- first release (untimed): v1 --------------------------------------------------------
$(deploy_cmd v1) >"$WORK/out/first.json" 2>"$WORK/out/first.err" ||
	die "the first deploy failed: $(cat "$WORK/out/first.err" "$WORK/out/first.json")"
body="$(curl -s "$URL" 2>/dev/null || python3 -c 'import urllib.request, sys; print(urllib.request.urlopen(sys.argv[1]).read().decode(), end="")' "$URL")"
[ "$body" = "hello from v1" ] || die "v1 does not answer on $URL (got: $body)"

# ---- (a) deploys -----------------------------------------------------------------------------
DEP_TSV="$WORK/out/deploys.tsv" # run image external_ms cmd_ms started healthy switched total polls errors non2xx busy load
: >"$DEP_TSV"
CUR=v1 PREV=""
for r in $(seq "$RUNS"); do
	if [ "$CUR" = v1 ]; then img=v2; else img=v1; fi
	quiet
	out="$WORK/out/deploy-$r.json"
	switch "$out" "hello from $img" $(deploy_cmd "$img")
	rc="$(jget "$out" rc)"
	oc="$(outcome "$out")"
	if [ "$rc" != 0 ] || [ "$oc" != live ]; then
		PROBLEMS+=("deploy $r (hello:$img) exited $rc, outcome $oc: $(jget "$out" stderr | tr '\n' ' ')")
	fi
	ext="$(jget "$out" switch_ms)"
	[ "$ext" != - ] || PROBLEMS+=("deploy $r (hello:$img): no response from $img within 30 s")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$img" "$ext" "$(jget "$out" cmd_ms)" \
		"$(done_field "$out" instances_started_ms)" "$(done_field "$out" healthy_ms)" \
		"$(done_field "$out" switched_ms)" "$(done_field "$out" total_ms)" \
		"$(jget "$out" polls)" "$(jget "$out" errors)" "$(jget "$out" non_2xx)" "$BUSY" "$LOAD" >>"$DEP_TSV"
	log "deploy $r hello:$img: first $img answer after $(r1 "$ext") ms; command $(r1 "$(jget "$out" cmd_ms)") ms; own timings switched $(done_field "$out" switched_ms) ms, total $(done_field "$out" total_ms) ms (busy before $BUSY%, load $LOAD)"
	PREV=$CUR CUR=$img
done
messages "$WORK/out/deploy-$RUNS.json" >"$WORK/out/deploy-last.txt"

# ---- (b) rollbacks to the warm previous release ----------------------------------------------
RB_TSV="$WORK/out/rollbacks.tsv" # run image external_ms cmd_ms switched total warm polls errors non2xx busy load
: >"$RB_TSV"
for r in $(seq "$RUNS"); do
	quiet
	out="$WORK/out/rollback-$r.json"
	switch "$out" "hello from $PREV" $(rollback_cmd)
	rc="$(jget "$out" rc)"
	oc="$(outcome "$out")"
	warm=yes
	messages "$out" | grep -q "is not running" && warm=no
	[ "$warm" = yes ] || PROBLEMS+=("rollback $r: the previous release was not warm (it was deployed again)")
	if [ "$rc" != 0 ] || [ "$oc" != live ]; then
		PROBLEMS+=("rollback $r (to hello:$PREV) exited $rc, outcome $oc: $(jget "$out" stderr | tr '\n' ' ')")
	fi
	ext="$(jget "$out" switch_ms)"
	[ "$ext" != - ] || PROBLEMS+=("rollback $r: no response from $PREV within 30 s")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$PREV" "$ext" "$(jget "$out" cmd_ms)" \
		"$(done_field "$out" switched_ms)" "$(done_field "$out" total_ms)" "$warm" \
		"$(jget "$out" polls)" "$(jget "$out" errors)" "$(jget "$out" non_2xx)" "$BUSY" "$LOAD" >>"$RB_TSV"
	log "rollback $r to hello:$PREV (warm: $warm): first answer after $(r1 "$ext") ms; command $(r1 "$(jget "$out" cmd_ms)") ms; own timings switched $(done_field "$out" switched_ms) ms (busy before $BUSY%, load $LOAD)"
	x=$CUR CUR=$PREV PREV=$x
done
messages "$WORK/out/rollback-$RUNS.json" >"$WORK/out/rollback-last.txt"

# ---- (c) zero downtime: wrk through deploy + rollback cycles ---------------------------------
wrk_field() { # wrk_field FILE rps|requests|non2xx|sockerr|errline|p99
	case $2 in
	rps) awk '/^Requests\/sec:/ { print $2 }' "$1" ;;
	requests) awk '/ requests in / { print $1 }' "$1" ;;
	non2xx) awk -F': ' '/Non-2xx or 3xx responses/ { n = $2 } END { print n + 0 }' "$1" ;;
	sockerr) awk '/Socket errors:/ { gsub(",", ""); n = $4 + $6 + $8 + $10 } END { print n + 0 }' "$1" ;;
	errline) awk '/Socket errors:/ { sub(/^ */, ""); print; f = 1 } END { if (!f) print "Socket errors: none" }' "$1" ;;
	p99) awk '$1 == "99%" { print $2 }' "$1" ;;
	esac
}
# listen_drops: TcpExtListenDrops summed over the namespaces of the running
# instances (their servers' accept queues overflowing: a SYN dropped, and
# retransmitted by the client 1 s later)
listen_drops() {
	local pid s=0 v
	for pid in $("${C[@]}" ps --json 2>/dev/null | python3 -c 'import json, sys
for i in json.load(sys.stdin):
    if i.get("pid"): print(i["pid"])' 2>/dev/null); do
		v="$(nsenter -t "$pid" -n nstat -az TcpExtListenDrops 2>/dev/null | awk '$1 == "TcpExtListenDrops" { print $2 }')"
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
# First a baseline: the same wrk for 5 s with nothing changing.
quiet
BL_BUSY=$BUSY BL_LOAD=$LOAD
BL_OUT="$WORK/out/baseline.txt"
bl_d0="$(listen_drops)"
wrk -t2 -c32 -d5s --latency "$URL" >"$BL_OUT" 2>&1 || true
BL_DROPS=$(($(listen_drops) - bl_d0))
log "baseline (no change): $(awk '/^Requests\/sec:/ { print $2 }' "$BL_OUT") req/s, p99 $(awk '$1 == "99%" { print $2 }' "$BL_OUT"), listen drops in the instances $BL_DROPS"
quiet
ZD_BUSY=$BUSY ZD_LOAD=$LOAD
ZD_OUT="$WORK/out/zero-downtime.txt"
ZD_STATS0="$(router_call '{"op":"stats"}')"
wrk -t2 -c32 -d600s --latency "$URL" >"$ZD_OUT" 2>&1 &
WRK_PID=$!
sleep 1
ZD_TSV="$WORK/out/zd.tsv" # cycle deploy_rc deploy_switched deploy_total rollback_rc rollback_switched
: >"$ZD_TSV"
zd_t0=$(date +%s%N)
for k in $(seq "$CYCLES"); do
	if [ "$CUR" = v1 ]; then img=v2; else img=v1; fi
	drc=0
	$(deploy_cmd "$img") >"$WORK/out/zd-deploy-$k.out" 2>"$WORK/out/zd-deploy-$k.err" || drc=$?
	rrc=0
	$(rollback_cmd) >"$WORK/out/zd-rollback-$k.out" 2>"$WORK/out/zd-rollback-$k.err" || rrc=$?
	[ "$drc" = 0 ] || PROBLEMS+=("under load, cycle $k: deploy of hello:$img exited $drc: $(tr '\n' ' ' <"$WORK/out/zd-deploy-$k.err")")
	[ "$rrc" = 0 ] || PROBLEMS+=("under load, cycle $k: rollback exited $rrc: $(tr '\n' ' ' <"$WORK/out/zd-rollback-$k.err")")
	dsw="$(python3 -c 'import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "\"done\"" in l]
t = d[-1].get("timings", {}) if d else {}
print(t.get("switched_ms", "-"), t.get("total_ms", "-"))' "$WORK/out/zd-deploy-$k.out")"
	rsw="$(python3 -c 'import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "\"done\"" in l]
t = d[-1].get("timings", {}) if d else {}
print(t.get("switched_ms", "-"), t.get("total_ms", "-"))' "$WORK/out/zd-rollback-$k.out")"
	printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$img" "$drc" "$dsw" "$rrc $rsw" >>"$ZD_TSV"
	log "under load, cycle $k: deploy hello:$img rc $drc (switched, total ms: $dsw), rollback rc $rrc (switched, total ms: $rsw)"
	# the rollback went back to CUR: CUR stays live, img is the warm previous
	PREV=$img
done
sleep 1
zd_ms=$((($(date +%s%N) - zd_t0) / 1000000))
stop_pid "$WRK_PID" INT
WRK_PID=""
ZD_STATS1="$(router_call '{"op":"stats"}')"
ZD_REQ="$(wrk_field "$ZD_OUT" requests)"
ZD_RPS="$(wrk_field "$ZD_OUT" rps)"
ZD_NON2XX="$(wrk_field "$ZD_OUT" non2xx)"
ZD_SOCK="$(wrk_field "$ZD_OUT" sockerr)"
ZD_ERRLINE="$(wrk_field "$ZD_OUT" errline)"
ZD_P99="$(wrk_field "$ZD_OUT" p99)"
ZD_ROUTER="$(python3 -c 'import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ea, eb = a["envs"].get("bench", {}), b["envs"].get("bench", {})
print("%d requests, %d errors, %d without a backend" % (eb.get("requests", 0) - ea.get("requests", 0),
    eb.get("errors", 0) - ea.get("errors", 0), eb.get("no_backend", 0) - ea.get("no_backend", 0)))' "$ZD_STATS0" "$ZD_STATS1")"
[ -n "$ZD_REQ" ] || PROBLEMS+=("wrk printed no result under load: $(tr '\n' ' ' <"$ZD_OUT")")
if [ "${ZD_NON2XX:-0}" != 0 ] || [ "${ZD_SOCK:-0}" != 0 ]; then
	PROBLEMS+=("under load: wrk saw $ZD_NON2XX non-2xx responses and $ZD_SOCK socket errors ($ZD_ERRLINE); router: $ZD_ROUTER")
fi
log "zero downtime: $ZD_REQ requests in $zd_ms ms of cycles, non-2xx $ZD_NON2XX, $ZD_ERRLINE; router: $ZD_ROUTER"
kill -0 "$ROUTER_PID" 2>/dev/null || PROBLEMS+=("the router died (see $ROOT/router.log)")
ROUTER_LOG_LINES="$(wc -l <"$ROOT/router.log" 2>/dev/null || echo 0)"
ROUTER_LOG_TAIL="$(tail -3 "$ROOT/router.log" 2>/dev/null | tr '\n' ' ')"
INSTANCES_LEFT="$(list_instances | wc -l)"

# ---- (d) the peer: haproxy's runtime-API drain and its reload ---------------------------------
HAP_TSV="$WORK/out/haproxy.tsv" # kind run requests non2xx sockerr errline busy load
: >"$HAP_TSV"
if [ "$HAPROXY" = 1 ]; then
	# stop cairn's side first: the machine is the peer's alone
	stop_pid "$DAEMON_PID"
	DAEMON_PID=""
	for n in 1 2; do
		port=$NG1_PORT
		[ "$n" = 2 ] && port=$NG2_PORT
		mkdir -p "$WORK/nginx$n/logs" "$WORK/nginx$n/www"
		echo "hello from nginx $n" >"$WORK/nginx$n/www/index.html"
		cat >"$WORK/nginx$n/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/nginx$n/logs/error.log warn;
pid $WORK/nginx$n/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/html;
    server { listen 127.0.0.1:$port; root $WORK/nginx$n/www; location / { } }
}
EOF
		nginx -p "$WORK/nginx$n" -c "$WORK/nginx$n/nginx.conf" -g 'daemon off;' &
		if [ "$n" = 1 ]; then NG1_PID=$!; else NG2_PID=$!; fi
	done
	cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4000
    stats socket $WORK/haproxy.sock mode 600 level admin
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$HAP_PORT
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:$NG1_PORT
    server s2 127.0.0.1:$NG2_PORT
EOF
	hap_pids_add() { local p; for p in $(cat "$WORK/haproxy.pid" 2>/dev/null); do HAP_PIDS+=("$p"); done; }
	haproxy -D -f "$WORK/haproxy.cfg" -p "$WORK/haproxy.pid"
	hap_pids_add
	for i in $(seq 100); do
		python3 -c 'import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)' "http://127.0.0.1:$HAP_PORT/" 2>/dev/null && break
		sleep 0.05
	done
	hap_cmd() { python3 - "$WORK/haproxy.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
d = b""
while True:
    b = s.recv(65536)
    if not b: break
    d += b
sys.stdout.write(d.decode())
PY
	}
	HAP_VER="$( (haproxy -v || true) | awk 'NR == 1 { print $3 }')"
	HAP_NBTHREAD="$(hap_cmd 'show info' | awk -F': ' '$1 == "Nbthread" { print $2 }')"
	hap_run() { # hap_run KIND RUN: wrk 4 s, the change at 1 s (drain: ready again at 3 s)
		local kind=$1 r=$2 out="$WORK/out/haproxy-$1-$2.txt"
		quiet
		wrk -t2 -c32 -d4s --latency "http://127.0.0.1:$HAP_PORT/" >"$out" 2>&1 &
		WRK_PID=$!
		sleep 1
		if [ "$kind" = drain ]; then
			hap_cmd "set server be/s1 state drain" >/dev/null
			sleep 2
			hap_cmd "set server be/s1 state ready" >/dev/null
		else
			haproxy -D -f "$WORK/haproxy.cfg" -p "$WORK/haproxy.pid" -sf $(cat "$WORK/haproxy.pid")
			hap_pids_add
		fi
		wait "$WRK_PID" || true
		WRK_PID=""
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$r" "$(wrk_field "$out" requests)" "$(wrk_field "$out" non2xx)" \
			"$(wrk_field "$out" sockerr)" "$(wrk_field "$out" errline)" "$BUSY" "$LOAD" >>"$HAP_TSV"
		log "haproxy $kind $r: $(wrk_field "$out" requests) requests, non-2xx $(wrk_field "$out" non2xx), $(wrk_field "$out" errline)"
	}
	for r in $(seq "$HAP_DRAINS"); do hap_run drain "$r"; done
	for r in $(seq "$HAP_RELOADS"); do hap_run reload "$r"; done
fi

# ---- the report ------------------------------------------------------------------------------
median_col() { # median_col TSV COLUMN [FILTER_COL FILTER_VALUE]
	awk -F'\t' -v c="$2" -v fc="${3:-0}" -v fv="${4:-}" '(fc == 0 || $fc == fv) && $c != "-" && $c != "" { v[n++] = $c + 0 }
		END { if (!n) { print "-"; exit }
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
			m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
			printf "%.1f", m }' "$1"
}
range_col() {
	awk -F'\t' -v c="$2" '$c != "-" && $c != "" { v = $c + 0; if (!n++ || v < lo) lo = v; if (n == 1 || v > hi) hi = v }
		END { if (!n) print "-"; else printf "%.1f-%.1f", lo, hi }' "$1"
}
sum_col() { awk -F'\t' -v c="$2" '{ s += $c } END { print s + 0 }' "$1"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a < b) }'; }
verdict() { if "$@"; then echo met; else echo "**not met**"; fi; }
GOAL_FAIL=0
DEP_EXT="$(median_col "$DEP_TSV" 3)"
DEP_SW="$(median_col "$DEP_TSV" 7)"
RB_EXT="$(median_col "$RB_TSV" 3)"
RB_SW="$(median_col "$RB_TSV" 5)"
BODY="$WORK/out/section.md"
{
	echo "## deploy"
	echo
	echo "Blue-green deploys and warm rollbacks by cairn's daemon, a service like examples/hello with 3 replicas, and haproxy's runtime-API drain and reload for comparison; \`bench/deploy/run.sh\`."
	echo
	echo "- Machine: $MACHINE."
	echo "- cairn $REV, binary built $CAIRN_BUILT (sha256 $CAIRN_SUM…): \`cairn --root \$W/root daemon\` (it starts the router, pid $ROUTER_PID), its own store and ports."
	echo "- The service: examples/hello's Dockerfile (busybox httpd, HEALTHCHECK) built twice, \`hello:v1\` (\`${V1_ID:0:19}\`, \"hello from v1\") and \`hello:v2\` (\`${V2_ID:0:19}\`, \"hello from v2\"), before any timing: \`cairn build\` took $BUILD1_MS ms (v1, the first build in the store: COPY and metadata, no RUN) and $BUILD2_MS ms (v2, one file changed); builds are not in the times below. \$W/cairn.yml: examples/hello/cairn.yml with \`image: hello:v1\`, no \`build:\`, one environment \`bench: { replicas: 3, listen: 127.0.0.1:$ENV_PORT, admin: 127.0.0.1:$ADMIN_PORT }\`; health \`{ http: /healthz, interval: 100ms, timeout: 1s, healthy_after: 2 }\`, deploy \`{ strategy: blue-green, drain_timeout: 5s, keep_previous: 1 }\`."
	echo "- External times: bench/deploy/switch.py polls http://127.0.0.1:$ENV_PORT/ (GET on a keep-alive connection, ${POLL_MS} ms pause between requests), starts the command, and takes the time from the command's start to the arrival of the first answer from the other version. The command's own figures come from its \`--json\` \"done\" line (the same \`timings\` the human output prints as \"traffic switched after …, done in …\"); they count from the daemon's start of the release, after the command reached the daemon."
	echo "- Before each timed command the script waits (at most ${QUIET_WAIT} s) for an idle machine (< 10% CPU over 2 s); the busy % and load average seen are in the tables."
	echo
	echo "(a) Deploy of 3 replicas, $RUNS runs alternating hello:v2 / hello:v1 (\`--image\`, nothing built), a release warm behind each (keep_previous 1, so every deploy also retires the oldest warm release after the switch):"
	echo
	echo "| | median ms | min-max ms |"
	echo "|---|---:|---:|"
	echo "| **command start → first answer from the new version** (external) | **$DEP_EXT** | $(range_col "$DEP_TSV" 3) |"
	echo "| the command, start to exit (external) | $(median_col "$DEP_TSV" 4) | $(range_col "$DEP_TSV" 4) |"
	echo "| own timing: 3 instances started | $(median_col "$DEP_TSV" 5) | $(range_col "$DEP_TSV" 5) |"
	echo "| own timing: all 3 healthy (2 checks 100 ms apart) | $(median_col "$DEP_TSV" 6) | $(range_col "$DEP_TSV" 6) |"
	echo "| **own timing: traffic switched** | **$DEP_SW** | $(range_col "$DEP_TSV" 7) |"
	echo "| own timing: total (incl. retiring the oldest warm release) | $(median_col "$DEP_TSV" 8) | $(range_col "$DEP_TSV" 8) |"
	echo
	echo "Polling requests during the $RUNS deploys: $(sum_col "$DEP_TSV" 9), failed $(sum_col "$DEP_TSV" 10), non-2xx $(sum_col "$DEP_TSV" 11). Busy % / load before each run: $(awk -F'\t' '{ printf "%s%s%% / %s", (n++ ? ", " : ""), $12, $13 }' "$DEP_TSV")."
	echo
	echo "The last deploy's progress, as the daemon reported it:"
	echo
	echo '```'
	cat "$WORK/out/deploy-last.txt"
	echo '```'
	echo
	echo "(b) Rollback to the warm previous release, $RUNS rollbacks in a row (each goes back to the other image; $(awk -F'\t' '$7 == "yes"' "$RB_TSV" | wc -l) of $RUNS were route switches to warm instances):"
	echo
	echo "| | median ms | min-max ms |"
	echo "|---|---:|---:|"
	echo "| **command start → first answer from the old version** (external) | **$RB_EXT** | $(range_col "$RB_TSV" 3) |"
	echo "| the command, start to exit (external) | $(median_col "$RB_TSV" 4) | $(range_col "$RB_TSV" 4) |"
	echo "| own timing: traffic switched | $RB_SW | $(range_col "$RB_TSV" 5) |"
	echo "| own timing: total | $(median_col "$RB_TSV" 6) | $(range_col "$RB_TSV" 6) |"
	echo
	echo "Polling requests during the rollbacks: $(sum_col "$RB_TSV" 8), failed $(sum_col "$RB_TSV" 9), non-2xx $(sum_col "$RB_TSV" 10). Busy % / load before each run: $(awk -F'\t' '{ printf "%s%s%% / %s", (n++ ? ", " : ""), $11, $12 }' "$RB_TSV")."
	echo
	echo '```'
	cat "$WORK/out/rollback-last.txt"
	echo '```'
	echo
	echo "| goal (issue) | value | |"
	echo "|---|---:|---|"
	v="$(verdict lt "$DEP_EXT" "$GOAL_DEPLOY_MS")"; [ "$v" = met ] || GOAL_FAIL=1
	echo "| deploy of 3 replicas, command start → new version serving, median < 1 s | $DEP_EXT ms | $v |"
	v="$(verdict lt "$DEP_SW" "$GOAL_DEPLOY_MS")"; [ "$v" = met ] || GOAL_FAIL=1
	echo "| deploy of 3 replicas, \"traffic switched\" (own timing), median < 1 s | $DEP_SW ms | $v |"
	v="$(verdict lt "$RB_EXT" "$GOAL_ROLLBACK_MS")"; [ "$v" = met ] || GOAL_FAIL=1
	echo "| warm rollback, command start → old version serving, median < 100 ms | $RB_EXT ms | $v |"
	v="$( [ "${ZD_NON2XX:-1}" = 0 ] && [ "${ZD_SOCK:-1}" = 0 ] && [ -n "$ZD_REQ" ] && echo met || echo '**not met**')"; [ "$v" = met ] || GOAL_FAIL=1
	echo "| zero downtime: 0 non-2xx, 0 socket errors through $CYCLES deploy + rollback cycles | $ZD_NON2XX non-2xx, $ZD_SOCK socket errors | $v |"
	echo
	echo "(c) Zero downtime: \`wrk -t2 -c32 --latency http://127.0.0.1:$ENV_PORT/\` running through $CYCLES cycles of \`cairn deploy --image hello:vX\` then \`cairn rollback\` ($zd_ms ms of cycles, then wrk stopped with SIGINT; busy before ${ZD_BUSY}%, load $ZD_LOAD):"
	echo
	echo "- wrk: $ZD_REQ requests, ${ZD_RPS} req/s, p99 $ZD_P99, **non-2xx $ZD_NON2XX**, **$ZD_ERRLINE**."
	echo "- the router's counters for the environment over the same span: $ZD_ROUTER."
	echo "- each cycle (the command's own switched / total ms under this load):"
	echo
	echo "| cycle | deploy of | deploy exit, switched ms, total ms | rollback exit, switched ms, total ms |"
	echo "|---:|---|---|---|"
	awk -F'\t' '{ printf "| %s | hello:%s | %s %s | %s |\n", $1, $2, $3, $4, $5 }' "$ZD_TSV"
	echo
	echo "wrk's own output:"
	echo
	echo '```'
	sed '/^Running/d' "$ZD_OUT"
	echo '```'
	echo
	echo "Baseline, the same wrk for 5 s just before, with nothing changing (busy before ${BL_BUSY}%, load $BL_LOAD): $(wrk_field "$BL_OUT" requests) requests, $(wrk_field "$BL_OUT" rps) req/s, p50 $(awk '$1 == "50%" { print $2 }' "$BL_OUT"), p99 $(wrk_field "$BL_OUT" p99), max $(awk '$1 == "Latency" { print $4; exit }' "$BL_OUT"), non-2xx $(wrk_field "$BL_OUT" non2xx), $(wrk_field "$BL_OUT" errline). The long tail is the backend's, not the deploys': busybox httpd listens with a backlog of 9 and forks a child per connection, which it closes after one response, so the router opens a new upstream connection for every request; with 32 clients on 3 instances the accept queues overflow (TcpExtListenDrops summed over the instances' namespaces during the baseline: $BL_DROPS) and each dropped SYN is retransmitted 1 s later."
	if [ "$HAPROXY" = 1 ]; then
		echo
		echo "(d) The peer: haproxy $HAP_VER (\`haproxy -D\`, nbthread default = $HAP_NBTHREAD, http mode, \`option http-keep-alive\`, \`balance roundrobin\`) in front of two nginx (1 worker each, \`keepalive_requests 1000000\`), \`wrk -t2 -c32 -d4s --latency\` per run, the change 1 s in (cairn's daemon stopped first). drain: \`set server be/s1 state drain\` over the stats socket, \`state ready\` 2 s later; reload: \`haproxy -D -f \$W/haproxy.cfg -p \$W/haproxy.pid -sf \$(cat \$W/haproxy.pid)\` (no \`-x\` socket transfer, no master-worker mode)."
		echo
		echo "| change | run | requests | non-2xx | socket errors (wrk) | busy % / load before |"
		echo "|---|---:|---:|---:|---|---:|"
		awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s%% / %s |\n", $1, $2, $3, $4, $6, $7, $8 }' "$HAP_TSV"
		dr_bad="$(awk -F'\t' '$1 == "drain" && ($4 + $5) > 0' "$HAP_TSV" | wc -l)"
		rl_bad="$(awk -F'\t' '$1 == "reload" && ($4 + $5) > 0' "$HAP_TSV" | wc -l)"
		rl_lost="$(awk -F'\t' '$1 == "reload" { s += $4 + $5 } END { print s + 0 }' "$HAP_TSV")"
		echo
		echo "haproxy's drain lost requests in $dr_bad of $HAP_DRAINS runs; its reload in $rl_bad of $HAP_RELOADS runs ($rl_lost failed requests in all). cairn: $ZD_NON2XX non-2xx and $ZD_SOCK socket errors through $CYCLES deploy + rollback cycles, each a table switch plus a drain."
	fi
	echo
	echo "Instances left running at the end of the cairn part: $INSTANCES_LEFT (3 live + 3 warm expected). router.log: $ROUTER_LOG_LINES lines${ROUTER_LOG_TAIL:+ (last: \`$ROUTER_LOG_TAIL\`)}."
	if [ "${#PROBLEMS[@]}" -gt 0 ]; then
		echo
		echo "Problems seen:"
		for p in "${PROBLEMS[@]}"; do echo "- $p"; done
	fi
	echo
	echo "Commands (\`bench/deploy/run.sh\`; \`\$W\` = \`$WORK\`):"
	echo
	echo '```sh'
	echo "examples/mkrootfs.sh \$W/rootfs && cairn --root \$W/root import \$W/rootfs busybox:demo"
	echo "cp -a examples/hello \$W/hello && cairn --root \$W/root build -q -t hello:v1 \$W/hello"
	echo "echo 'hello from v2' > \$W/hello/www/index.html && cairn --root \$W/root build -q -t hello:v2 \$W/hello"
	echo "cairn --root \$W/root daemon &"
	echo "cairn --root \$W/root deploy --json -f \$W/cairn.yml --image hello:v1 bench   # first release, untimed"
	echo "python3 bench/deploy/switch.py http://127.0.0.1:$ENV_PORT/ 'hello from v2' 30 $POLL_MS -- cairn --root \$W/root deploy --json -f \$W/cairn.yml --image hello:v2 bench   # (a), then v1, v2, ..."
	echo "python3 bench/deploy/switch.py http://127.0.0.1:$ENV_PORT/ 'hello from vX' 30 $POLL_MS -- cairn --root \$W/root rollback --json bench   # (b), x$RUNS"
	echo "wrk -t2 -c32 -d5s --latency http://127.0.0.1:$ENV_PORT/   # (c) baseline, nothing changing"
	echo "wrk -t2 -c32 -d600s --latency http://127.0.0.1:$ENV_PORT/ &   # (c): $CYCLES x (deploy --image hello:vX; rollback), then kill -INT"
	if [ "$HAPROXY" = 1 ]; then
		echo "nginx -p \$W/nginx1 -c \$W/nginx1/nginx.conf -g 'daemon off;' &   # :$NG1_PORT; nginx2 on :$NG2_PORT"
		echo "haproxy -D -f \$W/haproxy.cfg -p \$W/haproxy.pid   # :$HAP_PORT"
		echo "wrk -t2 -c32 -d4s --latency http://127.0.0.1:$HAP_PORT/ &  sleep 1; echo 'set server be/s1 state drain' | <stats socket>; sleep 2; echo 'set server be/s1 state ready' | <stats socket>"
		echo "wrk -t2 -c32 -d4s --latency http://127.0.0.1:$HAP_PORT/ &  sleep 1; haproxy -D -f \$W/haproxy.cfg -p \$W/haproxy.pid -sf \$(cat \$W/haproxy.pid)"
	fi
	echo '```'
} >"$BODY"
results_put_section deploy "$BODY"
cat "$BODY"
log "results in $RESULTS_MD"
if [ "${#PROBLEMS[@]}" -gt 0 ]; then
	log "problems: ${PROBLEMS[*]}"
	exit 1
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$GOAL_FAIL" = 1 ]; then exit 1; fi
exit 0
