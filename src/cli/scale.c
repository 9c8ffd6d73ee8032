/* cairn scale ENV N: a new release of ENV with N instances. */
#include "api.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_scale = {
	.name = "scale",
	.args = "ENV N",
	.summary = "Run N instances of ENV's live release (a new release)",
	.help = "A new release with the live release's image and configuration and N\n"
		"replicas, carried out as a deploy.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_scale, argc, argv, 2, 2);
	if (r >= 0)
		return r;
	uint64_t n;
	if (parse_u64(argv[optind + 1], &n) < 0 || n > 200)
		return cli_usage(&cmd_scale, "N: expected 0 to 200, got \"%s\"", argv[optind + 1]);
	struct cairn_error err = {0};
	json_t *body = json_pack("{s:s, s:I}", "env", argv[optind], "replicas", (json_int_t)n);
	json_t *done = NULL;
	r = api_call(cli, "POST", "/v1/scale", body, api_print_progress, cli, &done, &err);
	json_decref(body);
	if (r < 0)
		return cli_error_clear(&err);
	r = api_finish(cli, done);
	json_decref(done);
	return r;
}
