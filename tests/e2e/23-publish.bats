#!/usr/bin/env bats
# Published ports: `cairn run -d -p [IP:]HOSTPORT:PORT` relays connections
# on a host address into the instance's own network namespace, where the
# server listens on its loopback only.

load helpers

setup_file() {
	export RUN_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	run_mk_rootfs "$RUN_ROOTFS"
}

setup() {
	e2e_setup
	import_id "$RUN_ROOTFS" bb:1 >/dev/null
	# a free loopback port, chosen by the kernel
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

teardown() {
	cairn ps -a --json 2>/dev/null | python3 -c '
import json, sys
for i in json.load(sys.stdin): print(i["id"])' | while read -r id; do cairn rm -f "$id" >/dev/null 2>&1; done
	[ -z "$(run_mounts_under "$ROOT")" ]
}

# http_get URL: the body, or exit 1 (no retry).
http_get() {
	python3 - "$1" <<'PY'
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end="")
except Exception as e:
    sys.exit(1)
PY
}

@test "publish: a server inside answers on the published host port" {
	run cairn run -d --name web -p "127.0.0.1:$PORT:8080" bb:1 -- /bin/busybox httpd -f -p 8080 -h /www
	show
	[ "$status" -eq 0 ]
	run_wait_for 10 http_get "http://127.0.0.1:$PORT/index.html"
	[ "$(http_get "http://127.0.0.1:$PORT/index.html")" = "hello from cairn" ]
	run cairn ps
	[[ "$output" == *"127.0.0.1:$PORT->8080/tcp"* ]]
	# the instance itself has only its loopback: nothing of it listens on the host
	run cairn exec web -- /bin/sh -c 'ls /sys/class/net'
	[ "$output" = "lo" ]
}

@test "publish: big bodies and concurrent clients arrive whole" {
	cairn run -d --name big -p "$PORT:8080" bb:1 -- /bin/sh -c \
		'dd if=/dev/urandom of=/tmp/x bs=1M count=4 2>/dev/null; sha256sum /tmp/x >/tmp/sum; exec httpd -f -p 8080 -h /tmp'
	run_wait_for 10 http_get "http://127.0.0.1:$PORT/sum"
	want=$(http_get "http://127.0.0.1:$PORT/sum" | cut -d' ' -f1)
	python3 - "$PORT" "$want" <<'PY'
import hashlib, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, want = sys.argv[1], sys.argv[2]
def get(_):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=10).read()
    return hashlib.sha256(body).hexdigest()
with ThreadPoolExecutor(8) as ex:
    got = list(ex.map(get, range(16)))
assert all(g == want for g in got), (want, got)
PY
}

@test "publish: a port in use, a bad spec, and -p without -d are refused in one line" {
	python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$PORT" &
	local holder=$!
	run_wait_for 10 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$PORT"
	run --separate-stderr cairn run -d -p "127.0.0.1:$PORT:80" bb:1 -- /bin/true
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *"Address already in use"* ]]
	run --separate-stderr cairn run -d -p 99999:80 bb:1 -- /bin/true
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"1 to 65535"* ]]
	run --separate-stderr cairn run -p "$PORT:80" bb:1 -- /bin/true
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-p needs -d"* ]]
	# nothing was recorded
	run cairn ps -a --json
	[ "$output" = "[]" ]
}
