#!/usr/bin/env bats
# Acceptance 8: verify compares a directory with an image and lists every
# added, removed and changed path.

load helpers

setup() {
	e2e_setup
	mkdir -p "$T/src/d"
	echo content >"$T/src/content"
	echo mode >"$T/src/d/mode"
	echo owner >"$T/src/owner"
	echo gone >"$T/src/gone"
	ln -s content "$T/src/link"
	import_id "$T/src" v:1 >/dev/null
	cairn checkout v:1 "$T/co"
	run cairn verify v:1 "$T/co"
	show
	[ "$status" -eq 0 ]
}

@test "verify: lists each added, removed and changed path" {
	# checkout files are hardlinks into the store: replace rather than
	# write through them, as a user editing a copy would
	rm "$T/co/content"
	echo CHANGED >"$T/co/content"
	chmod 0600 "$T/co/d/mode"
	chown 4321:4321 "$T/co/owner"
	echo new >"$T/co/new"
	rm "$T/co/gone"
	ln -sfn d/mode "$T/co/link"

	run cairn verify v:1 "$T/co"
	show
	[ "$status" -eq 1 ]
	printf '%s\n' "${lines[@]}" | grep -qx '+ new'
	printf '%s\n' "${lines[@]}" | grep -qx -- '- gone'
	printf '%s\n' "${lines[@]}" | grep -q '^~ content: .*content'
	printf '%s\n' "${lines[@]}" | grep -q '^~ d/mode: .*mode'
	printf '%s\n' "${lines[@]}" | grep -q '^~ owner: .*4321'
	printf '%s\n' "${lines[@]}" | grep -q '^~ link: .*d/mode'
	# nothing else is reported as changed
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^[-+~] ')" -eq 6 ]

	run cairn --json verify v:1 "$T/co"
	show
	[ "$status" -eq 1 ]
	printf '%s' "$output" | python3 -c '
import json, sys
v = json.load(sys.stdin)
got = sorted((c["change"], c["path"]) for c in v["changes"])
assert got == [("added", "new"), ("changed", "content"), ("changed", "d/mode"),
               ("changed", "link"), ("changed", "owner"), ("removed", "gone")], got
assert v["same"] is False
'
}

@test "verify: a change written through a checkout hardlink is found" {
	# writing in place changes the store object too; verify must still see
	# that the directory no longer holds the image's content
	echo CHANGED >"$T/co/content"
	run cairn verify v:1 "$T/co"
	show
	[ "$status" -eq 1 ]
	[[ "$output" == *"~ content:"* ]]
	run cairn fsck
	show
	[ "$status" -eq 1 ]
}

@test "verify: a missing directory or unknown image is an error" {
	run --separate-stderr cairn verify v:1 "$T/nonexistent"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	run --separate-stderr cairn verify nosuch:1 "$T/co"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
}
