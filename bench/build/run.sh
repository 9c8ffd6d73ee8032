#!/usr/bin/env bash
# Build benchmark (issue "cairn build"): the same Dockerfiles built, in the
# same run, by `cairn build` and by `buildah bud --layers`, from the same
# busybox-static base image made locally (nothing is pulled):
#   trivial   FROM busybox:bench, COPY a small file, RUN echo
#   ten-RUN   FROM busybox:bench, COPY a small file, ten RUN echo N > /fN
#   COPY-heavy FROM busybox:bench, COPY . /app of a generated context of
#             CONTEXT_MB MB (thousands of random files of varied sizes plus
#             a few big ones)
# each in three states:
#   cold      a fresh store / fresh buildah storage holding only the base image
#   cached    a rebuild with nothing changed, in a store that built it before
#   touched   a rebuild after the content of one COPY'd file changed
# Medians (hyperfine), ratios buildah/cairn and cairn's phase timings
# (CAIRN_TRACE=1) go to the terminal and to the "## build" section of
# bench/RESULTS.md.
#
# Environment:
#   CAIRN        cairn binary (default: <repo>/build/cairn)
#   BENCH_WORK   work dir (default: /var/tmp/cairn-bench-build; removed at exit)
#   BENCH_FS     auto (default): mount a fresh ext4 image (loop device) on the
#                work dir when possible, else use the work dir as it is;
#                loop: require the fresh ext4; plain: never mount anything
#   BENCH_FS_GB  size of that image in GB (sparse; default 16)
#   CONTEXT_MB   size of the COPY-heavy context in MB (default 220, min 200)
#   RUNS         timed runs of the small Dockerfiles, cold and touched (default 10)
#   RUNS_CACHED  timed runs of every fully cached rebuild (default 20)
#   RUNS_HEAVY   timed runs of the COPY-heavy cold and touched builds (default 5)
#   TRACE_RUNS   runs of `CAIRN_TRACE=1 cairn build` per state (default 3; 0 = skip)
#   QUIET_WAIT   max seconds to wait for an idle machine before each
#                measurement (default 30; the CPU load seen is recorded)
#   BENCH_STRICT 1 = also exit non-zero when a goal is not met
set -euo pipefail

. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
PREP="$HERE/prep.sh"
CAIRN="${CAIRN:-$REPO_ROOT/build/cairn}"
case "$CAIRN" in /*) ;; */*) CAIRN="$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" ;; esac
WORK="${BENCH_WORK:-/var/tmp/cairn-bench-build}"
BENCH_FS="${BENCH_FS:-auto}"
BENCH_FS_GB="${BENCH_FS_GB:-16}"
CONTEXT_MB="${CONTEXT_MB:-220}"
RUNS="${RUNS:-10}"
RUNS_CACHED="${RUNS_CACHED:-20}"
RUNS_HEAVY="${RUNS_HEAVY:-5}"
TRACE_RUNS="${TRACE_RUNS:-3}"
QUIET_WAIT="${QUIET_WAIT:-30}"
[ "$CONTEXT_MB" -ge 200 ] || die "CONTEXT_MB must be at least 200"
for n in "$RUNS" "$RUNS_CACHED" "$RUNS_HEAVY"; do
	[ "$n" -ge 5 ] || die "RUNS, RUNS_CACHED and RUNS_HEAVY must be at least 5"
done
GOAL_CACHED=10      # buildah cached time / cairn cached time, every Dockerfile
GOAL_TRIVIAL_MS=20  # cairn's cached trivial rebuild, ms
GOAL_COLD_HEAVY=3   # buildah cold COPY-heavy time / cairn's
[ "$(id -u)" = 0 ] || die "the build benchmark needs root (cairn build and buildah run RUN steps in containers)"

IMG="$WORK.img"
LOOPDEV=""

# Host paths buildah (and crun under it) create on first use, outside the
# work dir. Whatever of these did not exist before the run is removed at exit.
HOST_PATHS=(/run/crun /run/runc /run/containers /run/libpod /var/lib/containers
	/etc/containers/networks /etc/cni/net.d/cni.lock)
# cairn's parent cgroups in every hierarchy (cairn removes its build
# instances' cgroups itself): rmdir'ed at exit when this run created them.
CG_PARENTS=()
for h in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do CG_PARENTS+=("$h/cairn"); done
declare -A PREEXISTING
for p in "${HOST_PATHS[@]}" "${CG_PARENTS[@]}"; do
	if [ -e "$p" ]; then PREEXISTING[$p]=1; fi
done
# Top-level cgroups that exist now, to name any a tool leaves behind.
cg_top() { for h in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do find "$h" -mindepth 1 -maxdepth 1 -type d; done | sort; }
CG_BEFORE="$(cg_top)"

export CONTAINERS_CONF="$WORK/containers.conf"
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf"

umount_under() {   # every mount at or below $1, deepest first
	findmnt -rn -o TARGET 2>/dev/null | awk -v w="$1" '$0 == w || index($0, w "/") == 1' |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
cleanup() {
	set +e
	if [ -d "$WORK" ] && command -v buildah >/dev/null; then
		for r in "$WORK"/buildah-*-root; do
			[ -d "$r" ] || continue
			buildah --root "$r" --runroot "${r%-root}-run" --storage-driver overlay rm -a >/dev/null 2>&1
		done
	fi
	for m in "$WORK"/cgroup-v1-*; do   # the hierarchies mounted for crun, emptied first
		mountpoint -q "$m" 2>/dev/null && find "$m" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -d "$WORK" ] && umount_under "$WORK"
	if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" 2>/dev/null; LOOPDEV=""; fi
	if [ -e "$IMG" ] && command -v losetup >/dev/null; then   # left by an interrupted run
		losetup -j "$IMG" -O NAME -n 2>/dev/null | while read -r d; do losetup -d "$d"; done
	fi
	rm -rf "$WORK" "$IMG"
	for p in "${HOST_PATHS[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || rm -rf "$p"
	done
	for p in "${CG_PARENTS[@]}"; do
		[ -n "${PREEXISTING[$p]:-}" ] || rmdir "$p" 2>/dev/null
	done
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- peers -----------------------------------------------------------------------
# apt-get update once, first, when anything is missing (there may be no
# network: then whatever is installed already is what runs).
need_pkgs=()
for pair in hyperfine:hyperfine buildah:buildah python3:python3 mkfs.ext4:e2fsprogs; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need_pkgs+=(busybox-static)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || log "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null ||
		die "apt-get install ${need_pkgs[*]} failed"
fi
for c in hyperfine buildah python3; do command -v "$c" >/dev/null || die "$c missing"; done

cleanup   # leftovers of an interrupted run
mkdir -p "$WORK"

# ---- the work filesystem -----------------------------------------------------------
# As in bench/store/run.sh: by default everything (contexts, stores, buildah
# storage) lives on a fresh journaled ext4 filesystem in a sparse image on a
# loop device with direct I/O, so other processes deleting files on the host
# cannot disturb the runs (on journal-less ext4, after a mass deletion every
# new inode re-checks the recently deleted ones for 60-300 s:
# recently_deleted() in fs/ext4/ialloc.c). Between cold runs the previous
# store is moved aside, never deleted, for the same reason.
FS_MODE="plain directory on the host filesystem"
HOST_FS="$(fs_info "$(dirname "$WORK")")"
if [ "$BENCH_FS" != plain ]; then
	if command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null &&
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
OUT="$WORK/out"
TRASH="$WORK/trash"
# buildah writes temporary files (layer diffs, blobs) under $TMPDIR: keep them
# on the work filesystem too. (cairn uses $ROOT/tmp whatever TMPDIR says.)
export TMPDIR="$WORK/tmp"
mkdir -p "$OUT" "$TRASH" "$TMPDIR"
FAIL=()     # problems that make the run a failure
NOTES=()    # things worth recording

# ---- hybrid cgroups: as in bench/runtime/run.sh. crun 1.8 (buildah's runtime
# here) refuses to run while the cgroup2 hierarchy of a hybrid host holds
# controllers ("cgroups in hybrid mode not supported, drop all controllers
# from cgroupv2"), so every RUN step of buildah failed. For the benchmark
# only, those controllers get a v1 hierarchy under the work dir, which moves
# them out of cgroup2; unmounted at exit.
CGMODE="v1"
[ -e /sys/fs/cgroup/cgroup.controllers ] && CGMODE="v2 (unified)"
V1_MOUNTED=()
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
	[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	CGMODE="hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified holding: $(tr -s ' \n' ' ' </sys/fs/cgroup/unified/cgroup.controllers | sed 's/ $//;s/^$/nothing/'))"
	for ctl in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
		mkdir -p "$WORK/cgroup-v1-$ctl"
		if mount -t cgroup -o "$ctl" cgroup "$WORK/cgroup-v1-$ctl"; then
			V1_MOUNTED+=("$ctl")
		else
			NOTES+=("could not mount a v1 hierarchy for the $ctl controller; crun (buildah's RUN) may refuse to start")
		fi
	done
fi

# ---- buildah: its configuration and storage all in the work dir -------------------
cat >"$CONTAINERS_CONF" <<EOF
[network]
network_config_dir = "$WORK/buildah-net"

[engine]
cgroup_manager = "cgroupfs"
tmp_dir = "$WORK/tmp"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/buildah-default-root"
runroot = "$WORK/buildah-default-run"
EOF

# ---- cairn: a copy of the binary (src/ may be rebuilt while this runs) ------------
CAIRN_SRC="$CAIRN"
REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || REV="$REV (src/ differs from it)"
[ -x "$CAIRN_SRC" ] || die "cairn binary $CAIRN_SRC not found (ninja -C build)"
cp "$CAIRN_SRC" "$WORK/cairn-bin"
CAIRN="$WORK/cairn-bin"
CAIRN_BUILT="$(date -u -r "$CAIRN_SRC" '+%Y-%m-%d %H:%M:%S UTC')"
CAIRN_SUM="$(sha256sum "$CAIRN" | cut -c1-12)"

# ---- the base image: busybox-static, the same files for both tools ----------------
ROOTFS="$WORK/rootfs"
ROOTFS_TAR="$WORK/rootfs.tar"
"$REPO_ROOT/examples/mkrootfs.sh" "$ROOTFS"
tar -C "$ROOTFS" --numeric-owner -cf "$ROOTFS_TAR" .
ROOTFS_FILES="$(find "$ROOTFS" | wc -l)"
ROOTFS_KB="$(du -s -k "$ROOTFS" | cut -f1)"

# ---- the contexts and their Dockerfiles ------------------------------------------
CTX="$WORK/ctx"
mkdir -p "$CTX/trivial" "$CTX/tenrun" "$CTX/heavy"
printf 'hello from the build benchmark\n' >"$CTX/trivial/hello.txt"
cat >"$CTX/trivial/Dockerfile" <<'EOF'
FROM busybox:bench
COPY hello.txt /hello.txt
RUN echo built > /built
EOF
printf 'stamp of the ten-RUN build benchmark\n' >"$CTX/tenrun/stamp.txt"
{
	echo 'FROM busybox:bench'
	echo 'COPY stamp.txt /stamp.txt'
	for i in $(seq 1 10); do echo "RUN echo $i > /f$i"; done
} >"$CTX/tenrun/Dockerfile"
cat >"$CTX/heavy/Dockerfile" <<'EOF'
FROM busybox:bench
COPY . /app
EOF
# COPY-heavy: 4000 files of 64 B .. 256 KB (log-uniform sizes, a fixed seed)
# in 40 directories, random content from os.urandom (/dev/urandom), plus 4
# big files that bring the total to CONTEXT_MB.
python3 - "$CTX/heavy" "$CONTEXT_MB" <<'PY'
import math, os, random, sys
root, target = sys.argv[1], int(sys.argv[2]) * 1000 * 1000
rng = random.Random(20261126)
total = 0
for i in range(4000):
    d = os.path.join(root, "src", "d%02d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    size = int(math.exp(rng.uniform(math.log(64), math.log(256 * 1024))))
    with open(os.path.join(d, "f%04d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
    total += size
os.makedirs(os.path.join(root, "assets"), exist_ok=True)
big = max(1, (target - total + 3) // 4)
for i in range(4):
    with open(os.path.join(root, "assets", "big%d.bin" % i), "wb") as f:
        left = big
        while left > 0:
            n = min(left, 1 << 22)
            f.write(os.urandom(n))
            left -= n
PY
declare -A TOUCH=([trivial]="$CTX/trivial/hello.txt" [tenrun]="$CTX/tenrun/stamp.txt"
	[heavy]="$CTX/heavy/src/d07/f0007.bin")
HEAVY_BYTES="$(find "$CTX/heavy" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
HEAVY_FILES="$(find "$CTX/heavy" -type f | wc -l)"
HEAVY_DIRS="$(find "$CTX/heavy" -type d | wc -l)"
HEAVY_MB="$(awk -v b="$HEAVY_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"
[ "$HEAVY_BYTES" -ge 200000000 ] || die "the COPY-heavy context is only $HEAVY_BYTES bytes"
log "COPY-heavy context: $HEAVY_MB MB in $HEAVY_FILES files"
# Warm the page cache: both tools read the contexts from memory.
sync
tar -C "$CTX" -cf - . | cat >/dev/null

# ---- the commands ----------------------------------------------------------------
DOCKERFILES=(trivial tenrun heavy)
SCENARIOS=(cold cached touched)
TOOLS=(cairn buildah)
declare -A DLABEL=([trivial]="trivial" [tenrun]="ten RUN" [heavy]="COPY-heavy")
CC="$WORK/cairn-cold"   # fresh for every cold run (prep.sh cairn-fresh)
CW="$WORK/cairn-warm"   # builds everything once, then the cached and touched runs
BC="$WORK/buildah-cold-root" BCR="$WORK/buildah-cold-run"
BW="$WORK/buildah-warm-root" BWR="$WORK/buildah-warm-run"
cairn_build() {   # cairn_build STORE DOCKERFILE: the command line
	echo "$CAIRN --root $1 build -q -t bench-$2:latest $CTX/$2"
}
buildah_build() {   # buildah_build ROOT RUNROOT DOCKERFILE
	echo "buildah --root $1 --runroot $2 --storage-driver overlay bud -q --layers --pull=never --network none -t localhost/bench-$3:latest $CTX/$3"
}
declare -A CMD PREPARE NRUNS WARM
for d in "${DOCKERFILES[@]}"; do
	n="$RUNS"; [ "$d" = heavy ] && n="$RUNS_HEAVY"
	CMD[cairn,$d,cold]="$(cairn_build "$CC" "$d")"
	PREPARE[cairn,$d,cold]="bash $PREP cairn-fresh $CAIRN $CC $TRASH $ROOTFS"
	CMD[buildah,$d,cold]="$(buildah_build "$BC" "$BCR" "$d")"
	PREPARE[buildah,$d,cold]="bash $PREP buildah-fresh $BC $BCR $TRASH $ROOTFS_TAR"
	CMD[cairn,$d,cached]="$(cairn_build "$CW" "$d")"
	CMD[buildah,$d,cached]="$(buildah_build "$BW" "$BWR" "$d")"
	CMD[cairn,$d,touched]="${CMD[cairn,$d,cached]}"
	CMD[buildah,$d,touched]="${CMD[buildah,$d,cached]}"
	for t in "${TOOLS[@]}"; do
		PREPARE[$t,$d,cached]="bash $PREP sync"
		PREPARE[$t,$d,touched]="bash $PREP touch ${TOUCH[$d]}"
		NRUNS[$t,$d,cold]="$n" NRUNS[$t,$d,touched]="$n" NRUNS[$t,$d,cached]="$RUNS_CACHED"
		WARM[$t,$d,cold]=0 WARM[$t,$d,touched]=0
		# One untimed cached rebuild first: the build that populated the
		# store ran within moments of the context's creation, so cairn's stat
		# cache (like git's index with "racily clean" files) left those files
		# out and the first rebuild re-reads them. buildah gets one too.
		WARM[$t,$d,cached]=1
	done
done

# ---- checks: the images hold what the Dockerfiles say ------------------------------
# check_tree DOCKERFILE DIR: DIR is the root of a built image.
check_tree() {
	local d=$1 r=$2 i
	case $d in
	trivial)
		cmp -s "$CTX/trivial/hello.txt" "$r/hello.txt" || { echo "/hello.txt differs from the context's"; return 1; }
		[ "$(cat "$r/built" 2>/dev/null)" = built ] || { echo "/built is not \"built\""; return 1; } ;;
	tenrun)
		cmp -s "$CTX/tenrun/stamp.txt" "$r/stamp.txt" || { echo "/stamp.txt differs from the context's"; return 1; }
		for i in $(seq 1 10); do
			[ "$(cat "$r/f$i" 2>/dev/null)" = "$i" ] || { echo "/f$i is not \"$i\""; return 1; }
		done ;;
	heavy)
		diff -r --no-dereference "$CTX/heavy" "$r/app" >"$OUT/diff.out" 2>&1 ||
			{ echo "/app differs from the context: $(head -c 300 "$OUT/diff.out" | tr '\n' ' ')"; return 1; } ;;
	esac
	[ -x "$r/bin/busybox" ] || { echo "/bin/busybox of the base is missing"; return 1; }
}
# check_image TOOL STORE DOCKERFILE WHEN: look into the image tagged
# bench-DOCKERFILE in STORE (for buildah: ROOT), record a failure if wrong.
check_image() {
	local t=$1 s=$2 d=$3 when=$4 msg="" dir="$WORK/check" ctr mnt
	rm -rf "$dir"
	if [ "$t" = cairn ]; then
		if ! "$CAIRN" --root "$s" checkout "bench-$d:latest" "$dir" >"$OUT/checkout.out" 2>&1; then
			msg="cairn checkout failed: $(head -c 300 "$OUT/checkout.out" | tr '\n' ' ')"
		else
			msg="$(check_tree "$d" "$dir")" || true
		fi
		rm -rf "$dir"
	else
		local B=(buildah --root "$s" --runroot "${s%-root}-run" --storage-driver overlay)
		if ! ctr="$("${B[@]}" from --pull=never "localhost/bench-$d:latest" 2>"$OUT/bfrom.err")" ||
			! mnt="$("${B[@]}" mount "$ctr" 2>"$OUT/bfrom.err")"; then
			msg="buildah from/mount failed: $(head -c 300 "$OUT/bfrom.err" | tr '\n' ' ')"
		else
			msg="$(check_tree "$d" "$mnt")" || true
		fi
		[ -n "${ctr:-}" ] && "${B[@]}" rm "$ctr" >/dev/null 2>&1
	fi
	if [ -n "$msg" ]; then
		FAIL+=("$t, ${DLABEL[$d]}, $when: the image is wrong: $msg")
		return 1
	fi
	log "checked $t ${DLABEL[$d]} ($when): ok"
}

# ---- measure ---------------------------------------------------------------------
declare -A OK MED MIN MAX BUSY CMDLINE ID
for t in "${TOOLS[@]}"; do for d in "${DOCKERFILES[@]}"; do OK[$t,$d]=1; done; done

# once TOOL DOCKERFILE STORE-ARGS...: one untimed build, output kept; its id in ID_LAST.
once() {
	local t=$1 d=$2 cmd=$3 tag=$4 rc=0
	# shellcheck disable=SC2086 # split on purpose, as hyperfine -N does
	ID_LAST="$($cmd 2>"$OUT/$t-$d-$tag.err" | tail -n 1)" || rc=$?
	if [ "$rc" != 0 ]; then
		FAIL+=("$t, ${DLABEL[$d]}, $tag: \`$cmd\` failed (exit $rc): $(tail -c 600 "$OUT/$t-$d-$tag.err" | tr '\n' ' ')")
		return 1
	fi
}
measure() {   # measure TOOL DOCKERFILE SCENARIO
	local t=$1 d=$2 s=$3 k="$1,$2,$3"
	wait_quiet "$QUIET_WAIT" ||
		NOTES+=("machine was ${QUIET_BUSY}% CPU busy with other work before $t ${DLABEL[$d]} $s (waited ${QUIET_WAIT}s); expect noise")
	BUSY[$k]="$QUIET_BUSY"
	log "measuring $t, ${DLABEL[$d]}, $s (${NRUNS[$k]} runs)"
	if ! hyperfine -N --style basic --runs "${NRUNS[$k]}" --warmup "${WARM[$k]}" \
		--prepare "${PREPARE[$k]}" --export-csv "$OUT/$t-$d-$s.csv" -n "$t-$d-$s" "${CMD[$k]}" >&2; then
		FAIL+=("hyperfine failed for $t, ${DLABEL[$d]}, $s (a build exited non-zero?)")
		OK[$t,$d]=0
		return 1
	fi
	CMDLINE[$k]="hyperfine -N --runs ${NRUNS[$k]}$([ "${WARM[$k]}" = 0 ] || echo " --warmup ${WARM[$k]}") --prepare '${PREPARE[$k]}' '${CMD[$k]}'"
	local col
	for col in median min max; do
		v="$(awk -F, -v c="$col" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
			NR == 2 { printf "%.1f", $k * 1000 }' "$OUT/$t-$d-$s.csv")"
		case $col in median) MED[$k]="$v" ;; min) MIN[$k]="$v" ;; max) MAX[$k]="$v" ;; esac
	done
}

# The warm stores start like the cold ones: only the base image.
bash "$PREP" cairn-fresh "$CAIRN" "$CW" "$TRASH" "$ROOTFS"
bash "$PREP" buildah-fresh "$BW" "$BWR" "$TRASH" "$ROOTFS_TAR"
BASE_ID="$("$CAIRN" --root "$CW" import "$ROOTFS" busybox:bench 2>/dev/null)"

for d in "${DOCKERFILES[@]}"; do
	# cold: first one untimed build in a fresh store, checked, then the timed ones
	for t in "${TOOLS[@]}"; do
		# shellcheck disable=SC2086 # split on purpose, as hyperfine -N does
		${PREPARE[$t,$d,cold]}
		if once "$t" "$d" "${CMD[$t,$d,cold]}" cold && check_image "$t" "$([ "$t" = cairn ] && echo "$CC" || echo "$BC")" "$d" "cold build"; then
			ID[$t,$d,cold]="$ID_LAST"
			measure "$t" "$d" cold || true
		else
			OK[$t,$d]=0
		fi
	done
	# cached: populate the warm store (untimed, checked), then rebuild
	for t in "${TOOLS[@]}"; do
		[ "${OK[$t,$d]}" = 1 ] || continue
		if once "$t" "$d" "${CMD[$t,$d,cached]}" populate &&
			check_image "$t" "$([ "$t" = cairn ] && echo "$CW" || echo "$BW")" "$d" "first build in the warm store"; then
			ID[$t,$d,warm]="$ID_LAST"
			measure "$t" "$d" cached || true
		else
			OK[$t,$d]=0
		fi
	done
	# touched: each timed run after a new content of one COPY'd file
	for t in "${TOOLS[@]}"; do
		[ "${OK[$t,$d]}" = 1 ] || continue
		measure "$t" "$d" touched || continue
		# the image after the last touched run holds the new content
		check_image "$t" "$([ "$t" = cairn ] && echo "$CW" || echo "$BW")" "$d" "after the touched rebuilds" || OK[$t,$d]=0
	done
done

# cairn's image ids: the same Dockerfile and context give the same id in a
# fresh store and in a store that built everything else before.
for d in "${DOCKERFILES[@]}"; do
	if [ -z "${ID[cairn,$d,cold]:-}" ] || [ -z "${ID[cairn,$d,warm]:-}" ]; then continue; fi
	[ "${ID[cairn,$d,cold]}" = "${ID[cairn,$d,warm]}" ] ||
		FAIL+=("cairn, ${DLABEL[$d]}: the image id differs between the fresh store (${ID[cairn,$d,cold]}) and the warm store (${ID[cairn,$d,warm]}) for the same Dockerfile and context")
done

# ---- where cairn's time goes: CAIRN_TRACE=1, untimed by hyperfine ------------------
# For each state, TRACE_RUNS more runs after the same preparation; each phase
# line summed over the build (a phase can repeat: one per RUN step, one per
# commit), then the median over the runs; "wall" is the run's whole time.
declare -A TRACE_FILES
if [ "$TRACE_RUNS" -gt 0 ]; then
	for d in "${DOCKERFILES[@]}"; do
		[ "${OK[cairn,$d]}" = 1 ] || continue
		for s in "${SCENARIOS[@]}"; do
			files=()
			# (cached: one untimed rebuild first, as for the timed runs)
			# shellcheck disable=SC2086
			[ "$s" != cached ] || ${CMD[cairn,$d,$s]} >/dev/null 2>&1 || true
			for i in $(seq 1 "$TRACE_RUNS"); do
				f="$OUT/trace-$d-$s-$i.err"
				# shellcheck disable=SC2086
				${PREPARE[cairn,$d,$s]}
				t0="$EPOCHREALTIME"   # (no fork: $(date) would cost more than a cached build)
				# shellcheck disable=SC2086
				CAIRN_TRACE=1 ${CMD[cairn,$d,$s]/ -q / --progress plain } >/dev/null 2>"$f" ||
					NOTES+=("a traced cairn build failed: ${DLABEL[$d]} $s: $(tail -c 300 "$f" | tr '\n' ' ')")
				t1="$EPOCHREALTIME"
				printf 'cairn-trace: wall  %s ms\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 }')" >>"$f"
				files+=("$f")
			done
			TRACE_FILES[$d,$s]="${files[*]}"
		done
	done
fi
trace_table() {   # the phases x states table, markdown
	python3 - "$@" <<'PY'
import re, statistics, sys
cols = []  # (label, [files])
args = sys.argv[1:]
while args:
    label, n = args[0], int(args[1])
    cols.append((label, args[2:2 + n]))
    args = args[2 + n:]
order, med = [], {}
for label, files in cols:
    per_run = []
    for fn in files:
        sums = {}
        for line in open(fn, errors="replace"):
            m = re.match(r"cairn-trace: (.*?)\s{2,}([0-9.]+) ms", line)
            if not m:
                continue
            name, v = m.group(1), float(m.group(2))
            if name not in order:
                order.append(name)
            sums[name] = sums.get(name, 0.0) + v
        per_run.append(sums)
    for name in order:
        vals = [r.get(name, 0.0) for r in per_run]
        med[label, name] = statistics.median(vals) if vals else 0.0
# top-level phases (the "run: ..." ones are parts of "build: run"); "other" = wall - their sum
top = [n for n in order if not n.startswith("run: ") and n != "wall"]
order = [n for n in order if n != "wall"] + ["other (wall - the phases above not under build: run)", "wall"]
print("| phase (ms, summed over the build, median of runs) | " + " | ".join(c[0] for c in cols) + " |")
print("|---|" + "---:|" * len(cols))
for name in order:
    row = []
    for label, _ in cols:
        if name.startswith("other"):
            v = med.get((label, "wall"), 0.0) - sum(med.get((label, n), 0.0) for n in top)
        else:
            v = med.get((label, name), 0.0)
        row.append("%.1f" % v)
    nm = "**wall**" if name == "wall" else name
    print("| %s | %s |" % (nm, " | ".join(row)))
PY
}
TRACE_MD=""
if [ "$TRACE_RUNS" -gt 0 ]; then
	targs=()
	for d in "${DOCKERFILES[@]}"; do
		for s in "${SCENARIOS[@]}"; do
			[ -n "${TRACE_FILES[$d,$s]:-}" ] || continue
			read -r -a fs <<<"${TRACE_FILES[$d,$s]}"
			targs+=("${DLABEL[$d]} $s" "${#fs[@]}" "${fs[@]}")
		done
	done
	[ "${#targs[@]}" -gt 0 ] && TRACE_MD="$(trace_table "${targs[@]}")"
fi

# ---- sizes (information) -------------------------------------------------------------
CC_MB="$(du -s -B1 "$CC" 2>/dev/null | awk '{ printf "%.1f", $1 / 1e6 }')"
BC_MB="$(du -s -B1 "$BC" 2>/dev/null | awk '{ printf "%.1f", $1 / 1e6 }')"

# Cgroups a tool left behind (top level of each hierarchy).
CG_LEFT="$(comm -13 <(printf '%s\n' "$CG_BEFORE") <(cg_top) | grep -v '/cairn$' || true)"
[ -z "$CG_LEFT" ] || NOTES+=("cgroups left behind after the run: $(tr '\n' ' ' <<<"$CG_LEFT")")

# ---- results ---------------------------------------------------------------------------
verdict() { if ge "$1" "$2"; then echo "met"; else echo "NOT met"; fi; }
declare -A R
for d in "${DOCKERFILES[@]}"; do
	for s in "${SCENARIOS[@]}"; do
		if [ -n "${MED[cairn,$d,$s]:-}" ] && [ -n "${MED[buildah,$d,$s]:-}" ]; then
			R[$d,$s]="$(ratio "${MED[buildah,$d,$s]}" "${MED[cairn,$d,$s]}")"
		fi
	done
done
GOALS=()   # "text|value|verdict"
for d in "${DOCKERFILES[@]}"; do
	if [ -n "${R[$d,cached]:-}" ]; then
		GOALS+=("${DLABEL[$d]}, fully cached rebuild: buildah / cairn >= ${GOAL_CACHED}x|${R[$d,cached]}x|$(verdict "${R[$d,cached]}" "$GOAL_CACHED")")
	else
		GOALS+=("${DLABEL[$d]}, fully cached rebuild: buildah / cairn >= ${GOAL_CACHED}x|not measured|NOT met")
	fi
done
if [ -n "${MED[cairn,trivial,cached]:-}" ]; then
	GOALS+=("trivial, fully cached rebuild: cairn < ${GOAL_TRIVIAL_MS} ms|${MED[cairn,trivial,cached]} ms|$(ge "${MED[cairn,trivial,cached]}" "$GOAL_TRIVIAL_MS" && echo "NOT met" || echo met)")
else
	GOALS+=("trivial, fully cached rebuild: cairn < ${GOAL_TRIVIAL_MS} ms|not measured|NOT met")
fi
if [ -n "${R[heavy,cold]:-}" ]; then
	GOALS+=("COPY-heavy, cold: buildah / cairn >= ${GOAL_COLD_HEAVY}x|${R[heavy,cold]}x|$(verdict "${R[heavy,cold]}" "$GOAL_COLD_HEAVY")")
else
	GOALS+=("COPY-heavy, cold: buildah / cairn >= ${GOAL_COLD_HEAVY}x|not measured|NOT met")
fi
ALL_MET=1
for g in "${GOALS[@]}"; do [ "${g##*|}" = met ] || ALL_MET=0; done

cell() { if [ -n "${MED[$1]:-}" ]; then echo "${MED[$1]}"; else echo "-"; fi; }
range() { if [ -n "${MED[$1]:-}" ]; then echo "${MIN[$1]}-${MAX[$1]}"; else echo "-"; fi; }

{
	printf '\nbuild benchmark: median ms (hyperfine -N)\n'
	printf '%-24s %12s %12s %14s\n' "scenario" "cairn" "buildah" "buildah/cairn"
	for d in "${DOCKERFILES[@]}"; do
		for s in "${SCENARIOS[@]}"; do
			printf '%-24s %12s %12s %14s\n' "${DLABEL[$d]}, $s" "$(cell "cairn,$d,$s")" \
				"$(cell "buildah,$d,$s")" "${R[$d,$s]:+${R[$d,$s]}x}"
		done
	done
	for g in "${GOALS[@]}"; do
		IFS='|' read -r a b c <<<"$g"
		printf 'goal: %s: %s: %s\n' "$a" "$b" "$c"
	done
	[ -z "$TRACE_MD" ] || printf 'cairn phases (CAIRN_TRACE=1, ms):\n%s\n' "$TRACE_MD"
	for f in "${FAIL[@]+"${FAIL[@]}"}"; do printf 'FAILURE: %s\n' "$f"; done
	for f in "${NOTES[@]+"${NOTES[@]}"}"; do printf 'note: %s\n' "$f"; done
	echo
} >&2

CRUN_V="$(crun --version 2>/dev/null | sed -n 1p || true)"
buildah --root "$BW" --runroot "$BWR" --storage-driver overlay info >"$OUT/buildah-info.json" 2>/dev/null || true
BUILDAH_RT="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["host"].get("OCIRuntime","?"))' "$OUT/buildah-info.json" 2>/dev/null || echo '?')"
NATIVE_DIFF="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["store"]["GraphStatus"]; print(d.get("Native Overlay Diff","?"))' "$OUT/buildah-info.json" 2>/dev/null || echo '?')"
SEC="$OUT/section.md"
{
	echo "## build"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Machine: $(machine_info "$WORK"); cgroups $CGMODE; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- Work filesystem (contexts, the cairn stores, the buildah storage): $FS_MODE"
	echo "- cairn: \`$CAIRN_SRC\` ($("$CAIRN" --version 2>/dev/null || echo '?'); built $CAIRN_BUILT, sha256 $CAIRN_SUM...), source revision $REV when the run started; run from a copy at \`$CAIRN\`"
	echo "- Peer: $(buildah --version) (RUN through its default OCI runtime, ${BUILDAH_RT}; ${CRUN_V:-crun ?}), storage driver overlay (kernel overlayfs; native overlay diff: $NATIVE_DIFF) with \`--root\`/\`--runroot\` in the work dir and \`CONTAINERS_CONF\`/\`CONTAINERS_STORAGE_CONF\` pointing there too; $(hyperfine --version)"
	[ "${#V1_MOUNTED[@]}" -gt 0 ] && echo "- Hybrid cgroups: crun refuses to run while the cgroup2 hierarchy holds controllers (\"cgroups in hybrid mode not supported\"), which failed every RUN step of buildah, so for the whole run the script mounts a v1 hierarchy for ${V1_MOUNTED[*]} (\`mount -t cgroup -o ${V1_MOUNTED[*]// /,} cgroup \$W/cgroup-v1-...\`), unmounted at exit (as bench/runtime does)."
	echo "- Base image (no network: nothing is pulled): \`examples/mkrootfs.sh\` from Debian busybox-static $(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null): $ROOTFS_FILES entries, $ROOTFS_KB KB. cairn: \`cairn import\` of that directory as \`busybox:bench\` (image \`${BASE_ID:-?}\`); buildah: \`buildah from scratch\`, \`buildah add\` of a tar of it, \`buildah commit\` to \`localhost/busybox:bench\`. Both tools build the same Dockerfile files (\`FROM busybox:bench\` resolves to the local image in both)."
	echo "- Dockerfiles: **trivial** = \`FROM busybox:bench\`, \`COPY hello.txt /hello.txt\`, \`RUN echo built > /built\`; **ten RUN** = \`FROM busybox:bench\`, \`COPY stamp.txt /stamp.txt\`, then \`RUN echo N > /fN\` for N = 1..10 (the COPY is there so that the touched rebuild has a COPY'd file to change: it re-runs all ten RUN steps); **COPY-heavy** = \`FROM busybox:bench\`, \`COPY . /app\` of a context of **$HEAVY_MB MB** (MB = 10^6 bytes) in $HEAVY_FILES files and $HEAVY_DIRS directories: 4000 files of 64 B to 256 KB (log-uniform sizes) in 40 directories plus 4 big files, all random bytes from \`os.urandom\`, generated at the start of the run, page cache warmed by reading it once."
	echo "- States: **cold** = a fresh store holding only the base image (cairn: a new \`--root\` with \`cairn import\` of the base; buildah: new \`--root\`/\`--runroot\` with only the base committed), made before each timed run by \`bench/build/prep.sh\` (untimed); **cached** = the same build again in a store that already built it, nothing changed (1 untimed warm-up rebuild first); **touched** = a rebuild in that store after the first bytes of one COPY'd file (hello.txt, stamp.txt, src/d07/f0007.bin) were overwritten with the current time in ns, before each timed run. Every preparation ends with \`sync\`. Stores replaced between cold runs are moved aside, not deleted (see bench/store for why)."
	echo "- Flags: cairn \`build -q\` (its RUN steps get a private network namespace with loopback only, its default); buildah \`bud -q --layers --pull=never --network none\` (\`--network none\` also gives a namespace with loopback only; buildah's default, a network set up by netavark for each RUN step, is slower and writes the host's network configuration)."
	echo "- Method: hyperfine \`-N\` (no shell), medians in ms; cold and touched: $RUNS runs (COPY-heavy: $RUNS_HEAVY), cached: $RUNS_CACHED runs after 1 warm-up. Before each measurement the script waits (at most ${QUIET_WAIT} s) for the machine to be idle (< 10% CPU); the CPU busy % seen just before is in the table. Checked untimed: each tool's first cold build and first warm-store build, and the image after the last touched rebuild, hold the right files (\`cairn checkout\` / \`buildah mount\`, then cmp / \`diff -r\` against the context)."
	echo "- Disk after the last COPY-heavy cold build (information): cairn store $CC_MB MB, buildah storage $BC_MB MB."
	ids=()
	for d in "${DOCKERFILES[@]}"; do
		[ -n "${ID[cairn,$d,cold]:-}" ] || continue
		same="NO: warm store gave ${ID[cairn,$d,warm]:-nothing}"
		[ "${ID[cairn,$d,cold]}" = "${ID[cairn,$d,warm]:-}" ] && same="same in the warm store"
		ids+=("${DLABEL[$d]} \`${ID[cairn,$d,cold]}\` ($same)")
	done
	[ "${#ids[@]}" -eq 0 ] || echo "- cairn image ids: $(j=""; for x in "${ids[@]}"; do j="$j${j:+; }$x"; done; echo "$j")"
	echo
	echo "| scenario | cairn median ms | buildah median ms | buildah / cairn | cairn min-max | buildah min-max | runs | CPU busy before (cairn, buildah) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for d in "${DOCKERFILES[@]}"; do
		for s in "${SCENARIOS[@]}"; do
			echo "| ${DLABEL[$d]}, $s | **$(cell "cairn,$d,$s")** | $(cell "buildah,$d,$s") | ${R[$d,$s]:+**${R[$d,$s]}x**} | $(range "cairn,$d,$s") | $(range "buildah,$d,$s") | ${NRUNS[cairn,$d,$s]} | ${BUSY[cairn,$d,$s]:-?}%, ${BUSY[buildah,$d,$s]:-?}% |"
		done
	done
	echo
	echo "| goal | value | |"
	echo "|---|---:|---|"
	for g in "${GOALS[@]}"; do
		IFS='|' read -r a b c <<<"$g"
		echo "| $a | $b | $c |"
	done
	echo
	if [ -n "$TRACE_MD" ]; then
		echo "Where cairn's time goes: \`CAIRN_TRACE=1 cairn build --progress plain\`, $TRACE_RUNS more runs per state after the same preparation. Each phase is summed over the build, then the median over the runs is taken. Per RUN step: \"build: checkout\" makes the step's lower directory (a checkout of the tree when one is needed), \"build: run\" is the step's process from start to exit, \"build: layer\" reads its writable layer back into the tree; \"commit: ...\" come once per store commit (a RUN step first commits what the steps before it staged); \"build: context\" is the walk of the context (hashing what the stat cache does not vouch for). The \"run: ...\" lines are parts of \"build: run\", cumulative from the start of the runtime. \"wall\" is the whole command, timed around it by the script (so it includes process start and the trace output); \"other\" is what no phase covers: process start, opening the store and its database, parsing, cache lookups, recording the build in cairn.db, removing scratch directories."
		echo
		echo "$TRACE_MD"
		echo
	fi
	if [ "${#FAIL[@]}" -gt 0 ] || [ "${#NOTES[@]}" -gt 0 ]; then
		for f in "${FAIL[@]+"${FAIL[@]}"}"; do echo "- **FAILURE:** $f"; done
		for f in "${NOTES[@]+"${NOTES[@]}"}"; do echo "- Note: $f"; done
		echo
	fi
	echo "Commands (\`bench/build/run.sh\`; \`\$W\` = \`@WORK@\`; \`bench/build/prep.sh\` holds the untimed preparations):"
	echo
	echo '```sh'
	if [ -n "$LOOPDEV" ]; then
		echo "truncate -s ${BENCH_FS_GB}G \$W.img && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \$W.img"
		echo "mount \$(losetup --direct-io=on -f --show \$W.img) \$W"
	fi
	for ctl in "${V1_MOUNTED[@]+"${V1_MOUNTED[@]}"}"; do
		echo "mount -t cgroup -o $ctl cgroup \$W/cgroup-v1-$ctl   # hybrid cgroups, see above"
	done
	echo "export CONTAINERS_CONF=\$W/containers.conf CONTAINERS_STORAGE_CONF=\$W/storage.conf TMPDIR=\$W/tmp"
	echo "# \$W/ctx/{trivial,tenrun,heavy}: the Dockerfiles and contexts above (written by bench/build/run.sh)"
	echo "examples/mkrootfs.sh \$W/rootfs && tar -C \$W/rootfs --numeric-owner -cf \$W/rootfs.tar ."
	echo "bash bench/build/prep.sh cairn-fresh $CAIRN \$W/cairn-warm \$W/trash \$W/rootfs         # the warm stores start"
	echo "bash bench/build/prep.sh buildah-fresh \$W/buildah-warm-root \$W/buildah-warm-run \$W/trash \$W/rootfs.tar   # with the base only"
	for d in "${DOCKERFILES[@]}"; do
		echo "# ${DLABEL[$d]}: \$W/ctx/$d/Dockerfile"
		for s in "${SCENARIOS[@]}"; do
			for t in "${TOOLS[@]}"; do
				[ -n "${CMDLINE[$t,$d,$s]:-}" ] || continue
				[ "$s" = cached ] && echo "${CMD[$t,$d,cached]}   # populate (untimed)"
				echo "${CMDLINE[$t,$d,$s]}"
			done
		done
	done
	echo '```'
} | sed "s#$HERE/prep.sh#bench/build/prep.sh#g; s#$WORK#\$W#g; s#@WORK@#$WORK#" >"$SEC"
results_put_section build "$SEC"
log "wrote section \"## build\" of $RESULTS_MD"

if [ "${#FAIL[@]}" -gt 0 ]; then exit 1; fi
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$ALL_MET" != 1 ]; then exit 1; fi
exit 0
