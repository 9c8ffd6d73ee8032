/* cairn import SOURCE NAME:TAG: a directory or tar archive becomes an image. */
#include "cli.h"

#include "../base/fs.h"
#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_import = {
	.name = "import",
	.args = "[OPTIONS] SOURCE NAME[:TAG]",
	.summary = "Import a directory or a tar archive (plain, gzip, zstd, xz) as an image",
	/* SOURCE "-" reads a tar archive from standard input. */
	.help = "SOURCE is a directory, a tar file, or - for a tar on standard input.\n"
		"Prints the image id (sha256:...). The id depends only on the files and their\n"
		"metadata, never on mtimes or on when or where the import ran.\n"
		"Device nodes, fifos and sockets are left out with a warning.\n"
		"\n"
		"Options:\n"
		"  --max-bytes SIZE    refuse more content than SIZE (default 64G)\n"
		"  --max-entries N     refuse more than N paths (default 2000000)\n"
		"  --max-depth N       refuse paths deeper than N directories (default 128)\n"
		"  -q, --quiet         print only the id\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	enum { OPT_MAX_BYTES = OPT_COMMON_END, OPT_MAX_ENTRIES, OPT_MAX_DEPTH };
	static const struct option opts[] = {
		COMMON_LONG_OPTIONS,
		{"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
		{"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
		{"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
		{"quiet", no_argument, NULL, 'q'},
		{0},
	};
	struct import_limits lim = {IMPORT_DEFAULT_MAX_BYTES, IMPORT_DEFAULT_MAX_ENTRIES,
				    IMPORT_DEFAULT_MAX_DEPTH};
	bool quiet = false;
	int c;
	while ((c = getopt_long(argc, argv, "+:hq", opts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case OPT_MAX_BYTES:
			if (parse_size(optarg, &v) < 0)
				return cli_usage(&cmd_import, "--max-bytes: invalid size \"%s\"",
						 optarg);
			lim.max_bytes = v;
			break;
		case OPT_MAX_ENTRIES:
			if (parse_u64(optarg, &v) < 0)
				return cli_usage(&cmd_import, "--max-entries: invalid number \"%s\"",
						 optarg);
			lim.max_entries = v;
			break;
		case OPT_MAX_DEPTH:
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > TREE_MAX_DEPTH)
				return cli_usage(&cmd_import, "--max-depth: expected 1 to %d, got \"%s\"",
						 TREE_MAX_DEPTH, optarg);
			lim.max_depth = (unsigned)v;
			break;
		case 'q':
			quiet = true;
			break;
		default: {
			int r = cli_common_option(cli, &cmd_import, c, argv);
			if (r >= 0)
				return r;
		}
		}
	}
	if (argc - optind != 2)
		return cli_usage(&cmd_import, "expected SOURCE and NAME[:TAG]");
	const char *source = argv[optind], *ref = argv[optind + 1];

	struct cairn_error err = {0};
	_cleanup_free_ char *name = NULL, *tag = NULL, *abs = NULL, *what = NULL, *subject = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	_cleanup_(state_closep) struct state *st = NULL;
	struct import_result res = {0};
	/* Check the name before touching anything. */
	if (image_ref_parse(ref, &name, &tag, &err) < 0)
		goto fail;
	int64_t t0 = now_monotonic_ns();
	if (cli_open_store(cli, true, &store, &err) < 0 || store_lock(store, false, &err) < 0)
		goto fail;
	trace_phase("open store", t0);
	if (cli_open_state(cli, &st, &err) < 0)
		goto fail;
	trace_phase("open state", t0);

	t0 = now_monotonic_ns();
	if (image_import(store, source, NULL, &lim, &res, &err) < 0)
		goto fail;
	int64_t t1 = now_monotonic_ns();

	char id[DIGEST_STR_LEN], tree[DIGEST_STR_LEN];
	digest_to_string(&res.id, id);
	digest_to_string(&res.tree, tree);
	abs = streq(source, "-") ? xstrdup("(stdin)") : realpath(source, NULL);
	what = xasprintf("import %s %s", res.source_kind,
					      abs ? abs : source);
	struct state_image im = {.created_ns = now_realtime_ns(),
				 .size = res.bytes,
				 .entries = res.entries,
				 .source = what};
	memcpy(im.id, id, sizeof(id));
	memcpy(im.tree, tree, sizeof(tree));
	subject = xasprintf("%s:%s", name, tag);
	/* Nothing to record when the image is known and the tag already points
	 * at it: the unchanged re-import writes nothing at all. */
	char current[DIGEST_STR_LEN];
	struct state_image known = {0};
	bool same = state_image_get(st, id, &known, NULL) == 0 &&
		    state_tag_get(st, name, tag, current, NULL) == 0 && streq(current, id);
	state_image_free(&known);
	int64_t t_db = now_monotonic_ns();
	if (!same) {
		if (state_begin(st, &err) < 0)
			goto fail;
		if (state_image_add(st, &im, &err) < 0 ||
		    state_tag_set(st, name, tag, id, "import", &err) < 0 ||
		    state_event(st, "image.import", subject, id, &err) < 0) {
			state_rollback(st);
			goto fail;
		}
		if (state_commit(st, &err) < 0)
			goto fail;
	}
	trace_phase("record in the database", t_db);

	if (res.skipped)
		cli_warn("skipped %llu special file%s (device nodes, fifos, sockets)",
			 (unsigned long long)res.skipped, res.skipped == 1 ? "" : "s");
	if (!quiet) {
		char size[32];
		format_size(res.bytes, size, sizeof(size));
		fprintf(stderr, "imported %s:%s from %s: %llu entries, %s, %llu read, %.3f s\n",
			name, tag, res.source_kind, (unsigned long long)res.entries, size,
			(unsigned long long)res.files_read, (double)(t1 - t0) / 1e9);
	}
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "id", id, "name", name,
				      "tag", tag, "size", (json_int_t)res.bytes, "entries",
				      (json_int_t)res.entries, "skipped", (json_int_t)res.skipped);
		print_json(o);
	} else
		puts(id);
	import_result_free(&res);
	return EXIT_SUCCESS;
fail:;
	import_result_free(&res);
	int r = cli_error(&err);
	error_clear(&err);
	return r;
}
