/* cairn probe INSTANCE -- CMD: a health check of the exec kind, run by the
 * router every interval. It runs CMD inside the instance as `cairn exec`
 * does, but leaves no mark: the check is part of the declared service, not
 * a person logging in, so the instance is not tainted and no event is
 * recorded. The command dies with this process and at its timeout. Hidden
 * from 'cairn --help'. */
#include "cli.h"

#include "../runtime/runtime.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_probe = {
	.name = "probe",
	.args = "[--timeout MS] INSTANCE -- CMD [ARGS...]",
	.summary = "Run a health check command in a running instance (the router runs it)",
	.help = "Runs CMD inside the instance like 'cairn exec', without tainting it. The exit\n"
		"status is CMD's: 0 is healthy. CMD and everything it started are killed\n"
		"when this process dies.\n"
		"\n"
		"Options:\n"
		"  -t, --timeout MS    kill CMD after MS milliseconds and exit 124\n"
		"                      (default: no timeout)\n",
	.run = run,
	.hidden = true,
};

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
