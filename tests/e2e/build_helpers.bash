# Helpers for the `cairn build` end-to-end tests (tests/e2e/3*-build*.bats).
# Load after helpers.bash. Every test gets its own store ($ROOT) with the
# sample busybox root filesystem imported as busybox:test ($BASE_ID); build
# contexts are copies of examples/build/* or small ones written by the test.

EXAMPLES="$BATS_TEST_DIRNAME/../../examples/build"

# setup_file of every build test file: the busybox rootfs, made once.
build_setup_file() {
	export BUILD_ROOTFS="$BATS_FILE_TMPDIR/rootfs"
	[ -d "$BUILD_ROOTFS" ] || run_mk_rootfs "$BUILD_ROOTFS"
}

# setup of every build test: a fresh store with busybox:test in it.
build_setup() {
	e2e_setup
	BASE_ID=$(import_id "$BUILD_ROOTFS" busybox:test -q)
	ID=
}

# teardown: a build never leaves an instance (mount, scratch dir) behind.
build_teardown() {
	assert_no_instance_leftovers
}

# example NAME [DEST]: copy examples/build/NAME to DEST (default $T/NAME)
# and print DEST.
example() {
	local dest=${2:-$T/$1}
	mkdir -p "$dest"
	cp -a "$EXAMPLES/$1/." "$dest/"
	echo "$dest"
}

# ctx NAME: an empty context directory $T/NAME (printed).
ctx() {
	mkdir -p "$T/$1"
	echo "$T/$1"
}

# dockerfile DIR [NAME]: write stdin to DIR/NAME (default Dockerfile).
dockerfile() {
	cat >"$1/${2:-Dockerfile}"
}

# build_ok ARGS...: `cairn build ARGS` must succeed and print an id as its
# last line on stdout; sets ID, and leaves status/output/stderr as `run` does.
build_ok() {
	run --separate-stderr cairn build "$@"
	if [ "$status" -ne 0 ]; then
		show
		echo "cairn build $* failed"
		return 1
	fi
	ID=$(last_line "$output")
	if ! [[ "$ID" =~ ^sha256:[0-9a-f]{64}$ ]]; then
		show
		echo "cairn build $* printed no id on stdout"
		return 1
	fi
}

# build_fails ARGS...: `cairn build ARGS` must exit 1 (not 0, not a crash).
build_fails() {
	run --separate-stderr cairn build "$@"
	if [ "$status" -ne 1 ]; then
		show
		echo "cairn build $* exited $status, expected 1"
		return 1
	fi
}

# co IMAGE: check IMAGE out into a new directory and print its path.
co() {
	local d
	d=$(mktemp -d "$T/co.XXXXXX") || return 1
	cairn checkout "$1" "$d" >/dev/null || {
		echo "cairn checkout $1 failed" >&2
		return 1
	}
	echo "$d"
}

# jpy JSON EXPR: evaluate the python expression EXPR over j (the parsed
# JSON); strings print raw, anything else as compact JSON with sorted keys,
# a missing key prints "<missing>".
jpy() {
	python3 -c '
import json, sys
j = json.loads(sys.argv[1])
try:
    v = eval(sys.argv[2])
except (KeyError, IndexError, TypeError):
    print("<missing>")
    sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
' "$1" "$2"
}

# inspect_json IMAGE: `cairn --json inspect IMAGE` (fails the test on error).
inspect_json() {
	cairn --json inspect "$1" || {
		echo "cairn inspect $1 failed" >&2
		return 1
	}
}

# config IMAGE EXPR: EXPR (python, over c = the image's run config).
config() {
	local j
	j=$(inspect_json "$1") || return 1
	jpy "$j" "(lambda c: $2)(j['manifest']['config'])"
}

# tag_target NAME:TAG: the id the tag points to (empty when it does not exist).
tag_target() {
	cairn --json images | python3 -c '
import json, sys
name, _, tag = sys.argv[1].partition(":")
for i in json.load(sys.stdin):
    if i.get("name") == name and i.get("tag") == (tag or "latest"):
        print(i["id"])
' "$1"
}

# step_result N: what the progress (on $stderr) says of step N at its end:
# "cached", a time like "0.03s", or "" (a config step). Fails when step N
# has no line.
step_result() {
	local line
	line=$(printf '%s\n' "$stderr" | grep -E "^\[$1/[0-9]+\] " | tail -n 1)
	if [ -z "$line" ]; then
		echo "no progress line for step $1 in:" >&2
		printf '%s\n' "$stderr" >&2
		return 1
	fi
	case "$line" in
	*"  cached") echo cached ;;
	*) [[ "$line" =~ \ \ ([0-9]+\.[0-9]+s)$ ]] && echo "${BASH_REMATCH[1]}" || echo "" ;;
	esac
}

# step_results: the results of every step, space separated ("- " for a
# config step), e.g. "- cached cached 0.02s -".
step_results() {
	local n i r out=""
	n=$(printf '%s\n' "$stderr" | grep -cE '^\[[0-9]+/[0-9]+\] ')
	for ((i = 1; i <= n; i++)); do
		r=$(step_result "$i") || return 1
		case "$r" in
		cached) out+="cached " ;;
		"") out+="- " ;;
		*) out+="ran " ;;
		esac
	done
	echo "${out% }"
}

# files_in DIR: every path under DIR (relative, sorted), one a line; dirs
# end in /.
files_in() {
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%P/\n' \) -o -printf '%P\n') | LC_ALL=C sort
}

# fsck_clean: `cairn fsck` finds nothing wrong.
fsck_clean() {
	run cairn fsck
	if [ "$status" -ne 0 ]; then
		show
		echo "cairn fsck is not clean"
		return 1
	fi
}

# run_step_results: "cached" or "ran" for each RUN step in the progress (on
# $stderr), space separated.
run_step_results() {
	printf '%s\n' "$stderr" | grep -E '^\[[0-9]+/[0-9]+\] [^:]*: RUN ' |
		while IFS= read -r line; do
			case "$line" in
			*"  cached") echo cached ;;
			*) echo ran ;;
			esac
		done | paste -sd ' '
}
