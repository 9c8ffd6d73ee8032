#!/usr/bin/env bats
# Acceptance 7: fsck re-hashes every object and names each corrupt or
# missing one together with the images it breaks.

load helpers

setup() {
	e2e_setup
	mkdir -p "$T/src/d"
	printf 'the victim file, 0123456789\n' >"$T/src/d/victim"
	printf 'an innocent bystander\n' >"$T/src/other"
	ID=$(import_id "$T/src" app:1)
	# a file blob is named by the sha256 of its content
	VICTIM=$(sha256sum <"$T/src/d/victim" | cut -d' ' -f1)
	VICTIM_OBJ="$ROOT/objects/${VICTIM:0:2}/${VICTIM:2}"
	[ -f "$VICTIM_OBJ" ]
	run cairn fsck
	show
	[ "$status" -eq 0 ]
}

@test "fsck: a flipped byte in a file object is reported with its digest and image" {
	# bit rot: flip one byte in place, same size, mtime put back
	python3 -c '
import os, sys
p = sys.argv[1]
st = os.stat(p)
with open(p, "r+b") as f:
    f.seek(5); b = f.read(1); f.seek(5); f.write(bytes([b[0] ^ 0x01]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
' "$VICTIM_OBJ"

	run cairn fsck
	show
	[ "$status" -eq 1 ]
	[[ "$output" == *"sha256:$VICTIM"* ]]
	[[ "$output" == *corrupt* ]]
	[[ "$output" == *app:1* || "$output" == *"$ID"* || "$output" == *"${ID:7:12}"* ]]

	run cairn --json fsck
	show
	[ "$status" -eq 1 ]
	printf '%s' "$output" | python3 -c '
import json, sys
f = json.load(sys.stdin)
assert f["corrupt"] == 1 and f["missing"] == 0, f
assert ("sha256:" + sys.argv[1]) in json.dumps(f["problems"]), f
assert sys.argv[2] in json.dumps(f["broken_images"]), f
' "$VICTIM" "$ID"

}

@test "fsck: a corrupt object is never served by checkout (DESIGN.md section 5)" {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(5); b = f.read(1); f.seek(5); f.write(bytes([b[0] ^ 0x01]))
' "$VICTIM_OBJ"
	# "An object whose content does not hash to its name is corruption,
	# reported by fsck, never served."
	run --separate-stderr cairn checkout app:1 "$T/co"
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
	[[ "$stderr" == *"$VICTIM"* || "$stderr" == *d/victim* ]]
	[ ! -e "$T/co/d/victim" ]
}

@test "fsck: a deleted object is reported missing with its digest and image" {
	rm "$VICTIM_OBJ"
	run cairn fsck
	show
	[ "$status" -eq 1 ]
	[[ "$output" == *"sha256:$VICTIM"* ]]
	[[ "$output" == *missing* ]]
	[[ "$output" == *app:1* || "$output" == *"$ID"* || "$output" == *"${ID:7:12}"* ]]

	run cairn --json fsck
	show
	printf '%s' "$output" | python3 -c '
import json, sys
f = json.load(sys.stdin)
assert f["missing"] == 1 and f["corrupt"] == 0, f
assert ("sha256:" + sys.argv[1]) in json.dumps(f["problems"]), f
' "$VICTIM"
}

@test "fsck: a corrupt tree object is reported and breaks its image" {
	local tree
	tree=$(cairn --json inspect app:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["tree"][7:])')
	printf ' ' >>"$ROOT/objects/${tree:0:2}/${tree:2}"
	run cairn fsck
	show
	[ "$status" -eq 1 ]
	[[ "$output" == *"sha256:$tree"* ]]
	[[ "$output" == *app:1* || "$output" == *"$ID"* || "$output" == *"${ID:7:12}"* ]]
}
