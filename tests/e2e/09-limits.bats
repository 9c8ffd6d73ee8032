#!/usr/bin/env bats
# Acceptance 10: --max-bytes, --max-entries and --max-depth stop an import
# early with an error naming the limit, and leave the store unchanged.

load helpers

setup() {
	e2e_setup
	mkdir -p "$T/base"
	echo base >"$T/base/f"
	import_id "$T/base" base:1 >/dev/null
	store_snapshot "$T/.snap/store"
}

# assert_refused_by LIMIT-OPTION SOURCE [OPTIONS...]
assert_refused_by() {
	local opt=$1 src=$2
	shift 2
	run --separate-stderr cairn import "$@" "$src" big:1
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *"$opt"* ]]
	[[ "$output" != *sha256:* ]]
	assert_store_unchanged "$T/.snap/store"
	[ -z "$(staging_leftovers)" ]
}

@test "limits: a gzip bomb is stopped by --max-bytes" {
	mkdir "$T/bomb"
	# 200 MB of zeros (sparse on disk) compressing to about 200 KB
	truncate -s 200M "$T/bomb/zeros"
	tar -C "$T/bomb" -cf - . | gzip >"$T/bomb.tar.gz"
	rm -r "$T/bomb"
	[ "$(stat -c %s "$T/bomb.tar.gz")" -lt 1000000 ]
	assert_refused_by --max-bytes "$T/bomb.tar.gz" --max-bytes 10M
}

@test "limits: many small files adding up past --max-bytes are stopped" {
	mkdir "$T/many"
	local i
	for i in $(seq 1 30); do
		head -c 1048576 /dev/zero | tr '\0' "$((i % 10))" >"$T/many/f$i"
	done
	tar -C "$T/many" -cf - . | zstd -q >"$T/many.tar.zst"
	assert_refused_by --max-bytes "$T/many.tar.zst" --max-bytes 10M
	assert_refused_by --max-bytes "$T/many" --max-bytes 10M
	# and a limit above the content lets it through
	run cairn import --max-bytes 40M "$T/many.tar.zst" many:1
	show
	[ "$status" -eq 0 ]
}

@test "limits: --max-entries 5 refuses a tar with 10 files" {
	mkdir "$T/ten"
	local i
	for i in $(seq 1 10); do echo "$i" >"$T/ten/f$i"; done
	tar -C "$T/ten" -cf "$T/ten.tar" .
	assert_refused_by --max-entries "$T/ten.tar" --max-entries 5
	assert_refused_by --max-entries "$T/ten" --max-entries 5
	run cairn import --max-entries 100 "$T/ten.tar" ten:1
	show
	[ "$status" -eq 0 ]
}

@test "limits: --max-depth 20 refuses a tree 50 deep" {
	local p="$T/deep" i
	for i in $(seq 1 50); do p="$p/d$i"; done
	mkdir -p "$p"
	echo bottom >"$p/file"
	tar -C "$T/deep" -cf "$T/deep.tar" .
	assert_refused_by --max-depth "$T/deep" --max-depth 20
	assert_refused_by --max-depth "$T/deep.tar" --max-depth 20
	run cairn import --max-depth 60 "$T/deep" deep:1
	show
	[ "$status" -eq 0 ]
}

@test "limits: a size field of a tar header larger than the data is an error, not a hang" {
	# a header claiming 200 MB followed by 1 KB of data
	python3 - "$T/liar.tar" <<'PY'
import sys, tarfile
ti = tarfile.TarInfo("liar")
ti.size = 200 * 1024 * 1024
with open(sys.argv[1], "wb") as f:
    f.write(ti.tobuf(format=tarfile.GNU_FORMAT))
    f.write(b"x" * 1024)
PY
	run --separate-stderr timeout 60 "$CAIRN" --root "$ROOT" import "$T/liar.tar" liar:1
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	assert_store_unchanged "$T/.snap/store"
	[ -z "$(staging_leftovers)" ]
}
