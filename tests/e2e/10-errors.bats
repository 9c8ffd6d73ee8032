#!/usr/bin/env bats
# Acceptance 11: bad sources and bad names fail with exit 1 and one line,
# and leave the store and its database as they were.

load helpers

setup() {
	e2e_setup
	mkdir -p "$T/base"
	echo base >"$T/base/f"
	import_id "$T/base" base:1 >/dev/null
	store_snapshot "$T/.snap/store"
}

# assert_import_fails SOURCE [PATTERN]: exit 1, one line (matching the glob
# PATTERN if given), no id, store unchanged, staging empty.
assert_import_fails() {
	local src=$1 pattern=${2:-}
	run --separate-stderr cairn import "$src" bad:1
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	if [ -n "$pattern" ]; then
		[[ "$stderr" == $pattern ]]
	fi
	[[ "$output" != *sha256:* ]]
	assert_store_unchanged "$T/.snap/store"
	[ -z "$(staging_leftovers)" ]
}

@test "errors: a file of random bytes is not a tar" {
	head -c 100000 /dev/urandom >"$T/random.tar"
	assert_import_fails "$T/random.tar" "*random.tar*"
}

@test "errors: random bytes behind a gzip or zstd header are refused" {
	head -c 100000 /dev/urandom | gzip >"$T/random.tar.gz"
	assert_import_fails "$T/random.tar.gz" "*random.tar.gz*"
	head -c 100000 /dev/urandom | zstd -q >"$T/random.tar.zst"
	assert_import_fails "$T/random.tar.zst" "*random.tar.zst*"
}

@test "errors: a truncated tar is refused" {
	mkdir "$T/src"
	head -c 102400 /dev/urandom >"$T/src/big"
	echo after >"$T/src/zz-after"
	tar -C "$T/src" -cf "$T/full.tar" .
	head -c 60000 "$T/full.tar" >"$T/cut.tar"
	assert_import_fails "$T/cut.tar" "*cut.tar*"
	gzip -c "$T/full.tar" | head -c 60000 >"$T/cut.tar.gz"
	assert_import_fails "$T/cut.tar.gz" "*cut.tar.gz*"
	# the complete tar imports fine
	run cairn import "$T/full.tar" good:1
	[ "$status" -eq 0 ]
}

@test "errors: a missing source is refused" {
	assert_import_fails "$T/does-not-exist" "*does-not-exist*"
}

@test "errors: a socket or a device node as source is neither a directory nor a tar" {
	mknod "$T/dev" c 1 3
	assert_import_fails "$T/dev" "*dev*not a directory or a tar archive*"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
	[ -S "$T/sock" ]
	assert_import_fails "$T/sock" "*sock*not a directory or a tar archive*"
}

@test "errors: an unreadable file in a source directory is refused" {
	# chmod 000 does not stop root, who has CAP_DAC_OVERRIDE; run cairn
	# without it (and without CAP_DAC_READ_SEARCH) so the file is unreadable
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE"
	setpriv --bounding-set=-dac_override,-dac_read_search true ||
		skip "cannot drop capabilities here (no CAP_SETPCAP)"
	mkdir -p "$T/src/d"
	echo readable >"$T/src/ok"
	echo secret >"$T/src/d/secret"
	chmod 000 "$T/src/d/secret"
	run --separate-stderr setpriv --bounding-set=-dac_override,-dac_read_search \
		"$CAIRN" --root "$ROOT" import "$T/src" bad:1
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *d/secret* ]]
	assert_store_unchanged "$T/.snap/store"
	[ -z "$(staging_leftovers)" ]
}

@test "errors: bad NAME:TAG is refused before anything is read or written" {
	local ref
	for ref in "UPPER:tag" "name:bad tag!" "name:" ":tag"; do
		run --separate-stderr cairn import "$T/base" "$ref"
		show
		[ "$status" -eq 1 ]
		assert_one_line_error
		assert_store_unchanged "$T/.snap/store"
		# the same against a store that does not exist: it is not created
		run --separate-stderr "$CAIRN" --root "$T/fresh" import "$T/base" "$ref"
		show
		[ "$status" -eq 1 ]
		assert_one_line_error
		[ ! -e "$T/fresh" ]
	done
	# tag takes the same names
	run --separate-stderr cairn tag base:1 "UPPER:tag"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	assert_store_unchanged "$T/.snap/store"
}
