# Shared helpers for the cairn end-to-end tests (tests/e2e/*.bats).
# Each test drives the real binary against its own fresh store under
# $BATS_TEST_TMPDIR; fixtures are built here from shell and python3.

bats_require_minimum_version 1.5.0

CAIRN="${CAIRN:-$BATS_TEST_DIRNAME/../../build/cairn}"

# Called by every file's setup(): a fresh store path (not created yet).
e2e_setup() {
	if [ ! -x "$CAIRN" ]; then
		echo "cairn binary not found at $CAIRN (build with 'ninja -C build' or set CAIRN)" >&2
		return 1
	fi
	command -v python3 >/dev/null || { echo "python3 is required by the e2e tests" >&2; return 1; }
	ROOT="$BATS_TEST_TMPDIR/root"
	T="$BATS_TEST_TMPDIR"
	unset CAIRN_ROOT SOURCE_DATE_EPOCH
}

# cairn ARGS...: the binary against this test's store.
cairn() {
	"$CAIRN" --root "$ROOT" "$@"
}

# Print diagnostics of the last `run` (shown by bats only when a test fails).
show() {
	echo "status=$status"
	echo "--- output:"
	printf '%s\n' "$output"
	if [ -n "${stderr+x}" ]; then
		echo "--- stderr:"
		printf '%s\n' "$stderr"
	fi
}

# Number of files under ROOT/objects (0 when the store does not exist).
object_count() {
	if [ -d "$ROOT/objects" ]; then
		find "$ROOT/objects" -type f | wc -l
	else
		echo 0
	fi
}

# Sorted list of object file names (ab/cdef...), for before/after diffs.
object_list() {
	if [ -d "$ROOT/objects" ]; then
		(cd "$ROOT/objects" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
	fi
}

# Files left in ROOT/tmp (staging); prints nothing when it is empty or absent.
staging_leftovers() {
	if [ -d "$ROOT/tmp" ]; then
		find "$ROOT/tmp" -mindepth 1
	fi
}

# store_snapshot FILE: everything a failed command must not change:
# the image list, the tag history of every name and the object files.
store_snapshot() {
	local out=$1
	mkdir -p "$(dirname "$out")"
	{
		echo "## images"
		cairn --json images
		echo "## objects"
		object_list
		echo "## staging"
		staging_leftovers
		echo "## database"
		db_dump
	} >"$out" 2>&1
}

# db_dump: the images, tags and tag history tables of ROOT/cairn.db (not the
# events audit log, where a failed command may rightly leave a trace).
db_dump() {
	if ! command -v sqlite3 >/dev/null; then
		echo "sqlite3 CLI missing: install it (apt-get install -y sqlite3) to run the e2e tests" >&2
		return 1
	fi
	if [ -f "$ROOT/cairn.db" ]; then
		sqlite3 -readonly "$ROOT/cairn.db" '.dump images tags tag_history'
	fi
}

# assert_store_unchanged BEFORE: compare a fresh snapshot with BEFORE.
assert_store_unchanged() {
	local before=$1
	store_snapshot "$before.after"
	if ! diff -u "$before" "$before.after"; then
		echo "store changed by a failed command (diff above)"
		return 1
	fi
}

# assert_one_line_error: $stderr (from run --separate-stderr) is exactly one
# line starting with "cairn: ".
assert_one_line_error() {
	local n
	n=$(printf '%s' "$stderr" | awk 'END { print NR }')
	if [ "$n" -ne 1 ]; then
		echo "expected one line on stderr, got $n:"
		printf '%s\n' "$stderr"
		return 1
	fi
	case "$stderr" in
	"cairn: "*) ;;
	*)
		echo "error does not start with 'cairn: ': $stderr"
		return 1
		;;
	esac
}

# last_line TEXT: the last line of TEXT (the id printed by import).
last_line() {
	printf '%s\n' "$1" | tail -n 1
}

# import_id SOURCE NAME:TAG [OPTIONS...]: import and print only the id; fails
# the test when the import fails or prints no id.
import_id() {
	local src=$1 ref=$2
	shift 2
	local out
	mkdir -p "$BATS_TEST_TMPDIR/.snap"
	out=$(cairn import "$@" "$src" "$ref" 2>"$BATS_TEST_TMPDIR/.snap/import.err") || {
		echo "import $src $ref failed:" >&2
		cat "$BATS_TEST_TMPDIR/.snap/import.err" >&2
		return 1
	}
	out=$(last_line "$out")
	[[ "$out" =~ ^sha256:[0-9a-f]{64}$ ]] || {
		echo "import $src $ref printed no id: '$out'" >&2
		return 1
	}
	echo "$out"
}

# set_xattr PATH NAME HEXVALUE: no dependency on the attr package.
set_xattr() {
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)' "$1" "$2" "$3"
}

# A valid VFS_CAP_REVISION_2 blob granting cap_net_raw in the permitted set.
CAP_NET_RAW_V2=0000000200200000000000000000000000000000

# mk_tree DIR: a small tree with every kind of metadata an image keeps:
# files, nested dirs, symlinks (relative, absolute, dangling), a hardlink
# group across directories, setuid/setgid/sticky bits, a foreign uid/gid,
# security.capability and user.* xattrs, an empty file and an empty dir.
mk_tree() {
	local d=$1
	mkdir -p "$d/etc" "$d/usr/bin" "$d/usr/lib/deep/er" "$d/tmp" "$d/empty" "$d/shared"
	printf 'hello\n' >"$d/etc/hello.txt"
	printf 'conf=1\n' >"$d/etc/app.conf"
	: >"$d/etc/empty-file"
	printf '#!/bin/sh\necho run\n' >"$d/usr/bin/run"
	chmod 0755 "$d/usr/bin/run"
	head -c 70000 /dev/zero | tr '\0' 'z' >"$d/usr/lib/deep/er/blob.bin"
	printf 'suid\n' >"$d/usr/bin/suid"
	chmod 4755 "$d/usr/bin/suid"
	printf 'sgid\n' >"$d/usr/bin/sgid"
	chmod 2755 "$d/usr/bin/sgid"
	chmod 2755 "$d/shared"
	chmod 1777 "$d/tmp"
	chmod 0750 "$d/usr/lib/deep"
	printf 'owned\n' >"$d/etc/owned"
	chown 1234:5678 "$d/etc/owned" "$d/usr/lib/deep/er"
	printf 'ping\n' >"$d/usr/bin/ping"
	chmod 0755 "$d/usr/bin/ping"
	set_xattr "$d/usr/bin/ping" security.capability "$CAP_NET_RAW_V2"
	set_xattr "$d/etc/app.conf" user.origin "$(printf 'e2e' | od -An -tx1 | tr -d ' \n')"
	# hardlink group of three names, one in another directory
	printf 'linked\n' >"$d/usr/bin/tool"
	ln "$d/usr/bin/tool" "$d/usr/bin/tool-alias"
	ln "$d/usr/bin/tool" "$d/etc/tool-copy"
	ln -s hello.txt "$d/etc/link-rel"
	ln -s /etc/hello.txt "$d/etc/link-abs"
	ln -s does/not/exist "$d/etc/link-dangling"
	ln -s ../usr "$d/etc/link-dir"
	chown -h 1234:5678 "$d/etc/link-rel"
}

# mk_plain_tree DIR [SEED]: small tree of plain files; SEED varies the content.
mk_plain_tree() {
	local d=$1 seed=${2:-0} i
	mkdir -p "$d/a/b" "$d/c"
	for i in 1 2 3; do
		printf 'file %s seed %s\n' "$i" "$seed" >"$d/a/f$i"
	done
	printf 'nested %s\n' "$seed" >"$d/a/b/g"
	printf 'common content shared by every seed\n' >"$d/c/common"
}

# tar_from_spec OUT SPEC...: write an (often hostile) tar with python3's
# tarfile, entries in the given order. SPEC is TYPE|NAME[|ARG]:
#   f|name|content   regular file       d|name       directory
#   s|name|target    symlink            h|name|target hardlink
#   F|name|size      regular file of SIZE zero bytes
tar_from_spec() {
	python3 - "$@" <<'PY'
import io, sys, tarfile
out, specs = sys.argv[1], sys.argv[2:]
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
    for spec in specs:
        kind, name, *rest = spec.split("|", 2)
        arg = rest[0] if rest else ""
        ti = tarfile.TarInfo(name)
        ti.mtime = 1700000000
        data = None
        if kind == "f":
            data = arg.encode(); ti.size = len(data); ti.mode = 0o644
        elif kind == "F":
            data = b"\0" * int(arg); ti.size = len(data); ti.mode = 0o644
        elif kind == "d":
            ti.type = tarfile.DIRTYPE; ti.mode = 0o755
        elif kind == "s":
            ti.type = tarfile.SYMTYPE; ti.linkname = arg; ti.mode = 0o777
        elif kind == "h":
            ti.type = tarfile.LNKTYPE; ti.linkname = arg; ti.mode = 0o644
        else:
            raise SystemExit("bad spec " + spec)
        tf.addfile(ti, io.BytesIO(data) if data is not None else None)
PY
}

# tree_compare SRC DST: python check that DST reproduces SRC: type, mode,
# uid, gid, size, content, symlink targets, xattrs; and that paths that are
# hardlinked in SRC are hardlinked in DST. Prints every difference.
tree_compare() {
	python3 - "$1" "$2" <<'PY'
import hashlib, os, stat, sys
src, dst = sys.argv[1], sys.argv[2]

def walk(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns + ["."] if dp == root else dns + fns:
            p = os.path.normpath(os.path.join(dp, n))
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out

def xattrs(p):
    try:
        return {k: os.getxattr(p, k, follow_symlinks=False)
                for k in os.listxattr(p, follow_symlinks=False)}
    except OSError:
        return {}

def digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()

a, b = walk(src), walk(dst)
problems = []
for p in sorted(set(a) - set(b)):
    problems.append("missing in checkout: " + p)
for p in sorted(set(b) - set(a)):
    problems.append("extra in checkout: " + p)
for p in sorted(set(a) & set(b)):
    sa, sb = a[p], b[p]
    pa, pb = os.path.join(src, p), os.path.join(dst, p)
    if sa.st_mode != sb.st_mode:
        problems.append("%s: mode %o != %o" % (p, sa.st_mode, sb.st_mode))
    if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
        problems.append("%s: owner %d:%d != %d:%d" % (p, sa.st_uid, sa.st_gid, sb.st_uid, sb.st_gid))
    if stat.S_ISLNK(sa.st_mode) and stat.S_ISLNK(sb.st_mode):
        if os.readlink(pa) != os.readlink(pb):
            problems.append("%s: target %r != %r" % (p, os.readlink(pa), os.readlink(pb)))
    if stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode):
        if sa.st_size != sb.st_size or digest(pa) != digest(pb):
            problems.append("%s: content differs" % p)
    if xattrs(pa) != xattrs(pb):
        problems.append("%s: xattrs %r != %r" % (p, xattrs(pa), xattrs(pb)))
# hardlink groups of the source must stay hardlinked
groups = {}
for p, s in a.items():
    if stat.S_ISREG(s.st_mode) and s.st_nlink > 1:
        groups.setdefault((s.st_dev, s.st_ino), []).append(p)
for paths in groups.values():
    inodes = {(b[p].st_dev, b[p].st_ino) for p in paths if p in b}
    if len(inodes) != 1:
        problems.append("hardlink group %s not one inode in checkout" % sorted(paths))
for line in problems:
    print(line)
sys.exit(1 if problems else 0)
PY
}

# tmpdir_snapshot FILE: every path under $BATS_TEST_TMPDIR outside the store
# (and outside .snap/, where snapshots are kept, and the separate-stderr-*
# files of bats' run) with its type, mode, owner,
# size, link target and, for files, content hash.
tmpdir_snapshot() {
	local out=$1
	mkdir -p "$BATS_TEST_TMPDIR/.snap"
	(
		cd "$BATS_TEST_TMPDIR" || exit 1
		find . \( -path ./root -o -path ./.snap -o -name 'separate-stderr-*' \) -prune -o -printf '%y %m %U:%G %s %p -> %l\n' |
			LC_ALL=C sort
		find . \( -path ./root -o -path ./.snap -o -name 'separate-stderr-*' \) -prune -o -type f -print0 |
			LC_ALL=C sort -z | xargs -0 -r sha256sum
	) >"$out"
}

# ---- helpers for the `cairn run` tests (20-run.bats, 21-run-limits.bats) ----

# run_mk_rootfs DIR: the sample busybox root filesystem of the examples.
run_mk_rootfs() {
	command -v busybox >/dev/null || [ -x /bin/busybox ] || {
		echo "busybox-static is required by the run tests (apt-get install busybox-static)" >&2
		return 1
	}
	"$BATS_TEST_DIRNAME/../../examples/mkrootfs.sh" "$1" >/dev/null
}

# run_wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds; fails
# when SECONDS pass first.
run_wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ "$SECONDS" -gt "$deadline" ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.02
	done
}

# run_exited PID: PID is gone or a zombie (our own child not reaped yet).
run_exited() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# run_no_process PATTERN: no process's command line matches PATTERN (pgrep -f).
run_no_process() {
	! pgrep -f -- "$1" >/dev/null
}

# run_kill_marked PATTERN: SIGKILL every process whose command line matches
# PATTERN (pgrep -f), each by its pid; patterns hold a marker unique to a test.
run_kill_marked() {
	local p
	for p in $(pgrep -f -- "$1"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# run_bg ARGS...: start `cairn ARGS` in the background (stdout and stderr in
# $T/bg.out and $T/bg.err); its pid in BG_PID.
run_bg() {
	"$CAIRN" --root "$ROOT" "$@" >"$T/bg.out" 2>"$T/bg.err" 3>&- &
	BG_PID=$!
}

# run_bg_wait SECONDS: wait until the background cairn exits; its exit status
# in BG_STATUS. Fails (leaving it running) when SECONDS pass first.
run_bg_wait() {
	run_wait_for "$1" run_exited "$BG_PID" || return 1
	BG_STATUS=0
	wait "$BG_PID" || BG_STATUS=$?
	BG_PID=
}

# run_bg_reap: in teardown, end a background cairn a failed test left behind.
run_bg_reap() {
	[ -n "${BG_PID:-}" ] || return 0
	kill -TERM "$BG_PID" 2>/dev/null || true
	run_wait_for 5 run_exited "$BG_PID" || kill -KILL "$BG_PID" 2>/dev/null || true
	wait "$BG_PID" 2>/dev/null || true
	BG_PID=
}

# run_mounts_under DIR: mount points at or below DIR seen from the host.
run_mounts_under() {
	findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d "/") == 1 || $0 == d'
}

# assert_no_instance_leftovers: no mount under ROOT and ROOT/instances empty.
assert_no_instance_leftovers() {
	local m
	m=$(run_mounts_under "$ROOT")
	if [ -n "$m" ]; then
		echo "mounts left under $ROOT:"
		printf '%s\n' "$m"
		return 1
	fi
	if [ -d "$ROOT/instances" ] && [ -n "$(ls -A "$ROOT/instances")" ]; then
		echo "instances left in $ROOT/instances:"
		ls -A "$ROOT/instances"
		return 1
	fi
}

# run_have_controller NAME: the cgroup controller NAME is available (v1 or v2).
run_have_controller() {
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		grep -qw "$1" /sys/fs/cgroup/cgroup.controllers
	else
		[ -d "/sys/fs/cgroup/$1" ]
	fi
}
