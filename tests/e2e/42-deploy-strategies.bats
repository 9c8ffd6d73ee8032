#!/usr/bin/env bats
# The canary and rolling strategies, and a single-writer volume: what each
# does to traffic while a release changes.

load helpers
load deploy_helpers

setup_file() {
	deploy_setup_file
	# one router worker here (40, 41 and 43 run two)
	export CAIRN_ROUTER_WORKERS=1
}

setup() {
	deploy_setup
}

teardown() {
	deploy_teardown
}

# The next build answers every page with a server error: no index.html, and
# busybox httpd's directory index is a CGI that fails.
set_broken_page() {
	rm -f "$SVC/www/index.html"
	mkdir -p "$SVC/www/cgi-bin"
	printf '#!/bin/busybox sh\necho "Status: 500 Broken"\necho\necho broken\n' >"$SVC/www/cgi-bin/index.cgi"
	chmod 755 "$SVC/www/cgi-bin/index.cgi"
	# the base image has a /www/index.html of its own
	echo 'RUN rm -f /www/index.html' >>"$SVC/Dockerfile"
}

@test "canary: a release answering errors is stopped at the first step; the live one keeps serving and the release is failed" {
	PROD_REPLICAS=2
	PROD_EXTRA="canary: { steps: [20, 50, 100], pause: 1s, max_error_rate: 0.05, min_requests: 5 }"
	write_service
	daemon_start
	deploy_ok prod
	page_is "$PROD_URL" "hello from v1"
	set_broken_page
	load_start canary
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"canary step 1 (20%)"* ]]
	load_stop canary
	# the canary's errors reached only the share it was given
	jget "$LOAD" "'ok' if j['ok'] > 0 and j['non_2xx'] < j['ok'] else 'bad'" | grep -qx ok
	# and they are its own 500s, relayed although its CGI ends lines with a
	# bare LF (the router accepts that from a server, never from a client)
	[ "$(jget "$LOAD" "sorted(j['non_2xx_by_status'])")" = '["500"]' ]
	[ "$(rel_states prod)" = "v2=failed v1=live" ]
	page_is "$PROD_URL" "hello from v1"
	[ "$(healthy_count prod)" = 2 ]
}

@test "canary: a healthy release goes through every step to live with no failed request" {
	PROD_REPLICAS=2
	PROD_EXTRA="canary: { steps: [30, 100], pause: 300ms, max_error_rate: 0.05, min_requests: 1 }"
	write_service
	daemon_start
	deploy_ok prod
	set_page v2
	load_start c
	deploy_ok prod
	[[ "$stderr" == *"step 1 passed"* ]]
	load_stop c
	load_clean
	page_is "$PROD_URL" "hello from v2"
}

@test "rolling: instances are replaced one at a time under load, with no failed request" {
	PROD_REPLICAS=3
	write_service
	sed -i 's/strategy: blue-green/strategy: rolling, max_surge: 1/' "$SVC/cairn.yml"
	daemon_start
	deploy_ok prod
	set_page v2
	load_start r
	deploy_ok prod
	[[ "$stderr" == *"3 of 3 new instances serving"* ]]
	load_stop r
	load_clean
	page_is "$PROD_URL" "hello from v2"
	[ "$(healthy_count prod)" = 3 ]
	# the old release's instances are gone
	run cairn ps --json
	[ "$(jget "$output" "sum(1 for i in j if '-v1-' in i['name'])")" = 0 ]
}

@test "single-writer volume: the old instance stops before the new one starts, and the deploy says so; two replicas are refused" {
	PROD_REPLICAS=1
	write_service
	sed -i 's|  port: 8080|  port: 8080\n  volumes: { data: { path: /data, single_writer: true } }|' "$SVC/cairn.yml"
	daemon_start
	deploy_ok prod
	set_page v2
	deploy_ok prod
	[[ "$stderr" == *"single-writer"*"not zero-downtime"* ]]
	page_is "$PROD_URL" "hello from v2"
	PROD_REPLICAS=2
	write_service
	sed -i 's|  port: 8080|  port: 8080\n  volumes: { data: { path: /data, single_writer: true } }|' "$SVC/cairn.yml"
	run --separate-stderr cairn deploy -f "$SVC/cairn.yml" prod
	show
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"volume data is single-writer"* ]]
	page_is "$PROD_URL" "hello from v2"
}

@test "scale: the serving instances are kept (a new release adopts them); only the difference starts or stops" {
	PROD_REPLICAS=2
	write_service
	daemon_start
	deploy_ok prod
	local before after
	before=$(jget "$(status_json prod)" "' '.join(sorted(i['id'] for i in j['envs']['prod']['instances']))")
	run --separate-stderr cairn scale prod 3
	show
	[ "$status" -eq 0 ]
	after=$(jget "$(status_json prod)" "' '.join(sorted(i['id'] for i in j['envs']['prod']['instances']))")
	for id in $before; do
		[[ " $after " == *" $id "* ]]
	done
	[ "$(healthy_count prod)" = 3 ]
	run --separate-stderr cairn scale prod 1
	show
	[ "$status" -eq 0 ]
	[ "$(healthy_count prod)" = 1 ]
	[ "$(rel_states prod)" = "v3=live v2=retired v1=retired" ]
	page_is "$PROD_URL" "hello from v1"
}

@test "tcp mode: a service relayed as bytes (TCP health check) deploys and rolls back under load with no failed request; status counts connections" {
	PROD_REPLICAS=2
	write_service
	sed -i -e 's/^  port: 8080$/  port: 8080\n  mode: tcp/' \
		-e 's/^health: { http: [^,]*,/health: { tcp: true,/' "$SVC/cairn.yml"
	grep -q '^  mode: tcp$' "$SVC/cairn.yml"
	grep -q '^health: { tcp: true,' "$SVC/cairn.yml"
	daemon_start
	deploy_ok prod
	page_is "$PROD_URL" "hello from v1"
	set_page v2
	load_start t
	deploy_ok prod
	run_wait_for 10 page_is "$PROD_URL" "hello from v2"
	run --separate-stderr cairn rollback prod
	show
	[ "$status" -eq 0 ]
	run_wait_for 10 page_is "$PROD_URL" "hello from v1"
	load_stop t
	load_clean
	# every request of the load was a connection through the relay
	local j
	j=$(status_json prod)
	[ "$(jget "$j" "j['envs']['prod']['mode']")" = tcp ]
	[ "$(jget "$j" "'yes' if j['envs']['prod']['requests'] >= $(jget "$LOAD" "j['ok']") else 'no'")" = yes ]
	run cairn status prod
	show
	[[ "$output" == *"connections "* ]]
	[[ "$output" == *"CONN/S"* ]]
}
