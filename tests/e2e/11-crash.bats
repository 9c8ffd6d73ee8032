#!/usr/bin/env bats
# Acceptance 12: kill -9 at a random moment of an import (or a gc) never
# leaves a corrupt store or an image listed that is not complete.

load helpers

setup() {
	e2e_setup
}

# mk_big DIR: about 2000 files and 40 MB of incompressible content.
mk_big() {
	python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(2000):
    d = os.path.join(root, "d%02d" % (i % 40), "s%d" % (i % 3))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        f.write(os.urandom(20480))
PY
}

# ms: milliseconds since the epoch
ms() {
	echo $(($(date +%s%N) / 1000000))
}

# c ARGS...: cairn with a time limit, so a stale lock fails the test
# instead of hanging the suite
c() {
	timeout 60 "$CAIRN" --root "$ROOT" "$@"
}

# random_sleep_ms MAX: sleep a random 0..MAX-1 ms. A fixed sleep is right
# here: it picks a random moment to kill a command at; it does not wait for
# a condition.
random_sleep_ms() {
	DELAY=$((RANDOM % $1))
	sleep "$(printf '%d.%03d' $((DELAY / 1000)) $((DELAY % 1000)))"
}

# crash_iteration N SRC WINDOW: import SRC as crash:tN, kill -9 it after a
# random 0..WINDOW ms, then check the store: fsck clean, every listed image
# verifies against BIGDIR, keep:1 intact. Drops crash:tN and runs gc after.
crash_iteration() {
	local n=$1 src=$2 window=$3 pid rc id
	"$CAIRN" --root "$ROOT" import -q "$src" "crash:t$n" >/dev/null 2>&1 &
	pid=$!
	random_sleep_ms "$window"
	kill -9 "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	if [ "$rc" -eq 137 ]; then KILLED=$((KILLED + 1)); else COMPLETED=$((COMPLETED + 1)); fi
	local what="iteration $n ($src, killed at ${DELAY} ms, exit $rc)"

	run c fsck
	[ "$status" -eq 0 ] || { echo "$what: fsck failed"; show; return 1; }
	run c --json images
	[ "$status" -eq 0 ] || { echo "$what: images failed"; show; return 1; }
	# one python run: the distinct ids to verify (every image but keep:1),
	# "crash" if this iteration's tag is listed; fails on any tag other than
	# keep:1, ref:1 and this iteration's
	local listing
	listing=$(printf '%s' "$output" | python3 -c '
import json, sys
n = sys.argv[1]
imgs = json.load(sys.stdin)
refs = {"%s:%s" % (i["name"], i["tag"]) for i in imgs}
extra = refs - {"keep:1", "ref:1", "crash:t" + n, "<none>:<none>"}
if extra:
    sys.exit("unexpected tags: %s" % sorted(extra))
for i in sorted({i["id"] for i in imgs if i["name"] != "keep"}):
    print(i)
if "crash:t" + n in refs:
    print("crash")
' "$n") || { echo "$what: $listing"; return 1; }
	# only complete images are listed: each verifies against BIGDIR
	for id in $listing; do
		[ "$id" != crash ] || continue
		[ -n "$BIG_ID" ] || BIG_ID=$id
		[ "$id" = "$BIG_ID" ] || { echo "$what: unexpected image $id (BIGDIR is $BIG_ID)"; return 1; }
		run c verify "$id" "$T/big"
		[ "$status" -eq 0 ] || { echo "$what: listed image does not verify"; show; return 1; }
	done
	if [[ "$listing" == *crash* ]]; then
		c rm "crash:t$n" >/dev/null
	fi
	run c gc
	[ "$status" -eq 0 ] || { echo "$what: gc failed"; show; return 1; }
	run c fsck
	[ "$status" -eq 0 ] || { echo "$what: fsck after gc failed"; show; return 1; }
	run c verify keep:1 "$T/keep"
	[ "$status" -eq 0 ] || { echo "$what: keep:1 damaged"; show; return 1; }
}

# window_for MS: kill moments from the start to past the end of an import
# that takes MS, so that some kills hit the commit and some imports finish.
# On a quiet machine this is about the 0-300 ms of the plan.
window_for() {
	local w=$(($1 * 2))
	[ "$w" -ge 20 ] || w=20
	[ "$w" -le 2500 ] || w=2500
	echo "$w"
}

@test "crash: kill -9 during import leaves fsck clean and lists only complete images" {
	mk_big "$T/big"
	tar -C "$T/big" -cf "$T/big.tar" .
	mkdir "$T/keep"
	echo "an image that must survive every crash" >"$T/keep/f"
	# the store exists before the loop (a crash while it is being created
	# is the next test)
	import_id "$T/keep" keep:1 >/dev/null

	# how long imports of BIGDIR take here: writing every object (fresh) and
	# when every object is already stored (dedup)
	local t0 fresh dedup
	t0=$(ms)
	import_id "$T/big" probe:1 >/dev/null
	fresh=$(($(ms) - t0))
	t0=$(ms)
	import_id "$T/big.tar" probe:2 >/dev/null
	dedup=$(($(ms) - t0))
	c rm probe:1 probe:2 >/dev/null
	c gc >/dev/null
	echo "import of BIGDIR: ${fresh} ms fresh, ${dedup} ms when stored"

	KILLED=0 COMPLETED=0 BIG_ID=""
	local iter src deadline=$((SECONDS + 150))
	# 10 imports that write every object (gc removes them after each) ...
	for iter in $(seq 1 10); do
		if [ $((iter % 2)) -eq 0 ]; then src="$T/big.tar"; else src="$T/big"; fi
		crash_iteration "$iter" "$src" "$(window_for "$fresh")"
		[ "$SECONDS" -lt "$deadline" ] || { echo "too slow: $iter iterations"; return 1; }
	done
	# ... and 40 that find them stored and are killed around the commit
	import_id "$T/big" ref:1 >/dev/null
	for iter in $(seq 11 50); do
		if [ $((iter % 2)) -eq 0 ]; then src="$T/big.tar"; else src="$T/big"; fi
		crash_iteration "$iter" "$src" "$(window_for "$dedup")"
		[ "$SECONDS" -lt "$deadline" ] || { echo "too slow: $iter iterations"; return 1; }
	done
	echo "killed during import: $KILLED, completed before the kill: $COMPLETED"
	# the test only means something if kills landed inside imports
	[ "$KILLED" -ge 10 ]

	# and the store still works: a final import gives the one id of BIGDIR
	local final
	final=$(import_id "$T/big.tar" crash:final)
	[ -z "$BIG_ID" ] || [ "$final" = "$BIG_ID" ]
	run c verify crash:final "$T/big"
	show
	[ "$status" -eq 0 ]
}

@test "crash: kill -9 during the first import into a new store" {
	mkdir "$T/src"
	echo "first" >"$T/src/f"
	local iter rc pid
	for iter in $(seq 1 20); do
		ROOT="$T/new$iter"
		"$CAIRN" --root "$ROOT" import -q "$T/src" first:1 >/dev/null 2>&1 &
		pid=$!
		random_sleep_ms 60
		kill -9 "$pid" 2>/dev/null || true
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		# either nothing was created, or the store is a consistent one
		if [ -e "$ROOT" ]; then
			run --separate-stderr c fsck
			if [ "$status" -ne 0 ]; then
				echo "iteration $iter (killed at ${DELAY} ms, exit $rc): fsck failed on the store left behind"
				show
				ls -A "$ROOT"
				return 1
			fi
		fi
		run c import -q "$T/src" first:2
		show
		[ "$status" -eq 0 ]
		run c fsck
		[ "$status" -eq 0 ]
	done
}

@test "crash: kill -9 during gc leaves fsck clean and tagged images intact" {
	mkdir "$T/keep"
	python3 -c '
import os, sys
for i in range(200):
    open(os.path.join(sys.argv[1], "k%03d" % i), "wb").write(os.urandom(4096))
' "$T/keep"
	import_id "$T/keep" keep:1 >/dev/null

	local iter pid rc killed=0 deadline=$((SECONDS + 60))
	for iter in $(seq 1 15); do
		rm -rf "$T/junk"
		mkdir "$T/junk"
		python3 -c '
import os, sys
for i in range(300):
    open(os.path.join(sys.argv[1], "j%03d" % i), "wb").write(os.urandom(8192))
' "$T/junk"
		import_id "$T/junk" junk:1 >/dev/null
		c rm junk:1 >/dev/null

		"$CAIRN" --root "$ROOT" gc >/dev/null 2>&1 &
		pid=$!
		random_sleep_ms 40
		kill -9 "$pid" 2>/dev/null || true
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		[ "$rc" -ne 137 ] || killed=$((killed + 1))

		run c fsck
		if [ "$status" -ne 0 ]; then
			echo "iteration $iter: fsck failed after gc was killed at ${DELAY} ms (exit $rc)"
			show
			return 1
		fi
		run c verify keep:1 "$T/keep"
		[ "$status" -eq 0 ] || { show; return 1; }
		run c gc
		[ "$status" -eq 0 ] || { show; return 1; }
		run c fsck
		[ "$status" -eq 0 ] || { show; return 1; }
		[ "$SECONDS" -lt "$deadline" ] || { echo "too slow: $iter iterations"; return 1; }
	done
	echo "gc killed mid-way $killed times out of 15"
	[ -z "$(c images | grep junk)" ]
}
