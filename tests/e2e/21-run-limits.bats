#!/usr/bin/env bats
# Instances: --pids, --memory and --cpus limits hold inside `cairn run`, the
# cairn process outlives what they kill, and bad option values are refused
# with one line naming the option.

load helpers

setup_file() {
	export RUN_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	run_mk_rootfs "$RUN_ROOTFS"
}

setup() {
	e2e_setup
	import_id "$RUN_ROOTFS" bb:1 >/dev/null
	MARKER=
}

teardown() {
	[ -z "${MARKER:-}" ] || run_kill_marked "^(/bin/)?sleep $MARKER\$"
	assert_no_instance_leftovers
}

need_controller() {
	run_have_controller "$1" || skip "no $1 cgroup controller on this host"
}

# ---- limits ----

@test "limits: --pids 20 stops a fork bomb and cairn run still returns" {
	need_controller pids
	MARKER="30.$$$RANDOM$RANDOM"
	# Start up to 100 sleeps in a subshell (ash gives up at the first
	# failed fork), then kill them with builtins only: no fork is left.
	local script='
	( i=0; while [ $i -lt 100 ]; do sleep '"$MARKER"' & echo $! >> /tmp/pids; i=$((i+1)); done ) 2>/tmp/err
	n=0
	while read p; do kill $p; n=$((n+1)); done < /tmp/pids
	echo "started=$n"
	read e < /tmp/err; echo "error=$e"'
	run --separate-stderr timeout -k 5 20 "$CAIRN" --root "$ROOT" run --pids 20 bb:1 -- sh -c "$script"
	show
	[ "$status" -eq 0 ]
	local n
	n=$(printf '%s\n' "$output" | sed -n 's/^started=//p')
	[ "$n" -ge 5 ]
	[ "$n" -lt 20 ]
	[[ "$output" == *"error="*"can't fork"* ]] || [[ "$output" == *"error="*"Resource temporarily unavailable"* ]]
	run_wait_for 5 run_no_process "^(/bin/)?sleep $MARKER\$"
	# without the limit the same loop starts all 100
	run --separate-stderr timeout -k 5 20 "$CAIRN" --root "$ROOT" run bb:1 -- sh -c "$script"
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"started=100"* ]]
}

@test "limits: --memory 32M kills a command filling tmpfs, cairn reports out of memory" {
	need_controller memory
	run --separate-stderr timeout -k 5 30 "$CAIRN" --root "$ROOT" run --memory 32M bb:1 -- \
		dd if=/dev/zero of=/tmp/big bs=1M count=200
	show
	[ "$status" -eq 137 ]
	# cairn itself survived: it printed why the command died
	[[ "$stderr" == *"cairn: "*"out of memory"* ]]
}

@test "limits: --memory 32M kills a command growing its heap, cairn reports out of memory" {
	need_controller memory
	run --separate-stderr timeout -k 5 30 "$CAIRN" --root "$ROOT" run --memory 32M bb:1 -- \
		awk 'BEGIN { s = "x"; while (1) s = s s }'
	show
	[ "$status" -eq 137 ]
	[[ "$stderr" == *"cairn: "*"out of memory"* ]]
}

@test "limits: a command within --memory runs normally" {
	need_controller memory
	run --separate-stderr cairn run --memory 64M bb:1 -- sh -c 'dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null && wc -c < /tmp/f'
	show
	[ "$status" -eq 0 ]
	[ "$output" = 8388608 ]
	[[ "$stderr" != *"out of memory"* ]]
}

@test "limits: --cpus 0.5 holds a busy loop to about half a core" {
	need_controller cpu
	# The loop spins for one second of wall time (a measuring window, not
	# a wait for a condition); its CPU time is read before it is killed.
	run --separate-stderr cairn run --cpus 0.5 bb:1 -- sh -c \
		'sh -c "while :; do :; done" & p=$!; sleep 1; read s < /proc/$p/stat; kill $p; echo "$s"'
	show
	[ "$status" -eq 0 ]
	local rest ticks hz
	rest=${output##*) }
	ticks=$(echo "$rest" | awk '{ print $12 + $13 }')
	hz=$(getconf CLK_TCK)
	echo "cpu ticks in 1 s: $ticks (of $hz a second)"
	[ "$ticks" -gt 0 ]
	# 0.5 s allowed, with room for the period boundaries
	[ "$ticks" -le $((hz * 70 / 100)) ]
	run cairn run --cpus 2 bb:1 -- true
	[ "$status" -eq 0 ]
}

# ---- bad values ----

# assert_refused WORD ARGS...: `cairn run ARGS bb:1 -- true` exits 1 or 2
# with a first line "cairn: ..." naming WORD (a usage hint may follow an exit
# 2), prints nothing on stdout and leaves no instance behind.
assert_refused() {
	local word=$1
	shift
	run --separate-stderr cairn run "$@" bb:1 -- true
	show
	[ "$status" -eq 1 ] || [ "$status" -eq 2 ]
	[ -z "$output" ]
	local first=${stderr%%$'\n'*}
	[[ "$first" == "cairn: "* ]]
	[[ "$first" == *"$word"* ]]
	local lines
	lines=$(printf '%s\n' "$stderr" | wc -l)
	if [ "$status" -eq 2 ]; then
		[ "$lines" -le 2 ]
	else
		[ "$lines" -eq 1 ]
	fi
	[ -z "$(ls -A "$ROOT/instances" 2>/dev/null)" ]
}

@test "limits: --memory abc is refused" {
	assert_refused --memory --memory abc
	assert_refused --memory --memory 100
	assert_refused --memory --memory -1M
}

@test "limits: --pids 0 is refused" {
	assert_refused --pids --pids 0
	assert_refused --pids --pids -5
	assert_refused --pids --pids many
}

@test "limits: --cpus -1 is refused" {
	assert_refused --cpus --cpus -1
	assert_refused --cpus --cpus 0
	assert_refused --cpus --cpus half
}

@test "limits: -v without a colon is refused" {
	assert_refused "-v nocolon" -v nocolon
	[ ! -e "$ROOT/volumes/nocolon" ]
}

@test "limits: -v with a relative target is refused" {
	assert_refused "-v x:relative" -v x:relative
	[ ! -e "$ROOT/volumes/x" ]
}

@test "limits: -v with a target escaping through .. is refused" {
	assert_refused "-v x:/a/../../b" -v x:/a/../../b
	[ ! -e "$ROOT/volumes/x" ]
	assert_refused "-v x:/.." -v x:/..
}

@test "limits: -v with a bad volume name or a missing host directory is refused" {
	assert_refused "-v ../up:/d" -v ../up:/d
	assert_refused "-v $T/nosuchdir:/d" -v "$T/nosuchdir:/d"
	assert_refused "-v x:/d:rx" -v x:/d:rx
}

@test "limits: --network bogus is refused" {
	assert_refused --network --network bogus
}
