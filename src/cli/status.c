/* cairn status [ENV]: the live release of each environment, its instances
 * with their health, and the router's counts. */
#include "api.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_status = {
	.name = "status",
	.args = "[ENV]",
	.summary = "Show the live release, its instances, health and traffic",
	.help = "Requests per second are measured over a quarter of a second. For a\n"
		"service in tcp mode the router counts connections instead.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_status, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *path = argc - optind == 1
					    ? xasprintf("/v1/status?env=%s", argv[optind])
					    : xstrdup("/v1/status");
	json_t *ans = NULL;
	if (api_call(cli, "GET", path, NULL, NULL, NULL, &ans, &err) < 0)
		return cli_error_clear(&err);
	if (cli->json) {
		print_json(ans);
		return 0;
	}
	const char *env;
	json_t *o;
	json_object_foreach(json_object_get(ans, "envs"), env, o)
	{
		json_t *live = json_object_get(o, "live");
		if (!json_is_object(live)) {
			printf("%s: nothing live\n", env);
			continue;
		}
		printf("%s: v%lld live since %s on %s, image %.19s (%s)\n", env,
		       (long long)json_integer_value(json_object_get(live, "number")),
		       json_string_value(json_object_get(live, "finished")) ?: "?",
		       json_string_value(json_object_get(o, "listen")) ?: "?",
		       json_string_value(json_object_get(live, "image")),
		       json_string_value(json_object_get(live, "trigger")));
		/* a tcp service's unit is the connection */
		const char *mode = json_string_value(json_object_get(o, "mode"));
		bool tcp = mode && streq(mode, "tcp");
		printf("  %s %lld, errors %lld\n", tcp ? "connections" : "requests",
		       (long long)json_integer_value(json_object_get(o, "requests")),
		       (long long)json_integer_value(json_object_get(o, "errors")));
		printf("  %-34s %-10s %-10s %10s %8s %8s\n", "INSTANCE", "STATE", "HEALTH",
		       tcp ? "CONNS" : "REQUESTS", "ERRORS", tcp ? "CONN/S" : "REQ/S");
		size_t i;
		json_t *in;
		json_array_foreach(json_object_get(o, "instances"), i, in)
		printf("  %-34s %-10s %-10s %10lld %8lld %8.0f\n",
		       json_string_value(json_object_get(in, "name")),
		       json_is_true(json_object_get(in, "running")) ? "running" : "gone",
		       json_string_value(json_object_get(in, "health")),
		       (long long)json_integer_value(json_object_get(in, "requests")),
		       (long long)json_integer_value(json_object_get(in, "errors")),
		       json_real_value(json_object_get(in, "rps")));
	}
	json_decref(ans);
	return 0;
}
