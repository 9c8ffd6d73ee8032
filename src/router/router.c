/* The router: environments (a listener, a health-check policy, a table of
 * backends), backends (an instance's network namespace and port, health,
 * counters, a pool of idle upstream connections), client connections and
 * upstream connections. HTTP mode parses each request head
 * (src/router/http.c), picks a backend per request, forwards head and body
 * and streams the response back; TCP mode relays bytes both ways.
 *
 * Threads: N workers (one per CPU by default), each with its own epoll
 * loop, its own listener per env (SO_REUSEPORT), its own copy of every table,
 * pools and counters: nothing of the data path is shared. Worker 0 alone
 * runs the health checks; it tells the others each change, and they send it
 * their passive failures (a refused connection). The main thread serves the
 * control socket (it applies each message in every worker and answers once
 * all did), the admin listeners (/metrics: every worker's counters summed)
 * and the signals.
 *
 * Control messages (JSON, one per seqpacket; answers {"ok":true,...} or
 * {"ok":false,"error":"..."}):
 *   {"op":"ping"}                                  -> {"ok":true,"pid":N}
 *   {"op":"env","env":"prod","listen":"127.0.0.1:8080","admin":"127.0.0.1:9080",
 *    "mode":"http"|"tcp","drain_timeout_ms":N,
 *    "health":{"kind":"http"|"tcp"|"exec","path":"/","exec":["cmd","arg"],
 *              "interval_ms":N,"timeout_ms":N,"healthy_after":N,
 *              "unhealthy_after":N,"start_period_ms":N},
 *    "weights":{"3":90,"4":10},
 *    "backends":[{"id":"...","release":3,"port":8080,"active":true,"fd":0,
 *                 "health":{...}}]}
 *      The whole table of the environment, applied at once: a request that
 *      starts after it sees only the new table. "fd" indexes the attached
 *      descriptors (a network namespace; -1 for a backend the router has).
 *      "active": in rotation; an inactive backend is only health-checked
 *      (a new release before the switch, a previous one kept warm).
 *      A backend's "health" (its release's policy) overrides the env's.
 *      "exec" runs the argv inside the backend's instance ("id" is the
 *      instance id) with `cairn --root ROOT probe` (ROOT: the directory of
 *      the control socket), killed after timeout_ms; exit 0 passes.
 *      Backends absent from the table drain: no new request, and once their
 *      requests finished (or drain_timeout passed) they are forgotten.
 *   {"op":"remove","env":"prod"}                   -> stop serving it
 *   {"op":"stats"}                                 -> {"ok":true,"envs":{...}}
 */
#include "router.h"

#include "../base/fs.h"
#include "../base/loop.h"
#include "http.h"
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IO_CHUNK (16u << 10)
#define OUT_HIGH (256u << 10) /* stop reading the other side above this */
#define RETRY_COPY_MAX (64u << 10)
#define MAX_ATTEMPTS 3
#define CLIENT_IDLE_NS (60LL * 1000000000LL)
#define UPSTREAM_IDLE_NS (20LL * 1000000000LL)
#define POOL_MAX 64
#define N_BUCKETS 12
static const double bucket_ms[N_BUCKETS] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};

/* --- buffers --------------------------------------------------------------- */

struct iobuf {
	char *data;
	size_t off, len, cap; /* the bytes are data[off..len) */
};

static size_t iob_size(const struct iobuf *b)
{
	return b->len - b->off;
}

static void iob_reserve(struct iobuf *b, size_t extra)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + extra <= b->cap)
		return;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t cap = b->cap ? b->cap : IO_CHUNK;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

static void iob_put(struct iobuf *b, const void *d, size_t n)
{
	if (!n)
		return;
	iob_reserve(b, n);
	memcpy(b->data + b->len, d, n);
	b->len += n;
}

static void iob_drop(struct iobuf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void iob_free(struct iobuf *b)
{
	free(b->data);
	*b = (struct iobuf){0};
}

/* Read what is available from fd into b: >0 bytes, 0 at EOF, -EAGAIN, -errno. */
static ssize_t iob_read(struct iobuf *b, int fd)
{
	iob_reserve(b, IO_CHUNK);
	ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	b->len += (size_t)n;
	return n;
}

/* Write what b holds: 0 when all is written, -EAGAIN when some is left,
 * -errno on error. */
static int iob_write(struct iobuf *b, int fd)
{
	while (iob_size(b)) {
		ssize_t n = send(fd, b->data + b->off, iob_size(b), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -EAGAIN : -errno;
		}
		iob_drop(b, (size_t)n);
	}
	return 0;
}

/* --- the model ----------------------------------------------------------------- */

enum health { H_STARTING, H_HEALTHY, H_UNHEALTHY };
static const char *const health_names[] = {"starting", "healthy", "unhealthy"};

enum hc_kind { HC_TCP, HC_HTTP, HC_EXEC };

#define HC_EXEC_ARGC 64	   /* arguments of an exec check, at most */
#define HC_EXEC_BYTES 4096 /* and their bytes, NULs included */

struct health_cfg {
	enum hc_kind kind;
	char path[512];
	/* HC_EXEC: the argv as consecutive NUL-terminated strings, held by
	 * value so that the policy copies by assignment; n_exec is 0 when the
	 * argv was missing or too long (every check then fails and says so) */
	char exec[HC_EXEC_BYTES];
	unsigned n_exec;
	int64_t interval, timeout, start_period;
	unsigned healthy_after, unhealthy_after;
};

struct env;
struct upstream;

struct backend {
	struct env *env;
	char id[72];
	unsigned release;
	uint16_t port;
	int netns;
	bool active;  /* in rotation */
	bool removed; /* out of the table: draining */
	unsigned pinned; /* a loop over its connections runs: not freed yet */
	int64_t added;
	struct loop_timer *drain_timer;
	/* health: the policy of its release (a new release may check another
	 * path than the live one) */
	struct health_cfg hc;
	enum health health;
	unsigned passes, fails;
	char last_error[160];
	int hc_fd;
	struct iobuf hc_in;
	struct http_parser hc_parser;
	bool hc_sent;
	struct probe hc_probe;	     /* an exec check's `cairn probe` (zeroed: none) */
	struct loop_timer *hc_timer; /* the next check, or the running one's timeout */
	/* counters */
	uint64_t outstanding, requests, errors, connect_errors, retries;
	uint64_t lat_buckets[N_BUCKETS + 1];
	double lat_sum_ms;
	/* connections */
	struct upstream *idle; /* the pool */
	unsigned n_idle;
	struct upstream *busy; /* connecting or carrying an exchange */
};

struct release_weight {
	unsigned release, weight;
	int64_t current; /* smooth weighted round robin */
};

struct env {
	char name[64];
	char listen[96];
	bool tcp;
	int lfd;
	struct health_cfg hc;
	int64_t drain_timeout;
	struct backend **bes; /* the table */
	size_t n_bes;
	struct backend **draining;
	size_t n_draining;
	struct release_weight *w;
	size_t n_w;
	unsigned rr;
	uint64_t requests, errors, no_backend;
	struct env *next;
};

enum client_state { CS_HEAD, CS_EXCHANGE, CS_CLOSING };

struct client {
	int fd;
	struct env *env;
	enum client_state st;
	struct iobuf in, out;
	struct http_parser hp;
	uint32_t mask;
	char addr[64];
	/* the exchange in flight */
	struct upstream *up;
	struct http_body reqb;
	bool req_sent_all; /* the whole request is in up->out (or sent) */
	bool keep_alive;   /* the client may send another request */
	bool close_after;  /* close once out is written */
	bool http10;
	unsigned resp_flags;
	struct iobuf copy; /* the request as forwarded, for a retry */
	bool retryable;
	unsigned attempts;
	struct backend *tried[MAX_ATTEMPTS];
	int64_t start;
	int64_t last_active;
	bool in_paused; /* bytes came while they could not be taken */
	struct client *next_free;
	struct client *lprev, *lnext; /* every open client, for the idle sweep */
};

enum up_state { UP_CONNECTING, UP_BUSY, UP_IDLE };

struct upstream {
	int fd;
	struct backend *be;
	enum up_state st;
	uint32_t mask;
	struct iobuf out, in;
	struct http_parser rp;
	struct http_body respb;
	bool head_done;
	bool keep_alive;
	bool reused;
	bool got_bytes;
	int status;
	struct client *c;
	struct upstream *next; /* in the pool, or the free list */
	struct upstream *bnext, *bprev; /* in the backend's busy list */
	int64_t idle_since;
};

/* A message to a worker: a control message to apply (the main thread waits
 * for every worker's answer), a health change from worker 0, a passive
 * failure for worker 0 to count, or the order to stop. */
enum msg_kind { M_CONTROL, M_HEALTH, M_FAIL, M_STOP };

struct batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned left;
};

#define LFD_KEEP (-2)

struct msg {
	enum msg_kind kind;
	struct msg *next;
	/* M_CONTROL: owned by the main thread */
	json_t *in;
	const int *fds;
	size_t n_fds;
	int lfd; /* "env": the worker's own listener: LFD_KEEP, -1 (none) or new */
	json_t *out;
	struct batch *batch;
	/* M_HEALTH, M_FAIL: owned by the receiver */
	char env[64], id[72];
	enum health health;
	char why[160];
};

/* One worker: a thread with its own loop, listeners (SO_REUSEPORT), clients,
 * copy of every table, upstream pools and counters. Nothing of the data path
 * is shared between workers; worker 0 alone runs health checks and tells
 * the others what changed. */
struct router {
	unsigned index;
	pthread_t thread;
	struct loop *loop;
	int efd; /* the mailbox's eventfd */
	pthread_mutex_t mu;
	struct msg *head, *tail;
	int host_netns;
	struct env *envs;
	struct client *free_clients;
	struct client *clients;
	struct upstream *free_ups;
	bool stopping;
	uint64_t n_clients;
	int64_t stop_deadline;
	struct buf scratch;
	const char *root;	    /* ROOT, for exec checks: `cairn --root ROOT probe` */
	struct probe_reaper reaper; /* exec checks told to stop, not reaped yet */
};

static struct router *workers;
static unsigned n_workers;
static __thread struct router *RP;
#define R (*RP)

/* --- small helpers ------------------------------------------------------------ */

/* A buffer reused for every head the router writes (no allocation per
 * request); valid until the next call. */
static struct buf *scratch(void)
{
	R.scratch.len = 0;
	return &R.scratch;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[80];
	const char *colon = strrchr(s, ':');
	if (!colon || colon - s >= (ptrdiff_t)sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return -EINVAL;
		host[hl - 1] = 0;
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (!host[0])
		a->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	*len = sizeof(*a);
	return 0;
}

static int listen_on(const char *addr, bool reuseport, struct cairn_error *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (parse_addr(addr, &ss, &len) < 0)
		return error_set(err, EINVAL, "listen address %s: expected IP:PORT", addr);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(err, errno, "socket: %s", strerror(errno));
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		int e = errno;
		close(fd);
		return error_set(err, e, "SO_REUSEPORT: %s", strerror(e));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		return error_set(err, e, "listening on %s: %s", addr, strerror(e));
	}
	return fd;
}

/* A TCP socket living in the backend's network namespace, connecting to its
 * loopback port (non-blocking). */
static int backend_socket(struct backend *be)
{
	if (setns(be->netns, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	if (setns(R.host_netns, CLONE_NEWNET) < 0)
		abort(); /* never serve clients from the wrong namespace */
	if (fd < 0)
		return -e;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(be->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* --- health --------------------------------------------------------------- */

static void hc_schedule(struct backend *be, int64_t after);
static void health_tell(struct backend *be);
static void fail_tell(struct backend *be, const char *why);

static void hc_count(struct backend *be, bool ok, const char *why)
{
	if (ok) {
		be->fails = 0;
		be->passes++;
		be->last_error[0] = 0;
		if (be->health != H_HEALTHY && be->passes >= be->hc.healthy_after)
			be->health = H_HEALTHY;
		return;
	}
	snprintf(be->last_error, sizeof(be->last_error), "%s", why);
	/* failures in the start period do not count against a new backend */
	if (be->health == H_STARTING && loop_now(R.loop) - be->added < be->hc.start_period)
		return;
	be->passes = 0;
	be->fails++;
	if (be->health == H_HEALTHY && be->fails >= be->hc.unhealthy_after)
		be->health = H_UNHEALTHY;
	else if (be->health == H_STARTING && be->fails >= be->hc.unhealthy_after)
		be->health = H_UNHEALTHY;
}

/* A check's outcome (or a passive failure: a refused connection). Worker 0
 * owns every backend's health; another worker sends it its failures and
 * learns the changes from it. */
static void hc_result(struct backend *be, bool ok, const char *why)
{
	if (R.index != 0) {
		if (!ok)
			fail_tell(be, why);
		return;
	}
	enum health before = be->health;
	hc_count(be, ok, why);
	if (be->health != before)
		health_tell(be);
}

/* End the running check, if any, without a result. */
static void hc_abort(struct backend *be)
{
	if (be->hc_fd >= 0) {
		loop_del(R.loop, be->hc_fd);
		close(be->hc_fd);
		be->hc_fd = -1;
	}
	iob_free(&be->hc_in);
	if (probe_running(&be->hc_probe)) {
		/* told to stop and reaped from the loop: be may go at once */
		loop_del(R.loop, be->hc_probe.pidfd);
		loop_del(R.loop, be->hc_probe.out_fd);
		probe_abandon(&R.reaper, &be->hc_probe);
	}
}

static void hc_finish(struct backend *be, bool ok, const char *why)
{
	hc_abort(be);
	be->hc_timer = loop_timer_cancel(R.loop, be->hc_timer);
	hc_result(be, ok, why);
	hc_schedule(be, be->hc.interval);
}

static void hc_timeout(struct loop *l, void *u)
{
	struct backend *be = u;
	be->hc_timer = NULL;
	hc_finish(be, false, "timed out");
}

static void hc_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct backend *be = u;
	if (!be->hc_sent) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			hc_finish(be, false, strerror(soerr));
			return;
		}
		if (be->hc.kind != HC_HTTP) {
			hc_finish(be, true, NULL);
			return;
		}
		char req[700];
		int n = snprintf(req, sizeof(req),
				 "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cairn-health\r\n"
				 "Connection: close\r\n\r\n",
				 be->hc.path);
		if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
			hc_finish(be, false, "cannot send the request");
			return;
		}
		be->hc_sent = true;
		http_parser_init(&be->hc_parser, 0);
		(void)loop_mod(R.loop, fd, EPOLLIN | EPOLLRDHUP);
		return;
	}
	ssize_t n = iob_read(&be->hc_in, fd);
	if (n == -EAGAIN)
		return;
	struct http_message m;
	struct http_error he = {0};
	int r = http_parse_response(&be->hc_parser, be->hc_in.data, be->hc_in.len, 0, &m, &he);
	if (r == 1) {
		char why[64];
		snprintf(why, sizeof(why), "HTTP status %d", m.status);
		hc_finish(be, m.status >= 200 && m.status < 400, why);
	} else if (r < 0)
		hc_finish(be, false, he.reason ? he.reason : "bad response");
	else if (n <= 0)
		hc_finish(be, false, n == 0 ? "closed before answering" : strerror((int)-n));
}

/* The exec check's output: kept by the probe for the reason. */
static void hc_probe_output(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct backend *be = u;
	if (probe_read(&be->hc_probe) != -EAGAIN)
		loop_del(l, fd); /* its end; the pidfd says when the check ended */
}

static void hc_probe_exited(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct backend *be = u;
	loop_del(l, be->hc_probe.out_fd);
	loop_del(l, fd);
	bool ok;
	char why[sizeof(be->last_error)];
	probe_finish(&be->hc_probe, &ok, why, sizeof(why));
	hc_finish(be, ok, why);
}

/* `cairn probe` kills the command at the check's timeout and ends; this
 * fires only when it did not, PROBE_GRACE_MS later. */
static void hc_probe_overdue(struct loop *l, void *u)
{
	struct backend *be = u;
	be->hc_timer = NULL;
	char why[64];
	snprintf(why, sizeof(why), "timed out after %lld ms (cairn probe did not end)",
		 (long long)(be->hc.timeout / 1000000));
	hc_finish(be, false, why);
}

static void hc_start_exec(struct backend *be)
{
	char *argv[HC_EXEC_ARGC + 1];
	const char *s = be->hc.exec;
	for (unsigned i = 0; i < be->hc.n_exec; i++) {
		argv[i] = (char *)s;
		s += strlen(s) + 1;
	}
	argv[be->hc.n_exec] = NULL;
	if (!be->hc.n_exec) {
		char why[100];
		snprintf(why, sizeof(why),
			 "exec check: expected a command of 1 to %d arguments, %d bytes at most",
			 HC_EXEC_ARGC, HC_EXEC_BYTES);
		hc_result(be, false, why);
		hc_schedule(be, be->hc.interval);
		return;
	}
	struct cairn_error err = {0};
	int64_t ms = (be->hc.timeout + 999999) / 1000000;
	if (probe_start(&be->hc_probe, R.root, be->id, argv, ms > 0 ? ms : 1, &err) < 0) {
		hc_result(be, false, error_message(&err));
		error_clear(&err);
		hc_schedule(be, be->hc.interval);
		return;
	}
	if (loop_add(R.loop, be->hc_probe.pidfd, EPOLLIN, hc_probe_exited, be) < 0 ||
	    loop_add(R.loop, be->hc_probe.out_fd, EPOLLIN, hc_probe_output, be) < 0) {
		hc_finish(be, false, "cannot watch the exec check");
		return;
	}
	be->hc_timer = loop_timer_add(R.loop, be->hc.timeout + PROBE_GRACE_MS * 1000000LL,
				      hc_probe_overdue, be);
}

static void hc_start(struct loop *l, void *u)
{
	struct backend *be = u;
	be->hc_timer = NULL;
	if (be->hc.kind == HC_EXEC) {
		hc_start_exec(be);
		return;
	}
	int fd = backend_socket(be);
	if (fd < 0) {
		hc_result(be, false, strerror(-fd));
		hc_schedule(be, be->hc.interval);
		return;
	}
	be->hc_fd = fd;
	be->hc_sent = false;
	if (loop_add(R.loop, fd, EPOLLOUT, hc_event, be) < 0) {
		close(fd);
		be->hc_fd = -1;
		hc_schedule(be, be->hc.interval);
		return;
	}
	be->hc_timer = loop_timer_add(R.loop, be->hc.timeout, hc_timeout, be);
}

static void hc_schedule(struct backend *be, int64_t after)
{
	if (be->removed || R.index != 0)
		return;
	be->hc_timer = loop_timer_cancel(R.loop, be->hc_timer);
	be->hc_timer = loop_timer_add(R.loop, after, hc_start, be);
}

/* The router is ending: every exec check ends now and is reaped, so that
 * none outlives it or waits for init to reap it. Blocks up to
 * PROBE_GRACE_MS, then kills. */
static void hc_shutdown(void)
{
	for (struct env *e = R.envs; e; e = e->next) {
		for (size_t i = 0; i < e->n_bes; i++)
			hc_abort(e->bes[i]);
		for (size_t i = 0; i < e->n_draining; i++)
			hc_abort(e->draining[i]);
	}
	probe_reaper_drain(&R.reaper);
}

/* --- backends ------------------------------------------------------------------ */

static void upstream_close(struct upstream *up);

static bool backend_usable(const struct backend *be)
{
	return be->active && !be->removed && be->health == H_HEALTHY;
}

static void pool_drop_all(struct backend *be)
{
	be->pinned++;
	while (be->idle) {
		struct upstream *up = be->idle;
		be->idle = up->next;
		be->n_idle--;
		upstream_close(up);
	}
	be->pinned--;
}

static void backend_free(struct backend *be)
{
	pool_drop_all(be);
	be->hc_timer = loop_timer_cancel(R.loop, be->hc_timer);
	be->drain_timer = loop_timer_cancel(R.loop, be->drain_timer);
	hc_abort(be);
	safe_close(be->netns);
	free(be);
}

/* A drained backend goes once nothing points at it. */
static void backend_maybe_forget(struct backend *be)
{
	if (!be->removed || be->outstanding || be->busy || be->pinned)
		return;
	struct env *e = be->env;
	for (size_t i = 0; i < e->n_draining; i++)
		if (e->draining[i] == be) {
			e->draining[i] = e->draining[--e->n_draining];
			break;
		}
	backend_free(be);
}


static void client_abort(struct client *c);

static void drain_deadline(struct loop *l, void *u)
{
	struct backend *be = u;
	be->drain_timer = NULL;
	/* the drain timeout passed: what still runs there ends now */
	be->pinned++;
	while (be->busy) {
		struct upstream *up = be->busy;
		if (up->c)
			client_abort(up->c); /* closes up too */
		else
			upstream_close(up);
	}
	be->pinned--;
	backend_maybe_forget(be);
}

static void backend_drain(struct backend *be)
{
	struct env *e = be->env;
	be->active = false;
	be->removed = true;
	be->hc_timer = loop_timer_cancel(R.loop, be->hc_timer);
	hc_abort(be);
	pool_drop_all(be);
	e->draining = xreallocarray(e->draining, e->n_draining + 1, sizeof(*e->draining));
	e->draining[e->n_draining++] = be;
	if (!be->busy && !be->outstanding) {
		backend_maybe_forget(be);
		return;
	}
	be->drain_timer = loop_timer_add(R.loop, e->drain_timeout, drain_deadline, be);
}

static bool skipped(struct backend *const *skip, size_t n_skip, const struct backend *be)
{
	for (size_t k = 0; k < n_skip; k++)
		if (skip[k] == be)
			return true;
	return false;
}

/* The usable backend with the fewest outstanding requests (of one release
 * when by_release), starting the scan at a rotating index so ties spread. */
static struct backend *least_outstanding(struct env *e, bool by_release, unsigned release,
					 struct backend *const *skip, size_t n_skip)
{
	struct backend *pick = NULL;
	size_t n = e->n_bes;
	for (size_t j = 0; j < n; j++) {
		struct backend *be = e->bes[(e->rr + j) % n];
		if (!backend_usable(be) || (by_release && be->release != release) ||
		    skipped(skip, n_skip, be))
			continue;
		if (!pick || be->outstanding < pick->outstanding)
			pick = be;
	}
	return pick;
}

/* Choose a backend for a new request: a release by weight (smooth weighted
 * round robin) when weights are set, then the least outstanding requests
 * among its usable backends, skipping the ones already tried. */
static struct backend *backend_pick(struct env *e, struct backend *const *skip, size_t n_skip)
{
	e->rr++;
	if (e->n_w > 1) {
		int64_t total = 0;
		struct release_weight *best = NULL;
		for (size_t i = 0; i < e->n_w; i++) {
			if (!e->w[i].weight ||
			    !least_outstanding(e, true, e->w[i].release, skip, n_skip))
				continue; /* a release with no usable backend takes no share */
			e->w[i].current += e->w[i].weight;
			total += e->w[i].weight;
			if (!best || e->w[i].current > best->current)
				best = &e->w[i];
		}
		if (best) {
			best->current -= total;
			return least_outstanding(e, true, best->release, skip, n_skip);
		}
	}
	return least_outstanding(e, false, 0, skip, n_skip);
}

static void latency_record(struct backend *be, int64_t ns)
{
	double ms = (double)ns / 1e6;
	size_t i = 0;
	while (i < N_BUCKETS && ms > bucket_ms[i])
		i++;
	be->lat_buckets[i]++;
	be->lat_sum_ms += ms;
}

/* --- upstream connections ----------------------------------------------------- */

static void upstream_event(struct loop *l, int fd, uint32_t ev, void *u);

static void busy_link(struct upstream *up)
{
	struct backend *be = up->be;
	up->bprev = NULL;
	up->bnext = be->busy;
	if (be->busy)
		be->busy->bprev = up;
	be->busy = up;
}

static void busy_unlink(struct upstream *up)
{
	struct backend *be = up->be;
	if (up->bprev)
		up->bprev->bnext = up->bnext;
	else if (be->busy == up)
		be->busy = up->bnext;
	if (up->bnext)
		up->bnext->bprev = up->bprev;
	up->bnext = up->bprev = NULL;
}

static struct upstream *upstream_alloc(void)
{
	struct upstream *up = R.free_ups;
	if (up)
		R.free_ups = up->next;
	else
		up = xcalloc(1, sizeof(*up));
	struct iobuf in = up->in, out = up->out;
	*up = (struct upstream){.fd = -1, .in = in, .out = out};
	up->in.off = up->in.len = up->out.off = up->out.len = 0;
	return up;
}

/* Close an upstream connection that is busy (in its backend's busy list) or
 * not listed anywhere; the caller has taken it out of the pool. */
static void upstream_close(struct upstream *up)
{
	if (up->fd >= 0) {
		loop_del(R.loop, up->fd);
		close(up->fd);
	}
	if (up->st != UP_IDLE)
		busy_unlink(up);
	struct backend *be = up->be;
	up->fd = -1;
	up->c = NULL;
	up->be = NULL;
	if (up->in.cap > 4 * IO_CHUNK)
		iob_free(&up->in);
	if (up->out.cap > 4 * IO_CHUNK)
		iob_free(&up->out);
	up->next = R.free_ups;
	R.free_ups = up;
	if (be)
		backend_maybe_forget(be);
}

static void upstream_set_mask(struct upstream *up, uint32_t mask)
{
	if (up->mask != mask && loop_mod(R.loop, up->fd, mask) == 0)
		up->mask = mask;
}

/* Put a finished connection back in its backend's pool. It stays watched
 * (one registration for its whole life): readable while idle means the
 * server closed it. */
static void pool_put(struct upstream *up)
{
	struct backend *be = up->be;
	busy_unlink(up);
	up->st = UP_IDLE;
	up->c = NULL;
	if (be->removed || be->n_idle >= POOL_MAX || iob_size(&up->in)) {
		upstream_close(up);
		return;
	}
	up->idle_since = loop_now(R.loop);
	up->next = be->idle;
	be->idle = up;
	be->n_idle++;
	upstream_set_mask(up, EPOLLIN | EPOLLRDHUP);
}

/* An idle pooled connection became readable: the server closed it (or sent
 * something unasked). It leaves the pool. */
static void idle_event(struct upstream *up)
{
	struct backend *be = up->be;
	for (struct upstream **p = &be->idle; *p; p = &(*p)->next)
		if (*p == up) {
			*p = up->next;
			be->n_idle--;
			break;
		}
	upstream_close(up);
}

/* A connection to be: from the pool when one is idle (and not too old),
 * else a new one. NULL with errno-style *ret_err when none can be made. */
static struct upstream *upstream_get(struct backend *be, int *ret_err)
{
	while (be->idle) {
		struct upstream *up = be->idle;
		be->idle = up->next;
		be->n_idle--;
		if (loop_now(R.loop) - up->idle_since > UPSTREAM_IDLE_NS) {
			upstream_close(up);
			continue;
		}
		up->st = UP_BUSY;
		up->reused = true;
		busy_link(up);
		return up;
	}
	int fd = backend_socket(be);
	if (fd < 0) {
		*ret_err = -fd;
		return NULL;
	}
	struct upstream *up = upstream_alloc();
	up->fd = fd;
	up->be = be;
	up->st = UP_CONNECTING;
	up->mask = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
	if (loop_add(R.loop, fd, up->mask, upstream_event, up) < 0) {
		close(fd);
		up->fd = -1;
		up->next = R.free_ups;
		R.free_ups = up;
		*ret_err = EMFILE;
		return NULL;
	}
	busy_link(up);
	return up;
}

/* --- clients (HTTP) ------------------------------------------------------------ */

static void client_event(struct loop *l, int fd, uint32_t ev, void *u);
static void client_flush(struct client *c);
static void upstream_flush(struct upstream *up);
static void dispatch(struct client *c);
static void try_parse(struct client *c);

static bool c_wants_body(const struct client *c)
{
	return c->st == CS_EXCHANGE && !c->req_sent_all;
}

/* The events a client connection needs. EPOLLIN stays on between requests
 * and while an exchange runs (turning it off and on would cost two
 * syscalls a request); it goes off only when bytes arrive that can't be
 * taken now (see client_event), or when the upstream can't take more. */
static void client_set_mask(struct client *c)
{
	uint32_t m = EPOLLIN;
	if (c_wants_body(c) && c->up && iob_size(&c->up->out) >= OUT_HIGH)
		m = 0;
	if (c->st == CS_HEAD && iob_size(&c->out) >= OUT_HIGH)
		m = 0;
	if (c->st == CS_CLOSING)
		m = 0;
	if (c->in_paused && c->st == CS_EXCHANGE && !c_wants_body(c))
		m = 0;
	if (iob_size(&c->out))
		m |= EPOLLOUT;
	if (m != c->mask && loop_mod(R.loop, c->fd, m) == 0)
		c->mask = m;
}

static void client_free(struct client *c)
{
	if (c->lprev)
		c->lprev->lnext = c->lnext;
	else if (R.clients == c)
		R.clients = c->lnext;
	if (c->lnext)
		c->lnext->lprev = c->lprev;
	c->lprev = c->lnext = NULL;
	loop_del(R.loop, c->fd);
	close(c->fd);
	c->fd = -1;
	iob_free(&c->in);
	iob_free(&c->out);
	iob_free(&c->copy);
	c->next_free = R.free_clients;
	R.free_clients = c;
	R.n_clients--;
}

/* End a client connection at once (and the exchange it was in). */
static void client_abort(struct client *c)
{
	struct upstream *up = c->up;
	if (up) {
		struct backend *be = up->be;
		c->up = NULL;
		up->c = NULL;
		if (be->outstanding)
			be->outstanding--;
		upstream_close(up); /* may forget be */
	}
	client_free(c);
}

/* Answer the current request with an error and close the connection. */
static void client_error(struct client *c, int status)
{
	c->env->errors++;
	c->env->requests++;
	struct buf b = {0};
	http_write_error(&b, status);
	iob_put(&c->out, b.data, b.len);
	buf_free(&b);
	c->close_after = true;
	c->st = CS_CLOSING;
	client_flush(c);
}

static void client_enter_head(struct client *c)
{
	c->st = CS_HEAD;
	c->in_paused = false;
	http_parser_init(&c->hp, 0);
	c->last_active = loop_now(R.loop);
}

/* Every few seconds: close client connections idle between requests for
 * longer than CLIENT_IDLE_NS. */
static void idle_sweep(struct loop *l, void *u)
{
	int64_t now = loop_now(l);
	for (struct client *c = R.clients, *next; c; c = next) {
		next = c->lnext;
		if (c->st == CS_HEAD && now - c->last_active > CLIENT_IDLE_NS)
			client_abort(c);
	}
	(void)loop_timer_add(l, 5000000000LL, idle_sweep, NULL);
}

/* The exchange ended well: count it, give the connection back to the pool,
 * and wait for the next request (or close). */
static void exchange_done(struct client *c)
{
	struct upstream *up = c->up;
	struct backend *be = up->be;
	struct env *e = c->env;
	latency_record(be, loop_now(R.loop) - c->start);
	be->requests++;
	e->requests++;
	if (up->status >= 500) {
		be->errors++;
		e->errors++;
	}
	if (be->outstanding)
		be->outstanding--;
	c->up = NULL;
	up->c = NULL;
	bool reuse = up->keep_alive && up->respb.done && !iob_size(&up->in) &&
		     !iob_size(&up->out) && c->req_sent_all;
	if (reuse)
		pool_put(up);
	else
		upstream_close(up);
	/* be may be gone now */
	c->copy.off = c->copy.len = 0;
	if (c->copy.cap > RETRY_COPY_MAX)
		iob_free(&c->copy);
	c->attempts = 0;
	if (c->close_after) {
		c->st = CS_CLOSING;
		client_flush(c);
		return;
	}
	client_enter_head(c);
	if (iob_size(&c->in))
		try_parse(c);
	else
		client_set_mask(c);
}

/* Bytes of the request body: to the upstream, and to the retry copy while
 * it is small enough. */
static int feed_request_body(struct client *c)
{
	while (!c->reqb.done && iob_size(&c->in)) {
		size_t used = 0;
		struct http_error he = {0};
		int r = http_body_feed(&c->reqb, c->in.data + c->in.off, iob_size(&c->in), &used,
				       &he);
		if (r < 0)
			return r;
		if (c->up)
			iob_put(&c->up->out, c->in.data + c->in.off, used);
		/* before a backend is chosen the copy is the only place the bytes
		 * are: it keeps them whatever their size */
		if (c->retryable || !c->up) {
			iob_put(&c->copy, c->in.data + c->in.off, used);
			if (iob_size(&c->copy) > RETRY_COPY_MAX)
				c->retryable = false;
		}
		if (!c->retryable && c->up)
			iob_free(&c->copy);
		iob_drop(&c->in, used);
	}
	c->req_sent_all = c->reqb.done;
	return 0;
}

static void start_exchange(struct client *c, const struct http_message *m)
{
	c->http10 = m->minor_version == 0;
	c->keep_alive = m->keep_alive && !R.stopping;
	c->resp_flags = http_response_flags(m);
	c->start = loop_now(R.loop);
	c->attempts = 0;
	struct buf *hb = scratch();
	http_forward_request_head(hb, m, c->addr, "http", false);
	c->copy.off = c->copy.len = 0;
	iob_put(&c->copy, hb->data, hb->len);
	c->retryable = true;
	http_body_init(&c->reqb, m);
	iob_drop(&c->in, m->head_len);
	c->st = CS_EXCHANGE;
	c->req_sent_all = false;
	/* the body bytes already here go into the copy first */
	if (feed_request_body(c) < 0) {
		client_error(c, 400);
		return;
	}
	dispatch(c);
}

/* Send the request (the copy) to a backend; on no backend answer 503. */
static void dispatch(struct client *c)
{
	struct env *e = c->env;
	for (;;) {
		struct backend *be = backend_pick(e, c->tried, c->attempts);
		if (!be) {
			if (c->attempts == 0)
				e->no_backend++;
			client_error(c, c->attempts ? 502 : 503);
			return;
		}
		int er = 0;
		struct upstream *up = upstream_get(be, &er);
		if (!up) {
			be->connect_errors++;
			hc_result(be, false, strerror(er));
			c->tried[c->attempts++] = be;
			if (c->attempts >= MAX_ATTEMPTS) {
				client_error(c, 502);
				return;
			}
			continue;
		}
		c->up = up;
		up->c = c;
		up->head_done = false;
		up->got_bytes = false;
		up->status = 0;
		http_parser_init(&up->rp, 0);
		be->outstanding++;
		/* the request so far; a body still arriving follows from the
		 * client (feed_request_body); a retry only happens with the
		 * whole request in the copy (upstream_failed) */
		iob_put(&up->out, c->copy.data + c->copy.off, iob_size(&c->copy));
		if (!c->retryable)
			iob_free(&c->copy);
		if (up->st == UP_BUSY)
			upstream_flush(up);
		else
			upstream_set_mask(up, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
		if (c->fd >= 0 && c->up == up)
			client_set_mask(c);
		return;
	}
}

static void try_parse(struct client *c)
{
	struct http_message m;
	struct http_error he = {0};
	int r = http_parse_request(&c->hp, c->in.data + c->in.off, iob_size(&c->in), &m, &he);
	if (r == 0) {
		client_set_mask(c);
		return;
	}
	if (r < 0) {
		client_error(c, he.status ? he.status : 400);
		return;
	}
	start_exchange(c, &m);
}

/* The upstream failed before a response came (connect refused, reset, closed
 * unanswered): try another backend when the whole request is in the copy,
 * else answer 502. */
static void upstream_failed(struct upstream *up, int er, bool connecting)
{
	struct client *c = up->c;
	struct backend *be = up->be;
	bool stale = up->reused && !connecting;
	if (be->outstanding)
		be->outstanding--;
	if (connecting) {
		be->connect_errors++;
		hc_result(be, false, strerror(er));
	}
	if (!c) {
		upstream_close(up);
		return;
	}
	bool head_sent = up->head_done;
	bool retry = !head_sent && c->retryable && c->req_sent_all &&
		     c->attempts + 1 < MAX_ATTEMPTS;
	/* counted while be is sure to exist: closing up may forget it */
	if (!head_sent && retry && !stale)
		be->retries++;
	if (!head_sent && !retry && !stale) {
		be->requests++;
		be->errors++;
	}
	c->up = NULL;
	up->c = NULL;
	upstream_close(up); /* be may be gone now: only its address is kept */
	if (head_sent) {
		client_abort(c);
		return;
	}
	c->tried[c->attempts] = stale ? NULL : be; /* a stale pooled connection: be may retry */
	c->attempts++;
	if (retry) {
		dispatch(c);
		return;
	}
	client_error(c, 502);
}

static void upstream_flush(struct upstream *up)
{
	int r = iob_write(&up->out, up->fd);
	if (r < 0 && r != -EAGAIN) {
		upstream_failed(up, -r, false);
		return;
	}
	uint32_t m = (up->mask & (EPOLLIN | EPOLLRDHUP)) | EPOLLIN | EPOLLRDHUP;
	if (r == -EAGAIN)
		m |= EPOLLOUT;
	upstream_set_mask(up, m);
	if (up->c && iob_size(&up->out) < OUT_HIGH && c_wants_body(up->c))
		client_set_mask(up->c);
}

/* Response bytes: the head (interim ones passed on), then the body as it
 * comes, until the message ends. */
static void process_response(struct upstream *up)
{
	struct client *c = up->c;
	while (!up->head_done) {
		struct http_message m;
		struct http_error he = {0};
		int r = http_parse_response(&up->rp, up->in.data + up->in.off, iob_size(&up->in),
					    c->resp_flags, &m, &he);
		if (r == 0)
			return;
		if (r < 0 || m.status == 101 || (c->http10 && m.body == HTTP_BODY_CHUNKED)) {
			struct backend *be = up->be;
			be->errors++, be->requests++;
			if (be->outstanding)
				be->outstanding--;
			c->up = NULL;
			up->c = NULL;
			upstream_close(up);
			client_error(c, 502);
			return;
		}
		if (m.status < 200) {
			if (!c->http10) {
				struct buf b = {0};
				http_forward_response_head(&b, &m, true);
				iob_put(&c->out, b.data, b.len);
				buf_free(&b);
			}
			iob_drop(&up->in, m.head_len);
			http_parser_init(&up->rp, 0);
			continue;
		}
		up->status = m.status;
		up->keep_alive = m.keep_alive;
		struct buf *b = scratch();
		bool kept = http_forward_response_head(b, &m, c->keep_alive && !R.stopping);
		iob_put(&c->out, b->data, b->len);
		c->close_after = !kept;
		http_body_init(&up->respb, &m);
		iob_drop(&up->in, m.head_len);
		up->head_done = true;
	}
	while (!up->respb.done && iob_size(&up->in)) {
		size_t used = 0;
		struct http_error he = {0};
		/* as received; a chunked body's framing rewritten when the server
		 * ended its lines with a bare LF */
		bool chunked = up->respb.kind == HTTP_BODY_CHUNKED;
		struct buf *fwd = chunked ? scratch() : NULL;
		int r = chunked ? http_body_forward(&up->respb, up->in.data + up->in.off,
						    iob_size(&up->in), &used, fwd, &he)
				: http_body_feed(&up->respb, up->in.data + up->in.off,
						 iob_size(&up->in), &used, &he);
		if (r < 0) {
			up->be->errors++, up->be->requests++;
			client_abort(c);
			return;
		}
		if (chunked)
			iob_put(&c->out, fwd->data, fwd->len);
		else
			iob_put(&c->out, up->in.data + up->in.off, used);
		iob_drop(&up->in, used);
	}
	if (up->respb.done) {
		client_flush(c);
		if (c->fd >= 0 && c->up == up)
			exchange_done(c);
		return;
	}
	client_flush(c);
}

static void upstream_read(struct upstream *up)
{
	struct client *c = up->c;
	if (!c) {
		upstream_close(up);
		return;
	}
	if (iob_size(&c->out) >= OUT_HIGH) {
		upstream_set_mask(up, (up->mask & ~(uint32_t)EPOLLIN) | EPOLLRDHUP);
		return;
	}
	ssize_t n = iob_read(&up->in, up->fd);
	if (n == -EAGAIN)
		return;
	if (n < 0) {
		if (up->head_done) {
			up->be->errors++, up->be->requests++;
			client_abort(c);
		} else
			upstream_failed(up, (int)-n, false);
		return;
	}
	if (n == 0) {
		if (!up->head_done) {
			if (!up->got_bytes) {
				upstream_failed(up, ECONNRESET, false);
				return;
			}
			up->be->errors++, up->be->requests++;
			struct backend *be = up->be;
			if (be->outstanding)
				be->outstanding--;
			c->up = NULL;
			up->c = NULL;
			upstream_close(up);
			client_error(c, 502);
			return;
		}
		struct http_error he = {0};
		if (http_body_eof(&up->respb, &he) == 0) {
			up->respb.done = true;
			up->keep_alive = false;
			client_flush(c);
			if (c->fd >= 0 && c->up == up)
				exchange_done(c);
			return;
		}
		up->be->errors++, up->be->requests++;
		client_abort(c);
		return;
	}
	up->got_bytes = true;
	process_response(up);
}

static void tcp_upstream_event(struct upstream *up, uint32_t ev);

static void upstream_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct upstream *up = u;
	if (up->st == UP_IDLE) {
		idle_event(up);
		return;
	}
	if (up->st == UP_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr || (ev & (EPOLLERR | EPOLLHUP))) {
			if (up->be->env->tcp) {
				tcp_upstream_event(up, EPOLLERR);
				return;
			}
			upstream_failed(up, soerr ? soerr : ECONNREFUSED, true);
			return;
		}
		if (!(ev & EPOLLOUT))
			return;
		up->st = UP_BUSY;
	}
	if (up->be->env->tcp) {
		tcp_upstream_event(up, ev);
		return;
	}
	if (ev & EPOLLOUT) {
		upstream_flush(up);
		if (up->fd < 0 || up->c == NULL)
			return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		upstream_read(up);
}

static void client_flush(struct client *c)
{
	int r = iob_write(&c->out, c->fd);
	if (r < 0 && r != -EAGAIN) {
		client_abort(c);
		return;
	}
	if (r == 0 && c->st == CS_CLOSING) {
		/* a polite close: no RST with unread request bytes in flight */
		shutdown(c->fd, SHUT_WR);
		client_free(c);
		return;
	}
	client_set_mask(c);
	/* room again: resume reading the upstream */
	if (c->up && c->up->st == UP_BUSY && iob_size(&c->out) < OUT_HIGH &&
	    !(c->up->mask & EPOLLIN))
		upstream_set_mask(c->up, c->up->mask | EPOLLIN);
}

static void client_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct client *c = u;
	if (ev & EPOLLOUT) {
		client_flush(c);
		if (c->fd < 0)
			return;
	}
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if (c->st == CS_CLOSING)
		return;
	if (c->st == CS_EXCHANGE && !c_wants_body(c)) {
		/* the next request (pipelined) or a close: later */
		c->in_paused = true;
		client_set_mask(c);
		return;
	}
	ssize_t n = iob_read(&c->in, fd);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		/* the client went away (between requests: a normal close) */
		client_abort(c);
		return;
	}
	if (c->st == CS_HEAD) {
		try_parse(c);
		return;
	}
	if (c->st == CS_EXCHANGE && !c->req_sent_all) {
		if (feed_request_body(c) < 0) {
			client_abort(c);
			return;
		}
		if (c->up)
			upstream_flush(c->up);
	}
}

/* --- TCP mode ------------------------------------------------------------------ */

/* A TCP exchange: client bytes go to up->out, upstream bytes to c->out.
 * c->req_sent_all: the client closed its side; up->head_done: the upstream
 * closed its side. The exchange ends when both did and all was written. */
static void tcp_maybe_done(struct client *c)
{
	struct upstream *up = c->up;
	if (!up || !c->req_sent_all || !up->head_done || iob_size(&c->out) || iob_size(&up->out))
		return;
	struct backend *be = up->be;
	latency_record(be, loop_now(R.loop) - c->start);
	be->requests++;
	c->env->requests++;
	if (be->outstanding)
		be->outstanding--;
	c->up = NULL;
	up->c = NULL;
	upstream_close(up);
	client_free(c);
}

static void tcp_client_event(struct client *c, uint32_t ev)
{
	struct upstream *up = c->up;
	if (ev & EPOLLOUT) {
		int r = iob_write(&c->out, c->fd);
		if (r < 0 && r != -EAGAIN) {
			client_abort(c);
			return;
		}
		if (!iob_size(&c->out) && up && up->head_done)
			shutdown(c->fd, SHUT_WR);
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && up && !c->req_sent_all) {
		ssize_t n = iob_read(&up->out, c->fd);
		if (n == 0 || (n < 0 && n != -EAGAIN)) {
			c->req_sent_all = true;
			if (!iob_size(&up->out) && up->st == UP_BUSY)
				shutdown(up->fd, SHUT_WR);
		}
		if (up->st == UP_BUSY && iob_write(&up->out, up->fd) == 0 && c->req_sent_all)
			shutdown(up->fd, SHUT_WR);
	}
	if (c->fd < 0)
		return;
	uint32_t m = 0;
	if (!c->req_sent_all && up && iob_size(&up->out) < OUT_HIGH)
		m |= EPOLLIN;
	if (iob_size(&c->out))
		m |= EPOLLOUT;
	if (m != c->mask && loop_mod(R.loop, c->fd, m) == 0)
		c->mask = m;
	if (up) {
		uint32_t um = up->head_done ? 0 : EPOLLIN;
		if (iob_size(&up->out))
			um |= EPOLLOUT;
		if (iob_size(&c->out) >= OUT_HIGH)
			um &= ~(uint32_t)EPOLLIN;
		upstream_set_mask(up, um);
	}
	tcp_maybe_done(c);
}

static void tcp_dispatch(struct client *c);

static void tcp_upstream_event(struct upstream *up, uint32_t ev)
{
	struct client *c = up->c;
	if (!c) {
		upstream_close(up);
		return;
	}
	if (ev & EPOLLERR) {
		/* the connection failed: before any byte came back, try another */
		struct backend *be = up->be;
		bool fresh = !up->got_bytes;
		if (be->outstanding)
			be->outstanding--;
		if (up->st == UP_CONNECTING) {
			be->connect_errors++;
			hc_result(be, false, "connection refused");
		}
		c->tried[c->attempts++] = be;
		/* what the client sent so far is still in up->out: keep it */
		struct iobuf pending = up->out;
		up->out = (struct iobuf){0};
		c->up = NULL;
		up->c = NULL;
		upstream_close(up);
		if (fresh && c->attempts < MAX_ATTEMPTS) {
			iob_free(&c->copy);
			c->copy = pending;
			tcp_dispatch(c);
			return;
		}
		iob_free(&pending);
		c->env->errors++;
		client_free(c);
		return;
	}
	if (ev & EPOLLOUT) {
		int r = iob_write(&up->out, up->fd);
		if (r < 0 && r != -EAGAIN) {
			client_abort(c);
			return;
		}
		if (r == 0 && c->req_sent_all)
			shutdown(up->fd, SHUT_WR);
	}
	if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !up->head_done &&
	    iob_size(&c->out) < OUT_HIGH) {
		ssize_t n = iob_read(&c->out, up->fd);
		if (n > 0)
			up->got_bytes = true;
		if (n == 0 || (n < 0 && n != -EAGAIN)) {
			up->head_done = true;
			if (!iob_size(&c->out))
				shutdown(c->fd, SHUT_WR);
		}
		if (iob_size(&c->out)) {
			int r = iob_write(&c->out, c->fd);
			if (r < 0 && r != -EAGAIN) {
				client_abort(c);
				return;
			}
		}
		if (up->head_done && !iob_size(&c->out))
			shutdown(c->fd, SHUT_WR);
	}
	tcp_client_event(c, 0);
}

static void tcp_dispatch(struct client *c)
{
	for (;;) {
		struct backend *be = backend_pick(c->env, c->tried, c->attempts);
		if (!be) {
			if (!c->attempts)
				c->env->no_backend++;
			c->env->errors++;
			iob_free(&c->copy);
			client_free(c);
			return;
		}
		int er = 0;
		struct upstream *up = upstream_get(be, &er);
		if (!up) {
			be->connect_errors++;
			c->tried[c->attempts++] = be;
			if (c->attempts >= MAX_ATTEMPTS) {
				c->env->errors++;
				client_free(c);
				return;
			}
			continue;
		}
		be->outstanding++;
		c->up = up;
		up->c = c;
		if (iob_size(&c->copy)) {
			iob_put(&up->out, c->copy.data + c->copy.off, iob_size(&c->copy));
			iob_free(&c->copy);
		}
		return;
	}
}

/* --- accepting ------------------------------------------------------------------ */

static void http_client_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct client *c = u;
	if (c->env->tcp)
		tcp_client_event(c, ev);
	else
		client_event(l, fd, ev, u);
}

static void accept_event(struct loop *l, int lfd, uint32_t ev, void *u)
{
	struct env *e = u;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct client *c = R.free_clients;
		if (c)
			R.free_clients = c->next_free;
		else
			c = xcalloc(1, sizeof(*c));
		*c = (struct client){.fd = fd, .env = e};
		R.n_clients++;
		c->lnext = R.clients;
		if (R.clients)
			R.clients->lprev = c;
		R.clients = c;
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->addr,
				  sizeof(c->addr));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->addr,
				  sizeof(c->addr));
		c->mask = EPOLLIN;
		if (loop_add(R.loop, fd, c->mask, http_client_event, c) < 0) {
			close(fd);
			c->fd = -1;
			c->next_free = R.free_clients;
			R.free_clients = c;
			R.n_clients--;
			continue;
		}
		if (e->tcp) {
			c->st = CS_EXCHANGE;
			c->start = loop_now(R.loop);
			tcp_dispatch(c);
		} else
			client_enter_head(c);
	}
}

/* --- stats and /metrics -------------------------------------------------------- */

static json_t *backend_json(const struct backend *be, bool draining)
{
	json_t *b = json_object();
	json_object_set_new(b, "id", json_string(be->id));
	json_object_set_new(b, "release", json_integer(be->release));
	json_object_set_new(b, "port", json_integer(be->port));
	json_object_set_new(b, "active", json_boolean(be->active));
	json_object_set_new(b, "draining", json_boolean(draining));
	json_object_set_new(b, "health", json_string(health_names[be->health]));
	json_object_set_new(b, "passes", json_integer(be->passes));
	json_object_set_new(b, "fails", json_integer(be->fails));
	if (be->last_error[0])
		json_object_set_new(b, "last_error", json_string(be->last_error));
	json_object_set_new(b, "outstanding", json_integer((json_int_t)be->outstanding));
	json_object_set_new(b, "requests", json_integer((json_int_t)be->requests));
	json_object_set_new(b, "errors", json_integer((json_int_t)be->errors));
	json_object_set_new(b, "connect_errors", json_integer((json_int_t)be->connect_errors));
	json_object_set_new(b, "retries", json_integer((json_int_t)be->retries));
	json_object_set_new(b, "latency_ms_sum", json_real(be->lat_sum_ms));
	json_t *lb = json_array();
	for (size_t i = 0; i <= N_BUCKETS; i++)
		json_array_append_new(lb, json_integer((json_int_t)be->lat_buckets[i]));
	json_object_set_new(b, "latency_buckets", lb);
	return b;
}

/* One worker's counters and tables. */
static json_t *stats_json(void)
{
	json_t *envs = json_object();
	for (struct env *e = R.envs; e; e = e->next) {
		json_t *o = json_object();
		json_object_set_new(o, "listen", json_string(e->listen));
		json_object_set_new(o, "mode", json_string(e->tcp ? "tcp" : "http"));
		json_object_set_new(o, "requests", json_integer((json_int_t)e->requests));
		json_object_set_new(o, "errors", json_integer((json_int_t)e->errors));
		json_object_set_new(o, "no_backend", json_integer((json_int_t)e->no_backend));
		json_t *bes = json_array();
		for (size_t i = 0; i < e->n_bes; i++)
			json_array_append_new(bes, backend_json(e->bes[i], false));
		for (size_t i = 0; i < e->n_draining; i++)
			json_array_append_new(bes, backend_json(e->draining[i], true));
		json_object_set_new(o, "backends", bes);
		json_object_set_new(envs, e->name, o);
	}
	json_t *r = json_object();
	json_object_set_new(r, "ok", json_true());
	json_object_set_new(r, "pid", json_integer(getpid()));
	json_object_set_new(r, "clients", json_integer((json_int_t)R.n_clients));
	json_object_set_new(r, "envs", envs);
	return r;
}

static void sum_field(json_t *dst, json_t *src, const char *key)
{
	json_t *d = json_object_get(dst, key), *v = json_object_get(src, key);
	if (json_is_integer(d) && json_is_integer(v))
		json_integer_set(d, json_integer_value(d) + json_integer_value(v));
	else if (json_is_real(d) && json_is_number(v))
		json_real_set(d, json_real_value(d) + json_number_value(v));
}

static json_t *backend_by_id(json_t *bes, const char *id)
{
	size_t i;
	json_t *b;
	json_array_foreach(bes, i, b)
	{
		const char *bid = json_string_value(json_object_get(b, "id"));
		if (bid && streq(bid, id))
			return b;
	}
	return NULL;
}

/* The workers' answers to "stats" as one: counters summed, a backend's
 * health and table state from worker 0 (which owns health), a backend only
 * another worker still drains listed too (it is not forgotten until every
 * worker forgot it). */
static json_t *stats_merge(json_t *const *ans, unsigned n)
{
	static const char *const env_sums[] = {"requests", "errors", "no_backend"};
	static const char *const be_sums[] = {"outstanding", "requests", "errors",
					      "connect_errors", "retries", "latency_ms_sum"};
	json_t *out = json_deep_copy(ans[0]);
	json_t *oenvs = json_object_get(out, "envs");
	for (unsigned w = 1; w < n; w++) {
		sum_field(out, ans[w], "clients");
		const char *name;
		json_t *eo;
		json_object_foreach(json_object_get(ans[w], "envs"), name, eo)
		{
			json_t *d = json_object_get(oenvs, name);
			if (!d) {
				json_object_set_new(oenvs, name, json_deep_copy(eo));
				continue;
			}
			for (size_t k = 0; k < ELEMENTSOF(env_sums); k++)
				sum_field(d, eo, env_sums[k]);
			json_t *dbes = json_object_get(d, "backends");
			size_t i;
			json_t *b;
			json_array_foreach(json_object_get(eo, "backends"), i, b)
			{
				const char *id = json_string_value(json_object_get(b, "id"));
				json_t *db = id ? backend_by_id(dbes, id) : NULL;
				if (!db) {
					json_array_append_new(dbes, json_deep_copy(b));
					continue;
				}
				for (size_t k = 0; k < ELEMENTSOF(be_sums); k++)
					sum_field(db, b, be_sums[k]);
				json_t *dl = json_object_get(db, "latency_buckets");
				json_t *sl = json_object_get(b, "latency_buckets");
				for (size_t k = 0; k < json_array_size(dl) && k < json_array_size(sl); k++) {
					json_t *x = json_array_get(dl, k);
					json_integer_set(x, json_integer_value(x) +
								    json_integer_value(json_array_get(sl, k)));
				}
			}
		}
	}
	return out;
}

static unsigned long long ju(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));
	return v > 0 ? (unsigned long long)v : 0;
}

static void metrics_backend(struct buf *b, const char *env, json_t *be)
{
	char lab[256];
	const char *health = json_string_value(json_object_get(be, "health"));
	snprintf(lab, sizeof(lab), "env=\"%s\",instance=\"%s\",release=\"%llu\"", env,
		 json_string_value(json_object_get(be, "id")) ?: "", ju(be, "release"));
	_cleanup_free_ char *line = xasprintf(
		 "cairn_router_requests_total{%s} %llu\n"
		 "cairn_router_errors_total{%s} %llu\n"
		 "cairn_router_connect_errors_total{%s} %llu\n"
		 "cairn_router_outstanding_requests{%s} %llu\n"
		 "cairn_router_backend_healthy{%s} %d\n"
		 "cairn_router_backend_active{%s} %d\n",
		 lab, ju(be, "requests"), lab, ju(be, "errors"), lab, ju(be, "connect_errors"), lab,
		 ju(be, "outstanding"), lab, health && streq(health, "healthy"), lab,
		 json_is_true(json_object_get(be, "active")) &&
			 !json_is_true(json_object_get(be, "draining")));
	buf_puts(b, line);
	free(line);
	json_t *lb = json_object_get(be, "latency_buckets");
	unsigned long long cum = 0;
	for (size_t i = 0; i <= N_BUCKETS; i++) {
		json_int_t v = json_integer_value(json_array_get(lb, i));
		cum += v > 0 ? (unsigned long long)v : 0;
		char le[32];
		if (i < N_BUCKETS)
			snprintf(le, sizeof(le), "%g", bucket_ms[i] / 1000.0);
		else
			snprintf(le, sizeof(le), "+Inf");
		line = xasprintf("cairn_router_request_duration_seconds_bucket{%s,le=\"%s\"} %llu\n",
				 lab, le, cum);
		buf_puts(b, line);
		free(line);
	}
	line = xasprintf(
		 "cairn_router_request_duration_seconds_sum{%s} %.6f\n"
		 "cairn_router_request_duration_seconds_count{%s} %llu\n",
		 lab, json_number_value(json_object_get(be, "latency_ms_sum")) / 1000.0, lab, cum);
	buf_puts(b, line);
}

/* Prometheus text from the merged stats. */
static void metrics_text(struct buf *b, json_t *stats)
{
	buf_puts(b, "# TYPE cairn_router_requests_total counter\n"
		    "# TYPE cairn_router_errors_total counter\n"
		    "# TYPE cairn_router_connect_errors_total counter\n"
		    "# TYPE cairn_router_outstanding_requests gauge\n"
		    "# TYPE cairn_router_backend_healthy gauge\n"
		    "# TYPE cairn_router_backend_active gauge\n"
		    "# TYPE cairn_router_request_duration_seconds histogram\n"
		    "# TYPE cairn_router_env_requests_total counter\n"
		    "# TYPE cairn_router_env_errors_total counter\n"
		    "# TYPE cairn_router_env_no_backend_total counter\n");
	const char *name;
	json_t *e;
	json_object_foreach(json_object_get(stats, "envs"), name, e)
	{
		char line[512];
		snprintf(line, sizeof(line),
			 "cairn_router_env_requests_total{env=\"%s\"} %llu\n"
			 "cairn_router_env_errors_total{env=\"%s\"} %llu\n"
			 "cairn_router_env_no_backend_total{env=\"%s\"} %llu\n",
			 name, ju(e, "requests"), name, ju(e, "errors"), name, ju(e, "no_backend"));
		buf_puts(b, line);
		size_t i;
		json_t *be;
		json_array_foreach(json_object_get(e, "backends"), i, be)
			metrics_backend(b, name, be);
	}
}

/* --- control (in each worker) ---------------------------------------------------------- */

static int64_t ms_field(json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) >= 0
		       ? (int64_t)json_integer_value(v) * 1000000LL
		       : def;
}

/* An exec check's argv from a JSON array of strings into hc->exec; n_exec
 * stays 0 when it is missing, empty or too long. */
static void health_parse_exec(json_t *argv, struct health_cfg *hc)
{
	hc->n_exec = 0;
	size_t n = json_array_size(argv), off = 0;
	if (n == 0 || n > HC_EXEC_ARGC)
		return;
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(argv, i));
		size_t len = a ? strlen(a) + 1 : 0;
		if (!a || off + len > sizeof(hc->exec))
			return;
		memcpy(hc->exec + off, a, len);
		off += len;
	}
	hc->n_exec = (unsigned)n;
}

/* A health policy from {"kind","path","exec","interval_ms","timeout_ms",
 * "healthy_after","unhealthy_after","start_period_ms"}. */
static void health_parse(json_t *h, struct health_cfg *hc)
{
	const char *kind = json_string_value(json_object_get(h, "kind"));
	const char *path = json_string_value(json_object_get(h, "path"));
	hc->kind = !kind		? HC_TCP
		   : streq(kind, "http") ? HC_HTTP
		   : streq(kind, "exec") ? HC_EXEC
					 : HC_TCP;
	snprintf(hc->path, sizeof(hc->path), "%s", path && path[0] == '/' ? path : "/");
	health_parse_exec(json_object_get(h, "exec"), hc);
	hc->interval = ms_field(h, "interval_ms", 1000000000LL);
	if (hc->interval < 10000000LL)
		hc->interval = 10000000LL;
	hc->timeout = ms_field(h, "timeout_ms", 1000000000LL);
	hc->start_period = ms_field(h, "start_period_ms", 0);
	json_int_t ha = json_integer_value(json_object_get(h, "healthy_after"));
	json_int_t ua = json_integer_value(json_object_get(h, "unhealthy_after"));
	hc->healthy_after = ha > 0 ? (unsigned)ha : 1;
	hc->unhealthy_after = ua > 0 ? (unsigned)ua : 3;
}

static struct env *env_find(const char *name)
{
	for (struct env *e = R.envs; e; e = e->next)
		if (streq(e->name, name))
			return e;
	return NULL;
}

static struct backend *env_backend(struct env *e, const char *id, bool *ret_draining)
{
	for (size_t i = 0; i < e->n_bes; i++)
		if (streq(e->bes[i]->id, id)) {
			*ret_draining = false;
			return e->bes[i];
		}
	for (size_t i = 0; i < e->n_draining; i++)
		if (streq(e->draining[i]->id, id)) {
			*ret_draining = true;
			return e->draining[i];
		}
	return NULL;
}

static struct backend *backend_find(const char *env, const char *id)
{
	struct env *e = env_find(env);
	bool draining;
	return e ? env_backend(e, id, &draining) : NULL;
}

/* Check an "env" message before anything acts on it (the main thread does,
 * then every worker applies it the same way). */
static int env_msg_check(json_t *msg, size_t n_fds, struct cairn_error *err)
{
	const char *name = json_string_value(json_object_get(msg, "env"));
	const char *listen = json_string_value(json_object_get(msg, "listen"));
	json_t *backends = json_object_get(msg, "backends");
	if (!name || !*name || strlen(name) >= sizeof(((struct env *)0)->name) || !listen ||
	    strlen(listen) >= sizeof(((struct env *)0)->listen) || !json_is_array(backends))
		return error_set(err, EINVAL, "env: expected env, listen and backends");
	const char *admin = json_string_value(json_object_get(msg, "admin"));
	if (admin && strlen(admin) >= 96)
		return error_set(err, EINVAL, "env %s: admin address too long", name);
	size_t i;
	json_t *b;
	json_array_foreach(backends, i, b)
	{
		const char *id = json_string_value(json_object_get(b, "id"));
		json_int_t port = json_integer_value(json_object_get(b, "port"));
		json_int_t fd = json_is_integer(json_object_get(b, "fd"))
					? json_integer_value(json_object_get(b, "fd"))
					: -1;
		if (!id || strlen(id) >= sizeof(((struct backend *)0)->id) || port < 1 ||
		    port > 65535 || fd >= (json_int_t)n_fds)
			return error_set(err, EINVAL, "env %s: backend %zu is malformed", name, i);
	}
	return 0;
}

/* The worker's listener for an env: lfd is LFD_KEEP (unchanged), -1 (none)
 * or a new socket, which the worker owns from here on. */
static int env_set_listener(struct env *e, const char *addr, int lfd, struct cairn_error *err)
{
	if (lfd == LFD_KEEP)
		return 0;
	if (lfd >= 0 && loop_add(R.loop, lfd, EPOLLIN, accept_event, e) < 0) {
		int ex = errno;
		close(lfd);
		return error_set(err, ex, "watching %s: %s", addr, strerror(ex));
	}
	if (e->lfd >= 0) {
		loop_del(R.loop, e->lfd);
		close(e->lfd);
	}
	e->lfd = lfd;
	snprintf(e->listen, sizeof(e->listen), "%s", lfd >= 0 ? addr : "");
	return 0;
}

/* Apply an "env" message (checked already): the listener, the policy, and
 * the whole table. */
static int control_env(json_t *msg, const int *fds, size_t n_fds, int lfd,
		       struct cairn_error *err)
{
	const char *name = json_string_value(json_object_get(msg, "env"));
	const char *listen = json_string_value(json_object_get(msg, "listen"));
	const char *mode = json_string_value(json_object_get(msg, "mode"));
	json_t *backends = json_object_get(msg, "backends");
	struct env *e = env_find(name);
	bool created = false;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->lfd = -1;
		created = true;
	}
	int r = env_set_listener(e, listen, lfd, err);
	if (r < 0) {
		if (created)
			free(e);
		return r;
	}
	if (created) {
		e->next = R.envs;
		R.envs = e;
	}
	e->tcp = mode && streq(mode, "tcp");
	health_parse(json_object_get(msg, "health"), &e->hc);
	e->drain_timeout = ms_field(msg, "drain_timeout_ms", 10000000000LL);
	/* weights */
	free(e->w);
	e->w = NULL;
	e->n_w = 0;
	json_t *w = json_object_get(msg, "weights");
	const char *rk;
	json_t *rv;
	json_object_foreach(w, rk, rv)
	{
		e->w = xreallocarray(e->w, e->n_w + 1, sizeof(*e->w));
		e->w[e->n_w++] = (struct release_weight){(unsigned)strtoul(rk, NULL, 10),
							 (unsigned)json_integer_value(rv), 0};
	}
	/* the new table, in one step */
	struct backend **table = xcalloc(json_array_size(backends) + 1, sizeof(*table));
	size_t n = 0;
	size_t i;
	json_t *b;
	json_array_foreach(backends, i, b)
	{
		const char *id = json_string_value(json_object_get(b, "id"));
		bool was_draining = false;
		struct backend *be = env_backend(e, id, &was_draining);
		json_int_t fd = json_is_integer(json_object_get(b, "fd"))
					? json_integer_value(json_object_get(b, "fd"))
					: -1;
		if (be && was_draining) {
			/* back from draining (a rollback to a warm release) */
			for (size_t k = 0; k < e->n_draining; k++)
				if (e->draining[k] == be) {
					e->draining[k] = e->draining[--e->n_draining];
					break;
				}
			be->removed = false;
			be->drain_timer = loop_timer_cancel(R.loop, be->drain_timer);
			hc_schedule(be, 0);
		}
		if (!be) {
			if (fd < 0) {
				/* nothing to reach it with: leave it out */
				continue;
			}
			be = xcalloc(1, sizeof(*be));
			be->env = e;
			be->hc_fd = -1;
			snprintf(be->id, sizeof(be->id), "%s", id);
			be->netns = fcntl(fds[fd], F_DUPFD_CLOEXEC, 3);
			be->added = loop_now(R.loop);
			be->hc = e->hc;
			hc_schedule(be, 0);
		} else if (fd >= 0) {
			/* a fresh namespace fd for a known backend replaces the old */
			safe_close(be->netns);
			be->netns = fcntl(fds[fd], F_DUPFD_CLOEXEC, 3);
		}
		be->release = (unsigned)json_integer_value(json_object_get(b, "release"));
		be->port = (uint16_t)json_integer_value(json_object_get(b, "port"));
		be->active = json_is_true(json_object_get(b, "active"));
		/* the backend's own policy, else the environment's */
		json_t *bh = json_object_get(b, "health");
		if (json_is_object(bh))
			health_parse(bh, &be->hc);
		else
			be->hc = e->hc;
		table[n++] = be;
	}
	/* what is no longer in the table drains */
	for (size_t k = 0; k < e->n_bes; k++) {
		bool kept = false;
		for (size_t j = 0; j < n && !kept; j++)
			kept = table[j] == e->bes[k];
		if (!kept)
			backend_drain(e->bes[k]);
	}
	free(e->bes);
	e->bes = table;
	e->n_bes = n;
	/* worker 0 owns health: the others learn the state of every backend of
	 * the table (one they had forgotten comes back "starting" there) */
	if (R.index == 0)
		for (size_t k = 0; k < n; k++)
			health_tell(table[k]);
	return 0;
}

static void env_remove(struct env *e)
{
	for (size_t i = 0; i < e->n_bes; i++)
		backend_drain(e->bes[i]);
	e->n_bes = 0;
	if (e->lfd >= 0) {
		loop_del(R.loop, e->lfd);
		close(e->lfd);
		e->lfd = -1;
	}
	e->listen[0] = 0;
	/* the env's struct stays (draining backends point at it) */
}

static json_t *worker_control(const struct msg *m)
{
	const char *op = json_string_value(json_object_get(m->in, "op"));
	struct cairn_error err = {0};
	json_t *ans = NULL;
	if (streq(op, "stats"))
		ans = stats_json();
	else if (streq(op, "env")) {
		if (control_env(m->in, m->fds, m->n_fds, m->lfd, &err) == 0)
			ans = json_pack("{s:b}", "ok", 1);
	} else if (streq(op, "remove")) {
		const char *name = json_string_value(json_object_get(m->in, "env"));
		struct env *e = name ? env_find(name) : NULL;
		if (e)
			env_remove(e);
		ans = json_pack("{s:b}", "ok", 1);
	} else
		error_set(&err, EINVAL, "unknown op %s", op);
	if (!ans)
		ans = json_pack("{s:b, s:s}", "ok", 0, "error", error_message(&err));
	error_clear(&err);
	return ans;
}

/* --- workers ----------------------------------------------------------------------- */

static void post(struct router *w, struct msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	pthread_mutex_unlock(&w->mu);
	uint64_t one = 1;
	(void)!write(w->efd, &one, sizeof(one));
}

/* Worker 0: tell every other worker a backend's health. */
static void health_tell(struct backend *be)
{
	for (unsigned i = 1; i < n_workers; i++) {
		struct msg *m = xcalloc(1, sizeof(*m));
		m->kind = M_HEALTH;
		snprintf(m->env, sizeof(m->env), "%s", be->env->name);
		snprintf(m->id, sizeof(m->id), "%s", be->id);
		m->health = be->health;
		post(&workers[i], m);
	}
}

/* Another worker: a failure worker 0 is to count (it may change health). */
static void fail_tell(struct backend *be, const char *why)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	m->kind = M_FAIL;
	snprintf(m->env, sizeof(m->env), "%s", be->env->name);
	snprintf(m->id, sizeof(m->id), "%s", be->id);
	snprintf(m->why, sizeof(m->why), "%s", why ? why : "failed");
	post(&workers[0], m);
}

static void exit_check(struct loop *l, void *u)
{
	bool busy = false;
	for (struct env *e = R.envs; e && !busy; e = e->next) {
		for (size_t i = 0; i < e->n_bes && !busy; i++)
			busy = e->bes[i]->outstanding > 0;
		for (size_t i = 0; i < e->n_draining && !busy; i++)
			busy = e->draining[i]->outstanding > 0;
	}
	if (!busy || loop_now(l) > R.stop_deadline)
		loop_stop(l);
	else
		(void)loop_timer_add(l, 20000000LL, exit_check, NULL);
}

/* Stop accepting; let what runs finish for up to 5 s. */
static void worker_stop(void)
{
	if (R.stopping)
		return;
	R.stopping = true;
	for (struct env *e = R.envs; e; e = e->next)
		if (e->lfd >= 0) {
			loop_del(R.loop, e->lfd);
			close(e->lfd);
			e->lfd = -1;
		}
	R.stop_deadline = loop_now(R.loop) + 5000000000LL;
	exit_check(R.loop, NULL);
}

static void batch_done(struct batch *b)
{
	pthread_mutex_lock(&b->mu);
	if (--b->left == 0)
		pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void mailbox_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&R.mu);
	struct msg *m = R.head;
	R.head = R.tail = NULL;
	pthread_mutex_unlock(&R.mu);
	while (m) {
		struct msg *next = m->next;
		switch (m->kind) {
		case M_CONTROL:
			m->out = worker_control(m);
			batch_done(m->batch); /* m is the main thread's again */
			break;
		case M_HEALTH: {
			struct backend *be = backend_find(m->env, m->id);
			if (be)
				be->health = m->health;
			free(m);
			break;
		}
		case M_FAIL: {
			struct backend *be = backend_find(m->env, m->id);
			if (be && !be->removed)
				hc_result(be, false, m->why);
			free(m);
			break;
		}
		case M_STOP:
			free(m);
			worker_stop();
			break;
		}
		m = next;
	}
}

static void *worker_main(void *arg)
{
	RP = arg;
	(void)loop_timer_add(R.loop, 5000000000LL, idle_sweep, NULL);
	(void)loop_run(R.loop);
	hc_shutdown(); /* the exec checks still running end, and are reaped */
	return NULL;
}

/* --- the main thread: control socket, /metrics, signals ----------------------------- */

/* What the main thread knows of an env: its addresses and /metrics listener
 * (the workers have the rest). */
struct ctl_env {
	char name[64];
	char listen[96], admin[96];
	int afd;
	struct ctl_env *next;
};

struct admin_conn {
	int fd;
	struct iobuf in, out;
};

static struct {
	struct loop *loop;
	int ctl_fd, sfd;
	struct ctl_env *envs;
	bool stopping;
} M;

/* Ask every worker the same control message and wait for every answer
 * (ans[i] from worker i). Posted from the last worker to the first, so a
 * health message worker 0 sends once it applied a table always reaches a
 * worker after that table. */
static void ask_all(json_t *in, const int *fds, size_t n_fds, const int *lfds, json_t **ans)
{
	struct batch b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n_workers};
	struct msg *ms = xcalloc(n_workers, sizeof(*ms));
	for (unsigned i = n_workers; i-- > 0;) {
		ms[i] = (struct msg){.kind = M_CONTROL, .in = in, .fds = fds, .n_fds = n_fds,
				     .lfd = lfds ? lfds[i] : LFD_KEEP, .batch = &b};
		post(&workers[i], &ms[i]);
	}
	pthread_mutex_lock(&b.mu);
	while (b.left)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	for (unsigned i = 0; i < n_workers; i++)
		ans[i] = ms[i].out;
	free(ms);
}

static json_t *stats_gather(void)
{
	json_t *q = json_pack("{s:s}", "op", "stats");
	json_t **ans = xcalloc(n_workers, sizeof(*ans));
	ask_all(q, NULL, 0, NULL, ans);
	json_t *merged = stats_merge(ans, n_workers);
	for (unsigned i = 0; i < n_workers; i++)
		json_decref(ans[i]);
	free(ans);
	json_decref(q);
	json_object_set_new(merged, "workers", json_integer(n_workers));
	return merged;
}

static void admin_close(struct admin_conn *a)
{
	loop_del(M.loop, a->fd);
	close(a->fd);
	iob_free(&a->in);
	iob_free(&a->out);
	free(a);
}

static void admin_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct admin_conn *a = u;
	if (iob_size(&a->out)) {
		int r = iob_write(&a->out, fd);
		if (r != -EAGAIN)
			admin_close(a);
		return;
	}
	ssize_t n = iob_read(&a->in, fd);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		admin_close(a);
		return;
	}
	struct http_message m;
	struct http_error he = {0};
	int r = http_parse_request(NULL, a->in.data + a->in.off, iob_size(&a->in), &m, &he);
	if (r == 0)
		return;
	struct buf b = {0};
	if (r < 0) {
		http_write_error(&b, he.status ? he.status : 400);
	} else if (!http_str_case_eq(m.method, "GET") ||
		   !(m.target.len == 8 && memcmp(m.target.p, "/metrics", 8) == 0)) {
		http_write_error(&b, 404);
	} else {
		struct buf body = {0};
		json_t *stats = stats_gather();
		metrics_text(&body, stats);
		json_decref(stats);
		char head[200];
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 body.len);
		buf_puts(&b, head);
		buf_put(&b, body.data, body.len);
		buf_free(&body);
	}
	iob_put(&a->out, b.data, b.len);
	buf_free(&b);
	r = iob_write(&a->out, fd);
	if (r == -EAGAIN)
		(void)loop_mod(l, fd, EPOLLOUT);
	else
		admin_close(a);
}

static void admin_accept(struct loop *l, int lfd, uint32_t ev, void *u)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct admin_conn *a = xcalloc(1, sizeof(*a));
	a->fd = fd;
	if (loop_add(l, fd, EPOLLIN, admin_event, a) < 0) {
		close(fd);
		free(a);
	}
}

static struct ctl_env *ctl_env_find(const char *name)
{
	for (struct ctl_env *c = M.envs; c; c = c->next)
		if (streq(c->name, name))
			return c;
	return NULL;
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		safe_close(fds[i]);
}

/* An "env" message: checked, the new listeners made (one per worker, with
 * SO_REUSEPORT, so the kernel spreads connections), then applied by every
 * worker; nothing changes when a step fails. */
static json_t *main_env(json_t *msg, const int *fds, size_t n_fds, struct cairn_error *err)
{
	if (env_msg_check(msg, n_fds, err) < 0)
		return NULL;
	const char *name = json_string_value(json_object_get(msg, "env"));
	const char *listen = json_string_value(json_object_get(msg, "listen"));
	const char *admin = json_string_value(json_object_get(msg, "admin")) ?: "";
	struct ctl_env *c = ctl_env_find(name);
	_cleanup_free_ int *lfds = xcalloc(n_workers, sizeof(int));
	bool new_listen = !c || !streq(c->listen, listen);
	for (unsigned i = 0; i < n_workers; i++)
		lfds[i] = new_listen ? -1 : LFD_KEEP;
	if (new_listen)
		for (unsigned i = 0; i < n_workers; i++) {
			lfds[i] = listen_on(listen, true, err);
			if (lfds[i] < 0) {
				close_all(lfds, i);
				return NULL;
			}
		}
	int afd = -1;
	bool new_admin = !streq(c ? c->admin : "", admin);
	if (new_admin && *admin) {
		afd = listen_on(admin, false, err);
		if (afd < 0 || loop_add(M.loop, afd, EPOLLIN, admin_accept, NULL) < 0) {
			if (afd >= 0) {
				error_set(err, errno, "watching %s: %s", admin, strerror(errno));
				close(afd);
			}
			if (new_listen)
				close_all(lfds, n_workers);
			return NULL;
		}
	}
	/* from here the workers own the listeners */
	json_t **ans = xcalloc(n_workers, sizeof(*ans));
	ask_all(msg, fds, n_fds, lfds, ans);
	json_t *out = NULL;
	for (unsigned i = 0; i < n_workers; i++) {
		if (!out && !json_is_true(json_object_get(ans[i], "ok")))
			out = json_incref(ans[i]);
		json_decref(ans[i]);
	}
	free(ans);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->afd = -1;
		c->next = M.envs;
		M.envs = c;
	}
	snprintf(c->listen, sizeof(c->listen), "%s", listen);
	if (new_admin) {
		if (c->afd >= 0) {
			loop_del(M.loop, c->afd);
			close(c->afd);
		}
		c->afd = afd;
		snprintf(c->admin, sizeof(c->admin), "%s", admin);
	}
	return out ? out : json_pack("{s:b}", "ok", 1);
}

static json_t *main_remove(json_t *msg)
{
	json_t **ans = xcalloc(n_workers, sizeof(*ans));
	ask_all(msg, NULL, 0, NULL, ans);
	for (unsigned i = 0; i < n_workers; i++)
		json_decref(ans[i]);
	free(ans);
	const char *name = json_string_value(json_object_get(msg, "env"));
	for (struct ctl_env **p = &M.envs; *p; p = &(*p)->next)
		if (name && streq((*p)->name, name)) {
			struct ctl_env *c = *p;
			*p = c->next;
			if (c->afd >= 0) {
				loop_del(M.loop, c->afd);
				close(c->afd);
			}
			free(c);
			break;
		}
	return json_pack("{s:b}", "ok", 1);
}

static json_t *control_handle(json_t *msg, const int *fds, size_t n_fds)
{
	const char *op = json_string_value(json_object_get(msg, "op"));
	struct cairn_error err = {0};
	json_t *ans = NULL;
	if (!op)
		error_set(&err, EINVAL, "no op");
	else if (M.stopping)
		error_set(&err, ESHUTDOWN, "the router is stopping");
	else if (streq(op, "ping"))
		ans = json_pack("{s:b, s:i, s:i}", "ok", 1, "pid", (int)getpid(), "workers",
				(int)n_workers);
	else if (streq(op, "stats"))
		ans = stats_gather();
	else if (streq(op, "env"))
		ans = main_env(msg, fds, n_fds, &err);
	else if (streq(op, "remove"))
		ans = main_remove(msg);
	else
		error_set(&err, EINVAL, "unknown op %s", op);
	if (!ans)
		ans = json_pack("{s:b, s:s}", "ok", 0, "error", error_message(&err));
	error_clear(&err);
	return ans;
}

#define CTL_MAX_FDS 250
#define CTL_MAX_MSG (1u << 20)

static void control_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	static char data[CTL_MAX_MSG];
	char cbuf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
	struct iovec iov = {data, sizeof(data) - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	int fds[CTL_MAX_FDS];
	size_t n_fds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k && n_fds < CTL_MAX_FDS; i++)
				memcpy(&fds[n_fds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
	if (n <= 0) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		loop_del(l, fd);
		close(fd);
		return;
	}
	data[n] = 0;
	json_error_t je;
	json_t *msg = json_loadb(data, (size_t)n, 0, &je);
	json_t *ans = msg ? control_handle(msg, fds, n_fds)
			  : json_pack("{s:b, s:s}", "ok", 0, "error", "not JSON");
	json_decref(msg);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	char *out = json_dumps(ans, JSON_COMPACT);
	json_decref(ans);
	if (out) {
		(void)send(fd, out, strlen(out), MSG_NOSIGNAL);
		free(out);
	}
}

static void control_accept(struct loop *l, int lfd, uint32_t ev, void *u)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* a reply must not wait on a slow reader forever */
	struct timeval tv = {2, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (loop_add(l, fd, EPOLLIN, control_event, NULL) < 0)
		close(fd);
}

static void signal_event(struct loop *l, int fd, uint32_t ev, void *u)
{
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP)
		return;
	/* every worker stops accepting and finishes what runs; main waits */
	M.stopping = true;
	for (unsigned i = 0; i < n_workers; i++) {
		struct msg *m = xcalloc(1, sizeof(*m));
		m->kind = M_STOP;
		post(&workers[i], m);
	}
	loop_stop(l);
}

/* --- main ----------------------------------------------------------------------------- */

/* By default one worker per CPU (at most 16), as haproxy's nbthread. On 2
 * cores with nginx, wrk and the proxy sharing them, one worker did best
 * against a one-process backend (1.06x haproxy's requests/s against 0.99x)
 * but fell to 0.79x against a two-process one, where two workers stayed at
 * 1.00x: the instances behind the router are several processes
 * (bench/router/run.sh). */
static unsigned workers_wanted(unsigned asked)
{
	if (asked)
		return asked > 64 ? 64 : asked;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

int router_main(const char *ctl_path, unsigned n_asked, struct cairn_error *err)
{
	M = (typeof(M)){.ctl_fd = -1, .sfd = -1};
	/* ROOT is where the control socket lives */
	const char *slash = strrchr(ctl_path, '/');
	_cleanup_free_ char *root = !slash		 ? xstrdup(".")
				    : slash == ctl_path ? xstrdup("/")
							: xstrndup(ctl_path, (size_t)(slash - ctl_path));
	M.loop = loop_new();
	if (!M.loop)
		return error_set(err, errno, "epoll: %s", strerror(errno));
	int host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (host_netns < 0)
		return error_set(err, errno, "/proc/self/ns/net: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	/* blocked here, so in every worker too: only the main thread's
	 * signalfd takes them */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	M.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(ctl_path) >= sizeof(sa.sun_path))
		return error_set(err, ENAMETOOLONG, "%s: path too long for a socket", ctl_path);
	memcpy(sa.sun_path, ctl_path, strlen(ctl_path) + 1);
	M.ctl_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (M.ctl_fd < 0)
		return error_set(err, errno, "socket: %s", strerror(errno));
	n_workers = workers_wanted(n_asked);
	workers = xcalloc(n_workers, sizeof(*workers));
	for (unsigned i = 0; i < n_workers; i++) {
		struct router *w = &workers[i];
		w->index = i;
		w->host_netns = host_netns;
		w->root = root;
		pthread_mutex_init(&w->mu, NULL);
		w->loop = loop_new();
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (!w->loop || w->efd < 0 || loop_add(w->loop, w->efd, EPOLLIN, mailbox_event, w) < 0)
			return error_set(err, errno, "worker %u: %s", i, strerror(errno));
		w->reaper.loop = w->loop;
	}
	(void)unlink(ctl_path);
	mode_t old = umask(0177);
	int r = bind(M.ctl_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(ctl_path, 0600) < 0 || listen(M.ctl_fd, 16) < 0)
		return error_set(err, errno, "%s: %s", ctl_path, strerror(errno));
	if (loop_add(M.loop, M.ctl_fd, EPOLLIN, control_accept, NULL) < 0 ||
	    loop_add(M.loop, M.sfd, EPOLLIN, signal_event, NULL) < 0)
		return error_set(err, errno, "epoll: %s", strerror(errno));
	for (unsigned i = 0; i < n_workers; i++) {
		r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (r != 0)
			abort(); /* before any env: nothing is served yet */
	}
	r = loop_run(M.loop);
	if (r < 0 && !M.stopping) {
		/* the main loop failed: stop the workers all the same */
		for (unsigned i = 0; i < n_workers; i++) {
			struct msg *m = xcalloc(1, sizeof(*m));
			m->kind = M_STOP;
			post(&workers[i], m);
		}
	}
	for (unsigned i = 0; i < n_workers; i++)
		pthread_join(workers[i].thread, NULL);
	/* what worker 0 told a worker that had already stopped */
	for (unsigned i = 0; i < n_workers; i++)
		for (struct msg *m = workers[i].head, *next; m; m = next) {
			next = m->next;
			if (m->kind != M_CONTROL)
				free(m);
		}
	(void)unlink(ctl_path);
	if (r < 0)
		return error_set(err, -r, "event loop: %s", strerror(-r));
	return 0;
}
