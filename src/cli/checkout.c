/* cairn checkout IMAGE DIR: materialize an image as hardlinks into the store. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_checkout = {
	.name = "checkout",
	.args = "IMAGE [DIR]",
	.summary = "Materialize an image at DIR (hardlinks into the store; treat it as read-only)",
	.help = "Without DIR, makes (once) the image's shared checkout $ROOT/checkouts/<id>,\n"
		"the one its instances use, and prints its path.\n"
		"DIR must not exist or be empty. Files are hardlinks into the store, so writing\n"
		"to one would change the store: 'cairn fsck' and 'cairn verify' find that.\n"
		"On another file system than the store, files are copied.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_checkout, argc, argv, 1, 2);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	char id[DIGEST_STR_LEN];
	struct tree t = {0};
	_cleanup_free_ char *dir = NULL;
	bool shared = false;
	r = EXIT_FAILURE;
	if (cli_open_image(cli, argv[optind], true, &st, &store, id, NULL, &t, &err) < 0)
		goto out;
	if (optind + 1 < argc)
		dir = xstrdup(argv[optind + 1]);
	else {
		dir = xasprintf("%s/checkouts/%s", cli->root, id + 7);
		shared = access(dir, F_OK) == 0;
	}
	if (!shared && store_checkout(store, &t, dir, true, &err) < 0) {
		error_wrap(&err, "checking out %.19s", id);
		goto out;
	}
	if (cli->json)
		print_json(json_pack("{s:s, s:s}", "id", id, "dir", dir));
	else
		printf("%s\n", dir);
	r = EXIT_SUCCESS;
out:
	if (r != EXIT_SUCCESS)
		r = cli_error(&err);
	tree_free(&t);
	error_clear(&err);
	return r;
}
