/* cairn rm NAME:TAG|ID...: untag, or forget an image and all its tags. The
 * objects stay until 'cairn gc'. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_rm = {
	.name = "rm",
	.args = "NAME[:TAG]|ID...",
	.summary = "Remove tags, or images with all their tags (gc frees the space)",
	.help = "NAME[:TAG] removes that tag; an id (or unique prefix) removes the image and\n"
		"every tag pointing at it. Tag history is kept.\n",
	.run = run,
};

static int rm_one(struct state *st, const char *ref, struct cairn_error *err)
{
	char id[DIGEST_STR_LEN];
	if (image_ref_is_id(ref)) {
		const char *hex = startswith(ref, DIGEST_PREFIX) ? ref + 7 : ref;
		int r = state_image_find_prefix(st, hex, id, err);
		if (r == 0) {
			struct state_tag *tags;
			size_t n;
			r = state_tag_list(st, id, &tags, &n, err);
			if (r < 0)
				return r;
			for (size_t i = 0; i < n; i++)
				printf("Untagged: %s:%s\n", tags[i].name, tags[i].tag);
			state_tags_free(tags, n);
			r = state_image_remove(st, id, err);
			if (r == 0)
				r = state_event(st, "image.rm", id, "", err);
			if (r == 0)
				printf("Deleted: %s\n", id);
			return r;
		}
		if (r != -ENOENT)
			return r;
	}
	_cleanup_free_ char *name = NULL, *tag = NULL;
	int r = image_ref_parse(ref, &name, &tag, err);
	if (r < 0)
		return r;
	r = state_tag_remove(st, name, tag, err);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "no image %s:%s in this store", name, tag);
	if (r < 0)
		return r;
	_cleanup_free_ char *subject = xasprintf("%s:%s", name, tag);
	r = state_event(st, "image.untag", subject, "", err);
	if (r == 0)
		printf("Untagged: %s:%s\n", name, tag);
	return r;
}

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_rm, argc, argv, 1, -1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	if (cli_open_state(cli, &st, &err) < 0)
		goto fail;
	/* All or nothing: one bad reference leaves every tag as it was. */
	if (state_begin(st, &err) < 0)
		goto fail;
	for (int i = optind; i < argc; i++)
		if (rm_one(st, argv[i], &err) < 0) {
			state_rollback(st);
			goto fail;
		}
	if (state_commit(st, &err) < 0)
		goto fail;
	return EXIT_SUCCESS;
fail:
	r = cli_error(&err);
	error_clear(&err);
	return r;
}
