#!/usr/bin/env bats
# Instances: `cairn run` starts an isolated container with a read-only root:
# exit codes, namespaces, the read-only root and volumes, /dev and /proc,
# capabilities and the seccomp sandbox, file descriptors, user, workdir and
# environment, signals, and nothing left behind after a run.

load helpers

setup_file() {
	export RUN_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	run_mk_rootfs "$RUN_ROOTFS"
	# A static probe for system calls the sandbox must refuse (bound into
	# the instance read-only). Skipped by its test when it cannot be built.
	export RUN_PROBE_DIR="$BATS_FILE_TMPDIR/probe"
	mkdir -p "$RUN_PROBE_DIR"
	cat >"$BATS_FILE_TMPDIR/probe.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each probe runs in its own child, so one that wrongly succeeds cannot
 * change what the next one sees. Prints "name ERRNO-NAME" (or "name OK"). */
static void probe(const char *name, long (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		errno = 0;
		long r = fn();
		printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "OK");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
}

static long p_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long p_unshare_mnt(void) { return unshare(CLONE_NEWNS); }
static long p_clone_user(void)
{
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	return r < 0 ? -1 : 0;
}
static long p_clone3(void) { return syscall(SYS_clone3, 0, 0); }
static long p_keyctl(void) { return syscall(SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, 0); }
static long p_add_key(void) { return syscall(SYS_add_key, "user", "k", "v", 1, -2); }
static long p_bpf(void) { return syscall(SYS_bpf, 0 /* MAP_CREATE */, 0, 0); }
static long p_ptrace(void) { return ptrace(PTRACE_TRACEME, 0, 0, 0); }
static long p_mount(void) { return mount("none", "/tmp", "tmpfs", 0, NULL); }
static long p_umount(void) { return umount2("/proc", MNT_DETACH); }
static long p_setns(void)
{
	int fd = open("/proc/self/ns/net", O_RDONLY);
	return setns(fd, 0);
}
static long p_perf(void) { return syscall(SYS_perf_event_open, 0, 0, -1, -1, 0); }
static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, 0); }
static long p_open_by_handle(void) { return syscall(SYS_open_by_handle_at, AT_FDCWD, 0, 0); }
static long p_init_module(void) { return syscall(SYS_init_module, 0, 0, ""); }
static long p_kexec(void) { return syscall(SYS_kexec_load, 0, 0, 0, 0); }
static long p_io_uring(void) { return syscall(SYS_io_uring_setup, 1, 0); }

int main(void)
{
	probe("unshare(CLONE_NEWUSER)", p_unshare_user);
	probe("unshare(CLONE_NEWNS)", p_unshare_mnt);
	probe("clone(CLONE_NEWUSER)", p_clone_user);
	probe("clone3", p_clone3);
	probe("keyctl", p_keyctl);
	probe("add_key", p_add_key);
	probe("bpf", p_bpf);
	probe("ptrace(PTRACE_TRACEME)", p_ptrace);
	probe("mount", p_mount);
	probe("umount2", p_umount);
	probe("setns", p_setns);
	probe("perf_event_open", p_perf);
	probe("userfaultfd", p_userfaultfd);
	probe("open_by_handle_at", p_open_by_handle);
	probe("init_module", p_init_module);
	probe("kexec_load", p_kexec);
	probe("io_uring_setup", p_io_uring);
	return 0;
}
C
	export RUN_PROBE_ERR=""
	if ! command -v gcc >/dev/null; then
		RUN_PROBE_ERR="gcc is not installed"
	elif ! gcc -static -O1 -o "$RUN_PROBE_DIR/probe" "$BATS_FILE_TMPDIR/probe.c" \
		2>"$BATS_FILE_TMPDIR/probe.log"; then
		RUN_PROBE_ERR="cannot build a static probe: $(head -n 3 "$BATS_FILE_TMPDIR/probe.log")"
	fi
}

setup() {
	e2e_setup
	IMG=$(import_id "$RUN_ROOTFS" bb:1)
	BG_PID=
	MARKER=
}

teardown() {
	[ -z "${MARKER:-}" ] || run_kill_marked "$(sleep_pattern)"
	run_bg_reap
	assert_no_instance_leftovers
}

# A unique `sleep` argument, so that pgrep finds exactly this test's sleeps.
new_marker() {
	MARKER="30.$$$RANDOM$RANDOM"
}

# pgrep pattern of those sleeps (not of cairn, whose command line holds it too)
sleep_pattern() {
	echo "^(/bin/)?sleep $MARKER\$"
}

# ---- exit codes ----

@test "run: the command's exit code is cairn's exit code" {
	run --separate-stderr cairn run bb:1 -- sh -c 'echo out; exit 42'
	show
	[ "$status" -eq 42 ]
	[ "$output" = out ]
	[ -z "$stderr" ]
	run cairn run bb:1 -- true
	[ "$status" -eq 0 ]
}

@test "run: a command that does not exist exits 127 with one line" {
	run -127 --separate-stderr cairn run bb:1 -- nosuchcmd arg
	show
	[ "$status" -eq 127 ]
	[ -z "$output" ]
	[ "$stderr" = "cairn: exec: nosuchcmd: No such file or directory" ]
	run -127 --separate-stderr cairn run bb:1 -- /no/such/path
	show
	[ "$status" -eq 127 ]
	assert_one_line_error
	[[ "$stderr" == *"/no/such/path: No such file or directory" ]]
}

@test "run: a command killed by a signal exits 128+N" {
	run --separate-stderr cairn run bb:1 -- sh -c 'kill -9 $$'
	show
	[ "$status" -eq 137 ]
	run --separate-stderr cairn run bb:1 -- sh -c 'kill -TERM $$'
	show
	[ "$status" -eq 143 ]
}

@test "run: an unknown image exits 1 with one line" {
	run --separate-stderr cairn run nosuch:1 -- true
	show
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_one_line_error
	[[ "$stderr" == *nosuch:1* ]]
}

# ---- namespaces ----

@test "run: the command runs as pid 1 or under a minimal init as pid 2" {
	run --separate-stderr cairn run bb:1 -- sh -c 'echo $$'
	show
	[ "$status" -eq 0 ]
	[ "$output" = 2 ] || [ "$output" = 1 ]
}

@test "run: ps inside sees only the instance's processes" {
	run --separate-stderr cairn run bb:1 -- sh -c 'ps; echo ---; ls -d /proc/[0-9]*'
	show
	[ "$status" -eq 0 ]
	local pids
	pids=$(printf '%s\n' "$output" | sed -n '/^---$/q; s/^ *\([0-9][0-9]*\) .*/\1/p')
	echo "pids inside: $pids"
	[ -n "$pids" ]
	[ "$(printf '%s\n' $pids | wc -l)" -le 3 ]
	local p
	for p in $pids; do
		[ "$p" -le 3 ]
		[ "$p" != "$$" ]
		[ "$p" != "$BATS_ROOT_PID" ]
	done
	[ "$(printf '%s\n' "$output" | sed '1,/^---$/d' | wc -l)" -le 3 ]
	[[ "$output" != *"/proc/$$"$'\n'* ]]
}

@test "run: --name sets the hostname, the host's is untouched" {
	local before
	before=$(hostname)
	run --separate-stderr cairn run --name web-1 bb:1 -- hostname
	show
	[ "$status" -eq 0 ]
	[ "$output" = web-1 ]
	[ "$(hostname)" = "$before" ]
}

@test "run: pid, mnt, uts, ipc, net and cgroup namespaces differ from the host's" {
	run --separate-stderr cairn run bb:1 -- sh -c \
		'for n in pid mnt uts ipc net cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done'
	show
	[ "$status" -eq 0 ]
	local n inside host
	for n in pid mnt uts ipc net cgroup; do
		host=$(readlink "/proc/self/ns/$n")
		inside=$(printf '%s\n' "$output" | awk -v n="$n" '$1 == n { print $2 }')
		echo "$n: host $host, inside $inside"
		[[ "$inside" == "$n:["*"]" ]]
		[ "$inside" != "$host" ]
	done
}

# ip -o link names, one a line
link_names() {
	printf '%s\n' "$1" | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | LC_ALL=C sort
}

@test "run: --network private (the default) has only lo, and it is up" {
	run --separate-stderr cairn run bb:1 -- ip -o link
	show
	[ "$status" -eq 0 ]
	[ "$(link_names "$output")" = lo ]
	[[ "$output" == *"<LOOPBACK,UP"* ]]
	run --separate-stderr cairn run --network private bb:1 -- ip -o link
	show
	[ "$(link_names "$output")" = lo ]
	[[ "$output" == *"<LOOPBACK,UP"* ]]
	# and lo works
	run --separate-stderr cairn run bb:1 -- ping -c 1 -W 2 127.0.0.1
	show
	[ "$status" -eq 0 ]
}

@test "run: --network none has no usable interface" {
	run --separate-stderr cairn run --network none bb:1 -- ip -o link
	show
	[ "$status" -eq 0 ]
	local names
	names=$(link_names "$output")
	[ -z "$names" ] || [ "$names" = lo ]
	[[ "$output" != *"UP"* ]]
	[ "$(cairn run --network none bb:1 -- readlink /proc/self/ns/net)" != "$(readlink /proc/self/ns/net)" ]
}

@test "run: --network host shows the host's interfaces" {
	run --separate-stderr cairn run --network host bb:1 -- sh -c 'ip -o link; readlink /proc/self/ns/net'
	show
	[ "$status" -eq 0 ]
	local host
	host=$(ls /sys/class/net | LC_ALL=C sort)
	[ "$(link_names "$output")" = "$host" ]
	[[ "$output" == *"$(readlink /proc/self/ns/net)"* ]]
}

# ---- read-only root, tmpfs, volumes ----

@test "run: the root is read-only" {
	run --separate-stderr cairn run bb:1 -- sh -c 'touch /x; echo > /etc/passwd; mkdir /newdir; rm /bin/ls; echo done'
	show
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"touch: /x: Read-only file system"* ]]
	[[ "$stderr" == *"/etc/passwd: Read-only file system"* ]]
	[[ "$stderr" == *"/newdir"*"Read-only file system"* ]]
	[[ "$stderr" == *"/bin/ls"*"Read-only file system"* ]]
	[ "$(printf '%s\n' "$stderr" | grep -c 'Read-only file system')" -eq 4 ]
	# the image's checkout on the host is unchanged
	run --separate-stderr cairn verify bb:1
	show
	[ "$status" -eq 0 ]
	[ ! -e "$ROOT/checkouts/${IMG#sha256:}/x" ]
	[ ! -e "$ROOT/checkouts/${IMG#sha256:}/newdir" ]
	[ -s "$ROOT/checkouts/${IMG#sha256:}/etc/passwd" ]
}

@test "run: /tmp and /run are writable tmpfs, fresh for every instance" {
	run --separate-stderr cairn run bb:1 -- sh -c \
		'echo a > /tmp/f && echo b > /run/f && cat /tmp/f /run/f && grep -E " /(tmp|run) tmpfs " /proc/mounts | wc -l'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'a\nb\n2' ]
	run --separate-stderr cairn run bb:1 -- sh -c 'ls -A /tmp /run'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'/run:\n\n/tmp:' ]
	run --separate-stderr cairn verify bb:1
	[ "$status" -eq 0 ]
}

@test "run: a named volume is writable and outlives the instance" {
	run --separate-stderr cairn run -v data:/data bb:1 -- sh -c 'echo kept > /data/f && mkdir /data/d'
	show
	[ "$status" -eq 0 ]
	[ "$(cat "$ROOT/volumes/data/f")" = kept ]
	run --separate-stderr cairn run -v data:/data bb:1 -- sh -c 'cat /data/f; ls /data'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'kept\nd\nf' ]
	# the mountpoint was never added to the image's checkout
	run --separate-stderr cairn verify bb:1
	show
	[ "$status" -eq 0 ]
	[ ! -e "$ROOT/checkouts/${IMG#sha256:}/data" ]
}

@test "run: a named volume mounted :ro is readable, not writable" {
	mkdir -p "$ROOT/volumes/data"
	echo old >"$ROOT/volumes/data/f"
	run --separate-stderr cairn run -v data:/data:ro bb:1 -- sh -c 'cat /data/f; echo new > /data/f; touch /data/g; echo done'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'old\ndone' ]
	[[ "$stderr" == *"/data/f: Read-only file system"* ]]
	[[ "$stderr" == *"/data/g: Read-only file system"* ]]
	[ "$(cat "$ROOT/volumes/data/f")" = old ]
	[ ! -e "$ROOT/volumes/data/g" ]
}

@test "run: a host directory can be bound read-write or read-only" {
	mkdir "$T/host"
	echo from-host >"$T/host/in"
	run --separate-stderr cairn run -v "$T/host:/h" bb:1 -- sh -c 'cat /h/in; echo from-instance > /h/out'
	show
	[ "$status" -eq 0 ]
	[ "$output" = from-host ]
	[ "$(cat "$T/host/out")" = from-instance ]
	run --separate-stderr cairn run -v "$T/host:/h:ro" bb:1 -- sh -c 'cat /h/in; rm /h/out'
	show
	[ "$status" -ne 0 ]
	[ "$output" = from-host ]
	[[ "$stderr" == *"Read-only file system"* ]]
	[ -e "$T/host/out" ]
}

# ---- /dev, /proc, /sys ----

@test "run: /dev holds only the minimal nodes and links" {
	run --separate-stderr cairn run bb:1 -- ls -A /dev
	show
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | LC_ALL=C sort | tr '\n' ' ')" = \
		"fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " ]
	run --separate-stderr cairn run bb:1 -- sh -c \
		'echo x > /dev/null && wc -c < /dev/null && head -c 5 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c && echo y > /dev/full'
	show
	[ "$status" -ne 0 ]
	[ "$output" = $'0\n5\n5' ]
	[[ "$stderr" == *"No space left on device"* ]]
	# no host disk is reachable
	run --separate-stderr cairn run bb:1 -- sh -c 'ls /dev/sda /dev/vda /dev/mem /dev/kmsg 2>&1 | grep -vc "No such file"'
	[ "$output" = 0 ]
}

@test "run: /proc/kcore and /proc/keys are masked" {
	local f found=0
	for f in /proc/kcore /proc/keys; do
		[ -e "$f" ] || continue
		found=1
		run --separate-stderr cairn run bb:1 -- sh -c "head -c 64 $f | wc -c"
		show
		# empty (bound to /dev/null) or unreadable
		[ "$output" = 0 ]
	done
	[ "$found" -eq 1 ] || skip "this kernel has neither /proc/kcore nor /proc/keys"
}

@test "run: /proc/sys and /sys are read-only" {
	run --separate-stderr cairn run bb:1 -- sh -c \
		'echo cairn > /proc/sys/kernel/domainname; echo 1 > /proc/sys/vm/drop_caches; touch /sys/x; echo 1 > /sys/kernel/profiling; echo done'
	show
	[ "$status" -eq 0 ]
	[ "$output" = done ]
	[ "$(printf '%s\n' "$stderr" | grep -c 'Read-only file system')" -eq 4 ]
	[ "$(cat /proc/sys/kernel/domainname)" != cairn ]
}

# ---- capabilities and sandbox ----

@test "run: root inside has Docker's default capabilities, no_new_privs and seccomp" {
	run --separate-stderr cairn run bb:1 -- cat /proc/self/status
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nCapEff:\t00000000a80425fb\n'* ]]
	[[ "$output" == *$'\nCapBnd:\t00000000a80425fb\n'* ]]
	[[ "$output" == *$'\nCapAmb:\t0000000000000000\n'* ]]
	[[ "$output" == *$'\nNoNewPrivs:\t1\n'* ]]
	[[ "$output" == *$'\nSeccomp:\t2\n'* ]]
}

@test "run: -u nobody has no capabilities" {
	run --separate-stderr cairn run -u nobody bb:1 -- cat /proc/self/status
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nUid:\t65534\t65534\t65534\t65534\n'* ]]
	[[ "$output" == *$'\nCapEff:\t0000000000000000\n'* ]]
	[[ "$output" == *$'\nCapPrm:\t0000000000000000\n'* ]]
	[[ "$output" == *$'\nNoNewPrivs:\t1\n'* ]]
	[[ "$output" == *$'\nSeccomp:\t2\n'* ]]
}

@test "run: mount inside fails with EPERM" {
	run --separate-stderr cairn run bb:1 -- sh -c 'mount -t tmpfs none /tmp; echo "rc=$?"; grep -c " /tmp tmpfs " /proc/mounts'
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"rc=1"* ]]
	[[ "$stderr" == *"permission denied"* ]]
	[[ "$output" == *$'\n1' ]]
}

@test "run: the sandbox refuses namespaces, keyctl, bpf, ptrace and friends" {
	[ -z "$RUN_PROBE_ERR" ] || skip "$RUN_PROBE_ERR"
	run --separate-stderr cairn run -v "$RUN_PROBE_DIR:/t:ro" bb:1 -- /t/probe
	show
	[ "$status" -eq 0 ]
	local line name errno bad=0
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 17 ]
	while read -r line; do
		name=${line% *}
		errno=${line##* }
		case "$name" in
		clone3) [ "$errno" = ENOSYS ] || [ "$errno" = EPERM ] || { echo "not refused: $line"; bad=1; } ;;
		*) [ "$errno" = EPERM ] || { echo "not refused with EPERM: $line"; bad=1; } ;;
		esac
	done <<<"$output"
	[ "$bad" -eq 0 ]
}

# ---- file descriptors and /proc/1 ----

@test "run: only stdin, stdout and stderr reach the command" {
	echo secret >"$T/hostfile"
	exec 7<"$T/hostfile"
	run --separate-stderr cairn run bb:1 -- /bin/ls /proc/self/fd
	exec 7<&-
	show
	[ "$status" -eq 0 ]
	# 3 is ls's own directory fd
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "0 1 2 3 " ]
	exec 7<"$T/hostfile"
	run --separate-stderr cairn run bb:1 -- sh -c 'ls /proc/$$/fd; cat <&7; cd /proc/self/fd/3 && echo entered-fd3'
	exec 7<&-
	show
	[ "$output" = $'0\n1\n2' ]
	[[ "$stderr" == *"7: Bad file descriptor"* ]]
	[[ "$stderr" == *"can't cd to /proc/self/fd/3"* ]]
}

@test "run: /proc/1/exe cannot be written or followed to the host binary" {
	run --separate-stderr cairn run bb:1 -- sh -c 'echo x > /proc/1/exe; echo rc=$?; readlink /proc/1/exe; ls -l /proc/1/exe; cat /proc/1/exe | wc -c'
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"rc=1"* ]]
	[[ "$output" != *"$CAIRN"* ]]
	[[ "$output" != *"/"*"cairn"* ]]
	[[ "$output" == *$'\n0' ]]
	# and the host binary is intact
	run "$CAIRN" --version
	[ "$status" -eq 0 ]
}

# ---- user, workdir, environment ----

@test "run: -u www runs as uid 33 from the image's /etc/passwd" {
	run --separate-stderr cairn run -u www bb:1 -- sh -c 'id -u; id -g; id -G'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'33\n33\n33' ]
}

@test "run: -u 1234:5678 runs as that uid and gid" {
	run --separate-stderr cairn run -u 1234:5678 bb:1 -- sh -c 'id -u; id -g'
	show
	[ "$status" -eq 0 ]
	[ "$output" = $'1234\n5678' ]
}

@test "run: -u with an unknown user exits 1 naming the user" {
	run --separate-stderr cairn run -u nosuchuser bb:1 -- id
	show
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	assert_one_line_error
	[[ "$stderr" == *nosuchuser* ]]
}

@test "run: -w sets the working directory" {
	run --separate-stderr cairn run -w /www bb:1 -- pwd
	show
	[ "$status" -eq 0 ]
	[ "$output" = /www ]
	run --separate-stderr cairn run bb:1 -- pwd
	[ "$output" = / ]
}

@test "run: -e sets variables, PATH has a default, the host's environment stays out" {
	export E2E_HOST_ONLY=leaked
	run --separate-stderr cairn run -e FOO=bar -e 'SPACED=a b' bb:1 -- sh -c 'echo "$FOO|$SPACED|$PATH|${E2E_HOST_ONLY:-unset}"'
	show
	[ "$status" -eq 0 ]
	local foo spaced path host
	IFS='|' read -r foo spaced path host <<<"$output"
	[ "$foo" = bar ]
	[ "$spaced" = "a b" ]
	[[ ":$path:" == *":/bin:"* ]]
	[[ ":$path:" == *":/usr/bin:"* ]]
	[ "$host" = unset ]
	# commands are found through the default PATH
	run cairn run bb:1 -- busybox true
	[ "$status" -eq 0 ]
}

# ---- signals and lifetime ----

@test "run: SIGTERM to cairn stops the command: exit 143, nothing left" {
	new_marker
	run_bg run bb:1 -- /bin/sleep "$MARKER"
	# the command runs (the instance is set up) before the signal is sent
	run_wait_for 10 pgrep -f -- "$(sleep_pattern)"
	kill -TERM "$BG_PID"
	run_bg_wait 5
	cat "$T/bg.err"
	[ "$BG_STATUS" -eq 143 ]
	run_wait_for 5 run_no_process "$(sleep_pattern)"
}

@test "run: the instance ends with its command: background processes do not outlive it" {
	new_marker
	run_bg run bb:1 -- sh -c "sleep $MARKER & echo started"
	if ! run_bg_wait 5; then
		echo "cairn run still running 5 s after its command exited"
		pgrep -af -- "$(sleep_pattern)" || true
		return 1
	fi
	cat "$T/bg.out" "$T/bg.err"
	[ "$BG_STATUS" -eq 0 ]
	[ "$(cat "$T/bg.out")" = started ]
	run_wait_for 5 run_no_process "$(sleep_pattern)"
}

# ---- cleanliness ----

@test "run: nothing is left behind: no mount, no instance directory, no cgroup" {
	local name
	name=$(cairn run bb:1 -- hostname)
	[[ "$name" =~ ^[0-9a-f]{12}$ ]]
	run -127 cairn run bb:1 -- nosuchcmd
	run cairn run -v data:/data bb:1 -- sh -c 'kill -9 $$'
	[ "$status" -eq 137 ]
	run ! cairn run -u nosuchuser bb:1 -- true
	[ -z "$(run_mounts_under "$ROOT")" ]
	[ -d "$ROOT/instances" ]
	[ -z "$(ls -A "$ROOT/instances")" ]
	# the default hostname is the start of the instance id, which names
	# its cgroup: gone too
	local left
	left=$(find /sys/fs/cgroup -maxdepth 3 -name "$name*" 2>/dev/null)
	[ -z "$left" ] || { echo "cgroups left: $left"; return 1; }
}
