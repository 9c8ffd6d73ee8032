#!/usr/bin/env bash
# Store benchmark: `cairn import` vs `ostree commit` vs the tar|sha256 floor,
# on the same tree in the same run. Writes the "## store" section of
# bench/RESULTS.md.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench; removed at exit)
#   BENCH_FS     auto (default): mount a fresh ext4 image (loop device) on the
#                work dir when possible, else use the work dir as it is;
#                loop: require the fresh ext4; plain: never mount anything
#   BENCH_FS_GB  size of that image in GB (sparse; default 8)
#   TARGET_MB    minimum tree size in MB of regular-file bytes (default 320)
#   RUNS         repetitions per measurement, median reported (default 3)
#   BENCH_STRICT 1 = also exit non-zero when a goal is not met
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 30; the CPU load seen is recorded)
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench}"
TARGET_MB="${TARGET_MB:-320}"
RUNS="${RUNS:-3}"
QUIET_WAIT="${QUIET_WAIT:-30}"
TAG="bench:tree"
GOAL_COLD=5    # cairn cold MB/s >= 5x ostree cold MB/s
GOAL_UNCH=50   # ostree unchanged time >= 50x cairn unchanged time

# Source directories, in order, copied whole until the tree reaches TARGET_MB:
# small Python files first, then larger binaries (gcc), so the tree mixes
# many small files with some big ones, like a real root filesystem.
CANDIDATES=(/usr/lib/python3 /usr/lib/python3.* /usr/lib/git-core /usr/lib/gcc
	/usr/lib/x86_64-linux-gnu /usr/lib/llvm-* /usr/lib/jvm /usr/share)

BENCH_FS="${BENCH_FS:-auto}"
BENCH_FS_GB="${BENCH_FS_GB:-8}"
IMG="$WORK.img"
LOOPDEV=""

cleanup() {
	if mountpoint -q "$WORK" 2>/dev/null; then umount "$WORK" 2>/dev/null || umount -l "$WORK"; fi
	if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" 2>/dev/null || true; LOOPDEV=""; fi
	# A loop device left attached to the image by an interrupted run.
	if [ -e "$IMG" ] && command -v losetup >/dev/null; then
		losetup -j "$IMG" -O NAME -n 2>/dev/null | while read -r d; do losetup -d "$d" || true; done
	fi
	rm -rf "$WORK" "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_cmd ostree ostree
ensure_cmd hyperfine hyperfine
ensure_cmd openssl openssl
ensure_cmd tar tar

cleanup   # leftovers of an interrupted run
mkdir -p "$WORK"

# ---- the work filesystem -----------------------------------------------------
# By default everything (tree, stores, repos) lives on a fresh ext4 filesystem
# (mkfs.ext4 defaults, so journaled, with the inode tables initialised up
# front) in a sparse image next to the work dir, on a loop device with direct
# I/O (without it every byte is written back twice, through the page cache of
# the image file too, which doubled and blurred the cold runs). That makes
# runs repeatable: nothing else on the machine writes or deletes there. It
# matters on hosts whose root filesystem is ext4 without a journal (like the
# CI VM): there, after any process deletes thousands of files, creating files
# is much slower for a while (ext4 re-checks every recently deleted inode on
# each new inode: recently_deleted() in fs/ext4/ialloc.c, 60-300 s,
# journal-less ext4 only).
FS_MODE="plain directory on the host filesystem"
HOST_FS="$(fs_info "$(dirname "$WORK")")"
if [ "$BENCH_FS" != plain ]; then
	if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null &&
		losetup -f >/dev/null 2>&1 && truncate -s "${BENCH_FS_GB}G" "$IMG" &&
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$IMG" &&
		{ LOOPDEV="$(losetup --direct-io=on -f --show "$IMG" 2>/dev/null)" ||
			LOOPDEV="$(losetup -f --show "$IMG")"; } &&
		mount "$LOOPDEV" "$WORK"; then
		dio="$(cat "/sys/block/$(basename "$LOOPDEV")/loop/dio" 2>/dev/null || echo '?')"
		FS_MODE="fresh ext4 image (\`mkfs.ext4 -E lazy_itable_init=0,lazy_journal_init=0\`, ${BENCH_FS_GB} GB sparse) on \`losetup --direct-io=on\` (direct I/O in effect: $([ "$dio" = 1 ] && echo yes || echo "NO ($dio)")), stored on $HOST_FS"
	elif [ "$BENCH_FS" = loop ]; then
		die "cannot mount a fresh ext4 image on $WORK (BENCH_FS=loop)"
	else
		if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" || true; LOOPDEV=""; fi
		rm -f "$IMG"
		log "cannot loop-mount a fresh ext4 image; using $WORK as it is"
	fi
fi
mkdir -p "$WORK/out"
TREE="$WORK/tree"
OUT="$WORK/out"
mkdir -p "$TREE"

# ---- build the tree once ---------------------------------------------------
tree_bytes() { find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
used=()
for src in "${CANDIDATES[@]}"; do
	[ -d "$src" ] || continue
	[ "$(tree_bytes)" -ge $((TARGET_MB * 1000000)) ] && break
	# (Not `cp --parents`: coreutils 9.1 fails copying the parents' ACLs.)
	mkdir -p "$TREE$(dirname "$src")"
	cp -a "$src" "$TREE$(dirname "$src")/"
	used+=("$src")
done
BYTES="$(tree_bytes)"
[ "$BYTES" -ge 300000000 ] || die "could only gather $BYTES bytes for the tree (need >= 300 MB)"
MB="$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"
DU_MB="$(du -s --apparent-size -B1 "$TREE" | awk '{ printf "%.1f", $1 / 1e6 }')"
NFILES="$(find "$TREE" -type f | wc -l)"
NLINKS="$(find "$TREE" -type l | wc -l)"
NDIRS="$(find "$TREE" -type d | wc -l)"
log "tree: $MB MB in $NFILES regular files, $NLINKS symlinks, $NDIRS dirs (from ${used[*]})"

# Warm the page cache: read every file once, so all tools measure hashing and
# writing, not the disk read. (Piped through cat: GNU tar skips reading file
# data when its archive is literally /dev/null.)
sync
tar -C "$TREE" -cf - . | cat >/dev/null

# ---- helpers -----------------------------------------------------------------
# bench NAME PREPARE CMD [WARMUP]: RUNS timed runs of CMD, PREPARE before each
# (untimed), after WARMUP untimed runs (default 0).
# Keeps the CSV, the command line, and the CPU load seen just before.
declare -A CMDLINE MIN MAX BUSY
bench() {
	local name=$1 prep=$2 cmd=$3 warm=${4:-0}
	wait_quiet "$QUIET_WAIT" ||
		NOTES+=("machine was ${QUIET_BUSY}% CPU busy with other work before \`$name\` (waited ${QUIET_WAIT}s); expect noise")
	BUSY[$name]="$QUIET_BUSY"
	log "measuring $name ($RUNS runs)"
	hyperfine --style basic --runs "$RUNS" --warmup "$warm" --prepare "$prep" \
		--export-csv "$OUT/$name.csv" -n "$name" "$cmd" >&2
	CMDLINE[$name]="hyperfine --runs $RUNS$([ "$warm" = 0 ] || echo " --warmup $warm") --prepare '$prep' '$cmd'"
	MIN[$name]="$(awk -F, 'NR==1{for(i=1;i<=NF;i++)if($i=="min")c=i;next}NR==2{printf "%.3f",$c}' "$OUT/$name.csv")"
	MAX[$name]="$(awk -F, 'NR==1{for(i=1;i<=NF;i++)if($i=="max")c=i;next}NR==2{printf "%.3f",$c}' "$OUT/$name.csv")"
}
# aside DIR: shell command moving DIR (if any) into $TRASH, so that the next
# cold run starts from a fresh store without a mass deletion right before it.
# (On journal-less ext4, see above, `rm -rf` between runs made the cold runs
# of cairn and ostree alike 2-6x slower and very noisy.)
aside() { echo "mkdir -p $TRASH && if [ -e $1 ]; then mv $1 $TRASH/\$(date +%s%N); fi"; }
median() { awk '{ printf "%.3f", $1 }' <<<"$(hf_median "$OUT/$1.csv")"; }

FAIL=()     # problems that make the run a failure
NOTES=()    # things worth recording

# ---- cairn -------------------------------------------------------------------
CAIRN_OK=0
CR="$WORK/cairn-cold"   # store used for the cold runs (fresh each run)
TRASH="$WORK/trash"     # cold stores are moved here between runs, see below
CU="$WORK/cairn-unch"   # store used for the unchanged runs (populated once)
if [ ! -x "$CAIRN" ]; then
	FAIL+=("cairn binary $CAIRN not found; cairn not measured")
else
	# Sanity import (also populates the store for the unchanged runs).
	if ! ID1="$("$CAIRN" --root "$CU" import "$TREE" "$TAG" 2>"$OUT/cairn-import.err")"; then
		FAIL+=("\`cairn import\` failed: $(head -c 400 "$OUT/cairn-import.err" | tr '\n' ' ')")
	elif ! grep -Eqx 'sha256:[0-9a-f]{64}' <<<"$ID1"; then
		FAIL+=("\`cairn import\` printed an unexpected image id: $(head -c 200 <<<"$ID1")")
	elif ! "$CAIRN" --root "$CU" fsck >"$OUT/fsck1.out" 2>&1; then
		FAIL+=("\`cairn fsck\` failed after the first import: $(head -c 400 "$OUT/fsck1.out" | tr '\n' ' ')")
	else
		CAIRN_OK=1
	fi
fi
if [ "$CAIRN_OK" = 1 ]; then
	STORE_MB="$(du -s -B1 "$CU" | awk '{ printf "%.1f", $1 / 1e6 }')"
	bench cairn-cold "$(aside "$CR"); sync" "$CAIRN --root $CR import $TREE $TAG"
	# One untimed warm-up re-import (ostree gets one too): the populating
	# import ran within a second of the tree's copy, so the stat cache, like
	# git's index with "racily clean" files, left most files out of it and
	# the first re-import re-reads them. The timed runs are the steady state.
	bench cairn-unchanged "sync" "$CAIRN --root $CU import $TREE $TAG" 1
	# The image id must not depend on the store being cold or warm.
	ID2="$("$CAIRN" --root "$CU" import "$TREE" "$TAG" 2>>"$OUT/cairn-import.err")"
	ID3="$("$CAIRN" --root "$CR" import "$TREE" "$TAG" 2>>"$OUT/cairn-import.err")"
	[ "$ID1" = "$ID2" ] && [ "$ID1" = "$ID3" ] ||
		FAIL+=("image id differs between imports of the same tree: cold $ID1, unchanged $ID2, other store $ID3")
	for r in "$CU" "$CR"; do
		"$CAIRN" --root "$r" fsck >"$OUT/fsck2.out" 2>&1 ||
			FAIL+=("\`cairn fsck\` failed after the timed runs on $(basename "$r"): $(head -c 400 "$OUT/fsck2.out" | tr '\n' ' ')")
	done
fi

# ---- ostree ------------------------------------------------------------------
OR="$WORK/ostree-cold"
OU="$WORK/ostree-unch"
ostree --repo="$OU" init --mode=bare
ostree --repo="$OU" commit --branch=b --tree=dir="$TREE" >/dev/null
bench ostree-cold "$(aside "$OR") && ostree --repo=$OR init --mode=bare && sync" \
	"ostree --repo=$OR commit --branch=b --tree=dir=$TREE"
bench ostree-unchanged "sync" "ostree --repo=$OU commit --branch=b --tree=dir=$TREE" 1
ostree --repo="$OU" fsck --quiet >/dev/null 2>&1 || NOTES+=("ostree fsck of the unchanged repo failed")

# ---- floor -------------------------------------------------------------------
bench floor "sync" "tar -C $TREE -cf - . | openssl dgst -sha256"

# ---- results -----------------------------------------------------------------
names=(floor ostree-cold ostree-unchanged)
[ "$CAIRN_OK" = 1 ] && names=(cairn-cold cairn-unchanged "${names[@]}")
declare -A MED RATE
for n in "${names[@]}"; do
	MED[$n]="$(median "$n")"
	RATE[$n]="$(mbps "$BYTES" "${MED[$n]}")"
done

verdict() { if ge "$1" "$2"; then echo "met"; else echo "NOT met"; fi; }
if [ "$CAIRN_OK" = 1 ]; then
	R_COLD="$(ratio "${RATE[cairn-cold]}" "${RATE[ostree-cold]}")"
	R_UNCH="$(ratio "${MED[ostree-unchanged]}" "${MED[cairn-unchanged]}")"
	R_FLOOR="$(ratio "${RATE[cairn-cold]}" "${RATE[floor]}")"
	V_COLD="$(verdict "$R_COLD" "$GOAL_COLD")"
	V_UNCH="$(verdict "$R_UNCH" "$GOAL_UNCH")"
fi

label() {
	case $1 in
	cairn-cold) echo "cairn import, cold (fresh store)" ;;
	cairn-unchanged) echo "cairn import, unchanged re-import" ;;
	ostree-cold) echo "ostree commit, cold (fresh bare repo)" ;;
	ostree-unchanged) echo "ostree commit, unchanged re-commit" ;;
	floor) echo "floor: tar \| openssl dgst -sha256" ;;
	esac
}

# Terminal table.
{
	printf '\nstore benchmark: %s MB (regular-file bytes), %s files, median of %s runs\n' "$MB" "$NFILES" "$RUNS"
	printf '%-40s %10s %10s\n' "measurement" "median s" "MB/s"
	for n in "${names[@]}"; do
		printf '%-40s %10s %10s\n' "$(label "$n" | sed 's/\\|/|/')" "${MED[$n]}" "${RATE[$n]}"
	done
	if [ "$CAIRN_OK" = 1 ]; then
		printf 'cold:      cairn/ostree MB/s = %sx (goal >= %sx: %s)\n' "$R_COLD" "$GOAL_COLD" "$V_COLD"
		printf 'unchanged: ostree/cairn time = %sx (goal >= %sx: %s)\n' "$R_UNCH" "$GOAL_UNCH" "$V_UNCH"
		printf 'cold cairn vs floor MB/s     = %sx\n' "$R_FLOOR"
	fi
	for f in "${FAIL[@]+"${FAIL[@]}"}"; do printf 'FAILURE: %s\n' "$f"; done
	for f in "${NOTES[@]+"${NOTES[@]}"}"; do printf 'note: %s\n' "$f"; done
	echo
} >&2

# RESULTS.md section.
REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || REV="$REV (working tree differs)"
SEC="$OUT/section.md"
{
	echo "## store"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Machine: $(machine_info "$WORK"); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- Work filesystem: $FS_MODE"
	echo "- cairn: \`$CAIRN\`, source revision $REV"
	echo "- Peers: $(ostree --version | awk '/Version:/ { gsub("\x27", ""); print "ostree " $2 }'), $(hyperfine --version), $(openssl version | cut -d' ' -f1-2), $(tar --version | head -1)"
	echo "- Tree: **$MB MB** = sum of regular-file sizes (MB = 10^6 bytes; \`du --apparent-size\` says $DU_MB MB), $NFILES regular files, $NLINKS symlinks, $NDIRS directories; a \`cp -a\` copy of ${used[*]} (same paths) under \`$TREE\`"
	echo "- Method: the tree is built once; before timing, its page cache is warmed by reading it once (\`tar -cf - . | cat >/dev/null\`), so every tool measures hashing and writing, not reading the disk. Every measurement is $RUNS runs with hyperfine, median reported; \`sync\` runs before each timed run (untimed). Cold runs start from a fresh store / fresh \`ostree init --mode=bare\` repo each time; the previous run's store is moved aside (\`mv\`, deleted at the end), not \`rm -rf\`ed: on ext4 without a journal, for 60-300 s after a mass deletion every new inode re-checks the recently deleted ones (\`recently_deleted()\` in fs/ext4/ialloc.c), which made cold runs of both tools 2-6x slower and very noisy. For the same reason the work dir is, by default, a fresh journaled ext4 image (see Work filesystem) so other processes deleting files on the host cannot disturb it. Before each measurement the script waits (at most ${QUIET_WAIT} s) for the machine to be idle; the CPU busy % seen just before is in the table. Unchanged runs re-import / re-commit the same tree into a store that already holds it (populated once before timing, plus one untimed warm-up re-import / re-commit for each tool: the populating import runs within a second of the tree's copy, so cairn's stat cache leaves those "racily clean" files out, as git's index does, and the first re-import re-reads them). MB/s = tree MB / median seconds, for every row."
	[ "$CAIRN_OK" = 1 ] && echo "- cairn store after one import: $STORE_MB MB on disk; image id \`$ID1\` (identical across cold, unchanged and second-store imports: $([ "$ID1" = "${ID2:-}" ] && [ "$ID1" = "${ID3:-}" ] && echo yes || echo NO))"
	echo
	echo "| measurement | median s | MB/s | min s | max s | CPU busy before |"
	echo "|---|---:|---:|---:|---:|---:|"
	for n in "${names[@]}"; do
		echo "| $(label "$n") | ${MED[$n]} | ${RATE[$n]} | ${MIN[$n]} | ${MAX[$n]} | ${BUSY[$n]}% |"
	done
	echo
	if [ "$CAIRN_OK" = 1 ]; then
		echo "| ratio | value | goal | |"
		echo "|---|---:|---:|---|"
		echo "| cold: cairn MB/s / ostree MB/s | ${R_COLD}x | >= ${GOAL_COLD}x | $V_COLD |"
		echo "| unchanged: ostree time / cairn time | ${R_UNCH}x | >= ${GOAL_UNCH}x | $V_UNCH |"
		echo "| cold: cairn MB/s / floor MB/s | ${R_FLOOR}x | (information) | |"
		echo
	fi
	if [ "${#FAIL[@]}" -gt 0 ] || [ "${#NOTES[@]}" -gt 0 ]; then
		for f in "${FAIL[@]+"${FAIL[@]}"}"; do echo "- **FAILURE:** $f"; done
		for f in "${NOTES[@]+"${NOTES[@]}"}"; do echo "- Note: $f"; done
		echo
	fi
	echo "Commands (\`bench/store/run.sh\`; \`\$W\` = \`@WORK@\`):"
	echo
	echo '```sh'
	if [ -n "$LOOPDEV" ]; then
		echo "truncate -s ${BENCH_FS_GB}G \$W.img && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \$W.img"
		echo "mount \$(losetup --direct-io=on -f --show \$W.img) \$W"
	fi
	for src in "${used[@]}"; do echo "mkdir -p \$W/tree$(dirname "$src") && cp -a $src \$W/tree$(dirname "$src")/"; done
	echo "tar -C \$W/tree -cf - . | cat >/dev/null   # warm the page cache"
	if [ "$CAIRN_OK" = 1 ]; then
		echo "$CAIRN --root \$W/cairn-unch import \$W/tree $TAG   # populate, then fsck"
		echo "${CMDLINE[cairn-cold]}"
		echo "${CMDLINE[cairn-unchanged]}"
	fi
	echo "ostree --repo=\$W/ostree-unch init --mode=bare && ostree --repo=\$W/ostree-unch commit --branch=b --tree=dir=\$W/tree   # populate"
	echo "${CMDLINE[ostree-cold]}"
	echo "${CMDLINE[ostree-unchanged]}"
	echo "${CMDLINE[floor]}"
	echo '```'
} | sed "s#$WORK#\$W#g; s#@WORK@#$WORK#" >"$SEC"
results_put_section store "$SEC"
log "wrote section \"## store\" of $RESULTS_MD"

if [ "${#FAIL[@]}" -gt 0 ]; then exit 1; fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$CAIRN_OK" = 1 ] &&
	{ [ "$V_COLD" != met ] || [ "$V_UNCH" != met ]; }; then
	exit 1
fi
exit 0
