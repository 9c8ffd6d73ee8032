#!/usr/bin/env bats
# cairn daemon / deploy / status / releases / rollback / events: blue-green
# releases of a hello-like service (busybox httpd serving "hello from vN")
# through the router, with a load generator (load.py) counting every request
# while releases change: none may fail.

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

# ---- deploy, status ----

@test "deploy: v1 goes live with N healthy instances; status shows it; the page is served" {
	daemon_start
	# the API socket is the daemon's alone
	[ "$(stat -c '%a %U' "$ROOT/cairn.sock")" = "600 root" ]
	[ -n "$(router_pid)" ]
	# the main thread and the two workers asked for
	[ "$(awk '/^Threads:/ {print $2}' "/proc/$(router_pid)/status")" = 3 ]
	deploy_ok prod
	figure "deploy v1 (build + 3 instances + health + switch): ${DEPLOY_MS} ms wall, switched after ${DEPLOY_SWITCH}s"
	[[ "$output" == "prod v1 is live (traffic switched after "* ]]
	# the progress went to stderr: the release, each instance, health, the switch
	[[ "$stderr" == *"v1 of prod: image sha256:"* ]]
	[ "$(grep -c 'started hello-prod-v1-' <<<"$stderr")" -eq 3 ]
	[[ "$stderr" == *"3 of 3 instances healthy"* ]]
	[[ "$stderr" == *"traffic switched to v1"* ]]
	page_is "$PROD_URL" "hello from v1"
	# status, text
	run --separate-stderr cairn status prod
	show
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^prod:\ v1\ live\ since\ .*\ on\ 127\.0\.0\.1:$PROD_PORT,\ image\ sha256: ]]
	[ "$(grep -cE '^  hello-prod-v1-[123] +running +healthy ' <<<"$output")" -eq 3 ]
	# status, JSON
	local j
	j=$(status_json prod)
	[ "$(jget "$j" "j['envs']['prod']['live']['number']")" = 1 ]
	[ "$(jget "$j" "j['envs']['prod']['live']['state']")" = live ]
	[ "$(jget "$j" "len(j['envs']['prod']['instances'])")" = 3 ]
	[ "$(healthy_count prod)" = 3 ]
	[ "$(jget "$j" "j['envs']['prod']['listen']")" = "127.0.0.1:$PROD_PORT" ]
	# the requests made above were counted by the router
	[ "$(jget "$j" "j['envs']['prod']['requests'] >= 10")" = true ]
	[ "$(jget "$j" "j['envs']['prod']['errors']")" = 0 ]
	# status without ENV lists every environment
	j=$(status_json)
	[ "$(jget "$j" "sorted(j['envs'])")" = '["prod"]' ]
	# /metrics on the admin address: exactly the requests made (every
	# router worker's counts summed), per instance of v1, and the histogram
	local before m
	before=$(jget "$(status_json prod)" "j['envs']['prod']['requests']")
	traffic_flows "$PROD_URL" 40
	m=$(curl -sf --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics")
	[ "$(grep -cE '^cairn_router_requests_total\{env="prod",instance="[0-9a-f]+",release="1"\} [0-9]+$' <<<"$m")" -eq 3 ]
	[ "$(grep -E '^cairn_router_env_requests_total\{env="prod"\} ' <<<"$m" | awk '{print $2}')" -eq $((before + 40)) ]
	[ "$(grep -E '^cairn_router_requests_total\{' <<<"$m" | awk '{s += $2} END {print s}')" -eq $((before + 40)) ]
	[ "$(grep -E '^cairn_router_request_duration_seconds_count\{' <<<"$m" | awk '{s += $2} END {print s}')" -eq $((before + 40)) ]
	[ "$(grep -E '^cairn_router_backend_healthy\{' <<<"$m" | awk '{s += $2} END {print s}')" -eq 3 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/other")" = 404 ]
	# the instances are cairn instances named after the release
	run cairn ps
	[ "$(grep -c ' hello-prod-v1-' <<<"$output")" -eq 3 ]
	# the release's image is the build's (hello:latest)
	[ "$(rel prod 1 image)" = "$(cairn --json images | python3 -c 'import json,sys
print([i["id"] for i in json.load(sys.stdin) if i["name"] == "hello" and i["tag"] == "latest"][0])')" ]
}

@test "deploy: v2 under load: no failed request, the page becomes v2, v1 is kept warm as previous" {
	daemon_start
	deploy_ok prod
	page_is "$PROD_URL" "hello from v1"
	load_start d2
	set_page v2
	deploy_ok prod
	figure "deploy v2 under load: ${DEPLOY_MS} ms wall, switched after ${DEPLOY_SWITCH}s"
	[[ "$output" == "prod v2 is live"* ]]
	page_is "$PROD_URL" "hello from v2"
	traffic_flows "$PROD_URL" 20
	load_stop d2
	load_clean
	# the load saw both versions, and nothing else
	[ "$(load_bodies)" = "$(printf 'hello from v1\nhello from v2')" ]
	[ "$(rel_states prod)" = "v2=live v1=previous" ]
	[ "$(rel prod 2 trigger)" = deploy ]
	[ "$(healthy_count prod)" = 3 ]
	# v1 is kept warm: its three instances still run (out of rotation)
	run cairn ps
	[ "$(grep -c ' hello-prod-v1-' <<<"$output")" -eq 3 ]
	[ "$(grep -c ' hello-prod-v2-' <<<"$output")" -eq 3 ]
}

# ---- rollback, releases, events ----

@test "rollback: to the warm release is a route switch under 1 s, under load; releases and events record it" {
	daemon_start
	deploy_ok prod
	set_page v2
	deploy_ok prod
	page_is "$PROD_URL" "hello from v2"
	load_start rb
	local m
	m=$(python3 "$LOAD_PY" switch --url "$PROD_URL" --expect "hello from v1" --log "$T/rollback.log" \
		-- "$CAIRN" --root "$ROOT" rollback prod)
	echo "switch: $m"
	cat "$T/rollback.log"
	[ "$(jget "$m" "j['rc']")" = 0 ]
	[ "$(jget "$m" "j['errors'] + j['non_2xx']")" = 0 ]
	[ "$(jget "$m" "j['switch_ms'] is not None")" = true ]
	figure "rollback to warm v1: first v1 answer $(jget "$m" "j['switch_ms']") ms after the command started (command took $(jget "$m" "j['cmd_ms']") ms)"
	[ "$(jget "$m" "j['switch_ms'] < 1000")" = true ]
	grep -q '^prod v3 is live' "$T/rollback.log"
	# a route switch: no instance started
	! grep -q 'started hello-prod' "$T/rollback.log"
	page_is "$PROD_URL" "hello from v1"
	traffic_flows "$PROD_URL" 20
	load_stop rb
	load_clean
	# releases: the rollback is a new release with v1's image and config
	[ "$(rel_states prod)" = "v3=live v2=rolled-back v1=retired" ]
	[ "$(rel prod 3 trigger)" = "rollback to v1" ]
	[ "$(rel prod 3 image)" = "$(rel prod 1 image)" ]
	[ "$(rel prod 3 config)" = "$(rel prod 1 config)" ]
	[ "$(rel prod 2 image)" != "$(rel prod 1 image)" ]
	[ "$(rel prod 1 trigger)" = deploy ]
	# the text view: every release with its state and trigger
	run --separate-stderr cairn releases prod
	show
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "REL "* ]]
	[[ "${lines[1]}" =~ ^v3\ .*\ live\ +rollback\ to\ v1$ ]]
	[[ "${lines[2]}" =~ ^v2\ .*\ rolled-back\ +deploy$ ]]
	[[ "${lines[3]}" =~ ^v1\ .*\ retired\ +deploy ]]
	# the live release serves with the instances of v1 (adopted, all healthy)
	[ "$(healthy_count prod)" = 3 ]
	# events: created and live, for each release
	local j
	j=$(events_json prod)
	local kinds
	kinds=$(jget "$j" "' '.join(sorted(set('%s:%s' % (e['kind'], e['subject']) for e in j['events'] if e['kind'].startswith('release.'))))")
	echo "$kinds"
	[[ " $kinds " == *" release.create:prod/v1 "* ]]
	[[ " $kinds " == *" release.live:prod/v1 "* ]]
	[[ " $kinds " == *" release.create:prod/v2 "* ]]
	[[ " $kinds " == *" release.live:prod/v2 "* ]]
	[[ " $kinds " == *" release.create:prod/v3 "* ]]
	[[ " $kinds " == *" release.live:prod/v3 "* ]]
	run cairn events prod
	[ "$status" -eq 0 ]
	[[ "$output" =~ release\.create\ +prod/v3\ +rollback\ to\ v1 ]]
	[ "$(grep -c 'instance.start' <<<"$output")" -eq 6 ]
	# a second rollback goes back to v2 (now the newest earlier release that went live)
	run --separate-stderr cairn rollback prod
	show
	[ "$status" -eq 0 ]
	page_is "$PROD_URL" "hello from v2"
	[ "$(rel prod 4 trigger)" = "rollback to v2" ]
	[ "$(rel prod 4 image)" = "$(rel prod 2 image)" ]
}

@test "rollback: --to vN to a release no longer warm deploys it again under load; refusals: the live release, a missing one, a bad vN" {
	daemon_start
	deploy_ok prod
	set_page v2
	deploy_ok prod
	set_page v3
	deploy_ok prod
	page_is "$PROD_URL" "hello from v3"
	run --separate-stderr cairn rollback --to v3 prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"v3 is the live release"* ]]
	run --separate-stderr cairn rollback --to v9 prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"prod has no release v9"* ]]
	run --separate-stderr cairn rollback --to vx prod
	[ "$status" -eq 2 ]
	[ "$(live_number prod)" = 3 ]
	# v1 is not warm any more (keep_previous 1): its image and config are deployed again
	load_start rt
	run --separate-stderr cairn rollback --to 1 prod
	show
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"v1 is not running: deploying its image and config again"* ]]
	page_is "$PROD_URL" "hello from v1"
	load_stop rt
	load_clean
	[ "$(rel prod 4 trigger)" = "rollback to v1" ]
	[ "$(rel prod 4 image)" = "$(rel prod 1 image)" ]
	[ "$(rel prod 3 state)" = rolled-back ]
	[ "$(healthy_count prod)" = 3 ]
}

# ---- failed releases ----

@test "deploy: a release whose health never passes (its image has no /healthz) fails at deploy_timeout; the live release serves 100% meanwhile" {
	daemon_start
	deploy_ok prod
	load_start bad
	set_page v2
	rm "$SVC/www/healthz"
	DEPLOY_TIMEOUT=2s write_service
	local t0=$SECONDS
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[ $((SECONDS - t0)) -lt 10 ]
	[[ "$stderr" == *"cairn: prod v2 failed: 0 of 3 instances healthy when deploy_timeout passed; last check: HTTP status 404"* ]]
	[[ "$stderr" == *"the live release kept all traffic"* ]]
	page_is "$PROD_URL" "hello from v1"
	traffic_flows "$PROD_URL" 20
	load_stop bad
	load_clean
	[ "$(load_bodies)" = "hello from v1" ]
	# recorded as failed, with the reason
	[ "$(rel prod 2 state)" = failed ]
	[[ "$(rel prod 2 reason)" == *"deploy_timeout passed"* ]]
	[ "$(rel prod 1 state)" = live ]
	run cairn releases prod
	[[ "${lines[1]}" =~ ^v2\ .*\ failed\ +deploy:\ 0\ of\ 3\ instances\ healthy ]]
	local j
	j=$(events_json prod)
	[ "$(jget "$j" "len([e for e in j['events'] if e['kind'] == 'release.fail' and e['subject'] == 'prod/v2'])")" = 1 ]
	# its instances are gone; v1 still has its three, healthy
	run cairn ps -a
	! grep -q 'hello-prod-v2-' <<<"$output"
	[ "$(live_number prod)" = 1 ]
	[ "$(healthy_count prod)" = 3 ]
	# a failed release cannot be rolled back to
	run --separate-stderr cairn rollback --to v2 prod
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"v2 failed: only a release that went live can be rolled back to"* ]]
}

@test "deploy: a release whose health path 404s (health.http changed in cairn.yml) fails at deploy_timeout; the live release serves 100% meanwhile" {
	daemon_start
	deploy_ok prod
	load_start badpath
	set_page v2
	HEALTH_PATH=/no-such-page DEPLOY_TIMEOUT=2s write_service
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cairn: prod v2 failed: 0 of 3 instances healthy when deploy_timeout passed; last check: HTTP status 404"* ]]
	[ "$(rel prod 2 state)" = failed ]
	page_is "$PROD_URL" "hello from v1"
	traffic_flows "$PROD_URL" 20
	load_stop badpath
	# the live release, whose own health check (/healthz) passes, must keep
	# serving every request while the new release's check fails
	load_clean
	[ "$(load_bodies)" = "hello from v1" ]
	[ "$(live_number prod)" = 1 ]
	run_wait_for 5 healthy_is prod 3
}

@test "deploy: an environment's health override (http: /other-path) is the check its releases must pass" {
	daemon_start
	# prod checks /ready instead of /healthz; v1 has both
	printf 'ready\n' >"$SVC/www/ready"
	PROD_EXTRA='health: { http: /ready }, deploy: { deploy_timeout: 2s }'
	write_service
	deploy_ok prod
	sqlite3 -readonly "$ROOT/cairn.db" "SELECT number, config FROM releases WHERE env = 'prod'" |
		python3 -c 'import json, sys
for line in sys.stdin:
    n, _, c = line.partition("|")
    print("v" + n, "health:", json.loads(c)["health"])'
	# v2 has /healthz but no /ready: it must not go live
	rm "$SVC/www/ready"
	set_page v2
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[ "$(rel prod 2 state)" = failed ]
	page_is "$PROD_URL" "hello from v1"
}

@test "deploy: a release whose instances exit after 1 s fails; the live release serves 100% meanwhile" {
	daemon_start
	deploy_ok prod
	load_start exit
	PROD_EXTRA='run: { command: ["/bin/sh", "-c", "sleep 1; exit 3"] }'
	write_service
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"prod v2 failed: instance "*" ended (exit code 3) before it was healthy"* ]]
	page_is "$PROD_URL" "hello from v1"
	traffic_flows "$PROD_URL" 20
	load_stop exit
	load_clean
	[ "$(load_bodies)" = "hello from v1" ]
	[ "$(rel prod 2 state)" = failed ]
	[[ "$(rel prod 2 reason)" == *"(exit code 3)"* ]]
	[ "$(live_number prod)" = 1 ]
	[ "$(healthy_count prod)" = 3 ]
	run cairn ps -a
	! grep -q 'hello-prod-v2-' <<<"$output"
}

@test "deploy: a command that cannot start fails the release at once; the first deploy of an env that fails leaves nothing listening" {
	daemon_start
	PROD_EXTRA='run: { command: ["/no/such/program"] }'
	write_service
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"prod v1 failed: "* ]]
	[ "$(rel prod 1 state)" = failed ]
	[ -n "$(rel prod 1 reason)" ]
	local j
	j=$(status_json prod)
	[ "$(jget "$j" "j['envs']['prod']['live']")" = null ]
	run cairn status prod
	[ "$output" = "prod: nothing live" ]
	# nothing serves the env's address
	! page "$PROD_URL"
	run cairn ps -a
	! grep -q 'hello-prod-v1-' <<<"$output"
	# a good release then goes live
	PROD_EXTRA=
	write_service
	deploy_ok prod
	[[ "$output" == "prod v2 is live"* ]]
	page_is "$PROD_URL" "hello from v1"
}

# ---- the daemon ----

@test "daemon: not running: deploy, status, releases, rollback say so in one line with the command to start it" {
	local cmd
	for cmd in "deploy -f $SVC/cairn.yml prod" "status" "status prod" "releases prod" "rollback prod" \
		"events" "scale prod 2" "promote -f $SVC/cairn.yml dev prod"; do
		# shellcheck disable=SC2086
		run --separate-stderr cairn $cmd
		show
		[ "$status" -eq 1 ]
		assert_one_line_error
		[[ "$stderr" == *"no daemon runs on $ROOT"* ]]
		[[ "$stderr" == *"'cairn --root $ROOT daemon'"* ]]
	done
	# deploy asked before building anything
	[ -z "$(cairn --json images | python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin) if i["name"] == "hello"))')" ]
	# the same once a daemon stopped (its socket is gone) or was killed (its socket is left)
	daemon_start
	deploy_ok prod
	daemon_stop
	run --separate-stderr cairn status prod
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *"no daemon runs on $ROOT"* ]]
	daemon_start
	daemon_kill9
	[ -S "$ROOT/cairn.sock" ]
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *"no daemon runs on $ROOT: start one with 'cairn --root $ROOT daemon'"* ]]
	# the router outlived both daemons and still serves v1
	page_is "$PROD_URL" "hello from v1"
}

@test "daemon: a second daemon on the same root is refused" {
	daemon_start
	run --separate-stderr "$CAIRN" --root "$ROOT" daemon
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"another daemon runs on $ROOT"* ]]
	daemon_answers
}

@test "daemon: kill -9 while traffic flows: no request fails; a restarted daemon shows the same status and deploys" {
	daemon_start
	deploy_ok prod
	local before
	before=$(jget "$(status_json prod)" "sorted(i['id'] for i in j['envs']['prod']['instances'])")
	load_start k9
	local rp
	rp=$(router_pid)
	daemon_kill9
	# the router is a separate process: it survived
	[ "$(router_pid)" = "$rp" ]
	traffic_flows "$PROD_URL" 50
	run --separate-stderr cairn status prod
	[ "$status" -eq 1 ]
	daemon_start
	# the same router, the same live release and instances, all healthy
	[ "$(router_pid)" = "$rp" ]
	[ "$(live_number prod)" = 1 ]
	[ "$(jget "$(status_json prod)" "sorted(i['id'] for i in j['envs']['prod']['instances'])")" = "$before" ]
	run_wait_for 5 healthy_is prod 3
	[ "$(healthy_count prod)" = 3 ]
	page_is "$PROD_URL" "hello from v1"
	# and it carries out a deploy
	set_page v2
	deploy_ok prod
	page_is "$PROD_URL" "hello from v2"
	traffic_flows "$PROD_URL" 20
	load_stop k9
	load_clean
	[ "$(rel_states prod)" = "v2=live v1=previous" ]
}

@test "daemon: kill -9 during a deploy: the live release never stops; the restarted daemon marks the deploy failed and removes its instances" {
	daemon_start
	deploy_ok prod
	load_start kd
	set_page v2
	rm "$SVC/www/healthz"
	DEPLOY_TIMEOUT=60s write_service
	"$CAIRN" --root "$ROOT" deploy -f "$SVC/cairn.yml" prod >"$T/bg.out" 2>"$T/bg.err" 3>&- &
	BG_PID=$!
	# the new instances started, the deploy waits for their health
	run_wait_for 20 grep -q 'started hello-prod-v2-3' "$T/bg.err"
	[ "$(rel prod 2 state)" = deploying ]
	daemon_kill9
	# the client learns that the daemon went away
	run_wait_for 10 run_exited "$BG_PID"
	local rc=0
	wait "$BG_PID" || rc=$?
	BG_PID=
	echo "deploy exited $rc:"
	cat "$T/bg.err"
	[ "$rc" -eq 1 ]
	traffic_flows "$PROD_URL" 30
	page_is "$PROD_URL" "hello from v1"
	daemon_start
	[ "$(rel prod 2 state)" = failed ]
	[ "$(rel prod 2 reason)" = "the daemon stopped during the deploy" ]
	[ "$(live_number prod)" = 1 ]
	run cairn ps -a
	! grep -q 'hello-prod-v2-' <<<"$output"
	run_wait_for 5 healthy_is prod 3
	traffic_flows "$PROD_URL" 20
	load_stop kd
	load_clean
	[ "$(load_bodies)" = "hello from v1" ]
	# the interrupted deploy said what happened (not a bare "cairn: failed")
	grep -q '^cairn: .*daemon' "$T/bg.err"
}

# ---- promote, scale ----

@test "promote: dev to prod deploys the image id live in dev, with prod's settings" {
	daemon_start
	# nothing live in dev yet: refused, nothing recorded in prod
	run --separate-stderr cairn promote -f "$SVC/cairn.yml" dev prod
	show
	[ "$status" -eq 1 ]
	[ "$(jget "$(releases_json prod)" "len(j['releases'])")" = 0 ]
	deploy_ok dev
	page_is "$DEV_URL" "hello from v1"
	# a later build moves hello:latest: promote must not rebuild nor follow the tag
	set_page v2
	run cairn build -t hello:latest "$SVC"
	[ "$status" -eq 0 ]
	run --separate-stderr cairn promote -f "$SVC/cairn.yml" dev prod
	show
	[ "$status" -eq 0 ]
	[[ "$output" == "prod v1 is live"* ]]
	[ "$(rel prod 1 image)" = "$(rel dev 1 image)" ]
	[ "$(rel prod 1 trigger)" = "promote from dev v1" ]
	# prod's settings: its replicas and its address
	[ "$(healthy_count prod)" = 3 ]
	[ "$(healthy_count dev)" = 1 ]
	page_is "$PROD_URL" "hello from v1"
	page_is "$DEV_URL" "hello from v1"
	# the configs differ (replicas, listen), the images are one
	[ "$(rel prod 1 config)" != "$(rel dev 1 config)" ]
	# and back: dev gets prod's image id
	run --separate-stderr cairn promote -f "$SVC/cairn.yml" prod dev
	show
	[ "$status" -eq 0 ]
	[ "$(rel dev 2 image)" = "$(rel prod 1 image)" ]
}

@test "scale: prod 3 -> 2 under load is a new release with 2 healthy instances of the same image" {
	daemon_start
	deploy_ok prod
	[ "$(healthy_count prod)" = 3 ]
	load_start sc
	run --separate-stderr cairn scale prod 2
	show
	[ "$status" -eq 0 ]
	[[ "$output" == "prod v2 is live"* ]]
	[ "$(healthy_count prod)" = 2 ]
	local j
	j=$(status_json prod)
	[ "$(jget "$j" "len(j['envs']['prod']['instances'])")" = 2 ]
	[ "$(rel prod 2 trigger)" = "scale to 2" ]
	[ "$(rel prod 2 image)" = "$(rel prod 1 image)" ]
	page_is "$PROD_URL" "hello from v1"
	run --separate-stderr cairn scale prod 4
	show
	[ "$status" -eq 0 ]
	[ "$(healthy_count prod)" = 4 ]
	traffic_flows "$PROD_URL" 20
	load_stop sc
	load_clean
	run --separate-stderr cairn scale prod lots
	[ "$status" -eq 2 ]
	run --separate-stderr cairn scale prod 201
	[ "$status" -eq 2 ]
}

# ---- gc ----

@test "gc: after deploys every release's image is kept; a rollback to a retired release works after gc" {
	daemon_start
	deploy_ok prod
	set_page v2
	deploy_ok prod
	set_page v3
	deploy_ok prod
	# hello:latest now names v3's image: v1's and v2's are untagged
	local i1 i2 i3
	i1=$(rel prod 1 image)
	i2=$(rel prod 2 image)
	i3=$(rel prod 3 image)
	[ "$i1" != "$i2" ] && [ "$i2" != "$i3" ] && [ "$i1" != "$i3" ]
	run cairn gc
	show
	[ "$status" -eq 0 ]
	run cairn gc --build-cache
	[ "$status" -eq 0 ]
	local id
	for id in "$i1" "$i2" "$i3"; do
		run cairn inspect "$id"
		show
		[ "$status" -eq 0 ]
	done
	run cairn fsck
	show
	[ "$status" -eq 0 ]
	# v1 is retired (not warm): the rollback starts its image again
	[ "$(rel prod 1 state)" = retired ]
	load_start gc
	run --separate-stderr cairn rollback --to v1 prod
	show
	[ "$status" -eq 0 ]
	page_is "$PROD_URL" "hello from v1"
	load_stop gc
	load_clean
	[ "$(rel prod 4 image)" = "$i1" ]
}
