#!/bin/bash
# Makes a small root filesystem from Debian's busybox-static: /bin/busybox and
# its applets as symlinks, /etc/passwd and /etc/group, a web root. Used by the
# demo and the tests as "a sample root filesystem".
# Usage: examples/mkrootfs.sh DIR
set -euo pipefail
dir=${1:?usage: mkrootfs.sh DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "mkrootfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir"/{bin,sbin,etc,tmp,run,proc,sys,dev,var/log,www,root}
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nwww:x:33:\nnogroup:x:65534:\n' >"$dir/etc/group"
printf 'hello from cairn\n' >"$dir/www/index.html"
chown -R 33:33 "$dir/www"
