#!/usr/bin/env bats
# Acceptance 1: the image id depends only on content and metadata: the same
# tree as a directory, a tar, a .tar.gz, .tar.zst or .tar.xz, a tar on
# standard input, with other mtimes, or in another store gives one id; other
# content or metadata gives another.

load helpers

setup() {
	e2e_setup
}

@test "id: directory, tar, tar.gz, tar.zst, tar.xz, stdin, touched copy and second store give one id" {
	mk_tree "$T/src"
	tar --xattrs --xattrs-include='*' -C "$T/src" -cf "$T/x.tar" .
	gzip -c "$T/x.tar" >"$T/x.tar.gz"
	zstd -q -c "$T/x.tar" >"$T/x.tar.zst"
	xz -c "$T/x.tar" >"$T/x.tar.xz"
	cp -a "$T/src" "$T/touched"
	find "$T/touched" -exec touch -h -d '2001-02-03 04:05:06' {} +

	declare -A id
	id[dir]=$(import_id "$T/src" img:dir)
	id[tar]=$(import_id "$T/x.tar" img:tar)
	id[tar.gz]=$(import_id "$T/x.tar.gz" img:tgz)
	id[tar.zst]=$(import_id "$T/x.tar.zst" img:tzst)
	id[tar.xz]=$(import_id "$T/x.tar.xz" img:txz)
	id[stdin.tar.gz]=$(import_id - img:stdin <"$T/x.tar.gz")
	id[touched]=$(import_id "$T/touched" img:touched)
	id[store2]=$(ROOT="$T/root2" import_id "$T/src" img:dir)

	local k bad=0
	for k in "${!id[@]}"; do
		echo "$k ${id[$k]}"
		[ "${id[$k]}" = "${id[dir]}" ] || bad=1
	done
	[ "$bad" -eq 0 ]
	# the second store really is another store
	[ -d "$T/root2/objects" ]
}

@test "id: other content or other metadata gives another id" {
	mk_plain_tree "$T/src"
	local base changed
	base=$(import_id "$T/src" img:base)

	# one byte of content, same size, mtime put back: still another id
	cp -a "$T/src" "$T/content"
	printf 'file 1 seed X\n' >"$T/content/a/f1"
	touch -r "$T/src/a/f1" "$T/content/a/f1"
	changed=$(import_id "$T/content" img:content)
	[ "$changed" != "$base" ]

	# content changed in place in the directory imported before (same path,
	# same size, same mtime): the id must follow the content
	printf 'file 2 seed Y\n' >"$T/src/a/f2.new"
	touch -r "$T/src/a/f2" "$T/src/a/f2.new"
	cat "$T/src/a/f2.new" >"$T/src/a/f2"
	touch -r "$T/src/a/f2.new" "$T/src/a/f2"
	rm "$T/src/a/f2.new"
	changed=$(import_id "$T/src" img:inplace)
	[ "$changed" != "$base" ]
	cairn verify img:inplace "$T/src"

	cp -a "$T/content" "$T/mode"
	chmod 0600 "$T/mode/a/f3"
	[ "$(import_id "$T/mode" img:mode)" != "$changed" ]

	cp -a "$T/content" "$T/owner"
	chown 1:1 "$T/owner/a/f3"
	[ "$(import_id "$T/owner" img:owner)" != "$changed" ]

	cp -a "$T/content" "$T/renamed"
	mv "$T/renamed/a/f3" "$T/renamed/a/f4"
	[ "$(import_id "$T/renamed" img:renamed)" != "$changed" ]
}

@test "id: a tar whose hardlinked file carries xattrs gives the directory's id" {
	# GNU tar stores xattrs only on the first name of a hardlink group; the
	# other names are link entries. The image must still record the same
	# metadata for every name of the inode, as a directory import does.
	mkdir -p "$T/src"
	printf 'x\n' >"$T/src/a"
	ln "$T/src/a" "$T/src/b"
	set_xattr "$T/src/a" user.k 31
	tar --xattrs -C "$T/src" -cf "$T/x.tar" .
	local d t
	d=$(import_id "$T/src" img:dir)
	t=$(import_id "$T/x.tar" img:tar)
	echo "dir $d"
	echo "tar $t"
	# every name of the inode keeps the xattr through a checkout
	cairn checkout img:tar "$T/co"
	run tree_compare "$T/src" "$T/co"
	show
	[ "$status" -eq 0 ]
	[ "$d" = "$t" ]
}
