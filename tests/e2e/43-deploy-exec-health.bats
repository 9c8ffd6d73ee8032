#!/usr/bin/env bats
# Exec health checks (health: { exec: [argv...] }): the router runs the
# command inside each instance with the hidden `cairn probe`, which taints
# nothing; a failing or hanging check fails the release while the live one
# keeps serving, and nothing of a check outlives it.

load helpers
load deploy_helpers

setup_file() {
	deploy_setup_file
	# two router workers: the checks run in worker 0, the others learn
	export CAIRN_ROUTER_WORKERS=2
}

setup() {
	deploy_setup
}

teardown() {
	deploy_teardown
}

# write_exec_service ARGV: the service file with an exec check instead of
# the HTTP one: ARGV is a YAML flow sequence, run every 100 ms with a
# timeout of $HC_TIMEOUT (default 1s).
write_exec_service() {
	write_service
	local health="health: { exec: $1, interval: 100ms, timeout: ${HC_TIMEOUT:-1s}, healthy_after: 2 }"
	HEALTH_LINE=$health python3 - "$SVC/cairn.yml" <<-'PY'
		import os, sys
		path = sys.argv[1]
		lines = open(path).read().split("\n")
		lines = [os.environ["HEALTH_LINE"] if l.startswith("health:") else l for l in lines]
		open(path, "w").write("\n".join(lines))
	PY
	grep -qF "$health" "$SVC/cairn.yml"
}

# marker_pids WORD: pids (host view) of `sleep WORD` processes, which run
# inside instances.
marker_pids() {
	pids_with_cmdline sleep "$1"
}

marker_seen() {
	[ -n "$(marker_pids "$1")" ]
}

# hung_check_seen WORD: `sleep WORD` runs in an instance (its pids in HUNG)
# and cairn probe processes of this root run (their pids in PROBES).
hung_check_seen() {
	HUNG=$(marker_pids "$1")
	PROBES=$(probe_pids)
	[ -n "$HUNG" ] && [ -n "$PROBES" ]
}

no_marker() {
	[ -z "$(marker_pids "$1")" ]
}

# probe_pids: live (not zombie) `cairn --root $ROOT probe ...` processes.
probe_pids() {
	python3 - "$ROOT" <<-'PY'
		import os, sys
		root = sys.argv[1].encode()
		for p in os.listdir("/proc"):
		    if not p.isdigit():
		        continue
		    try:
		        args = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
		        st = open("/proc/%s/stat" % p).read()
		    except OSError:
		        continue
		    if args[1:4] == [b"--root", root, b"probe"] and st.rsplit(")", 1)[1].split()[0] != "Z":
		        print(p)
	PY
}

no_probe() {
	[ -z "$(probe_pids)" ]
}

probe_seen() {
	[ -n "$(probe_pids)" ]
}

# all_gone PID...: no process has any of these pids, not even a zombie.
all_gone() {
	local p
	for p in "$@"; do
		[ ! -e "/proc/$p" ] || return 1
	done
}

# zombie_children PID: the zombies whose parent is PID, one a line.
zombie_children() {
	python3 - "$1" <<-'PY'
		import os, sys
		for p in os.listdir("/proc"):
		    if not p.isdigit():
		        continue
		    try:
		        fields = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
		    except OSError:
		        continue
		    if fields[0] == "Z" and fields[1] == sys.argv[1]:
		        print(p)
	PY
}

# untainted: every instance of ROOT runs untainted (cairn ps --json).
untainted() {
	local j
	j=$(cairn ps --json) || return 1
	[ "$(jget "$j" "sum(1 for i in j if i['tainted'])")" = 0 ] || {
		echo "tainted instances:" >&2
		python3 -m json.tool <<<"$j" >&2
		return 1
	}
}

# no_exec_event: no instance.exec event was recorded.
no_exec_event() {
	local j
	j=$(events_json) || return 1
	[ "$(jget "$j" "len([e for e in j['events'] if e['kind'] == 'instance.exec'])")" = 0 ]
}

# first_instance ENV: the id of one instance of ENV's live release.
first_instance() {
	jget "$(status_json "$1")" "j['envs']['$1']['instances'][0]['id']"
}

@test "exec health: a release goes live on a passing check run inside its instances; they are not tainted and no exec is recorded" {
	write_exec_service "[test, -f, /www/index.html]"
	daemon_start
	deploy_ok prod
	page_is "$PROD_URL" "hello from v1"
	[ "$(healthy_count prod)" = 3 ]
	# the checks go on every 100 ms, each a `cairn probe` of this root, and
	# leave the instances as they were
	run_wait_for 10 probe_seen
	[ "$(healthy_count prod)" = 3 ]
	untainted
	no_exec_event
	local j
	j=$(cairn ps --json)
	[ "$(jget "$j" "sum(1 for i in j if i['state'] == 'running')")" = 3 ]
}

@test "exec health: the check runs with the environment, user and working directory of the instance's command, as Docker's HEALTHCHECK does" {
	PROD_REPLICAS=1
	write_exec_service '[/bin/busybox, sh, -c, "test \"$GREETING\" = hi && test \"$(/bin/busybox id -u)\" = 1000 && test \"$(/bin/busybox pwd)\" = /www"]'
	sed -i 's|^  port: 8080$|  port: 8080\n  env: { GREETING: hi }\n  user: "1000"\n  workdir: /www|' "$SVC/cairn.yml"
	grep -q '^  user: "1000"$' "$SVC/cairn.yml"
	daemon_start
	deploy_ok prod
	page_is "$PROD_URL" "hello from v1"
	# the same check without that context fails: it is the context that passes
	local id
	id=$(first_instance prod)
	run cairn exec "$id" -- /bin/busybox sh -c 'test "$GREETING" = hi'
	[ "$status" -eq 1 ]
}

@test "exec health: a release whose check exits 1 fails at deploy_timeout with the exit status and output as reason; the live release serves 100% meanwhile" {
	write_exec_service "[test, -f, /www/index.html]"
	daemon_start
	deploy_ok prod
	load_start bad
	set_page v2
	DEPLOY_TIMEOUT=2s write_exec_service '[sh, -c, "echo starting; echo not ready >&2; exit 1"]'
	local t0=$SECONDS
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[ $((SECONDS - t0)) -lt 10 ]
	[[ "$stderr" == *"cairn: prod v2 failed: 0 of 3 instances healthy when deploy_timeout passed; last check: exit 1: not ready"* ]]
	[[ "$stderr" == *"the live release kept all traffic"* ]]
	page_is "$PROD_URL" "hello from v1"
	traffic_flows "$PROD_URL" 20
	load_stop bad
	load_clean
	[ "$(load_bodies)" = "hello from v1" ]
	[ "$(rel prod 2 state)" = failed ]
	[[ "$(rel prod 2 reason)" == *"last check: exit 1: not ready"* ]]
	[ "$(live_number prod)" = 1 ]
	[ "$(healthy_count prod)" = 3 ]
	untainted
	no_exec_event
}

@test "exec health: a check that hangs past its timeout is killed at the timeout and fails; no cairn probe, zombie or command is left" {
	local marker=$((700000 + PORT_BASE))
	write_exec_service "[test, -f, /www/index.html]"
	daemon_start
	deploy_ok prod
	local router
	router=$(router_pid)
	[ -n "$router" ]
	set_page v2
	HC_TIMEOUT=800ms DEPLOY_TIMEOUT=6s write_exec_service "[sleep, \"$marker\"]"
	run_bg deploy -f "$SVC/cairn.yml" prod
	# a check of the new release hangs in its instance, under its cairn probe
	HUNG= PROBES=
	run_wait_for 10 hung_check_seen "$marker"
	# killed at its 800 ms timeout, with its cairn probe, while the instance
	# still runs (the deploy waits on): no instance removal did it
	run_wait_for 3 all_gone $HUNG
	! run_exited "$BG_PID"
	run_wait_for 3 all_gone $PROBES
	! run_exited "$BG_PID"
	run_bg_wait 30
	cat "$T/bg.err"
	[ "$BG_STATUS" -eq 1 ]
	grep -qF "last check: exit 124: timed out after 800 ms" "$T/bg.err"
	[[ "$(rel prod 2 reason)" == *"exit 124: timed out after 800 ms"* ]]
	page_is "$PROD_URL" "hello from v1"
	# nothing of any check is left: no cairn probe of this root, no command,
	# no zombie under the router
	run_wait_for 5 no_probe
	run_wait_for 5 no_marker "$marker"
	[ -z "$(zombie_children "$router")" ]
	untainted
}

@test "cairn probe: hidden from --help; exit status, output and timeout of the command; stopping or killing it kills what it started; no taint" {
	PROD_REPLICAS=1
	write_exec_service "[test, -f, /www/index.html]"
	daemon_start
	deploy_ok prod
	local id m1=$((710000 + PORT_BASE)) m2=$((720000 + PORT_BASE)) m3=$((730000 + PORT_BASE))
	id=$(first_instance prod)
	run cairn --help
	[ "$status" -eq 0 ]
	[[ "$output" != *probe* ]]
	run cairn help probe
	[ "$status" -eq 0 ]
	[[ "$output" == *"Usage: cairn probe"* ]]

	run --separate-stderr cairn probe "$id" -- sh -c 'echo out; echo err >&2; exit 3'
	[ "$status" -eq 3 ]
	[ "$output" = out ]
	[ "$stderr" = err ]
	run cairn probe "$id" -- test -f /www/index.html
	[ "$status" -eq 0 ]
	run -127 --separate-stderr cairn probe "$id" -- nosuchcmd
	[ "$stderr" = "cairn: exec: nosuchcmd: No such file or directory" ]

	# the timeout kills the command and what it started
	local t0
	t0=$(date +%s%N)
	run --separate-stderr cairn probe --timeout 200 "$id" -- sh -c "sleep $m1 & sleep $m2"
	[ "$status" -eq 124 ]
	[ "$stderr" = "cairn: timed out after 200 ms" ]
	[ $((($(date +%s%N) - t0) / 1000000)) -lt 2000 ]
	run_wait_for 5 no_marker "$m1"
	run_wait_for 5 no_marker "$m2"

	# SIGTERM: the command and what it started end, then cairn probe
	run_bg probe "$id" -- sh -c "sleep $m1 & sleep $m2"
	run_wait_for 10 marker_seen "$m1"
	run_wait_for 10 marker_seen "$m2"
	kill -TERM "$BG_PID"
	run_bg_wait 5
	[ "$BG_STATUS" -eq 143 ]
	run_wait_for 5 no_marker "$m1"
	run_wait_for 5 no_marker "$m2"

	# SIGKILL: no chance to clean up, and still the command dies (its helper
	# gets a parent-death signal; init reaps the helper)
	run_bg probe "$id" -- sleep "$m3"
	run_wait_for 10 marker_seen "$m3"
	kill -KILL "$BG_PID"
	run_bg_wait 5
	run_wait_for 5 no_marker "$m3"

	# unknown or stopped instances are an error, not a crash
	run --separate-stderr cairn probe nosuchinstance -- true
	[ "$status" -eq 1 ]
	[ "$stderr" = "cairn: no instance nosuchinstance" ]
	untainted
	no_exec_event
}

@test "exec health: a router told to stop ends the checks it runs, with what they started" {
	local marker=$((740000 + PORT_BASE)) router
	HC_TIMEOUT=60s DEPLOY_TIMEOUT=60s write_exec_service "[sleep, \"$marker\"]"
	daemon_start
	router=$(router_pid)
	[ -n "$router" ]
	run_bg deploy -f "$SVC/cairn.yml" prod
	HUNG= PROBES=
	run_wait_for 10 hung_check_seen "$marker"
	# no daemon to give up the deploy and remove its instances: only the
	# router can end the checks (they would hang for 60 s)
	daemon_kill9
	run_bg_wait 10
	[ "$BG_STATUS" -ne 0 ]
	kill -TERM "$router"
	# the router is not our child: gone, or a zombie of its own parent
	run_wait_for 10 run_exited "$router"
	run_wait_for 5 all_gone $PROBES
	run_wait_for 5 no_marker "$marker"
}
