/* cairn rm NAME:TAG|ID...: untag, or forget an image and all its tags. The
 * objects stay until 'cairn gc'. */
#include "cli.h"

#include "../base/fs.h"
#include "../image/image.h"
#include "../runtime/runtime.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_rm = {
	.name = "rm",
	.args = "[-f] INSTANCE|NAME[:TAG]|IMAGE-ID...",
	.summary = "Remove instances, tags, or images with all their tags",
	.help = "An instance (id, prefix or name) is removed with its log; a running one only\n"
		"with -f, which stops it first. NAME[:TAG] removes that tag; an image id (or\n"
		"unique prefix) removes the image and every tag pointing at it. Tag history is\n"
		"kept; 'cairn gc' frees the space.\n"
		"\n"
		"Options:\n"
		"  -f, --force   stop running instances first\n",
	.run = run,
};

static int rm_instance(struct cli *cli, struct state *st, struct state_instance *in, bool force,
		       struct cairn_error *err)
{
	const char *state = instance_true_state(in);
	if (streq(state, "running")) {
		if (!force)
			return error_set(err, EBUSY,
					 "instance %s is running; stop it first, or use rm -f",
					 in->name);
		int r = instance_stop(st, in, 0, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *dir = xasprintf("%s/instances/%s", cli->root, in->id);
	int r = rm_rf_at(AT_FDCWD, dir);
	if (r < 0)
		return error_set(err, -r, "removing %s: %s", dir, strerror(-r));
	runtime_cgroup_remove(in->id);
	r = state_instance_remove(st, in->id, err);
	if (r == 0)
		r = state_event(st, "instance.rm", in->id, "", err);
	if (r == 0)
		printf("%s\n", in->id);
	return r;
}

/* Remove a tag, or an image with all its tags (instances are done first, by
 * run() below, outside this transaction). */
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
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"force", no_argument, NULL, 'f'}, {0}};
	bool force = false;
	int c, r;
	while ((c = getopt_long(argc, argv, "+:hf", opts, NULL)) != -1) {
		if (c == 'f') {
			force = true;
			continue;
		}
		r = cli_common_option(cli, &cmd_rm, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind >= argc)
		return cli_usage(&cmd_rm, "expected what to remove");
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	if (cli_open_state(cli, &st, &err) < 0)
		goto fail;
	/* Instances first and outside any transaction: stopping one waits for
	 * its monitor, which writes to the database. */
	bool *done = xcalloc((size_t)argc, sizeof(bool));
	for (int i = optind; i < argc; i++) {
		struct state_instance in = {0};
		int q = state_instance_find(st, argv[i], &in, &err);
		if (q == -ENOENT)
			continue;
		if (q == 0)
			q = rm_instance(cli, st, &in, force, &err);
		state_instance_free(&in);
		if (q < 0) {
			free(done);
			goto fail;
		}
		done[i] = true;
	}
	/* Tags and images: all or nothing, one bad reference leaves every tag as
	 * it was. */
	if (state_begin(st, &err) < 0) {
		free(done);
		goto fail;
	}
	for (int i = optind; i < argc; i++)
		if (!done[i] && rm_one(st, argv[i], &err) < 0) {
			state_rollback(st);
			free(done);
			goto fail;
		}
	free(done);
	if (state_commit(st, &err) < 0)
		goto fail;
	return EXIT_SUCCESS;
fail:
	r = cli_error(&err);
	error_clear(&err);
	return r;
}
