/* The monitor: the small process that owns a detached instance. It starts
 * the instance with its stdout and stderr on a pipe, copies what comes out
 * into a size-bounded log ($ROOT/instances/<id>/log, rotated to log.1), waits
 * for the end and reports it. It outlives the CLI that started it; nothing
 * but the monitor's own death leaves an instance without one, and then
 * `cairn stop` still stops and cleans the instance. */
#include "runtime.h"

#include "proxy.h"

#include "../base/fs.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define LOG_MAX (8u << 20)

struct log {
	int dirfd;
	int fd;
	uint64_t size;
};

static int log_open(struct log *l)
{
	l->fd = openat(l->dirfd, "log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (l->fd < 0)
		return -errno;
	struct stat st;
	l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

static void log_write(struct log *l, const char *data, size_t len)
{
	if (l->size + len > LOG_MAX) {
		/* Rotate: the newest LOG_MAX bytes or more stay, in two files. */
		close(l->fd);
		(void)renameat(l->dirfd, "log", l->dirfd, "log.1");
		if (log_open(l) < 0)
			return;
	}
	if (write_all(l->fd, data, len) == 0)
		l->size += len;
}

uint64_t runtime_pid_start_time(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[1024];
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* Field 22, counting after the ")" that ends the command name. A zombie
	 * has ended: it counts as gone. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p++;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

int runtime_monitor(const struct run_spec *spec, int logdir_fd, const struct monitor_hooks *hooks,
		    struct cairn_error *err)
{
	struct log log = {.dirfd = logdir_fd, .fd = -1};
	int r = log_open(&log);
	if (r < 0)
		return error_set(err, -r, "opening the log: %s", strerror(-r));
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(log.fd);
		return error_set(err, errno, "pipe: %s", strerror(errno));
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct run_spec sp = *spec;
	sp.stdio[0] = devnull;
	sp.stdio[1] = out[1];
	sp.stdio[2] = out[1];
	struct runtime_instance *inst;
	r = runtime_start(&sp, &inst, err);
	close(out[1]);
	safe_close(devnull);
	if (r < 0) {
		close(out[0]);
		close(log.fd);
		return r;
	}
	pid_t pid = runtime_instance_pid(inst);
	if (!runtime_instance_exec_failed(inst))
		hooks->started(hooks->userdata, pid, runtime_pid_start_time(pid));
	struct proxy *proxy = NULL;
	if (spec->n_ports && !runtime_instance_exec_failed(inst)) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		int netns = open(path, O_RDONLY | O_CLOEXEC);
		int hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (netns >= 0 && hostns >= 0) {
			proxy = proxy_new(netns, hostns);
			for (size_t i = 0; i < spec->n_ports; i++)
				proxy_add(proxy, spec->ports[i].listen_fd, spec->ports[i].port);
		} else {
			safe_close(netns);
			safe_close(hostns);
		}
	}
	/* One loop: the instance's output into the log, and the relays of its
	 * published ports. It ends when every writer of the output is gone. */
	char buf[65536];
	struct pollfd *pfds = NULL;
	size_t cap = 0;
	for (;;) {
		size_t need = 1 + (proxy ? proxy_max_pollfds(proxy) : 0);
		pfds = xgrow(pfds, &cap, need, sizeof(*pfds));
		pfds[0] = (struct pollfd){.fd = out[0], .events = POLLIN};
		size_t n_p = proxy ? proxy_pollfds(proxy, pfds + 1, cap - 1) : 0;
		if (poll(pfds, 1 + n_p, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfds[0].revents) {
			ssize_t n = read(out[0], buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* the instance ended */
			log_write(&log, buf, (size_t)n);
		}
		if (proxy)
			proxy_handle(proxy, pfds + 1, n_p);
	}
	free(pfds);
	proxy_free(proxy);
	close(out[0]);
	struct run_result res;
	runtime_wait(inst, &res);
	if (res.message[0]) {
		char line[700];
		int n = snprintf(line, sizeof(line), "cairn: %s\n", res.message);
		log_write(&log, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	close(log.fd);
	hooks->exited(hooks->userdata, &res);
	return 0;
}

int runtime_pidfd(pid_t pid, uint64_t pid_start)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* Checked after the pidfd is open: from then on the pid cannot be
	 * reused under us, and before it, it may already have been. */
	if (pid_start && runtime_pid_start_time(pid) != pid_start) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

int runtime_signal(pid_t pid, uint64_t pid_start, int sig)
{
	int fd = runtime_pidfd(pid, pid_start);
	if (fd < 0)
		return fd;
	int r = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 ? -errno : 0;
	close(fd);
	return r;
}

bool runtime_alive(pid_t pid, uint64_t pid_start)
{
	if (pid <= 0)
		return false;
	uint64_t t = runtime_pid_start_time(pid);
	return t != 0 && (!pid_start || t == pid_start);
}

int runtime_stop(pid_t pid, uint64_t pid_start, int grace_ms)
{
	int fd = runtime_pidfd(pid, pid_start);
	if (fd < 0)
		return fd == -ESRCH ? 0 : fd; /* gone (perhaps with the pid reused) */
	(void)syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, grace_ms);
	bool killed = false;
	if (r == 0) {
		(void)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		killed = true;
		r = poll(&p, 1, 10000);
	}
	close(fd);
	return r > 0 ? killed : -ETIMEDOUT;
}
