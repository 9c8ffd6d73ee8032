/* cairn exec INSTANCE -- CMD: run a command inside a running instance. The
 * instance is marked tainted for good: an immutable server that someone
 * logged into is no longer the image it was made from. */
#include "cli.h"

#include "../runtime/runtime.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_exec = {
	.name = "exec",
	.args = "[OPTIONS] INSTANCE -- CMD [ARGS...]",
	.summary = "Run a command in a running instance (marks it tainted for good)",
	.help = "Options:\n"
		"  -e, --env K=V       set an environment variable (repeatable)\n"
		"  -u, --user USER     run as this user of the image\n"
		"  -w, --workdir DIR   working directory inside\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"env", required_argument, NULL, 'e'},
					     {"user", required_argument, NULL, 'u'},
					     {"workdir", required_argument, NULL, 'w'},
					     {0}};
	char *env[258] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			  "HOME=/root"};
	size_t n_env = 2;
	struct run_spec spec = {0};
	int c;
	while ((c = getopt_long(argc, argv, "+:he:u:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=' || n_env >= 256)
				return cli_usage(&cmd_exec, "-e %s: expected K=V", optarg);
			env[n_env++] = optarg;
			break;
		case 'u':
			spec.user = optarg;
			break;
		case 'w':
			if (optarg[0] != '/')
				return cli_usage(&cmd_exec, "--workdir %s: not an absolute path",
						 optarg);
			spec.workdir = optarg;
			break;
		default: {
			int r = cli_common_option(cli, &cmd_exec, c, argv);
			if (r >= 0)
				return r;
		}
		}
	}
	if (optind >= argc)
		return cli_usage(&cmd_exec, "expected an INSTANCE");
	const char *ref = argv[optind++];
	if (optind < argc && streq(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return cli_usage(&cmd_exec, "expected a command after the instance");
	env[n_env] = NULL;
	spec.env = env;
	spec.argv = argv + optind;

	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	struct state_instance in = {0};
	int r = cli_open_state(cli, &st, &err);
	if (r == 0) {
		r = state_instance_find(st, ref, &in, &err);
		if (r == -ENOENT)
			r = error_set(&err, ENOENT, "no instance %s (see 'cairn ps')", ref);
	}
	if (r == 0 && !streq(instance_true_state(&in), "running"))
		r = error_set(&err, ESRCH, "instance %s is not running", in.name);
	/* Tainted before anything runs inside: the record never lags the fact. */
	_cleanup_free_ char *why = NULL;
	if (r == 0) {
		why = xasprintf("exec %s", spec.argv[0]);
		r = state_instance_taint(st, in.id, why, &err);
		if (r == 0)
			r = state_event(st, "instance.exec", in.id, why, &err);
	}
	int code = 0;
	char message[600];
	if (r == 0)
		r = runtime_exec(in.pid, in.pid_start, &spec, 0, &code, message, sizeof(message), &err);
	state_instance_free(&in);
	if (r < 0) {
		r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	if (message[0])
		fprintf(stderr, "cairn: %s\n", message);
	return code;
}
