#!/usr/bin/env bats
# cairn build: the step cache (what re-runs after a change, what does not),
# --no-cache, ids that depend on content only (not on mtimes, times, paths,
# owners or the store), --check-reproducible, and gc with built images and
# the build cache.

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

# A context whose Dockerfile has two COPY steps, each followed by RUN steps:
#   1 FROM  2 COPY a.txt  3 RUN  4 COPY b.txt  5 RUN  6 RUN  7 ENV
mk_steps_ctx() {
	local c=$1
	mkdir -p "$c"
	printf 'a v1\n' >"$c/a.txt"
	printf 'b v1\n' >"$c/b.txt"
	dockerfile "$c" <<'EOF'
FROM busybox:test
COPY a.txt /a.txt
RUN cat /a.txt > /a.copy
COPY b.txt /b.txt
RUN cat /b.txt > /b.copy
RUN cat /a.copy /b.copy > /both
ENV DONE=1
EOF
}

# wait_next_second: poll (20 ms) until the wall clock's second changes.
second_changed() {
	[ "$(date +%s)" != "$1" ]
}
wait_next_second() {
	run_wait_for 3 second_changed "$(date +%s)"
}

# ---- the step cache ----

@test "build cache: a rebuild with nothing changed runs nothing and gives the same id" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok -t s:1 "$c"
	local first=$ID
	[ "$(step_results)" = "- ran ran ran ran ran -" ]
	[[ "$stderr" == *"7 steps, 0 cached"* ]]
	build_ok -t s:1 "$c"
	show
	[ "$ID" = "$first" ]
	[ "$(step_results)" = "- cached cached cached cached cached -" ]
	[[ "$stderr" == *"7 steps, 5 cached"* ]]
	# stdout is the id alone, the progress is on stderr
	[ "$output" = "$first" ]
	[[ "$stderr" == *"[5/7] stage-0 5/7: RUN cat /b.txt > /b.copy  cached"* ]]
}

@test "build cache: every step of the multistage example is cached on a rebuild" {
	local c
	c=$(example multistage)
	build_ok "$c"
	local first=$ID
	build_ok "$c"
	show
	[ "$ID" = "$first" ]
	# no RUN or COPY step ran
	run step_results
	[[ "$output" != *ran* ]]
	[ "$(run_step_results)" = "cached cached" ]
}

@test "build cache: changing one COPY source re-runs exactly the steps from that COPY on" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	printf 'b v2\n' >"$c/b.txt"
	build_ok "$c"
	show
	[ "$ID" != "$first" ]
	[ "$(step_result 2)" = cached ]
	[ "$(step_result 3)" = cached ]
	[[ "$(step_result 4)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 5)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 6)" =~ ^[0-9]+\.[0-9]+s$ ]]
	local d
	d=$(co "$ID")
	[ "$(cat "$d/both")" = "$(printf 'a v1\nb v2')" ]
	# back to the old content: the old results, all from the cache
	printf 'b v1\n' >"$c/b.txt"
	build_ok "$c"
	[ "$ID" = "$first" ]
	[ "$(step_results)" = "- cached cached cached cached cached -" ]
	# the first COPY's source: everything from step 2 on runs
	printf 'a v2\n' >"$c/a.txt"
	build_ok "$c"
	[ "$(step_results)" = "- ran ran ran ran ran -" ]
}

@test "build cache: touching files (mtime only), moving or chown'ing the context re-runs nothing" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	touch -d '2001-02-03 04:05:06' "$c/a.txt" "$c/b.txt" "$c" "$c/Dockerfile"
	build_ok "$c"
	show
	[ "$ID" = "$first" ]
	[ "$(step_results)" = "- cached cached cached cached cached -" ]
	# the same content at another path, owned by someone else
	cp -a "$c" "$T/moved"
	chown -R 1000:1000 "$T/moved"
	chmod 0700 "$T/moved"
	build_ok "$T/moved"
	[ "$ID" = "$first" ]
	[ "$(step_results)" = "- cached cached cached cached cached -" ]
}

@test "build cache: a changed Dockerfile re-runs from the first changed step; comments change nothing" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	# comments and blank lines are not steps
	{
		echo '# a comment'
		echo
		cat "$c/Dockerfile"
	} >"$c/Dockerfile.new"
	mv "$c/Dockerfile.new" "$c/Dockerfile"
	build_ok "$c"
	[ "$ID" = "$first" ]
	[ "$(step_results)" = "- cached cached cached cached cached -" ]
	# an ENV before the second RUN changes its environment: it runs again
	sed -i 's|^RUN cat /b.txt|ENV STAGE=2\nRUN cat /b.txt|' "$c/Dockerfile"
	build_ok "$c"
	show
	[ "$(step_results)" = "- cached cached cached - ran ran -" ]
	# a changed RUN command runs again, and so does what follows
	sed -i 's|^RUN cat /a.txt > /a.copy|RUN cat /a.txt /a.txt > /a.copy|' "$c/Dockerfile"
	build_ok "$c"
	[ "$(step_results)" = "- cached ran ran - ran ran -" ]
}

# ctime_older FILE: FILE's ctime is more than 0.3 s in the past (the stat
# cache does not vouch for files changed within 100 ms of a scan).
ctime_older() {
	python3 -c 'import os, sys, time; sys.exit(0 if time.time() - os.stat(sys.argv[1]).st_ctime > 0.3 else 1)' "$1"
}

@test "build cache: new content of the same size and mtime is noticed" {
	local c=$T/c
	mk_steps_ctx "$c"
	touch -d '2020-01-01 00:00:00' "$c/b.txt"
	# old enough for the stat cache to remember it
	run_wait_for 5 ctime_older "$c/b.txt"
	build_ok "$c"
	local first=$ID
	build_ok "$c"
	[ "$ID" = "$first" ]
	# same size, same mtime, same inode: only the content (and ctime) change
	printf 'b V1\n' >"$c/b.txt"
	touch -d '2020-01-01 00:00:00' "$c/b.txt"
	build_ok "$c"
	show
	[ "$ID" != "$first" ]
	[ "$(step_results)" = "- cached cached ran ran ran -" ]
	local d
	d=$(co "$ID")
	[ "$(cat "$d/b.copy")" = "b V1" ]
}

@test "build cache: a mode change in the context re-runs the steps from its COPY on" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	chmod 0755 "$c/b.txt"
	build_ok "$c"
	[ "$ID" != "$first" ]
	[ "$(step_results)" = "- cached cached ran ran ran -" ]
	local d
	d=$(co "$ID")
	[ "$(stat -c %a "$d/b.txt")" = 755 ]
}

@test "build cache: a new image behind the base's tag re-runs every step" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	cp -a "$BUILD_ROOTFS" "$T/base2"
	printf 'v2\n' >"$T/base2/etc/base-version"
	import_id "$T/base2" busybox:test -q >/dev/null
	build_ok "$c"
	[ "$ID" != "$first" ]
	[ "$(run_step_results)" = "ran ran ran" ]
	local d
	d=$(co "$ID")
	[ "$(cat "$d/etc/base-version")" = v2 ]
	[ "$(cat "$d/both")" = "$(printf 'a v1\nb v1')" ]
	# the tag moved back: the old results again, from the cache
	cairn tag "$BASE_ID" busybox:test
	build_ok "$c"
	[ "$ID" = "$first" ]
	[ "$(run_step_results)" = "cached cached cached" ]
}

@test "build cache: --json reports the id, the steps and how many were cached" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok -t s:1 "$c"
	local first=$ID
	run --separate-stderr cairn --json build -t s:1 "$c"
	show
	[ "$status" -eq 0 ]
	[ "$(jpy "$output" 'j["id"]')" = "$first" ]
	[ "$(jpy "$output" 'j["steps"]')" = 7 ]
	[ "$(jpy "$output" 'j["cached"]')" = 5 ]
	[ "$(jpy "$output" 'j["tags"]')" = '["s:1"]' ]
}

@test "build cache: two builds at once in one store both succeed" {
	local c1=$T/c1 c2=$T/c2
	mk_steps_ctx "$c1"
	mk_steps_ctx "$c2"
	printf 'other\n' >"$c2/b.txt"
	"$CAIRN" --root "$ROOT" build -q -t one:1 "$c1" >"$T/one.out" 2>"$T/one.err" &
	local p1=$!
	"$CAIRN" --root "$ROOT" build -q -t two:1 "$c2" >"$T/two.out" 2>"$T/two.err" &
	local p2=$!
	local s1=0 s2=0
	wait "$p1" || s1=$?
	wait "$p2" || s2=$?
	cat "$T/one.err" "$T/two.err"
	[ "$s1" -eq 0 ]
	[ "$s2" -eq 0 ]
	[ "$(tag_target one:1)" = "$(cat "$T/one.out")" ]
	[ "$(tag_target two:1)" = "$(cat "$T/two.out")" ]
	local d
	d=$(co two:1)
	[ "$(cat "$d/both")" = "$(printf 'a v1\nother')" ]
	[ -z "$(staging_leftovers)" ]
	fsck_clean
}

@test "build cache: a --build-arg re-runs the RUN steps that see it, not the others" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo before > /before
ARG FLAVOUR=plain
RUN echo "$FLAVOUR" > /flavour
EOF
	build_ok "$c"
	local plain=$ID
	build_ok --build-arg FLAVOUR=spicy "$c"
	[ "$ID" != "$plain" ]
	[ "$(step_results)" = "- cached - ran" ]
	local d
	d=$(co "$ID")
	[ "$(cat "$d/flavour")" = spicy ]
	build_ok --build-arg FLAVOUR=plain "$c"
	[ "$ID" = "$plain" ]
	[ "$(step_results)" = "- cached - cached" ]
}

@test "build cache: --no-cache runs every RUN step again and gives the same id" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok "$c"
	local first=$ID
	build_ok --no-cache "$c"
	show
	[ "$ID" = "$first" ]
	[[ "$(step_result 3)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 5)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 6)" =~ ^[0-9]+\.[0-9]+s$ ]]
	# and a RUN whose output differs each time gives a new image
	printf 'FROM busybox:test\nRUN od -An -N8 -tx1 /dev/urandom > /random\n' | dockerfile "$c"
	build_ok "$c"
	local r1=$ID
	build_ok "$c"
	[ "$ID" = "$r1" ]
	build_ok --no-cache "$c"
	[ "$ID" != "$r1" ]
}

@test "build cache: the build's time is in no key: builds a second apart give the same id" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok -t s:1 "$c"
	local first=$ID
	local p1
	p1=$(jpy "$(inspect_json s:1)" 'j["provenance"]["started"]')
	wait_next_second
	build_ok --no-cache -t s:2 "$c"
	[ "$ID" = "$first" ]
	wait_next_second
	build_ok -t s:3 "$c"
	[ "$ID" = "$first" ]
	# what did change is in the provenance, not in the image
	local p3
	p3=$(jpy "$(inspect_json s:3)" 'j["provenance"]["started"]')
	[ "$p1" != "$p3" ]
}

# ---- reproducibility ----

@test "build: the same Dockerfile and context in two stores, with other mtimes, give the same id" {
	local c1 c2
	c1=$(example multistage "$T/one")
	build_ok "$c1"
	local first=$ID
	# another store, the context copied elsewhere with other mtimes
	c2=$T/elsewhere/two
	mkdir -p "$T/elsewhere"
	cp -r "$c1" "$c2"
	find "$c2" -exec touch -h -d '1999-12-31 23:59:59' {} +
	local root1=$ROOT
	ROOT=$T/root2
	local base2
	base2=$(import_id "$BUILD_ROOTFS" busybox:test -q)
	[ "$base2" = "$BASE_ID" ]
	build_ok "$c2"
	[ "$ID" = "$first" ]
	# every RUN step ran in the new store
	[ "$(run_step_results)" = "ran ran" ]
	ROOT=$root1
}

@test "build --check-reproducible: exits 0 and prints the id; records nothing" {
	local c
	c=$(example hello)
	run cairn --json images
	local before=$output
	run --separate-stderr cairn build --check-reproducible "$c"
	show
	[ "$status" -eq 0 ]
	local id
	id=$(last_line "$output")
	[[ "$id" =~ ^sha256:[0-9a-f]{64}$ ]]
	[[ "$stderr" == *reproducible* ]]
	# no image, no tag; the scratch stores are gone
	run cairn --json images
	[ "$output" = "$before" ]
	[ -z "$(staging_leftovers)" ]
	# the id is the one a normal build gives
	build_ok "$c"
	[ "$ID" = "$id" ]
	run --separate-stderr cairn --json build --check-reproducible "$c"
	show
	[ "$status" -eq 0 ]
	[ "$(jpy "$output" 'j["reproducible"]')" = true ]
	[ "$(jpy "$output" 'j["id"]')" = "$id" ]
}

@test "build --check-reproducible: a nondeterministic RUN exits 1 and names the path" {
	local c
	c=$(ctx c)
	# busybox's date has no %N: the random bytes make it differ every time
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo stable > /stable
RUN (date +%N; od -An -N8 -tx1 /dev/urandom) > /t
EOF
	run --separate-stderr cairn build --check-reproducible "$c"
	show
	[ "$status" -eq 1 ]
	# one line names the first difference
	local msg
	msg=$(printf '%s\n' "$stderr" | grep '^cairn: ')
	[[ "$msg" == "cairn: not reproducible: /t "* ]]
	[ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ]
	[ -z "$(staging_leftovers)" ]
	run --separate-stderr cairn --json build --check-reproducible "$c"
	[ "$status" -eq 1 ]
	[ "$(jpy "$output" 'j["reproducible"]')" = false ]
	[[ "$(jpy "$output" 'j["difference"]')" == "/t "* ]]
}

# ---- gc ----

@test "build and gc: after gc a rebuild works and the build cache still answers" {
	local c
	c=$(example multistage)
	build_ok -t greet:1 "$c"
	local first=$ID
	run cairn gc
	show
	[ "$status" -eq 0 ]
	fsck_clean
	build_ok -t greet:1 "$c"
	show
	[ "$ID" = "$first" ]
	# every RUN, also those of the builder and test stages (whose results
	# are in no tagged image), comes from the cache
	[ "$(run_step_results)" = "cached cached" ]
	d=$(co greet:1)
	[ -x "$d/usr/local/bin/greet" ]
	# a change still re-runs what it must, from what gc left
	printf 'echo changed\n' >>"$c/src/main.sh"
	build_ok -t greet:2 "$c"
	[ "$ID" != "$first" ]
	fsck_clean
}

@test "build and gc: a built image that is untagged is removed by gc" {
	local c
	c=$(example hello)
	build_ok -t hello:1 "$c"
	local id=$ID
	# an untagged build: listed as <none> until gc
	printf 'echo more\n' >>"$c/hello.txt"
	build_ok "$c"
	local untagged=$ID
	run cairn images
	show
	[[ "$output" =~ \<none\>\ +\<none\>\ +${untagged:7:12} ]]
	run cairn rm hello:1
	[ "$status" -eq 0 ]
	run cairn gc
	show
	[ "$status" -eq 0 ]
	[[ "$output" == *"$untagged"* ]]
	[[ "$output" == *"$id"* ]]
	run cairn inspect "$untagged"
	[ "$status" -eq 1 ]
	run cairn inspect "$id"
	[ "$status" -eq 1 ]
	run cairn --json images
	[[ "$output" != *"$untagged"* ]]
	[[ "$output" != *"$id"* ]]
	fsck_clean
	# rebuilding gives the same image back
	build_ok -t hello:again "$c"
	[ "$ID" = "$untagged" ]
	d=$(co hello:again)
	[ "$(tail -n 1 "$d/etc/hello.txt")" = "echo more" ]
}

@test "build and gc: gc --build-cache forgets the cache; the next build runs every RUN" {
	local c=$T/c
	mk_steps_ctx "$c"
	build_ok -t s:1 "$c"
	local first=$ID
	run cairn gc --build-cache
	show
	[ "$status" -eq 0 ]
	fsck_clean
	build_ok "$c"
	[ "$ID" = "$first" ]
	[[ "$(step_result 3)" =~ ^[0-9]+\.[0-9]+s$ ]]
	[[ "$(step_result 5)" =~ ^[0-9]+\.[0-9]+s$ ]]
}
