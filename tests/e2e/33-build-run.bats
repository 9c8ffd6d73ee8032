#!/usr/bin/env bats
# cairn build: what a RUN step does to the image. Files it adds, changes and
# deletes (whiteouts), directories it replaces or empties and refills (opaque
# directories), hardlinks, symlinks, modes and owners, /tmp; and that a RUN
# step sees nothing of the host.

load helpers
load build_helpers

setup_file() {
	build_setup_file
}

setup() {
	build_setup
}

teardown() {
	build_teardown
}

@test "build RUN: added, changed and deleted files show in the image" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo added > /added.txt \
 && echo appended >> /www/index.html \
 && rm /etc/group \
 && rm /bin/vi
RUN rm /added.txt && echo second > /second.txt
RUN echo back > /etc/group
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ ! -e "$d/added.txt" ]
	[ "$(cat "$d/second.txt")" = second ]
	[ "$(cat "$d/www/index.html")" = "$(printf 'hello from cairn\nappended')" ]
	[ "$(cat "$d/etc/group")" = back ]
	[ ! -e "$d/bin/vi" ] && [ ! -L "$d/bin/vi" ]
	# everything else of the base is still there, unchanged
	[ -L "$d/bin/sh" ]
	cmp "$BUILD_ROOTFS/etc/passwd" "$d/etc/passwd"
	# cairn verify agrees with the checkout
	run cairn verify "$ID" "$d"
	show
	[ "$status" -eq 0 ]
}

@test "build RUN: a later RUN sees what earlier RUN steps deleted, replaced and added" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN rm /etc/group && rm -rf /www && mkdir /www && echo new > /www/new
RUN echo x > /x && rm /bin/vi && mkdir -p /d/e && echo 1 > /d/e/f
RUN rm -rf /d && mkdir -p /d/e && echo 2 > /d/e/g
RUN (ls -A /www; test -e /etc/group && echo group-visible; \
     test -e /bin/vi && echo vi-visible; cat /x; find /d | sort) > /seen.txt
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/seen.txt")" = "$(printf 'new\nx\n/d\n/d/e\n/d/e/g')" ]
	[ "$(files_in "$d/d")" = "$(printf 'e/\ne/g')" ]
	# no overlay bookkeeping (opaque directories, whiteouts) in the image
	python3 -c '
import os, sys
for dp, dns, fns in os.walk(sys.argv[1]):
    for n in [dp] + [os.path.join(dp, f) for f in fns]:
        for x in os.listxattr(n, follow_symlinks=False):
            if x.startswith("trusted.overlay") or x.startswith("user.overlay"):
                sys.exit("%s has %s" % (n, x))
' "$d"
	[ -z "$(find "$d" -type c)" ]
}

@test "build RUN: a directory replaced by a file, a file by a directory, a symlink by a directory" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN rm -rf /var/log && echo now-a-file > /var/log \
 && rm /etc/passwd && mkdir /etc/passwd && echo inside > /etc/passwd/f \
 && rm /bin/ls && mkdir /bin/ls && ln -s ../busybox /bin/ls/busybox
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ -f "$d/var/log" ]
	[ "$(cat "$d/var/log")" = now-a-file ]
	[ -d "$d/etc/passwd" ]
	[ "$(cat "$d/etc/passwd/f")" = inside ]
	[ -d "$d/bin/ls" ] && [ ! -L "$d/bin/ls" ]
	[ "$(readlink "$d/bin/ls/busybox")" = ../busybox ]
}

@test "build RUN: rm -rf of a base directory then recreating it leaves only the new content" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN mkdir -p /www/sub/deeper && echo old > /www/sub/deeper/old.txt
RUN rm -rf /www && mkdir -p /www/sub && echo new > /www/sub/new.txt && chmod 0710 /www
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(files_in "$d/www")" = "$(printf 'sub/\nsub/new.txt')" ]
	[ "$(cat "$d/www/sub/new.txt")" = new ]
	# the new directory is root's (the old one was www's) with its new mode
	[ "$(stat -c '%a %u:%g' "$d/www")" = "710 0:0" ]
}

@test "build RUN: hardlinks made by RUN stay hardlinks, also to a file of the base" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN mkdir -p /data/a /data/b \
 && echo shared > /data/a/one \
 && ln /data/a/one /data/b/two \
 && ln /data/a/one /data/three \
 && ln /etc/passwd /data/passwd-link
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/data/b/two")" = shared ]
	[ "$(stat -c %i "$d/data/a/one")" = "$(stat -c %i "$d/data/b/two")" ]
	[ "$(stat -c %i "$d/data/a/one")" = "$(stat -c %i "$d/data/three")" ]
	[ "$(stat -c %i "$d/etc/passwd")" = "$(stat -c %i "$d/data/passwd-link")" ]
	cmp "$BUILD_ROOTFS/etc/passwd" "$d/data/passwd-link"
	# a second build from this image sees the group and can break it
	dockerfile "$c" <<EOF
FROM $ID
RUN echo changed > /data/b/two.new && mv /data/b/two.new /data/b/two
EOF
	build_ok "$c"
	d=$(co "$ID")
	[ "$(cat "$d/data/a/one")" = shared ]
	[ "$(cat "$d/data/b/two")" = changed ]
	[ "$(stat -c %i "$d/data/a/one")" = "$(stat -c %i "$d/data/three")" ]
}

@test "build RUN: modes, owners, setuid bits and symlinks made by RUN are kept" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo x > /suid && chmod 4755 /suid \
 && mkdir /sticky && chmod 1777 /sticky \
 && echo y > /owned && chown 33:65534 /owned \
 && chmod 0600 /www/index.html \
 && ln -s /etc/passwd /abs-link && ln -s ../dangling /rel-link
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(stat -c %a "$d/suid")" = 4755 ]
	[ "$(stat -c %a "$d/sticky")" = 1777 ]
	[ "$(stat -c %u:%g "$d/owned")" = 33:65534 ]
	[ "$(stat -c '%a %u:%g' "$d/www/index.html")" = "600 33:33" ]
	[ "$(readlink "$d/abs-link")" = /etc/passwd ]
	[ "$(readlink "$d/rel-link")" = ../dangling ]
}

@test "build RUN: what a RUN writes to /tmp stays in the image" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo kept > /tmp/kept.txt && mkdir -p /tmp/dir && echo x > /tmp/dir/x
RUN cat /tmp/kept.txt > /tmp/seen-by-next-step
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/tmp/kept.txt")" = kept ]
	[ "$(cat "$d/tmp/dir/x")" = x ]
	[ "$(cat "$d/tmp/seen-by-next-step")" = kept ]
	[ "$(stat -c %a "$d/tmp")" = 1777 ]
}

@test "build RUN: a RUN step cannot see the host: hostname, /etc/hostname, files, processes" {
	local marker="$T/host-only-$RANDOM$RANDOM"
	echo secret >"$marker"
	local c
	c=$(ctx c)
	dockerfile "$c" <<EOF
FROM busybox:test
RUN hostname > /uts.txt \
 && (cat /etc/hostname 2>/dev/null || echo none) > /etc-hostname.txt \
 && (test -e "$marker" && echo visible || echo absent) > /marker.txt \
 && (test -e /work && echo visible || echo absent) > /work.txt \
 && ls /proc | grep -c '^[0-9]' > /nprocs.txt \
 && env > /env.txt
EOF
	HOST_ONLY_VARIABLE=leaked build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/uts.txt")" != "$(hostname)" ]
	[ -s "$d/uts.txt" ]
	if [ -s /etc/hostname ]; then
		[ "$(cat "$d/etc-hostname.txt")" != "$(cat /etc/hostname)" ]
	fi
	[ "$(cat "$d/marker.txt")" = absent ]
	[ "$(cat "$d/work.txt")" = absent ]
	# its own pid namespace: a handful of processes, not the host's
	[ "$(cat "$d/nprocs.txt")" -lt 10 ]
	# nor the environment of the cairn command
	[[ "$(cat "$d/env.txt")" != *HOST_ONLY_VARIABLE* ]]
	grep -qx 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$d/env.txt"
	# and none of it leaked into the host's files
	[ "$(cat "$marker")" = secret ]
}

@test "build RUN: the default network is private: loopback only" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN ls /sys/class/net | sort > /ifaces.txt
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/ifaces.txt")" = lo ]
}

@test "build RUN: many RUN steps in a row, in a store at a long path" {
	# a store path of about 200 characters
	ROOT=$T/$(printf 'long-store-path-%.0s' $(seq 1 11))/root
	import_id "$BUILD_ROOTFS" busybox:test -q >/dev/null
	local c
	c=$(ctx c)
	{
		echo 'FROM busybox:test'
		for i in $(seq 1 40); do
			echo "RUN echo $i > /f$i && (cat /f$((i - 1)) /f$i > /sum$i 2>/dev/null || true)"
		done
	} | dockerfile "$c"
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/f40")" = 40 ]
	[ "$(cat "$d/sum40")" = "$(printf '39\n40')" ]
	[ -z "$(staging_leftovers)" ]
}
