/* Trees: building, sorting, validating, and the canonical encoding. The
 * encoder is hand-written (key order fixed, sorted) because it runs on every
 * import, including the unchanged re-import that must take milliseconds; the
 * decoder uses jansson and is strict. */
#include "tree.h"

#include "../base/buf.h"

#include <jansson.h>
#include <stdio.h>

struct tree_entry *tree_add(struct tree *t)
{
	t->entries = xgrow(t->entries, &t->cap, t->n + 1, sizeof(*t->entries));
	struct tree_entry *e = &t->entries[t->n++];
	*e = (struct tree_entry){0};
	return e;
}

void tree_entry_free(struct tree_entry *e)
{
	free(e->path);
	free(e->target);
	free(e->link);
	for (size_t i = 0; i < e->n_xattrs; i++) {
		free(e->xattrs[i].name);
		free(e->xattrs[i].value);
	}
	free(e->xattrs);
	*e = (struct tree_entry){0};
}

void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		tree_entry_free(&t->entries[i]);
	free(t->entries);
	*t = (struct tree){0};
}

int tree_path_cmp(const char *a, const char *b)
{
	bool ra = streq(a, "."), rb = streq(b, ".");
	if (ra || rb)
		return (int)rb - (int)ra;
	return strcmp(a, b);
}

static int entry_cmp(const void *a, const void *b)
{
	return tree_path_cmp(((const struct tree_entry *)a)->path, ((const struct tree_entry *)b)->path);
}

void tree_sort(struct tree *t)
{
	if (t->n > 1)
		qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
}

const struct tree_entry *tree_find(const struct tree *t, const char *path)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = tree_path_cmp(t->entries[mid].path, path);
		if (c == 0)
			return &t->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

void tree_entry_sort_xattrs(struct tree_entry *e)
{
	if (e->n_xattrs > 1)
		qsort(e->xattrs, e->n_xattrs, sizeof(*e->xattrs), xattr_cmp);
}

const char *tree_path_problem(const char *path)
{
	if (streq(path, "."))
		return NULL;
	size_t len = strlen(path);
	if (len == 0)
		return "empty path";
	if (len >= TREE_MAX_PATH)
		return "path too long";
	if (path[0] == '/')
		return "absolute path";
	unsigned depth = 0;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0)
			return slash && slash[1] == 0 ? "trailing slash" : "empty path component";
		if (n == 1 && p[0] == '.')
			return "\".\" path component";
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "path escapes the root through \"..\"";
		if (++depth > TREE_MAX_DEPTH)
			return "path too deep";
		if (!slash)
			break;
		p = slash + 1;
	}
	return NULL;
}

static const char *type_name(enum entry_type t)
{
	switch (t) {
	case ENTRY_DIR:
		return "dir";
	case ENTRY_FILE:
		return "file";
	case ENTRY_SYMLINK:
		return "symlink";
	}
	return "?";
}

bool tree_xattr_name_valid(const char *name)
{
	static const char *const ns[] = {"user.", "trusted.", "security.", "system."};
	size_t n = strlen(name);
	if (n > 255 || !utf8_valid(name, n))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(ns); i++)
		if (startswith(name, ns[i]) && n > strlen(ns[i]))
			return true;
	return false;
}

int tree_validate(const struct tree *t, struct cairn_error *err)
{
	if (t->n == 0 || !streq(t->entries[0].path, ".") || t->entries[0].type != ENTRY_DIR)
		return error_set(err, EINVAL, "tree has no root directory");
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *e = &t->entries[i];
		const char *why = tree_path_problem(e->path);
		if (why)
			return error_set(err, EINVAL, "entry \"%s\": %s", e->path, why);
		if (i > 0 && tree_path_cmp(t->entries[i - 1].path, e->path) >= 0)
			return error_set(err, EINVAL, "entry \"%s\": duplicate or unsorted path",
					 e->path);
		if (e->mode & ~07777u)
			return error_set(err, EINVAL, "entry \"%s\": invalid mode", e->path);
		if (e->type == ENTRY_SYMLINK && (!e->target || !*e->target))
			return error_set(err, EINVAL, "entry \"%s\": symlink without a target",
					 e->path);
		for (size_t k = 0; k < e->n_xattrs; k++)
			if (!tree_xattr_name_valid(e->xattrs[k].name) ||
			    (k > 0 && strcmp(e->xattrs[k - 1].name, e->xattrs[k].name) >= 0))
				return error_set(err, EINVAL,
						 "entry \"%s\": invalid or repeated xattr name", e->path);
		if (i == 0)
			continue;
		/* The parent must be a directory in the tree: this is what stops a
		 * path from passing through a symlink ("l -> /etc", then "l/passwd"). */
		const char *slash = strrchr(e->path, '/');
		const struct tree_entry *parent;
		if (slash) {
			_cleanup_free_ char *pp = xstrndup(e->path, (size_t)(slash - e->path));
			parent = tree_find(t, pp);
			if (!parent)
				return error_set(err, EINVAL, "entry \"%s\": parent \"%s\" is missing",
						 e->path, pp);
			if (parent->type != ENTRY_DIR)
				return error_set(err, EINVAL,
						 "entry \"%s\": goes through %s \"%s\", not a directory",
						 e->path, type_name(parent->type), pp);
		}
		if (e->link) {
			const struct tree_entry *l = tree_find(t, e->link);
			if (e->type != ENTRY_FILE || !l || l->type != ENTRY_FILE || l->link ||
			    tree_path_cmp(l->path, e->path) >= 0 || !digest_eq(&l->digest, &e->digest))
				return error_set(err, EINVAL, "entry \"%s\": bad hardlink to \"%s\"",
						 e->path, e->link);
		}
	}
	return 0;
}

static void put_str_field(struct buf *b, const char *key, const char *val)
{
	size_t len = strlen(val);
	if (utf8_valid(val, len)) {
		buf_printf(b, ",\"%s\":", key);
		buf_put_json_string(b, val, len);
	} else {
		_cleanup_free_ char *hex = hex_encode(val, len);
		buf_printf(b, ",\"%s_hex\":\"%s\"", key, hex);
	}
}

void tree_encode(const struct tree *t, char **ret, size_t *ret_len)
{
	struct buf b = {0};
	buf_reserve(&b, t->n * 160 + 64);
	buf_puts(&b, "{\"entries\":[");
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *e = &t->entries[i];
		char dstr[DIGEST_STR_LEN];
		if (i)
			buf_putc(&b, ',');
		/* keys in sorted order: digest gid link mode path size target type uid xattrs */
		buf_putc(&b, '{');
		if (e->type == ENTRY_FILE) {
			digest_to_string(&e->digest, dstr);
			buf_puts(&b, "\"digest\":\"");
			buf_puts(&b, dstr);
			buf_puts(&b, "\",");
		}
		buf_puts(&b, "\"gid\":");
		buf_put_u64(&b, e->gid);
		if (e->link)
			put_str_field(&b, "link", e->link);
		buf_puts(&b, ",\"mode\":");
		buf_put_u64(&b, e->mode);
		put_str_field(&b, "path", e->path);
		if (e->type == ENTRY_FILE) {
			buf_puts(&b, ",\"size\":");
			buf_put_u64(&b, e->size);
		}
		if (e->type == ENTRY_SYMLINK)
			put_str_field(&b, "target", e->target);
		buf_puts(&b, ",\"type\":\"");
		buf_puts(&b, type_name(e->type));
		buf_puts(&b, "\",\"uid\":");
		buf_put_u64(&b, e->uid);
		if (e->n_xattrs) {
			buf_puts(&b, ",\"xattrs\":{");
			for (size_t k = 0; k < e->n_xattrs; k++) {
				_cleanup_free_ char *hex =
					hex_encode(e->xattrs[k].value, e->xattrs[k].len);
				if (k)
					buf_putc(&b, ',');
				buf_put_json_string(&b, e->xattrs[k].name,
						    strlen(e->xattrs[k].name));
				buf_putc(&b, ':');
				buf_put_json_string(&b, hex, strlen(hex));
			}
			buf_putc(&b, '}');
		}
		buf_putc(&b, '}');
	}
	buf_puts(&b, "],\"version\":1}");
	*ret_len = b.len;
	*ret = buf_steal(&b);
}

static int get_u32(json_t *o, const char *key, uint32_t *ret)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)json_integer_value(v);
	return 0;
}

/* A string field that may come as "key" (UTF-8) or "key_hex" (other bytes). */
static int get_str(json_t *o, const char *key, bool required, char **ret)
{
	json_t *v = json_object_get(o, key);
	_cleanup_free_ char *hexkey = xasprintf("%s_hex", key);
	json_t *h = json_object_get(o, hexkey);
	if (v && h)
		return -EINVAL;
	if (v) {
		if (!json_is_string(v) || memchr(json_string_value(v), 0, json_string_length(v)))
			return -EINVAL;
		*ret = xstrdup(json_string_value(v));
		return 0;
	}
	if (h) {
		uint8_t *raw;
		size_t n;
		if (!json_is_string(h) || hex_decode(json_string_value(h), &raw, &n) < 0)
			return -EINVAL;
		if (memchr(raw, 0, n) || utf8_valid((char *)raw, n)) {
			free(raw);
			return -EINVAL; /* non-canonical: must have been the plain key */
		}
		raw[n] = 0;
		*ret = (char *)raw;
		return 0;
	}
	return required ? -EINVAL : 0;
}

static int decode_entry(json_t *o, struct tree_entry *e)
{
	static const char *const known[] = {"digest", "gid",	"link",	      "link_hex",
					    "mode",   "path",	"path_hex",   "size",
					    "target", "target_hex", "type", "uid",
					    "xattrs"};
	const char *key;
	json_t *val;
	if (!json_is_object(o))
		return -EINVAL;
	json_object_foreach(o, key, val)
	{
		bool ok = false;
		for (size_t i = 0; i < ELEMENTSOF(known); i++)
			ok = ok || streq(key, known[i]);
		if (!ok)
			return -EINVAL;
	}
	if (get_str(o, "path", true, &e->path) < 0)
		return -EINVAL;
	const char *type = json_string_value(json_object_get(o, "type"));
	if (!type)
		return -EINVAL;
	if (streq(type, "dir"))
		e->type = ENTRY_DIR;
	else if (streq(type, "file"))
		e->type = ENTRY_FILE;
	else if (streq(type, "symlink"))
		e->type = ENTRY_SYMLINK;
	else
		return -EINVAL;
	if (get_u32(o, "mode", &e->mode) < 0 || get_u32(o, "uid", &e->uid) < 0 ||
	    get_u32(o, "gid", &e->gid) < 0)
		return -EINVAL;
	json_t *d = json_object_get(o, "digest"), *sz = json_object_get(o, "size");
	if (e->type == ENTRY_FILE) {
		if (!json_is_string(d) || digest_from_string(json_string_value(d), &e->digest) < 0)
			return -EINVAL;
		if (!json_is_integer(sz) || json_integer_value(sz) < 0)
			return -EINVAL;
		e->size = (uint64_t)json_integer_value(sz);
		if (get_str(o, "link", false, &e->link) < 0)
			return -EINVAL;
	} else if (d || sz || json_object_get(o, "link") || json_object_get(o, "link_hex"))
		return -EINVAL;
	if (e->type == ENTRY_SYMLINK) {
		if (get_str(o, "target", true, &e->target) < 0)
			return -EINVAL;
	} else if (json_object_get(o, "target") || json_object_get(o, "target_hex"))
		return -EINVAL;
	json_t *x = json_object_get(o, "xattrs");
	if (x) {
		if (!json_is_object(x) || json_object_size(x) == 0)
			return -EINVAL;
		e->xattrs = xcalloc(json_object_size(x), sizeof(*e->xattrs));
		json_object_foreach(x, key, val)
		{
			struct xattr *xa = &e->xattrs[e->n_xattrs++];
			xa->name = xstrdup(key);
			if (!json_is_string(val) ||
			    hex_decode(json_string_value(val), &xa->value, &xa->len) < 0)
				return -EINVAL;
		}
		tree_entry_sort_xattrs(e);
	}
	return 0;
}

int tree_decode(const char *data, size_t len, struct tree *ret, struct cairn_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return error_set(err, EINVAL, "tree: invalid JSON at line %d column %d: %s",
				 jerr.line, jerr.column, jerr.text);
	struct tree t = {0};
	int r = 0;
	json_t *entries = json_object_get(root, "entries");
	json_t *version = json_object_get(root, "version");
	if (!json_is_array(entries) || !json_is_integer(version) ||
	    json_integer_value(version) != 1 || json_object_size(root) != 2) {
		r = error_set(err, EINVAL, "tree: not a version 1 tree");
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(entries, i, o)
	{
		if (decode_entry(o, tree_add(&t)) < 0) {
			r = error_set(err, EINVAL, "tree: entry %zu is malformed", i);
			goto out;
		}
	}
	r = tree_validate(&t, err);
	if (r < 0) {
		error_wrap(err, "tree");
		goto out;
	}
	*ret = t;
	t = (struct tree){0};
out:
	tree_free(&t);
	json_decref(root);
	return r;
}

void tree_stats(const struct tree *t, uint64_t *ret_bytes, uint64_t *ret_files)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->entries[i].type == ENTRY_FILE && !t->entries[i].link)
			bytes += t->entries[i].size;
	*ret_bytes = bytes;
	*ret_files = t->n;
}

static bool xattrs_equal(const struct tree_entry *a, const struct tree_entry *b)
{
	if (a->n_xattrs != b->n_xattrs)
		return false;
	for (size_t i = 0; i < a->n_xattrs; i++)
		if (!streq(a->xattrs[i].name, b->xattrs[i].name) ||
		    a->xattrs[i].len != b->xattrs[i].len ||
		    memcmp(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].len) != 0)
			return false;
	return true;
}

bool tree_entry_same(const struct tree_entry *a, const struct tree_entry *b, char *out,
		     size_t outlen)
{
	struct buf w = {0};
	if (a->type != b->type) {
		buf_printf(&w, "type (%s -> %s)", type_name(a->type), type_name(b->type));
	} else {
		if (a->type == ENTRY_FILE &&
		    (a->size != b->size || !digest_eq(&a->digest, &b->digest)))
			buf_puts(&w, "content ");
		if (a->type == ENTRY_SYMLINK && !streq(a->target, b->target))
			buf_printf(&w, "target (%s -> %s) ", a->target, b->target);
		if (a->mode != b->mode && a->type != ENTRY_SYMLINK)
			buf_printf(&w, "mode (%04o -> %04o) ", a->mode, b->mode);
		if (a->uid != b->uid || a->gid != b->gid)
			buf_printf(&w, "owner (%u:%u -> %u:%u) ", a->uid, a->gid, b->uid, b->gid);
		if (!xattrs_equal(a, b))
			buf_puts(&w, "xattrs ");
	}
	bool same = w.len == 0;
	if (out && outlen) {
		if (w.len && w.data[w.len - 1] == ' ')
			w.data[--w.len] = 0;
		snprintf(out, outlen, "%s", w.len ? w.data : "");
	}
	buf_free(&w);
	return same;
}
