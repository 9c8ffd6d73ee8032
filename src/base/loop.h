/* A small epoll event loop shared by the router and the daemon: file
 * descriptors with a callback, one-shot timers on CLOCK_MONOTONIC (a binary
 * heap), and a stop flag. Callbacks never block. Single-threaded. */
#pragma once

#include "macro.h"

#include <stdint.h>

struct loop;
struct loop_timer;

/* Called with the events epoll reported (EPOLLIN, EPOLLOUT, EPOLLERR, ...). */
typedef void (*loop_fd_fn)(struct loop *l, int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop *l, void *userdata);

struct loop *loop_new(void);
struct loop *loop_free(struct loop *l);

/* Watch fd for events (EPOLLIN | EPOLLOUT | EPOLLRDHUP ...), edge or level as
 * the caller asks (EPOLLET). One watch per fd; add replaces nothing (-EEXIST).
 * The loop never closes fd. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *userdata);
int loop_mod(struct loop *l, int fd, uint32_t events);
/* Stop watching fd (before closing it). Events already collected for fd in
 * this round are not delivered. */
void loop_del(struct loop *l, int fd);

/* Call fn once at now + after_ns. The timer stays valid until it fired or was
 * cancelled; loop_timer_cancel accepts NULL and returns NULL. */
struct loop_timer *loop_timer_add(struct loop *l, int64_t after_ns, loop_timer_fn fn,
				  void *userdata);
struct loop_timer *loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* The loop's idea of now (CLOCK_MONOTONIC ns, refreshed every round). */
int64_t loop_now(const struct loop *l);

/* Run until loop_stop(); returns 0, or -errno when epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
