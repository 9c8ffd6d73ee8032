/* cairn fsck: re-hash every object, then check that every recorded image has
 * its manifest, tree and files. Names each corrupt or missing object and the
 * images (and paths) it breaks; exit 1 when anything is wrong. */
#include "cli.h"

#include "../image/image.h"

#include <sys/sysinfo.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_fsck = {
	.name = "fsck",
	.args = "[--repair]",
	.summary = "Re-hash every object; report corrupt or missing ones and what they break",
	.help = "Also checks that no object's mode, owner or xattrs were changed (a checkout's\n"
		"files are hardlinks into the store).\n"
		"Exit status 1 when anything is wrong.\n"
		"\n"
		"Options:\n"
		"  --repair   remove corrupt objects and copies (the next import or checkout\n"
		"             writes them again) and reset changed metadata\n",
	.run = run,
};

struct problem {
	struct digest d;
	const char *kind; /* "corrupt" or "missing" */
	char *image;	  /* label of the image that uses it, or NULL */
	char *path;	  /* path in that image, "(manifest)", "(tree)" */
};

struct report {
	struct problem *v;
	size_t n, cap;
};

static void add_problem(struct report *rep, const struct digest *d, const char *kind,
			const char *image, const char *path)
{
	rep->v = xgrow(rep->v, &rep->cap, rep->n + 1, sizeof(*rep->v));
	rep->v[rep->n++] = (struct problem){*d, kind, image ? xstrdup(image) : NULL,
					    path ? xstrdup(path) : NULL};
}

static int problem_cmp(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	int c = memcmp(x->d.b, y->d.b, DIGEST_LEN);
	if (c)
		return c;
	return strcmp(x->image ? x->image : "", y->image ? y->image : "");
}

static char *image_label(struct state *st, const char *id)
{
	struct state_tag *tags;
	size_t n;
	if (state_tag_list(st, id, &tags, &n, NULL) < 0 || n == 0)
		return xstrdup(id);
	char *s = xasprintf("%s:%s (%.19s)", tags[0].name, tags[0].tag, id);
	state_tags_free(tags, n);
	return s;
}

/* Check one image against the store; returns the number of problems found. */
static size_t check_image(struct store *store, struct state *st, const char *id,
			  const struct digest_set *corrupt, struct report *rep)
{
	struct digest d;
	if (digest_from_string(id, &d) < 0)
		return 0;
	_cleanup_free_ char *label = image_label(st, id);
	size_t before = rep->n;
	if (!store_has_object(store, &d)) {
		add_problem(rep, &d, "missing", label, "(manifest)");
		return 1;
	}
	if (digest_set_contains(corrupt, &d)) {
		add_problem(rep, &d, "corrupt", label, "(manifest)");
		return 1;
	}
	struct image_manifest m;
	struct cairn_error err = {0};
	if (image_load(store, &d, &m, NULL, &err) < 0) {
		add_problem(rep, &d, "corrupt", label, "(manifest)");
		error_clear(&err);
		return 1;
	}
	struct digest tree_d = m.tree;
	image_manifest_free(&m);
	if (!store_has_object(store, &tree_d)) {
		add_problem(rep, &tree_d, "missing", label, "(tree)");
		return 1;
	}
	struct tree t = {0};
	if (digest_set_contains(corrupt, &tree_d) || image_load(store, &d, NULL, &t, &err) < 0) {
		add_problem(rep, &tree_d, "corrupt", label, "(tree)");
		error_clear(&err);
		return 1;
	}
	for (size_t i = 0; i < t.n; i++) {
		const struct tree_entry *e = &t.entries[i];
		if (e->type != ENTRY_FILE || e->link)
			continue;
		if (digest_set_contains(corrupt, &e->digest))
			add_problem(rep, &e->digest, "corrupt", label, e->path);
		else if (!store_has_object(store, &e->digest))
			add_problem(rep, &e->digest, "missing", label, e->path);
	}
	tree_free(&t);
	return rep->n - before;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"repair", no_argument, NULL, 'r'}, {0}};
	bool repair = false;
	int c, r;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'r') {
			repair = true;
			continue;
		}
		r = cli_common_option(cli, &cmd_fsck, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind != argc)
		return cli_usage(&cmd_fsck, "unexpected argument \"%s\"", argv[optind]);
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	struct store_fsck_result fr = {0};
	struct state_image *imgs = NULL;
	size_t n_imgs = 0;
	struct report rep = {0};
	struct digest_set *corrupt = digest_set_new();
	if (cli_open_store(cli, false, &store, &err) < 0 ||
	    store_lock(store, repair, &err) < 0 || cli_open_state(cli, &st, &err) < 0 ||
	    store_fsck(store, (unsigned)get_nprocs(), repair, &fr, &err) < 0 ||
	    state_image_list(st, &imgs, &n_imgs, &err) < 0) {
		r = cli_error(&err);
		goto out;
	}
	for (size_t i = 0; i < fr.n_corrupt; i++)
		digest_set_add(corrupt, &fr.corrupt[i]);
	size_t broken = 0;
	json_t *jbroken = json_array();
	for (size_t i = 0; i < n_imgs; i++)
		if (check_image(store, st, imgs[i].id, corrupt, &rep) > 0) {
			broken++;
			json_array_append_new(jbroken, json_string(imgs[i].id));
		}
	/* Corrupt objects no image uses are still reported. */
	for (size_t i = 0; i < fr.n_corrupt; i++) {
		bool used = false;
		for (size_t k = 0; k < rep.n && !used; k++)
			used = digest_eq(&rep.v[k].d, &fr.corrupt[i]);
		if (!used)
			add_problem(&rep, &fr.corrupt[i], "corrupt", NULL, NULL);
	}
	if (rep.n > 1)
		qsort(rep.v, rep.n, sizeof(*rep.v), problem_cmp);
	json_t *jprob = json_array();
	for (size_t i = 0; i < rep.n; i++) {
		char name[DIGEST_STR_LEN];
		digest_to_string(&rep.v[i].d, name);
		if (cli->json)
			json_array_append_new(jprob, json_pack("{s:s, s:s, s:s?, s:s?}", "object",
							       name, "problem", rep.v[i].kind,
							       "image", rep.v[i].image, "path",
							       rep.v[i].path));
		else if (rep.v[i].image)
			printf("%s object %s, used by %s as %s\n", rep.v[i].kind, name,
			       rep.v[i].image, rep.v[i].path);
		else
			printf("%s object %s (used by no image)\n", rep.v[i].kind, name);
	}
	for (size_t i = 0; i < fr.n_bad_copies; i++) {
		if (cli->json)
			json_array_append_new(jprob, json_pack("{s:s, s:s}", "object",
							       fr.bad_copies[i], "problem",
							       "checkout copy changed"));
		else
			printf("changed checkout copy objects/%s (a checkout's file was written to)\n",
			       fr.bad_copies[i]);
	}
	for (size_t i = 0; i < fr.n_changed_meta; i++) {
		if (cli->json)
			json_array_append_new(jprob, json_pack("{s:s, s:s}", "object",
							       fr.changed_meta[i], "problem",
							       "metadata changed"));
		else
			printf("changed metadata of objects/%s (a checkout's file was chmod/chown'ed)\n",
			       fr.changed_meta[i]);
	}
	for (size_t i = 0; i < fr.n_bad_names; i++) {
		if (cli->json)
			json_array_append_new(jprob, json_pack("{s:s, s:s}", "object",
							       fr.bad_names[i], "problem",
							       "not an object name"));
		else
			printf("stray file objects/%s (not an object name)\n", fr.bad_names[i]);
	}
	size_t n_missing = 0;
	for (size_t i = 0; i < rep.n; i++)
		n_missing += streq(rep.v[i].kind, "missing");
	char bytes[32];
	format_size(fr.bytes, bytes, sizeof(bytes));
	if (cli->json)
		print_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "objects",
				     (json_int_t)fr.n_objects, "bytes", (json_int_t)fr.bytes,
				     "corrupt", (json_int_t)fr.n_corrupt, "missing",
				     (json_int_t)n_missing, "images", (json_int_t)n_imgs, "repaired",
				     (json_int_t)fr.repaired, "problems", jprob, "broken_images",
				     jbroken));
	else {
		json_decref(jprob);
		json_decref(jbroken);
		printf("checked %llu objects (%s) and %zu images: %zu corrupt, %zu missing, "
		       "%zu images broken\n",
		       (unsigned long long)fr.n_objects, bytes, n_imgs, fr.n_corrupt, n_missing,
		       broken);
		if (fr.n_bad_copies || fr.n_changed_meta)
			printf("%zu checkout copies and %zu objects with changed files or metadata\n",
			       fr.n_bad_copies, fr.n_changed_meta);
		if (repair)
			printf("repaired %llu (re-import or check out again to restore what was "
			       "removed)\n",
			       (unsigned long long)fr.repaired);
	}
	r = (fr.n_corrupt || n_missing || fr.n_bad_names || broken || fr.n_bad_copies ||
	     fr.n_changed_meta)
		    ? EXIT_FAILURE
		    : EXIT_SUCCESS;
out:
	for (size_t i = 0; i < rep.n; i++) {
		free(rep.v[i].image);
		free(rep.v[i].path);
	}
	free(rep.v);
	digest_set_free(corrupt);
	state_images_free(imgs, n_imgs);
	store_fsck_result_free(&fr);
	error_clear(&err);
	return r;
}
