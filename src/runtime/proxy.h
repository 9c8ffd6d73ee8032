/* Published ports of a detached instance: a relay run by its monitor from a
 * host address to the instance's loopback (src/runtime/proxy.c). */
#pragma once

#include "../base/macro.h"

#include <poll.h>

struct proxy;

/* The proxy owns both namespace fds. */
struct proxy *proxy_new(int instance_netns, int host_netns);
/* Relay connections accepted on listen_fd (owned by the proxy from now) to
 * port on the instance's loopback. */
void proxy_add(struct proxy *p, int listen_fd, uint16_t port);
/* How many pollfds proxy_pollfds may fill. */
size_t proxy_max_pollfds(const struct proxy *p);
/* Fill out (at most max) with what to wait for; returns the count. */
size_t proxy_pollfds(struct proxy *p, struct pollfd *out, size_t max);
/* Act on what poll reported in pfds (as filled by proxy_pollfds). */
void proxy_handle(struct proxy *p, const struct pollfd *pfds, size_t n);
struct proxy *proxy_free(struct proxy *p);
