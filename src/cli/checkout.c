/* cairn checkout IMAGE DIR: materialize an image as hardlinks into the store. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_checkout = {
	.name = "checkout",
	.args = "IMAGE DIR",
	.summary = "Materialize an image at DIR (hardlinks into the store; treat it as read-only)",
	.help = "DIR must not exist or be empty. Files are hardlinks into the store, so writing\n"
		"to one would change the store: 'cairn fsck' and 'cairn verify' find that.\n"
		"On another file system than the store, files are copied.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_checkout, argc, argv, 2, 2);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	char id[DIGEST_STR_LEN];
	struct digest d;
	struct tree t = {0};
	r = EXIT_FAILURE;
	if (cli_open_state(cli, &st, &err) < 0 || cli_resolve(st, argv[optind], id, &err) < 0 ||
	    cli_open_store(cli, false, &store, &err) < 0 || store_lock(store, false, &err) < 0)
		goto out;
	if (digest_from_string(id, &d) < 0 || image_load(store, &d, NULL, &t, &err) < 0)
		goto out;
	if (store_checkout(store, &t, argv[optind + 1], true, &err) < 0) {
		error_wrap(&err, "checking out %.19s", id);
		goto out;
	}
	if (cli->json)
		print_json(json_pack("{s:s, s:s}", "id", id, "dir", argv[optind + 1]));
	else
		printf("%s\n", argv[optind + 1]);
	r = EXIT_SUCCESS;
out:
	if (r != EXIT_SUCCESS)
		r = cli_error(&err);
	tree_free(&t);
	error_clear(&err);
	return r;
}
