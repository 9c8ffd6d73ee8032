#!/bin/bash
# The main job, for now: turn a root filesystem into an immutable, versioned,
# reproducible image; build images from a Dockerfile (cached, reproducible);
# deploy a service with zero failed requests, roll back, promote;
# list it; check it out; verify it; show drift; run
# instances of it (foreground, and a detached web server with a published
# port); collect garbage. Uses its own store in a temporary directory.
# Usage: examples/demo.sh [path/to/cairn]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cairn=$(realpath "${1:-$here/../build/cairn}")
work=$(mktemp -d /var/tmp/cairn-demo.XXXXXX)
daemon_pid= router_pid=
cleanup() {
	# what the demo started, by pid: the daemon, the router, every instance
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[ -n "$router_pid" ] && kill "$router_pid" 2>/dev/null
	for id in $("$cairn" ps -a --json 2>/dev/null | python3 -c 'import json,sys
for i in json.load(sys.stdin): print(i["id"])' 2>/dev/null); do
		"$cairn" rm -f "$id" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT
export CAIRN_ROOT=$work/root

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "a sample root filesystem (busybox-static)"
"$here/mkrootfs.sh" "$work/rootfs"
du -sh "$work/rootfs" | sed 's/\t.*//; s/^/size: /'

step "import it: the id is the sha256 of its canonical manifest"
id=$(run "$cairn" import "$work/rootfs" busybox:v1)
echo "$id"

step "the same tree as a tar.gz, with other mtimes, into another store: same id"
tar -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
find "$work/rootfs" -exec touch -h -d '2001-02-03 04:05:06' {} +
id2=$(run "$cairn" --root "$work/other-store" import "$work/rootfs.tar.gz" busybox:v1)
echo "$id2"
[ "$id" = "$id2" ] && echo "identical: $id"

step "unchanged re-import (stat cache: no file is read)"
run "$cairn" import "$work/rootfs" busybox:v1 >/dev/null

step "a change makes a new version; the tag keeps its history"
echo "v2" >"$work/rootfs/www/index.html"
run "$cairn" import "$work/rootfs" busybox:v2 >/dev/null
run "$cairn" tag busybox:v2 busybox:latest
run "$cairn" images
run "$cairn" history busybox
run "$cairn" inspect busybox:v1

step "build an image from a Dockerfile: three stages, only the program shipped"
run "$cairn" build -t greet:1 --build-arg BASE=busybox:v1 "$here/build/multistage"
run "$cairn" run greet:1 -- cairn

step "rebuild with nothing changed: every step cached, the same id"
run "$cairn" build -t greet:1 --build-arg BASE=busybox:v1 "$here/build/multistage"

step "one source changed: only the steps after its COPY run again"
cp -a "$here/build/multistage" "$work/ctx"
echo 'echo "(edited)"' >>"$work/ctx/src/main.sh"
run "$cairn" build -t greet:2 --build-arg BASE=busybox:v1 "$work/ctx"
run "$cairn" run greet:2 -- cairn

step "reproducible: two builds in fresh stores give the same id"
run "$cairn" build --check-reproducible --progress quiet --build-arg BASE=busybox:v1 \
	"$here/build/multistage"

step "check out v1 (hardlinks into the store) and verify it"
run "$cairn" checkout busybox:v1 "$work/checkout"
run "$cairn" verify busybox:v1 "$work/checkout"

step "drift: a server built from v1 was changed by hand; verify names every change"
# (a copy: the checkout's files are hardlinks into the store and must not be edited)
cp -a "$work/checkout" "$work/server"
chmod 4755 "$work/server/etc/passwd"
echo "evil" >>"$work/server/www/index.html"
rm "$work/server/bin/vi"
mkdir "$work/server/backdoor"
if "$cairn" verify busybox:v1 "$work/server"; then exit 1; else echo "(exit $?: drift detected)"; fi
rm -rf "$work/checkout" "$work/server"

step "an instance of v1: its own namespaces, a read-only root, Docker's default capabilities"
run "$cairn" run --name demo busybox:v1 -- /bin/sh -c \
	'echo "hostname $(hostname), pid $$"; touch /etc/x 2>&1; grep -E "NoNewPrivs|Seccomp:" /proc/self/status'

step "a detached web server, its port published on the host"
port=18473
run "$cairn" run -d --name web -p "127.0.0.1:$port:8080" busybox:v1 -- /bin/busybox httpd -f -p 8080 -h /www
get() { exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /index.html HTTP/1.0\r\n\r\n' >&3 && cat <&3; exec 3>&-; }
deadline=$((SECONDS + 10))
until page=$(get 2>/dev/null) && [[ "$page" == *"200 OK"* ]]; do
	[ "$SECONDS" -lt "$deadline" ] || { echo "the server did not answer" >&2; exit 1; }
	sleep 0.05
done
printf '%s\n' "$page" | tail -1
run "$cairn" ps
run "$cairn" exec web -- /bin/busybox wget -qO- http://127.0.0.1:8080/index.html
run "$cairn" ps
run "$cairn" stop web
run "$cairn" rm web

step "the control plane: cairn daemon (it starts the router, which outlives it)"
"$cairn" daemon >"$work/daemon.log" 2>&1 &
daemon_pid=$!
deadline=$((SECONDS + 10))
until "$cairn" status >/dev/null 2>&1; do
	[ "$SECONDS" -lt "$deadline" ] || { cat "$work/daemon.log"; exit 1; }
	sleep 0.05
done
router_pid=$(python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
d=b""
while True:
    b=s.recv(4096)
    if not b: break
    d+=b
import json; print(json.loads(d.split(b"\r\n\r\n",1)[1])["router_pid"])' "$CAIRN_ROOT/cairn.sock")
echo "daemon pid $daemon_pid, router pid $router_pid"

step "deploy v1 of examples/hello: built, 3 replicas behind the router on 127.0.0.1:8080"
cp -a "$here/hello" "$work/hello"
run "$cairn" tag busybox:v1 busybox:demo
run "$cairn" deploy -f "$work/hello/cairn.yml" prod
curl -s http://127.0.0.1:8080/
run "$cairn" status prod

step "v2, deployed while clients keep requesting (keep-alive and new connections)"
echo "hello from v2" >"$work/hello/www/index.html"
rm -f "$work/stop"
python3 "$here/loadgen.py" http://127.0.0.1:8080/ "$work/stop" 60 4 >"$work/load.json" &
load_pid=$!
run "$cairn" deploy -f "$work/hello/cairn.yml" prod
curl -s http://127.0.0.1:8080/

step "roll back: v1's instances were kept warm, so it is a switch of the route table"
run "$cairn" rollback prod
curl -s http://127.0.0.1:8080/
touch "$work/stop"
wait "$load_pid"
echo "requests during both changes: $(cat "$work/load.json")"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(1 if c["non_2xx"] or c["errors"] else 0)' "$work/load.json"
echo "0 failed requests"

step "promote: dev runs v2 (1 replica on :8081); prod gets the very same image id"
run "$cairn" deploy -f "$work/hello/cairn.yml" dev
run "$cairn" promote -f "$work/hello/cairn.yml" dev prod
curl -s http://127.0.0.1:8080/
run "$cairn" releases prod
run "$cairn" events prod | tail -8

step "fsck re-hashes every object"
run "$cairn" fsck

step "remove v2 and collect garbage"
run "$cairn" rm busybox:v2 busybox:latest
run "$cairn" gc --dry-run
run "$cairn" gc
run "$cairn" fsck
echo
echo "demo finished"
