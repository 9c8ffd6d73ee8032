#!/usr/bin/env bats
# Acceptance 13: help, version and usage errors.

load helpers

setup() {
	e2e_setup
}

COMMANDS="import images inspect tag rm history checkout gc fsck verify"

# assert_usage_error [WORD]: exit 2, nothing on stdout, and stderr opens with
# one "cairn: ..." line (naming WORD if given); a usage hint may follow.
assert_usage_error() {
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	local first=${stderr%%$'\n'*}
	[[ "$first" == "cairn: "* ]]
	[ -z "${1:-}" ] || [[ "$first" == *"$1"* ]]
	[ "$(printf '%s\n' "$stderr" | wc -l)" -le 2 ]
}

@test "cli: --help, -h and --version exit 0 and print to stdout" {
	run --separate-stderr "$CAIRN" --help
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *Usage:* ]]
	local c
	for c in $COMMANDS; do
		[[ "$output" == *"  $c "* ]]
	done
	run "$CAIRN" -h
	[ "$status" -eq 0 ]
	run --separate-stderr "$CAIRN" --version
	show
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^cairn\ [0-9]+\.[0-9]+ ]]
	run "$CAIRN" -V
	[ "$status" -eq 0 ]
	# help needs no store
	[ ! -e "$ROOT" ]
}

@test "cli: every COMMAND --help exits 0 with its usage" {
	local c
	for c in $COMMANDS; do
		run --separate-stderr "$CAIRN" --root "$ROOT" "$c" --help
		show
		[ "$status" -eq 0 ]
		[[ "$output" == *"Usage: cairn $c"* ]]
	done
	[ ! -e "$ROOT" ]
}

@test "cli: an unknown command exits 2 with an error naming it" {
	run --separate-stderr cairn frobnicate
	show
	assert_usage_error frobnicate
	[ ! -e "$ROOT" ]
}

@test "cli: an unknown option exits 2 with an error naming it" {
	run --separate-stderr cairn --frobnicate images
	show
	assert_usage_error --frobnicate
	run --separate-stderr cairn images --frobnicate
	show
	assert_usage_error --frobnicate
	run --separate-stderr cairn import --frobnicate "$T" x:1
	show
	assert_usage_error --frobnicate
	[ ! -e "$ROOT" ]
}

@test "cli: missing or extra arguments and bad option values exit 2" {
	run --separate-stderr "$CAIRN" --root "$ROOT"
	show
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	run --separate-stderr cairn import "$T"
	show
	assert_usage_error
	run --separate-stderr cairn checkout
	show
	assert_usage_error
	run --separate-stderr cairn checkout x:1 "$T/a" "$T/b"
	show
	assert_usage_error
	run --separate-stderr cairn tag a:1 b:1 c:1
	show
	assert_usage_error
	run --separate-stderr cairn images extra
	show
	assert_usage_error extra
	run --separate-stderr cairn import --max-bytes lots "$T" x:1
	show
	assert_usage_error lots
	run --separate-stderr cairn import --max-bytes 10Q "$T" x:1
	show
	assert_usage_error 10Q
	run --separate-stderr cairn import --max-bytes 99999999999999999999999 "$T" x:1
	show
	assert_usage_error 99999999999999999999999
	run --separate-stderr cairn import --max-entries -5 "$T" x:1
	show
	assert_usage_error "\"-5\""
	run --separate-stderr cairn import --max-depth "" "$T" x:1
	show
	assert_usage_error --max-depth
	[ ! -e "$ROOT" ]
}

@test "cli: CAIRN_ROOT selects the store when --root is absent" {
	mkdir "$T/src"
	echo x >"$T/src/f"
	run env CAIRN_ROOT="$T/envroot" "$CAIRN" import -q "$T/src" env:1
	show
	[ "$status" -eq 0 ]
	[ -d "$T/envroot/objects" ]
	run env CAIRN_ROOT="$T/envroot" "$CAIRN" images -q
	[ "$output" = "$(last_line "$(env CAIRN_ROOT="$T/envroot" "$CAIRN" import -q "$T/src" env:2)")" ]
}

@test "cli: import -q prints only the id" {
	mkdir "$T/src"
	echo x >"$T/src/f"
	run --separate-stderr cairn import -q "$T/src" q:1
	show
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
	[ -z "$stderr" ]
}
