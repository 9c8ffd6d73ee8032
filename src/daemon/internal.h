/* Pieces shared inside src/daemon: the daemon's globals, running cairn
 * itself, the router client, route tables, and the operations the API calls. */
#pragma once

#include "../state/state.h"
#include "service.h"

#include <jansson.h>
#include <pthread.h>

struct daemon {
	char *root;
	char *exe;
	pthread_mutex_t op_lock; /* one release operation at a time */
};
extern struct daemon D;

/* Run "cairn --root ROOT args..." and wait: its exit code; stdout and the
 * last line of stderr (without "cairn: ") in *ret_out, *ret_errtext. */
int daemon_spawn(char *const *args, char **ret_out, char **ret_errtext);

/* One message to the router and its answer (ok checked). */
int router_call(json_t *msg, const int *fds, size_t n_fds, json_t **ret, struct cairn_error *err);
/* Start the router unless one answers. */
int router_ensure(struct cairn_error *err);
/* The router's counters and backends; NULL with err on failure. */
json_t *router_stats(struct cairn_error *err);
/* A backend of env in a stats answer, or NULL. */
json_t *stats_backend(json_t *stats, const char *env, const char *id);

bool instance_running(struct state *st, const char *id);

/* A route table: which releases' instances are in it, in rotation or not. */
struct table_entry {
	unsigned release;
	bool active;
};
struct table {
	struct table_entry v[32];
	size_t n;
	json_t *weights; /* borrowed: {"3": 90, "4": 10} or NULL */
};
/* Send env's whole table (cfg's listener and health policy) to the router. */
int push_env(struct state *st, const struct service_config *cfg, const struct table *t,
	     struct cairn_error *err);

void stream_begin(int fd);
void stream_line(int fd, json_t *j);

/* The operations (deploy.c). The streaming ones answer on fd themselves. */
void op_deploy(int fd, json_t *body);
void op_rollback(int fd, json_t *body);
void op_promote(int fd, json_t *body);
void op_scale(int fd, json_t *body);
json_t *op_status(const char *env, struct cairn_error *err);
json_t *op_releases(const char *env, struct cairn_error *err);
json_t *op_events(const char *env, size_t limit, struct cairn_error *err);
/* After a start: finish or undo what a stopped daemon left half done, and
 * give the router every environment's table again. */
int daemon_recover(struct cairn_error *err);
