#!/bin/bash
# Build the libFuzzer targets (clang, ASan + UBSan) and run each one for a
# while on a scratch copy of its seed corpus. Exit 77 (skip) without clang or
# libFuzzer, 1 when any target crashed, leaked, hung or ran out of memory.
#
#   tests/fuzz/run.sh [TARGET...]      TARGET: fuzz_tar, tar, ... (default: all)
#   FUZZ_SECONDS   time per target (default 30)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (25)
#   FUZZ_BUILD_DIR build directory (default build-fuzz at the top of the tree)
#   FUZZ_ARTIFACTS where crash files and logs are kept (default BUILD/fuzz-artifacts)
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
seconds=${FUZZ_SECONDS:-30}
timeout=${FUZZ_TIMEOUT:-25}
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}

skip() {
	echo "fuzz: skipped: $*"
	exit 77
}

# --- the toolchain ---------------------------------------------------------
command -v clang >/dev/null 2>&1 || skip "clang is not installed"
command -v meson >/dev/null 2>&1 || skip "meson is not installed"
command -v ninja >/dev/null 2>&1 || skip "ninja is not installed"
probe=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-probe.XXXXXX") || exit 1
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
	reason=$(head -n 3 "$probe/err")
	rm -rf "$probe"
	skip "clang cannot link with -fsanitize=fuzzer (libFuzzer missing?): $reason"
fi
rm -rf "$probe"

# --- which targets -------------------------------------------------------------
targets=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=${t#fuzz_}
		[ -f "$here/fuzz_$t.c" ] || { echo "fuzz: no target fuzz_$t" >&2; exit 2; }
		targets+=("fuzz_$t")
	done
else
	for src in "$here"/fuzz_*.c; do
		t=$(basename "$src" .c)
		targets+=("$t")
	done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $here" >&2; exit 2; }

# --- the build -----------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
	echo "fuzz: configuring $build"
	if ! (cd "$top" && CC=clang meson setup "$build" -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false >"${TMPDIR:-/tmp}/fuzz-setup.$$.log" 2>&1); then
		cat "${TMPDIR:-/tmp}/fuzz-setup.$$.log"
		rm -f "${TMPDIR:-/tmp}/fuzz-setup.$$.log"
		echo "0 passed, ${#targets[@]} failed"
		exit 1
	fi
	rm -f "${TMPDIR:-/tmp}/fuzz-setup.$$.log"
elif ! grep -q 'fuzz_' "$build/build.ninja"; then
	meson configure "$build" -Dfuzz=true >/dev/null || { echo "0 passed, ${#targets[@]} failed"; exit 1; }
fi
if ! ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >"$build/fuzz-build.log" 2>&1; then
	tail -n 40 "$build/fuzz-build.log"
	echo "fuzz: build failed (log: $build/fuzz-build.log)"
	echo "0 passed, ${#targets[@]} failed"
	exit 1
fi

# --- the runs ------------------------------------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/cairn-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts"
# UBSan only warns unless told to stop; a report must count as a crash.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

passed=0
failed=0
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	work="$scratch/$t"
	mkdir -p "$work/corpus" "$work/tmp"
	if [ -d "$here/corpus/$name" ]; then
		cp -R "$here/corpus/$name/." "$work/corpus/"
	fi
	dict=()
	[ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
	log="$artifacts/$t.log"
	# TMPDIR: fuzz_tar keeps its scratch store there.
	(cd "$work" && TMPDIR="$work/tmp" "$build/tests/fuzz/$t" \
		-max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
		-artifact_prefix="$artifacts/$t-" -print_final_stats=1 \
		${dict[@]+"${dict[@]}"} "$work/corpus") >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ $rc -eq 0 ] && [ -z "$crash" ]; then
		echo "$t: ok (${runs:-?} runs)"
		passed=$((passed + 1))
	else
		if [ -n "$crash" ]; then
			echo "$t: FAILED: $crash (log: $log)"
		else
			echo "$t: FAILED with status $rc (log: $log)"
		fi
		grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:|fuzz_[a-z]+:)' "$log" |
			sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
