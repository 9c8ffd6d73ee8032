#!/usr/bin/env bats
# cairn build: the instructions of a Dockerfile and what each leaves in the
# image (files, through a checkout; the run config, through inspect --json),
# the example contexts of examples/build, multi-stage builds and --target,
# variable expansion, Containerfile and -f, and provenance.

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

# ---- the examples ----

@test "build: examples/build/hello builds, is tagged and listed, and runs" {
	local c
	c=$(example hello)
	build_ok -t hello:1 -t hello:latest -t other/name "$c"
	# the id is the only thing on stdout; the progress is on stderr
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"built in "* ]]
	[ "$(tag_target hello:1)" = "$ID" ]
	[ "$(tag_target hello:latest)" = "$ID" ]
	[ "$(tag_target other/name:latest)" = "$ID" ]
	run cairn history hello
	show
	[[ "$output" =~ hello:1\ +${ID:7:12}\ +-\ +build ]]
	run cairn images
	show
	[[ "$output" =~ hello\ +1\ +${ID:7:12} ]]
	local d
	d=$(co hello:1)
	[ "$(cat "$d/etc/hello.txt")" = "hello from a cairn build" ]
	[ "$(cat "$d/etc/HELLO.txt")" = "HELLO FROM A CAIRN BUILD" ]
	[ -x "$d/bin/busybox" ]
	[ "$(config hello:1 'c["Cmd"]')" = '["cat","/etc/HELLO.txt"]' ]
	run --separate-stderr cairn run hello:1
	show
	[ "$status" -eq 0 ]
	[ "$output" = "HELLO FROM A CAIRN BUILD" ]
}

@test "build: examples/build/multistage ships only the program, tested in its own stage" {
	local c
	c=$(example multistage)
	build_ok -t greet:1 "$c"
	local d
	d=$(co greet:1)
	[ -x "$d/usr/local/bin/greet" ]
	# the builder's sources and the test stage's files stay in their stages
	[ ! -e "$d/src" ]
	[ ! -e "$d/out" ]
	[ ! -e "$d/test.log" ]
	[ "$(cat "$d/usr/share/greet/test.log")" = "hello, tester" ]
	# the program is the concatenation of the sources, in order
	cat "$c/src/header.sh" "$c/src/lib/greet.sh" "$c/src/lib/version.sh" "$c/src/main.sh" >"$T/expected"
	cmp "$T/expected" "$d/usr/local/bin/greet"
	[ "$(config greet:1 'c["Entrypoint"]')" = '["/usr/local/bin/greet"]' ]
	[ "$(config greet:1 'c["Cmd"]')" = '["world"]' ]
	[ "$(config greet:1 'c["User"]')" = www ]
	[ "$(config greet:1 'c["WorkingDir"]')" = /www ]
	[ "$(config greet:1 'c["Labels"]["org.example.app"]')" = greet ]
	run --separate-stderr cairn run greet:1 -- cairn
	show
	[ "$status" -eq 0 ]
	[ "$output" = "hello, cairn" ]
}

@test "build: --target builds up to a stage and skips the stages it does not need" {
	local c
	c=$(example multistage)
	build_ok --target builder -t greet:builder "$c"
	# builder has 4 steps; test and the final stage do not run
	[[ "$stderr" == *"[4/4] builder 4/4: RUN mkdir -p /out"* ]]
	[[ "$stderr" != *"test 1/"* ]]
	local d
	d=$(co greet:builder)
	[ -x "$d/out/greet" ]
	[ -f "$d/src/main.sh" ]
	[ -f "$d/src/lib/greet.sh" ]
	# .dockerignore: README.md and notes/ are not in the context
	[ ! -e "$d/src/README.md" ]
	[ "$(config greet:builder 'c["WorkingDir"]')" = /src ]
	build_ok --target test "$c"
	d=$(co "$ID")
	[ "$(cat "$d/test.log")" = "hello, tester" ]
	[ -x "$d/usr/local/bin/greet" ]
}

# ---- FROM ----

@test "build: FROM NAME:TAG, FROM a full id and FROM an id prefix give the same image" {
	local c
	c=$(ctx c)
	printf 'x\n' >"$c/x"
	printf 'FROM busybox:test\nCOPY x /x\n' | dockerfile "$c"
	build_ok "$c"
	local by_name=$ID
	printf 'FROM %s\nCOPY x /x\n' "$BASE_ID" | dockerfile "$c"
	build_ok "$c"
	[ "$ID" = "$by_name" ]
	printf 'FROM %s\nCOPY x /x\n' "${BASE_ID:7:16}" | dockerfile "$c"
	build_ok "$c"
	[ "$ID" = "$by_name" ]
	local d
	d=$(co "$ID")
	[ "$(cat "$d/x")" = x ]
	[ -e "$d/bin/sh" ]
}

@test "build: FROM scratch starts from an empty root" {
	local c
	c=$(ctx c)
	printf 'static\n' >"$c/file"
	printf 'FROM scratch\nCOPY file /data/file\nENV A=1\n' | dockerfile "$c"
	build_ok -t s:1 "$c"
	local d
	d=$(co s:1)
	[ "$(files_in "$d")" = "$(printf 'data/\ndata/file')" ]
	[ "$(cat "$d/data/file")" = static ]
	# a RUN in scratch has no shell to run
	printf 'FROM scratch\nRUN true\n' | dockerfile "$c"
	build_fails "$c"
}

@test "build: ARG before FROM chooses the base, from its default or --build-arg" {
	# a second base that differs from busybox:test by one file
	cp -a "$BUILD_ROOTFS" "$T/other"
	printf 'other\n' >"$T/other/etc/flavour"
	local other
	other=$(import_id "$T/other" busybox:other -q)
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
ARG FLAVOUR=test
ARG BASE=busybox:${FLAVOUR}
FROM $BASE
ARG BASE
RUN echo "$BASE" > /base
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ ! -e "$d/etc/flavour" ]
	[ "$(cat "$d/base")" = busybox:test ]
	build_ok --build-arg FLAVOUR=other "$c"
	d=$(co "$ID")
	[ "$(cat "$d/etc/flavour")" = other ]
	[ "$(cat "$d/base")" = busybox:other ]
	build_ok --build-arg "BASE=$other" "$c"
	d=$(co "$ID")
	[ "$(cat "$d/etc/flavour")" = other ]
}

@test "build: AS names a stage that a later FROM and COPY --from (by name and index) use" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test AS One
RUN echo one > /one

FROM one AS two
RUN echo two > /two

FROM busybox:test
COPY --from=0 /one /from-index
COPY --from=ONE /one /from-name
COPY --from=two /one /two /both/
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/from-index")" = one ]
	[ "$(cat "$d/from-name")" = one ]
	[ "$(cat "$d/both/one")" = one ]
	[ "$(cat "$d/both/two")" = two ]
	[ ! -e "$d/one" ]
	[ ! -e "$d/two" ]
	# --target one: the image of the first stage
	build_ok --target one "$c"
	d=$(co "$ID")
	[ "$(cat "$d/one")" = one ]
	[ ! -e "$d/two" ]
}

@test "build: COPY --from an image of the store" {
	local c
	c=$(ctx c)
	printf 'FROM scratch\nCOPY --from=busybox:test /etc/passwd /etc/group /etc/\n' | dockerfile "$c"
	build_ok "$c"
	local d
	d=$(co "$ID")
	cmp "$BUILD_ROOTFS/etc/passwd" "$d/etc/passwd"
	cmp "$BUILD_ROOTFS/etc/group" "$d/etc/group"
}

# ---- RUN forms ----

@test "build: RUN in shell form and exec form, with \\ continuations" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo one \
    two \
  && echo three > /shell.txt
RUN ["/bin/sh", "-c", "echo exec form > /exec.txt"]
RUN [ "/bin/busybox", "touch", \
      "/exec-continued" ]
# a comment between continued lines does not end the instruction
RUN echo a \
# ignored
    b > /with-comment.txt
RUN ["sh", "-c", "echo $0 > /dollar0.txt"]
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/shell.txt")" = three ]
	[ "$(cat "$d/exec.txt")" = "exec form" ]
	[ -f "$d/exec-continued" ]
	[ "$(cat "$d/with-comment.txt")" = "a b" ]
	[ "$(cat "$d/dollar0.txt")" = sh ]
}

@test "build: a RUN's output does not end up on stdout" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nRUN echo run-output-marker; echo err-marker >&2\n' | dockerfile "$c"
	build_ok --progress plain "$c"
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"run-output-marker"* ]]
	[[ "$stderr" == *"err-marker"* ]]
	[[ "$output" != *marker* ]]
}

# ---- COPY and ADD ----

@test "build: COPY and ADD with globs, files, directories and several sources" {
	local c
	c=$(example files)
	mkdir -p "$c/links/empty"
	ln -s ../a.txt "$c/links/to-a"
	ln -s /etc/passwd "$c/links/abs"
	dockerfile "$c" <<'EOF'
FROM busybox:test
COPY *.txt /glob/
COPY ?.txt /question/
COPY [ab].txt /class/
COPY conf/*.conf /etc/app/
COPY conf /confdir
COPY a.txt b.txt /two/
COPY a.txt /renamed.txt
ADD c.m? /added/
ADD conf/app.conf /etc/app.conf
COPY a.txt relative/
COPY links /links
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(files_in "$d/glob")" = "$(printf 'a.txt\nab.txt\nb.txt')" ]
	[ "$(files_in "$d/question")" = "$(printf 'a.txt\nb.txt')" ]
	[ "$(files_in "$d/class")" = "$(printf 'a.txt\nb.txt')" ]
	[ "$(files_in "$d/etc/app")" = "$(printf 'app.conf\ndb.conf')" ]
	# a directory's content goes into the destination, not the directory
	[ "$(files_in "$d/confdir")" = "$(printf 'app.conf\ndb.conf\nnotes.txt')" ]
	[ "$(files_in "$d/two")" = "$(printf 'a.txt\nb.txt')" ]
	[ "$(cat "$d/renamed.txt")" = a ]
	[ "$(cat "$d/added/c.md")" = "# c" ]
	[ "$(cat "$d/etc/app.conf")" = name=app ]
	# a relative destination without WORKDIR is relative to /
	[ "$(cat "$d/relative/a.txt")" = a ]
	# symlinks are copied as symlinks, empty directories are kept
	[ "$(readlink "$d/links/to-a")" = ../a.txt ]
	[ "$(readlink "$d/links/abs")" = /etc/passwd ]
	[ -d "$d/links/empty" ]
	# files from the context belong to root, whoever owns them on the host
	[ "$(stat -c %u:%g "$d/renamed.txt")" = 0:0 ]
}

@test "build: COPY keeps a file's mode; --chmod sets it; --chown=UID:GID sets the owner" {
	local c
	c=$(ctx c)
	printf '#!/bin/sh\necho tool\n' >"$c/tool"
	chmod 0750 "$c/tool"
	printf 'data\n' >"$c/data"
	chmod 0644 "$c/data"
	chown 4321:4321 "$c/data"
	mkdir "$c/dir"
	printf 'in dir\n' >"$c/dir/f"
	dockerfile "$c" <<'EOF'
FROM busybox:test
COPY tool /kept-mode
COPY --chmod=0600 tool /chmod
COPY --chown=1234:5678 data /chown-num
COPY --chown=77 data /chown-user-only
COPY --chown=1000:1000 --chmod=0640 dir /owned-dir/
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(stat -c '%a %u:%g' "$d/kept-mode")" = "750 0:0" ]
	[ "$(stat -c '%a %u:%g' "$d/chmod")" = "600 0:0" ]
	[ "$(stat -c '%a %u:%g' "$d/chown-num")" = "644 1234:5678" ]
	[ "$(stat -c '%u:%g' "$d/chown-user-only")" = 77:77 ]
	[ "$(stat -c '%a %u:%g' "$d/owned-dir/f")" = "640 1000:1000" ]
}

@test "build: COPY --chown=NAME and NAME:GROUP use the image's /etc/passwd and /etc/group" {
	local c
	c=$(ctx c)
	printf 'data\n' >"$c/data"
	dockerfile "$c" <<'EOF'
FROM busybox:test
COPY --chown=www data /by-name
COPY --chown=www:nogroup data /by-names
COPY --chown=nobody:33 data /mixed
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	# www is 33:33, nobody 65534 and nogroup 65534 in the sample rootfs
	[ "$(stat -c %u:%g "$d/by-name")" = 33:33 ]
	[ "$(stat -c %u:%g "$d/by-names")" = 33:65534 ]
	[ "$(stat -c %u:%g "$d/mixed")" = 65534:33 ]
}

@test "build: .dockerignore leaves paths out of the context, ! brings some back" {
	local c
	c=$(example files)
	printf 'FROM busybox:test\nCOPY . /ctx/\n' | dockerfile "$c"
	build_ok "$c"
	local d
	d=$(co "$ID")
	run files_in "$d/ctx"
	show
	# (the Dockerfile and .dockerignore are in the context too, as in Docker)
	[ "$(printf '%s\n' "${lines[@]}" | grep -vx -e Dockerfile -e .dockerignore)" = "$(
		cat <<'EOF'
a.txt
ab.txt
b.txt
build/
build/keep/
build/keep/kept.txt
c.md
conf/
conf/app.conf
conf/db.conf
conf/notes.txt
docs/
docs/keep.md
important.log
EOF
	)" ]
	# an ignored file is not there to COPY, by name or by glob
	printf 'FROM busybox:test\nCOPY secret/key.pem /\n' | dockerfile "$c"
	build_fails "$c"
	[[ "$stderr" == *"secret/key.pem"* ]]
	printf 'FROM busybox:test\nCOPY *.log /logs/\n' | dockerfile "$c"
	build_ok "$c"
	d=$(co "$ID")
	[ "$(files_in "$d/logs")" = important.log ]
}

@test "build: ADD extracts a local .tar and .tar.gz; COPY does not" {
	local c
	c=$(ctx c)
	mkdir -p "$T/src/pkg/sub"
	printf 'one\n' >"$T/src/pkg/one"
	printf 'two\n' >"$T/src/pkg/sub/two"
	chmod 0751 "$T/src/pkg/sub/two"
	chown 12:34 "$T/src/pkg/one"
	tar -C "$T/src" -cf "$c/pkg.tar" pkg
	tar -C "$T/src" -czf "$c/pkg.tar.gz" pkg
	dockerfile "$c" <<'EOF'
FROM busybox:test
ADD pkg.tar /opt/plain/
ADD pkg.tar.gz /opt/gz
COPY pkg.tar.gz /opt/copied/
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/opt/plain/pkg/one")" = one ]
	[ "$(cat "$d/opt/plain/pkg/sub/two")" = two ]
	[ "$(cat "$d/opt/gz/pkg/sub/two")" = two ]
	[ "$(stat -c %a "$d/opt/gz/pkg/sub/two")" = 751 ]
	# an archive's owners are kept
	[ "$(stat -c %u:%g "$d/opt/gz/pkg/one")" = 12:34 ]
	[ ! -e "$d/opt/plain/pkg.tar" ]
	cmp "$c/pkg.tar.gz" "$d/opt/copied/pkg.tar.gz"
}

# ---- config instructions ----

@test "build: ENV is in the config and seen by later RUN steps and instructions" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
ENV APP=cairn VERSION="1.0 beta"
ENV PATH=/opt/bin:$PATH
ENV OLD style value
RUN echo "$APP $VERSION|$OLD" > /env.txt && echo "$PATH" > /path.txt
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/env.txt")" = "cairn 1.0 beta|style value" ]
	[ "$(cat "$d/path.txt")" = /opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ]
	run config "$ID" 'c["Env"]'
	show
	[ "$output" = '["PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP=cairn","VERSION=1.0 beta","OLD=style value"]' ]
}

@test "build: ARG defaults and --build-arg reach RUN, not the image's config" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
ARG NAME=default-name
ARG EMPTY
ARG OVERRIDDEN=from-arg
ENV OVERRIDDEN=from-env
RUN echo "$NAME|${EMPTY:-unset}|$OVERRIDDEN" > /args.txt
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/args.txt")" = "default-name|unset|from-env" ]
	build_ok --build-arg NAME=given --build-arg EMPTY=full "$c"
	d=$(co "$ID")
	[ "$(cat "$d/args.txt")" = "given|full|from-env" ]
	# KEY alone takes the value from the environment
	NAME=from-environment build_ok --build-arg NAME "$c"
	d=$(co "$ID")
	[ "$(cat "$d/args.txt")" = "from-environment|unset|from-env" ]
	run config "$ID" 'c["Env"]'
	[[ "$output" != *NAME* ]]
	# an unused --build-arg is a warning, not an error
	build_ok --build-arg NOT_DECLARED=1 "$c"
	[[ "$stderr" == *"NOT_DECLARED"* ]]
}

@test "build: ARG scope: a global ARG is seen in a stage only when declared there; ENV carries to FROM stage" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
ARG V=global
FROM busybox:test AS one
RUN echo "[$V]" > /v-undeclared
ARG V
RUN echo "[$V]" > /v-declared
ARG S=stage-one
ENV E=from-one
FROM one AS two
RUN echo "[$S][$E][$V]" > /two
FROM busybox:test
COPY --from=two /v-undeclared /v-declared /two /
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/v-undeclared")" = "[]" ]
	[ "$(cat "$d/v-declared")" = "[global]" ]
	# ARGs end with their stage; ENV is part of the image the next stage starts from
	[ "$(cat "$d/two")" = "[][from-one][]" ]
	build_ok --build-arg V=given "$c"
	d=$(co "$ID")
	[ "$(cat "$d/v-undeclared")" = "[]" ]
	[ "$(cat "$d/v-declared")" = "[given]" ]
}

@test "build: WORKDIR is created when missing, a relative one is joined, RUN and COPY use it" {
	local c
	c=$(ctx c)
	printf 'f\n' >"$c/f"
	dockerfile "$c" <<'EOF'
FROM busybox:test
WORKDIR /app/deep
WORKDIR sub
RUN pwd > here.txt
COPY f copied
WORKDIR ../other
WORKDIR /www
RUN pwd > /www-pwd.txt
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ -d "$d/app/deep/sub" ]
	[ -d "$d/app/deep/other" ]
	[ "$(cat "$d/app/deep/sub/here.txt")" = /app/deep/sub ]
	[ "$(cat "$d/app/deep/sub/copied")" = f ]
	[ "$(cat "$d/www-pwd.txt")" = /www ]
	[ "$(config "$ID" 'c["WorkingDir"]')" = /www ]
	# an existing directory keeps its owner
	[ "$(stat -c %u:%g "$d/www")" = 33:33 ]
}

@test "build: USER: RUN runs as that user, by name or number" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
USER www
RUN id -u > /tmp/uid && id -g > /tmp/gid
USER 1234:4321
RUN id -u > /tmp/uid2 && id -g > /tmp/gid2
USER root
RUN id -u > /uid-root
USER nobody
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/tmp/uid")" = 33 ]
	[ "$(cat "$d/tmp/gid")" = 33 ]
	[ "$(stat -c %u:%g "$d/tmp/uid")" = 33:33 ]
	[ "$(cat "$d/tmp/uid2")" = 1234 ]
	[ "$(cat "$d/tmp/gid2")" = 4321 ]
	[ "$(cat "$d/uid-root")" = 0 ]
	[ "$(config "$ID" 'c["User"]')" = nobody ]
}

@test "build: EXPOSE, CMD, ENTRYPOINT, LABEL, STOPSIGNAL, VOLUME land in the config" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
EXPOSE 80 443/tcp 53/udp
EXPOSE 8000-8002
LABEL org.opencontainers.image.title="web server" version=2
LABEL multi.word=a\ b
ENTRYPOINT ["/bin/httpd", "-f"]
CMD ["-p", "80"]
STOPSIGNAL SIGQUIT
VOLUME /data
VOLUME ["/logs", "/cache"]
EOF
	build_ok "$c"
	run config "$ID" 'sorted(c["ExposedPorts"])'
	show
	[ "$output" = '["443/tcp","53/udp","80/tcp","8000/tcp","8001/tcp","8002/tcp"]' ]
	[ "$(config "$ID" 'c["Labels"]')" = '{"multi.word":"a b","org.opencontainers.image.title":"web server","version":"2"}' ]
	[ "$(config "$ID" 'c["Entrypoint"]')" = '["/bin/httpd","-f"]' ]
	[ "$(config "$ID" 'c["Cmd"]')" = '["-p","80"]' ]
	[ "$(config "$ID" 'c["StopSignal"]')" = SIGQUIT ]
	[ "$(config "$ID" 'sorted(c["Volumes"])')" = '["/cache","/data","/logs"]' ]
}

@test "build: CMD and ENTRYPOINT in shell form run through /bin/sh -c; the last CMD wins" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
CMD echo first
ENTRYPOINT echo "entry $HOME"
CMD echo second
EOF
	build_ok "$c"
	[ "$(config "$ID" 'c["Cmd"]')" = '["/bin/sh","-c","echo second"]' ]
	[ "$(config "$ID" 'c["Entrypoint"]')" = '["/bin/sh","-c","echo \"entry $HOME\""]' ]
}

@test "build: HEALTHCHECK is stored: Test, Interval and Timeout in ns, Retries; NONE" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1/ || exit 1
EOF
	build_ok -t hc:1 "$c"
	[ "$(config hc:1 'c["Healthcheck"]["Test"]')" = '["CMD-SHELL","wget -q -O /dev/null http://127.0.0.1/ || exit 1"]' ]
	[ "$(config hc:1 'c["Healthcheck"]["Interval"]')" = 30000000000 ]
	[ "$(config hc:1 'c["Healthcheck"]["Timeout"]')" = 90000000000 ]
	[ "$(config hc:1 'c["Healthcheck"]["StartPeriod"]')" = 500000000 ]
	[ "$(config hc:1 'c["Healthcheck"]["Retries"]')" = 3 ]
	dockerfile "$c" <<'EOF'
FROM hc:1
HEALTHCHECK CMD ["/bin/true", "arg"]
EOF
	build_ok -t hc:2 "$c"
	[ "$(config hc:2 'c["Healthcheck"]["Test"]')" = '["CMD","/bin/true","arg"]' ]
	printf 'FROM hc:1\nHEALTHCHECK NONE\n' | dockerfile "$c"
	build_ok "$c"
	[ "$(config "$ID" 'c["Healthcheck"]["Test"]')" = '["NONE"]' ]
}

@test "build: SHELL changes the shell of later RUN and shell-form CMD" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
FROM busybox:test
RUN echo default > /before.txt
SHELL ["/bin/sh", "-c", "echo custom-shell > /shell-marker && eval \"$0\""]
RUN echo after > /after.txt
CMD echo hi
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/before.txt")" = default ]
	[ "$(cat "$d/after.txt")" = after ]
	[ "$(cat "$d/shell-marker")" = custom-shell ]
	[ "$(config "$ID" 'c["Shell"]')" = '["/bin/sh","-c","echo custom-shell > /shell-marker && eval \"$0\""]' ]
	[ "$(config "$ID" 'c["Cmd"][-1]')" = "echo hi" ]
	[ "$(config "$ID" 'c["Cmd"][0]')" = /bin/sh ]
	[ "$(config "$ID" 'len(c["Cmd"])')" = 4 ]
}

# ---- variables ----

@test "build: \$VAR, \${VAR}, \${VAR:-default}, \${VAR:+alt} and \\\$ in instructions" {
	local c
	c=$(ctx c)
	printf 'payload\n' >"$c/payload.txt"
	dockerfile "$c" <<'EOF'
FROM busybox:test
ARG DIR=/srv
ENV NAME=app PORT=8080
ENV FULL=${DIR}/$NAME UNSET_DEFAULT=${NOPE:-fallback} SET_ALT=${NAME:+yes} UNSET_ALT=${NOPE:+no}
ENV LITERAL=\$NAME
WORKDIR $DIR/${NAME}
COPY payload.txt ${FULL}-data/
EXPOSE ${PORT}
LABEL dir=$DIR
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/srv/app-data/payload.txt")" = payload ]
	run config "$ID" 'c["Env"]'
	show
	[[ "$output" == *'"FULL=/srv/app"'* ]]
	[[ "$output" == *'"UNSET_DEFAULT=fallback"'* ]]
	[[ "$output" == *'"SET_ALT=yes"'* ]]
	[[ "$output" == *'"UNSET_ALT="'* ]]
	[[ "$output" == *'"LITERAL=$NAME"'* ]]
	[ "$(config "$ID" 'c["WorkingDir"]')" = /srv/app ]
	[ "$(config "$ID" 'list(c["ExposedPorts"])')" = '["8080/tcp"]' ]
	[ "$(config "$ID" 'c["Labels"]["dir"]')" = /srv ]
}

# ---- the Dockerfile ----

@test "build: Containerfile is used when there is no Dockerfile; -f names any file" {
	local c
	c=$(ctx c)
	printf 'FROM busybox:test\nRUN echo containerfile > /which\n' | dockerfile "$c" Containerfile
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/which")" = containerfile ]
	# Dockerfile wins over Containerfile
	printf 'FROM busybox:test\nRUN echo dockerfile > /which\n' | dockerfile "$c"
	build_ok "$c"
	d=$(co "$ID")
	[ "$(cat "$d/which")" = dockerfile ]
	# -f: a file outside the context, relative to the current directory
	mkdir "$T/elsewhere"
	printf 'FROM busybox:test\nRUN echo dash-f > /which\n' >"$T/elsewhere/build.df"
	cd "$T"
	build_ok -f elsewhere/build.df "$c"
	d=$(co "$ID")
	[ "$(cat "$d/which")" = dash-f ]
	# the context defaults to the current directory
	cd "$c"
	build_ok
	d=$(co "$ID")
	[ "$(cat "$d/which")" = dockerfile ]
}

@test "build: parser directives, comments and lowercase instructions" {
	local c
	c=$(ctx c)
	dockerfile "$c" <<'EOF'
# escape=`
# a comment after the directive
from busybox:test
run echo a `
    b > /escaped.txt
copy Dockerfile C:\not\a\path
EOF
	build_ok "$c"
	local d
	d=$(co "$ID")
	[ "$(cat "$d/escaped.txt")" = "a b" ]
	[ -f "$d/C:\\not\\a\\path" ]
}

# ---- provenance ----

@test "build: provenance (Dockerfile, context, bases, build args, times) in inspect --json" {
	local c
	c=$(example hello)
	build_ok -t hello:1 --build-arg BASE=busybox:test "$c"
	local j
	j=$(inspect_json hello:1)
	run jpy "$j" 'sorted(j["provenance"])'
	show
	for k in dockerfile context bases build_args started finished; do
		[[ "$output" == *"\"$k\""* ]] || { echo "no $k in the provenance"; return 1; }
	done
	# the Dockerfile is named by its content
	[ "$(jpy "$j" 'j["provenance"]["dockerfile"]')" = "sha256:$(sha256sum <"$c/Dockerfile" | cut -d' ' -f1)" ]
	[[ "$(jpy "$j" 'j["provenance"]["context"]')" =~ ^sha256:[0-9a-f]{64}$ ]]
	[ "$(jpy "$j" 'j["provenance"]["bases"]')" = "[{\"id\":\"$BASE_ID\",\"ref\":\"busybox:test\"}]" ]
	[ "$(jpy "$j" 'j["provenance"]["build_args"]')" = '{"BASE":"busybox:test"}' ]
	local started finished
	started=$(jpy "$j" 'j["provenance"]["started"]')
	finished=$(jpy "$j" 'j["provenance"]["finished"]')
	[[ "$started" =~ ^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T ]]
	[[ ! "$finished" < "$started" ]]
	# build --json reports it too, with the id
	run --separate-stderr cairn --json build "$c"
	show
	[ "$status" -eq 0 ]
	[ "$(jpy "$output" 'j["id"]')" = "$(tag_target hello:1)" ]
	[ "$(jpy "$output" 'j["provenance"]["dockerfile"]')" = "$(jpy "$j" 'j["provenance"]["dockerfile"]')" ]
	# an imported image has none
	run jpy "$(inspect_json busybox:test)" 'j["provenance"]'
	[ "$output" = "<missing>" ]
}
