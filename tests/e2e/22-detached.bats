#!/usr/bin/env bats
# Detached instances: `cairn run -d` under a monitor that outlives the CLI,
# and the commands that manage them: ps, logs, stop, rm, exec. What the
# monitor records (state, exit code, log), what happens when the CLI or the
# monitor dies, and that nothing is left behind.

load helpers

setup_file() {
	export RUN_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	run_mk_rootfs "$RUN_ROOTFS"
}

setup() {
	e2e_setup
	IMG=$(import_id "$RUN_ROOTFS" bb:1)
	BG_PID=
	MARKER=
	LOGS_PID=
}

teardown() {
	det_teardown
}

# ---- helpers of this file ----

# A unique `sleep` argument (a long duration), so that pgrep finds exactly
# this test's sleeps.
new_marker() {
	MARKER="600.$$$RANDOM$RANDOM"
}

# pgrep pattern of those sleeps (not of cairn, whose command line holds it too)
sleep_pattern() {
	echo "^(/bin/)?sleep $MARKER\$"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# det_ids: the ids of every instance of ROOT (ps -a --json), one a line.
det_ids() {
	[ -f "$ROOT/cairn.db" ] || return 0
	cairn --json ps -a | python3 -c 'import json, sys
for i in json.load(sys.stdin):
    print(i["id"])'
}

# inst_field INSTANCE FIELD: FIELD of the instance (id, id prefix or name)
# from `ps -a --json`; booleans as true/false, null as "". Fails when the
# instance is not listed.
inst_field() {
	cairn --json ps -a | python3 -c 'import json, sys
key, field = sys.argv[1], sys.argv[2]
for i in json.load(sys.stdin):
    if i["id"] == key or i["name"] == key or i["id"].startswith(key):
        v = i.get(field)
        if isinstance(v, bool):
            v = "true" if v else "false"
        print("" if v is None else v)
        break
else:
    sys.exit(1)' "$1" "$2"
}

# ps_row ID: the line of `cairn ps -a` for instance ID (by id).
ps_row() {
	cairn ps -a | awk -v p="${1:0:12}" '$1 == p'
}

# ps_live_row ID: the line of `cairn ps` (without -a) for instance ID.
ps_live_row() {
	cairn ps | awk -v p="${1:0:12}" '$1 == p'
}

# row_has ID TEXT: the `ps -a` line of ID holds TEXT (polled by run_wait_for).
row_has() {
	[[ "$(ps_row "$1")" == *"$2"* ]]
}

# log_has ID TEXT: `cairn logs ID` holds TEXT.
log_has() {
	[[ "$(cairn logs "$1" 2>/dev/null)" == *"$2"* ]]
}

# live PID: PID is a live process (not gone, not a zombie).
live() {
	! run_exited "$1"
}

# ppid_of PID
ppid_of() {
	ps -o ppid= -p "$1" | tr -d ' '
}

# root_procs: live processes whose command line names this test's ROOT
# (monitors, instance inits, cairn commands left running).
root_procs() {
	local p
	for p in $(pgrep -f -- "$ROOT"); do
		live "$p" && echo "$p"
	done
	return 0
}

no_root_procs() {
	[ -z "$(root_procs)" ]
}

# detach ARGS...: `cairn run -d ARGS`; prints the id, fails on anything else.
detach() {
	local out
	out=$(cairn run -d "$@") || {
		echo "run -d $* failed" >&2
		return 1
	}
	[[ "$out" =~ ^[0-9a-f]{32}$ ]] || {
		echo "run -d $* printed '$out', not an id" >&2
		return 1
	}
	echo "$out"
}

# wait_running ID: ps shows ID running, with the pid of a live process.
wait_running() {
	run_wait_for 5 row_has "$1" " running "
	local pid
	pid=$(inst_field "$1" pid)
	[[ "$pid" =~ ^[0-9]+$ ]] && live "$pid"
}

# Teardown: stop and remove every instance through the CLI (short grace),
# end anything left by pid, then check that nothing of ROOT is left: no
# process, no mount, no instance directory, no cgroup.
det_teardown() {
	local ids id p fail=0
	if [ -n "${LOGS_PID:-}" ]; then
		kill -KILL "$LOGS_PID" 2>/dev/null || true
		wait "$LOGS_PID" 2>/dev/null || true
	fi
	run_bg_reap
	ids=$(det_ids 2>/dev/null) || true
	for id in $ids; do
		cairn stop --time 1 "$id" >/dev/null 2>&1 || true
		cairn rm -f "$id" >/dev/null 2>&1 || true
	done
	if ! run_wait_for 5 no_root_procs 2>/dev/null; then
		echo "processes of $ROOT left after stop/rm:"
		for p in $(root_procs); do ps -o pid=,ppid=,stat=,args= -p "$p" || true; done
		fail=1
	fi
	for p in $(root_procs); do kill -KILL "$p" 2>/dev/null || true; done
	if [ -n "${MARKER:-}" ] && ! run_wait_for 5 run_no_process "$MARKER" 2>/dev/null; then
		echo "processes of the instances left:"
		pgrep -af -- "$MARKER" || true
		run_kill_marked "$MARKER"
		fail=1
	fi
	for id in $ids; do
		p=$(find /sys/fs/cgroup -maxdepth 3 -name "$id" 2>/dev/null)
		if [ -n "$p" ]; then
			echo "cgroups left: $p"
			fail=1
		fi
	done
	assert_no_instance_leftovers || fail=1
	return "$fail"
}

# ---- run -d, ps, logs ----

@test "run -d: prints the id at once while the command runs; ps shows its pid; logs its output" {
	new_marker
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr cairn run -d --name det1 bb:1 -- sh -c "echo started; echo to-stderr >&2; exec sleep $MARKER"
	t1=$(now_ms)
	show
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9a-f]{32}$ ]]
	[ -z "$stderr" ]
	echo "run -d took $((t1 - t0)) ms"
	[ $((t1 - t0)) -lt 1000 ]
	local id=$output
	[ -d "$ROOT/instances/$id" ]
	# the command keeps running after the CLI returned
	run_wait_for 5 pgrep -f -- "$(sleep_pattern)"
	wait_running "$id"
	local row pid
	row=$(ps_live_row "$id")
	echo "ps: $row"
	[ -n "$row" ]
	pid=$(inst_field "$id" pid)
	[[ "$row" == "${id:0:12} det1 "*" running "*" $pid "* ]]
	[[ "$row" == *" no" ]]
	# the pid is a live process on the host, the instance's init
	[ -d "/proc/$pid" ]
	kill -0 "$pid"
	[ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]
	# the JSON record
	[ "$(inst_field "$id" id)" = "$id" ]
	[ "$(inst_field det1 name)" = det1 ]
	[ "$(inst_field "$id" image)" = "$IMG" ]
	[ "$(inst_field "$id" state)" = running ]
	[ "$(inst_field "$id" tainted)" = false ]
	[[ "$(inst_field "$id" command)" == *"sleep $MARKER"* ]]
	# the log holds stdout and stderr
	run_wait_for 5 log_has "$id" to-stderr
	run --separate-stderr cairn logs det1
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'started\nto-stderr' ]
	[ "$(cat "$ROOT/instances/$id/log")" = $'started\nto-stderr' ]
	# id prefix works as well as the name
	run --separate-stderr cairn logs "${id:0:8}"
	[ "$output" = $'started\nto-stderr' ]
}

@test "run -d: the monitor is detached from the CLI: killing the CLI's group, cairn ps or cairn logs -f does not matter" {
	new_marker
	# the CLI in a session of its own; its pid is its process group
	setsid -w sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$T/cli.pid" \
		"$CAIRN" --root "$ROOT" run -d --name det2 bb:1 -- sh -c \
		'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done' >"$T/cli.out" 3>&-
	local id cli pid mon
	id=$(cat "$T/cli.out")
	cli=$(cat "$T/cli.pid")
	[[ "$id" =~ ^[0-9a-f]{32}$ ]]
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	mon=$(ppid_of "$pid")
	echo "cli $cli, monitor $mon, init $pid"
	run_exited "$cli"
	[ "$mon" != "$cli" ]
	live "$mon"
	# the monitor left the CLI's session and process group ...
	[ "$(ps -o sid= -p "$mon" | tr -d ' ')" != "$cli" ]
	[ "$(ps -o pgid= -p "$mon" | tr -d ' ')" != "$cli" ]
	[ "$(ps -o sid= -p "$mon" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ]
	# ... and holds none of the CLI's descriptors (only /dev/null on 0-2)
	local fd
	for fd in 0 1 2; do
		[ "$(readlink "/proc/$mon/fd/$fd")" = /dev/null ]
	done
	# so a signal to the CLI's whole group reaches nothing of the instance
	kill -KILL -- "-$cli" 2>/dev/null || true
	kill -HUP -- "-$cli" 2>/dev/null || true
	live "$mon"
	live "$pid"
	# kill -9 of a cairn ps
	"$CAIRN" --root "$ROOT" ps >/dev/null 2>&1 3>&- &
	kill -KILL $! 2>/dev/null || true
	wait $! 2>/dev/null || true
	# kill -9 of a cairn logs -f while it follows
	"$CAIRN" --root "$ROOT" logs -f det2 >"$T/follow.out" 2>&1 3>&- &
	LOGS_PID=$!
	run_wait_for 5 grep -q "tick" "$T/follow.out"
	kill -KILL "$LOGS_PID"
	wait "$LOGS_PID" 2>/dev/null || true
	LOGS_PID=
	# the instance still runs under the same monitor, and its log grows
	local n1
	n1=$(cairn logs det2 | wc -l)
	run_wait_for 5 eval '[ "$(cairn logs det2 | wc -l)" -gt $((n1 + 2)) ]'
	live "$mon"
	live "$pid"
	[ "$(inst_field det2 state)" = running ]
	[ "$(inst_field det2 pid)" = "$pid" ]
	[ "$(ppid_of "$pid")" = "$mon" ]
}

# ---- stop ----

@test "stop: a command that dies on SIGTERM is recorded as exited (143), nothing of it remains" {
	new_marker
	local id pid mon
	id=$(detach --name st1 bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	mon=$(ppid_of "$pid")
	run_wait_for 5 pgrep -f -- "$(sleep_pattern)"
	local t0 t1
	t0=$(now_ms)
	# by id prefix
	run --separate-stderr cairn stop "${id:0:10}"
	t1=$(now_ms)
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$id" ]
	[ -z "$stderr" ]
	echo "stop took $((t1 - t0)) ms"
	[ $((t1 - t0)) -lt 5000 ]
	[[ "$(ps_row "$id")" == *" exited (143) "* ]]
	[ "$(inst_field "$id" state)" = exited ]
	[ "$(inst_field "$id" exit_code)" = 143 ]
	# not listed without -a
	[ -z "$(ps_live_row "$id")" ]
	# no process of the instance, no monitor, no mount
	run_wait_for 5 run_exited "$pid"
	run_wait_for 5 run_exited "$mon"
	run_wait_for 5 run_no_process "$(sleep_pattern)"
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
	# stopping it again is harmless
	run --separate-stderr cairn stop st1
	show
	[ "$status" -eq 0 ]
	[[ "$(ps_row "$id")" == *" exited (143) "* ]]
}

@test "stop --time 1: a command that ignores SIGTERM is killed after the grace: exited (137)" {
	new_marker
	local id pid
	id=$(detach --name st2 bb:1 -- sh -c "trap '' TERM; echo ready; while :; do sleep 0.1; done # $MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	# the trap is set before the signal is sent
	run_wait_for 5 log_has "$id" ready
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr cairn stop --time 1 st2
	t1=$(now_ms)
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$id" ]
	echo "stop took $((t1 - t0)) ms"
	[ $((t1 - t0)) -ge 900 ]
	[ $((t1 - t0)) -lt 5000 ]
	[[ "$(ps_row "$id")" == *" exited (137) "* ]]
	[ "$(inst_field "$id" exit_code)" = 137 ]
	run_wait_for 5 run_exited "$pid"
	run_wait_for 5 run_no_process "^sh -c trap.*$MARKER"
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
}

@test "stop: several instances at once, one line each; an unknown one exits 1" {
	new_marker
	local a b
	a=$(detach --name sa bb:1 -- sleep "$MARKER")
	b=$(detach --name sb bb:1 -- sleep "$MARKER")
	wait_running "$a"
	wait_running "$b"
	run --separate-stderr cairn stop sa "$b"
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$a"$'\n'"$b" ]
	[[ "$(ps_row "$a")" == *" exited (143) "* ]]
	[[ "$(ps_row "$b")" == *" exited (143) "* ]]
	run --separate-stderr cairn stop nosuchinstance
	show
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_one_line_error
	[[ "$stderr" == *nosuchinstance* ]]
}

# ---- the monitor died ----

@test "monitor killed: ps still shows the instance running, stop stops it and records the end" {
	new_marker
	local id pid mon
	id=$(detach --name mk1 bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	mon=$(ppid_of "$pid")
	echo "monitor $mon, init $pid"
	[[ "$(tr '\0' ' ' <"/proc/$mon/cmdline")" == *"$ROOT"* ]]
	kill -KILL "$mon"
	run_wait_for 5 run_exited "$mon"
	# the instance lives on, and ps says so
	live "$pid"
	run_wait_for 5 pgrep -f -- "$(sleep_pattern)"
	[[ "$(ps_live_row "$id")" == *" running "*" $pid "* ]]
	[ "$(inst_field "$id" state)" = running ]
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr cairn stop mk1
	t1=$(now_ms)
	show
	echo "stop took $((t1 - t0)) ms"
	[ "$status" -eq 0 ]
	[ "$output" = "$id" ]
	# sleep dies on SIGTERM: no need for the 10 s grace
	[ $((t1 - t0)) -lt 5000 ]
	[ "$(inst_field "$id" state)" = exited ]
	[[ "$(ps_row "$id")" == *" exited ("* ]]
	run_wait_for 5 run_exited "$pid"
	run_wait_for 5 run_no_process "$(sleep_pattern)"
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
}

@test "monitor and instance killed: ps -a shows dead, rm removes it" {
	new_marker
	local id pid mon
	id=$(detach --name mk2 bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	mon=$(ppid_of "$pid")
	kill -KILL "$mon"
	kill -KILL "$pid"
	run_wait_for 5 run_exited "$mon"
	run_wait_for 5 run_exited "$pid"
	run_wait_for 5 run_no_process "$(sleep_pattern)"
	run_wait_for 5 row_has "$id" " dead "
	[ "$(inst_field "$id" state)" = dead ]
	# stop of a dead instance succeeds or explains; it does not hang
	run --separate-stderr timeout 10 "$CAIRN" --root "$ROOT" stop --time 1 mk2
	show
	[ "$status" -eq 0 ] || [ "$status" -eq 1 ]
	run --separate-stderr cairn rm mk2
	show
	[ "$status" -eq 0 ]
	[ ! -e "$ROOT/instances/$id" ]
	[ -z "$(ps_row "$id")" ]
	run ! inst_field "$id" id
	[ -z "$(run_mounts_under "$ROOT")" ]
}

# ---- commands that end by themselves ----

@test "run -d: a command that exits by itself is recorded as exited (7), its output kept" {
	local id
	id=$(detach --name ex7 bb:1 -- sh -c 'echo bye; echo oops >&2; exit 7')
	run_wait_for 5 row_has "$id" " exited (7) "
	[ "$(inst_field "$id" state)" = exited ]
	[ "$(inst_field "$id" exit_code)" = 7 ]
	[ -z "$(ps_live_row "$id")" ]
	run --separate-stderr cairn logs ex7
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'bye\noops' ]
	# the monitor ends with the instance
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
}

@test "run -d: a command that does not exist exits 127 with one line, recorded as exited (127)" {
	run -127 --separate-stderr cairn run -d --name nx bb:1 -- nosuchcmd arg
	show
	[ "$status" -eq 127 ]
	[ "$stderr" = "cairn: exec: nosuchcmd: No such file or directory" ]
	[ -z "$output" ] || [[ "$output" =~ ^[0-9a-f]{32}$ ]]
	local id
	id=$(inst_field nx id)
	[[ "$id" =~ ^[0-9a-f]{32}$ ]]
	[ -z "$output" ] || [ "$output" = "$id" ]
	run_wait_for 5 row_has "$id" " exited (127) "
	[ "$(inst_field nx exit_code)" = 127 ]
	run_wait_for 5 no_root_procs
}

# ---- logs ----

@test "logs --tail 2 shows the last two lines; logs -f follows until the instance ends" {
	local id
	id=$(detach --name lg1 bb:1 -- sh -c 'i=1; while [ $i -le 10 ]; do echo line$i; i=$((i+1)); done')
	run_wait_for 5 row_has "$id" " exited (0) "
	run --separate-stderr cairn logs --tail 2 lg1
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'line9\nline10' ]
	run --separate-stderr cairn logs -n 2 "$id"
	[ "$output" = $'line9\nline10' ]
	run --separate-stderr cairn logs lg1
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 10 ]
	[ "$(printf '%s\n' "$output" | head -n 1)" = line1 ]
	# -f of an instance that has ended prints everything and returns
	run --separate-stderr timeout 5 "$CAIRN" --root "$ROOT" logs -f --tail 3 lg1
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'line8\nline9\nline10' ]

	# -f of a running instance follows it to its end
	id=$(detach --name lg2 bb:1 -- sh -c 'for i in 1 2 3; do echo l$i; sleep 0.2; done')
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr timeout 10 "$CAIRN" --root "$ROOT" logs -f lg2 3>&-
	t1=$(now_ms)
	show
	echo "logs -f took $((t1 - t0)) ms"
	[ "$status" -eq 0 ]
	[ "$output" = $'l1\nl2\nl3' ]
	[ $((t1 - t0)) -lt 5000 ]
	run_wait_for 2 row_has "$id" " exited (0) "
}

@test "logs: past 8 MiB the log is rotated to log.1 and nothing in the last 8 MiB is lost" {
	local id line total
	line=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde
	# 147456 lines of 64 bytes: 9 MiB
	id=$(detach --name big bb:1 -- sh -c "yes $line | head -n 147456; echo last-line")
	run_wait_for 20 row_has "$id" " exited (0) "
	total=$((147456 * 64 + 10))
	ls -l "$ROOT/instances/$id"
	[ -f "$ROOT/instances/$id/log.1" ]
	local s0 s1
	s0=$(stat -c %s "$ROOT/instances/$id/log")
	s1=$(stat -c %s "$ROOT/instances/$id/log.1")
	[ "$s0" -le $((8 << 20)) ]
	[ "$s1" -le $((8 << 20)) ]
	[ $((s0 + s1)) -ge $((8 << 20)) ]
	[ "$(tail -n 1 "$ROOT/instances/$id/log")" = last-line ]
	run --separate-stderr cairn logs --tail 2 big
	show
	[ "$output" = "$line"$'\nlast-line' ]
	# logs prints both files, oldest first: at least the last 8 MiB, whole lines
	cairn logs big >"$T/all"
	local n
	n=$(wc -c <"$T/all")
	echo "logs printed $n bytes of $total; log $s0, log.1 $s1"
	[ "$n" -eq $((s0 + s1)) ]
	[ "$(grep -cv "^$line\$" "$T/all")" -le 2 ]
}

# ---- rm ----

@test "rm: refuses a running instance, -f stops and removes it, an exited one goes without -f" {
	new_marker
	local id pid
	id=$(detach --name rm1 bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	run --separate-stderr cairn rm rm1
	show
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_one_line_error
	[[ "$stderr" == *rm1* ]]
	live "$pid"
	[ -d "$ROOT/instances/$id" ]
	[ "$(inst_field "$id" state)" = running ]
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr cairn rm -f rm1
	t1=$(now_ms)
	show
	echo "rm -f took $((t1 - t0)) ms"
	[ "$status" -eq 0 ]
	[ "$output" = "$id" ]
	[ ! -e "$ROOT/instances/$id" ]
	[ -z "$(ps_row "$id")" ]
	# sleep dies at once: rm -f needs no grace period
	[ $((t1 - t0)) -lt 3000 ]
	[ -z "$(ps_row "$id")" ]
	run ! inst_field "$id" id
	run_wait_for 5 run_exited "$pid"
	run_wait_for 5 run_no_process "$(sleep_pattern)"
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
	# an exited instance: no -f needed
	id=$(detach --name rm2 bb:1 -- sh -c 'echo done')
	run_wait_for 5 row_has "$id" " exited (0) "
	run --separate-stderr cairn rm rm2
	show
	[ "$status" -eq 0 ]
	[ ! -e "$ROOT/instances/$id" ]
	[ -z "$(ps_row "$id")" ]
	# and its name is free again
	id=$(detach --name rm2 bb:1 -- true)
	run_wait_for 5 row_has "$id" " exited (0) "
	# the image stays
	run cairn --json images
	[[ "$output" == *"${IMG#sha256:}"* ]]
}

# ---- exec ----

@test "exec: runs in the instance's namespaces with its sandbox, propagates exit codes, taints it for good" {
	new_marker
	local id pid
	id=$(detach --name ex1 bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	[[ "$(ps_live_row "$id")" == *" no" ]]
	[ "$(inst_field "$id" tainted)" = false ]
	run --separate-stderr cairn exec ex1 -- hostname
	show
	[ "$status" -eq 0 ]
	[ "$output" = ex1 ]
	[ -z "$stderr" ]
	# the same namespaces as the instance's init
	run --separate-stderr cairn exec ex1 -- sh -c 'for n in pid mnt uts ipc net cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done'
	show
	[ "$status" -eq 0 ]
	local n inside
	for n in pid mnt uts ipc net cgroup; do
		inside=$(printf '%s\n' "$output" | awk -v n="$n" '$1 == n { print $2 }')
		echo "$n: exec $inside, init $(readlink "/proc/$pid/ns/$n")"
		[ "$inside" = "$(readlink "/proc/$pid/ns/$n")" ]
	done
	# it sees the instance's processes
	run --separate-stderr cairn exec ex1 -- ps
	show
	[[ "$output" == *"sleep $MARKER"* ]]
	# the same capabilities and sandbox as `cairn run`
	run --separate-stderr cairn exec ex1 -- cat /proc/self/status
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nCapEff:\t00000000a80425fb\n'* ]]
	[[ "$output" == *$'\nCapBnd:\t00000000a80425fb\n'* ]]
	[[ "$output" == *$'\nNoNewPrivs:\t1\n'* ]]
	[[ "$output" == *$'\nSeccomp:\t2\n'* ]]
	# the read-only root too
	run --separate-stderr cairn exec ex1 -- touch /x
	[ "$status" -ne 0 ]
	[[ "$stderr" == *"Read-only file system"* ]]
	# exit codes
	run --separate-stderr cairn exec ex1 -- sh -c 'exit 3'
	show
	[ "$status" -eq 3 ]
	run -127 --separate-stderr cairn exec ex1 -- nosuchcmd
	show
	[ "$stderr" = "cairn: exec: nosuchcmd: No such file or directory" ]
	# tainted, for good
	[[ "$(ps_live_row "$id")" == *" running "*" yes" ]]
	[ "$(inst_field "$id" tainted)" = true ]
	live "$pid"
	run cairn stop ex1
	[ "$status" -eq 0 ]
	[[ "$(ps_row "$id")" == *" exited (143) "*" yes" ]]
	[ "$(inst_field "$id" tainted)" = true ]
	# no exec into an exited instance
	run --separate-stderr cairn exec ex1 -- true
	show
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_one_line_error
	[[ "$stderr" == *ex1* ]] || [[ "$stderr" == *"${id:0:12}"* ]]
	# nor into one that does not exist
	run --separate-stderr cairn exec nosuchinstance -- true
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
}

# ---- names ----

@test "run -d --name: the name of a running instance is refused with exit 1 naming it, nothing started" {
	new_marker
	local id pid
	id=$(detach --name same bb:1 -- sleep "$MARKER")
	wait_running "$id"
	pid=$(inst_field "$id" pid)
	run --separate-stderr cairn run -d --name same bb:1 -- sh -c "echo second; sleep $MARKER"
	show
	[ -z "$output" ]
	echo "instances: $(ls "$ROOT/instances" | tr '\n' ' ')"
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *same* ]]
	[ "$(det_ids | wc -l)" -eq 1 ]
	[ "$(ls "$ROOT/instances")" = "$id" ]
	[ "$(pgrep -fc -- "$(sleep_pattern)")" -eq 1 ]
	[ "$(inst_field same pid)" = "$pid" ]
	[ "$(inst_field same id)" = "$id" ]
}

@test "run -d --name: the name of an exited instance is refused until it is removed" {
	local id
	id=$(detach --name same bb:1 -- true)
	run_wait_for 5 row_has "$id" " exited (0) "
	run --separate-stderr cairn run -d --name same bb:1 -- true
	show
	[ -z "$output" ]
	echo "instances: $(ls "$ROOT/instances" | tr '\n' ' ')"
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *same* ]]
	[ "$(det_ids | wc -l)" -eq 1 ]
	[ "$(ls "$ROOT/instances")" = "$id" ]
	# once removed, the name is free
	cairn rm same >/dev/null
	id=$(detach --name same bb:1 -- true)
	run_wait_for 5 row_has "$id" " exited (0) "
}

# ---- cleanliness ----

@test "cleanliness: after stop, rm -f and rm of every kind of instance nothing of ROOT is left" {
	new_marker
	local a b c d e pa pd
	a=$(detach --name c-run bb:1 -- sleep "$MARKER")
	b=$(detach --name c-exit bb:1 -- sh -c 'exit 2')
	c=$(detach --name c-vol -v data:/data bb:1 -- sh -c "echo x > /data/f; exec sleep $MARKER")
	d=$(detach --name c-orphan bb:1 -- sleep "$MARKER")
	e=$(detach --name c-stop bb:1 -- sleep "$MARKER")
	wait_running "$a"
	wait_running "$c"
	wait_running "$d"
	wait_running "$e"
	run_wait_for 5 row_has "$b" " exited (2) "
	pa=$(inst_field "$a" pid)
	pd=$(inst_field "$d" pid)
	# one without its monitor
	kill -KILL "$(ppid_of "$pd")"
	cairn stop c-stop >/dev/null
	run --separate-stderr cairn rm -f c-run c-vol c-orphan
	show
	[ "$status" -eq 0 ]
	run --separate-stderr cairn rm c-exit c-stop
	show
	[ "$status" -eq 0 ]
	[ -z "$(det_ids)" ]
	[ -z "$(ls -A "$ROOT/instances")" ]
	run_wait_for 5 run_exited "$pa"
	run_wait_for 5 run_exited "$pd"
	run_wait_for 5 run_no_process "$(sleep_pattern)"
	run_wait_for 5 no_root_procs
	[ -z "$(run_mounts_under "$ROOT")" ]
	local id left
	for id in "$a" "$b" "$c" "$d" "$e"; do
		left=$(find /sys/fs/cgroup -maxdepth 3 -name "$id" 2>/dev/null)
		[ -z "$left" ] || { echo "cgroups left: $left"; return 1; }
	done
	# the named volume outlives its instance
	[ "$(cat "$ROOT/volumes/data/f")" = x ]
}
