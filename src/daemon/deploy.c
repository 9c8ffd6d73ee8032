/* Release operations: deploy (blue-green: start every new instance, wait
 * until each is healthy, switch the route table in one message, drain and
 * retire the old ones or keep them warm), rollback (a new release with an
 * earlier release's image and config; a route switch when that release is
 * still warm), promote, scale, and the read-only views (status, releases,
 * events). Each records its intent before acting, and any failure leaves the
 * live release serving all traffic. */
#include "../base/buf.h"
#include "../base/fs.h"
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct op {
	int fd; /* the client's stream, -1 when none (recovery) */
	struct state *st;
	int64_t t0;
	char *env;
};

static int64_t mono_ms(void)
{
	return now_monotonic_ns() / 1000000;
}

static void progress(struct op *o, const char *event, const char *fmt, ...) _printf_(3, 4);
static void progress(struct op *o, const char *event, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	json_t *j = json_pack("{s:s, s:s, s:I}", "event", event, "message", msg ? msg : "", "ms",
			      (json_int_t)(mono_ms() - o->t0));
	stream_line(o->fd, j);
	json_decref(j);
}

static void event(struct op *o, const char *kind, unsigned number, const char *detail)
{
	char subject[160];
	if (number)
		snprintf(subject, sizeof(subject), "%s/v%u", o->env, number);
	else
		snprintf(subject, sizeof(subject), "%s", o->env);
	(void)state_event(o->st, kind, subject, detail, NULL);
}

static int release_config(const struct state_release *r, struct service_config **ret,
			  struct cairn_error *err)
{
	json_t *j = json_loads(r->config, 0, NULL);
	if (!j)
		return error_set(err, EBADMSG, "release v%u: its config is not JSON", r->number);
	int q = service_config_from_json(j, ret, err);
	json_decref(j);
	return q;
}

/* --- instances -------------------------------------------------------------------- */

static void args_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

/* Start one instance of the release: a detached instance under its monitor. */
static int start_instance(struct op *o, const struct service_config *c, const char *image,
			  unsigned number, unsigned slot, char ret_id[40], struct cairn_error *err)
{
	char **a = NULL;
	size_t n = 0;
	char name[200], tmp[64];
	snprintf(name, sizeof(name), "%s-%s-v%u-%u", c->service, c->environment, number, slot);
	args_add(&a, &n, "run");
	args_add(&a, &n, "-d");
	args_add(&a, &n, "--name");
	args_add(&a, &n, name);
	for (size_t i = 0; i < c->run.n_env; i++) {
		_cleanup_free_ char *kv = xasprintf("%s=%s", c->run.env[i].name, c->run.env[i].value);
		args_add(&a, &n, "-e");
		args_add(&a, &n, kv);
	}
	for (size_t i = 0; i < c->run.n_secrets; i++) {
		/* the value comes from the daemon's environment, never an argument */
		args_add(&a, &n, "-e");
		args_add(&a, &n, c->run.secrets[i]);
	}
	for (size_t i = 0; i < c->run.n_volumes; i++) {
		const struct service_volume *v = &c->run.volumes[i];
		_cleanup_free_ char *spec =
			xasprintf("%s:%s%s", v->name, v->path, v->read_only ? ":ro" : "");
		args_add(&a, &n, "-v");
		args_add(&a, &n, spec);
	}
	if (c->run.memory_bytes) {
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)c->run.memory_bytes);
		args_add(&a, &n, "--memory");
		args_add(&a, &n, tmp);
	}
	if (c->run.pids) {
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)c->run.pids);
		args_add(&a, &n, "--pids");
		args_add(&a, &n, tmp);
	}
	if (c->run.cpu_millis) {
		snprintf(tmp, sizeof(tmp), "%llu.%03llu", (unsigned long long)c->run.cpu_millis / 1000,
			 (unsigned long long)c->run.cpu_millis % 1000);
		args_add(&a, &n, "--cpus");
		args_add(&a, &n, tmp);
	}
	if (c->run.user) {
		args_add(&a, &n, "-u");
		args_add(&a, &n, c->run.user);
	}
	if (c->run.workdir) {
		args_add(&a, &n, "-w");
		args_add(&a, &n, c->run.workdir);
	}
	args_add(&a, &n, image);
	if (c->run.n_command) {
		args_add(&a, &n, "--");
		for (size_t i = 0; i < c->run.n_command; i++)
			args_add(&a, &n, c->run.command[i]);
	}
	char *out = NULL, *etext = NULL;
	int rc = daemon_spawn(a, &out, &etext);
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
	int r = 0;
	if (rc != 0) {
		r = error_set(err, rc < 0 ? -rc : EIO, "starting %s: %s", name,
			      rc < 0 ? strerror(-rc) : etext && *etext ? etext : "failed");
	} else {
		size_t l = strcspn(out, "\n");
		out[l] = 0;
		if (l == 0 || l >= 40)
			r = error_set(err, EIO, "starting %s: no instance id", name);
		else
			memcpy(ret_id, out, l + 1);
	}
	free(out);
	free(etext);
	if (r == 0) {
		struct cairn_error e = {0};
		if (state_release_add_instance(o->st, c->environment, number, ret_id, &e) < 0)
			r = error_set(err, e.code, "%s", error_message(&e));
		error_clear(&e);
		progress(o, "instance", "started %s (%s)", name, ret_id);
		event(o, "instance.start", number, ret_id);
	}
	return r;
}

/* Stop (SIGTERM, grace) and remove instances; forget them in the release. */
static void retire_instances(struct op *o, char **ids, size_t n, int grace_s)
{
	char g[16];
	snprintf(g, sizeof(g), "%d", grace_s);
	for (size_t i = 0; i < n; i++) {
		char *stop[] = {(char *)"stop", (char *)"--time", g, ids[i], NULL};
		char *rm[] = {(char *)"rm", (char *)"-f", ids[i], NULL};
		(void)daemon_spawn(stop, NULL, NULL);
		(void)daemon_spawn(rm, NULL, NULL);
		(void)state_release_remove_instance(o->st, ids[i], NULL);
	}
}

static void retire_release_instances(struct op *o, unsigned number, int grace_s)
{
	char **ids = NULL;
	size_t n = 0;
	if (state_release_instances(o->st, o->env, number, &ids, &n, NULL) < 0)
		return;
	retire_instances(o, ids, n, grace_s);
	strv_free_n(ids, n);
}

/* Wait until every instance is healthy in the router; fail when one ends or
 * the deadline passes. */
static int wait_healthy(struct op *o, char **ids, size_t n, int64_t deadline_ms,
			struct cairn_error *err)
{
	size_t reported = 0;
	for (;;) {
		json_t *stats = router_stats(err);
		if (!stats)
			return -EIO;
		size_t healthy = 0;
		const char *why = NULL;
		for (size_t i = 0; i < n; i++) {
			json_t *b = stats_backend(stats, o->env, ids[i]);
			const char *h = json_string_value(json_object_get(b, "health"));
			if (h && streq(h, "healthy"))
				healthy++;
			else if (b && json_object_get(b, "last_error"))
				why = json_string_value(json_object_get(b, "last_error"));
		}
		_cleanup_free_ char *why_copy = why ? xstrdup(why) : NULL;
		json_decref(stats);
		if (healthy > reported) {
			progress(o, "health", "%zu of %zu instances healthy", healthy, n);
			reported = healthy;
		}
		if (healthy == n)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (!instance_running(o->st, ids[i])) {
				/* the monitor records the exit a moment after the pid
				 * is gone: wait for it, briefly */
				int code = -1;
				for (int k = 0; k < 100 && code < 0; k++) {
					struct state_instance in = {0};
					if (state_instance_find(o->st, ids[i], &in, NULL) == 0 &&
					    streq(in.state, "exited"))
						code = in.exit_code;
					state_instance_free(&in);
					if (code < 0)
						usleep(10000);
				}
				return error_set(err, ECHILD,
						 "instance %s ended (exit code %d) before it was "
						 "healthy",
						 ids[i], code);
			}
		if (mono_ms() > deadline_ms)
			return error_set(err, ETIMEDOUT,
					 "%zu of %zu instances healthy when deploy_timeout passed%s%s",
					 healthy, n, why_copy ? "; last check: " : "",
					 why_copy ? why_copy : "");
		usleep(20000);
	}
}

/* Wait until the router forgot the instances (drained) or the deadline. */
static void wait_drained(struct op *o, char **ids, size_t n, int64_t deadline_ms)
{
	for (;;) {
		json_t *stats = router_stats(NULL);
		size_t present = 0;
		for (size_t i = 0; stats && i < n; i++)
			present += stats_backend(stats, o->env, ids[i]) != NULL;
		json_decref(stats);
		if (!present || !stats || mono_ms() > deadline_ms)
			return;
		usleep(10000);
	}
}

/* --- the table of an environment ---------------------------------------------------- */

static bool is_warm_state(const char *s)
{
	return streq(s, "previous") || streq(s, "rolled-back");
}

/* The releases kept warm (running, out of rotation), newest first. */
static size_t warm_releases(struct op *o, unsigned *ret, size_t max, unsigned except)
{
	struct state_release *v = NULL;
	size_t n = 0, k = 0;
	if (state_release_list(o->st, o->env, &v, &n, NULL) < 0)
		return 0;
	for (size_t i = 0; i < n && k < max; i++)
		if (is_warm_state(v[i].state) && v[i].number != except)
			ret[k++] = v[i].number;
	state_releases_free(v, n);
	return k;
}

static void table_add(struct table *t, unsigned release, bool active)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].release == release) {
			t->v[i].active = active;
			return;
		}
	if (t->n < ELEMENTSOF(t->v))
		t->v[t->n++] = (struct table_entry){release, active};
}

/* --- canary ------------------------------------------------------------------------------ */

struct release_counts {
	int64_t requests, errors;
};

static struct release_counts counts_of(json_t *stats, const char *env, unsigned release)
{
	struct release_counts c = {0};
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(json_object_get(json_object_get(stats, "envs"), env),
					   "backends"),
			   i, b)
	{
		if ((unsigned)json_integer_value(json_object_get(b, "release")) != release)
			continue;
		c.requests += json_integer_value(json_object_get(b, "requests"));
		c.errors += json_integer_value(json_object_get(b, "errors")) +
			    json_integer_value(json_object_get(b, "connect_errors"));
	}
	return c;
}

/* Shift traffic to the new release by canary.steps (all but the final 100,
 * which is the switch), judging each step after canary.pause by the
 * router's counts: the new release's error rate above max_error_rate, and
 * above the old one's, aborts. base is the table before (new inactive). */
static int canary(struct op *o, const struct service_config *cfg, const struct table *base,
		  unsigned old, unsigned new, struct cairn_error *err)
{
	const struct service_canary *cn = &cfg->deploy.canary;
	for (size_t s = 0; s < cn->n_steps && cn->steps[s] < 100; s++) {
		unsigned w = cn->steps[s];
		struct table t = *base;
		table_add(&t, new, true);
		char ko[16], kn[16];
		snprintf(ko, sizeof(ko), "%u", old);
		snprintf(kn, sizeof(kn), "%u", new);
		json_t *weights = json_pack("{s:i, s:i}", ko, (int)(100 - w), kn, (int)w);
		t.weights = weights;
		int r = push_env(o->st, cfg, &t, err);
		json_decref(weights);
		if (r < 0)
			return r;
		progress(o, "canary", "step %zu: %u%% of requests to v%u", s + 1, w, new);
		json_t *st0 = router_stats(err);
		if (!st0)
			return -EIO;
		struct release_counts n0 = counts_of(st0, o->env, new), o0 = counts_of(st0, o->env, old);
		json_decref(st0);
		int64_t until = mono_ms() + cn->pause_ns / 1000000;
		struct release_counts n1 = n0, o1 = o0;
		for (;;) {
			usleep(50000);
			json_t *st1 = router_stats(err);
			if (!st1)
				return -EIO;
			n1 = counts_of(st1, o->env, new);
			o1 = counts_of(st1, o->env, old);
			json_decref(st1);
			if (mono_ms() >= until)
				break;
		}
		int64_t rq = n1.requests - n0.requests, er = n1.errors - n0.errors;
		int64_t orq = o1.requests - o0.requests, oer = o1.errors - o0.errors;
		double rate = rq > 0 ? (double)er / (double)rq : 0;
		double orate = orq > 0 ? (double)oer / (double)orq : 0;
		if (rq > 0 && rate * 1e6 > (double)cn->max_error_rate_ppm && rate > orate)
			return error_set(err, ECANCELED,
					 "canary step %zu (%u%%): v%u answered %lld of %lld requests with "
					 "an error (%.2f%%, the limit is %.2f%%; v%u: %.2f%%)",
					 s + 1, w, new, (long long)er, (long long)rq, rate * 100,
					 cn->max_error_rate_ppm / 1e4, old, orate * 100);
		if ((uint64_t)rq < cn->min_requests)
			progress(o, "canary",
				 "step %zu: only %lld requests reached v%u (min_requests %llu): "
				 "judged on those",
				 s + 1, (long long)rq, new, (unsigned long long)cn->min_requests);
		progress(o, "canary", "step %zu passed: v%u %lld errors in %lld requests, v%u %lld in %lld",
			 s + 1, new, (long long)er, (long long)rq, old, (long long)oer, (long long)orq);
	}
	return 0;
}

/* --- deploy ---------------------------------------------------------------------------- */

struct deploy_req {
	const char *env;
	const char *image;
	struct service_config *cfg;
	const char *trigger;
};

/* Keep at most keep_previous warm releases; retire the rest. */
static void prune_previous(struct op *o, const struct service_config *cfg, unsigned live)
{
	unsigned warm[64];
	size_t n = warm_releases(o, warm, ELEMENTSOF(warm), live);
	size_t keep = cfg->deploy.keep_previous_running ? cfg->deploy.keep_previous : 0;
	if (n <= keep)
		return;
	/* the table without the ones that go */
	struct table t = {0};
	table_add(&t, live, true);
	for (size_t i = 0; i < keep; i++)
		table_add(&t, warm[i], false);
	(void)push_env(o->st, cfg, &t, NULL);
	for (size_t i = keep; i < n; i++) {
		char **ids = NULL;
		size_t k = 0;
		if (state_release_instances(o->st, o->env, warm[i], &ids, &k, NULL) == 0) {
			wait_drained(o, ids, k,
				     mono_ms() + cfg->deploy.drain_timeout_ns / 1000000 + 1000);
			retire_instances(o, ids, k, 10);
			strv_free_n(ids, k);
		}
		(void)state_release_set_state(o->st, o->env, warm[i], "retired", NULL, false, NULL);
		event(o, "release.retire", warm[i], "");
		progress(o, "retire", "v%u retired", warm[i]);
	}
}

static void done_line(struct op *o, const char *outcome, unsigned number, const char *image,
		      const char *reason, json_t *timings)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "event", "done", "outcome", outcome,
			      "env", o->env, "release", (int)number, "image", image ? image : "",
			      "ms", (json_int_t)(mono_ms() - o->t0));
	if (reason)
		json_object_set_new(j, "reason", json_string(reason));
	if (timings)
		json_object_set(j, "timings", timings);
	stream_line(o->fd, j);
	json_decref(j);
}

/* --- rolling ------------------------------------------------------------------------------ */

/* Take one instance out: it moves to release 0 ("retiring"), the table
 * without it is pushed, it drains, then it is stopped and removed. A
 * daemon that dies in between finds it under release 0 and finishes. */
static void retire_one(struct op *o, const struct service_config *cfg, const struct table *t,
		       char *id)
{
	(void)state_release_add_instance(o->st, o->env, 0, id, NULL);
	(void)push_env(o->st, cfg, t, NULL);
	wait_drained(o, &id, 1, mono_ms() + cfg->deploy.drain_timeout_ns / 1000000 + 1000);
	retire_instances(o, &id, 1, 10);
}

/* A rolling deploy: max_surge new instances at a time, each batch healthy
 * (and serving) before as many old ones drain and go. */
static unsigned deploy_rolling(struct op *o, const struct deploy_req *req,
			       const struct state_release *live, unsigned number)
{
	struct cairn_error err = {0};
	const struct service_config *cfg = req->cfg;
	struct service_config *old_cfg = NULL;
	char **old = NULL;
	size_t n_old = 0, next_old = 0;
	int r = release_config(live, &old_cfg, &err);
	if (r == 0)
		r = state_release_instances(o->st, o->env, live->number, &old, &n_old, &err);
	int64_t t0 = mono_ms();
	struct table t = {0};
	table_add(&t, live->number, true);
	table_add(&t, number, true);
	unsigned made = 0;
	while (r == 0 && made < cfg->replicas) {
		unsigned batch = cfg->deploy.max_surge;
		if (batch > cfg->replicas - made)
			batch = cfg->replicas - made;
		char ids[64][40];
		char *idv[64];
		if (batch > 64)
			batch = 64;
		unsigned k = 0;
		for (; k < batch && r == 0; k++) {
			r = start_instance(o, cfg, req->image, number, made + k + 1, ids[k], &err);
			idv[k] = ids[k];
		}
		if (r < 0)
			break;
		made += batch;
		/* in rotation as soon as healthy: the router sends nothing to a
		 * backend that is not */
		r = push_env(o->st, cfg, &t, &err);
		if (r == 0)
			r = wait_healthy(o, idv, batch,
					 mono_ms() + cfg->deploy.deploy_timeout_ns / 1000000, &err);
		if (r < 0)
			break;
		progress(o, "rolling", "%u of %u new instances serving", made, cfg->replicas);
		for (unsigned i = 0; i < batch && next_old < n_old; i++)
			retire_one(o, cfg, &t, old[next_old++]);
	}
	if (r < 0) {
		/* what is left of the old release keeps the traffic */
		_cleanup_free_ char *reason = xstrdup(error_message(&err));
		progress(o, "fail", "v%u failed: %s", number, reason);
		struct table back = {0};
		table_add(&back, live->number, true);
		if (old_cfg)
			(void)push_env(o->st, old_cfg, &back, NULL);
		retire_release_instances(o, number, 0);
		(void)state_release_set_state(o->st, o->env, number, "failed", reason, true, NULL);
		event(o, "release.fail", number, reason);
		done_line(o, "failed", number, req->image, reason, NULL);
		if (next_old)
			progress(o, "fail", "%zu of %zu instances of v%u were replaced before the "
					    "failure; %zu serve",
				 next_old, n_old, live->number, n_old - next_old);
		error_clear(&err);
		strv_free_n(old, n_old);
		service_config_free(old_cfg);
		return 0;
	}
	/* fewer replicas than before: the rest goes too */
	struct table only = {0};
	table_add(&only, number, true);
	while (next_old < n_old)
		retire_one(o, cfg, &only, old[next_old++]);
	(void)push_env(o->st, cfg, &only, NULL);
	if (state_begin(o->st, NULL) == 0) {
		(void)state_release_set_state(o->st, o->env, number, "live", "", true, NULL);
		(void)state_release_set_state(o->st, o->env, live->number, "retired",
					      "replaced by a rolling deploy", false, NULL);
		if (state_commit(o->st, NULL) < 0)
			state_rollback(o->st);
	}
	event(o, "release.live", number, req->image);
	prune_previous(o, cfg, number);
	json_t *timings = json_pack("{s:I}", "total_ms", (json_int_t)(mono_ms() - t0));
	done_line(o, "live", number, req->image, NULL, timings);
	json_decref(timings);
	strv_free_n(old, n_old);
	service_config_free(old_cfg);
	return number;
}

/* A blue-green deploy of req as a new release. Returns the release number
 * (> 0) when it went live, 0 when it failed (recorded, reported). */
static unsigned deploy(struct op *o, const struct deploy_req *req)
{
	struct cairn_error err = {0};
	struct service_config *cfg = req->cfg;
	json_t *cj = service_config_json(cfg);
	_cleanup_free_ char *ctext = json_dumps(cj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(cj);
	for (size_t i = 0; i < cfg->run.n_volumes; i++)
		if (cfg->run.volumes[i].single_writer && cfg->replicas > 1) {
			_cleanup_free_ char *why = xasprintf(
				"volume %s is single-writer: %s can run only 1 replica, not %u",
				cfg->run.volumes[i].name, o->env, cfg->replicas);
			done_line(o, "failed", 0, req->image, why, NULL);
			return 0;
		}
	struct state_release live = {0};
	bool have_live = state_release_with_state(o->st, o->env, "live", &live, NULL) == 0;
	struct state_release rel = {
		.env = (char *)o->env,
		.service = cfg->service,
		.config = ctext,
		.state = (char *)"deploying",
		.trigger = (char *)req->trigger,
	};
	snprintf(rel.image, sizeof(rel.image), "%s", req->image);
	service_config_digest(cfg, rel.config_digest);
	int r = state_begin(o->st, &err);
	if (r == 0) {
		r = state_release_create(o->st, &rel, &err);
		if (r == 0)
			r = state_commit(o->st, &err);
		else
			state_rollback(o->st);
	}
	if (r < 0) {
		done_line(o, "failed", 0, req->image, error_message(&err), NULL);
		error_clear(&err);
		state_release_free(&live);
		return 0;
	}
	unsigned number = rel.number;
	event(o, "release.create", number, req->trigger);
	progress(o, "release", "v%u of %s: image %.19s, config %.19s, %u replicas (%s)", number,
		 o->env, req->image, rel.config_digest, cfg->replicas, req->trigger);
	if (have_live && cfg->deploy.strategy == SERVICE_STRATEGY_ROLLING) {
		unsigned n = deploy_rolling(o, req, &live, number);
		state_release_free(&live);
		return n;
	}
	int64_t t_start = mono_ms();
	/* 0. a single-writer volume is never mounted by two instances: the old
	 * ones stop first, and the deploy is not zero-downtime */
	const char *single = NULL;
	for (size_t i = 0; i < cfg->run.n_volumes && !single; i++)
		if (cfg->run.volumes[i].single_writer)
			single = cfg->run.volumes[i].name;
	if (single && have_live) {
		progress(o, "stop-first",
			 "volume %s is single-writer: v%u stops before v%u starts (not "
			 "zero-downtime)",
			 single, live.number, number);
		struct table none = {0};
		(void)push_env(o->st, cfg, &none, NULL);
		char **old = NULL;
		size_t n_old = 0;
		if (state_release_instances(o->st, o->env, live.number, &old, &n_old, NULL) == 0) {
			wait_drained(o, old, n_old,
				     mono_ms() + cfg->deploy.drain_timeout_ns / 1000000 + 1000);
			retire_instances(o, old, n_old, 10);
			strv_free_n(old, n_old);
		}
		(void)state_release_set_state(o->st, o->env, live.number, "retired",
					      "stopped for a single-writer volume", false, NULL);
		event(o, "release.retire", live.number, "single-writer volume");
		state_release_free(&live);
		have_live = false;
	}
	/* 1. the new instances */
	char (*ids)[40] = xcalloc(cfg->replicas + 1, sizeof(*ids));
	char **idv = xcalloc(cfg->replicas + 1, sizeof(char *));
	size_t n_ids = 0;
	for (unsigned k = 1; k <= cfg->replicas && r == 0; k++) {
		r = start_instance(o, cfg, req->image, number, k, ids[n_ids], &err);
		if (r == 0) {
			idv[n_ids] = ids[n_ids];
			n_ids++;
		}
	}
	int64_t t_started = mono_ms();
	/* 2. known to the router, out of rotation, until healthy */
	struct table t = {0};
	if (have_live)
		table_add(&t, live.number, true);
	unsigned warm[16];
	size_t n_warm = warm_releases(o, warm, ELEMENTSOF(warm), 0);
	for (size_t i = 0; i < n_warm; i++)
		table_add(&t, warm[i], false);
	table_add(&t, number, false);
	if (r == 0)
		r = push_env(o->st, cfg, &t, &err);
	if (r == 0)
		r = wait_healthy(o, idv, n_ids, mono_ms() + cfg->deploy.deploy_timeout_ns / 1000000,
				 &err);
	int64_t t_healthy = mono_ms();
	if (r == 0 && have_live && cfg->deploy.strategy == SERVICE_STRATEGY_CANARY)
		r = canary(o, cfg, &t, live.number, number, &err);
	if (r < 0) {
		/* the live release keeps all traffic; the new instances go */
		_cleanup_free_ char *reason = xstrdup(error_message(&err));
		progress(o, "fail", "v%u failed: %s", number, reason);
		struct table back = {0};
		if (have_live)
			table_add(&back, live.number, true);
		for (size_t i = 0; i < n_warm; i++)
			table_add(&back, warm[i], false);
		struct cairn_error e2 = {0};
		if (have_live && release_config(&live, &cfg, &e2) == 0) {
			(void)push_env(o->st, cfg, &back, NULL);
			service_config_free(cfg);
			cfg = req->cfg;
		} else if (!have_live) {
			json_t *rm = json_pack("{s:s, s:s}", "op", "remove", "env", o->env);
			(void)router_call(rm, NULL, 0, NULL, NULL);
			json_decref(rm);
		}
		error_clear(&e2);
		retire_release_instances(o, number, 0);
		(void)state_release_set_state(o->st, o->env, number, "failed", reason, true, NULL);
		event(o, "release.fail", number, reason);
		done_line(o, "failed", number, req->image, reason, NULL);
		error_clear(&err);
		free(ids);
		free(idv);
		state_release_free(&live);
		return 0;
	}
	/* 3. the switch: one table, applied at once */
	struct table sw = {0};
	table_add(&sw, number, true);
	bool keep_old = have_live && cfg->deploy.keep_previous > 0 &&
			cfg->deploy.keep_previous_running;
	if (keep_old)
		table_add(&sw, live.number, false);
	for (size_t i = 0; i < n_warm && cfg->deploy.keep_previous_running; i++)
		table_add(&sw, warm[i], false);
	r = push_env(o->st, cfg, &sw, &err);
	int64_t t_switch = mono_ms();
	if (r < 0) {
		/* the router did not take it: the old table still stands */
		_cleanup_free_ char *reason = xstrdup(error_message(&err));
		retire_release_instances(o, number, 0);
		(void)state_release_set_state(o->st, o->env, number, "failed", reason, true, NULL);
		event(o, "release.fail", number, reason);
		done_line(o, "failed", number, req->image, reason, NULL);
		error_clear(&err);
		free(ids);
		free(idv);
		state_release_free(&live);
		return 0;
	}
	progress(o, "switch", "traffic switched to v%u", number);
	if (state_begin(o->st, NULL) == 0) {
		(void)state_release_set_state(o->st, o->env, number, "live", "", true, NULL);
		if (have_live)
			(void)state_release_set_state(o->st, o->env, live.number, "previous",
						      NULL, false, NULL);
		if (state_commit(o->st, NULL) < 0)
			state_rollback(o->st);
	}
	event(o, "release.live", number, req->image);
	/* 4. the old release: warm, or drained and retired */
	int64_t t_drained = t_switch;
	if (have_live && !keep_old) {
		char **old = NULL;
		size_t n_old = 0;
		if (state_release_instances(o->st, o->env, live.number, &old, &n_old, NULL) == 0) {
			wait_drained(o, old, n_old,
				     mono_ms() + cfg->deploy.drain_timeout_ns / 1000000 + 1000);
			t_drained = mono_ms();
			progress(o, "drain", "v%u drained", live.number);
			retire_instances(o, old, n_old, 10);
			strv_free_n(old, n_old);
		}
		if (cfg->deploy.keep_previous == 0) {
			(void)state_release_set_state(o->st, o->env, live.number, "retired", NULL,
						      false, NULL);
			event(o, "release.retire", live.number, "");
		}
	}
	prune_previous(o, cfg, number);
	json_t *timings = json_pack("{s:I, s:I, s:I, s:I, s:I}", "instances_started_ms",
				    (json_int_t)(t_started - t_start), "healthy_ms",
				    (json_int_t)(t_healthy - t_start), "switched_ms",
				    (json_int_t)(t_switch - t_start), "drained_ms",
				    (json_int_t)(t_drained - t_start), "total_ms",
				    (json_int_t)(mono_ms() - t_start));
	done_line(o, "live", number, req->image, NULL, timings);
	json_decref(timings);
	free(ids);
	free(idv);
	state_release_free(&live);
	return number;
}

/* --- the operations ----------------------------------------------------------------------- */

static int op_begin(struct op *o, int fd, const char *env)
{
	struct cairn_error err = {0};
	pthread_mutex_lock(&D.op_lock);
	o->fd = fd;
	o->t0 = mono_ms();
	o->env = xstrdup(env);
	int r = state_open(D.root, &o->st, &err);
	if (r == 0)
		r = router_ensure(&err);
	stream_begin(fd);
	if (r < 0) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "event", "done", "outcome", "failed",
				      "reason", error_message(&err));
		stream_line(fd, j);
		json_decref(j);
		error_clear(&err);
		state_close(o->st);
		free(o->env);
		pthread_mutex_unlock(&D.op_lock);
	}
	return r;
}

static void op_end(struct op *o)
{
	state_close(o->st);
	free(o->env);
	pthread_mutex_unlock(&D.op_lock);
}

static void fail_now(int fd, const char *fmt, ...) _printf_(2, 3);
static void fail_now(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	stream_begin(fd);
	json_t *j = json_pack("{s:s, s:s, s:s}", "event", "done", "outcome", "failed", "reason",
			      msg ? msg : "failed");
	stream_line(fd, j);
	json_decref(j);
}

void op_deploy(int fd, json_t *body)
{
	const char *env = json_string_value(json_object_get(body, "env"));
	const char *image = json_string_value(json_object_get(body, "image"));
	const char *trigger = json_string_value(json_object_get(body, "trigger"));
	struct cairn_error err = {0};
	struct service_config *cfg = NULL;
	if (!env || !image || !startswith(image, "sha256:")) {
		fail_now(fd, "deploy: expected env, image (an id) and config");
		return;
	}
	if (service_config_from_json(json_object_get(body, "config"), &cfg, &err) < 0) {
		fail_now(fd, "deploy: config: %s", error_message(&err));
		error_clear(&err);
		return;
	}
	struct op o;
	if (op_begin(&o, fd, env) == 0) {
		struct deploy_req req = {env, image, cfg, trigger ? trigger : "deploy"};
		(void)deploy(&o, &req);
		op_end(&o);
	}
	service_config_free(cfg);
}

void op_rollback(int fd, json_t *body)
{
	const char *env = json_string_value(json_object_get(body, "env"));
	json_int_t to = json_integer_value(json_object_get(body, "to"));
	if (!env) {
		fail_now(fd, "rollback: expected env");
		return;
	}
	struct op o;
	if (op_begin(&o, fd, env) < 0)
		return;
	struct cairn_error err = {0};
	struct state_release live = {0}, target = {0};
	struct service_config *cfg = NULL;
	_cleanup_free_ char *trigger = NULL;
	bool have_live = state_release_with_state(o.st, env, "live", &live, NULL) == 0;
	int r = 0;
	if (to > 0) {
		r = state_release_get(o.st, env, (unsigned)to, &target, &err);
		if (r == -ENOENT)
			error_set(&err, ENOENT, "%s has no release v%lld", env, (long long)to);
		else if (r == 0 && (streq(target.state, "failed") || streq(target.state, "deploying")))
			r = error_set(&err, EINVAL, "v%lld %s: only a release that went live can be "
						    "rolled back to", (long long)to, target.state);
		else if (r == 0 && have_live && target.number == live.number)
			r = error_set(&err, EINVAL, "v%lld is the live release", (long long)to);
	} else {
		/* the newest release before the live one that went live */
		struct state_release *v = NULL;
		size_t n = 0;
		r = state_release_list(o.st, env, &v, &n, &err);
		bool found = false;
		for (size_t i = 0; r == 0 && i < n && !found; i++) {
			if ((have_live && v[i].number >= live.number) || streq(v[i].state, "failed") ||
			    streq(v[i].state, "deploying") || streq(v[i].state, "live"))
				continue;
			r = state_release_get(o.st, env, v[i].number, &target, &err);
			found = r == 0;
		}
		state_releases_free(v, n);
		if (r == 0 && !found)
			r = error_set(&err, ENOENT, "%s has no earlier release to roll back to", env);
	}
	if (r == 0)
		r = release_config(&target, &cfg, &err);
	if (r < 0) {
		done_line(&o, "failed", 0, NULL, error_message(&err), NULL);
		goto out;
	}
	/* warm: every instance of the target still runs and is healthy */
	char **ids = NULL;
	size_t n_ids = 0;
	bool warm = is_warm_state(target.state) &&
		    state_release_instances(o.st, env, target.number, &ids, &n_ids, NULL) == 0 &&
		    n_ids > 0;
	if (warm) {
		json_t *stats = router_stats(NULL);
		for (size_t i = 0; i < n_ids && warm; i++) {
			json_t *b = stats ? stats_backend(stats, env, ids[i]) : NULL;
			const char *h = json_string_value(json_object_get(b, "health"));
			warm = instance_running(o.st, ids[i]) && h && streq(h, "healthy");
		}
		json_decref(stats);
	}
	strv_free_n(ids, n_ids);
	trigger = xasprintf("rollback to v%u", target.number);
	if (!warm) {
		progress(&o, "rollback", "v%u is not running: deploying its image and config again",
			 target.number);
		struct deploy_req req = {env, target.image, cfg, trigger};
		unsigned n = deploy(&o, &req);
		if (n && have_live)
			(void)state_release_set_state(o.st, env, live.number, "rolled-back", NULL,
						      false, NULL);
		goto out;
	}
	/* a route switch: the new release adopts the warm instances */
	int64_t t0 = mono_ms();
	struct state_release rel = {
		.env = (char *)env,
		.service = target.service,
		.config = target.config,
		.state = (char *)"deploying",
		.trigger = trigger,
	};
	memcpy(rel.image, target.image, sizeof(rel.image));
	memcpy(rel.config_digest, target.config_digest, sizeof(rel.config_digest));
	r = state_begin(o.st, &err);
	if (r == 0) {
		r = state_release_create(o.st, &rel, &err);
		if (r == 0)
			r = state_release_move_instances(o.st, env, target.number, rel.number, &err);
		if (r == 0)
			r = state_commit(o.st, &err);
		else
			state_rollback(o.st);
	}
	if (r < 0) {
		done_line(&o, "failed", 0, NULL, error_message(&err), NULL);
		goto out;
	}
	event(&o, "release.create", rel.number, trigger);
	struct table t = {0};
	table_add(&t, rel.number, true);
	if (have_live)
		table_add(&t, live.number, false);
	unsigned warmv[16];
	size_t n_warm = warm_releases(&o, warmv, ELEMENTSOF(warmv), target.number);
	for (size_t i = 0; i < n_warm; i++)
		if (warmv[i] != live.number)
			table_add(&t, warmv[i], false);
	r = push_env(o.st, cfg, &t, &err);
	int64_t t_switch = mono_ms();
	if (r < 0) {
		(void)state_release_move_instances(o.st, env, rel.number, target.number, NULL);
		(void)state_release_set_state(o.st, env, rel.number, "failed", error_message(&err),
					      true, NULL);
		done_line(&o, "failed", rel.number, rel.image, error_message(&err), NULL);
		goto out;
	}
	progress(&o, "switch", "traffic switched to v%u (the instances of v%u)", rel.number,
		 target.number);
	if (state_begin(o.st, NULL) == 0) {
		(void)state_release_set_state(o.st, env, rel.number, "live", "", true, NULL);
		(void)state_release_set_state(o.st, env, target.number, "retired",
					      "its instances serve the rollback", false, NULL);
		if (have_live)
			(void)state_release_set_state(o.st, env, live.number, "rolled-back", NULL,
						      false, NULL);
		if (state_commit(o.st, NULL) < 0)
			state_rollback(o.st);
	}
	event(&o, "release.live", rel.number, trigger);
	prune_previous(&o, cfg, rel.number);
	json_t *timings = json_pack("{s:I, s:I}", "switched_ms", (json_int_t)(t_switch - t0),
				    "total_ms", (json_int_t)(mono_ms() - t0));
	done_line(&o, "live", rel.number, rel.image, NULL, timings);
	json_decref(timings);
out:
	error_clear(&err);
	service_config_free(cfg);
	state_release_free(&live);
	state_release_free(&target);
	op_end(&o);
}

void op_promote(int fd, json_t *body)
{
	const char *from = json_string_value(json_object_get(body, "from"));
	const char *to = json_string_value(json_object_get(body, "to"));
	struct cairn_error err = {0};
	struct service_config *cfg = NULL;
	if (!from || !to ||
	    service_config_from_json(json_object_get(body, "config"), &cfg, &err) < 0) {
		fail_now(fd, "promote: expected from, to and the config of %s: %s", to ? to : "?",
			 error_message(&err));
		error_clear(&err);
		return;
	}
	struct op o;
	if (op_begin(&o, fd, to) < 0) {
		service_config_free(cfg);
		return;
	}
	struct state_release src = {0};
	if (state_release_with_state(o.st, from, "live", &src, &err) < 0) {
		done_line(&o, "failed", 0, NULL,
			  err.code ? error_message(&err) : "nothing is live there", NULL);
	} else {
		_cleanup_free_ char *trigger = xasprintf("promote from %s v%u", from, src.number);
		progress(&o, "promote", "%s v%u runs image %s", from, src.number, src.image);
		struct deploy_req req = {to, src.image, cfg, trigger};
		(void)deploy(&o, &req);
	}
	error_clear(&err);
	state_release_free(&src);
	service_config_free(cfg);
	op_end(&o);
}

/* Scale: a new release with the live one's image, its config with another
 * replica count, adopting the live instances; it starts what is missing
 * (healthy before it counts) or drains and removes what is too many. The
 * instances that serve are never replaced. */
static unsigned scale(struct op *o, const struct state_release *live, struct service_config *cfg,
		      const char *trigger)
{
	struct cairn_error err = {0};
	json_t *cj = service_config_json(cfg);
	_cleanup_free_ char *ctext = json_dumps(cj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(cj);
	struct state_release rel = {
		.env = (char *)o->env,
		.service = cfg->service,
		.config = ctext,
		.state = (char *)"deploying",
		.trigger = (char *)trigger,
	};
	memcpy(rel.image, live->image, sizeof(rel.image));
	service_config_digest(cfg, rel.config_digest);
	int r = state_begin(o->st, &err);
	if (r == 0) {
		r = state_release_create(o->st, &rel, &err);
		if (r == 0)
			r = state_release_move_instances(o->st, o->env, live->number, rel.number, &err);
		if (r == 0)
			r = state_commit(o->st, &err);
		else
			state_rollback(o->st);
	}
	if (r < 0) {
		done_line(o, "failed", 0, live->image, error_message(&err), NULL);
		error_clear(&err);
		return 0;
	}
	unsigned number = rel.number;
	int64_t t0 = mono_ms();
	event(o, "release.create", number, trigger);
	char **cur = NULL;
	size_t n_cur = 0;
	(void)state_release_instances(o->st, o->env, number, &cur, &n_cur, NULL);
	progress(o, "release", "v%u of %s: v%u's %zu instances, %u wanted (%s)", number, o->env,
		 live->number, n_cur, cfg->replicas, trigger);
	struct table t = {0};
	table_add(&t, number, true);
	unsigned warm[16];
	size_t n_warm = warm_releases(o, warm, ELEMENTSOF(warm), live->number);
	for (size_t i = 0; i < n_warm; i++)
		table_add(&t, warm[i], false);
	r = push_env(o->st, cfg, &t, &err);
	/* more: new instances, healthy before the release counts */
	char (*ids)[40] = xcalloc(cfg->replicas + 1, sizeof(*ids));
	char **idv = xcalloc(cfg->replicas + 1, sizeof(char *));
	size_t n_new = 0;
	for (unsigned k = 0; r == 0 && n_cur + n_new < cfg->replicas; k++) {
		r = start_instance(o, cfg, live->image, number, (unsigned)(n_cur + n_new + 1),
				   ids[n_new], &err);
		if (r == 0) {
			idv[n_new] = ids[n_new];
			n_new++;
		}
	}
	if (r == 0 && n_new) {
		r = push_env(o->st, cfg, &t, &err);
		if (r == 0)
			r = wait_healthy(o, idv, n_new,
					 mono_ms() + cfg->deploy.deploy_timeout_ns / 1000000, &err);
	}
	if (r < 0) {
		_cleanup_free_ char *reason = xstrdup(error_message(&err));
		for (size_t i = 0; i < n_new; i++)
			retire_one(o, cfg, &t, idv[i]);
		(void)state_release_move_instances(o->st, o->env, number, live->number, NULL);
		struct service_config *old_cfg = NULL;
		struct table back = {0};
		table_add(&back, live->number, true);
		for (size_t i = 0; i < n_warm; i++)
			table_add(&back, warm[i], false);
		if (release_config(live, &old_cfg, NULL) == 0)
			(void)push_env(o->st, old_cfg, &back, NULL);
		service_config_free(old_cfg);
		(void)state_release_set_state(o->st, o->env, number, "failed", reason, true, NULL);
		event(o, "release.fail", number, reason);
		done_line(o, "failed", number, live->image, reason, NULL);
		error_clear(&err);
		strv_free_n(cur, n_cur);
		free(ids);
		free(idv);
		return 0;
	}
	/* fewer: the last ones drain and go */
	for (size_t i = n_cur; i > cfg->replicas; i--)
		retire_one(o, cfg, &t, cur[i - 1]);
	if (state_begin(o->st, NULL) == 0) {
		(void)state_release_set_state(o->st, o->env, number, "live", "", true, NULL);
		_cleanup_free_ char *why = xasprintf("its instances serve v%u", number);
		(void)state_release_set_state(o->st, o->env, live->number, "retired", why, false,
					      NULL);
		if (state_commit(o->st, NULL) < 0)
			state_rollback(o->st);
	}
	event(o, "release.live", number, trigger);
	json_t *timings = json_pack("{s:I}", "total_ms", (json_int_t)(mono_ms() - t0));
	done_line(o, "live", number, live->image, NULL, timings);
	json_decref(timings);
	strv_free_n(cur, n_cur);
	free(ids);
	free(idv);
	return number;
}

void op_scale(int fd, json_t *body)
{
	const char *env = json_string_value(json_object_get(body, "env"));
	json_t *jn = json_object_get(body, "replicas");
	if (!env || !json_is_integer(jn) || json_integer_value(jn) < 0 ||
	    json_integer_value(jn) > 200) {
		fail_now(fd, "scale: expected env and replicas (0 to 200)");
		return;
	}
	struct op o;
	if (op_begin(&o, fd, env) < 0)
		return;
	struct cairn_error err = {0};
	struct state_release live = {0};
	struct service_config *cfg = NULL;
	if (state_release_with_state(o.st, env, "live", &live, &err) < 0 ||
	    release_config(&live, &cfg, &err) < 0) {
		done_line(&o, "failed", 0, NULL,
			  err.code ? error_message(&err) : "nothing is live there", NULL);
	} else {
		cfg->replicas = (uint32_t)json_integer_value(jn);
		_cleanup_free_ char *trigger = xasprintf("scale to %u", cfg->replicas);
		(void)scale(&o, &live, cfg, trigger);
	}
	error_clear(&err);
	service_config_free(cfg);
	state_release_free(&live);
	op_end(&o);
}

/* --- views ------------------------------------------------------------------------------------ */

static char *iso(int64_t ns)
{
	if (!ns)
		return NULL;
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[40];
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(s);
}

static json_t *release_json(const struct state_release *r)
{
	_cleanup_free_ char *c = iso(r->created_ns), *f = iso(r->finished_ns);
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:s}", "number",
			      (int)r->number, "image", r->image, "config", r->config_digest,
			      "created", c ? c : "", "state", r->state, "finished", f, "trigger",
			      r->trigger, "reason", r->reason, "service", r->service);
	return j;
}

json_t *op_releases(const char *env, struct cairn_error *err)
{
	struct state *st = NULL;
	if (state_open(D.root, &st, err) < 0)
		return NULL;
	struct state_release *v = NULL;
	size_t n = 0;
	json_t *ans = NULL;
	if (state_release_list(st, env, &v, &n, err) == 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *j = release_json(&v[i]);
			json_object_set_new(j, "env", json_string(v[i].env));
			json_array_append_new(a, j);
		}
		ans = json_pack("{s:b, s:o}", "ok", 1, "releases", a);
	}
	state_releases_free(v, n);
	state_close(st);
	return ans;
}

json_t *op_status(const char *env, struct cairn_error *err)
{
	struct state *st = NULL;
	if (state_open(D.root, &st, err) < 0)
		return NULL;
	char **envs = NULL;
	size_t n_envs = 0;
	if (env) {
		envs = xcalloc(1, sizeof(char *));
		envs[0] = xstrdup(env);
		n_envs = 1;
	} else if (state_envs(st, &envs, &n_envs, err) < 0) {
		state_close(st);
		return NULL;
	}
	/* two samples of the router's counters give requests per second */
	json_t *s1 = router_stats(NULL);
	int64_t t1 = now_monotonic_ns();
	usleep(250000);
	json_t *s2 = router_stats(NULL);
	double dt = (double)(now_monotonic_ns() - t1) / 1e9;
	json_t *out = json_object();
	for (size_t e = 0; e < n_envs; e++) {
		json_t *o = json_object();
		struct state_release live = {0};
		if (state_release_with_state(st, envs[e], "live", &live, NULL) == 0) {
			json_object_set_new(o, "live", release_json(&live));
			char **ids = NULL;
			size_t n = 0;
			json_t *insts = json_array();
			if (state_release_instances(st, envs[e], live.number, &ids, &n, NULL) == 0) {
				for (size_t i = 0; i < n; i++) {
					json_t *b2 = stats_backend(s2, envs[e], ids[i]);
					json_t *b1 = stats_backend(s1, envs[e], ids[i]);
					json_int_t r2 = json_integer_value(json_object_get(b2, "requests"));
					json_int_t r1 = json_integer_value(json_object_get(b1, "requests"));
					struct state_instance in = {0};
					(void)state_instance_find(st, ids[i], &in, NULL);
					json_t *j = json_pack(
						"{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:f}", "id", ids[i],
						"name", in.name ? in.name : "", "running",
						instance_running(st, ids[i]), "health",
						json_string_value(json_object_get(b2, "health")) ?: "unknown",
						"requests", r2, "errors",
						json_integer_value(json_object_get(b2, "errors")),
						"outstanding",
						json_integer_value(json_object_get(b2, "outstanding")),
						"rps", dt > 0 ? (double)(r2 - r1) / dt : 0.0);
					state_instance_free(&in);
					json_array_append_new(insts, j);
				}
				strv_free_n(ids, n);
			}
			json_object_set_new(o, "instances", insts);
		} else
			json_object_set_new(o, "live", json_null());
		state_release_free(&live);
		json_t *re = json_object_get(json_object_get(s2, "envs"), envs[e]);
		if (re) {
			json_object_set(o, "listen", json_object_get(re, "listen"));
			json_object_set(o, "mode", json_object_get(re, "mode"));
			json_object_set(o, "requests", json_object_get(re, "requests"));
			json_object_set(o, "errors", json_object_get(re, "errors"));
		}
		json_object_set_new(out, envs[e], o);
	}
	json_decref(s1);
	json_decref(s2);
	strv_free_n(envs, n_envs);
	state_close(st);
	return json_pack("{s:b, s:o}", "ok", 1, "envs", out);
}

json_t *op_events(const char *env, size_t limit, struct cairn_error *err)
{
	struct state *st = NULL;
	if (state_open(D.root, &st, err) < 0)
		return NULL;
	struct state_event *v = NULL;
	size_t n = 0;
	json_t *ans = NULL;
	if (state_event_list(st, env, limit ? limit : 100, &v, &n, err) == 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *at = iso(v[i].at_ns);
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "at", at ? at : "",
							   "kind", v[i].kind, "subject", v[i].subject,
							   "detail", v[i].detail));
		}
		ans = json_pack("{s:b, s:o}", "ok", 1, "events", a);
	}
	state_events_free(v, n);
	state_close(st);
	return ans;
}

/* --- recovery ------------------------------------------------------------------------------------ */

int daemon_recover(struct cairn_error *err)
{
	struct op o = {.fd = -1, .t0 = mono_ms()};
	int r = state_open(D.root, &o.st, err);
	if (r < 0)
		return r;
	char **envs = NULL;
	size_t n_envs = 0;
	r = state_envs(o.st, &envs, &n_envs, err);
	for (size_t e = 0; r == 0 && e < n_envs; e++) {
		o.env = envs[e];
		struct state_release *v = NULL;
		size_t n = 0;
		if (state_release_list(o.st, o.env, &v, &n, NULL) < 0)
			continue;
		/* First the router gets the table of what the database says is
		 * live (a deploy cut short may have switched already): the
		 * unfinished release's instances drain; then they go. */
		struct state_release live = {0};
		struct service_config *cfg = NULL;
		if (state_release_with_state(o.st, o.env, "live", &live, NULL) == 0 &&
		    release_config(&live, &cfg, NULL) == 0) {
			struct table t = {0};
			table_add(&t, live.number, true);
			unsigned warm[16];
			size_t n_warm = warm_releases(&o, warm, ELEMENTSOF(warm), live.number);
			for (size_t i = 0; i < n_warm; i++)
				table_add(&t, warm[i], false);
			struct cairn_error e2 = {0};
			if (push_env(o.st, cfg, &t, &e2) < 0)
				fprintf(stderr, "cairn daemon: %s: %s\n", o.env, error_message(&e2));
			error_clear(&e2);
		} else {
			json_t *rm = json_pack("{s:s, s:s}", "op", "remove", "env", o.env);
			(void)router_call(rm, NULL, 0, NULL, NULL);
			json_decref(rm);
		}
		int64_t drain_ms = cfg ? cfg->deploy.drain_timeout_ns / 1000000 : 10000;
		service_config_free(cfg);
		state_release_free(&live);
		/* instances a rolling deploy was retiring */
		{
			char **ids = NULL;
			size_t k = 0;
			if (state_release_instances(o.st, o.env, 0, &ids, &k, NULL) == 0) {
				wait_drained(&o, ids, k, mono_ms() + drain_ms + 1000);
				retire_instances(&o, ids, k, 0);
				strv_free_n(ids, k);
			}
		}
		/* a deploy the daemon did not finish: undone */
		for (size_t i = 0; i < n; i++)
			if (streq(v[i].state, "deploying")) {
				char **ids = NULL;
				size_t k = 0;
				if (state_release_instances(o.st, o.env, v[i].number, &ids, &k,
							    NULL) == 0) {
					wait_drained(&o, ids, k, mono_ms() + drain_ms + 1000);
					retire_instances(&o, ids, k, 0);
					strv_free_n(ids, k);
				}
				(void)state_release_set_state(o.st, o.env, v[i].number, "failed",
							      "the daemon stopped during the deploy",
							      true, NULL);
				event(&o, "release.fail", v[i].number,
				      "the daemon stopped during the deploy");
			}
		state_releases_free(v, n);
	}
	strv_free_n(envs, n_envs);
	state_close(o.st);
	return r;
}
