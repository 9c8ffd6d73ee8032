#!/usr/bin/env bats
# Acceptance 2 and 3: an import keeps every kind of metadata through a
# checkout, and leaves special files out with a counted warning.

load helpers

setup() {
	e2e_setup
}

@test "metadata: files, dirs, symlinks, hardlinks, modes, owners and xattrs survive import and checkout" {
	mk_tree "$T/src"
	local id
	id=$(import_id "$T/src" meta:1)
	cairn checkout meta:1 "$T/co"

	run tree_compare "$T/src" "$T/co"
	show
	[ "$status" -eq 0 ]

	# spot checks with the ordinary tools, independent of the python walk
	[ "$(stat -c %a "$T/co/usr/bin/suid")" = 4755 ]
	[ "$(stat -c %a "$T/co/usr/bin/sgid")" = 2755 ]
	[ "$(stat -c %a "$T/co/shared")" = 2755 ]
	[ "$(stat -c %a "$T/co/tmp")" = 1777 ]
	[ "$(stat -c %a "$T/co/usr/lib/deep")" = 750 ]
	[ "$(stat -c %u:%g "$T/co/etc/owned")" = 1234:5678 ]
	[ "$(stat -c %u:%g "$T/co/usr/lib/deep/er")" = 1234:5678 ]
	[ "$(stat -c %u:%g "$T/co/etc/link-rel")" = 1234:5678 ]
	[ "$(readlink "$T/co/etc/link-rel")" = hello.txt ]
	[ "$(readlink "$T/co/etc/link-abs")" = /etc/hello.txt ]
	[ "$(readlink "$T/co/etc/link-dangling")" = does/not/exist ]
	[ "$(readlink "$T/co/etc/link-dir")" = ../usr ]
	[ -d "$T/co/empty" ]
	[ -f "$T/co/etc/empty-file" ] && [ ! -s "$T/co/etc/empty-file" ]
	cmp "$T/src/usr/lib/deep/er/blob.bin" "$T/co/usr/lib/deep/er/blob.bin"
	[ "$(stat -c %i "$T/co/usr/bin/tool")" = "$(stat -c %i "$T/co/usr/bin/tool-alias")" ]
	[ "$(stat -c %i "$T/co/usr/bin/tool")" = "$(stat -c %i "$T/co/etc/tool-copy")" ]
	run python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "security.capability").hex())' "$T/co/usr/bin/ping"
	show
	[ "$output" = "$CAP_NET_RAW_V2" ]
	run python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.origin").decode())' "$T/co/etc/app.conf"
	[ "$output" = e2e ]
	if command -v getcap >/dev/null; then
		run getcap "$T/co/usr/bin/ping"
		show
		[[ "$output" == *cap_net_raw* ]]
	fi

	run cairn verify meta:1 "$T/co"
	show
	[ "$status" -eq 0 ]
	# the source itself matches too, by id as well as by name
	run cairn verify "$id" "$T/src"
	show
	[ "$status" -eq 0 ]
}

@test "metadata: a tar keeps modes, owners, symlinks, hardlinks and xattrs too" {
	mk_tree "$T/src"
	tar --xattrs --xattrs-include='*' --numeric-owner -C "$T/src" -cf "$T/x.tar" .
	import_id "$T/x.tar" meta:tar
	cairn checkout meta:tar "$T/co"
	run tree_compare "$T/src" "$T/co"
	show
	[ "$status" -eq 0 ]
	run cairn verify meta:tar "$T/co"
	show
	[ "$status" -eq 0 ]
}

@test "special files: a fifo and a device node are skipped with a counted warning" {
	mk_plain_tree "$T/src"
	mkfifo "$T/src/a/fifo"
	mknod "$T/src/c/null" c 1 3
	run --separate-stderr cairn import "$T/src" special:1
	show
	[ "$status" -eq 0 ]
	[[ "$(last_line "$output")" =~ ^sha256:[0-9a-f]{64}$ ]]
	[[ "$stderr" == *"cairn: warning: skipped 2 special files"* ]]

	cairn checkout special:1 "$T/co"
	[ ! -e "$T/co/a/fifo" ] && [ ! -L "$T/co/a/fifo" ]
	[ ! -e "$T/co/c/null" ] && [ ! -L "$T/co/c/null" ]
	[ -f "$T/co/a/f1" ] && [ -f "$T/co/c/common" ]

	# and the image is the tree without them
	rm "$T/src/a/fifo" "$T/src/c/null"
	[ "$(import_id "$T/src" special:2)" = "$(last_line "$output")" ]
}

@test "special files: a tar with a fifo and a device node is imported without them" {
	mk_plain_tree "$T/src"
	mkfifo "$T/src/a/fifo"
	mknod "$T/src/c/null" c 1 3
	tar -C "$T/src" -cf "$T/x.tar" .
	run --separate-stderr cairn import "$T/x.tar" special:tar
	show
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"cairn: warning: skipped 2 special files"* ]]
	cairn checkout special:tar "$T/co"
	[ ! -e "$T/co/a/fifo" ] && [ ! -e "$T/co/c/null" ]
	[ -f "$T/co/a/f1" ]
}
