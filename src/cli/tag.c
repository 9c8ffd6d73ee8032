/* cairn tag IMAGE NAME[:TAG]: point a tag at an image, keeping its history. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_tag = {
	.name = "tag",
	.args = "IMAGE NAME[:TAG]",
	.summary = "Point NAME:TAG at an image (the old target stays in its history)",
	.help = "IMAGE is NAME[:TAG], an image id, or a unique prefix of one.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_tag, argc, argv, 2, 2);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *name = NULL, *tag = NULL, *subject = NULL;
	_cleanup_(state_closep) struct state *st = NULL;
	char id[DIGEST_STR_LEN];
	if (image_ref_parse(argv[optind + 1], &name, &tag, &err) < 0 ||
	    cli_open_state(cli, &st, &err) < 0 || state_begin(st, &err) < 0)
		goto fail;
	subject = xasprintf("%s:%s", name, tag);
	if (cli_resolve(st, argv[optind], id, &err) < 0 ||
	    state_tag_set(st, name, tag, id, "tag", &err) < 0 ||
	    state_event(st, "image.tag", subject, id, &err) < 0) {
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
