/* cairn rollback ENV [--to vN]: a new release with an earlier release's image
 * and configuration (a route switch when its instances are still warm). */
#include "api.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_rollback = {
	.name = "rollback",
	.args = "[--to vN] ENV",
	.summary = "Go back to an earlier release of ENV (image and configuration)",
	.help = "Makes a new release pointing at the image and the configuration of vN (by\n"
		"default the newest release before the live one that went live). When that\n"
		"release's instances are still running (deploy.keep_previous), it is a\n"
		"switch of the router's table: no instance starts.\n"
		"\n"
		"Options:\n"
		"  --to vN   the release to go back to (vN or N)\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	enum { OPT_TO = OPT_COMMON_END };
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"to", required_argument, NULL, OPT_TO}, {0}};
	unsigned long to = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == OPT_TO) {
			const char *s = optarg[0] == 'v' ? optarg + 1 : optarg;
			char *end;
			to = strtoul(s, &end, 10);
			if (!*s || *end || to == 0)
				return cli_usage(&cmd_rollback, "--to %s: expected vN", optarg);
			continue;
		}
		int r = cli_common_option(cli, &cmd_rollback, c, argv);
		if (r >= 0)
			return r;
	}
	if (argc - optind != 1)
		return cli_usage(&cmd_rollback, "expected ENV");
	struct cairn_error err = {0};
	json_t *body = json_pack("{s:s, s:I}", "env", argv[optind], "to", (json_int_t)to);
	json_t *done = NULL;
	int r = api_call(cli, "POST", "/v1/rollback", body, api_print_progress, cli, &done, &err);
	json_decref(body);
	if (r < 0)
		return cli_error_clear(&err);
	r = api_finish(cli, done);
	json_decref(done);
	return r;
}
