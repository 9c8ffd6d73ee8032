#!/usr/bin/env bash
# Router benchmark (issue "deploys": the router must match haproxy): the same
# backend for everyone, a private nginx on 127.0.0.1 serving a small static
# file (access_log off, keepalive_requests 1000000), measured with
#   wrk -t2 -c64 -d10s --latency
# (a) direct to nginx
# (b) through cairn's router in http mode: `cairn --root $W/root router`, at
#     its default worker count (one per CPU, or $CAIRN_ROUTER_WORKERS),
#     given an "env" message over $W/root/router.sock whose one backend is
#     127.0.0.1:NGINX_PORT in the host's network namespace (this script's
#     /proc/self/ns/net passed with SCM_RIGHTS: bench/router/ctl.py)
# (c) the same router in tcp mode
# (d), (e) a second router, `cairn --root $W/root2 router --workers $ROUTER2_WORKERS` (the other setting: 1 where the default is several, else 2), given
#     the same two envs on two more ports: http and tcp mode
# (f) haproxy, http mode (option http-keep-alive, nbthread left at its default)
# (g) haproxy, tcp mode
# ROUNDS rounds, the order alternating between rounds, medians of req/s, p50
# and p99 (wrk's own figures), the CPU time each process used per request
# (from /proc/PID/task/*/schedstat: on-CPU ns of every thread, user + system),
# then the same once more with nginx at worker_processes 2, then a profile
# pass (perf stat: syscalls per request for every proxy; perf record: where
# the default router's time goes). Results to the terminal and the
# "## router" section of bench/RESULTS.md.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn; a copy is run)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench-router; removed at exit)
#   ROUNDS       rounds with nginx at 1 worker (default 3)
#   ROUNDS_W2    rounds with nginx at 2 workers (default 1; 0 = skip)
#   DURATION     seconds of each wrk run (default 10)
#   PROFILE      1 (default) = the perf pass; 0 = skip it
#   PORT_BASE    first of the 7 TCP ports used on 127.0.0.1 (default 27100)
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 60; the CPU busy % and the load average
#                seen are recorded)
#   FOREIGN_MAX  a run during which other processes (all busy CPU time less
#                that of wrk, the proxy and nginx) used more than this % of
#                the machine is measured again (default 10), at most RETRIES
#                times (default 2); the CPU share of others is recorded
#   BENCH_STRICT 1 = also exit non-zero when a goal is not met
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench-router}"
ROUNDS="${ROUNDS:-3}"
ROUNDS_W2="${ROUNDS_W2:-1}"
DURATION="${DURATION:-10}"
PROFILE="${PROFILE:-1}"
PORT_BASE="${PORT_BASE:-27100}"
QUIET_WAIT="${QUIET_WAIT:-60}"
RETRIES="${RETRIES:-2}"
FOREIGN_MAX="${FOREIGN_MAX:-10}"
CONNS=64
THREADS=2
GOAL_AIM=1.2 # the issue's aim: 1.2x haproxy's requests/s
[ "$(id -u)" = 0 ] || die "the router benchmark needs root (the router enters network namespaces)"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"

NGINX_PORT=$PORT_BASE
CH_PORT=$((PORT_BASE + 1))  # cairn http
CT_PORT=$((PORT_BASE + 2))  # cairn tcp
HH_PORT=$((PORT_BASE + 3))  # haproxy http
HT_PORT=$((PORT_BASE + 4))  # haproxy tcp
C2H_PORT=$((PORT_BASE + 5)) # the second router, http
C2T_PORT=$((PORT_BASE + 6)) # the second router, tcp
# the second router runs the other setting: one worker where the default is
# several (one per CPU), two where the default is one
ROUTER2_WORKERS="${ROUTER2_WORKERS:-$([ "$(nproc)" -gt 1 ] && echo 1 || echo 2)}"
ALL_PORTS=("$NGINX_PORT" "$CH_PORT" "$CT_PORT" "$HH_PORT" "$HT_PORT" "$C2H_PORT" "$C2T_PORT")

# ---- peers -------------------------------------------------------------------------
need_pkgs=()
for pair in nginx:nginx-light wrk:wrk haproxy:haproxy python3:python3; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null 2>&1; then need_pkgs+=(linux-perf); fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || log "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null ||
		log "apt-get install ${need_pkgs[*]} failed"
fi
for c in nginx wrk haproxy python3; do command -v "$c" >/dev/null || die "$c missing"; done
if [ "$PROFILE" = 1 ] && ! perf stat -e task-clock true >/dev/null 2>&1; then
	log "perf does not work here: no profile pass"
	PROFILE=0
fi
PERF_EVENT="cycles (hardware counter)"
if [ "$PROFILE" = 1 ] && perf stat -x, -e cycles true 2>&1 >/dev/null | grep -q 'not supported'; then
	PERF_EVENT="cpu-clock: no hardware counters here (a VM), so perf samples on a timer interrupt and time spent with interrupts off (softirq network processing, the scheduler) is charged to where they come back on: _raw_spin_unlock_irqrestore and finish_task_switch stand for that time, not for lock contention"
fi
# the ports must be free (another nginx or benchmark may hold them)
for p in "${ALL_PORTS[@]}"; do
	if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (set PORT_BASE)"; fi
done

# ---- processes: every one started here is stopped by pid at exit ----------------------
NGINX_PID="" ROUTER_PID="" ROUTER2_PID="" HAPROXY_PID="" LOAD_PID=""
stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then SIGKILL
	local pid=$1 sig=${2:-TERM} i
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	set +e
	stop_pid "$LOAD_PID" INT
	stop_pid "$HAPROXY_PID"
	stop_pid "$ROUTER2_PID"
	stop_pid "$ROUTER_PID"
	stop_pid "$NGINX_PID" # nginx's master stops its workers
	NGINX_PID="" ROUTER_PID="" ROUTER2_PID="" HAPROXY_PID="" LOAD_PID=""
	[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK/www" "$WORK/nginx/logs" "$WORK/root" "$WORK/root2" "$WORK/out"
CAIRN_SRC="$CAIRN"
[ -x "$CAIRN_SRC" ] || die "cairn binary $CAIRN_SRC not found (ninja -C build)"
cp "$CAIRN_SRC" "$WORK/cairn-bin"
CAIRN="$WORK/cairn-bin"
REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || REV="$REV (src/ differs from it)"
CAIRN_BUILT="$(date -u -r "$CAIRN_SRC" '+%Y-%m-%d %H:%M:%S UTC')"
CAIRN_SUM="$(sha256sum "$CAIRN" | cut -c1-12)"
CTL="python3 $HERE/ctl.py $WORK/root/router.sock"
CTL2="python3 $HERE/ctl.py $WORK/root2/router.sock"

# the static file: 100 bytes of text
python3 -c 'import random; r = random.Random(7); print("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(99)))' >"$WORK/www/index.html"
FILE_BYTES="$(stat -c %s "$WORK/www/index.html")"

# ---- nginx ------------------------------------------------------------------------
nginx_conf() { # nginx_conf WORKERS
	cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $1;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    default_type text/html;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / { }
    }
}
EOF
}
wait_port() { # wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s)
	local i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	die "nothing listens on 127.0.0.1:$1"
}
start_nginx() { # start_nginx WORKERS
	stop_pid "$NGINX_PID"
	nginx_conf "$1"
	nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
	NGINX_PID=$!
	wait_port "$NGINX_PORT"
	local i
	for i in $(seq 100); do
		[ "$(ps -o pid= --ppid "$NGINX_PID" | wc -l)" -ge "$1" ] && return 0
		sleep 0.05
	done
	die "nginx did not start its $1 workers"
}
nginx_pids() { echo "$NGINX_PID" "$(ps -o pid= --ppid "$NGINX_PID" | tr -s " \n" " ")"; }
start_nginx 1

# ---- cairn's routers: the default worker count, and the other setting-----------------
# router_wait ROOT: until ROOT/router.sock exists (10 s)
router_wait() {
	local i
	for i in $(seq 200); do [ -S "$1/router.sock" ] && return 0; sleep 0.05; done
	die "the router in $1 did not start: $(cat "$1/router.log")"
}
# router_envs CTL HTTP_PORT TCP_PORT WHICH: the same two envs in either router
router_envs() {
	local ctl=$1 hp=$2 tp=$3 which=$4
	$ctl env bench-http "127.0.0.1:$hp" http "$NGINX_PORT" >/dev/null || die "the $which router refused the http env"
	$ctl env bench-tcp "127.0.0.1:$tp" tcp "$NGINX_PORT" >/dev/null || die "the $which router refused the tcp env"
}
# routers_healthy WHAT: until nginx is healthy in both envs of both routers
routers_healthy() {
	local ctl env
	for ctl in "$CTL" "$CTL2"; do
		for env in bench-http bench-tcp; do
			$ctl wait-healthy "$env" 10 || die "nginx $1 not healthy in $env (${ctl##* })"
		done
	done
}
# ROUTER_PID and ROUTER2_PID are set in this shell right after each start, so
# the cleanup stops both by pid whatever fails later
"$CAIRN" --root "$WORK/root" router >"$WORK/root/router.log" 2>&1 &
ROUTER_PID=$!
"$CAIRN" --root "$WORK/root2" router --workers "$ROUTER2_WORKERS" >"$WORK/root2/router.log" 2>&1 &
ROUTER2_PID=$!
router_wait "$WORK/root"
router_wait "$WORK/root2"
router_envs "$CTL" "$CH_PORT" "$CT_PORT" first
router_envs "$CTL2" "$C2H_PORT" "$C2T_PORT" second
routers_healthy "(1 worker)"
ROUTER_WORKERS="$($CTL workers)"
R2_SEEN="$($CTL2 workers)"
[ "$R2_SEEN" = "$ROUTER2_WORKERS" ] || die "the second router runs $R2_SEEN worker(s), not $ROUTER2_WORKERS"
[ "$($CTL ping)" = "$ROUTER_PID" ] || die "the first router's pid is not $ROUTER_PID"
[ "$($CTL2 ping)" = "$ROUTER2_PID" ] || die "the second router's pid is not $ROUTER2_PID"
ROUTER_WDESC="$ROUTER_WORKERS worker"
[ "$ROUTER_WORKERS" = 1 ] || ROUTER_WDESC+="s"

# ---- haproxy ----------------------------------------------------------------------
ULIMIT_N="$(ulimit -n)"
HAP_MAXCONN=4000
[ "$ULIMIT_N" -gt $((2 * HAP_MAXCONN + 100)) ] || HAP_MAXCONN=$(((ULIMIT_N - 100) / 2))
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $HAP_MAXCONN
    stats socket $WORK/haproxy.sock mode 600 level admin
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe_http
    mode http
    option http-keep-alive
    bind 127.0.0.1:$HH_PORT
    default_backend be_http
backend be_http
    mode http
    option http-keep-alive
    server s1 127.0.0.1:$NGINX_PORT
listen tcp_relay
    mode tcp
    bind 127.0.0.1:$HT_PORT
    server s1 127.0.0.1:$NGINX_PORT
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy refuses $WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
wait_port "$HH_PORT"
wait_port "$HT_PORT"
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
HAP_INFO="$(hap_cmd 'show info')"
HAP_NBTHREAD="$(awk -F': ' '$1 == "Nbthread" { print $2 }' <<<"$HAP_INFO")"
HAP_ULIMIT="$(awk -F': ' '$1 == "Ulimit-n" { print $2 }' <<<"$HAP_INFO")"

# the same bytes every way
for p in "${ALL_PORTS[@]}"; do
	body="$(curl -sf "http://127.0.0.1:$p/")" || die "GET through port $p failed"
	[ "$body" = "$(cat "$WORK/www/index.html")" ] || die "port $p served other bytes"
done

NGINX_VER="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
NGINX_PKG="$(dpkg-query -W -f '${Package} ${Version}' nginx-light 2>/dev/null || echo '?')"
HAP_VER="$( (haproxy -v || true) | awk 'NR == 1 { print $3 }')"
WRK_VER="$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')"
MACHINE="$(machine_info "$WORK")"

# ---- measuring ------------------------------------------------------------------------
# cpu_ns PID...: on-CPU ns of every thread of these processes
cpu_ns() {
	local pid t s=0 v
	for pid in "$@"; do
		for t in /proc/"$pid"/task/*/schedstat; do
			read -r v _ 2>/dev/null <"$t" || continue
			s=$((s + v))
		done
	done
	echo "$s"
}
# wait_ns PID...: ns the threads of these processes spent runnable but waiting
# for a CPU (the second field of schedstat)
wait_ns() {
	local pid t s=0 v w
	for pid in "$@"; do
		for t in /proc/"$pid"/task/*/schedstat; do
			read -r v w _ 2>/dev/null <"$t" || continue
			s=$((s + w))
		done
	done
	echo "$s"
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# to_ms VALUE: wrk's "1.07ms" / "512.00us" / "1.20s" / "1.00m" in ms
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}
# wrk_field FILE WHAT: rps | p50 | p99 | requests | non2xx | sockerr
wrk_field() {
	case $2 in
	rps) awk '/^Requests\/sec:/ { print $2 }' "$1" ;;
	p50) to_ms "$(awk '$1 == "50%" { print $2 }' "$1")" ;;
	p99) to_ms "$(awk '$1 == "99%" { print $2 }' "$1")" ;;
	requests) awk '/ requests in / { print $1 }' "$1" ;;
	non2xx) awk -F': ' '/Non-2xx or 3xx responses/ { n = $2 } END { print n + 0 }' "$1" ;;
	sockerr) awk '/Socket errors:/ { gsub(",", ""); n = $4 + $6 + $8 + $10 } END { print n + 0 }' "$1" ;;
	esac
}

# Targets: label, port, the proxy's pids (none for direct).
# cairn-* is the router at its default worker count, cairn2-* the one started
# with --workers $ROUTER2_WORKERS.
TARGETS=(direct cairn-http cairn-tcp cairn2-http cairn2-tcp haproxy-http haproxy-tcp)
declare -A PORT=([direct]=$NGINX_PORT [cairn-http]=$CH_PORT [cairn-tcp]=$CT_PORT
	[cairn2-http]=$C2H_PORT [cairn2-tcp]=$C2T_PORT [haproxy-http]=$HH_PORT [haproxy-tcp]=$HT_PORT)
declare -A LABEL=([direct]="direct to nginx"
	[cairn-http]="cairn router, default $ROUTER_WDESC, http" [cairn-tcp]="cairn router, default $ROUTER_WDESC, tcp"
	[cairn2-http]="cairn router, --workers $ROUTER2_WORKERS, http" [cairn2-tcp]="cairn router, --workers $ROUTER2_WORKERS, tcp"
	[haproxy-http]="haproxy, http" [haproxy-tcp]="haproxy, tcp")
proxy_pid() {
	case $1 in
	cairn-*) echo "$ROUTER_PID" ;;
	cairn2-*) echo "$ROUTER2_PID" ;;
	haproxy-*) echo "$HAPROXY_PID" ;;
	*) echo "" ;;
	esac
}

RUNS_TSV="$WORK/out/runs.tsv" # set target round rps p50 p99 requests non2xx sockerr proxy_us nginx_us busy load foreign wrk_us machine_us proxy_oncpu% proxy_wait%
: >"$RUNS_TSV"
PROBLEMS=()
# stat_busy: CPU ticks (USER_HZ) the whole machine spent in user, nice,
# system and steal so far (irq and softirq left out: the schedstat times of
# processes leave them out too, and on loopback most of it is this traffic's)
stat_busy() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }
stat_all() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; } # + irq, softirq
HZ="$(getconf CLK_TCK)"
DISCARDED=()
measure() { # measure SET TARGET ROUND: one wrk run, redone while others used the CPU
	local set=$1 t=$2 round=$3 out="$WORK/out/$1-$2-$3.txt" pp ng p0 p1 q0=0 q1=0 n0 n1 busy load s0 s1 a0 a1 w0 w1 attempt foreign
	for attempt in $(seq $((RETRIES + 1))); do
		if wait_quiet "$QUIET_WAIT"; then :; else log "still busy (${QUIET_BUSY}% CPU) after ${QUIET_WAIT}s: measuring anyway"; fi
		busy=$QUIET_BUSY
		load="$(loadavg)"
		pp="$(proxy_pid "$t")"
		ng="$(nginx_pids)"
		p0=0 p1=0
		[ -n "$pp" ] && p0="$(cpu_ns "$pp")" q0="$(wait_ns "$pp")"
		n0="$(cpu_ns $ng)"
		s0="$(stat_busy)"
		a0="$(stat_all)"
		w0="$(date +%s%N)"
		TIMEFORMAT='%3U %3S'
		{ time wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$t]}/" >"$out" 2>&1; } 2>"$out.time" ||
			{ cat "$out" >&2; die "wrk failed against $t"; }
		w1="$(date +%s%N)"
		s1="$(stat_busy)"
		a1="$(stat_all)"
		[ -n "$pp" ] && p1="$(cpu_ns "$pp")" q1="$(wait_ns "$pp")"
		n1="$(cpu_ns $ng)"
		# the CPU others used during the run, % of the machine: all busy time
		# less that of wrk, the proxy and nginx
		foreign="$(awk -v s0="$s0" -v s1="$s1" -v hz="$HZ" -v p="$((p1 - p0))" -v n="$((n1 - n0))" \
			-v w="$(awk '{ print $1 + $2 }' "$out.time")" -v wall="$((w1 - w0))" -v ncpu="$(nproc)" 'BEGIN {
			f = (s1 - s0) / hz * 1e9 - p - n - w * 1e9; if (f < 0) f = 0
			printf "%.1f", 100 * f / (wall * ncpu) }')"
		if awk -v f="$foreign" -v m="$FOREIGN_MAX" 'BEGIN { exit !(f > m) }' && [ "$attempt" -le "$RETRIES" ]; then
			log "$set round $round $t: other processes used ${foreign}% of the CPU during the run: measuring again"
			DISCARDED+=("$set round $round $t: $(wrk_field "$out" rps) req/s with ${foreign}% of the CPU used by others")
			continue
		fi
		break
	done
	local req rps p50 p99 non2xx sockerr pus nus wus mus
	req="$(wrk_field "$out" requests)"
	rps="$(wrk_field "$out" rps)"
	p50="$(wrk_field "$out" p50)"
	p99="$(wrk_field "$out" p99)"
	non2xx="$(wrk_field "$out" non2xx)"
	sockerr="$(wrk_field "$out" sockerr)"
	pus="$(awk -v a="$p0" -v b="$p1" -v r="$req" -v h="$pp" 'BEGIN { if (h == "") print "-"; else printf "%.2f", (b - a) / 1000 / r }')"
	nus="$(awk -v a="$n0" -v b="$n1" -v r="$req" 'BEGIN { printf "%.2f", (b - a) / 1000 / r }')"
	# wrk's own CPU, and the whole machine's (softirq included) per request
	wus="$(awk -v r="$req" '{ printf "%.2f", ($1 + $2) * 1e6 / r }' "$out.time")"
	mus="$(awk -v a="$a0" -v b="$a1" -v hz="$HZ" -v r="$req" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / r }')"
	# the proxy's threads: on a CPU, and runnable but waiting for one, in %
	# of the run's wall time (summed over threads: haproxy's can pass 100)
	local pon pwait
	pon="$(awk -v a="$p0" -v b="$p1" -v w="$((w1 - w0))" -v h="$pp" 'BEGIN { if (h == "") print "-"; else printf "%.0f", 100 * (b - a) / w }')"
	pwait="$(awk -v a="$q0" -v b="$q1" -v w="$((w1 - w0))" -v h="$pp" 'BEGIN { if (h == "") print "-"; else printf "%.0f", 100 * (b - a) / w }')"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$t" "$round" "$rps" "$p50" "$p99" \
		"$req" "$non2xx" "$sockerr" "$pus" "$nus" "$busy" "$load" "$foreign" "$wus" "$mus" "$pon" "$pwait" >>"$RUNS_TSV"
	log "$set round $round $t: $rps req/s, p50 $p50 ms, p99 $p99 ms, non-2xx $non2xx, socket errors $sockerr, proxy ${pus} us/req, nginx ${nus} us/req, wrk ${wus} us/req, machine ${mus} us/req, proxy on-CPU ${pon}% + waiting for a CPU ${pwait}% (busy before ${busy}%, load $load, others during ${foreign}%)"
	if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
		PROBLEMS+=("$set round $round, $t: wrk saw $non2xx non-2xx responses and $sockerr socket errors ($out)")
	fi
}
# The order alternates: forward in odd rounds, backward in even ones.
run_rounds() { # run_rounds SET N
	local r t order
	for r in $(seq "$2"); do
		order=("${TARGETS[@]}")
		if [ $((r % 2)) = 0 ]; then
			order=()
			for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[$i]}"); done
		fi
		for t in "${order[@]}"; do measure "$1" "$t" "$r"; done
	done
}
# median SET TARGET COLUMN (columns as in RUNS_TSV, 1-based)
median() {
	awk -F'\t' -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t && $c != "-" { v[n++] = $c }
		END { if (!n) { print "-"; exit }
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
			if (n % 2) m = v[(n - 1) / 2]; else m = (v[n / 2 - 1] + v[n / 2]) / 2
			printf "%.2f", m }' "$RUNS_TSV"
}
col_list() { # col_list SET TARGET COLUMN: every round's value, comma separated
	awk -F'\t' -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t { printf "%s%s", (n++ ? ", " : ""), $c }' "$RUNS_TSV"
}

log "nginx $NGINX_VER (1 worker), cairn router pid $ROUTER_PID ($ROUTER_WDESC, its default), cairn router pid $ROUTER2_PID (--workers $ROUTER2_WORKERS), haproxy $HAP_VER pid $HAPROXY_PID (nbthread $HAP_NBTHREAD)"
run_rounds w1 "$ROUNDS"
if [ "$ROUNDS_W2" -ge 1 ]; then
	start_nginx 2
	routers_healthy "(--workers $ROUTER2_WORKERS)"
	run_rounds w2 "$ROUNDS_W2"
	start_nginx 1
	routers_healthy "(1 worker again)"
fi

# ---- the profile pass: syscalls per request, and where the router's time goes --------
declare -A PROF_SYS PROF_RPS PROF_KERNEL PROF_USER
PERF_TOP_HTTP="" PERF_TOP_TCP="" PERF_UTOP_HTTP="" PERF_UTOP_TCP=""
# perf stat and the dso split for every proxy; the symbol lists only for the
# default router
PROF_TARGETS=(cairn-http cairn-tcp cairn2-http cairn2-tcp haproxy-http haproxy-tcp)
if [ "$PROFILE" = 1 ]; then
	for t in "${PROF_TARGETS[@]}"; do
		pp="$(proxy_pid "$t")"
		wait_quiet "$QUIET_WAIT" || true
		wrk -t"$THREADS" -c"$CONNS" -d8s "http://127.0.0.1:${PORT[$t]}/" >"$WORK/out/prof-$t.txt" 2>&1 &
		LOAD_PID=$!
		sleep 1
		perf stat -x, -e raw_syscalls:sys_enter,task-clock -p "$pp" -o "$WORK/out/prof-$t.stat" -- sleep 5 &
		ps_pid=$!
		perf record -q -F 999 -p "$pp" -o "$WORK/out/prof-$t.data" -- sleep 5 >/dev/null 2>&1 || true
		wait "$ps_pid" || true
		wait "$LOAD_PID" || true
		LOAD_PID=""
		rps="$(wrk_field "$WORK/out/prof-$t.txt" rps)"
		sys="$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$WORK/out/prof-$t.stat")"
		PROF_RPS[$t]="$rps"
		PROF_SYS[$t]="$(awk -v s="$sys" -v r="$rps" 'BEGIN { printf "%.2f", s / (r * 5) }')"
		# the share of samples in the kernel and in the proxy's own code
		perf report -i "$WORK/out/prof-$t.data" --stdio --no-children --sort dso 2>/dev/null |
			awk '/^ *[0-9.]+%/ { print }' >"$WORK/out/prof-$t.dso" || true
		PROF_KERNEL[$t]="$(awk '/\[kernel/ { s += $1 } END { printf "%.1f", s }' "$WORK/out/prof-$t.dso")"
		PROF_USER[$t]="$(awk '!/\[kernel/ { s += $1 } END { printf "%.1f", s }' "$WORK/out/prof-$t.dso")"
		if [ "$t" = cairn-http ] || [ "$t" = cairn-tcp ]; then
			perf report -i "$WORK/out/prof-$t.data" --stdio --no-children --sort dso,sym 2>/dev/null |
				awk '/^ *[0-9.]+%/ { $1 = $1; print }' >"$WORK/out/prof-$t.syms" || true
			top="$(awk 'n++ < 15' "$WORK/out/prof-$t.syms")"
			utop="$(awk '!/\[kernel/ && n++ < 12' "$WORK/out/prof-$t.syms")"
			if [ "$t" = cairn-http ]; then PERF_TOP_HTTP="$top" PERF_UTOP_HTTP="$utop"; else PERF_TOP_TCP="$top" PERF_UTOP_TCP="$utop"; fi
		fi
		log "profile $t: $rps req/s under perf, ${PROF_SYS[$t]} syscalls/request, kernel ${PROF_KERNEL[$t]}% of samples"
	done
fi

# ---- the router's own view -----------------------------------------------------------
# router_view CTL PID ROOT NAME: sets VIEW (one line: counters, peak RSS,
# router.log) and adds to PROBLEMS what went wrong in that router
router_view() {
	local ctl=$1 pid=$2 root=$3 name=$4 stats errs lines last rss
	if ! kill -0 "$pid" 2>/dev/null; then
		PROBLEMS+=("the $name died during the run (see $root/router.log)")
		VIEW="the $name: died during the run"
		return 0
	fi
	stats="$($ctl stats)" || { PROBLEMS+=("the $name did not answer stats"); VIEW="the $name: no stats"; return 0; }
	errs="$(python3 -c 'import json, sys
s = json.loads(sys.argv[1])
for n, e in sorted(s["envs"].items()):
    b = e["backends"][0] if e["backends"] else {}
    print("%s: %d requests, %d errors, %d no-backend, backend errors %d, connect errors %d, retries %d" % (n,
        e["requests"], e["errors"], e["no_backend"], b.get("errors", 0), b.get("connect_errors", 0), b.get("retries", 0)))' "$stats")"
	if python3 -c 'import json, sys
s = json.loads(sys.argv[1])
sys.exit(1 if any(e["errors"] or e["no_backend"] for e in s["envs"].values()) else 0)' "$stats"; then :; else
		PROBLEMS+=("the $name counted errors: $(tr '\n' ';' <<<"$errs")")
	fi
	lines="$(wc -l <"$root/router.log")"
	last="$(tail -1 "$root/router.log")"
	rss="$(awk '/^VmHWM/ { print $2, $3 }' "/proc/$pid/status" 2>/dev/null || echo '?')"
	VIEW="the $name: $(tr '\n' ';' <<<"$errs" | sed 's/;$//; s/;/; /g'). Peak RSS $rss. router.log: $lines lines${last:+ (last: \`$last\`)}"
}
VIEW=""
router_view "$CTL" "$ROUTER_PID" "$WORK/root" "default router ($ROUTER_WDESC)"
ROUTER_VIEW="$VIEW"
router_view "$CTL2" "$ROUTER2_PID" "$WORK/root2" "router with --workers $ROUTER2_WORKERS"
ROUTER2_VIEW="$VIEW"

# ---- the report --------------------------------------------------------------------------
BODY="$WORK/out/section.md"
# ratio_table SET WHAT: cairn / haproxy, both routers, both modes
ratio_table() {
	local set=$1 row c m
	echo "| cairn / haproxy ($2) | http, default router ($ROUTER_WDESC) | tcp, default router ($ROUTER_WDESC) | http, router with --workers $ROUTER2_WORKERS | tcp, router with --workers $ROUTER2_WORKERS |"
	echo "|---|---:|---:|---:|---:|"
	for row in "4:req/s" "5:p50 (lower is better)" "6:p99 (lower is better)" "10:proxy CPU per request (lower is better)" \
		"16:machine CPU per request, softirq included (lower is better)"; do
		printf '| %s |' "${row#*:}"
		for c in cairn cairn2; do
			for m in http tcp; do
				printf ' %sx |' "$(ratio "$(median "$set" "$c-$m" "${row%%:*}")" "$(median "$set" "haproxy-$m" "${row%%:*}")")"
			done
		done
		echo
	done
}
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else printf "%.0f", v }'; }
verdict() { if "$@"; then echo met; else echo "**not met**"; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
GOAL_FAIL=0
{
	echo "## router"
	echo
	echo "cairn's router (\`cairn router\`: worker threads, each an epoll loop with its own SO_REUSEPORT listener) against haproxy $HAP_VER, all in front of the same nginx, in the same run; \`bench/router/run.sh\`. Two routers run side by side: the first at its default worker count, one per CPU (or \$CAIRN_ROUTER_WORKERS), here **$ROUTER_WDESC**; the second started with \`--workers $ROUTER2_WORKERS\`. The goals are judged on the first."
	echo
	echo "- Machine: $MACHINE."
	echo "- cairn $REV, binary built $CAIRN_BUILT (sha256 $CAIRN_SUM…); nginx $NGINX_VER ($NGINX_PKG), haproxy $HAP_VER, wrk $WRK_VER."
	echo "- Backend: nginx on 127.0.0.1:$NGINX_PORT, its own config (\`worker_processes 1\` for the main table, 2 for the second), \`access_log off\`, \`keepalive_requests 1000000\`, serving one static file of $FILE_BYTES bytes."
	echo "- cairn: \`cairn --root \$W/root router\` ($ROUTER_WDESC, its default), then two \"env\" messages over \$W/root/router.sock (bench/router/ctl.py): http mode on :$CH_PORT and tcp mode on :$CT_PORT, one backend each = 127.0.0.1:$NGINX_PORT inside the network namespace of the fd passed (the script's own /proc/self/ns/net, i.e. the host's), health check every 1 s. The second router, \`cairn --root \$W/root2 router --workers $ROUTER2_WORKERS\`, gets the same two envs over \$W/root2/router.sock, on :$C2H_PORT (http) and :$C2T_PORT (tcp). Both run during every measurement; the one not measured is idle but for its health checks."
	echo "- haproxy: \`haproxy -f \$W/haproxy.cfg -db\`, http frontend/backend with \`option http-keep-alive\` on :$HH_PORT, a tcp \`listen\` on :$HT_PORT; \`nbthread\` not set: it ran **$HAP_NBTHREAD threads** (its default, one per CPU); \`maxconn $HAP_MAXCONN\` (haproxy's Ulimit-n $HAP_ULIMIT, the shell's $ULIMIT_N)."
	echo "- Load: \`wrk -t$THREADS -c$CONNS -d${DURATION}s --latency\`, $ROUNDS rounds with nginx at 1 worker (order alternating: forward, then backward), medians; req/s, p50 and p99 are wrk's. Every process (wrk, nginx, the proxy) shares the same $(nproc) cores, so this is a CPU-bound comparison: a proxy that uses less CPU per request leaves more to nginx and wrk."
	echo "- CPU per request: on-CPU time of every thread of the proxy (and of nginx's master and workers) from /proc/PID/task/*/schedstat, before and after each wrk run, over wrk's request count; wrk's from bash's \`time\` (user + system); \"machine\" is all the CPU time of both cores (user, nice, system, irq, softirq, steal from /proc/stat) over the requests. The processes' times leave out interrupt and softirq time (most of the loopback TCP work), so proxy + nginx + wrk is less than the machine's figure. \"On a CPU / waiting for one\": the proxy's threads' on-CPU time and run-queue wait (the first two fields of schedstat), summed over its threads, in % of the run's wall time; what is left of 100% per thread is sleeping in epoll_wait (or interrupt time). A single-threaded proxy near 100% in total never sleeps: it is starved of CPU, not waiting for the network."
	echo "- Before each run the script waits (at most ${QUIET_WAIT} s) for the machine to be idle (< 10% CPU busy over 2 s); the busy % and the 1-minute load average seen are in the tables (another session may run tests on this machine). During each run it also takes the CPU time others used (the machine's user+nice+system+steal time from /proc/stat less that of wrk, the proxy and nginx, as % of all $(nproc) cores): a run where others took more than ${FOREIGN_MAX}% is measured again, up to ${RETRIES} times (${#DISCARDED[@]} run(s) were redone$([ "${#DISCARDED[@]}" -gt 0 ] && echo '; listed below'))."
	echo
	echo "nginx \`worker_processes 1\` (the configuration used for the goals), $ROUNDS rounds:"
	echo
	echo "| target | req/s (median) | p50 ms | p99 ms | req/s / direct | proxy CPU µs/req | nginx CPU µs/req | wrk CPU µs/req | machine CPU µs/req | proxy on a CPU / waiting for one, % of the run | non-2xx | socket errors | req/s each round | busy % / load before, others' CPU % during, each round |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	D_RPS="$(median w1 direct 4)"
	for t in "${TARGETS[@]}"; do
		rps="$(median w1 "$t" 4)"
		busy="$(awk -F'\t' -v t="$t" '$1 == "w1" && $2 == t { printf "%s%s%% / %s / %s%%", (n++ ? "; " : ""), $12, $13, $14 }' "$RUNS_TSV")"
		echo "| ${LABEL[$t]} | $(fmt_int "$rps") | $(median w1 "$t" 5) | $(median w1 "$t" 6) | $(ratio "$rps" "$D_RPS") | $(median w1 "$t" 10) | $(median w1 "$t" 11) | $(median w1 "$t" 15) | $(median w1 "$t" 16) | $(fmt_int "$(median w1 "$t" 17)") / $(fmt_int "$(median w1 "$t" 18)") | $(awk -F'\t' -v t="$t" '$1 == "w1" && $2 == t { s += $8 } END { print s + 0 }' "$RUNS_TSV") | $(awk -F'\t' -v t="$t" '$1 == "w1" && $2 == t { s += $9 } END { print s + 0 }' "$RUNS_TSV") | $(col_list w1 "$t" 4) | $busy |"
	done
	echo
	ratio_table w1 "nginx 1 worker"
	echo
	echo "| goal (issue), nginx 1 worker | value | |"
	echo "|---|---:|---|"
	for m in http tcp; do
		c="$(median w1 cairn-$m 4)" h="$(median w1 haproxy-$m 4)" cp="$(median w1 cairn-$m 6)" hp="$(median w1 haproxy-$m 6)"
		v1="$(verdict ge "$c" "$h")"
		v2="$(verdict le "$cp" "$hp")"
		v3="$(verdict ge "$(ratio "$c" "$h")" "$GOAL_AIM")"
		[ "$v1" = met ] && [ "$v2" = met ] || GOAL_FAIL=1
		echo "| $m: cairn req/s >= haproxy req/s | $(fmt_int "$c") vs $(fmt_int "$h") ($(ratio "$c" "$h")x) | $v1 |"
		echo "| $m: cairn p99 <= haproxy p99 | $cp ms vs $hp ms | $v2 |"
		echo "| $m: aim, cairn req/s >= 1.2x haproxy | $(ratio "$c" "$h")x | $v3 |"
	done
	for m in http tcp; do
		c="$(median w1 cairn2-$m 4)" h="$(median w1 haproxy-$m 4)" cp="$(median w1 cairn2-$m 6)" hp="$(median w1 haproxy-$m 6)"
		echo "| $m, router with --workers $ROUTER2_WORKERS (informational, not a goal): req/s vs haproxy | $(fmt_int "$c") vs $(fmt_int "$h") ($(ratio "$c" "$h")x) | $(ge "$c" "$h" && echo '>= haproxy' || echo '< haproxy') |"
		echo "| $m, router with --workers $ROUTER2_WORKERS (informational, not a goal): p99 vs haproxy | $cp ms vs $hp ms | $(le "$cp" "$hp" && echo '<= haproxy' || echo '> haproxy') |"
	done
	if [ "$ROUNDS_W2" -ge 1 ]; then
		echo
		echo "nginx \`worker_processes 2\` (tried as asked; not the configuration of the goals), $ROUNDS_W2 round(s):"
		echo
		echo "| target | req/s | p50 ms | p99 ms | req/s / direct | proxy CPU µs/req | nginx CPU µs/req | wrk CPU µs/req | machine CPU µs/req | proxy on a CPU / waiting for one, % of the run | non-2xx | socket errors | busy % / load before, others' CPU % during |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		D2="$(median w2 direct 4)"
		for t in "${TARGETS[@]}"; do
			rps="$(median w2 "$t" 4)"
			busy="$(awk -F'\t' -v t="$t" '$1 == "w2" && $2 == t { printf "%s%s%% / %s / %s%%", (n++ ? "; " : ""), $12, $13, $14 }' "$RUNS_TSV")"
			echo "| ${LABEL[$t]} | $(fmt_int "$rps") | $(median w2 "$t" 5) | $(median w2 "$t" 6) | $(ratio "$rps" "$D2") | $(median w2 "$t" 10) | $(median w2 "$t" 11) | $(median w2 "$t" 15) | $(median w2 "$t" 16) | $(fmt_int "$(median w2 "$t" 17)") / $(fmt_int "$(median w2 "$t" 18)") | $(awk -F'\t' -v t="$t" '$1 == "w2" && $2 == t { s += $8 } END { print s + 0 }' "$RUNS_TSV") | $(awk -F'\t' -v t="$t" '$1 == "w2" && $2 == t { s += $9 } END { print s + 0 }' "$RUNS_TSV") | $busy |"
		done
		echo
		ratio_table w2 "nginx 2 workers"
		echo
		echo "(The machine is saturated in every case: wrk's 2 threads, nginx and the proxy share 2 cores, and the scheduler shares the CPU among runnable threads, so the proxy's share also depends on how many threads it has and how many the others have; see the on a CPU / waiting column.)"
	fi
	if [ "$PROFILE" = 1 ]; then
		echo
		echo "Profile pass (nginx 1 worker): another 8 s wrk run per proxy with, in its middle, \`perf stat -e raw_syscalls:sys_enter,task-clock -p PID -- sleep 5\` and \`perf record -F 999 -p PID -- sleep 5\` (syscall tracing slows every proxy: these req/s are not the measurement above). Syscalls per request = syscalls in the 5 s / (req/s x 5). perf record's event: $PERF_EVENT."
		echo
		echo "| proxy | req/s under perf | syscalls / request | samples in the kernel | samples in user space (the proxy, libc, ...) |"
		echo "|---|---:|---:|---:|---:|"
		for t in "${PROF_TARGETS[@]}"; do
			echo "| ${LABEL[$t]} | $(fmt_int "${PROF_RPS[$t]}") | ${PROF_SYS[$t]} | ${PROF_KERNEL[$t]}% | ${PROF_USER[$t]}% |"
		done
		echo
		echo "Where the default router's ($ROUTER_WDESC) time goes, http mode (\`perf report --no-children --sort dso,sym\`, the top 15 by self time, % of all the router's samples):"
		echo
		echo '```'
		echo "$PERF_TOP_HTTP"
		echo '```'
		echo
		echo "http mode, the top user-space symbols (the router's own code and libc):"
		echo
		echo '```'
		echo "$PERF_UTOP_HTTP"
		echo '```'
		echo
		echo "tcp mode, the top 15, then the top user-space symbols:"
		echo
		echo '```'
		echo "$PERF_TOP_TCP"
		echo '```'
		echo
		echo '```'
		echo "$PERF_UTOP_TCP"
		echo '```'
	fi
	echo
	echo "The routers' own counters at the end (in tcp mode a router counts connections, not requests):"
	echo
	echo "- $ROUTER_VIEW."
	echo "- $ROUTER2_VIEW."
	if [ "${#DISCARDED[@]}" -gt 0 ]; then
		echo
		echo "Runs measured again because others used the CPU during them (not in the tables):"
		for p in "${DISCARDED[@]}"; do echo "- $p"; done
	fi
	if [ "${#PROBLEMS[@]}" -gt 0 ]; then
		echo
		echo "Problems seen:"
		for p in "${PROBLEMS[@]}"; do echo "- $p"; done
	else
		echo
		echo "No run saw a non-2xx response or a socket error; neither router counted an error."
	fi
	echo
	echo "Commands (\`bench/router/run.sh\`; \`\$W\` = \`$WORK\`; the config files are written by the script):"
	echo
	echo '```sh'
	echo "nginx -p \$W/nginx -c \$W/nginx/nginx.conf -g 'daemon off;' &   # worker_processes 1 (2 for the second table); listen 127.0.0.1:$NGINX_PORT"
	echo "cairn --root \$W/root router &   # its default: $ROUTER_WDESC here"
	echo "python3 bench/router/ctl.py \$W/root/router.sock env bench-http 127.0.0.1:$CH_PORT http $NGINX_PORT   # passes /proc/self/ns/net"
	echo "python3 bench/router/ctl.py \$W/root/router.sock env bench-tcp 127.0.0.1:$CT_PORT tcp $NGINX_PORT"
	echo "cairn --root \$W/root2 router --workers $ROUTER2_WORKERS &"
	echo "python3 bench/router/ctl.py \$W/root2/router.sock env bench-http 127.0.0.1:$C2H_PORT http $NGINX_PORT"
	echo "python3 bench/router/ctl.py \$W/root2/router.sock env bench-tcp 127.0.0.1:$C2T_PORT tcp $NGINX_PORT"
	echo "haproxy -f \$W/haproxy.cfg -db &"
	for t in "${TARGETS[@]}"; do
		echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency http://127.0.0.1:${PORT[$t]}/   # ${LABEL[$t]}"
	done
	if [ "$PROFILE" = 1 ]; then
		echo "perf stat -e raw_syscalls:sys_enter,task-clock -p PID -- sleep 5; perf record -F 999 -p PID -- sleep 5   # during wrk -d8s"
	fi
	echo '```'
	echo
	echo "\$W/haproxy.cfg:"
	echo
	echo '```'
	sed "s#$WORK#\$W#g" "$WORK/haproxy.cfg"
	echo '```'
} >"$BODY"
results_put_section router "$BODY"
cat "$BODY"
log "results in $RESULTS_MD"
if [ "${#PROBLEMS[@]}" -gt 0 ]; then
	log "problems: ${PROBLEMS[*]}"
	exit 1
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$GOAL_FAIL" = 1 ]; then exit 1; fi
exit 0
