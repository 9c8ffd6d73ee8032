# Shared helpers for the cairn benchmarks. Source it; do not execute it.
# shellcheck shell=bash

# Repository root (bench/ lives directly under it).
BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_LIB_DIR/.." && pwd)"
RESULTS_MD="${RESULTS_MD:-$REPO_ROOT/bench/RESULTS.md}"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ensure_cmd CMD PACKAGE: install PACKAGE with apt-get when CMD is missing.
# `apt-get update` is run only when the first install attempt fails.
ensure_cmd() {
	local cmd=$1 pkg=$2
	command -v "$cmd" >/dev/null 2>&1 && return 0
	log "installing $pkg (for $cmd)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
	fi
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $pkg"
}

# fs_info DIR: filesystem type of DIR from the mount table, plus whether an
# ext4 filesystem has a journal (it matters: see bench/store/run.sh).
fs_info() {
	local src fstype opts dev
	read -r src fstype opts < <(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$1" 2>/dev/null) ||
		{ stat -f -c %T "$1"; return; }
	printf '%s' "$fstype"
	if [ "$fstype" = ext4 ]; then
		dev="$(basename "$src")"
		if [ -r "/sys/fs/ext4/$dev/journal_task" ]; then
			if grep -q none "/sys/fs/ext4/$dev/journal_task"; then printf ' (no journal)'
			else printf ' (journaled)'; fi
		fi
	fi
	printf ' on %s, mount options %s' "$src" "$opts"
}

# machine_info DIR: one line describing the machine and DIR's filesystem.
machine_info() {
	printf '%s cores (nproc, %s), %s MB RAM, kernel %s, %s, work dir filesystem %s' \
		"$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
		"$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" \
		"$(uname -r)" \
		"$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown OS}") || echo 'unknown OS')" \
		"$(fs_info "$1")"
}

# hf_median CSV: median seconds of the single command in a hyperfine CSV export.
hf_median() {
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "median") c = i; next }
		NR == 2 { print $c }' "$1"
}

# mbps BYTES SECONDS: throughput in MB/s (MB = 10^6 bytes).
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ge A B: succeeds when A >= B (floating point).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# results_put_section NAME FILE: replace the "## NAME" section of RESULTS.md
# with the contents of FILE (which must start with the "## NAME" heading), or
# append it when absent. Other sections are kept as they are. Written via a
# temporary file and mv so readers never see a half-written file.
results_put_section() {
	local name=$1 body=$2 tmp
	tmp="$(mktemp "$(dirname "$RESULTS_MD")/.RESULTS.md.XXXXXX")"
	if [ -f "$RESULTS_MD" ]; then
		awk -v head="## $name" -v body="$body" '
			function emit(   line) {
				while ((getline line < body) > 0) print line
				close(body); done = 1
			}
			$0 == head { emit(); skip = 1; next }
			skip && /^## / { skip = 0; print ""; }
			skip { next }
			{ print }
			END {
				if (!done) { print ""; emit() }
			}' "$RESULTS_MD" >"$tmp"
	else
		{ printf '# Benchmark results\n\nWritten by `make bench` (bench/run.sh); each section by bench/<name>/run.sh.\n\n'
		  cat "$body"; } >"$tmp"
	fi
	chmod 644 "$tmp"
	mv -f "$tmp" "$RESULTS_MD"
}

# cpu_busy SECONDS: percentage of CPU time not idle over SECONDS, all cores.
cpu_busy() {
	local a b
	a="$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)"
	sleep "$1"
	b="$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)"
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (t - i) / t : 0) }'
}

# wait_quiet MAX_SECONDS: wait until the machine is idle (< 10% CPU busy over
# 2 s), at most MAX_SECONDS. Sets QUIET_BUSY to the last measured percentage.
wait_quiet() {
	local deadline=$((SECONDS + $1))
	while :; do
		QUIET_BUSY="$(cpu_busy 2)"
		[ "$QUIET_BUSY" -lt 10 ] && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		log "machine busy (${QUIET_BUSY}% CPU), waiting for it to settle"
		sleep 3
	done
}
