/* cairn inspect IMAGE: manifest, config, provenance and tag history. */
#include "cli.h"

#include "../image/image.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_inspect = {
	.name = "inspect",
	.args = "IMAGE",
	.summary = "Show an image: id, tags, manifest, config, provenance, history",
	.help = "IMAGE is NAME[:TAG], an image id, or a unique prefix of one.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_inspect, argc, argv, 1, 1);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	char id[DIGEST_STR_LEN];
	struct state_image im = {0};
	struct image_manifest m = {0};
	struct state_tag *tags = NULL;
	size_t n_tags = 0;
	struct state_tag_event *hist = NULL;
	size_t n_hist = 0;
	json_t *o = NULL;
	_cleanup_free_ char *prov_text = NULL;
	json_t *prov = NULL;
	r = EXIT_FAILURE;
	if (cli_open_image(cli, argv[optind], false, &st, &store, id, &m, NULL, &err) < 0)
		goto fail;
	int q = state_image_get(st, id, &im, &err);
	if (q == -ENOENT) {
		error_set(&err, ENOENT, "image %s is not recorded in this store", id);
		goto fail;
	}
	if (q < 0 || state_tag_list(st, id, &tags, &n_tags, &err) < 0)
		goto fail;

	char created[48], tree[DIGEST_STR_LEN];
	format_time_iso(im.created_ns, created, sizeof(created));
	digest_to_string(&m.tree, tree);
	json_t *jtags = json_array();
	for (size_t i = 0; i < n_tags; i++) {
		json_array_append_new(jtags, json_sprintf("%s:%s", tags[i].name, tags[i].tag));
		/* History of every tag that points here now. */
		struct state_tag_event *h;
		size_t nh;
		if (state_tag_history(st, tags[i].name, tags[i].tag, &h, &nh, &err) < 0) {
			json_decref(jtags);
			goto fail;
		}
		hist = xreallocarray(hist, n_hist + nh, sizeof(*hist));
		memcpy(hist + n_hist, h, nh * sizeof(*h));
		n_hist += nh;
		free(h);
	}
	json_t *jhist = json_array();
	for (size_t i = 0; i < n_hist; i++) {
		char at[48];
		format_time_iso(hist[i].at_ns, at, sizeof(at));
		_cleanup_free_ char *t = xasprintf("%s:%s", hist[i].name, hist[i].tag);
		json_array_append_new(jhist, json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "at", at,
						       "tag", t, "image",
						       *hist[i].id ? hist[i].id : NULL, "previous",
						       *hist[i].previous ? hist[i].previous : NULL,
						       "why", hist[i].why));
	}
	o = json_pack("{s:s, s:o, s:s, s:s, s:I, s:I, s:{s:O, s:s, s:s}, s:o}", "id", id, "tags",
		      jtags, "created", created, "source", im.source, "size", (json_int_t)im.size,
		      "entries", (json_int_t)im.entries, "manifest", "config", m.config,
		      "mediaType", IMAGE_MEDIA_TYPE, "tree", tree, "history", jhist);
	if (!o)
		oom();
	/* How it was built, when it was. */
	q = state_build_latest(st, id, &prov_text, &err);
	if (q < 0 && q != -ENOENT)
		goto fail;
	if (q == 0 && (prov = json_loads(prov_text, 0, NULL)))
		json_object_set_new(o, "provenance", prov);
	if (cli->json) {
		print_json(o);
		o = NULL;
	} else {
		char size[32];
		format_size(im.size, size, sizeof(size));
		printf("Id:       %s\n", id);
		printf("Tags:    ");
		for (size_t i = 0; i < n_tags; i++)
			printf(" %s:%s", tags[i].name, tags[i].tag);
		printf("%s\n", n_tags ? "" : " <none>");
		printf("Created:  %s\n", created);
		printf("Source:   %s\n", im.source);
		printf("Size:     %s in %llu entries\n", size, (unsigned long long)im.entries);
		printf("Tree:     %s\n", tree);
		char *cfg = json_dumps(m.config, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("Config:   %s\n", cfg ? cfg : "{}");
		free(cfg);
		if (prov) {
			char *ps = json_dumps(prov, JSON_INDENT(2) | JSON_SORT_KEYS);
			printf("Provenance: %s\n", ps ? ps : "{}");
			free(ps);
		}
		printf("History:\n");
		for (size_t i = 0; i < n_hist; i++) {
			char at[32], sid[13] = "-", sprev[13] = "-";
			format_time(hist[i].at_ns, at, sizeof(at));
			if (*hist[i].id)
				format_short_id(hist[i].id, sid);
			if (*hist[i].previous)
				format_short_id(hist[i].previous, sprev);
			printf("  %s  %s:%s  %s -> %s  (%s)\n", at, hist[i].name, hist[i].tag,
			       sprev, sid, hist[i].why);
		}
	}
	r = EXIT_SUCCESS;
fail:
	if (r != EXIT_SUCCESS)
		r = cli_error(&err);
	json_decref(o);
	state_tag_events_free(hist, n_hist);
	state_tags_free(tags, n_tags);
	image_manifest_free(&m);
	state_image_free(&im);
	error_clear(&err);
	return r;
}
