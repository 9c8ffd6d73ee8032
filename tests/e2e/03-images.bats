#!/usr/bin/env bats
# Acceptance 4: images, inspect, tag, rm and history, in text and JSON.

load helpers

setup() {
	e2e_setup
}

@test "images: lists name, tag, short id, created and size; --json has the fields" {
	mk_plain_tree "$T/src"
	local id short
	id=$(import_id "$T/src" web:1.0)
	short=${id#sha256:}
	short=${short:0:12}

	run cairn images
	show
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *NAME*TAG*ID*CREATED*SIZE* ]]
	[ "${#lines[@]}" -eq 2 ]
	# web  1.0  <12 hex>  YYYY-MM-DD HH:MM:SS  <size>
	[[ "${lines[1]}" =~ ^web\ +1\.0\ +$short\ +[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\ +[0-9.]+\ ?[kKMG]?B ]]

	run cairn images -q
	show
	[ "$status" -eq 0 ]
	[ "$output" = "$id" ]

	run cairn --json images
	show
	[ "$status" -eq 0 ]
	printf '%s' "$output" | python3 -c '
import json, sys
want_id, want_size = sys.argv[1], int(sys.argv[2])
imgs = json.load(sys.stdin)
assert isinstance(imgs, list) and len(imgs) == 1, imgs
i = imgs[0]
for k in ("name", "tag", "id", "created", "size"):
    assert k in i, (k, i)
assert i["name"] == "web" and i["tag"] == "1.0", i
assert i["id"] == want_id, i
assert i["size"] == want_size, (i["size"], want_size)
assert i["created"][:2] == "20", i
' "$id" "$(cat "$T"/src/a/f1 "$T"/src/a/f2 "$T"/src/a/f3 "$T"/src/a/b/g "$T"/src/c/common | wc -c)"
}

@test "inspect: text and --json show id, tags, manifest and history" {
	mk_plain_tree "$T/src"
	local id
	id=$(import_id "$T/src" web:1.0)
	cairn tag web:1.0 web:stable

	run cairn inspect web:stable
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"$id"* ]]
	[[ "$output" == *web:1.0* ]] && [[ "$output" == *web:stable* ]]

	# by id and by unique prefix
	run cairn inspect "$id"
	[ "$status" -eq 0 ]
	run cairn inspect "${id:0:19}"
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"$id"* ]]

	run cairn --json inspect web:1.0
	show
	[ "$status" -eq 0 ]
	printf '%s' "$output" | python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["id"] == sys.argv[1], i
assert sorted(i["tags"]) == ["web:1.0", "web:stable"], i["tags"]
assert i["manifest"]["tree"].startswith("sha256:"), i
assert len(i["history"]) >= 2, i["history"]
' "$id"

	run --separate-stderr cairn inspect nosuch:tag
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
}

@test "history: tag moves are recorded in order with the previous image" {
	mkdir -p "$T/v1" "$T/v2"
	echo one >"$T/v1/f"
	echo two >"$T/v2/f"
	local id1 id2
	id1=$(import_id "$T/v1" app:latest)
	id2=$(import_id "$T/v2" app:latest)
	[ "$id1" != "$id2" ]

	run cairn images
	show
	# app:latest now names v2 only; v1 is untagged
	[[ "$output" == *"app "*latest*"${id2:7:12}"* ]]
	[ "$(cairn images | grep -c latest)" -eq 1 ]

	run cairn history app:latest
	show
	[ "$status" -eq 0 ]
	# header + two moves, oldest first; the second has the first as previous
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[1]}" == *app:latest*"${id1:7:12}"* ]]
	[[ "${lines[2]}" == *app:latest*"${id2:7:12}"*"${id1:7:12}"* ]]

	run cairn --json history app:latest
	show
	printf '%s' "$output" | python3 -c '
import json, sys
id1, id2 = sys.argv[1:3]
h = json.load(sys.stdin)
assert [(e["image"], e["previous"]) for e in h] == [(id1, None), (id2, id1)], h
assert h[0]["at"] <= h[1]["at"], h
' "$id1" "$id2"

	# history NAME without a tag shows every tag of NAME
	cairn tag "$id1" app:old
	run cairn --json history app
	show
	printf '%s' "$output" | python3 -c '
import json, sys
h = json.load(sys.stdin)
assert sorted({e["tag"] for e in h}) == ["latest", "old"], h
'
}

@test "tag: retagging moves the tag and is recorded in history" {
	mkdir -p "$T/v1" "$T/v2"
	echo one >"$T/v1/f"
	echo two >"$T/v2/f"
	local id1 id2
	id1=$(import_id "$T/v1" app:1)
	id2=$(import_id "$T/v2" app:2)
	cairn tag app:1 app:prod
	[ "$(cairn --json inspect app:prod | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" = "$id1" ]
	cairn tag "$id2" app:prod
	[ "$(cairn --json inspect app:prod | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" = "$id2" ]
	cairn --json history app:prod | python3 -c '
import json, sys
id1, id2 = sys.argv[1:3]
h = json.load(sys.stdin)
assert [(e["image"], e["previous"]) for e in h] == [(id1, None), (id2, id1)], h
' "$id1" "$id2"

	run --separate-stderr cairn tag nosuch:1 app:x
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
}

@test "rm: removing a tag keeps the image and the history; removing an id removes all its tags" {
	mkdir -p "$T/v1" "$T/v2"
	echo one >"$T/v1/f"
	echo two >"$T/v2/f"
	local id1 id2
	id1=$(import_id "$T/v1" app:latest)
	id2=$(import_id "$T/v2" other:1)
	cairn tag app:latest app:stable
	cairn tag app:latest app:extra

	run cairn rm app:latest
	show
	[ "$status" -eq 0 ]
	run cairn --json images
	show
	printf '%s' "$output" | python3 -c '
import json, sys
id1 = sys.argv[1]
imgs = json.load(sys.stdin)
refs = sorted("%s:%s" % (i["name"], i["tag"]) for i in imgs)
assert refs == ["app:extra", "app:stable", "other:1"], refs
' "$id1"
	run cairn --json history app:latest
	show
	printf '%s' "$output" | python3 -c '
import json, sys
id1 = sys.argv[1]
h = json.load(sys.stdin)
assert len(h) == 2, h
assert h[0]["image"] == id1 and h[1]["image"] is None and h[1]["previous"] == id1, h
' "$id1"
	run --separate-stderr cairn inspect app:latest
	[ "$status" -eq 1 ]

	# rm by id: the image and every tag of it go; the other image stays
	run cairn rm "$id1"
	show
	[ "$status" -eq 0 ]
	run cairn --json images
	printf '%s' "$output" | python3 -c '
import json, sys
imgs = json.load(sys.stdin)
assert [(i["name"], i["tag"], i["id"]) for i in imgs] == [("other", "1", sys.argv[1])], imgs
' "$id2"
	run --separate-stderr cairn inspect "$id1"
	show
	[ "$status" -eq 1 ]
	run --separate-stderr cairn inspect app:stable
	[ "$status" -eq 1 ]
	# and history still has every tag that pointed at it
	run cairn --json history app
	show
	printf '%s' "$output" | python3 -c '
import json, sys
h = json.load(sys.stdin)
assert {e["tag"] for e in h} == {"latest", "stable", "extra"}, h
' 

	run --separate-stderr cairn rm nosuch:tag
	show
	[ "$status" -eq 1 ]
	assert_one_line_error
}
