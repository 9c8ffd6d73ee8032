#!/usr/bin/env bats
# The acceptance test of blue-green deploys: 20 cycles of deploy and
# rollback under steady load (keep-alive and new-connection clients), with
# not one failed request, every rollback to the warm release a route switch,
# and nothing left running beyond the live and the warm release.

load helpers
load deploy_helpers

setup_file() {
	deploy_setup_file
	# two router workers (on any machine): every table, health change and
	# count must agree across them
	export CAIRN_ROUTER_WORKERS=2
}

setup() {
	deploy_setup
}

teardown() {
	deploy_teardown
}

CYCLES=20

# stats NAME V...: "NAME min/median/max" of the numbers V.
stats() {
	local name=$1
	shift
	python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.argv[2:])
print("%s: min %.0f, median %.0f, max %.0f ms over %d" % (sys.argv[1], v[0], statistics.median(v), v[-1], len(v)))' "$name" "$@"
}

@test "cycles: $CYCLES deploys and rollbacks under load: 0 failed requests, rollbacks are route switches" {
	daemon_start
	PROD_REPLICAS=2
	write_service
	set_page A
	run cairn build -t hello:a "$SVC"
	[ "$status" -eq 0 ]
	set_page B
	run cairn build -t hello:b "$SVC"
	[ "$status" -eq 0 ]
	deploy_ok prod --image hello:a
	page_is "$PROD_URL" "hello from A"
	load_start cycles
	local cycle m deploys=() rollbacks=() t_start=$SECONDS
	# (not "i": bats' own functions, run among them, use a global i)
	for ((cycle = 1; cycle <= CYCLES; cycle++)); do
		deploy_ok prod --image hello:b
		deploys+=("$DEPLOY_MS")
		page_is "$PROD_URL" "hello from B"
		m=$(python3 "$LOAD_PY" switch --check --url "$PROD_URL" --expect "hello from A" \
			--log "$T/rollback-$cycle.log" -- "$CAIRN" --root "$ROOT" rollback prod) || {
			echo "cycle $cycle: rollback: $m"
			cat "$T/rollback-$cycle.log"
			false
		}
		# a route switch to the warm instances: nothing started
		! grep -q 'started hello-prod' "$T/rollback-$cycle.log"
		[[ "$m" =~ \"switch_ms\":\ ([0-9.]+) ]]
		rollbacks+=("${BASH_REMATCH[1]}")
		page_is "$PROD_URL" "hello from A"
		# bounded: the loop gives up after 120 s (about 25 s on an idle machine)
		[ $((SECONDS - t_start)) -lt 120 ] || {
			echo "cycle $cycle: more than 120 s"
			false
		}
	done
	local elapsed=$((SECONDS - t_start))
	load_stop cycles
	figure "$CYCLES cycles in ${elapsed} s"
	figure "$(stats "deploy (wall)" "${deploys[@]}")"
	figure "$(stats "rollback (command start to first answer of the old release)" "${rollbacks[@]}")"
	load_clean
	[ "$(load_bodies)" = "$(printf 'hello from A\nhello from B')" ]
	# every rollback under a second
	[ "$(python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]) < 1000)' "${rollbacks[@]}")" = True ]
	# 1 + 2 * CYCLES releases; the last is live (the image of hello:a), one is
	# kept warm, every other one retired
	local j
	j=$(releases_json prod)
	[ "$(jget "$j" "len(j['releases'])")" = $((1 + 2 * CYCLES)) ]
	[ "$(jget "$j" "j['releases'][0]['state']")" = live ]
	[ "$(jget "$j" "j['releases'][0]['trigger']")" = "rollback to v$((2 * CYCLES - 1))" ]
	[ "$(jget "$j" "sorted(set(r['state'] for r in j['releases'][2:]))")" = '["retired"]' ]
	[ "$(jget "$j" "j['releases'][1]['state']")" = rolled-back ]
	# nothing leaked: the live release's 2 instances and the warm one's 2
	local running
	running=$(cairn --json ps | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
	[ "$running" -eq 4 ]
	[ "$(healthy_count prod)" = 2 ]
	# the router's count agrees with the load generator's: no error
	j=$(status_json prod)
	[ "$(jget "$j" "j['envs']['prod']['errors']")" = 0 ]
}
