#!/usr/bin/env bats
# Acceptance 6: gc --dry-run reports and changes nothing; gc removes exactly
# the objects nothing tagged uses, and the store stays consistent.

load helpers

setup() {
	e2e_setup
}

# objects_of IMAGE: the object names (ab/cdef...) an image references: its
# manifest, its tree and every file blob of the tree.
objects_of() {
	cairn --json inspect "$1" | python3 -c '
import json, os, sys
root = sys.argv[1]
i = json.load(sys.stdin)
def name(d):
    h = d.split(":", 1)[1]
    return h[:2] + "/" + h[2:]
tree = i["manifest"]["tree"]
out = {name(i["id"]), name(tree)}
t = json.load(open(os.path.join(root, "objects", name(tree))))
for e in t["entries"]:
    if e.get("digest"):
        out.add(name(e["digest"]))
print("\n".join(sorted(out)))
' "$ROOT"
}

@test "gc: --dry-run reports bytes and changes nothing; gc removes exactly the unreferenced objects" {
	# two images sharing c/common and a/b/g-like content, each with its own files
	mk_plain_tree "$T/a" A
	mk_plain_tree "$T/b" B
	printf 'shared by both\n' >"$T/a/shared"
	cp "$T/a/shared" "$T/b/shared"
	head -c 50000 /dev/urandom >"$T/a/only-a.bin"
	local ida idb
	ida=$(import_id "$T/a" keep:a)
	idb=$(import_id "$T/b" keep:b)

	objects_of keep:a | LC_ALL=C sort >"$T/objs-a"
	objects_of keep:b | LC_ALL=C sort >"$T/objs-b"
	# the objects only image a uses, and their total size
	comm -23 "$T/objs-a" "$T/objs-b" >"$T/only-a"
	[ -s "$T/only-a" ]
	grep -qx "${ida:7:2}/${ida:9}" "$T/only-a"
	local bytes
	bytes=$(cd "$ROOT/objects" && xargs stat -c %s <"$T/only-a" | awk '{ s += $1 } END { print s }')

	cairn rm keep:a
	store_snapshot "$T/.snap/before"
	local count
	count=$(object_count)

	run cairn gc --dry-run
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"$(wc -l <"$T/only-a") objects"* ]]
	[[ "$output" == *"$ida"* ]]
	run cairn --json gc --dry-run
	show
	printf '%s' "$output" | python3 -c '
import json, sys
g = json.load(sys.stdin)
assert g["dry_run"] is True, g
assert g["objects_removed"] == int(sys.argv[1]), (g, sys.argv[1])
assert g["bytes_removed"] == int(sys.argv[2]), (g, sys.argv[2])
' "$(wc -l <"$T/only-a")" "$bytes"
	[ "$(object_count)" -eq "$count" ]
	assert_store_unchanged "$T/.snap/before"

	run cairn gc
	show
	[ "$status" -eq 0 ]
	object_list >"$T/after"
	object_list_before=$(sed -n '/^## objects/,/^## staging/p' "$T/.snap/before" | sed '1d;$d')
	# exactly the objects only image a used are gone
	comm -23 <(printf '%s\n' "$object_list_before") "$T/after" >"$T/removed"
	diff -u "$T/only-a" "$T/removed"
	# everything image b uses is still there
	[ -z "$(comm -23 "$T/objs-b" "$T/after")" ]
	[ "$(object_count)" -eq $((count - $(wc -l <"$T/only-a"))) ]

	run cairn fsck
	show
	[ "$status" -eq 0 ]
	run cairn --json images
	printf '%s' "$output" | python3 -c '
import json, sys
assert [i["id"] for i in json.load(sys.stdin)] == [sys.argv[1]]
' "$idb"
	cairn checkout keep:b "$T/co"
	diff -r "$T/b" "$T/co"
	run cairn verify keep:b "$T/co"
	show
	[ "$status" -eq 0 ]

	# a second gc has nothing left to do
	run cairn --json gc
	printf '%s' "$output" | python3 -c '
import json, sys
assert json.load(sys.stdin)["objects_removed"] == 0
'
}

@test "gc: keeps every object of a still-tagged image and its checkout copies" {
	mk_tree "$T/src"
	import_id "$T/src" keep:1 >/dev/null
	cairn checkout keep:1 "$T/co"
	local before
	before=$(object_list)
	run cairn gc
	show
	[ "$status" -eq 0 ]
	[ "$(object_list)" = "$before" ]
	run cairn verify keep:1 "$T/co"
	[ "$status" -eq 0 ]
	run cairn fsck
	[ "$status" -eq 0 ]
}
