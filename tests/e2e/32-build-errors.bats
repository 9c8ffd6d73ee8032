#!/usr/bin/env bats
# cairn build: failures. A failing RUN step (its output, exit code and line;
# no tag moves, no image, nothing left behind; the steps before it stay
# cached), an interrupted build, parser errors with line and column, and
# one-line errors for every other mistake in a Dockerfile, a context or the
# command line.

load helpers
load build_helpers

setup_file() {
	build_setup_file
}

setup() {
	build_setup
	BG_PID=
}

teardown() {
	run_bg_reap
	[ -z "${MARKER:-}" ] || run_kill_marked "^(/bin/)?sleep $MARKER\$"
	build_teardown
}

# mk_failing_ctx: $T/c with a Dockerfile of three steps that build (tests
# append a failing fourth); prints the context's path.
mk_failing_ctx() {
	local c=$T/c
	mkdir -p "$c"
	printf 'a\n' >"$c/a.txt"
	dockerfile "$c" <<'EOF'
FROM busybox:test
COPY a.txt /a.txt
RUN cat /a.txt > /a.copy
EOF
	echo "$c"
}

# build_error ARGS...: the build fails (exit 1) with exactly one line on
# stderr (-q: no progress), starting with "cairn: ".
build_error() {
	build_fails -q "$@" || return 1
	[ -z "$output" ] || {
		echo "stdout not empty: $output"
		return 1
	}
	assert_one_line_error
}

# ---- a failing RUN ----

@test "build errors: a failing RUN exits 1 with its last output lines, its exit code and file:line" {
	local c
	c=$(mk_failing_ctx)
	build_ok -t app:1 "$c"
	local good=$ID
	run cairn --json images
	local images_before=$output
	printf 'RUN echo some-output; exit 3\nRUN echo never > /never\n' >>"$c/Dockerfile"
	build_fails -t app:1 "$c"
	[ -z "$output" ]
	# the output of the step, its exit code, and where it is in the Dockerfile
	[[ "$stderr" == *"some-output"* ]]
	[[ "$stderr" == *"$c/Dockerfile:4"* ]]
	[[ "$stderr" == *"exit code 3"* ]]
	[ "$(printf '%s\n' "$stderr" | tail -n 1)" = "cairn: $c/Dockerfile:4: RUN echo some-output; exit 3: exit code 3" ]
	# the step after it never ran
	[[ "$stderr" != *"[5/5]"* ]]
	# nothing moved: the tag, the image list
	[ "$(tag_target app:1)" = "$good" ]
	run cairn --json images
	[ "$output" = "$images_before" ]
	# the tag's history has the one move of the good build
	run cairn history app
	show
	[ "$(printf '%s\n' "$output" | tail -n +2 | wc -l)" -eq 1 ]
	[[ "$output" == *"${good:7:12}"* ]]
	[ -z "$(staging_leftovers)" ]
	fsck_clean
}

@test "build errors: a failing RUN shows the last lines of a long output, not all of it" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nRUN seq 1 500; echo to-stderr >&2; exit 7\n' | dockerfile "$c"
	build_fails "$c"
	[[ "$stderr" == *"  | 500"* ]]
	[[ "$stderr" == *"  | to-stderr"* ]]
	[[ "$stderr" != *"  | 1"$'\n'"  | 2"$'\n'* ]]
	local shown
	shown=$(printf '%s\n' "$stderr" | grep -c '^  | ')
	[ "$shown" -ge 5 ]
	[ "$shown" -lt 100 ]
	[[ "$stderr" == *"exit code 7"* ]]
}

@test "build errors: after fixing the failing step, the steps before it are cached" {
	local c
	c=$(mk_failing_ctx)
	printf 'RUN echo some-output; exit 3\nRUN echo after > /after\n' >>"$c/Dockerfile"
	build_fails "$c"
	# the steps that succeeded ran
	[[ "$(step_result 3)" =~ ^[0-9]+\.[0-9]+s$ ]]
	sed -i 's|exit 3|exit 0|' "$c/Dockerfile"
	build_ok -t app:2 "$c"
	show
	[ "$(step_result 2)" = cached ]
	[ "$(step_result 3)" = cached ]
	[[ "$(step_result 4)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 5)" =~ ^[0-9]+\.[0-9]+s$ ]]
	local d
	d=$(co app:2)
	[ "$(cat "$d/after")" = after ]
	[ "$(cat "$d/a.copy")" = a ]
	[ -z "$(staging_leftovers)" ]
	fsck_clean
}

@test "build errors: a RUN whose command does not exist, or whose user does not, fails with its line" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nRUN ["/no/such/program"]\n' | dockerfile "$c"
	build_fails "$c"
	[[ "$stderr" == *"/no/such/program"* ]]
	[[ "$(printf '%s\n' "$stderr" | tail -n 1)" == "cairn: $c/Dockerfile:2: "*"exit code 127" ]]
	printf 'FROM busybox:test\nUSER nosuchuser\nRUN true\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *"Dockerfile:3"* ]]
	[[ "$stderr" == *nosuchuser* ]]
	[ -z "$(staging_leftovers)" ]
}

@test "build errors: a failing stage of a multi-stage build leaves nothing behind" {
	local c
	c=$(example multistage)
	build_ok -t greet:1 "$c"
	local good=$ID
	# the test stage now fails
	printf 'greet() { echo broken; }\n' >"$c/src/lib/greet.sh"
	build_fails -t greet:1 "$c"
	[[ "$stderr" == *"$c/Dockerfile:14: RUN greet tester"* ]]
	[[ "$stderr" == *"exit code 1"* ]]
	[ "$(tag_target greet:1)" = "$good" ]
	[ -z "$(staging_leftovers)" ]
	fsck_clean
}

@test "build errors: an interrupted build (SIGINT) stops its RUN and leaves nothing behind" {
	MARKER="31.$$$RANDOM"
	local c
	c=$(mk_failing_ctx)
	build_ok -t app:1 "$c"
	local good=$ID
	printf 'RUN echo started; sleep %s\n' "$MARKER" >>"$c/Dockerfile"
	run_bg build --progress plain -t app:1 "$c"
	run_wait_for 10 grep -q '  | started' "$T/bg.err"
	kill -INT "$BG_PID"
	run_bg_wait 10
	cat "$T/bg.err"
	[ "$BG_STATUS" -ne 0 ]
	run_wait_for 5 run_no_process "^(/bin/)?sleep $MARKER\$"
	[ "$(tag_target app:1)" = "$good" ]
	[ -z "$(staging_leftovers)" ]
	[ -z "$(run_mounts_under "$ROOT")" ]
	fsck_clean
}

@test "build errors: a build killed with SIGKILL leaves no RUN process; gc cleans up; the next build works" {
	MARKER="32.$$$RANDOM"
	local c
	c=$(mk_failing_ctx)
	build_ok -t app:1 "$c"
	local good=$ID
	printf 'RUN echo started; sleep %s\n' "$MARKER" >>"$c/Dockerfile"
	run_bg build --progress plain -t app:1 "$c"
	run_wait_for 10 grep -q '  | started' "$T/bg.err"
	kill -KILL "$BG_PID"
	run_bg_wait 10
	[ "$BG_STATUS" -eq 137 ]
	# the RUN step dies with the build that ran it (checked at the end,
	# after the rest, which does not depend on it)
	local survived=0
	run_wait_for 3 run_no_process "^(/bin/)?sleep $MARKER\$" || survived=1
	run_kill_marked "^(/bin/)?sleep $MARKER\$"
	[ "$(tag_target app:1)" = "$good" ]
	# gc removes what the killed build staged
	run cairn gc
	show
	[ "$status" -eq 0 ]
	[ -z "$(staging_leftovers)" ]
	fsck_clean
	sed -i "s|sleep $MARKER|true|" "$c/Dockerfile"
	build_ok -t app:1 "$c"
	[ "$(step_result 3)" = cached ]
	[ "$(tag_target app:1)" = "$ID" ]
	if [ "$survived" -ne 0 ]; then
		echo "the RUN step's process (sleep $MARKER) outlived the build killed with SIGKILL"
		return 1
	fi
}

# ---- parser errors: file:line:column ----

@test "build errors: an unknown instruction names file:line:column" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\n\n  FROBNICATE the-thing\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == "cairn: $c/Dockerfile:3:3: unknown instruction \"FROBNICATE\""* ]]
}

@test "build errors: parser errors name file:line:column" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nRUN true\n  COPY --bogus=1 a /\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" =~ ^cairn:\ $c/Dockerfile:3:[0-9]+:\ .*--bogus ]]
	[[ "$stderr" == "cairn: $c/Dockerfile:3:8: "* ]]
	printf 'FROM busybox:test\nSHELL /bin/sh -c\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" =~ ^cairn:\ $c/Dockerfile:2:[0-9]+:\ SHELL ]]
	printf 'FROM busybox:test\nENV\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" =~ ^cairn:\ $c/Dockerfile:2:1:\ ENV ]]
	printf 'RUN true\nFROM busybox:test\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" =~ ^cairn:\ $c/Dockerfile:1:1:\ .*FROM ]]
	printf 'FROM busybox:test AS a b\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" =~ ^cairn:\ $c/Dockerfile:1:[0-9]+:\ FROM ]]
	# -f: the error names the file as given
	printf 'FROM busybox:test\nNOPE\n' >"$T/other.df"
	build_error -f "$T/other.df" "$c"
	[[ "$stderr" == "cairn: $T/other.df:2:1: "* ]]
}

@test "build errors: an empty Dockerfile, one without FROM, none at all" {
	local c
	c=$(ctx c)
	: >"$c/Dockerfile"
	build_error "$c"
	[[ "$stderr" == *"$c/Dockerfile"* ]]
	printf '# only a comment\nARG X=1\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *FROM* ]]
	rm "$c/Dockerfile"
	build_error "$c"
	[[ "$stderr" == *"$c"* ]]
	[[ "$stderr" == *Dockerfile* ]]
	build_error "$T/no-such-context"
	[[ "$stderr" == *"$T/no-such-context"* ]]
	build_error -f "$T/no-such-file" "$c"
	[[ "$stderr" == *"$T/no-such-file"* ]]
}

# ---- errors in instructions ----

@test "build errors: COPY of a missing file names it; nothing outside the context is reachable" {
	local c
	c=$(ctx c)
	printf 'x\n' >"$c/present.txt"
	printf 'FROM busybox:test\nCOPY present.txt missing-file.txt /dst/\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == "cairn: $c/Dockerfile:2: "*"missing-file.txt"* ]]
	printf 'FROM busybox:test\nCOPY nothing-*.txt /dst/\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *"nothing-*.txt"* ]]
	# ../ and symlinks stay inside the context
	printf 'outside\n' >"$T/outside.txt"
	ln -s "$T" "$c/link-out"
	printf 'FROM busybox:test\nCOPY ../outside.txt /o\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *"outside.txt"* ]]
	printf 'FROM busybox:test\nCOPY link-out/outside.txt /o\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *"outside.txt"* ]]
}

@test "build errors: ADD of a URL says remote sources are not supported" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nADD http://example.com/file.tar.gz /opt/\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == "cairn: $c/Dockerfile:2: "*"http://example.com/file.tar.gz"* ]]
	[[ "$stderr" == *"remote sources are not supported"* ]]
	printf 'FROM busybox:test\nADD https://example.com/x /x\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == *"remote"* ]]
}

@test "build errors: --target of an unknown stage, COPY --from of an unknown stage, FROM an unknown image" {
	local c
	c=$(example multistage)
	build_error --target nosuchstage "$c"
	[[ "$stderr" == *nosuchstage* ]]
	local d
	d=$(ctx d)
	printf 'FROM busybox:test\nCOPY --from=nostage /x /x\n' | dockerfile "$d"
	build_error "$d"
	[[ "$stderr" == "cairn: $d/Dockerfile:2: "*nostage* ]]
	printf 'FROM no-such-image:1\n' | dockerfile "$d"
	build_error "$d"
	[[ "$stderr" == "cairn: $d/Dockerfile:1: "*"no-such-image:1"* ]]
	# a stage used before it is defined
	printf 'FROM busybox:test AS main\nCOPY --from=later /x /x\nFROM busybox:test AS later\n' | dockerfile "$d"
	build_error --target main "$d"
	[[ "$stderr" == *"later"* ]]
	printf 'FROM busybox:test AS a\nFROM busybox:test AS a\n' | dockerfile "$d"
	build_error "$d"
	[[ "$stderr" == "cairn: $d/Dockerfile:2: "* ]]
}

@test "build errors: bad values of instructions name the line" {
	local c
	c=$(ctx c)
	printf 'x\n' >"$c/x"
	local df
	for df in 'EXPOSE http' 'STOPSIGNAL SIGNOPE' 'HEALTHCHECK --interval=soon CMD true' \
		'HEALTHCHECK --retries=many CMD true' 'COPY --chmod=rwx x /x' 'VOLUME relative/path' \
		'COPY x Dockerfile /not-a-dir' 'ENV X=${Y' 'COPY x /bin/sh/x' 'FROM busybox:test AS Bad!'; do
		printf 'FROM busybox:test\n%s\n' "$df" | dockerfile "$c"
		build_error "$c" || {
			echo "for: $df"
			return 1
		}
		[[ "$stderr" == "cairn: $c/Dockerfile:2"* ]] || {
			echo "for: $df: $stderr"
			return 1
		}
	done
}

@test "build errors: COPY --chown of an unknown user or group names it" {
	local c
	c=$(ctx c)
	printf 'x\n' >"$c/x"
	printf 'FROM busybox:test\nCOPY --chown=nosuchuser x /x\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == "cairn: $c/Dockerfile:2: "*nosuchuser* ]]
	printf 'FROM busybox:test\nCOPY --chown=www:nosuchgroup x /x\n' | dockerfile "$c"
	build_error "$c"
	[[ "$stderr" == "cairn: $c/Dockerfile:2: "*nosuchgroup* ]]
}

# ---- the command line ----

@test "build errors: bad --build-arg, --network, --progress, -t are usage errors" {
	local c
	c=$(example hello)
	local opt
	for opt in "--build-arg==value" "--network=bogus" "--progress=bogus" "-t=Bad:Tag!"; do
		run --separate-stderr cairn build "$opt" "$c"
		show
		[ "$status" -eq 2 ] || {
			echo "for: $opt"
			return 1
		}
		[[ "${stderr%%$'\n'*}" == "cairn: "* ]]
	done
	run --separate-stderr cairn build "$c" "$c"
	[ "$status" -eq 2 ]
	run --separate-stderr cairn build --no-such-option "$c"
	[ "$status" -eq 2 ]
	# nothing was built
	run cairn --json images
	[[ "$output" != *'"hello"'* ]]
}
