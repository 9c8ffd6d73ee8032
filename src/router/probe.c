/* Exec health checks: spawning `cairn probe`, keeping the end of its output,
 * turning its end into a result, and reaping the probes nobody waits for.
 * The router's event loop does the watching (probe.h); there is no global
 * state, so any number of loop threads may use this, each with its own
 * probes and reaper. */
#include "probe.h"

#include "../base/fs.h"
#include "../base/loop.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC always */
	return fd < 0 ? -errno : fd;
}

static void pidfd_signal(int pidfd, int sig)
{
	(void)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The child's argv: "cairn --root ROOT probe --timeout MS INSTANCE -- CMD...";
 * the strings are borrowed but for the timeout's, in ms_buf. */
static char **probe_argv(const char *root, const char *instance, char *const *cmd,
			 int64_t timeout_ms, char ms_buf[24])
{
	size_t n_cmd = 0;
	while (cmd[n_cmd])
		n_cmd++;
	char **argv = xcalloc(n_cmd + 9, sizeof(char *));
	snprintf(ms_buf, 24, "%lld", (long long)timeout_ms);
	size_t k = 0;
	argv[k++] = (char *)"cairn";
	argv[k++] = (char *)"--root";
	argv[k++] = (char *)root;
	argv[k++] = (char *)"probe";
	argv[k++] = (char *)"--timeout";
	argv[k++] = ms_buf;
	argv[k++] = (char *)instance;
	argv[k++] = (char *)"--";
	memcpy(argv + k, cmd, n_cmd * sizeof(char *));
	return argv;
}

int probe_start(struct probe *p, const char *root, const char *instance, char *const *cmd,
		int64_t timeout_ms, struct cairn_error *err)
{
	if (probe_running(p))
		return error_set(err, EBUSY, "a check of %s is still running", instance);
	if (!cmd || !cmd[0] || timeout_ms <= 0)
		return error_set(err, EINVAL, "an exec check needs a command and a timeout");
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return error_set(err, errno, "pipe: %s", strerror(errno));
	_cleanup_close_ int rfd = pipefd[0], wfd = pipefd[1];
	/* Only our end: the child's must block, as any stdout does. */
	if (fcntl(rfd, F_SETFL, O_NONBLOCK) < 0)
		return error_set(err, errno, "fcntl: %s", strerror(errno));

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	(void)posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	(void)posix_spawn_file_actions_adddup2(&fa, wfd, 1);
	(void)posix_spawn_file_actions_adddup2(&fa, wfd, 2);
	/* Every fd of ours is O_CLOEXEC; this is the guarantee besides. */
	(void)posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* The router blocks SIGTERM, SIGINT, SIGHUP (a signalfd takes them)
	 * and ignores SIGPIPE: the child starts clean. */
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	(void)posix_spawnattr_setsigmask(&at, &none);
	(void)posix_spawnattr_setsigdefault(&at, &all);
	(void)posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char ms[24];
	_cleanup_free_ char **argv = probe_argv(root, instance, cmd, timeout_ms, ms);
	pid_t pid;
	int r = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0)
		return error_set(err, r, "starting cairn probe: %s", strerror(r));
	/* The pid is ours until we reap it: no reuse can slip in here. */
	int pidfd = pidfd_open(pid);
	if (pidfd < 0) {
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return error_set(err, -pidfd, "pidfd_open: %s", strerror(-pidfd));
	}
	*p = (struct probe){.pid = pid, .pidfd = pidfd, .out_fd = TAKE_FD(rfd)};
	return 0;
}

/* Append data to the tail, keeping its last PROBE_TAIL_MAX bytes. */
static void tail_add(struct probe *p, const char *data, size_t n)
{
	if (n >= PROBE_TAIL_MAX) {
		memcpy(p->tail, data + n - PROBE_TAIL_MAX, PROBE_TAIL_MAX);
		p->tail_len = PROBE_TAIL_MAX;
		return;
	}
	if (p->tail_len + n > PROBE_TAIL_MAX) {
		size_t drop = p->tail_len + n - PROBE_TAIL_MAX;
		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, data, n);
	p->tail_len += n;
}

int probe_read(struct probe *p)
{
	if (!probe_running(p) || p->out_fd < 0)
		return 0;
	for (;;) {
		char buf[4096];
		ssize_t n = read(p->out_fd, buf, sizeof(buf));
		if (n > 0) {
			tail_add(p, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? -EAGAIN : -errno;
	}
}

/* The last line of the output, printable ASCII only (it travels in JSON and
 * into a terminal), without the "cairn: " of cairn probe's own messages. */
static void last_line(const struct probe *p, char *out, size_t len)
{
	size_t end = p->tail_len;
	while (end && (p->tail[end - 1] == '\n' || p->tail[end - 1] == '\r' ||
		       p->tail[end - 1] == ' ' || p->tail[end - 1] == '\t'))
		end--;
	size_t start = end;
	while (start && p->tail[start - 1] != '\n')
		start--;
	static const char prefix[] = "cairn: ";
	if (end - start >= sizeof(prefix) - 1 &&
	    memcmp(p->tail + start, prefix, sizeof(prefix) - 1) == 0)
		start += sizeof(prefix) - 1;
	size_t k = 0;
	for (size_t i = start; i < end && k + 1 < len; i++) {
		unsigned char ch = (unsigned char)p->tail[i];
		out[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	if (len)
		out[k] = 0;
}

static void probe_close(struct probe *p)
{
	p->pidfd = safe_close(p->pidfd);
	p->out_fd = safe_close(p->out_fd);
	p->pid = 0;
}

void probe_finish(struct probe *p, bool *ret_ok, char *why, size_t why_len)
{
	*ret_ok = false;
	if (why_len)
		why[0] = 0;
	if (!probe_running(p)) {
		snprintf(why, why_len, "no check was running");
		return;
	}
	siginfo_t si = {0};
	int r;
	while ((r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED)) < 0 && errno == EINTR)
		;
	/* What the command wrote before it ended: the pipe holds it. */
	(void)probe_read(p);
	char line[PROBE_TAIL_MAX + 1];
	last_line(p, line, sizeof(line));
	if (r < 0)
		snprintf(why, why_len, "waiting for cairn probe: %s", strerror(errno));
	else if (si.si_code == CLD_EXITED && si.si_status == 0)
		*ret_ok = true;
	else if (si.si_code == CLD_EXITED)
		snprintf(why, why_len, "exit %d%s%s", si.si_status, line[0] ? ": " : "", line);
	else
		snprintf(why, why_len, "killed by signal %d (%s)", si.si_status,
			 sigabbrev_np(si.si_status) ? sigabbrev_np(si.si_status) : "?");
	probe_close(p);
	p->tail_len = 0;
}

void probe_stop(struct probe *p)
{
	if (probe_running(p))
		pidfd_signal(p->pidfd, SIGTERM);
}

void probe_kill(struct probe *p)
{
	if (!probe_running(p))
		return;
	pidfd_signal(p->pidfd, SIGKILL);
	siginfo_t si;
	while (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	probe_close(p);
	p->tail_len = 0;
}

/* --- probes nobody waits for any more -------------------------------------- */

struct probe_orphan {
	struct probe p;
	struct probe_reaper *r;
	struct loop_timer *deadline;
	struct probe_orphan *prev, *next;
};

static void orphan_free(struct probe_orphan *o)
{
	o->deadline = loop_timer_cancel(o->r->loop, o->deadline);
	if (o->prev)
		o->prev->next = o->next;
	else
		o->r->list = o->next;
	if (o->next)
		o->next->prev = o->prev;
	free(o);
}

static void orphan_exited(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct probe_orphan *o = u;
	loop_del(l, fd);
	bool ok;
	char why[8];
	probe_finish(&o->p, &ok, why, sizeof(why));
	orphan_free(o);
}

static void orphan_overdue(struct loop *l, void *u)
{
	struct probe_orphan *o = u;
	o->deadline = NULL;
	loop_del(l, o->p.pidfd);
	probe_kill(&o->p);
	orphan_free(o);
}

void probe_abandon(struct probe_reaper *r, struct probe *p)
{
	if (!probe_running(p))
		return;
	struct probe_orphan *o = xcalloc(1, sizeof(*o));
	o->p = *p;
	o->r = r;
	*p = (struct probe){0};
	probe_stop(&o->p);
	if (loop_add(r->loop, o->p.pidfd, EPOLLIN, orphan_exited, o) < 0) {
		probe_kill(&o->p);
		free(o);
		return;
	}
	o->deadline = loop_timer_add(r->loop, PROBE_GRACE_MS * 1000000LL, orphan_overdue, o);
	o->next = r->list;
	if (r->list)
		r->list->prev = o;
	r->list = o;
}

void probe_reaper_drain(struct probe_reaper *r)
{
	int64_t deadline = now_monotonic_ns() + PROBE_GRACE_MS * 1000000LL;
	while (r->list) {
		struct probe_orphan *o = r->list;
		loop_del(r->loop, o->p.pidfd);
		int64_t left = (deadline - now_monotonic_ns()) / 1000000;
		struct pollfd pf = {.fd = o->p.pidfd, .events = POLLIN};
		if (left > 0 && poll(&pf, 1, (int)left) > 0) {
			bool ok;
			char why[8];
			probe_finish(&o->p, &ok, why, sizeof(why));
		} else
			probe_kill(&o->p);
		orphan_free(o);
	}
}
