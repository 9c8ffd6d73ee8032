/* Unit tests of src/daemon/service.c: the cairn.yml of DESIGN §7 and its
 * extended form, defaults, every kind of per-environment override, each class
 * of error with its exact line and field, the canonical JSON round trip and
 * the stability of the config digest. */
#include "unit.h"

#include "../../src/base/buf.h"
#include "../../src/daemon/service.h"

#define SEC 1000000000LL
#define MS 1000000LL

static struct service_file *parse_ok(const char *text)
{
	struct service_file *f = NULL;
	struct cairn_error err = {0};
	if (service_parse("cairn.yml", text, strlen(text), &f, &err) < 0)
		fail_msg("parse failed: %s", error_message(&err));
	assert_non_null(f);
	return f;
}

static struct service_config *env_ok(const struct service_file *f, const char *env)
{
	struct service_config *c = NULL;
	struct cairn_error err = {0};
	if (service_env(f, env, &c, &err) < 0)
		fail_msg("env %s failed: %s", env, error_message(&err));
	return c;
}

/* Parse text and resolve env in one go. */
static struct service_config *config_of(const char *text, const char *env)
{
	struct service_file *f = parse_ok(text);
	struct service_config *c = env_ok(f, env);
	service_file_free(f);
	return c;
}

/* Whether text fails with exactly the error expected; says why not. */
static bool fails_with(const char *text, const char *expected)
{
	struct service_file *f = NULL;
	struct cairn_error err = {0};
	int r = service_parse("cairn.yml", text, strlen(text), &f, &err);
	bool ok = r == -EINVAL && !f && streq(error_message(&err), expected);
	if (!ok)
		print_error("for\n%s\nerror  (%d) \"%s\"\nwanted      \"%s\"\n", text, r,
			    r < 0 ? error_message(&err) : "(none)", expected);
	service_file_free(f);
	error_clear(&err);
	return ok;
}

static void parse_fails(const char *text, const char *expected)
{
	if (!fails_with(text, expected))
		fail();
}

static void digest_of(const char *text, const char *env, char out[72])
{
	struct service_config *c = config_of(text, env);
	service_config_digest(c, out);
	service_config_free(c);
}

static const char design_example[] =
    "service: hello\n"
    "build: { dockerfile: Dockerfile, context: . }\n"
    "run:\n"
    "  command: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    "  port: 8080\n"
    "  env: { GREETING: hi }\n"
    "  secrets: [API_TOKEN]          # injected at start, never stored in an image\n"
    "  volumes: { data: /data }      # survives every replacement\n"
    "  resources: { memory: 64M, pids: 64, cpu: 0.5 }\n"
    "health: { http: /healthz, interval: 500ms, timeout: 1s, healthy_after: 2 }\n"
    "deploy: { strategy: blue-green, drain_timeout: 10s, keep_previous: 1 }\n"
    "environments:\n"
    "  dev:  { replicas: 1, listen: 127.0.0.1:8081 }\n"
    "  prod: { replicas: 3, listen: 127.0.0.1:8080, canary: { steps: [10, 50, 100], pause: 5s } "
    "}\n";

static const char full_example[] =
    "service: hello                      # required\n"
    "build: { dockerfile: Dockerfile, context: . }\n"
    "image: hello:v1\n"
    "run:\n"
    "  command: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\"]\n"
    "  port: 8080\n"
    "  env: { GREETING: hi, WORKERS: 4, DEBUG: false }\n"
    "  secrets: [API_TOKEN]\n"
    "  volumes: { data: /data, cache: { path: /var/cache/, single_writer: true, read_only: false } "
    "}\n"
    "  resources: { memory: 64M, pids: 64, cpu: 0.5 }\n"
    "  user: \"1000:1000\"\n"
    "  workdir: /app\n"
    "  mode: http\n"
    "health:\n"
    "  http: /healthz\n"
    "  interval: 500ms\n"
    "  timeout: 1s\n"
    "  healthy_after: 2\n"
    "  unhealthy_after: 3\n"
    "  start_period: 0s\n"
    "deploy:\n"
    "  strategy: blue-green\n"
    "  max_surge: 1\n"
    "  drain_timeout: 10s\n"
    "  deploy_timeout: 60s\n"
    "  keep_previous: 1\n"
    "  keep_previous_running: true\n"
    "  canary: { steps: [10, 50, 100], pause: 5s, max_error_rate: 0.01, min_requests: 20 }\n"
    "environments:\n"
    "  dev:  { replicas: 1, listen: 127.0.0.1:8081 }\n"
    "  prod:\n"
    "    replicas: 3\n"
    "    listen: 127.0.0.1:8080\n"
    "    admin: 127.0.0.1:9080\n"
    "    run: { env: { GREETING: prod } }\n"
    "    deploy: { strategy: canary }\n";

static void test_design_example(void **state)
{
	struct service_file *f = parse_ok(design_example);
	assert_string_equal(f->service, "hello");
	assert_string_equal(f->dir, ".");
	assert_int_equal(f->n_envs, 2);
	assert_string_equal(f->envs[0], "dev");
	assert_string_equal(f->envs[1], "prod");

	struct service_config *c = env_ok(f, "dev");
	assert_string_equal(c->service, "hello");
	assert_string_equal(c->environment, "dev");
	assert_null(c->image);
	assert_true(c->build);
	assert_string_equal(c->build_context, ".");
	assert_string_equal(c->build_dockerfile, "Dockerfile");
	assert_int_equal(c->run.n_command, 7);
	assert_string_equal(c->run.command[0], "/bin/busybox");
	assert_string_equal(c->run.command[6], "/www");
	assert_int_equal(c->run.port, 8080);
	assert_int_equal(c->run.n_env, 1);
	assert_string_equal(c->run.env[0].name, "GREETING");
	assert_string_equal(c->run.env[0].value, "hi");
	assert_int_equal(c->run.n_secrets, 1);
	assert_string_equal(c->run.secrets[0], "API_TOKEN");
	assert_int_equal(c->run.n_volumes, 1);
	assert_string_equal(c->run.volumes[0].name, "data");
	assert_string_equal(c->run.volumes[0].path, "/data");
	assert_false(c->run.volumes[0].single_writer);
	assert_false(c->run.volumes[0].read_only);
	assert_int_equal(c->run.memory_bytes, 64ull << 20);
	assert_int_equal(c->run.pids, 64);
	assert_int_equal(c->run.cpu_millis, 500);
	assert_int_equal(c->health.check, SERVICE_CHECK_HTTP);
	assert_string_equal(c->health.http_path, "/healthz");
	assert_int_equal(c->health.interval_ns, 500 * MS);
	assert_int_equal(c->health.timeout_ns, 1 * SEC);
	assert_int_equal(c->health.healthy_after, 2);
	assert_int_equal(c->health.unhealthy_after, 3);
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_BLUE_GREEN);
	assert_int_equal(c->deploy.drain_timeout_ns, 10 * SEC);
	assert_int_equal(c->deploy.keep_previous, 1);
	assert_int_equal(c->replicas, 1);
	assert_string_equal(c->listen.host, "127.0.0.1");
	assert_int_equal(c->listen.port, 8081);
	assert_int_equal(c->admin.port, 0);
	service_config_free(c);

	/* prod: "canary:" in an environment means deploy.strategy canary */
	c = env_ok(f, "prod");
	assert_int_equal(c->replicas, 3);
	assert_int_equal(c->listen.port, 8080);
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_CANARY);
	assert_int_equal(c->deploy.canary.n_steps, 3);
	assert_int_equal(c->deploy.canary.steps[0], 10);
	assert_int_equal(c->deploy.canary.steps[1], 50);
	assert_int_equal(c->deploy.canary.steps[2], 100);
	assert_int_equal(c->deploy.canary.pause_ns, 5 * SEC);
	assert_int_equal(c->deploy.drain_timeout_ns, 10 * SEC);
	assert_int_equal(c->health.interval_ns, 500 * MS);
	service_config_free(c);
	service_file_free(f);
}

static void test_full_example(void **state)
{
	struct service_file *f = parse_ok(full_example);
	struct service_config *c = env_ok(f, "prod");
	assert_string_equal(c->image, "hello:v1");
	assert_true(c->build);
	assert_int_equal(c->run.n_command, 5);
	/* env: sorted by name, scalars as their text, the override merged in */
	assert_int_equal(c->run.n_env, 3);
	assert_string_equal(c->run.env[0].name, "DEBUG");
	assert_string_equal(c->run.env[0].value, "false");
	assert_string_equal(c->run.env[1].name, "GREETING");
	assert_string_equal(c->run.env[1].value, "prod");
	assert_string_equal(c->run.env[2].name, "WORKERS");
	assert_string_equal(c->run.env[2].value, "4");
	/* volumes sorted by name, paths cleaned */
	assert_int_equal(c->run.n_volumes, 2);
	assert_string_equal(c->run.volumes[0].name, "cache");
	assert_string_equal(c->run.volumes[0].path, "/var/cache");
	assert_true(c->run.volumes[0].single_writer);
	assert_string_equal(c->run.volumes[1].name, "data");
	assert_string_equal(c->run.user, "1000:1000");
	assert_string_equal(c->run.workdir, "/app");
	assert_int_equal(c->run.mode, SERVICE_MODE_HTTP);
	assert_int_equal(c->health.start_period_ns, 0);
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_CANARY);
	assert_int_equal(c->deploy.max_surge, 1);
	assert_int_equal(c->deploy.deploy_timeout_ns, 60 * SEC);
	assert_true(c->deploy.keep_previous_running);
	assert_int_equal(c->deploy.canary.max_error_rate_ppm, 10000);
	assert_int_equal(c->deploy.canary.min_requests, 20);
	assert_string_equal(c->admin.host, "127.0.0.1");
	assert_int_equal(c->admin.port, 9080);
	service_config_free(c);

	c = env_ok(f, "dev");
	assert_string_equal(c->run.env[1].value, "hi");
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_BLUE_GREEN);
	service_config_free(c);
	service_file_free(f);
}

static void test_defaults(void **state)
{
	struct service_config *c = config_of("service: s\n"
					     "image: busybox\n"
					     "run: { port: 80 }\n"
					     "environments: { dev: { listen: ':8080' } }\n",
					     "dev");
	assert_string_equal(c->image, "busybox:latest");
	assert_false(c->build);
	assert_null(c->build_context);
	assert_null(c->run.command);
	assert_int_equal(c->run.n_command, 0);
	assert_int_equal(c->run.n_env, 0);
	assert_int_equal(c->run.n_secrets, 0);
	assert_int_equal(c->run.n_volumes, 0);
	assert_int_equal(c->run.memory_bytes, 0);
	assert_int_equal(c->run.pids, 0);
	assert_int_equal(c->run.cpu_millis, 0);
	assert_null(c->run.user);
	assert_null(c->run.workdir);
	assert_int_equal(c->run.mode, SERVICE_MODE_HTTP);
	assert_int_equal(c->health.check, SERVICE_CHECK_TCP);
	assert_null(c->health.http_path);
	assert_int_equal(c->health.interval_ns, 1 * SEC);
	assert_int_equal(c->health.timeout_ns, 1 * SEC);
	assert_int_equal(c->health.healthy_after, 1);
	assert_int_equal(c->health.unhealthy_after, 3);
	assert_int_equal(c->health.start_period_ns, 0);
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_BLUE_GREEN);
	assert_int_equal(c->deploy.max_surge, 1);
	assert_int_equal(c->deploy.drain_timeout_ns, 10 * SEC);
	assert_int_equal(c->deploy.deploy_timeout_ns, 60 * SEC);
	assert_int_equal(c->deploy.keep_previous, 1);
	assert_true(c->deploy.keep_previous_running);
	assert_int_equal(c->deploy.canary.n_steps, 3);
	assert_int_equal(c->deploy.canary.steps[0], 10);
	assert_int_equal(c->deploy.canary.steps[2], 100);
	assert_int_equal(c->deploy.canary.pause_ns, 5 * SEC);
	assert_int_equal(c->deploy.canary.max_error_rate_ppm, 10000);
	assert_int_equal(c->deploy.canary.min_requests, 20);
	assert_int_equal(c->replicas, 1);
	assert_string_equal(c->listen.host, "");
	assert_int_equal(c->listen.port, 8080);
	assert_int_equal(c->admin.port, 0);
	service_config_free(c);

	/* build alone: context ".", Dockerfile in the context */
	c = config_of("service: s\nbuild: app/\nrun: { port: 80 }\n"
		      "environments: { dev: { listen: ':1' } }\n",
		      "dev");
	assert_null(c->image);
	assert_string_equal(c->build_context, "app");
	assert_string_equal(c->build_dockerfile, "app/Dockerfile");
	service_config_free(c);
	c = config_of("service: s\nbuild: {}\nrun: { port: 80 }\n"
		      "environments: { x: { listen: ':1' } }\n",
		      "x");
	assert_string_equal(c->build_context, ".");
	assert_string_equal(c->build_dockerfile, "Dockerfile");
	service_config_free(c);
}

static const char base_for_overrides[] = "service: web\n"
					 "image: web:v1\n"
					 "run:\n"
					 "  command: [/bin/web, --fast]\n"
					 "  port: 8080\n"
					 "  env: { A: a, B: b }\n"
					 "  volumes: { data: /data }\n"
					 "health: { http: /healthz, interval: 2s }\n"
					 "deploy:\n"
					 "  strategy: rolling\n"
					 "  canary: { steps: [50, 100], pause: 1s }\n"
					 "environments:\n"
					 "  base: { listen: ':9000' }\n";

static struct service_config * override(const char *env_yaml)
{
	_cleanup_free_ char *text =
	    xasprintf("%s  o:\n    listen: ':9001'\n%s", base_for_overrides, env_yaml);
	return config_of(text, "o");
}

static void test_overrides(void **state)
{
	/* run: maps merge key by key, lists replace, null removes */
	struct service_config *c =
	    override("    run: { command: [/bin/other], env: { B: bb, C: c, A: ~ } }\n");
	assert_int_equal(c->run.n_command, 1);
	assert_string_equal(c->run.command[0], "/bin/other");
	assert_int_equal(c->run.port, 8080);
	assert_int_equal(c->run.n_env, 2);
	assert_string_equal(c->run.env[0].name, "B");
	assert_string_equal(c->run.env[0].value, "bb");
	assert_string_equal(c->run.env[1].name, "C");
	service_config_free(c);

	/* a scalar replaced by a map */
	c = override("    run: { volumes: { data: { path: /srv, read_only: true } } }\n");
	assert_string_equal(c->run.volumes[0].path, "/srv");
	assert_true(c->run.volumes[0].read_only);
	service_config_free(c);

	/* health: naming another probe replaces the base's; timings merge */
	c = override("    health: { exec: [/bin/check, -q], timeout: 3s }\n");
	assert_int_equal(c->health.check, SERVICE_CHECK_EXEC);
	assert_null(c->health.http_path);
	assert_int_equal(c->health.n_exec, 2);
	assert_int_equal(c->health.interval_ns, 2 * SEC);
	assert_int_equal(c->health.timeout_ns, 3 * SEC);
	service_config_free(c);
	c = override("    health: { http: /ready }\n");
	assert_int_equal(c->health.check, SERVICE_CHECK_HTTP);
	assert_string_equal(c->health.http_path, "/ready");
	assert_int_equal(c->health.interval_ns, 2 * SEC);
	service_config_free(c);
	c = override("    health: { tcp: true, http: ~ }\n");
	assert_int_equal(c->health.check, SERVICE_CHECK_TCP);
	service_config_free(c);
	c = override("    health: ~\n");
	assert_int_equal(c->health.check, SERVICE_CHECK_TCP);
	assert_int_equal(c->health.interval_ns, 1 * SEC);
	service_config_free(c);

	/* deploy: nested maps merge */
	c = override("    deploy: { canary: { pause: 9s }, keep_previous: 0 }\n");
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_ROLLING);
	assert_int_equal(c->deploy.canary.n_steps, 2);
	assert_int_equal(c->deploy.canary.pause_ns, 9 * SEC);
	assert_int_equal(c->deploy.keep_previous, 0);
	service_config_free(c);

	/* canary: shorthand at the environment level */
	c = override("    canary: { steps: [1, 100], max_error_rate: 2.5% }\n");
	assert_int_equal(c->deploy.strategy, SERVICE_STRATEGY_CANARY);
	assert_int_equal(c->deploy.canary.n_steps, 2);
	assert_int_equal(c->deploy.canary.steps[0], 1);
	assert_int_equal(c->deploy.canary.pause_ns, 1 * SEC);
	assert_int_equal(c->deploy.canary.max_error_rate_ppm, 25000);
	service_config_free(c);

	/* image: a scalar replaced */
	c = override("    image: registry.example.com:5000/team/web:v2\n");
	assert_string_equal(c->image, "registry.example.com:5000/team/web:v2");
	assert_false(c->build);
	service_config_free(c);

	/* build: added in an environment; with image, image is its tag */
	c = override("    build: { context: ./src, dockerfile: docker/Dockerfile.prod }\n");
	assert_true(c->build);
	assert_string_equal(c->image, "web:v1");
	assert_string_equal(c->build_context, "src");
	assert_string_equal(c->build_dockerfile, "docker/Dockerfile.prod");
	service_config_free(c);

	/* the rest of the environment keys */
	c = override("    replicas: 0\n    admin: '[::1]:9090'\n");
	assert_int_equal(c->replicas, 0);
	assert_string_equal(c->admin.host, "::1");
	assert_int_equal(c->admin.port, 9090);
	service_config_free(c);

	/* the base environment is untouched by the others */
	_cleanup_free_ char *text =
	    xasprintf("%s  o:\n    listen: ':9001'\n    run: { port: 1 }\n", base_for_overrides);
	c = config_of(text, "base");
	assert_int_equal(c->run.port, 8080);
	service_config_free(c);
}

static void test_values(void **state)
{
	struct service_config *c = config_of(
	    "service: v\n"
	    "image: sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"
	    "run:\n"
	    "  port: 1\n"
	    "  secrets: [B_2, A_1]\n"
	    "  resources: { memory: 1GiB, pids: 4194304, cpu: 250m }\n"
	    "  workdir: /a/./b/../c//\n"
	    "  mode: tcp\n"
	    "health: { tcp: true, interval: 1m30s, timeout: 1.5h, start_period: 250us }\n"
	    "deploy: { drain_timeout: 1h2m3s4ms5ns, canary: { max_error_rate: 0 } }\n"
	    "environments:\n"
	    "  dev: { listen: '0.0.0.0:65535', replicas: 1000 }\n",
	    "dev");
	assert_string_equal(
	    c->image, "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(c->run.n_secrets, 2);
	assert_string_equal(c->run.secrets[0], "A_1");
	assert_string_equal(c->run.secrets[1], "B_2");
	assert_int_equal(c->run.memory_bytes, 1ull << 30);
	assert_int_equal(c->run.pids, 4194304);
	assert_int_equal(c->run.cpu_millis, 250);
	assert_string_equal(c->run.workdir, "/a/c");
	assert_int_equal(c->run.mode, SERVICE_MODE_TCP);
	assert_int_equal(c->health.check, SERVICE_CHECK_TCP);
	assert_int_equal(c->health.interval_ns, 90 * SEC);
	assert_int_equal(c->health.timeout_ns, 5400 * SEC);
	assert_int_equal(c->health.start_period_ns, 250000);
	assert_int_equal(c->deploy.drain_timeout_ns, 3723 * SEC + 4 * MS + 5);
	assert_int_equal(c->deploy.canary.max_error_rate_ppm, 0);
	assert_string_equal(c->listen.host, "0.0.0.0");
	assert_int_equal(c->replicas, 1000);
	service_config_free(c);
}

static void test_anchors(void **state)
{
	/* x- keys hold anchors; aliases and merge keys work */
	struct service_config *c = config_of("service: a\n"
					     "x-run: &run\n"
					     "  port: 80\n"
					     "  env: &env { A: '1' }\n"
					     "image: a\n"
					     "run:\n"
					     "  <<: *run\n"
					     "  port: 81\n"
					     "environments:\n"
					     "  dev:\n"
					     "    listen: ':1'\n"
					     "    run: { env: { <<: [*env, { B: '2' }] } }\n",
					     "dev");
	assert_int_equal(c->run.port, 81);
	assert_int_equal(c->run.n_env, 2);
	assert_string_equal(c->run.env[0].value, "1");
	assert_string_equal(c->run.env[1].name, "B");
	service_config_free(c);
}

static void test_errors(void **state)
{
	static const char head[] = "service: hello\nimage: hello\n";
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    /* a value of the wrong kind, on its line */
	    {"run:\n  port: eighty\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: run.port: expected an integer from 1 to 65535, got \"eighty\""},
	    {"run:\n  port: 0\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: run.port: expected an integer from 1 to 65535, got \"0\""},
	    /* unknown keys, everywhere */
	    {"run: { port: 80 }\nhealth:\n  http: /\n  intervall: 1s\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:6: health.intervall: unknown key (expected one of: http, tcp, exec, "
	     "interval, timeout, healthy_after, unhealthy_after, start_period)"},
	    {"run: { port: 80 }\nports: 1\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: ports: unknown key (expected one of: service, build, image, run, "
	     "health, deploy, environments)"},
	    {"run: { port: 80 }\nenvironments:\n  dev:\n    listen: ':1'\n    replica: 2\n",
	     "cairn.yml:7: environments.dev.replica: unknown key (expected one of: replicas, "
	     "listen, admin, image, build, run, health, deploy, canary)"},
	    /* per-environment overrides name the environment */
	    {"run: { port: 80 }\nenvironments:\n  dev: { listen: ':1' }\n  prod:\n"
	     "    listen: ':2'\n    run: { port: 99999 }\n",
	     "cairn.yml:8: environments.prod.run.port: expected an integer from 1 to 65535, got "
	     "\"99999\""},
	    {"run: { port: 80 }\nenvironments:\n  prod:\n    listen: ':2'\n"
	     "    deploy: { canary: { stepz: [100] } }\n",
	     "cairn.yml:7: environments.prod.deploy.canary.stepz: unknown key (expected one of: "
	     "steps, pause, max_error_rate, min_requests)"},
	    {"run: { port: 80 }\nenvironments:\n  prod:\n    listen: ':2'\n"
	     "    canary: { steps: [50, 20, 100] }\n",
	     "cairn.yml:7: environments.prod.canary.steps[1]: expected a percent from 1 to 99 "
	     "above the one before, got \"20\" (steps are a list of increasing percents ending "
	     "at 100, like [10, 50, 100])"},
	    /* wrong types */
	    {"run: { port: 80, command: { a: b } }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.command: expected a non-empty list of strings (argv), got a "
	     "mapping"},
	    {"run: { port: 80, env: [A, B] }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.env: expected a mapping of NAME: value, got a list"},
	    {"run: { port: 80, env: { A: [x] } }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.env.A: expected a string, got a list"},
	    {"run: [port]\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run: expected a mapping with port, command, env, ..., got a list"},
	    {"run: { port: 80 }\nhealth: { tcp: yes }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: health.tcp: expected true or false, got \"yes\""},
	    /* duplicate keys */
	    {"run:\n  port: 80\n  port: 81\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:5: run.port: duplicate key (first at line 4)"},
	    {"run: { port: 80 }\nenvironments: { dev: { listen: ':1' }, dev: { listen: ':2' } }\n",
	     "cairn.yml:4: environments.dev: duplicate key (first at line 4)"},
	    /* YAML syntax, with libfyaml's line and column */
	    {"run: { port: 80\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4:13: invalid YAML: missing comma in flow mapping"},
	    {"run:\n  port: \"80\n",
	     "cairn.yml:4:10: invalid YAML: double-quoted scalar without closing quote"},
	    /* required fields */
	    {"run: { command: [x] }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.port: required: the port the service listens on in its "
	     "instance, 1 to 65535"},
	    {"environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run: required: a mapping with at least port, at the top level or in "
	     "environments.dev"},
	    {"run: { port: 80 }\nenvironments:\n  dev:\n    replicas: 2\n",
	     "cairn.yml:5: environments.dev.listen: required: the address the router listens "
	     "on for this environment, like 127.0.0.1:8080"},
	    {"run: { port: 80 }\n",
	     "cairn.yml:1: environments: required: a mapping of 1 to 100 environments (name: { "
	     "replicas, listen, ... })"},
	    /* other checks */
	    {"run: { port: 80, secrets: [A, B, A] }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.secrets[2]: A is listed twice (also at line 3)"},
	    {"run: { port: 80, env: { A: x }, secrets: [A] }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.secrets[0]: A is also set in run.env (a variable is a secret or "
	     "not)"},
	    {"run: { port: 80, volumes: { a: /d, b: /d/ } }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.volumes.b: /d is also the path of volume a"},
	    {"run: { port: 80, resources: { memory: 64 } }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.resources.memory: expected a size like 64M or 1G (from 1M to "
	     "1024T), got \"64\""},
	    {"run: { port: 80 }\nhealth: { http: /a, exec: [x] }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: health.exec: only one of http, tcp, exec can be given (health.http "
	     "is given too)"},
	    {"run: { port: 80 }\nhealth: { interval: 5 }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: health.interval: expected a duration like 500ms, 1s or 1m30s (above "
	     "0, at most 8760h), got \"5\""},
	    {"run: { port: 80 }\ndeploy: { strategy: big-bang }\n"
	     "environments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:4: deploy.strategy: expected blue-green, rolling or canary, got "
	     "\"big-bang\""},
	    {"run: { port: 80 }\nenvironments:\n  dev: { listen: 'localhost:1' }\n",
	     "cairn.yml:5: environments.dev.listen: expected IPV4:PORT, [IPV6]:PORT or :PORT "
	     "(any address), got \"localhost:1\""},
	    {"run: { port: 80 }\nenvironments:\n  dev: { listen: '127.0.0.1:80' }\n"
	     "  prod: { listen: ':80' }\n",
	     "cairn.yml:6: environments.prod.listen: :80 clashes with 127.0.0.1:80 of "
	     "environments.dev"},
	    {"run: { port: 80 }\nenvironments:\n  Dev: { listen: ':1' }\n",
	     "cairn.yml:5: environments.Dev: expected an environment name of lowercase letters, "
	     "digits and '-' (up to 63, starting with a letter or digit)"},
	    {"run: { port: 80 }\nenvironments:\n  prod:\n    listen: ':1'\n"
	     "    deploy: { strategy: rolling }\n    canary: { pause: 1s }\n",
	     "cairn.yml:8: environments.prod.canary: means deploy.strategy canary, but "
	     "environments.prod.deploy.strategy is \"rolling\""},
	    {"build: /abs\nrun: { port: 80 }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: build: expected a path relative to the directory of cairn.yml, got "
	     "\"/abs\""},
	    /* YAML features we refuse */
	    {"run: { port: !!int 80 }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.port: YAML tags (!!str, !foo) are not supported; quote the "
	     "value to make it a string"},
	    {"run: { port: *p }\nenvironments: { dev: { listen: ':1' } }\n",
	     "cairn.yml:3: run.port: alias *p: no anchor &p before it"},
	    {"run: { port: 80 }\nenvironments: { dev: { listen: ':1' } }\n---\nx: 1\n",
	     "cairn.yml:5: only one YAML document is allowed (a second one starts here)"},
	};
	size_t failed = 0;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *text = xasprintf("%s%s", head, cases[i].text);
		failed += !fails_with(text, cases[i].error);
	}
	assert_int_equal(failed, 0);
	parse_fails("", "cairn.yml:1: empty file: expected a mapping with service, run and "
			"environments");
	parse_fails("- a\n", "cairn.yml:1: expected a mapping with service, run and environments, "
			     "got a list");
	parse_fails(
	    "service: Hello\n",
	    "cairn.yml:1: service: expected a name of lowercase letters, digits and '-' (up "
	    "to 63, starting with a letter or digit), got \"Hello\"");
	parse_fails("service: x\nrun: { port: 80 }\nenvironments: { dev: { listen: ':1' } }\n",
		    "cairn.yml:3: image: required: give image (NAME[:TAG] or sha256:...) or build "
		    "(or both), at the top level or in environments.dev");
	parse_fails("service: x\nimage: Bad/Name\nrun: { port: 80 }\n"
		    "environments: { dev: { listen: ':1' } }\n",
		    "cairn.yml:2: image: expected NAME[:TAG] (lowercase name components, a tag of "
		    "letters, digits, '_', '.', '-') or sha256:<64 hex digits>, got \"Bad/Name\"");
	parse_fails(
	    "service: x\nbuild: .\n"
	    "image: sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
	    "run: { port: 80 }\nenvironments: { dev: { listen: ':1' } }\n",
	    "cairn.yml:3: image: with build, expected the NAME[:TAG] the built image gets, "
	    "not an image id");
	/* control characters in values and keys stay on one line */
	parse_fails(
	    "service: \"a\\nb\"\n",
	    "cairn.yml:1: service: expected a name of lowercase letters, digits and '-' (up "
	    "to 63, starting with a letter or digit), got \"a\\x0ab\"");
	/* invalid UTF-8 never reaches libfyaml (0.7.12 loops on it in a directive) */
	parse_fails("service: x\n%\x92n:\n",
		    "cairn.yml:2: not valid UTF-8 text, or a NUL character (cairn.yml is UTF-8)");
	parse_fails("service: \"a\\0b\"\n",
		    "cairn.yml:1: service: not valid UTF-8 text, or a NUL character");
}

static void test_limits(void **state)
{
	/* billion laughs: fails on the node budget, quickly */
	struct buf b = {0};
	buf_puts(&b, "service: x\nx-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (int i = 1; i < 10; i++)
		buf_printf(&b,
			   "x-%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
			   i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	struct service_file *f = NULL;
	struct cairn_error err = {0};
	assert_int_equal(service_parse("cairn.yml", b.data, b.len, &f, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "cairn.yml:7: x-5[0]: more than 100000 YAML nodes once aliases "
			    "are expanded");
	error_clear(&err);
	buf_free(&b);

	/* an alias inside its own anchor */
	parse_fails("service: x\nx-a: &a [*a]\n",
		    "cairn.yml:2: x-a[0]: alias *a refers to the node that contains it");

	/* depth */
	for (int i = 0; i < 70; i++)
		buf_puts(&b, "[");
	for (int i = 0; i < 70; i++)
		buf_puts(&b, "]");
	assert_int_equal(service_parse("cairn.yml", b.data, b.len, &f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cairn.yml:1"));
	error_clear(&err);
	buf_free(&b);

	/* size */
	char *big = xmalloc(SERVICE_FILE_MAX + 1);
	memset(big, ' ', SERVICE_FILE_MAX + 1);
	assert_int_equal(service_parse("cairn.yml", big, SERVICE_FILE_MAX + 1, &f, &err), -EFBIG);
	assert_string_equal(err.msg, "cairn.yml: larger than 1048576 bytes");
	error_clear(&err);
	free(big);
	assert_null(f);
}

static void test_unknown_env(void **state)
{
	struct service_file *f = parse_ok(design_example);
	struct service_config *c = NULL;
	struct cairn_error err = {0};
	assert_int_equal(service_env(f, "staging", &c, &err), -ENOENT);
	assert_null(c);
	assert_string_equal(err.msg, "cairn.yml: no environment \"staging\" (it has: dev, prod)");
	error_clear(&err);
	service_file_free(f);
}

static void assert_round_trip(const struct service_config *c)
{
	char d1[72], d2[72];
	service_config_digest(c, d1);
	assert_true(startswith(d1, "sha256:"));
	assert_int_equal(strlen(d1), 71);
	json_t *j = service_config_json(c);
	struct service_config *back = NULL;
	struct cairn_error err = {0};
	if (service_config_from_json(j, &back, &err) < 0)
		fail_msg("from_json: %s", error_message(&err));
	service_config_digest(back, d2);
	assert_string_equal(d1, d2);
	json_t *j2 = service_config_json(back);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	service_config_free(back);
}

static void test_json_round_trip(void **state)
{
	const char *texts[] = {design_example, full_example};
	for (size_t t = 0; t < ELEMENTSOF(texts); t++) {
		struct service_file *f = parse_ok(texts[t]);
		for (size_t i = 0; i < f->n_envs; i++) {
			struct service_config *c = env_ok(f, f->envs[i]);
			assert_round_trip(c);
			service_config_free(c);
		}
		service_file_free(f);
	}
	struct service_config *c = override("    health: { exec: [/bin/check] }\n"
					    "    admin: '[2001:db8::1]:80'\n");
	assert_round_trip(c);

	/* every field is there, with its canonical form */
	json_t *j = service_config_json(c);
	char *s = json_dumps(json_object_get(j, "health"), JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"check\":\"exec\",\"exec\":[\"/bin/check\"],\"healthy_after\":1,"
			       "\"http\":null,\"interval_ns\":2000000000,\"start_period_ns\":0,"
			       "\"timeout_ns\":1000000000,\"unhealthy_after\":3}");
	free(s);
	assert_string_equal(json_string_value(json_object_get(j, "admin")), "[2001:db8::1]:80");
	assert_string_equal(json_string_value(json_object_get(j, "listen")), ":9001");
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
	assert_int_equal(json_object_size(j), 11);

	/* from_json refuses what is not a config */
	struct service_config *back = NULL;
	struct cairn_error err = {0};
	json_object_set_new(json_object_get(j, "run"), "port", json_string("80"));
	assert_int_equal(service_config_from_json(j, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "config: run.port: expected an integer from 1 to 65535");
	error_clear(&err);
	json_object_set_new(json_object_get(j, "run"), "port", json_integer(80));
	json_object_set_new(j, "extra", json_true());
	assert_int_equal(service_config_from_json(j, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "config: unknown key \"extra\"");
	error_clear(&err);
	json_object_del(j, "extra");
	json_object_del(json_object_get(j, "deploy"), "canary");
	assert_int_equal(service_config_from_json(j, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "config: deploy.canary: missing");
	error_clear(&err);
	json_t *not_object = json_array();
	assert_int_equal(service_config_from_json(not_object, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "config: expected an object");
	json_decref(not_object);
	error_clear(&err);
	assert_null(back);
	json_decref(j);
	service_config_free(c);
}

static void test_digest_stable(void **state)
{
	char a[72], b[72], d[72];
	digest_of(design_example, "prod", a);
	/* the same service: other key order, block style, comments, quotes, other
	 * spellings of the same values */
	digest_of("# the hello service\n"
		  "environments:\n"
		  "  prod:\n"
		  "    canary:\n"
		  "      pause: 5000ms\n"
		  "      steps: [10, 50, 100]\n"
		  "    listen: \"127.0.0.1:8080\"\n"
		  "    replicas: 3\n"
		  "  dev: {listen: 127.0.0.1:8081}\n"
		  "deploy: {keep_previous: 1, drain_timeout: 10s, strategy: blue-green}\n"
		  "health:\n"
		  "  healthy_after: 2\n"
		  "  timeout: 1000ms\n"
		  "  interval: 0.5s\n"
		  "  http: /healthz\n"
		  "run:\n"
		  "  resources: {cpu: 500m, memory: 64Mi, pids: 64}\n"
		  "  volumes: {data: /data/}\n"
		  "  secrets: [API_TOKEN]\n"
		  "  env: {GREETING: 'hi'}\n"
		  "  port: 8080\n"
		  "  command:\n"
		  "    - /bin/busybox\n"
		  "    - httpd\n"
		  "    - -f\n"
		  "    - -p\n"
		  "    - \"8080\"\n"
		  "    - -h\n"
		  "    - /www\n"
		  "build: {context: ./, dockerfile: ./Dockerfile}\n"
		  "service: hello\n",
		  "prod", b);
	assert_string_equal(a, b);
	/* one value differs: another digest */
	_cleanup_free_ char *other = xstrdup(design_example);
	char *p = strstr(other, "healthy_after: 2");
	p[strlen("healthy_after: ")] = '3';
	digest_of(other, "prod", d);
	assert_string_not_equal(a, d);
	/* and the environment is part of it */
	digest_of(design_example, "dev", d);
	assert_string_not_equal(a, d);
}

static void test_load(void **state)
{
	char *dir = scratch_new();
	_cleanup_free_ char *path = xasprintf("%s/cairn.yml", dir);
	write_text(path, design_example);
	struct service_file *f = NULL;
	struct cairn_error err = {0};
	assert_int_equal(service_load(path, &f, &err), 0);
	assert_string_equal(f->name, path);
	assert_string_equal(f->dir, dir);
	service_file_free(f);
	f = NULL;

	write_text(path, "service: x\nrun: { port: 80 }\n");
	assert_int_equal(service_load(path, &f, &err), -EINVAL);
	_cleanup_free_ char *expected = xasprintf("%s:1: environments: required: a mapping of 1 "
						  "to 100 environments (name: { replicas, listen, "
						  "... })",
						  path);
	assert_string_equal(err.msg, expected);
	error_clear(&err);

	_cleanup_free_ char *missing = xasprintf("%s/nope.yml", dir);
	assert_int_equal(service_load(missing, &f, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nope.yml"));
	error_clear(&err);
	assert_null(f);
	scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_design_example), cmocka_unit_test(test_full_example),
	    cmocka_unit_test(test_defaults),	   cmocka_unit_test(test_overrides),
	    cmocka_unit_test(test_values),	   cmocka_unit_test(test_anchors),
	    cmocka_unit_test(test_errors),	   cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_unknown_env),	   cmocka_unit_test(test_json_round_trip),
	    cmocka_unit_test(test_digest_stable),  cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
