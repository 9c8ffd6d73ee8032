/* cairn verify IMAGE [DIR]: compare a directory (by default the image's shared
 * checkout) with the image, path by path: content, type, mode, owner, symlink
 * target, xattrs. Exit 1 on any difference: the drift check. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_verify = {
	.name = "verify",
	.args = "IMAGE [DIR]",
	.summary = "Compare a directory with an image; list added, removed, changed paths",
	.help = "DIR defaults to the image's shared checkout, $ROOT/checkouts/<id>.\n"
		"Lines: '+ path' added, '- path' removed, '~ path: what' changed.\n"
		"Exit status 1 when anything differs.\n",
	.run = run,
};

struct diff_out {
	json_t *arr;
};

static void on_diff(enum diff_kind kind, const char *path, const char *what, void *u)
{
	struct diff_out *o = u;
	static const char *const names[] = {"added", "removed", "changed"};
	if (o->arr) {
		json_array_append_new(o->arr, json_pack("{s:s, s:s, s:s}", "path", path, "change",
							names[kind], "what", what));
		return;
	}
	if (kind == DIFF_CHANGED)
		printf("~ %s: %s\n", path, what);
	else
		printf("%c %s\n", kind == DIFF_ADDED ? '+' : '-', path);
}

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_verify, argc, argv, 1, 2);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	char id[DIGEST_STR_LEN];
	struct tree want = {0}, have = {0};
	_cleanup_free_ char *dir = NULL;
	uint64_t skipped = 0;
	r = EXIT_FAILURE;
	if (cli_open_image(cli, argv[optind], false, &st, &store, id, NULL, &want, &err) < 0)
		goto out;
	dir = optind + 1 < argc ? xstrdup(argv[optind + 1])
				: xasprintf("%s/checkouts/%s", cli->root, id + 7);
	if (image_scan_dir(dir, &have, &skipped, &err) < 0)
		goto out;
	struct diff_out o = {.arr = cli->json ? json_array() : NULL};
	size_t n = image_tree_diff(&want, &have, on_diff, &o);
	if (skipped)
		cli_warn("%s has %llu special files (device nodes, fifos, sockets) the image "
			 "cannot hold",
			 dir, (unsigned long long)skipped);
	if (o.arr)
		print_json(json_pack("{s:s, s:s, s:b, s:I, s:o}", "id", id, "dir", dir, "same",
				     n == 0 && !skipped, "differences", (json_int_t)n, "changes",
				     o.arr));
	else if (n == 0)
		fprintf(stderr, "%s matches %s (%zu paths)\n", dir, id, want.n);
	else
		fprintf(stderr, "%s differs from %s in %zu paths\n", dir, id, n);
	r = (n || skipped) ? EXIT_FAILURE : EXIT_SUCCESS;
	error_clear(&err);
	tree_free(&want);
	tree_free(&have);
	return r;
out:
	r = cli_error(&err);
	tree_free(&want);
	tree_free(&have);
	error_clear(&err);
	return r;
}
