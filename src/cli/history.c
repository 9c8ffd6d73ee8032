/* cairn history NAME[:TAG]: what a name's tags pointed to over time. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_history = {
	.name = "history",
	.args = "NAME[:TAG]",
	.summary = "Show what NAME's tags pointed to over time, oldest first",
	.help = "Without :TAG, shows every tag of NAME.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_history, argc, argv, 1, 1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	const char *ref = argv[optind];
	_cleanup_free_ char *name = NULL, *tag = NULL;
	_cleanup_(state_closep) struct state *st = NULL;
	struct state_tag_event *h = NULL;
	size_t n = 0;
	if (image_ref_parse(ref, &name, &tag, &err) < 0 || cli_open_state(cli, &st, &err) < 0) {
		r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	const char *slash = strrchr(ref, '/');
	bool has_tag = strchr(slash ? slash : ref, ':') != NULL;
	if (state_tag_history(st, name, has_tag ? tag : NULL, &h, &n, &err) < 0) {
		r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	if (n == 0) {
		state_tag_events_free(h, n);
		return cli_fail("no history for %s%s%s", name, has_tag ? ":" : "",
				has_tag ? tag : "");
	}
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			char at[48];
			format_time_iso(h[i].at_ns, at, sizeof(at));
			json_array_append_new(arr,
					      json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s}", "at", at,
							"name", h[i].name, "tag", h[i].tag, "image",
							*h[i].id ? h[i].id : NULL, "previous",
							*h[i].previous ? h[i].previous : NULL, "why",
							h[i].why));
		}
		print_json(arr);
	} else {
		printf("%-21s %-24s %-14s %-14s %s\n", "WHEN", "TAG", "IMAGE ID", "PREVIOUS", "WHY");
		for (size_t i = 0; i < n; i++) {
			char at[32], sid[13] = "<removed>", sprev[13] = "-";
			format_time(h[i].at_ns, at, sizeof(at));
			if (*h[i].id)
				format_short_id(h[i].id, sid);
			if (*h[i].previous)
				format_short_id(h[i].previous, sprev);
			_cleanup_free_ char *t = xasprintf("%s:%s", h[i].name, h[i].tag);
			printf("%-21s %-24s %-14s %-14s %s\n", at, t, sid, sprev, h[i].why);
		}
	}
	state_tag_events_free(h, n);
	return EXIT_SUCCESS;
}
