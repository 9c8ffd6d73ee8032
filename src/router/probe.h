/* Exec health checks for the router: `cairn probe` (src/cli/probe.c) run as
 * a child process and watched from an event loop, never waited for: a
 * pidfd says when it ended, a non-blocking pipe carries its output. No
 * globals and no fork(): children come from posix_spawn, which is safe in
 * a threaded process. A struct probe belongs to one thread at a time. */
#pragma once

#include "../base/error.h"

#include <stdint.h>
#include <sys/types.h>

/* How much of a check's output is kept: the end, for the failure reason. */
#define PROBE_TAIL_MAX 200
/* How long `cairn probe` gets past its own timeout, or after probe_stop,
 * before the caller should probe_kill it. */
#define PROBE_GRACE_MS 1000

struct probe {
	pid_t pid;  /* the `cairn probe` process; 0 when none runs (a zeroed struct) */
	int pidfd;  /* readable once it ended (valid while pid > 0) */
	int out_fd; /* its stdout and stderr, non-blocking (valid while pid > 0) */
	size_t tail_len;
	char tail[PROBE_TAIL_MAX]; /* the last bytes of its output */
};

static inline bool probe_running(const struct probe *p)
{
	return p->pid > 0;
}

/* Start `/proc/self/exe --root ROOT probe --timeout MS INSTANCE -- CMD...`
 * (cmd NULL-terminated, timeout_ms > 0) with stdin /dev/null, stdout and
 * stderr into p->out_fd, every other fd closed, default signal dispositions
 * and an empty signal mask. p must not be running. The caller watches
 * p->pidfd and p->out_fd (readable) and calls probe_read and probe_finish.
 * -errno with err set when it cannot start; p stays not running.
 * Nobody else in the process may reap children it did not start
 * (waitpid(-1)) or ignore SIGCHLD: the pid is only safe until reaped. */
int probe_start(struct probe *p, const char *root, const char *instance, char *const *cmd,
		int64_t timeout_ms, struct cairn_error *err);

/* Take the output there is (p->out_fd was readable), keeping its end.
 * 0 at its end (stop watching p->out_fd; it stays open until probe_finish),
 * -EAGAIN when more may come, another -errno on an error (stop watching). */
int probe_read(struct probe *p);

/* Reap the child once p->pidfd was readable (it would block until the child
 * ends otherwise), take the rest of its output and close both fds (the
 * caller stopped watching them). *ret_ok when it exited 0; else why says
 * "exit N: <the last line of output>" or "killed by signal N (NAME)". p is
 * not running afterwards. */
void probe_finish(struct probe *p, bool *ret_ok, char *why, size_t why_len);

/* Tell a running probe to stop (SIGTERM: `cairn probe` kills the command
 * and everything it started, reaps them and exits at once). The caller
 * still watches p->pidfd and calls probe_finish, or probe_kill once
 * PROBE_GRACE_MS passed. */
void probe_stop(struct probe *p);

/* The last resort: SIGKILL and reap now (blocks until the kernel ended it;
 * the caller stopped watching the fds). `cairn probe` gets no chance to
 * reap its own helper, which its death kills and init must reap. Accepts a
 * probe that is not running. */
void probe_kill(struct probe *p);

/* --- probes nobody waits for any more -------------------------------------- */

struct loop;
struct probe_orphan;

/* The probes of one event loop (one per loop thread) that were told to stop
 * and are reaped from that loop: a check that was abandoned (its backend
 * drained or freed, or overdue) ends without blocking the loop. */
struct probe_reaper {
	struct loop *loop;
	struct probe_orphan *list;
};

/* Stop p (probe_stop) and hand it to r: reaped from r->loop when it ends,
 * or SIGKILLed and reaped when PROBE_GRACE_MS pass first. The caller
 * stopped watching p's fds; p is not running afterwards (its owner may go).
 * Accepts a probe that is not running. */
void probe_abandon(struct probe_reaper *r, struct probe *p);

/* Reap every probe r holds now, when its loop no longer runs: waits up to
 * PROBE_GRACE_MS in all, then kills and reaps what is left. */
void probe_reaper_drain(struct probe_reaper *r);
