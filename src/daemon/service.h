/* The service file, cairn.yml: what to run (image or build, command, port,
 * health check, volumes, limits, secrets), how to deploy it, and the
 * environments it is deployed to. This module parses it (libfyaml), merges each
 * environment's overrides into the top-level sections, checks every field, and
 * gives one environment's resolved configuration as a plain struct with a
 * canonical JSON form; the sha256 of that JSON is the config digest of a
 * release (DESIGN.md §2, §7).
 *
 * The file, with every key; [brackets] give the default of an optional key:
 *
 *   service: hello            required; [a-z0-9][a-z0-9-]{0,62}
 *   build: { dockerfile: Dockerfile, context: . }
 *                             or build: DIR (the context). Paths are relative
 *                             to the directory of cairn.yml, never absolute;
 *                             [context .], [dockerfile CONTEXT/Dockerfile]
 *   image: hello:v1           NAME[:TAG] ([:latest]) or sha256:<64 hex>; at
 *                             least one of build and image; with both, image
 *                             is the NAME:TAG the built image gets
 *   run:                      required (at the top level or in each env)
 *     command: [argv...]      [the image's]
 *     port: 8080              required; 1-65535
 *     env: { NAME: text }     [none]; scalars are taken as their text
 *     secrets: [NAME]         [none]; values come from the daemon's environment
 *     volumes: { name: /abs/path }  or name: { path: /abs, single_writer: bool
 *                             [false], read_only: bool [false] }
 *     resources: { memory: 64M, pids: 64, cpu: 0.5 }  [no limits]; memory
 *                             >= 1M (K, M, G, T are powers of 1024); cpu in
 *                             CPUs (0.5) or millicpus (500m)
 *     user: "1000:1000"       [the image's]
 *     workdir: /app           [the image's]; absolute
 *     mode: http | tcp        [http]: how the router proxies
 *   health:                   [a TCP connect to run.port]
 *     http: /healthz          exactly one of http (a path: GET, 2xx/3xx),
 *     tcp: true               tcp (connect), exec (argv run in the instance);
 *     exec: [argv...]         none of them: tcp
 *     interval: 1s            [1s]   durations are Go style: 500ms, 1s,
 *     timeout: 1s             [1s]   1m30s, 2h (ns, us, ms, s, m, h), > 0,
 *     healthy_after: 1        [1]    at most 8760h
 *     unhealthy_after: 3      [3]
 *     start_period: 0s        [0s]   (may be 0)
 *   deploy:
 *     strategy: blue-green    [blue-green] | rolling | canary
 *     max_surge: 1            [1]    instances replaced per batch (rolling)
 *     drain_timeout: 10s      [10s]
 *     deploy_timeout: 60s     [60s]
 *     keep_previous: 1        [1]    earlier releases kept ready for rollback
 *     keep_previous_running: true  [true]  kept running (warm) or stopped
 *     canary:
 *       steps: [10, 50, 100]  [10, 50, 100]  increasing percents ending at 100
 *       pause: 5s             [5s]
 *       max_error_rate: 0.01  [0.01]  0 to 1, or a percent ("1%")
 *       min_requests: 20      [20]
 *   environments:             required; at least one, at most 100
 *     prod:                   [a-z0-9][a-z0-9-]{0,62}
 *       replicas: 3           [1]; 0 to 1000
 *       listen: 127.0.0.1:8080  required: IPv4:port, [IPv6]:port or :port
 *       admin: 127.0.0.1:9080   [none]: the router's /metrics address
 *       run/health/deploy/image/build: overrides of the top-level section
 *       canary: {...}         shorthand for deploy: { strategy: canary,
 *                             canary: {...} }
 *   x-anything: ...           top-level keys starting with "x-" are ignored
 *                             (a place for anchors, as in compose files)
 *
 * Overrides are deep-merged: maps merge key by key, lists and scalars replace,
 * and a null (~) removes the key (RFC 7396). An override of health that names
 * one of http, tcp, exec replaces the base's probe. A null value anywhere means
 * the key is not given; any other scalar is read from its text, quoted or not
 * (port: "8080" is 8080; env: { DEBUG: false } is the text "false"). Booleans
 * are true/false (True, TRUE...), not yes/no. Unknown keys, wrong types (a
 * mapping where a list is expected...) and duplicate keys are errors; anchors,
 * aliases and merge keys (<<) work, bounded by SERVICE_FILE_MAX and
 * SERVICE_NODES_MAX; tags (!!str) are refused. The text must be UTF-8. No two
 * environments may listen on clashing addresses (":80" clashes with any
 * address on port 80).
 *
 * Errors are one line: "FILE:LINE: FIELD.PATH: what is wrong, what was
 * expected", e.g. "cairn.yml:7: run.port: expected an integer from 1 to 65535,
 * got "eighty""; a value from an environment's override is named
 * "environments.prod.run.port". YAML syntax errors are "FILE:LINE:COLUMN:
 * invalid YAML: ...". */
#pragma once

#include "../base/error.h"
#include "../base/hash.h"

#include <jansson.h>

/* Largest cairn.yml read, in bytes. */
#define SERVICE_FILE_MAX (1u << 20)
/* Most YAML nodes in the document once every alias is expanded (a "billion
 * laughs" document fails with an error instead of exhausting memory). */
#define SERVICE_NODES_MAX 100000u
/* Deepest nesting of YAML collections. */
#define SERVICE_DEPTH_MAX 64u
/* Most environments in one file. */
#define SERVICE_ENVS_MAX 100u
/* "version" of the canonical JSON written by service_config_json(). */
#define SERVICE_CONFIG_VERSION 1

enum service_mode {
	SERVICE_MODE_HTTP, /* the router speaks HTTP: keep-alive, per-request balancing */
	SERVICE_MODE_TCP,  /* the router splices connections */
};

enum service_check {
	SERVICE_CHECK_TCP,  /* connect to run.port */
	SERVICE_CHECK_HTTP, /* GET health.http_path on run.port */
	SERVICE_CHECK_EXEC, /* run health.exec inside the instance; exit 0 passes */
};

enum service_strategy {
	SERVICE_STRATEGY_BLUE_GREEN, /* start all new, switch all traffic at once */
	SERVICE_STRATEGY_ROLLING,    /* replace max_surge instances at a time */
	SERVICE_STRATEGY_CANARY,     /* shift traffic by canary.steps percents */
};

struct service_env_var {
	char *name; /* [A-Za-z_][A-Za-z0-9_]* */
	char *value;
};

struct service_volume {
	char *name;	    /* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: $ROOT/volumes/<name> */
	char *path;	    /* absolute, cleaned, not "/" */
	bool single_writer; /* at most one instance mounts it writable at a time */
	bool read_only;
};

/* A listen address: host "" is any address; an IPv6 host has no brackets.
 * port 0 means "not given" (only for admin). */
struct service_addr {
	char *host;
	uint16_t port;
};

struct service_run {
	char **command; /* NULL (n_command 0): the image's entrypoint and cmd */
	size_t n_command;
	uint16_t port;
	struct service_env_var *env; /* sorted by name */
	size_t n_env;
	char **secrets; /* names, sorted, none also in env */
	size_t n_secrets;
	struct service_volume *volumes; /* sorted by name, distinct paths */
	size_t n_volumes;
	uint64_t memory_bytes; /* 0: no limit */
	uint64_t pids;	       /* 0: no limit */
	uint64_t cpu_millis;   /* 0: no limit; 1000 is one CPU */
	char *user;	       /* NULL: the image's */
	char *workdir;	       /* NULL: the image's; absolute, cleaned */
	enum service_mode mode;
};

struct service_health {
	enum service_check check;
	char *http_path; /* SERVICE_CHECK_HTTP only, starts with '/' */
	char **exec;	 /* SERVICE_CHECK_EXEC only */
	size_t n_exec;
	int64_t interval_ns;
	int64_t timeout_ns;
	int64_t start_period_ns;  /* failures in this time after start do not count */
	uint32_t healthy_after;	  /* consecutive passes to become healthy, >= 1 */
	uint32_t unhealthy_after; /* consecutive failures to become unhealthy, >= 1 */
};

struct service_canary {
	uint32_t *steps; /* percents of traffic, strictly increasing, last 100 */
	size_t n_steps;
	int64_t pause_ns;	     /* time at each step before judging it */
	uint32_t max_error_rate_ppm; /* errors per million requests allowed, 0-1000000 */
	uint64_t min_requests;	     /* requests a step needs before it is judged */
};

struct service_deploy {
	enum service_strategy strategy;
	uint32_t max_surge;
	int64_t drain_timeout_ns;
	int64_t deploy_timeout_ns;
	uint32_t keep_previous;
	bool keep_previous_running;
	struct service_canary canary; /* filled in whatever the strategy */
};

/* One environment's configuration: the top-level sections merged with the
 * environment's overrides, defaults filled in, everything checked. */
struct service_config {
	char *service;		/* the service name */
	char *environment;	/* the environment name */
	char *image;		/* "NAME:TAG" (tag filled in) or "sha256:<hex>"; NULL: build only */
	bool build;		/* build from a Dockerfile (then image, if any, is not an id) */
	char *build_context;	/* with build: relative to the directory of cairn.yml */
	char *build_dockerfile; /* with build: relative to the directory of cairn.yml */
	struct service_run run;
	struct service_health health;
	struct service_deploy deploy;
	uint32_t replicas;
	struct service_addr listen;
	struct service_addr admin; /* port 0: none */
};

/* A parsed and fully checked cairn.yml. */
struct service_file {
	char *name;    /* as given: the path, or the name passed to service_parse */
	char *dir;     /* dirname of name: build paths are relative to it */
	char *service; /* the service name */
	char **envs;   /* environment names in file order */
	size_t n_envs;
	struct service_doc *doc; /* private: the parsed document */
};

/* Parse len bytes of text (need not be NUL-terminated) as a cairn.yml named
 * name (used in messages and for dir). Every environment is resolved and
 * checked, so a file that parses gives a config for each of its envs. On
 * success *ret is owned by the caller (service_file_free). On failure returns
 * -EINVAL (-EFBIG for a file over SERVICE_FILE_MAX), err holds one line
 * "NAME:LINE: FIELD.PATH: ..." and *ret is untouched. */
int service_parse(const char *name, const char *text, size_t len, struct service_file **ret,
		  struct cairn_error *err);

/* Read path (at most SERVICE_FILE_MAX bytes) and parse it as service_parse
 * does, with path as the name. -errno when it cannot be read. */
int service_load(const char *path, struct service_file **ret, struct cairn_error *err);

/* Free f and everything it owns. Accepts NULL; returns NULL. */
struct service_file *service_file_free(struct service_file *f);
static inline void service_file_freep(struct service_file **f)
{
	service_file_free(*f);
}

/* The resolved configuration of environment env of f. On success *ret is
 * owned by the caller (service_config_free). An env f does not have is
 * -ENOENT, with a message listing the ones it has. */
int service_env(const struct service_file *f, const char *env, struct service_config **ret,
		struct cairn_error *err);

/* Free c and everything it owns. Accepts NULL; returns NULL. */
struct service_config *service_config_free(struct service_config *c);
static inline void service_config_freep(struct service_config **c)
{
	service_config_free(*c);
}

/* The canonical JSON object of c (a new reference): every field, defaults
 * filled in, null for what is not given. Durations are integers of ns
 * ("interval_ns"), memory in bytes, cpu in millicpus, the error rate in parts
 * per million; lists that are sets (secrets) sorted. Keys:
 *   version, service, environment, image, build {context, dockerfile},
 *   run {command, port, env, secrets, volumes {NAME: {path, single_writer,
 *        read_only}}, resources {memory_bytes, pids, cpu_millis}, user,
 *        workdir, mode},
 *   health {check, http, exec, interval_ns, timeout_ns, healthy_after,
 *           unhealthy_after, start_period_ns},
 *   deploy {strategy, max_surge, drain_timeout_ns, deploy_timeout_ns,
 *           keep_previous, keep_previous_running,
 *           canary {steps, pause_ns, max_error_rate_ppm, min_requests}},
 *   replicas, listen, admin */
json_t *service_config_json(const struct service_config *c);

/* Read back what service_config_json() wrote (the daemon keeps each release's
 * config). Every key must be present with its type and a valid value, and no
 * other key; the result gives the same JSON and digest. On failure -EINVAL,
 * err names the key ("config: run.port: ...") and *ret is untouched. */
int service_config_from_json(json_t *j, struct service_config **ret, struct cairn_error *err);

/* "sha256:" + hex of the sha256 of the canonical JSON of c, dumped with
 * JSON_SORT_KEYS | JSON_COMPACT. out holds DIGEST_STR_LEN (72) bytes. */
void service_config_digest(const struct service_config *c, char out[72]);
