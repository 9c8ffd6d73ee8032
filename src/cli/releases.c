/* cairn releases ENV: the history of ENV's releases, newest first. */
#include "api.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_releases = {
	.name = "releases",
	.args = "ENV",
	.summary = "List the releases of ENV: number, image, config, times, outcome, trigger",
	.help = "",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_releases, argc, argv, 1, 1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *path = xasprintf("/v1/releases?env=%s", argv[optind]);
	json_t *ans = NULL;
	if (api_call(cli, "GET", path, NULL, NULL, NULL, &ans, &err) < 0)
		return cli_error_clear(&err);
	if (cli->json) {
		print_json(ans);
		return 0;
	}
	printf("%-6s %-12s %-12s %-20s %-20s %-12s %s\n", "REL", "IMAGE", "CONFIG", "CREATED",
	       "FINISHED", "STATE", "TRIGGER / REASON");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(ans, "releases"), i, x)
	{
		const char *img = json_string_value(json_object_get(x, "image"));
		const char *cfg = json_string_value(json_object_get(x, "config"));
		const char *reason = json_string_value(json_object_get(x, "reason"));
		char rel[24];
		snprintf(rel, sizeof(rel), "v%lld",
			 (long long)json_integer_value(json_object_get(x, "number")));
		printf("%-6s %-12.12s %-12.12s %-20s %-20s %-12s %s%s%s\n", rel,
		       img && strlen(img) > 7 ? img + 7 : "", cfg && strlen(cfg) > 7 ? cfg + 7 : "",
		       json_string_value(json_object_get(x, "created")),
		       json_string_value(json_object_get(x, "finished")) ?: "-",
		       json_string_value(json_object_get(x, "state")),
		       json_string_value(json_object_get(x, "trigger")),
		       reason && *reason ? ": " : "", reason ? reason : "");
	}
	json_decref(ans);
	return 0;
}
