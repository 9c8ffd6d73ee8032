/* Published ports: the monitor accepts on the host's address and relays each
 * connection to the instance's own loopback. The instance has no interface
 * but lo, so the upstream socket is made inside its network namespace: setns
 * into it, socket(), setns back (the monitor is single-threaded). */
#include "proxy.h"

#include "../base/fs.h"

#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#define RELAY_BUF 65536

struct half {
	char *buf;
	size_t len, off; /* bytes buffered, bytes already sent */
	bool eof;	 /* the reading side ended */
};

struct conn {
	int fd[2];	 /* 0: client, 1: instance */
	struct half h[2]; /* h[i]: bytes read from fd[i], to write to fd[1 - i] */
	bool connecting;
	bool dead;
};

struct listener {
	int fd;
	uint16_t port; /* inside the instance */
};

struct proxy {
	int netns, hostns;
	struct listener *l;
	size_t n_l;
	struct conn *c;
	size_t n_c, cap_c;
};

struct proxy *proxy_new(int instance_netns, int host_netns)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	p->netns = instance_netns;
	p->hostns = host_netns;
	return p;
}

void proxy_add(struct proxy *p, int listen_fd, uint16_t port)
{
	p->l = xreallocarray(p->l, p->n_l + 1, sizeof(*p->l));
	p->l[p->n_l++] = (struct listener){listen_fd, port};
	(void)fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		c->fd[i] = safe_close(c->fd[i]);
		free(c->h[i].buf);
		c->h[i].buf = NULL;
	}
	c->dead = true;
}

/* A socket in the instance's network namespace, connecting to its port. */
static int upstream(struct proxy *p, uint16_t port)
{
	if (setns(p->netns, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	if (setns(p->hostns, CLONE_NEWNET) < 0)
		abort(); /* a monitor stuck in the instance's network is worse */
	if (fd < 0)
		return -e;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void accept_all(struct proxy *p, struct listener *l)
{
	for (;;) {
		int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		int ufd = upstream(p, l->port);
		if (ufd < 0) {
			close(cfd); /* nothing listens inside (yet): the client sees EOF */
			continue;
		}
		p->c = xgrow(p->c, &p->cap_c, p->n_c + 1, sizeof(*p->c));
		struct conn *c = &p->c[p->n_c++];
		*c = (struct conn){.fd = {cfd, ufd}, .connecting = true};
		for (int i = 0; i < 2; i++)
			c->h[i].buf = xmalloc(RELAY_BUF);
	}
}

size_t proxy_pollfds(struct proxy *p, struct pollfd *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_l && n < max; i++)
		out[n++] = (struct pollfd){.fd = p->l[i].fd, .events = POLLIN};
	for (size_t i = 0; i < p->n_c && n + 2 <= max; i++) {
		struct conn *c = &p->c[i];
		for (int k = 0; k < 2; k++) {
			short ev = 0;
			if (!c->h[k].eof && c->h[k].len == 0 && !(k == 1 && c->connecting))
				ev |= POLLIN;
			if (c->h[1 - k].len > c->h[1 - k].off || (k == 1 && c->connecting))
				ev |= POLLOUT;
			out[n++] = (struct pollfd){.fd = c->fd[k], .events = ev};
		}
	}
	return n;
}

/* Move what can move on one connection. */
static void relay(struct conn *c)
{
	if (c->connecting) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e == EINPROGRESS)
			return;
		if (e) {
			conn_close(c);
			return;
		}
		c->connecting = false;
	}
	for (int k = 0; k < 2; k++) {
		struct half *h = &c->h[k];
		int from = c->fd[k], to = c->fd[1 - k];
		if (!h->eof && h->len == 0) {
			ssize_t n = read(from, h->buf, RELAY_BUF);
			if (n > 0) {
				h->len = (size_t)n;
				h->off = 0;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				h->eof = true;
				(void)shutdown(to, SHUT_WR);
			}
		}
		if (h->len > h->off) {
			ssize_t n = write(to, h->buf + h->off, h->len - h->off);
			if (n > 0) {
				h->off += (size_t)n;
				if (h->off == h->len)
					h->len = h->off = 0;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				conn_close(c);
				return;
			}
		}
	}
	if (c->h[0].eof && c->h[1].eof && !c->h[0].len && !c->h[1].len)
		conn_close(c);
}

void proxy_handle(struct proxy *p, const struct pollfd *pfds, size_t n)
{
	for (size_t i = 0; i < p->n_l && i < n; i++)
		if (pfds[i].revents)
			accept_all(p, &p->l[i]);
	/* Connections made by accept_all this round have no pollfd yet. */
	size_t polled = n > p->n_l ? (n - p->n_l) / 2 : 0;
	for (size_t i = 0; i < p->n_c && i < polled; i++) {
		const struct pollfd *pf = &pfds[p->n_l + 2 * i];
		if ((pf[0].revents | pf[1].revents) && !p->c[i].dead)
			relay(&p->c[i]);
	}
	/* Compact the closed ones away. */
	size_t k = 0;
	for (size_t i = 0; i < p->n_c; i++)
		if (!p->c[i].dead)
			p->c[k++] = p->c[i];
	p->n_c = k;
}

size_t proxy_max_pollfds(const struct proxy *p)
{
	return p->n_l + 2 * p->n_c;
}

struct proxy *proxy_free(struct proxy *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_c; i++)
		conn_close(&p->c[i]);
	for (size_t i = 0; i < p->n_l; i++)
		safe_close(p->l[i].fd);
	free(p->c);
	free(p->l);
	safe_close(p->netns);
	safe_close(p->hostns);
	free(p);
	return NULL;
}
