/* Manifests: {"config":{…},"mediaType":"…","tree":"sha256:…"} in canonical
 * JSON (jansson with sorted keys, compact). The image id is the sha256 of these
 * bytes. Also what an image reaches, for gc and fsck. */
#include "image.h"

void image_manifest_free(struct image_manifest *m)
{
	json_decref(m->config);
	m->config = NULL;
}

void image_manifest_encode(const struct image_manifest *m, char **ret, size_t *ret_len)
{
	char tree[DIGEST_STR_LEN];
	digest_to_string(&m->tree, tree);
	json_t *o = json_object();
	json_t *config = m->config ? json_incref(m->config) : json_object();
	if (!o || !config || json_object_set_new(o, "config", config) < 0 ||
	    json_object_set_new(o, "mediaType", json_string(IMAGE_MEDIA_TYPE)) < 0 ||
	    json_object_set_new(o, "tree", json_string(tree)) < 0)
		oom();
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		oom();
	*ret = s;
	*ret_len = strlen(s);
}

int image_manifest_decode(const char *data, size_t len, struct image_manifest *ret,
			  struct cairn_error *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return error_set(err, EINVAL, "manifest: invalid JSON at line %d column %d: %s",
				 jerr.line, jerr.column, jerr.text);
	int r = 0;
	json_t *config = json_object_get(o, "config");
	const char *mt = json_string_value(json_object_get(o, "mediaType"));
	const char *tree = json_string_value(json_object_get(o, "tree"));
	struct image_manifest m = {0};
	if (!json_is_object(o) || json_object_size(o) != 3)
		r = error_set(err, EINVAL, "manifest: expected exactly config, mediaType, tree");
	else if (!mt || !streq(mt, IMAGE_MEDIA_TYPE))
		r = error_set(err, EINVAL, "manifest: unsupported mediaType");
	else if (!json_is_object(config))
		r = error_set(err, EINVAL, "manifest: config is not an object");
	else if (!tree || digest_from_string(tree, &m.tree) < 0)
		r = error_set(err, EINVAL, "manifest: tree is not a sha256 digest");
	if (r == 0) {
		m.config = json_incref(config);
		*ret = m;
	}
	json_decref(o);
	return r;
}

int image_load(struct store *s, const struct digest *id, struct image_manifest *ret_manifest,
	       struct tree *ret_tree, struct cairn_error *err)
{
	char name[DIGEST_STR_LEN];
	digest_to_string(id, name);
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = store_read_object(s, id, &data, &len, err);
	if (r < 0)
		return error_wrap(err, "image %.19s", name);
	struct image_manifest m;
	r = image_manifest_decode(data, len, &m, err);
	if (r < 0)
		return error_wrap(err, "image %.19s", name);
	if (ret_tree) {
		_cleanup_free_ char *tdata = NULL;
		size_t tlen;
		r = store_read_object(s, &m.tree, &tdata, &tlen, err);
		if (r == 0)
			r = tree_decode(tdata, tlen, ret_tree, err);
		if (r < 0) {
			image_manifest_free(&m);
			return error_wrap(err, "image %.19s", name);
		}
	}
	if (ret_manifest)
		*ret_manifest = m;
	else
		image_manifest_free(&m);
	return 0;
}

int image_add_reachable(struct store *s, const struct digest *id, struct digest_set *set,
			struct cairn_error *err)
{
	struct image_manifest m;
	struct tree t = {0};
	int r = image_load(s, id, &m, &t, err);
	if (r < 0)
		return r;
	digest_set_add(set, id);
	digest_set_add(set, &m.tree);
	for (size_t i = 0; i < t.n; i++)
		if (t.entries[i].type == ENTRY_FILE)
			digest_set_add(set, &t.entries[i].digest);
	image_manifest_free(&m);
	tree_free(&t);
	return 0;
}

int image_add_tree_reachable(struct store *s, const struct digest *tree, struct digest_set *set,
			     struct cairn_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	struct tree t = {0};
	int r = store_read_object(s, tree, &data, &len, err);
	if (r == 0)
		r = tree_decode(data, len, &t, err);
	if (r < 0)
		return r;
	digest_set_add(set, tree);
	for (size_t i = 0; i < t.n; i++)
		if (t.entries[i].type == ENTRY_FILE)
			digest_set_add(set, &t.entries[i].digest);
	tree_free(&t);
	return 0;
}

size_t image_tree_diff(const struct tree *a, const struct tree *b,
		       void (*fn)(enum diff_kind kind, const char *path, const char *what, void *u),
		       void *u)
{
	size_t i = 0, j = 0, n = 0;
	char what[512];
	while (i < a->n || j < b->n) {
		int c;
		if (i == a->n)
			c = 1;
		else if (j == b->n)
			c = -1;
		else
			c = tree_path_cmp(a->entries[i].path, b->entries[j].path);
		if (c < 0) {
			fn(DIFF_REMOVED, a->entries[i++].path, "", u);
			n++;
		} else if (c > 0) {
			fn(DIFF_ADDED, b->entries[j++].path, "", u);
			n++;
		} else {
			if (!tree_entry_same(&a->entries[i], &b->entries[j], what, sizeof(what))) {
				fn(DIFF_CHANGED, a->entries[i].path, what, u);
				n++;
			}
			i++;
			j++;
		}
	}
	return n;
}
