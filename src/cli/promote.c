/* cairn promote FROM TO: deploy to TO the exact image live in FROM, with TO's
 * settings from cairn.yml. */
#include "api.h"

#include "../daemon/service.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_promote = {
	.name = "promote",
	.args = "[-f cairn.yml] FROM_ENV TO_ENV",
	.summary = "Deploy to TO_ENV the image id live in FROM_ENV",
	.help = "The image is the one FROM_ENV's live release runs (by id: never rebuilt);\n"
		"the configuration is TO_ENV's from the service file.\n"
		"\n"
		"Options:\n"
		"  -f, --file FILE   the service file (default ./cairn.yml)\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"file", required_argument, NULL, 'f'}, {0}};
	const char *file = "cairn.yml";
	int c;
	while ((c = getopt_long(argc, argv, "+:hf:", opts, NULL)) != -1) {
		if (c == 'f') {
			file = optarg;
			continue;
		}
		int r = cli_common_option(cli, &cmd_promote, c, argv);
		if (r >= 0)
			return r;
	}
	if (argc - optind != 2)
		return cli_usage(&cmd_promote, "expected FROM_ENV and TO_ENV");
	struct cairn_error err = {0};
	_cleanup_(service_file_freep) struct service_file *f = NULL;
	_cleanup_(service_config_freep) struct service_config *cfg = NULL;
	if (service_load(file, &f, &err) < 0 || service_env(f, argv[optind + 1], &cfg, &err) < 0)
		return cli_error_clear(&err);
	json_t *body = json_pack("{s:s, s:s, s:o}", "from", argv[optind], "to", argv[optind + 1],
				 "config", service_config_json(cfg));
	json_t *done = NULL;
	int r = api_call(cli, "POST", "/v1/promote", body, api_print_progress, cli, &done, &err);
	json_decref(body);
	if (r < 0)
		return cli_error_clear(&err);
	r = api_finish(cli, done);
	json_decref(done);
	return r;
}
