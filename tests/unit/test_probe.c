/* Unit tests of src/router/probe.c: spawning, the kept end of the output,
 * results and reasons, stopping and killing, and what the child inherits
 * (no fd but stdio, no blocked or ignored signal), and the reaper of the
 * probes nobody waits for. probe_start runs
 * /proc/self/exe, which here is this test binary: called as
 * "cairn --root ROOT probe ..." it plays cairn probe (fake_probe). */
#include "unit.h"

#include "../../src/base/loop.h"
#include "../../src/router/probe.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

/* --- the fake cairn probe ------------------------------------------------- */

/* argv: cairn --root ROOT probe --timeout MS INSTANCE -- CMD...; CMD "argv",
 * "fds" and "signals" report on the child itself (and exit 1, so that the
 * report is the reason); anything else is exec'd. */
_noreturn_ static void fake_probe(int argc, char **argv)
{
	if (argc < 9 || !streq(argv[3], "probe") || !streq(argv[4], "--timeout") ||
	    !streq(argv[7], "--")) {
		fprintf(stderr, "bad argv\n");
		_exit(99);
	}
	char **cmd = argv + 8;
	if (streq(cmd[0], "argv")) {
		printf("argv: %s %s %s %s\n", argv[0], argv[2], argv[5], argv[6]);
		fflush(stdout);
		_exit(1);
	}
	if (streq(cmd[0], "fds")) {
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			_exit(98);
		printf("fds:");
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && strtol(de->d_name, NULL, 10) != dirfd(d))
				printf(" %s", de->d_name);
		printf("\n");
		fflush(stdout);
		closedir(d);
		_exit(1);
	}
	if (streq(cmd[0], "signals")) {
		FILE *f = fopen("/proc/self/status", "re");
		char line[256], blk[64] = "?", ign[64] = "?";
		while (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			if (startswith(line, "SigBlk:\t"))
				snprintf(blk, sizeof(blk), "%.32s", line + 8);
			if (startswith(line, "SigIgn:\t"))
				snprintf(ign, sizeof(ign), "%.32s", line + 8);
		}
		/* glibc's posix_spawn leaves its own two signals (32, 33) ignored:
		 * the standard ones (1-31) are what the router may have changed */
		printf("blocked %llx ignored %llx\n", strtoull(blk, NULL, 16),
		       strtoull(ign, NULL, 16) & 0x7fffffffULL);
		fflush(stdout);
		_exit(1);
	}
	execvp(cmd[0], cmd);
	_exit(127);
}

/* --- helpers ---------------------------------------------------------------- */

/* What the router's loop does: take the output as it comes, finish once the
 * pidfd is readable. Fails the test after 10 s. */
static bool run_to_end(struct probe *p, char *why, size_t why_len)
{
	bool out_open = true;
	for (int rounds = 0; rounds < 10000; rounds++) {
		struct pollfd pf[2] = {{.fd = p->pidfd, .events = POLLIN},
				       {.fd = out_open ? p->out_fd : -1, .events = POLLIN}};
		int r = poll(pf, 2, 10000);
		assert_true(r > 0);
		if (pf[1].revents && probe_read(p) != -EAGAIN)
			out_open = false;
		if (pf[0].revents) {
			bool ok;
			probe_finish(p, &ok, why, why_len);
			assert_false(probe_running(p));
			return ok;
		}
	}
	fail_msg("the probe did not end");
	return false;
}

static void start(struct probe *p, char **cmd)
{
	struct cairn_error err = {0};
	int r = probe_start(p, "/nonexistent-root", "inst-1", cmd, 1500, &err);
	if (r < 0)
		fail_msg("probe_start: %s", error_message(&err));
	assert_true(probe_running(p));
}

static void assert_reason(char **cmd, bool want_ok, const char *want_why)
{
	struct probe p = {0};
	char why[160];
	start(&p, cmd);
	bool ok = run_to_end(&p, why, sizeof(why));
	if (ok != want_ok || !streq(why, want_why))
		fail_msg("ok %d, why \"%s\"; expected ok %d, why \"%s\"", ok, why, want_ok,
			 want_why);
}

/* --- tests ---------------------------------------------------------------------- */

static void test_results(void **state)
{
	char *ok[] = {"true", NULL};
	assert_reason(ok, true, "");
	char *silent[] = {"false", NULL};
	assert_reason(silent, false, "exit 1");
	/* the last line of stdout and stderr, without cairn probe's "cairn: " */
	char *exit3[] = {"sh", "-c", "echo first; echo 'cairn: the last line  ' >&2; echo; exit 3",
			 NULL};
	assert_reason(exit3, false, "exit 3: the last line");
	char *argv[] = {"argv", NULL};
	assert_reason(argv, false, "exit 1: argv: cairn /nonexistent-root 1500 inst-1");
	/* only printable ASCII reaches the reason (it goes into JSON) */
	char *bytes[] = {"sh", "-c", "printf 'bad\\001\\377bytes\\n'; exit 2", NULL};
	assert_reason(bytes, false, "exit 2: bad??bytes");
	char *missing[] = {"/nonexistent/cmd", NULL};
	assert_reason(missing, false, "exit 127");
}

static void test_output_tail(void **state)
{
	/* far more than a pipe holds: read as it comes, only the end kept */
	char *big[] = {"sh", "-c", "seq 1 50000; echo 'the end' >&2; exit 4", NULL};
	assert_reason(big, false, "exit 4: the end");
	/* a last line longer than what is kept is cut at its start */
	char *long_line[] = {"sh", "-c", "printf 'x%.0s' $(seq 1 500); printf 'END\\n'; exit 5",
			     NULL};
	struct probe p = {0};
	char why[300];
	start(&p, long_line);
	assert_false(run_to_end(&p, why, sizeof(why)));
	assert_true(startswith(why, "exit 5: xxx"));
	assert_int_equal(strlen(why), strlen("exit 5: ") + PROBE_TAIL_MAX - 1);
	assert_true(strcmp(why + strlen(why) - 3, "END") == 0);
}

static void test_child_inherits_nothing(void **state)
{
	/* fds without O_CLOEXEC, and the router's signal setup */
	int leak = open("/dev/null", O_RDONLY);
	int lp[2];
	assert_true(leak >= 0);
	assert_int_equal(pipe(lp), 0);
	char *fds[] = {"fds", NULL};
	assert_reason(fds, false, "exit 1: fds: 0 1 2");
	close(leak);
	close(lp[0]);
	close(lp[1]);

	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGHUP);
	sigprocmask(SIG_BLOCK, &term, &old);
	void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
	char *sigs[] = {"signals", NULL};
	assert_reason(sigs, false, "exit 1: blocked 0 ignored 0");
	signal(SIGPIPE, old_pipe);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_stop(void **state)
{
	struct probe p = {0};
	char *cmd[] = {"sleep", "30", NULL};
	start(&p, cmd);
	int64_t t0 = now_monotonic_ns();
	probe_stop(&p);
	char why[160];
	assert_false(run_to_end(&p, why, sizeof(why)));
	assert_string_equal(why, "killed by signal 15 (TERM)");
	assert_true(now_monotonic_ns() - t0 < 5000000000LL);
}

static void test_kill_and_busy(void **state)
{
	struct probe p = {0};
	char *cmd[] = {"sleep", "30", NULL};
	start(&p, cmd);
	pid_t pid = p.pid;
	struct cairn_error err = {0};
	assert_int_equal(probe_start(&p, "/r", "inst-1", cmd, 1000, &err), -EBUSY);
	error_clear(&err);
	assert_int_equal(p.pid, pid);
	probe_kill(&p);
	assert_false(probe_running(&p));
	/* reaped: the pid is no child of ours any more */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	probe_kill(&p); /* not running: nothing */
	char *none[] = {NULL};
	assert_int_equal(probe_start(&p, "/r", "inst-1", none, 1000, &err), -EINVAL);
	error_clear(&err);
	assert_false(probe_running(&p));
}

/* --- the reaper ------------------------------------------------------------------- */

static void stop_when_empty(struct loop *l, void *u)
{
	struct probe_reaper *r = u;
	if (!r->list)
		loop_stop(l);
	else
		(void)loop_timer_add(l, 10000000LL, stop_when_empty, u);
}

static void give_up(struct loop *l, void *u)
{
	fail_msg("the reaper still holds probes after 10 s");
}

/* A command that ignores SIGTERM, once it said "ready". */
static char *deaf[] = {"sh", "-c", "trap '' TERM; echo ready; exec sleep 30", NULL};

/* Start cmd; for deaf, wait until its trap is set. */
static void start_ready(struct probe *p, char **cmd)
{
	start(p, cmd);
	while (cmd == deaf && !memmem(p->tail, p->tail_len, "ready", 5)) {
		struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 10000), 1);
		assert_int_equal(probe_read(p), -EAGAIN);
	}
}

/* Abandon a probe of cmd into a reaper and run the loop until it is
 * reaped; returns how long that took (ms). */
static int64_t abandon_and_reap(char **cmd)
{
	struct loop *l = loop_new();
	assert_non_null(l);
	struct probe_reaper r = {.loop = l};
	struct probe p = {0};
	start_ready(&p, cmd);
	pid_t pid = p.pid;
	int64_t t0 = now_monotonic_ns();
	probe_abandon(&r, &p);
	assert_false(probe_running(&p));
	assert_non_null(r.list);
	(void)loop_timer_add(l, 0, stop_when_empty, &r);
	struct loop_timer *t = loop_timer_add(l, 10000000000LL, give_up, NULL);
	assert_int_equal(loop_run(l), 0);
	(void)loop_timer_cancel(l, t);
	loop_free(l);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	return (now_monotonic_ns() - t0) / 1000000;
}

static void test_abandon(void **state)
{
	/* it ends at SIGTERM: reaped at once */
	char *polite[] = {"sleep", "30", NULL};
	assert_true(abandon_and_reap(polite) < PROBE_GRACE_MS / 2);
	/* it ignores SIGTERM: killed after the grace */
	int64_t ms = abandon_and_reap(deaf);
	assert_true(ms >= PROBE_GRACE_MS - 50 && ms < PROBE_GRACE_MS + 3000);
}

static void test_reaper_drain(void **state)
{
	struct loop *l = loop_new();
	assert_non_null(l);
	struct probe_reaper r = {.loop = l};
	char *polite[] = {"sleep", "30", NULL};
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		struct probe p = {0};
		start_ready(&p, i ? deaf : polite);
		pids[i] = p.pid;
		probe_abandon(&r, &p);
	}
	probe_abandon(&r, &(struct probe){0}); /* not running: nothing */
	int64_t t0 = now_monotonic_ns();
	probe_reaper_drain(&r);
	assert_null(r.list);
	assert_true(now_monotonic_ns() - t0 < (PROBE_GRACE_MS + 3000) * 1000000LL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pids[i], NULL, WNOHANG), -1);
		assert_int_equal(errno, ECHILD);
	}
	loop_free(l);
}

int main(int argc, char **argv)
{
	if (argc > 1 && streq(argv[1], "--root"))
		fake_probe(argc, argv);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_results),
	    cmocka_unit_test(test_output_tail),
	    cmocka_unit_test(test_child_inherits_nothing),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_kill_and_busy),
	    cmocka_unit_test(test_abandon),
	    cmocka_unit_test(test_reaper_drain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
