/* The daemon's body: the API server (a thread per connection on a unix
 * socket, one request each, answered with JSON or, for long operations, a
 * stream of JSON lines), the router's supervision and its route tables, and
 * the release operations (deploy.c). Every operation takes the daemon's one
 * operation lock, records its intent in SQLite, then acts. */
#include "daemon.h"

#include "../base/buf.h"
#include "../base/fs.h"
#include "../router/http.h"
#include "../runtime/runtime.h"
#include "../state/state.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct daemon D;

/* --- running cairn itself ----------------------------------------------------- */

int daemon_spawn(char *const *args, char **ret_out, char **ret_errtext)
{
	size_t n = 0;
	while (args[n])
		n++;
	char **argv = xcalloc(n + 4, sizeof(char *));
	argv[0] = D.exe;
	argv[1] = (char *)"--root";
	argv[2] = D.root;
	memcpy(argv + 3, args, n * sizeof(char *));
	int out[2], er[2];
	if (pipe2(out, O_CLOEXEC) < 0) {
		free(argv);
		return -errno;
	}
	if (pipe2(er, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		free(argv);
		return -errno;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, er[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int r = posix_spawn(&pid, D.exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	close(out[1]);
	close(er[1]);
	if (r != 0) {
		close(out[0]);
		close(er[0]);
		return -r;
	}
	struct buf ob = {0}, eb = {0};
	struct pollfd p[2] = {{out[0], POLLIN, 0}, {er[0], POLLIN, 0}};
	int open_fds = 2;
	while (open_fds) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			char tmp[4096];
			ssize_t k = read(p[i].fd, tmp, sizeof(tmp));
			if (k > 0) {
				buf_put(i ? &eb : &ob, tmp, (size_t)k);
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			open_fds--;
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf_putc(&ob, 0);
	buf_putc(&eb, 0);
	/* one line: the last line of stderr, without "cairn: " */
	char *e = eb.data;
	size_t el = strlen(e);
	while (el && (e[el - 1] == '\n'))
		e[--el] = 0;
	char *last = strrchr(e, '\n');
	last = last ? last + 1 : e;
	if (startswith(last, "cairn: "))
		last += 7;
	if (ret_errtext)
		*ret_errtext = xstrdup(last);
	if (ret_out)
		*ret_out = buf_steal(&ob);
	buf_free(&ob);
	buf_free(&eb);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- the router ------------------------------------------------------------------ */

int router_call(json_t *msg, const int *fds, size_t n_fds, json_t **ret, struct cairn_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/router.sock", D.root);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return error_set(err, ENAMETOOLONG, "%s: too long for a socket", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(err, errno, "socket: %s", strerror(errno));
	struct timeval tv = {5, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return error_set(err, errno, "the router (%s): %s", path, strerror(errno));
	_cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
	struct iovec iov = {text, strlen(text)};
	char cbuf[CMSG_SPACE(sizeof(int) * 250)];
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n_fds) {
		if (n_fds > 250)
			return error_set(err, E2BIG, "more than 250 instances in one table");
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return error_set(err, errno, "talking to the router: %s", strerror(errno));
	size_t cap = 1 << 20;
	_cleanup_free_ char *ans = xmalloc(cap);
	ssize_t n = recv(fd, ans, cap - 1, 0);
	if (n <= 0)
		return error_set(err, n < 0 ? errno : EPIPE, "the router did not answer: %s",
				 n < 0 ? strerror(errno) : "closed");
	ans[n] = 0;
	json_t *j = json_loads(ans, 0, NULL);
	if (!j)
		return error_set(err, EBADMSG, "the router answered something that is not JSON");
	if (!json_is_true(json_object_get(j, "ok"))) {
		int r = error_set(err, EIO, "the router: %s",
				  json_string_value(json_object_get(j, "error")) ?: "failed");
		json_decref(j);
		return r;
	}
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

/* Start the router when none answers: its own session, its log in
 * $ROOT/router.log. Waits until it answers a ping. */
int router_ensure(struct cairn_error *err)
{
	json_t *ping = json_pack("{s:s}", "op", "ping");
	if (router_call(ping, NULL, 0, NULL, NULL) == 0) {
		json_decref(ping);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		json_decref(ping);
		return error_set(err, errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		_cleanup_free_ char *log = xasprintf("%s/router.log", D.root);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *argv[] = {D.exe, (char *)"--root", D.root, (char *)"router", NULL};
		execv(D.exe, argv);
		_exit(127);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	int r = -ETIMEDOUT;
	for (int i = 0; i < 300 && r < 0; i++) {
		r = router_call(ping, NULL, 0, NULL, NULL);
		if (r < 0)
			usleep(10000);
	}
	json_decref(ping);
	if (r < 0)
		return error_set(err, ETIMEDOUT, "the router did not start (see %s/router.log)",
				 D.root);
	return 0;
}

json_t *router_stats(struct cairn_error *err)
{
	json_t *msg = json_pack("{s:s}", "op", "stats");
	json_t *ans = NULL;
	int r = router_call(msg, NULL, 0, &ans, err);
	json_decref(msg);
	return r < 0 ? NULL : ans;
}

json_t *stats_backend(json_t *stats, const char *env, const char *id)
{
	json_t *bes = json_object_get(json_object_get(json_object_get(stats, "envs"), env),
				      "backends");
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

/* Open the network namespace of a running instance (checked against pid
 * reuse before and after). */
static int instance_netns(struct state *st, const char *id, struct state_instance *ret_in)
{
	struct state_instance in = {0};
	if (state_instance_find(st, id, &in, NULL) < 0)
		return -ENOENT;
	if (!streq(in.state, "running") || !runtime_alive(in.pid, in.pid_start)) {
		state_instance_free(&in);
		return -ESRCH;
	}
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", in.pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !runtime_alive(in.pid, in.pid_start)) {
		safe_close(fd);
		state_instance_free(&in);
		return -ESRCH;
	}
	if (ret_in)
		*ret_in = in;
	else
		state_instance_free(&in);
	return fd;
}

bool instance_running(struct state *st, const char *id)
{
	struct state_instance in = {0};
	if (state_instance_find(st, id, &in, NULL) < 0)
		return false;
	bool alive = streq(in.state, "running") && runtime_alive(in.pid, in.pid_start);
	state_instance_free(&in);
	return alive;
}

/* The router's form of a health policy: an exec check carries its argv
 * (the router runs it in each instance with `cairn probe`). */
static json_t *health_json(const struct service_health *h)
{
	const char *kind = h->check == SERVICE_CHECK_HTTP   ? "http"
			   : h->check == SERVICE_CHECK_EXEC ? "exec"
							    : "tcp";
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:I}", "kind", kind, "path",
			      h->http_path ? h->http_path : "/", "interval_ms",
			      (json_int_t)(h->interval_ns / 1000000), "timeout_ms",
			      (json_int_t)(h->timeout_ns / 1000000), "healthy_after",
			      (int)h->healthy_after, "unhealthy_after", (int)h->unhealthy_after,
			      "start_period_ms", (json_int_t)(h->start_period_ns / 1000000));
	if (h->check == SERVICE_CHECK_EXEC) {
		json_t *argv = json_array();
		for (size_t i = 0; i < h->n_exec; i++)
			json_array_append_new(argv, json_string(h->exec[i]));
		json_object_set_new(j, "exec", argv);
	}
	return j;
}

int push_env(struct state *st, const struct service_config *cfg, const struct table *t,
	     struct cairn_error *err)
{
	json_t *bes = json_array();
	int fds[250];
	size_t n_fds = 0;
	int r = 0;
	for (size_t k = 0; k < t->n && r == 0; k++) {
		char **ids = NULL;
		size_t n = 0;
		/* each release is checked by its own health policy */
		json_t *rh = NULL;
		struct state_release rel = {0};
		if (state_release_get(st, cfg->environment, t->v[k].release, &rel, NULL) == 0) {
			json_t *rc = json_loads(rel.config, 0, NULL);
			struct service_config *c = NULL;
			if (rc && service_config_from_json(rc, &c, NULL) == 0)
				rh = health_json(&c->health);
			json_decref(rc);
			service_config_free(c);
		}
		state_release_free(&rel);
		r = state_release_instances(st, cfg->environment, t->v[k].release, &ids, &n, err);
		for (size_t i = 0; i < n && r == 0; i++) {
			int fd = instance_netns(st, ids[i], NULL);
			if (fd < 0)
				continue; /* gone: the router must not be told of it */
			if (n_fds == ELEMENTSOF(fds)) {
				close(fd);
				r = error_set(err, E2BIG, "too many instances for one table");
				break;
			}
			fds[n_fds] = fd;
			json_t *be = json_pack("{s:s, s:i, s:i, s:b, s:i}", "id", ids[i], "release",
					       (int)t->v[k].release, "port", (int)cfg->run.port,
					       "active", t->v[k].active, "fd", (int)n_fds);
			if (rh)
				json_object_set(be, "health", rh);
			json_array_append_new(bes, be);
			n_fds++;
		}
		json_decref(rh);
		strv_free_n(ids, n);
	}
	if (r < 0) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		json_decref(bes);
		return r;
	}
	char listen[300], admin[300] = "";
	const char *lh = cfg->listen.host && *cfg->listen.host ? cfg->listen.host : "";
	snprintf(listen, sizeof(listen), strchr(lh, ':') ? "[%s]:%u" : "%s:%u", lh,
		 cfg->listen.port);
	if (cfg->admin.port) {
		const char *ah = cfg->admin.host ? cfg->admin.host : "";
		snprintf(admin, sizeof(admin), strchr(ah, ':') ? "[%s]:%u" : "%s:%u", ah,
			 cfg->admin.port);
	}
	json_t *health = health_json(&cfg->health);
	json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "op", "env", "env",
				cfg->environment, "listen", listen, "admin", admin, "mode",
				cfg->run.mode == SERVICE_MODE_TCP ? "tcp" : "http",
				"drain_timeout_ms",
				(json_int_t)(cfg->deploy.drain_timeout_ns / 1000000), "health",
				health, "backends", bes);
	if (t->weights)
		json_object_set(msg, "weights", t->weights);
	r = router_call(msg, fds, n_fds, NULL, err);
	json_decref(msg);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	return r;
}

/* --- the API server ----------------------------------------------------------------- */

struct request {
	int fd;
	char *method, *path, *query;
	json_t *body;
};

static void respond(int fd, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, http_status_reason(status), text ? strlen(text) + 1 : 0);
	(void)write_all(fd, head, (size_t)n);
	if (text) {
		(void)write_all(fd, text, strlen(text));
		(void)write_all(fd, "\n", 1);
	}
	free(text);
}

static void respond_error(int fd, int status, const char *msg)
{
	json_t *j = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	respond(fd, status, j);
	json_decref(j);
}

/* Start a stream of JSON lines (until the connection closes). */
void stream_begin(int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
				   "Connection: close\r\n\r\n";
	(void)write_all(fd, head, sizeof(head) - 1);
}

void stream_line(int fd, json_t *j)
{
	if (fd < 0)
		return;
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (text) {
		size_t n = strlen(text);
		text = xrealloc(text, n + 2);
		text[n] = '\n';
		(void)send(fd, text, n + 1, MSG_NOSIGNAL);
	}
	free(text);
}

static const char *query_get(const char *query, const char *key, char *out, size_t outlen)
{
	if (!query)
		return NULL;
	size_t kl = strlen(key);
	for (const char *p = query; *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = len - kl - 1;
			if (vl >= outlen)
				vl = outlen - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = 0;
			return out;
		}
		p += len + (amp ? 1 : 0);
	}
	return NULL;
}

static int read_request(int fd, struct request *ret)
{
	struct buf b = {0};
	struct http_parser hp;
	http_parser_init(&hp, 0);
	struct http_message m;
	struct http_error he = {0};
	int r = 0;
	for (;;) {
		buf_reserve(&b, 4096);
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len);
		if (n <= 0) {
			r = -EPIPE;
			break;
		}
		b.len += (size_t)n;
		r = http_parse_request(&hp, b.data, b.len, &m, &he);
		if (r != 0)
			break;
	}
	if (r < 0) {
		if (r != -EPIPE)
			respond_error(fd, he.status ? he.status : 400, "bad request");
		buf_free(&b);
		return r;
	}
	if (m.body == HTTP_BODY_CHUNKED || m.content_length > (1u << 20)) {
		respond_error(fd, 413, "send a JSON body with Content-Length, at most 1 MiB");
		buf_free(&b);
		return -EINVAL;
	}
	size_t want = m.head_len + (size_t)m.content_length;
	ret->method = http_str_dup(m.method);
	char *target = http_str_dup(m.target);
	char *q = strchr(target, '?');
	if (q) {
		*q++ = 0;
		ret->query = xstrdup(q);
	}
	ret->path = target;
	while (b.len < want) {
		buf_reserve(&b, want - b.len);
		ssize_t n = read(fd, b.data + b.len, want - b.len);
		if (n <= 0) {
			buf_free(&b);
			return -EPIPE;
		}
		b.len += (size_t)n;
	}
	if (m.content_length) {
		ret->body = json_loadb(b.data + m.head_len, (size_t)m.content_length, 0, NULL);
		if (!ret->body) {
			respond_error(fd, 400, "the body is not JSON");
			buf_free(&b);
			return -EINVAL;
		}
	}
	buf_free(&b);
	return 0;
}

static void request_free(struct request *rq)
{
	free(rq->method);
	free(rq->path);
	free(rq->query);
	json_decref(rq->body);
}

static void handle(struct request *rq)
{
	int fd = rq->fd;
	char env[128];
	struct cairn_error err = {0};
	json_t *ans = NULL;
	int status = 200;
	if (streq(rq->path, "/v1/ping")) {
		json_t *rp = NULL, *ping = json_pack("{s:s}", "op", "ping");
		(void)router_call(ping, NULL, 0, &rp, NULL);
		json_decref(ping);
		ans = json_pack("{s:b, s:i, s:O?}", "ok", 1, "pid", (int)getpid(), "router_pid",
				json_object_get(rp, "pid"));
		json_decref(rp);
	} else if (streq(rq->path, "/v1/deploy") && streq(rq->method, "POST")) {
		op_deploy(fd, rq->body);
		return;
	} else if (streq(rq->path, "/v1/rollback") && streq(rq->method, "POST")) {
		op_rollback(fd, rq->body);
		return;
	} else if (streq(rq->path, "/v1/promote") && streq(rq->method, "POST")) {
		op_promote(fd, rq->body);
		return;
	} else if (streq(rq->path, "/v1/scale") && streq(rq->method, "POST")) {
		op_scale(fd, rq->body);
		return;
	} else if (streq(rq->path, "/v1/status")) {
		ans = op_status(query_get(rq->query, "env", env, sizeof(env)), &err);
	} else if (streq(rq->path, "/v1/releases")) {
		ans = op_releases(query_get(rq->query, "env", env, sizeof(env)), &err);
	} else if (streq(rq->path, "/v1/events")) {
		char lim[32];
		const char *l = query_get(rq->query, "limit", lim, sizeof(lim));
		ans = op_events(query_get(rq->query, "env", env, sizeof(env)),
				l ? strtoul(l, NULL, 10) : 100, &err);
	} else {
		respond_error(fd, 404, "no such endpoint");
		return;
	}
	if (!ans) {
		respond_error(fd, err.code == ENOENT ? 404 : 500, error_message(&err));
		error_clear(&err);
		return;
	}
	respond(fd, status, ans);
	json_decref(ans);
}

static void *conn_thread(void *u)
{
	int fd = (int)(intptr_t)u;
	struct request rq = {.fd = fd};
	if (read_request(fd, &rq) == 0)
		handle(&rq);
	request_free(&rq);
	close(fd);
	return NULL;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	stop_requested = sig;
}

int daemon_main(const char *root, const char *exe, struct cairn_error *err)
{
	D.root = xstrdup(root);
	D.exe = xstrdup(exe);
	pthread_mutex_init(&D.op_lock, NULL);
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return error_set(err, errno, "%s: %s", root, strerror(errno));
	/* one daemon per root */
	_cleanup_free_ char *lockp = xasprintf("%s/daemon.lock", root);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return error_set(err, errno, "%s: %s", lockp, strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0)
		return error_set(err, EBUSY, "another daemon runs on %s", root);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int r = router_ensure(err);
	if (r < 0)
		return r;
	r = daemon_recover(err);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = xasprintf("%s/cairn.sock", root);
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(su.sun_path))
		return error_set(err, ENAMETOOLONG, "%s: too long for a socket", path);
	memcpy(su.sun_path, path, strlen(path) + 1);
	int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sfd < 0)
		return error_set(err, errno, "socket: %s", strerror(errno));
	(void)unlink(path);
	mode_t old = umask(0177);
	r = bind(sfd, (struct sockaddr *)&su, sizeof(su));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(sfd, 64) < 0) {
		r = error_set(err, errno, "%s: %s", path, strerror(errno));
		close(sfd);
		return r;
	}
	fprintf(stderr, "cairn daemon: serving %s (pid %d)\n", path, (int)getpid());
	while (!stop_requested) {
		struct pollfd p = {sfd, POLLIN, 0};
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(sfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &at, conn_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
		pthread_attr_destroy(&at);
	}
	/* operations in flight finish under the lock; then go */
	pthread_mutex_lock(&D.op_lock);
	(void)unlink(path);
	close(sfd);
	fprintf(stderr, "cairn daemon: stopped\n");
	return 0;
}
