#!/usr/bin/env bash
# The untimed steps of bench/build/run.sh, run by hyperfine --prepare before
# each timed build (and by run.sh itself). Every action ends with `sync`, so
# the previous run's dirty pages are not written back during the timed one.
#
#   prep.sh cairn-fresh CAIRN STORE TRASH ROOTFS
#       a fresh cairn store holding only the base image: the old STORE is
#       moved into TRASH (not deleted: see the note in run.sh), then
#       `cairn --root STORE import ROOTFS busybox:bench`
#   prep.sh buildah-fresh ROOT RUNROOT TRASH ROOTFS_TAR
#       fresh buildah storage (overlay driver) holding only the base image:
#       the old ROOT and RUNROOT are moved into TRASH, then
#       `buildah from scratch`, `buildah add` of the rootfs tar, `buildah
#       commit` to localhost/busybox:bench, `buildah rm`
#   prep.sh touch FILE
#       change the content of FILE (its first bytes become the current time
#       in nanoseconds; the size stays the same)
#   prep.sh sync
#       only sync
set -euo pipefail

aside() {   # aside DIR TRASH
	mkdir -p "$2"
	if [ -e "$1" ]; then mv "$1" "$2/$(date +%s%N)-$(basename "$1")"; fi
}
umount_under() {   # every mount at or below $1, deepest first
	findmnt -rn -o TARGET 2>/dev/null | awk -v w="$1" '$0 == w || index($0, w "/") == 1' |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}

case ${1:-} in
cairn-fresh)
	[ $# = 5 ] || { echo "usage: prep.sh cairn-fresh CAIRN STORE TRASH ROOTFS" >&2; exit 2; }
	aside "$3" "$4"
	if ! out="$("$2" --root "$3" import "$5" busybox:bench 2>&1 >/dev/null)"; then
		printf '%s\n' "$out" >&2
		exit 1
	fi
	;;
buildah-fresh)
	[ $# = 5 ] || { echo "usage: prep.sh buildah-fresh ROOT RUNROOT TRASH ROOTFS_TAR" >&2; exit 2; }
	umount_under "$2"
	umount_under "$3"
	aside "$2" "$4"
	aside "$3" "$4"
	B=(buildah --root "$2" --runroot "$3" --storage-driver overlay)
	ctr="$("${B[@]}" from scratch)"
	"${B[@]}" add "$ctr" "$5" / >/dev/null
	"${B[@]}" commit -q "$ctr" localhost/busybox:bench >/dev/null
	"${B[@]}" rm "$ctr" >/dev/null
	;;
touch)
	[ $# = 2 ] || { echo "usage: prep.sh touch FILE" >&2; exit 2; }
	date +%s%N | dd of="$2" conv=notrunc status=none
	;;
sync) ;;
*)
	echo "usage: prep.sh cairn-fresh|buildah-fresh|touch|sync ..." >&2
	exit 2
	;;
esac
sync
