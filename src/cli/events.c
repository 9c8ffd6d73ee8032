/* cairn events [ENV]: the audit log. */
#include "api.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_events = {
	.name = "events",
	.args = "[ENV]",
	.summary = "Show the audit log: releases, instances, rollbacks, with times",
	.help = "",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_events, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *path = argc - optind == 1
					    ? xasprintf("/v1/events?env=%s&limit=500", argv[optind])
					    : xstrdup("/v1/events?limit=500");
	json_t *ans = NULL;
	if (api_call(cli, "GET", path, NULL, NULL, NULL, &ans, &err) < 0)
		return cli_error_clear(&err);
	if (cli->json) {
		print_json(ans);
		return 0;
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(ans, "events"), i, x)
	printf("%s  %-16s %-20s %s\n", json_string_value(json_object_get(x, "at")),
	       json_string_value(json_object_get(x, "kind")),
	       json_string_value(json_object_get(x, "subject")),
	       json_string_value(json_object_get(x, "detail")));
	json_decref(ans);
	return 0;
}
