/* Importing a tar archive (plain, gzip, zstd, xz, bzip2) with libarchive.
 * Nothing is ever extracted to a path: each entry becomes a tree entry and its
 * content an object, so an archive cannot write outside the store. Paths are
 * checked as they arrive ("..", absolute, too deep, too many, too big) and the
 * finished tree is validated, which refuses a path that goes through a symlink
 * ("l -> /etc", then "l/passwd") or a hardlink to anything but an earlier
 * regular file. */
#include "internal.h"

#include "../base/buf.h"

#include "archive_api.h"
#include <stdio.h>

struct path_map {
	size_t *slots; /* entry index + 1, 0 when free */
	size_t cap, n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static size_t *map_slot(struct path_map *m, const struct tree *t, const char *path)
{
	size_t i = fnv(path) & (m->cap - 1);
	while (m->slots[i] && !streq(t->entries[m->slots[i] - 1].path, path))
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static void map_put(struct path_map *m, const struct tree *t, size_t idx)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t *old = m->slots, oldcap = m->cap;
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				*map_slot(m, t, t->entries[old[i] - 1].path) = old[i];
		free(old);
	}
	size_t *slot = map_slot(m, t, t->entries[idx].path);
	if (!*slot)
		m->n++;
	*slot = idx + 1;
}

static ssize_t map_get(struct path_map *m, const struct tree *t, const char *path)
{
	if (!m->cap)
		return -1;
	size_t v = *map_slot(m, t, path);
	return v ? (ssize_t)v - 1 : -1;
}

struct tar_import {
	struct tree tree;
	struct path_map map;
	size_t *link_of; /* parallel to entries: index + 1 of the hardlink target */
	size_t link_cap;
	uint64_t bytes, headers, skipped;
	const struct import_limits *lim;
	struct store_txn *txn;
	struct cairn_error *err;
};

/* Canonical form of an archive path: "./" prefixes and one trailing slash go,
 * "." and "./" become the root. Returns a new string; err on absolute paths
 * and the problems tree_path_problem() names. */
static int tar_path(struct tar_import *ti, const char *raw, char **ret)
{
	if (!raw)
		return error_set(ti->err, EINVAL, "entry %llu has no name",
				 (unsigned long long)ti->headers);
	if (raw[0] == '/')
		return error_set(ti->err, EINVAL, "entry \"%s\": absolute path", raw);
	const char *p = raw;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	_cleanup_free_ char *path = xstrdup(p);
	size_t n = strlen(path);
	if (n > 0 && path[n - 1] == '/')
		path[--n] = 0;
	if (n == 0 || streq(path, ".")) {
		*ret = xstrdup(".");
		return 0;
	}
	int r = import_check_path(path, ti->lim, ti->headers, ti->err);
	if (r < 0) {
		if (!streq(path, raw))
			error_wrap(ti->err, "entry \"%s\"", raw);
		return r;
	}
	*ret = TAKE_PTR(path);
	return 0;
}

/* Linux's limits: a value of at most 64 KiB; names (tree_xattr_name_valid)
 * of at most 255 bytes in one of four namespaces. */
#define XATTR_VALUE_MAX 65536
#define XATTR_TOTAL_MAX (128u << 10)

static int tar_xattrs(struct tar_import *ti, struct archive_entry *ae, struct tree_entry *e)
{
	const char *name;
	const void *value;
	size_t size, total = 0;
	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !tree_xattr_name_valid(name))
			return error_set(ti->err, EINVAL,
					 "entry \"%s\": invalid xattr name (not user., trusted., "
					 "security. or system., or longer than 255)",
					 e->path);
		if (streq(name, "security.selinux"))
			continue;
		total += strlen(name) + size;
		if (size > XATTR_VALUE_MAX || total > XATTR_TOTAL_MAX)
			return error_set(ti->err, EFBIG, "entry \"%s\": xattrs larger than Linux allows",
					 e->path);
		ti->bytes += strlen(name) + size;
		if (ti->bytes > ti->lim->max_bytes)
			return error_set(ti->err, EFBIG,
					 "entry \"%s\": more than %llu bytes of content (the limit; see "
					 "--max-bytes)",
					 e->path, (unsigned long long)ti->lim->max_bytes);
		uint8_t *v = xmalloc(size + 1);
		if (size)
			memcpy(v, value, size);
		e->xattrs = xreallocarray(e->xattrs, e->n_xattrs + 1, sizeof(*e->xattrs));
		e->xattrs[e->n_xattrs++] = (struct xattr){xstrdup(name), v, size};
	}
	tree_entry_sort_xattrs(e);
	/* bsdtar writes each xattr twice (LIBARCHIVE.xattr and SCHILY.xattr):
	 * the same value twice is one xattr, two values are an error. */
	size_t out = 0;
	for (size_t i = 0; i < e->n_xattrs; i++) {
		struct xattr *x = &e->xattrs[i];
		if (out > 0 && streq(e->xattrs[out - 1].name, x->name)) {
			struct xattr *prev = &e->xattrs[out - 1];
			bool same = prev->len == x->len && memcmp(prev->value, x->value, x->len) == 0;
			free(x->name);
			free(x->value);
			if (!same) {
				for (size_t k = i + 1; k < e->n_xattrs; k++) {
					free(e->xattrs[k].name);
					free(e->xattrs[k].value);
				}
				e->n_xattrs = out;
				return error_set(ti->err, EINVAL,
						 "entry \"%s\": xattr %s given twice with different "
						 "values",
						 e->path, prev->name);
			}
			continue;
		}
		e->xattrs[out++] = *x;
	}
	e->n_xattrs = out;
	return 0;
}

/* Stream the current entry's data into the store (sparse holes as zeros). */
static int tar_content(struct tar_import *ti, struct archive *a, struct archive_entry *ae,
		       struct tree_entry *e)
{
	struct store_writer *w;
	int r = store_writer_new(ti->txn, &w);
	if (r < 0)
		return error_set(ti->err, -r, "staging \"%s\": %s", e->path, strerror(-r));
	uint64_t pos = 0;
	static const char zeros[65536];
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t offset;
		int ar = archive_read_data_block(a, &buf, &size, &offset);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = error_set(ti->err, EINVAL, "entry \"%s\": %s", e->path,
				      archive_error_string(a) ?: "cannot read data");
			goto fail;
		}
		uint64_t end = (uint64_t)offset + size;
		if (offset < 0 || (uint64_t)offset < pos || end < pos) {
			r = error_set(ti->err, EINVAL, "entry \"%s\": data blocks out of order",
				      e->path);
			goto fail;
		}
		if (ti->bytes + (end - pos) > ti->lim->max_bytes) {
			r = error_set(ti->err, EFBIG,
				      "entry \"%s\": more than %llu bytes of content (the limit; "
				      "see --max-bytes)",
				      e->path, (unsigned long long)ti->lim->max_bytes);
			goto fail;
		}
		while (pos < (uint64_t)offset) {
			size_t n = (uint64_t)offset - pos > sizeof(zeros) ? sizeof(zeros)
									: (size_t)((uint64_t)offset - pos);
			r = store_writer_write(w, zeros, n);
			if (r < 0)
				goto io;
			pos += n;
			ti->bytes += n;
		}
		r = store_writer_write(w, buf, size);
		if (r < 0)
			goto io;
		pos += size;
		ti->bytes += size;
	}
	/* A sparse file may end in a hole. */
	la_int64_t want = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
	if (want > 0 && (uint64_t)want > pos) {
		if (ti->bytes + ((uint64_t)want - pos) > ti->lim->max_bytes) {
			r = error_set(ti->err, EFBIG,
				      "entry \"%s\": more than %llu bytes of content (the limit; "
				      "see --max-bytes)",
				      e->path, (unsigned long long)ti->lim->max_bytes);
			goto fail;
		}
		while (pos < (uint64_t)want) {
			size_t n = (uint64_t)want - pos > sizeof(zeros) ? sizeof(zeros)
								      : (size_t)((uint64_t)want - pos);
			r = store_writer_write(w, zeros, n);
			if (r < 0)
				goto io;
			pos += n;
			ti->bytes += n;
		}
	}
	r = store_writer_finish(w, &e->digest, &e->size);
	if (r < 0)
		return error_set(ti->err, -r, "staging \"%s\": %s", e->path, strerror(-r));
	return 0;
io:
	error_set(ti->err, -r, "staging \"%s\": %s", e->path, strerror(-r));
fail:
	store_writer_abort(w);
	return r;
}

static int tar_entry(struct tar_import *ti, struct archive *a, struct archive_entry *ae)
{
	_cleanup_free_ char *path = NULL;
	int r = tar_path(ti, archive_entry_pathname(ae), &path);
	if (r < 0)
		return r;
	const char *hardlink = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);
	if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK) {
			ti->skipped++;
			return 0;
		}
		return error_set(ti->err, EINVAL, "entry \"%s\": unsupported file type 0%o", path,
				 (unsigned)type);
	}
	la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	if (uid < 0 || uid > (la_int64_t)UINT32_MAX - 1 || gid < 0 ||
	    gid > (la_int64_t)UINT32_MAX - 1)
		return error_set(ti->err, EINVAL, "entry \"%s\": uid or gid out of range", path);
	if (streq(path, ".") && (hardlink || type != AE_IFDIR))
		return error_set(ti->err, EINVAL, "entry \"%s\": the root must be a directory",
				 archive_entry_pathname(ae));

	struct tree_entry ne = {0};
	ne.path = TAKE_PTR(path);
	ne.mode = archive_entry_perm(ae) & 07777;
	ne.uid = (uint32_t)uid;
	ne.gid = (uint32_t)gid;
	size_t link_target = 0;
	if (hardlink) {
		_cleanup_free_ char *target = NULL;
		r = tar_path(ti, hardlink, &target);
		ssize_t t = r < 0 ? -1 : map_get(&ti->map, &ti->tree, target);
		if (r == 0 && (t < 0 || ti->tree.entries[t].type != ENTRY_FILE))
			r = error_set(ti->err, EINVAL,
				      "entry \"%s\": hardlink to \"%s\", which is not a regular "
				      "file earlier in the archive",
				      ne.path, hardlink);
		if (r < 0) {
			if (t >= 0 || !ti->err || !strstr(error_message(ti->err), "hardlink to"))
				error_wrap(ti->err, "entry \"%s\": hardlink target", ne.path);
			tree_entry_free(&ne);
			return r;
		}
		/* Names of one inode share its metadata. tar writes the xattrs
		 * only with the first name, so the others take the target's. */
		const struct tree_entry *te = &ti->tree.entries[t];
		ne.type = ENTRY_FILE;
		ne.digest = te->digest;
		ne.size = te->size;
		ne.mode = te->mode;
		ne.uid = te->uid;
		ne.gid = te->gid;
		link_target = (size_t)t + 1;
	} else if (type == AE_IFDIR) {
		ne.type = ENTRY_DIR;
	} else if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(ae);
		if (!target || !*target) {
			r = error_set(ti->err, EINVAL, "entry \"%s\": symlink without a target",
				      ne.path);
			tree_entry_free(&ne);
			return r;
		}
		ne.type = ENTRY_SYMLINK;
		ne.mode = 0777;
		ne.target = xstrdup(target);
	} else {
		ne.type = ENTRY_FILE;
		r = tar_content(ti, a, ae, &ne);
		if (r < 0) {
			tree_entry_free(&ne);
			return r;
		}
	}
	r = tar_xattrs(ti, ae, &ne);
	if (r < 0) {
		tree_entry_free(&ne);
		return r;
	}
	if (link_target && ne.n_xattrs == 0) {
		const struct tree_entry *te = &ti->tree.entries[link_target - 1];
		ne.xattrs = xcalloc(te->n_xattrs ? te->n_xattrs : 1, sizeof(*ne.xattrs));
		for (size_t i = 0; i < te->n_xattrs; i++) {
			const struct xattr *x = &te->xattrs[i];
			uint8_t *v = xmalloc(x->len + 1);
			memcpy(v, x->value, x->len);
			ne.xattrs[i] = (struct xattr){xstrdup(x->name), v, x->len};
		}
		ne.n_xattrs = te->n_xattrs;
	}
	/* A later entry for the same path replaces the earlier one, as when
	 * extracting. */
	ssize_t old = map_get(&ti->map, &ti->tree, ne.path);
	size_t idx;
	if (old >= 0) {
		idx = (size_t)old;
		tree_entry_free(&ti->tree.entries[idx]);
		ti->tree.entries[idx] = ne;
	} else {
		tree_add(&ti->tree);
		idx = ti->tree.n - 1;
		ti->tree.entries[idx] = ne;
		map_put(&ti->map, &ti->tree, idx);
	}
	ti->link_of = xgrow(ti->link_of, &ti->link_cap, ti->tree.n, sizeof(size_t));
	ti->link_of[idx] = link_target;
	return 0;
}

/* Directories an archive implies but does not list get 0755 root:root. */
static void tar_add_parents(struct tar_import *ti)
{
	size_t n = ti->tree.n;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = xstrdup(ti->tree.entries[i].path);
		char *slash;
		while ((slash = strrchr(p, '/'))) {
			*slash = 0;
			if (map_get(&ti->map, &ti->tree, p) >= 0)
				break;
			struct tree_entry *e = tree_add(&ti->tree);
			e->path = xstrdup(p);
			e->type = ENTRY_DIR;
			e->mode = 0755;
			map_put(&ti->map, &ti->tree, ti->tree.n - 1);
			ti->link_of = xgrow(ti->link_of, &ti->link_cap, ti->tree.n, sizeof(size_t));
			ti->link_of[ti->tree.n - 1] = 0;
		}
	}
	if (map_get(&ti->map, &ti->tree, ".") < 0) {
		struct tree_entry *e = tree_add(&ti->tree);
		e->path = xstrdup(".");
		e->type = ENTRY_DIR;
		e->mode = 0755;
		map_put(&ti->map, &ti->tree, ti->tree.n - 1);
		ti->link_of = xgrow(ti->link_of, &ti->link_cap, ti->tree.n, sizeof(size_t));
		ti->link_of[ti->tree.n - 1] = 0;
	}
}

/* Hardlink groups: every member names the group's first path in tree order,
 * as the directory import does, so a directory and a tar of it agree. */
static void tar_link_groups(struct tar_import *ti)
{
	size_t n = ti->tree.n;
	_cleanup_free_ size_t *root = xcalloc(n ? n : 1, sizeof(size_t));
	_cleanup_free_ size_t *first = xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		size_t r = i, steps = 0;
		while (ti->link_of[r] && steps++ < n)
			r = ti->link_of[r] - 1;
		root[i] = r;
		first[i] = (size_t)-1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t g = root[i];
		if (g == i && !ti->link_of[i])
			continue;
		if (first[g] == (size_t)-1)
			first[g] = g;
		if (tree_path_cmp(ti->tree.entries[i].path, ti->tree.entries[first[g]].path) < 0)
			first[g] = i;
	}
	for (size_t i = 0; i < n; i++) {
		size_t g = root[i];
		if (first[g] == (size_t)-1 || first[g] == i)
			continue;
		free(ti->tree.entries[i].link);
		ti->tree.entries[i].link = xstrdup(ti->tree.entries[first[g]].path);
	}
}

static void tar_import_free(struct tar_import *ti)
{
	tree_free(&ti->tree);
	free(ti->map.slots);
	free(ti->link_of);
}

static int tar_read(struct tar_import *ti, struct archive *a)
{
	for (;;) {
		struct archive_entry *ae;
		int ar = archive_read_next_header(a, &ae);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			const char *msg = archive_error_string(a);
			if (ti->headers == 0)
				return error_set(ti->err, EINVAL, "not a tar archive (%s)",
						 msg ?: "unrecognised format");
			return error_set(ti->err, EINVAL, "corrupt or truncated archive after %llu "
							  "entries: %s",
					 (unsigned long long)ti->headers, msg ?: "read error");
		}
		if (++ti->headers > ti->lim->max_entries)
			return error_set(ti->err, EFBIG,
					 "more than %llu entries (the limit; see --max-entries)",
					 (unsigned long long)ti->lim->max_entries);
		int r = tar_entry(ti, a, ae);
		if (r < 0)
			return r;
	}
	if (ti->headers == 0)
		return error_set(ti->err, EINVAL, "empty archive");
	tar_add_parents(ti);
	tar_link_groups(ti);
	tree_sort(&ti->tree);
	return tree_validate(&ti->tree, ti->err);
}

static struct archive *tar_reader(struct cairn_error *err)
{
	if (archive_api_load(err) < 0)
		return NULL;
	struct archive *a = archive_read_new();
	if (!a)
		oom();
	/* Only the compressions libarchive decodes itself: filter_all would also
	 * run external programs (lrzip, lzop, ...) chosen by the input's first
	 * bytes. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	return a;
}

int import_tar_fd(struct store *s, int fd, const json_t *config, const struct import_limits *lim,
		  struct import_result *ret, struct cairn_error *err)
{
	struct archive *a = tar_reader(err);
	if (!a)
		return -ELIBACC;
	if (archive_read_open_fd(a, fd, 1 << 17) != ARCHIVE_OK) {
		int r = error_set(err, EINVAL, "not a tar archive (%s)",
				  archive_error_string(a) ?: "cannot open");
		archive_read_free(a);
		return r;
	}
	struct store_txn *txn;
	int r = store_txn_begin(s, &txn, err);
	if (r < 0) {
		archive_read_free(a);
		return r;
	}
	struct tar_import ti = {.lim = lim, .txn = txn, .err = err};
	r = tar_read(&ti, a);
	const char *filter = archive_filter_count(a) > 1 ? archive_filter_name(a, 0) : NULL;
	ret->source_kind = filter && !streq(filter, "none") ? xasprintf("tar+%s", filter)
							   : xstrdup("tar");
	archive_read_free(a);
	if (r < 0) {
		store_txn_abort(txn);
		tar_import_free(&ti);
		return r;
	}
	ret->skipped = ti.skipped;
	ret->files_read = ti.headers;
	r = import_finish(txn, &ti.tree, config, ret, err);
	tar_import_free(&ti);
	return r;
}

int image_tar_from_memory(struct store_txn *txn, const void *data, size_t len,
			  const struct import_limits *limits, struct tree *ret,
			  uint64_t *ret_skipped, struct cairn_error *err)
{
	struct import_limits lim = {IMPORT_DEFAULT_MAX_BYTES, IMPORT_DEFAULT_MAX_ENTRIES,
				    IMPORT_DEFAULT_MAX_DEPTH};
	if (limits)
		lim = *limits;
	struct archive *a = tar_reader(err);
	if (!a)
		return -ELIBACC;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		int r = error_set(err, EINVAL, "not a tar archive (%s)",
				  archive_error_string(a) ?: "cannot open");
		archive_read_free(a);
		return r;
	}
	struct tar_import ti = {.lim = &lim, .txn = txn, .err = err};
	int r = tar_read(&ti, a);
	archive_read_free(a);
	if (r == 0) {
		*ret = ti.tree;
		ti.tree = (struct tree){0};
		if (ret_skipped)
			*ret_skipped = ti.skipped;
	}
	tar_import_free(&ti);
	return r;
}
