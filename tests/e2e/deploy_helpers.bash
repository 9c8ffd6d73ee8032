# Helpers for the deploy end-to-end tests (tests/e2e/4*-*.bats): the daemon,
# the router, a hello-like service (busybox httpd serving a page that names
# its version), a load generator (load.py) and the teardown that ends every
# process a test started, each by its pid. Load after helpers.bash.
#
# Every test has its own $ROOT (so its own daemon, router and sockets) and
# its own ports on 127.0.0.1: PORT_BASE = 20000 + 1000 * (file number - 40)
# + 10 * test number; prod listens on PORT_BASE, dev on PORT_BASE + 1, the
# prod admin (/metrics) on PORT_BASE + 2.

LOAD_PY="$BATS_TEST_DIRNAME/load.py"

# setup_file: the busybox root filesystem, made once per file.
deploy_setup_file() {
	export DEPLOY_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	[ -d "$DEPLOY_ROOTFS" ] || run_mk_rootfs "$DEPLOY_ROOTFS"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() {
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# setup of every deploy test: a fresh store with busybox:test, the ports,
# the service directory $SVC (Dockerfile, www/, cairn.yml for page v1).
deploy_setup() {
	e2e_setup
	DAEMON_PID=
	LOAD_PIDS=()
	BG_PID=
	local file_no
	file_no=$(basename "$BATS_TEST_FILENAME")
	file_no=${file_no%%-*}
	PORT_BASE=$((20000 + 1000 * (10#$file_no - 40) + 10 * BATS_TEST_NUMBER))
	PROD_PORT=$PORT_BASE
	DEV_PORT=$((PORT_BASE + 1))
	ADMIN_PORT=$((PORT_BASE + 2))
	local p
	for p in "$PROD_PORT" "$DEV_PORT" "$ADMIN_PORT"; do
		port_free "$p" || {
			echo "port 127.0.0.1:$p is taken (a leftover of an earlier run?)" >&2
			ss -ltnp "sport = :$p" >&2 || true
			return 1
		}
	done
	PROD_URL="http://127.0.0.1:$PROD_PORT/"
	DEV_URL="http://127.0.0.1:$DEV_PORT/"
	BASE_ID=$(import_id "$DEPLOY_ROOTFS" busybox:test -q)
	SVC="$T/svc"
	mkdir -p "$SVC/www"
	cat >"$SVC/Dockerfile" <<-'EOF'
		FROM busybox:test
		COPY www/ /www/
		EXPOSE 8080
		CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
	EOF
	printf 'ok\n' >"$SVC/www/healthz"
	set_page v1
	PROD_REPLICAS=3
	write_service
}

# set_page TEXT: the page the next build serves is "hello from TEXT".
set_page() {
	printf 'hello from %s\n' "$1" >"$SVC/www/index.html"
}

# write_service [FILE]: the service file (default $SVC/cairn.yml): built from
# $SVC, health by HTTP GET $HEALTH_PATH (default /healthz) every 100 ms,
# deploy_timeout $DEPLOY_TIMEOUT (default 20s), prod with $PROD_REPLICAS
# replicas.
# Extra top-level YAML comes from $SVC_EXTRA, extra prod keys (a flow map's
# entries) from $PROD_EXTRA.
write_service() {
	local f=${1:-$SVC/cairn.yml}
	cat >"$f" <<-EOF
		service: hello
		build: { dockerfile: Dockerfile, context: . }
		image: hello:latest
		run:
		  command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
		  port: 8080
		health: { http: ${HEALTH_PATH:-/healthz}, interval: 100ms, timeout: 1s, healthy_after: 2 }
		deploy: { strategy: blue-green, drain_timeout: 2s, deploy_timeout: ${DEPLOY_TIMEOUT:-20s}, keep_previous: 1 }
		${SVC_EXTRA:-}
		environments:
		  dev:  { replicas: 1, listen: 127.0.0.1:$DEV_PORT }
		  prod: { replicas: $PROD_REPLICAS, listen: 127.0.0.1:$PROD_PORT, admin: 127.0.0.1:$ADMIN_PORT${PROD_EXTRA:+, $PROD_EXTRA} }
	EOF
}

# ---- the daemon and the router ----

# daemon_answers: the API answers a ping.
daemon_answers() {
	[ -S "$ROOT/cairn.sock" ] &&
		curl -sf --max-time 2 --unix-socket "$ROOT/cairn.sock" http://cairn/v1/ping >/dev/null
}

# daemon_start: `cairn daemon` in the background (its pid in DAEMON_PID, its
# output appended to $T/daemon.log); waits until the API answers.
daemon_start() {
	"$CAIRN" --root "$ROOT" daemon >>"$T/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	run_wait_for 10 daemon_answers || {
		echo "the daemon did not answer; its log:" >&2
		cat "$T/daemon.log" >&2
		return 1
	}
}

# daemon_kill9: SIGKILL the daemon and reap it.
daemon_kill9() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# daemon_stop: SIGTERM, up to 15 s to finish (an operation in flight ends
# first), then SIGKILL.
daemon_stop() {
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	if ! run_wait_for 15 run_exited "$DAEMON_PID" 2>/dev/null; then
		echo "the daemon (pid $DAEMON_PID) ignored SIGTERM for 15 s" >&2
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
	fi
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# pids_with_cmdline ARG...: pids of the processes whose command line is
# exactly ARG... (NUL-separated /proc/PID/cmdline), one a line.
pids_with_cmdline() {
	python3 - "$@" <<-'PY'
		import os, sys
		want = [a.encode() for a in sys.argv[1:]]
		for p in os.listdir("/proc"):
		    if not p.isdigit():
		        continue
		    try:
		        args = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")[:-1]
		    except OSError:
		        continue
		    if args == want:
		        print(p)
	PY
}

# router_pid: the pid of this test's router ("<cairn> --root $ROOT router",
# argv[0] being the real path of the binary); empty when none runs.
router_pid() {
	pids_with_cmdline "$(readlink -f "$CAIRN")" --root "$ROOT" router
}

# root_pids: pids of live processes whose command line mentions $ROOT
# (monitors, instances' inits, the router, a daemon), for the leftover check.
root_pids() {
	python3 - "$ROOT" "$$" <<-'PY'
		import os, sys
		root, me = sys.argv[1].encode(), {sys.argv[2], str(os.getpid())}
		for p in os.listdir("/proc"):
		    if not p.isdigit() or p in me:
		        continue
		    try:
		        cmd = open("/proc/%s/cmdline" % p, "rb").read()
		        st = open("/proc/%s/stat" % p).read()
		    except OSError:
		        continue
		    if root in cmd and st.rsplit(")", 1)[1].split()[0] != "Z":
		        print(p)
	PY
}

no_root_pids() {
	[ -z "$(root_pids)" ]
}

# all_instance_ids: every instance of ROOT (ps -a --json), one a line.
all_instance_ids() {
	[ -f "$ROOT/cairn.db" ] || return 0
	cairn --json ps -a 2>/dev/null | python3 -c 'import json, sys
for i in json.load(sys.stdin):
    print(i["id"])'
}

# Teardown: the load generators, the daemon, every instance (rm -f), the
# router (by its pid), then nothing of ROOT may be left: no process, no mount,
# no instance directory.
deploy_teardown() {
	local p id fail=0
	for p in "${LOAD_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	LOAD_PIDS=()
	if [ -n "${BG_PID:-}" ]; then
		kill -TERM "$BG_PID" 2>/dev/null || true
		wait "$BG_PID" 2>/dev/null || true
		BG_PID=
	fi
	daemon_stop
	for id in $(all_instance_ids); do
		cairn rm -f "$id" >/dev/null 2>&1 || true
	done
	for p in $(router_pid); do
		kill -TERM "$p" 2>/dev/null || true
		run_wait_for 5 run_exited "$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	if ! run_wait_for 5 no_root_pids 2>/dev/null; then
		echo "processes of $ROOT left after the teardown:"
		for p in $(root_pids); do
			ps -o pid=,ppid=,stat=,args= -p "$p" || true
			kill -KILL "$p" 2>/dev/null || true
		done
		fail=1
	fi
	assert_no_instance_leftovers || fail=1
	return "$fail"
}

# ---- commands, JSON ----

# jget JSON EXPR: the python expression EXPR over j (parsed JSON); strings
# raw, the rest as compact JSON. Fails when JSON is not valid JSON.
jget() {
	python3 -c '
import json, sys
j = json.loads(sys.argv[1])
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
' "$1" "$2"
}

# cmd_json CMD [ARGS...]: `cairn CMD --json ARGS`, which must succeed and
# print valid JSON (printed back).
cmd_json() {
	local cmd=$1 out
	shift
	out=$(cairn "$cmd" --json "$@") || return 1
	python3 -c 'import json, sys; json.loads(sys.argv[1])' "$out" || {
		echo "$cmd --json printed invalid JSON: $out" >&2
		return 1
	}
	printf '%s\n' "$out"
}

# releases_json ENV / status_json [ENV] / events_json [ENV]: the --json
# answers (the test fails when the command fails or prints invalid JSON).
releases_json() { cmd_json releases "$1"; }
status_json() { cmd_json status "$@"; }
events_json() { cmd_json events "$@"; }

# rel ENV N FIELD: FIELD of release vN of ENV (from releases --json).
rel() {
	local j
	j=$(releases_json "$1") || return 1
	jget "$j" "[r for r in j['releases'] if r['number'] == $2][0].get('$3')"
}

# rel_states ENV: "v3=live v2=rolled-back v1=retired", newest first.
rel_states() {
	local j
	j=$(releases_json "$1") || return 1
	jget "$j" "' '.join('v%d=%s' % (r['number'], r['state']) for r in j['releases'])"
}

# live_number ENV: the number of ENV's live release (status --json).
live_number() {
	local j
	j=$(status_json "$1") || return 1
	jget "$j" "j['envs']['$1']['live']['number']"
}

# healthy_count ENV: instances of the live release that run and are healthy.
healthy_count() {
	local j
	j=$(status_json "$1") || return 1
	jget "$j" "sum(1 for i in j['envs']['$1']['instances'] if i['running'] and i['health'] == 'healthy')"
}

# healthy_is ENV N: healthy_count ENV is N (for run_wait_for).
healthy_is() {
	[ "$(healthy_count "$1")" = "$2" ]
}

# page URL: the body (one GET on a new connection); fails on an error.
page() {
	curl -sf --max-time 5 "$1"
}

# page_is URL TEXT: 10 GETs in a row (each on a new connection, one curl)
# all answer TEXT.
page_is() {
	local got want
	got=$(curl -sf --max-time 10 -H 'Connection: close' "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1") || {
		echo "GET $1 failed" >&2
		return 1
	}
	want=$(printf '%s\n' "$2" "$2" "$2" "$2" "$2" "$2" "$2" "$2" "$2" "$2")
	[ "$got" = "$want" ] || {
		echo "GET $1 (10 times): expected '$2' each time, got:" >&2
		printf '%s\n' "$got" >&2
		return 1
	}
}

# deploy_ok ENV [ARGS...]: `cairn deploy -f $SVC/cairn.yml ENV ARGS` must exit
# 0 and say "ENV vN is live"; DEPLOY_MS is its wall time in ms and
# DEPLOY_SWITCH the "traffic switched after" figure.
deploy_ok() {
	local env=$1 t0
	shift
	t0=$(date +%s%N)
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" "$@" "$env"
	DEPLOY_MS=$((($(date +%s%N) - t0) / 1000000))
	if [ "$status" -ne 0 ] || ! [[ "$output" =~ ^$env\ v[0-9]+\ is\ live ]]; then
		show
		echo "cairn deploy $env $* failed"
		return 1
	fi
	DEPLOY_SWITCH=
	[[ "$output" =~ traffic\ switched\ after\ ([0-9.]+)s ]] && DEPLOY_SWITCH=${BASH_REMATCH[1]}
	return 0
}

# figure TEXT: print a measured figure in the bats output (fd 3).
figure() {
	echo "# $*" >&3
}

# ---- load ----

# load_start NAME [URL] [load.py options...]: a load generator in the
# background against URL (default $PROD_URL); waits until each of its
# clients had an answer. Its result will be $T/load-NAME.json.
load_start() {
	local name=$1 url=${2:-$PROD_URL}
	shift
	[ $# -gt 0 ] && shift
	rm -f "$T/load-$name".{stop,ready,json}
	python3 "$LOAD_PY" run --url "$url" --keepalive 4 --fresh 4 --duration 120 \
		--stop-file "$T/load-$name.stop" --ready "$T/load-$name.ready" \
		--out "$T/load-$name.json" "$@" >"$T/load-$name.log" 2>&1 3>&- &
	LOAD_PIDS+=($!)
	eval "LOAD_PID_$name=$!"
	run_wait_for 10 test -e "$T/load-$name.ready" || {
		cat "$T/load-$name.log" >&2
		return 1
	}
}

# load_stop NAME: stop it and wait for its counts; LOAD holds the JSON.
load_stop() {
	local name=$1 pid
	eval "pid=\$LOAD_PID_$name"
	touch "$T/load-$name.stop"
	wait "$pid" || {
		echo "load generator $name failed:" >&2
		cat "$T/load-$name.log" >&2
		return 1
	}
	LOAD=$(cat "$T/load-$name.json")
	figure "load $name: $(jget "$LOAD" "'%d requests in %ss: %d 2xx, %d non-2xx, %d errors, max latency %s ms; bodies %s' % (j['requests'], j['seconds'], j['ok'], j['non_2xx'], j['errors'], j['max_latency_ms'], {k: v['count'] for k, v in j['bodies'].items()})")"
}

# load_clean: the last stopped load had answers, all 2xx, no error.
load_clean() {
	local bad
	bad=$(jget "$LOAD" "'' if j['ok'] > 0 and j['non_2xx'] == 0 and j['errors'] == 0 else 'bad'")
	if [ -n "$bad" ]; then
		echo "the load generator saw failures:"
		python3 -m json.tool <<<"$LOAD"
		return 1
	fi
}

# load_bodies: the distinct bodies the last load saw, sorted, one a line.
load_bodies() {
	jget "$LOAD" "'\n'.join(sorted(j['bodies']))"
}

# traffic_flows URL N: N GETs in a row on URL (each on a new connection, one
# curl) all answer 200: a count of requests, not a fixed sleep, to let
# traffic flow for a while.
traffic_flows() {
	local url=$1 n=$2 k codes
	local args=()
	for ((k = 0; k < n; k++)); do
		args+=(-o /dev/null "$url")
	done
	codes=$(curl -s --max-time 20 -H 'Connection: close' -w '%{http_code}\n' "${args[@]}")
	if [ "$(grep -c '^200$' <<<"$codes")" -ne "$n" ]; then
		echo "GET $url $n times: not all 200:" >&2
		sort <<<"$codes" | uniq -c >&2
		return 1
	fi
}
