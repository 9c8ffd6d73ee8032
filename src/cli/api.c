/* The CLI as a client of the daemon's API: one HTTP/1.1 request over
 * $ROOT/cairn.sock, the answer read to the end (JSON, or a stream of JSON
 * lines for the long operations), and the progress printing they share. */
#include "api.h"

#include "../base/buf.h"
#include "../base/fs.h"
#include "../router/http.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int api_call(struct cli *cli, const char *method, const char *path, json_t *body,
	     void (*line_fn)(json_t *line, void *u), void *u, json_t **ret,
	     struct cairn_error *err)
{
	_cleanup_free_ char *sock = xasprintf("%s/cairn.sock", cli->root);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(sa.sun_path))
		return error_set(err, ENAMETOOLONG, "%s: too long for a socket", sock);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(err, errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			return error_set(err, ECONNREFUSED,
					 "no daemon runs on %s: start one with 'cairn --root %s "
					 "daemon' (contrib/cairn.service runs it as a service)",
					 cli->root, cli->root);
		return error_set(err, errno, "%s: %s", sock, strerror(errno));
	}
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t tl = text ? strlen(text) : 0;
	_cleanup_free_ char *head = xasprintf("%s %s HTTP/1.1\r\nHost: cairn\r\nContent-Type: "
					      "application/json\r\nContent-Length: %zu\r\n"
					      "Connection: close\r\n\r\n",
					      method, path, tl);
	if (write_all(fd, head, strlen(head)) < 0 || (tl && write_all(fd, text, tl) < 0))
		return error_set(err, errno, "talking to the daemon: %s", strerror(errno));
	struct buf b = {0};
	struct http_parser hp;
	http_parser_init(&hp, 0);
	struct http_message m;
	size_t line_at = 0;
	int status = 0;
	json_t *last = NULL;
	int r = 0;
	for (;;) {
		buf_reserve(&b, 8192);
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = 0;
		if (!status) {
			int q = http_parse_response(&hp, b.data, b.len, 0, &m, NULL);
			if (q < 0) {
				r = error_set(err, EBADMSG, "the daemon's answer is not HTTP");
				break;
			}
			if (q == 0)
				continue;
			status = m.status;
			line_at = m.head_len;
		}
		/* complete lines */
		for (;;) {
			char *nl = memchr(b.data + line_at, '\n', b.len - line_at);
			if (!nl)
				break;
			json_t *j = json_loadb(b.data + line_at, (size_t)(nl - (b.data + line_at)), 0,
					       NULL);
			line_at = (size_t)(nl - b.data) + 1;
			if (!j)
				continue;
			if (line_fn)
				line_fn(j, u);
			json_decref(last);
			last = j;
		}
	}
	buf_free(&b);
	if (r < 0) {
		json_decref(last);
		return r;
	}
	if (!status || !last) {
		json_decref(last);
		return error_set(err, EPIPE, "the daemon closed the connection without an answer");
	}
	if (status >= 400) {
		r = error_set(err, status == 404 ? ENOENT : EIO, "%s",
			      json_string_value(json_object_get(last, "error")) ?: "failed");
		json_decref(last);
		return r;
	}
	*ret = last;
	return 0;
}

void api_print_progress(json_t *line, void *u)
{
	struct cli *cli = u;
	if (cli->json) {
		char *s = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
		if (s)
			printf("%s\n", s);
		free(s);
		fflush(stdout);
		return;
	}
	const char *ev = json_string_value(json_object_get(line, "event"));
	if (ev && streq(ev, "done"))
		return;
	const char *msg = json_string_value(json_object_get(line, "message"));
	json_int_t ms = json_integer_value(json_object_get(line, "ms"));
	fprintf(stderr, "%7.3fs  %s\n", (double)ms / 1000.0, msg ? msg : "");
}

int api_finish(struct cli *cli, json_t *done)
{
	const char *event = json_string_value(json_object_get(done, "event"));
	if (!event || !streq(event, "done")) {
		fprintf(stderr, "cairn: the daemon closed the connection before the operation "
				"finished (it may have stopped); see 'cairn releases ENV' for the "
				"outcome\n");
		return 1;
	}
	const char *outcome = json_string_value(json_object_get(done, "outcome"));
	const char *reason = json_string_value(json_object_get(done, "reason"));
	json_int_t number = json_integer_value(json_object_get(done, "release"));
	const char *env = json_string_value(json_object_get(done, "env"));
	bool ok = outcome && streq(outcome, "live");
	if (!cli->json) {
		if (ok) {
			json_t *t = json_object_get(done, "timings");
			printf("%s v%lld is live", env ? env : "", (long long)number);
			json_t *sw = json_object_get(t, "switched_ms");
			json_t *tot = json_object_get(t, "total_ms");
			if (sw)
				printf(" (traffic switched after %.3fs, done in %.3fs)",
				       (double)json_integer_value(sw) / 1000.0,
				       (double)json_integer_value(tot) / 1000.0);
			printf("\n");
		} else {
			if (number)
				fprintf(stderr, "cairn: %s v%lld failed: %s\n", env ? env : "",
					(long long)number, reason ? reason : "failed");
			else
				fprintf(stderr, "cairn: %s%s%s\n", env ? env : "", env ? ": " : "",
					reason ? reason : "failed");
			if (number)
				fprintf(stderr, "cairn: (release v%lld is recorded as failed; the live "
						"release kept all traffic)\n",
					(long long)number);
		}
	}
	return ok ? 0 : 1;
}
