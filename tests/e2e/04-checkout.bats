#!/usr/bin/env bats
# Acceptance 5: checkout materializes an image into a new or empty
# directory, and refuses a non-empty one without touching it.

load helpers

setup() {
	e2e_setup
	mk_plain_tree "$T/src"
	import_id "$T/src" co:1 >/dev/null
}

@test "checkout: into a directory that does not exist" {
	[ ! -e "$T/new" ]
	run cairn checkout co:1 "$T/new"
	show
	[ "$status" -eq 0 ]
	diff -r "$T/src" "$T/new"
	run cairn verify co:1 "$T/new"
	show
	[ "$status" -eq 0 ]
}

@test "checkout: into an empty directory" {
	mkdir "$T/empty"
	run cairn checkout co:1 "$T/empty"
	show
	[ "$status" -eq 0 ]
	diff -r "$T/src" "$T/empty"
	run cairn verify co:1 "$T/empty"
	[ "$status" -eq 0 ]
}

@test "checkout: into a non-empty directory fails and leaves it untouched" {
	mkdir -p "$T/full/a"
	echo mine >"$T/full/keep"
	echo mine too >"$T/full/a/f1"
	tmpdir_snapshot "$T/.snap/before"
	local objects
	objects=$(object_list)

	run --separate-stderr cairn checkout co:1 "$T/full"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error

	tmpdir_snapshot "$T/.snap/after"
	diff -u "$T/.snap/before" "$T/.snap/after"
	[ "$(object_list)" = "$objects" ]
}

@test "checkout: an unknown image fails and creates nothing" {
	run --separate-stderr cairn checkout nosuch:1 "$T/never"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[ ! -e "$T/never" ]
}

@test "checkout: without DIR makes the shared checkout that verify uses by default" {
	local id
	id=$(cairn --json inspect co:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	run --separate-stderr cairn checkout co:1
	show
	[ "$status" -eq 0 ]
	local dir
	dir=$(last_line "$output")
	[ -d "$dir" ]
	[[ "$dir" == "$ROOT/checkouts/"* ]]
	[[ "$dir" == *"${id#sha256:}"* ]]
	diff -r "$T/src" "$dir"
	run cairn verify co:1
	show
	[ "$status" -eq 0 ]
	# made once: a second call gives the same directory
	run --separate-stderr cairn checkout co:1
	[ "$status" -eq 0 ]
	[ "$(last_line "$output")" = "$dir" ]
}
