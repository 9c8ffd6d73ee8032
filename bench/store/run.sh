#!/usr/bin/env bash
# Store benchmark: `cairn import` vs `ostree commit` vs the tar|sha256 floor,
# on the same tree in the same run. Writes the "## store" section of
# bench/RESULTS.md.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench; removed at exit)
#   TARGET_MB    minimum tree size in MB of regular-file bytes (default 320)
#   RUNS         repetitions per measurement, median reported (default 3)
#   BENCH_STRICT 1 = also exit non-zero when a goal is not met
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 60; the CPU load seen is recorded)
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench}"
TARGET_MB="${TARGET_MB:-320}"
RUNS="${RUNS:-3}"
QUIET_WAIT="${QUIET_WAIT:-60}"
TAG="bench:tree"
GOAL_COLD=5    # cairn cold MB/s >= 5x ostree cold MB/s
GOAL_UNCH=50   # ostree unchanged time >= 50x cairn unchanged time

# Source directories, in order, copied whole until the tree reaches TARGET_MB:
# small Python files first, then larger binaries (gcc), so the tree mixes
# many small files with some big ones, like a real root filesystem.
CANDIDATES=(/usr/lib/python3 /usr/lib/python3.* /usr/lib/git-core /usr/lib/gcc
	/usr/lib/x86_64-linux-gnu /usr/lib/llvm-* /usr/lib/jvm /usr/share)

cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_cmd ostree ostree
ensure_cmd hyperfine hyperfine
ensure_cmd openssl openssl
ensure_cmd tar tar

rm -rf "$WORK"
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
# bench NAME PREPARE CMD: RUNS timed runs of CMD, PREPARE before each (untimed).
# Keeps the CSV, the command line, and the CPU load seen just before.
declare -A CMDLINE MIN MAX BUSY
bench() {
	local name=$1 prep=$2 cmd=$3
	wait_quiet "$QUIET_WAIT" ||
		NOTES+=("machine was ${QUIET_BUSY}% CPU busy with other work before \`$name\` (waited ${QUIET_WAIT}s); expect noise")
	BUSY[$name]="$QUIET_BUSY"
	log "measuring $name ($RUNS runs)"
	hyperfine --style basic --runs "$RUNS" --prepare "$prep" \
		--export-csv "$OUT/$name.csv" -n "$name" "$cmd" >&2
	CMDLINE[$name]="hyperfine --runs $RUNS --prepare '$prep' '$cmd'"
	MIN[$name]="$(awk -F, 'NR==1{for(i=1;i<=NF;i++)if($i=="min")c=i;next}NR==2{printf "%.3f",$c}' "$OUT/$name.csv")"
	MAX[$name]="$(awk -F, 'NR==1{for(i=1;i<=NF;i++)if($i=="max")c=i;next}NR==2{printf "%.3f",$c}' "$OUT/$name.csv")"
}
# aside DIR: shell command moving DIR (if any) into $TRASH, so that the next
# cold run starts from a fresh store without a mass deletion right before it.
# (After deleting thousands of inodes, ext4's inode allocator re-checks the
# recently deleted ones on every new file, for 60-300 s: recently_deleted()
# in fs/ext4/ialloc.c. With `rm -rf` between runs that cost dominated the cold
# runs, 2-4x slower and very noisy, for cairn and ostree alike.)
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
	bench cairn-unchanged "sync" "$CAIRN --root $CU import $TREE $TAG"
	# The image id must not depend on the store being cold or warm.
	ID2="$("$CAIRN" --root "$CU" import "$TREE" "$TAG")"
	ID3="$("$CAIRN" --root "$CR" import "$TREE" "$TAG")"
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
bench ostree-unchanged "sync" "ostree --repo=$OU commit --branch=b --tree=dir=$TREE"
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
	echo "- cairn: \`$CAIRN\`, source revision $REV"
	echo "- Peers: $(ostree --version | awk '/Version:/ { gsub("\x27", ""); print "ostree " $2 }'), $(hyperfine --version), $(openssl version | cut -d' ' -f1-2), $(tar --version | head -1)"
	echo "- Tree: **$MB MB** = sum of regular-file sizes (MB = 10^6 bytes; \`du --apparent-size\` says $DU_MB MB), $NFILES regular files, $NLINKS symlinks, $NDIRS directories; a \`cp -a\` copy of ${used[*]} (same paths) under \`$TREE\`"
	echo "- Method: the tree is built once; before timing, its page cache is warmed by reading it once (\`tar -cf - . | cat >/dev/null\`), so every tool measures hashing and writing, not reading the disk. Every measurement is $RUNS runs with hyperfine, median reported; \`sync\` runs before each timed run (untimed). Cold runs start from a fresh store / fresh \`ostree init --mode=bare\` repo each time; the previous run's store is moved aside (\`mv\`, deleted at the end), not \`rm -rf\`ed, because right after a mass deletion ext4 re-checks every recently deleted inode on each new file (\`recently_deleted()\` in fs/ext4/ialloc.c, for 60-300 s), which made cold runs of both tools 2-4x slower and very noisy. Before each measurement the script waits (at most ${QUIET_WAIT} s) for the machine to be idle; the CPU busy % seen just before is in the table. Unchanged runs re-import / re-commit the same tree into a store that already holds it (populated once before timing). MB/s = tree MB / median seconds, for every row."
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
