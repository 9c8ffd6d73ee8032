/* cairn gc: remove every object no root reaches. Roots come from the state
 * database (tags now, releases later); untagged images are forgotten first,
 * then their objects removed, so a crash in between leaves only garbage. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_gc = {
	.name = "gc",
	.args = "[--dry-run] [--build-cache]",
	.summary = "Remove objects and untagged images that nothing uses",
	.help = "The build cache (the results of RUN steps) is kept unless --build-cache.\n"
		"\n"
		"Options:\n"
		"  -n, --dry-run     say what would be removed and how many bytes, change nothing\n"
		"  --build-cache     forget the build cache too, so its files can go\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	enum { OPT_BUILD_CACHE = OPT_COMMON_END };
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"dry-run", no_argument, NULL, 'n'},
					     {"build-cache", no_argument, NULL, OPT_BUILD_CACHE},
					     {0}};
	bool dry = false, drop_cache = false;
	int c;
	while ((c = getopt_long(argc, argv, "+:hn", opts, NULL)) != -1) {
		if (c == 'n') {
			dry = true;
			continue;
		}
		if (c == OPT_BUILD_CACHE) {
			drop_cache = true;
			continue;
		}
		int r = cli_common_option(cli, &cmd_gc, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind != argc)
		return cli_usage(&cmd_gc, "unexpected argument \"%s\"", argv[optind]);

	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	struct digest_set *keep = digest_set_new();
	char **roots = NULL, **cache = NULL;
	size_t n_roots = 0, n_cache = 0;
	uint64_t n_cache_dropped = 0;
	struct state_image *imgs = NULL;
	size_t n_imgs = 0;
	int r = EXIT_FAILURE;
	if (cli_open_store(cli, false, &store, &err) < 0 || store_lock(store, true, &err) < 0 ||
	    cli_open_state(cli, &st, &err) < 0 || state_gc_roots(st, &roots, &n_roots, &err) < 0 ||
	    state_image_list(st, &imgs, &n_imgs, &err) < 0)
		goto out;
	for (size_t i = 0; i < n_roots; i++) {
		struct digest d;
		if (digest_from_string(roots[i], &d) < 0 ||
		    image_add_reachable(store, &d, keep, &err) < 0) {
			error_wrap(&err, "refusing to collect garbage while an image is damaged "
					 "(run 'cairn fsck')");
			goto out;
		}
	}
	/* The build cache: its trees are roots, unless it goes. A cache entry
	 * whose tree is damaged is only forgotten (it is a cache). */
	if (drop_cache && !dry) {
		if (state_begin(st, &err) < 0 || state_cache_clear(st, &n_cache_dropped, &err) < 0) {
			state_rollback(st);
			goto out;
		}
		if (state_commit(st, &err) < 0)
			goto out;
	}
	if (!drop_cache || dry) {
		if (state_cache_trees(st, &cache, &n_cache, &err) < 0)
			goto out;
		if (drop_cache)
			n_cache_dropped = n_cache;
	}
	for (size_t i = 0; i < n_cache && !drop_cache; i++) {
		struct digest d;
		struct cairn_error e = {0};
		if (digest_from_string(cache[i], &d) < 0 ||
		    image_add_tree_reachable(store, &d, keep, &e) < 0)
			cli_warn("build cache: %s", error_message(&e));
		error_clear(&e);
	}
	if (drop_cache && !cli->json)
		printf("%s %llu build cache entr%s\n", dry ? "would forget" : "forgot",
		       (unsigned long long)n_cache_dropped, n_cache_dropped == 1 ? "y" : "ies");
	/* Untagged images: name them, then forget them. */
	uint64_t n_forget = 0;
	for (size_t i = 0; i < n_imgs; i++) {
		bool rooted = false;
		for (size_t k = 0; k < n_roots && !rooted; k++)
			rooted = streq(roots[k], imgs[i].id);
		if (rooted)
			continue;
		n_forget++;
		if (!cli->json)
			printf("%s untagged image %s\n", dry ? "would remove" : "removing",
			       imgs[i].id);
	}
	if (!dry && n_forget) {
		if (state_begin(st, &err) < 0 || state_forget_unreferenced(st, NULL, &err) < 0 ||
		    state_event(st, "gc", "images", "", &err) < 0) {
			state_rollback(st);
			goto out;
		}
		if (state_commit(st, &err) < 0)
			goto out;
	}
	struct store_gc_result res;
	if (store_gc(store, keep, dry, &res, &err) < 0)
		goto out;
	char freed[32], kept[32];
	format_size(res.bytes_removed, freed, sizeof(freed));
	format_size(res.bytes_kept, kept, sizeof(kept));
	if (cli->json)
		print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry, "images",
				     (json_int_t)n_forget, "objects_removed",
				     (json_int_t)res.objects_removed, "bytes_removed",
				     (json_int_t)res.bytes_removed, "objects_kept",
				     (json_int_t)res.objects_kept, "bytes_kept",
				     (json_int_t)res.bytes_kept));
	else
		printf("%s %llu objects (%s); kept %llu objects (%s)\n",
		       dry ? "would remove" : "removed", (unsigned long long)res.objects_removed,
		       freed, (unsigned long long)res.objects_kept, kept);
	r = EXIT_SUCCESS;
out:
	if (r != EXIT_SUCCESS)
		r = cli_error(&err);
	strv_free_n(roots, n_roots);
	strv_free_n(cache, n_cache);
	state_images_free(imgs, n_imgs);
	digest_set_free(keep);
	error_clear(&err);
	return r;
}
