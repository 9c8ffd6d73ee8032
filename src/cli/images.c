/* cairn images: every tag and every untagged image, newest first. */
#include "cli.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_images = {
	.name = "images",
	.args = "[OPTIONS]",
	.summary = "List images: name, tag, id, created, size",
	.help = "Untagged images show as <none> until 'cairn gc' removes them.\n"
		"\n"
		"Options:\n"
		"  -q, --quiet   print only full image ids\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS, {"quiet", no_argument, NULL, 'q'},
					     {0}};
	bool quiet = false;
	int c;
	while ((c = getopt_long(argc, argv, "+:hq", opts, NULL)) != -1) {
		if (c == 'q') {
			quiet = true;
			continue;
		}
		int r = cli_common_option(cli, &cmd_images, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind != argc)
		return cli_usage(&cmd_images, "unexpected argument \"%s\"", argv[optind]);
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	struct state_image *imgs = NULL;
	size_t n_imgs = 0;
	if (cli_open_state(cli, &st, &err) < 0 || state_image_list(st, &imgs, &n_imgs, &err) < 0) {
		int r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	json_t *arr = cli->json ? json_array() : NULL;
	if (!cli->json && !quiet)
		printf("%-30s %-16s %-14s %-21s %s\n", "NAME", "TAG", "IMAGE ID", "CREATED",
		       "SIZE");
	int r = EXIT_SUCCESS;
	for (size_t i = 0; i < n_imgs; i++) {
		struct state_image *im = &imgs[i];
		struct state_tag *tags = NULL;
		size_t n_tags = 0;
		if (state_tag_list(st, im->id, &tags, &n_tags, &err) < 0) {
			r = cli_error(&err);
			error_clear(&err);
			break;
		}
		if (quiet) {
			puts(im->id);
			state_tags_free(tags, n_tags);
			continue;
		}
		char shortid[13], created[32], size[32], iso[48];
		format_short_id(im->id, shortid);
		format_time(im->created_ns, created, sizeof(created));
		format_time_iso(im->created_ns, iso, sizeof(iso));
		format_size(im->size, size, sizeof(size));
		for (size_t k = 0; k < (n_tags ? n_tags : 1); k++) {
			const char *name = n_tags ? tags[k].name : "<none>";
			const char *tag = n_tags ? tags[k].tag : "<none>";
			if (arr)
				json_array_append_new(
					arr, json_pack("{s:s?, s:s?, s:s, s:s, s:I, s:I, s:s}",
						       "name", n_tags ? name : NULL, "tag",
						       n_tags ? tag : NULL, "id", im->id, "created",
						       iso, "size", (json_int_t)im->size, "entries",
						       (json_int_t)im->entries, "source", im->source));
			else
				printf("%-30s %-16s %-14s %-21s %s\n", name, tag, shortid, created,
				       size);
		}
		state_tags_free(tags, n_tags);
	}
	state_images_free(imgs, n_imgs);
	if (arr) {
		if (r == EXIT_SUCCESS)
			print_json(arr);
		else
			json_decref(arr);
	}
	return r;
}
