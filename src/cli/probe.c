/* cairn probe INSTANCE -- CMD: a health check of the exec kind, run by the
 * router every interval. It runs CMD inside the instance as `cairn exec`
 * does, but leaves no mark: the check is part of the declared service, not
 * a person logging in, so the instance is not tainted and no event is
 * recorded. The command dies with this process and at its timeout. Hidden
 * from 'cairn --help'. */
#include "cli.h"

#include "../runtime/runtime.h"

#include <fcntl.h>
#include <limits.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_probe = {
	.name = "probe",
	.args = "[--timeout MS] INSTANCE -- CMD [ARGS...]",
	.summary = "Run a health check command in a running instance (the router runs it)",
	.help = "Runs CMD inside the instance like 'cairn exec', without tainting it, with\n"
		"the environment, user and working directory of the instance's command.\n"
		"The exit status is CMD's: 0 is healthy. CMD and everything it started are\n"
		"killed when this process dies.\n"
		"\n"
		"Options:\n"
		"  -t, --timeout MS    kill CMD after MS milliseconds and exit 124\n"
		"                      (default: no timeout)\n",
	.run = run,
	.hidden = true,
};

/* The context the instance's command runs in, for the check to run in it
 * too, as Docker runs HEALTHCHECK with the container's environment, user
 * and working directory: read from the command's /proc entries (init's
 * first child). Whatever cannot be read keeps the defaults. */
struct service_ctx {
	char *environ_buf; /* NUL-separated */
	char **env;
	char user[32];
	char workdir[PATH_MAX];
};

static void service_ctx_free(struct service_ctx *c)
{
	free(c->environ_buf);
	free(c->env);
}

static void service_ctx_read(pid_t init, struct service_ctx *c)
{
	char path[64], *buf = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	if (read_file_at(AT_FDCWD, path, &buf, &len, 4096) < 0)
		return;
	long child = strtol(buf, NULL, 10);
	free(buf);
	if (child <= 0)
		return;
	/* its parent must still be init: the pid was not reused meanwhile */
	snprintf(path, sizeof(path), "/proc/%ld/status", child);
	_cleanup_free_ char *status = NULL;
	if (read_file_at(AT_FDCWD, path, &status, &len, 16384) < 0)
		return;
	const char *pp = strstr(status, "\nPPid:\t"), *u = strstr(status, "\nUid:\t"),
		   *g = strstr(status, "\nGid:\t");
	if (!pp || strtol(pp + 7, NULL, 10) != init || !u || !g)
		return;
	snprintf(c->user, sizeof(c->user), "%lu:%lu", strtoul(u + 6, NULL, 10),
		 strtoul(g + 6, NULL, 10));
	snprintf(path, sizeof(path), "/proc/%ld/cwd", child);
	ssize_t n = readlink(path, c->workdir, sizeof(c->workdir) - 1);
	c->workdir[n > 0 ? n : 0] = 0;
	if (c->workdir[0] != '/')
		c->workdir[0] = 0; /* not a path inside the instance */
	snprintf(path, sizeof(path), "/proc/%ld/environ", child);
	if (read_file_at(AT_FDCWD, path, &c->environ_buf, &len, 1u << 20) < 0 || !len)
		return;
	size_t n_env = 0;
	for (size_t i = 0; i < len; i++)
		n_env += c->environ_buf[i] == 0;
	c->env = xcalloc(n_env + 2, sizeof(char *));
	n_env = 0;
	for (size_t i = 0; i < len; i += strlen(c->environ_buf + i) + 1)
		if (strchr(c->environ_buf + i, '='))
			c->env[n_env++] = c->environ_buf + i;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"timeout", required_argument, NULL, 't'},
					     {0}};
	char *env[] = {(char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		       (char *)"HOME=/root", NULL};
	uint64_t timeout_ms = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+:ht:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_u64(optarg, &timeout_ms) < 0 || timeout_ms > INT32_MAX)
				return cli_usage(&cmd_probe, "--timeout %s: expected milliseconds",
						 optarg);
			break;
		default: {
			int r = cli_common_option(cli, &cmd_probe, c, argv);
			if (r >= 0)
				return r;
		}
		}
	}
	if (optind >= argc)
		return cli_usage(&cmd_probe, "expected an INSTANCE");
	const char *ref = argv[optind++];
	if (optind < argc && streq(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return cli_usage(&cmd_probe, "expected a command after the instance");
	struct run_spec spec = {.argv = argv + optind, .env = env, .die_with_parent = true};

	struct cairn_error err = {0};
	struct state_instance in = {0};
	int r;
	{
		/* Closed before the command runs: the check holds nothing of the
		 * database while it waits. */
		_cleanup_(state_closep) struct state *st = NULL;
		r = cli_open_state(cli, &st, &err);
		if (r == 0) {
			r = state_instance_find(st, ref, &in, &err);
			if (r == -ENOENT)
				r = error_set(&err, ENOENT, "no instance %s", ref);
		}
	}
	if (r == 0 && !streq(instance_true_state(&in), "running"))
		r = error_set(&err, ESRCH, "instance %s is not running", in.name);
	_cleanup_(service_ctx_free) struct service_ctx ctx = {0};
	if (r == 0) {
		service_ctx_read(in.pid, &ctx);
		if (ctx.env && ctx.env[0])
			spec.env = ctx.env;
		if (ctx.user[0])
			spec.user = ctx.user;
		if (ctx.workdir[0])
			spec.workdir = ctx.workdir;
	}
	int code = 0;
	char message[600];
	if (r == 0)
		r = runtime_exec(in.pid, in.pid_start, &spec, (int64_t)timeout_ms, &code, message,
				 sizeof(message), &err);
	state_instance_free(&in);
	if (r < 0)
		return cli_error_clear(&err);
	if (message[0])
		fprintf(stderr, "cairn: %s\n", message);
	return code;
}
