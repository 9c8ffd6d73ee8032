#!/bin/bash
# Runs cairn's test suites against one build directory and sums them up:
#   unit  cmocka tests (tests/unit), TAP output counted per test case
#   e2e   bats tests (tests/e2e) driving $BUILD/cairn
#   fuzz  every libFuzzer target for FUZZ_SECONDS (default 15) each
# Ends with "N passed, N failed, N skipped"; exits 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build
suites=unit,e2e,fuzz
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--suites) suites=$2; shift 2 ;;
	*) echo "usage: tests/run.sh [--build DIR] [--suites unit,e2e,fuzz]" >&2; exit 2 ;;
	esac
done

pass=0 fail=0 skip=0
failed_names=()

count_tap() { # $1 = suite name, stdin = TAP
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"ok "*"# skip"* | "ok "*"# SKIP"*) skip=$((skip + 1)) ;;
		"ok "*) pass=$((pass + 1)) ;;
		"not ok "*) fail=$((fail + 1)); failed_names+=("$1: ${line#not ok }") ;;
		esac
	done
}

if [[ ",$suites," == *",unit,"* ]]; then
	echo "== unit tests ($build)"
	for t in "$build"/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		out=$(mktemp)
		CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$out" 2>&1
		rc=$?
		before=$((pass + fail))
		count_tap "unit/$name" <"$out"
		if [ $rc -ne 0 ] && [ $((pass + fail)) -eq "$before" ]; then
			fail=$((fail + 1)); failed_names+=("unit/$name: exited $rc without results")
		fi
		rm -f "$out"
	done
fi

if [[ ",$suites," == *",e2e,"* ]]; then
	echo "== e2e tests ($build/cairn)"
	out=$(mktemp)
	CAIRN="$PWD/$build/cairn" bats --tap tests/e2e >"$out" 2>&1
	rc=$?
	before=$((pass + fail))
	count_tap e2e <"$out"
	if [ $rc -ne 0 ] && [ $((pass + fail)) -eq "$before" ]; then
		fail=$((fail + 1)); failed_names+=("e2e: bats exited $rc without results")
	fi
	rm -f "$out"
fi

if [[ ",$suites," == *",fuzz,"* ]]; then
	echo "== fuzz targets (FUZZ_SECONDS=${FUZZ_SECONDS:=15} each)"
	out=$(mktemp)
	FUZZ_SECONDS=$FUZZ_SECONDS tests/fuzz/run.sh >"$out" 2>&1
	rc=$?
	cat "$out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ $rc -eq 77 ]; then
		skip=$((skip + 1))
	elif [ -n "$line" ]; then
		p=$(echo "$line" | awk '{print $1}') f=$(echo "$line" | awk '{print $3}')
		pass=$((pass + p)) fail=$((fail + f))
		[ "$f" -eq 0 ] || failed_names+=("fuzz: $f targets crashed")
	else
		fail=$((fail + 1)); failed_names+=("fuzz: run.sh exited $rc without results")
	fi
	rm -f "$out"
fi

echo
for n in "${failed_names[@]}"; do echo "FAILED $n"; done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
