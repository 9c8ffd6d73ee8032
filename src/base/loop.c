/* The event loop: epoll for file descriptors, a binary heap of timers. A
 * watch is a slot indexed by fd carrying a generation, and epoll hands back
 * (fd, generation): an event for an fd that was removed, or removed and
 * added again, in the same round is recognised as stale and dropped. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct watch {
	loop_fd_fn fn;
	void *userdata;
	uint32_t gen;
};

struct loop_timer {
	int64_t at;
	size_t index; /* in the heap */
	loop_timer_fn fn;
	void *userdata;
};

struct loop {
	int epfd;
	struct watch *w;
	size_t n_w;
	struct loop_timer **heap;
	size_t n_heap, cap_heap;
	int64_t now;
	bool stop;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->now = mono_ns();
	return l;
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	close(l->epfd);
	for (size_t i = 0; i < l->n_heap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->w);
	free(l);
	return NULL;
}

int64_t loop_now(const struct loop *l)
{
	return l->now;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *userdata)
{
	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->n_w) {
		size_t n = (size_t)fd * 2 + 16;
		l->w = xreallocarray(l->w, n, sizeof(*l->w));
		memset(l->w + l->n_w, 0, (n - l->n_w) * sizeof(*l->w));
		l->n_w = n;
	}
	struct watch *w = &l->w[fd];
	if (w->fn)
		return -EEXIST;
	w->gen++;
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd | (uint64_t)w->gen << 32};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	w->fn = fn;
	w->userdata = userdata;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= l->n_w || !l->w[fd].fn)
		return -ENOENT;
	struct epoll_event ev = {.events = events,
				 .data.u64 = (uint64_t)fd | (uint64_t)l->w[fd].gen << 32};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->n_w || !l->w[fd].fn)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->w[fd].fn = NULL;
	l->w[fd].userdata = NULL;
	l->w[fd].gen++;
}

/* --- timers: a min-heap on at ----------------------------------------------- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->index = a;
	l->heap[b]->index = b;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->at <= l->heap[i]->at)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t a = 2 * i + 1, b = a + 1, m = i;
		if (a < l->n_heap && l->heap[a]->at < l->heap[m]->at)
			m = a;
		if (b < l->n_heap && l->heap[b]->at < l->heap[m]->at)
			m = b;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct loop *l, size_t i)
{
	l->n_heap--;
	if (i == l->n_heap)
		return;
	l->heap[i] = l->heap[l->n_heap];
	l->heap[i]->index = i;
	heap_down(l, i);
	heap_up(l, i);
}

struct loop_timer *loop_timer_add(struct loop *l, int64_t after_ns, loop_timer_fn fn,
				  void *userdata)
{
	struct loop_timer *t = xcalloc(1, sizeof(*t));
	t->at = mono_ns() + (after_ns > 0 ? after_ns : 0);
	t->fn = fn;
	t->userdata = userdata;
	l->heap = xgrow(l->heap, &l->cap_heap, l->n_heap + 1, sizeof(*l->heap));
	t->index = l->n_heap;
	l->heap[l->n_heap++] = t;
	heap_up(l, t->index);
	return t;
}

struct loop_timer *loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!t)
		return NULL;
	heap_remove(l, t->index);
	free(t);
	return NULL;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[256];
	l->stop = false;
	while (!l->stop) {
		l->now = mono_ns();
		/* due timers first */
		while (l->n_heap && l->heap[0]->at <= l->now) {
			struct loop_timer *t = l->heap[0];
			heap_remove(l, 0);
			loop_timer_fn fn = t->fn;
			void *u = t->userdata;
			free(t);
			fn(l, u);
			if (l->stop)
				return 0;
		}
		int timeout = -1;
		if (l->n_heap) {
			int64_t d = l->heap[0]->at - mono_ns();
			timeout = d <= 0 ? 0 : (int)((d + 999999) / 1000000);
		}
		int n = epoll_wait(l->epfd, evs, (int)ELEMENTSOF(evs), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->now = mono_ns();
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = (int)(evs[i].data.u64 & 0xffffffffu);
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			if ((size_t)fd >= l->n_w || !l->w[fd].fn || l->w[fd].gen != gen)
				continue; /* removed during this round */
			l->w[fd].fn(l, fd, evs[i].events, l->w[fd].userdata);
		}
	}
	return 0;
}
