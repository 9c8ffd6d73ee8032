/* Editing trees in memory, as build steps do: copy a tree, resolve a path the
 * way the kernel would inside the image (symlinks followed, ".." stopping at
 * the root), apply a set of changes (removals, replacements, opaque
 * directories) in one pass, and repair hardlink groups that a change broke. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void xattrs_copy(const struct xattr *v, size_t n, struct xattr **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = n;
	if (!n)
		return;
	*ret = xcalloc(n, sizeof(**ret));
	for (size_t i = 0; i < n; i++) {
		(*ret)[i].name = xstrdup(v[i].name);
		(*ret)[i].len = v[i].len;
		(*ret)[i].value = xmalloc(v[i].len ? v[i].len : 1);
		if (v[i].len)
			memcpy((*ret)[i].value, v[i].value, v[i].len);
	}
}

void tree_entry_copy(struct tree_entry *dst, const struct tree_entry *src, const char *path)
{
	*dst = *src;
	dst->path = xstrdup(path ? path : src->path);
	dst->target = src->target ? xstrdup(src->target) : NULL;
	dst->link = src->link ? xstrdup(src->link) : NULL;
	xattrs_copy(src->xattrs, src->n_xattrs, &dst->xattrs, &dst->n_xattrs);
}

void tree_dup(const struct tree *src, struct tree *ret)
{
	*ret = (struct tree){0};
	if (!src->n)
		return;
	ret->entries = xcalloc(src->n, sizeof(*ret->entries));
	ret->cap = ret->n = src->n;
	for (size_t i = 0; i < src->n; i++)
		tree_entry_copy(&ret->entries[i], &src->entries[i], NULL);
}

/* --- resolving ------------------------------------------------------------- */

/* Components of a path being resolved: a stack of strings. */
struct comps {
	char **v;
	size_t n, cap;
};

static void comps_push(struct comps *c, const char *s, size_t len)
{
	c->v = xgrow(c->v, &c->cap, c->n + 1, sizeof(*c->v));
	c->v[c->n++] = xstrndup(s, len);
}

static void comps_free(struct comps *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	free(c->v);
	*c = (struct comps){0};
}

static char *comps_join(const struct comps *c, size_t n)
{
	if (n == 0)
		return xstrdup(".");
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(c->v[i]) + 1;
	char *s = xmalloc(len), *p = s;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = '/';
		p = stpcpy(p, c->v[i]);
	}
	return s;
}

int tree_resolve(const struct tree *t, const char *path, bool follow_last, char **ret,
		 struct cairn_error *err)
{
	/* todo: the remaining path, as a stack of components (last on top). */
	struct comps todo = {0}, done = {0};
	int r = 0;
	unsigned hops = 0;
	/* Push path's components in reverse so the first is on top. */
	{
		size_t len = strlen(path);
		size_t end = len;
		while (end > 0) {
			size_t start = end;
			while (start > 0 && path[start - 1] != '/')
				start--;
			if (end > start)
				comps_push(&todo, path + start, end - start);
			end = start ? start - 1 : 0;
		}
	}
	while (todo.n) {
		char *c = todo.v[--todo.n];
		if (streq(c, ".")) {
			free(c);
			continue;
		}
		if (streq(c, "..")) {
			free(c);
			if (done.n)
				free(done.v[--done.n]);
			continue;
		}
		done.v = xgrow(done.v, &done.cap, done.n + 1, sizeof(*done.v));
		done.v[done.n++] = c;
		bool last = todo.n == 0;
		if (last && !follow_last)
			break;
		_cleanup_free_ char *cur = comps_join(&done, done.n);
		const struct tree_entry *e = tree_find(t, cur);
		if (!e || e->type != ENTRY_SYMLINK)
			continue;
		if (++hops > 40) {
			r = error_set(err, ELOOP, "%s: too many levels of symbolic links", path);
			break;
		}
		free(done.v[--done.n]);
		const char *target = e->target;
		if (target[0] == '/') {
			while (done.n)
				free(done.v[--done.n]);
		}
		size_t len = strlen(target), end = len;
		while (end > 0) {
			size_t start = end;
			while (start > 0 && target[start - 1] != '/')
				start--;
			if (end > start)
				comps_push(&todo, target + start, end - start);
			end = start ? start - 1 : 0;
		}
	}
	if (r == 0)
		*ret = comps_join(&done, done.n);
	comps_free(&todo);
	comps_free(&done);
	return r;
}

char *path_clean(const char *path)
{
	struct comps c = {0};
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (c.n)
				free(c.v[--c.n]);
			continue;
		}
		comps_push(&c, s, n);
	}
	char *r = comps_join(&c, c.n);
	comps_free(&c);
	return r;
}

char *path_join(const char *dir, const char *name)
{
	if (streq(dir, "."))
		return xstrdup(name);
	if (streq(name, "."))
		return xstrdup(dir);
	return xasprintf("%s/%s", dir, name);
}

/* --- applying changes -------------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool strs_has(char **v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), str_cmp) != NULL;
}

void changes_free(struct changes *c)
{
	for (size_t i = 0; i < c->n_remove; i++)
		free(c->remove[i]);
	free(c->remove);
	for (size_t i = 0; i < c->n_clear; i++)
		free(c->clear[i]);
	free(c->clear);
	tree_free(&c->add);
	*c = (struct changes){0};
}

void changes_remove(struct changes *c, const char *path)
{
	c->remove = xrealloc(c->remove, (c->n_remove + 1) * sizeof(*c->remove));
	c->remove[c->n_remove++] = xstrdup(path);
}

void changes_clear(struct changes *c, const char *path)
{
	c->clear = xrealloc(c->clear, (c->n_clear + 1) * sizeof(*c->clear));
	c->clear[c->n_clear++] = xstrdup(path);
}

/* Repair hardlink groups: an entry whose "link" names a path that is gone,
 * changed, or no longer the same file joins the group's first surviving
 * member (which becomes the group's head). */
static void fix_links(struct tree *t)
{
	/* old head path -> new head path; few groups break, a list will do */
	struct remap {
		char *from, *to;
	} *map = NULL;
	size_t n_map = 0, cap_map = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct tree_entry *e = &t->entries[i];
		if (e->type != ENTRY_FILE || !e->link)
			continue;
		const struct tree_entry *h = tree_find(t, e->link);
		char what[256];
		if (h && h != e && h->type == ENTRY_FILE && !h->link &&
		    tree_path_cmp(h->path, e->path) < 0 && digest_eq(&h->digest, &e->digest) &&
		    h->mode == e->mode && h->uid == e->uid && h->gid == e->gid &&
		    tree_entry_same(h, e, what, sizeof(what)))
			continue;
		struct remap *m = NULL;
		for (size_t k = 0; k < n_map && !m; k++)
			if (streq(map[k].from, e->link))
				m = &map[k];
		if (m && m->to) {
			const struct tree_entry *nh = tree_find(t, m->to);
			if (nh && digest_eq(&nh->digest, &e->digest) &&
			    tree_entry_same(nh, e, what, sizeof(what))) {
				free(e->link);
				e->link = xstrdup(m->to);
				continue;
			}
		}
		if (!m) {
			map = xgrow(map, &cap_map, n_map + 1, sizeof(*map));
			m = &map[n_map++];
			m->from = xstrdup(e->link);
			m->to = NULL;
		}
		free(m->to);
		m->to = xstrdup(e->path);
		free(e->link);
		e->link = NULL;
	}
	for (size_t k = 0; k < n_map; k++) {
		free(map[k].from);
		free(map[k].to);
	}
	free(map);
}

int tree_apply(struct tree *t, struct changes *c, struct cairn_error *err)
{
	if (c->n_remove)
		qsort(c->remove, c->n_remove, sizeof(*c->remove), str_cmp);
	if (c->n_clear)
		qsort(c->clear, c->n_clear, sizeof(*c->clear), str_cmp);
	tree_sort(&c->add);
	struct tree out = {0};
	out.cap = t->n + c->add.n;
	out.entries = xcalloc(out.cap ? out.cap : 1, sizeof(*out.entries));
	for (size_t i = 0; i < t->n; i++) {
		struct tree_entry *e = &t->entries[i];
		bool drop = tree_find(&c->add, e->path) != NULL;
		if (!drop && !streq(e->path, "."))
			drop = strs_has(c->remove, c->n_remove, e->path);
		/* Every proper ancestor: removed, cleared (opaque), or replaced by
		 * something that is not a directory. */
		if (!drop && !streq(e->path, ".")) {
			_cleanup_free_ char *a = xstrdup(e->path);
			char *slash;
			while (!drop && (slash = strrchr(a, '/'))) {
				*slash = 0;
				const struct tree_entry *r = tree_find(&c->add, a);
				drop = strs_has(c->remove, c->n_remove, a) ||
				       strs_has(c->clear, c->n_clear, a) ||
				       (r && r->type != ENTRY_DIR);
			}
			if (!drop) {
				const struct tree_entry *r = tree_find(&c->add, ".");
				drop = strs_has(c->clear, c->n_clear, ".") ||
				       (r && r->type != ENTRY_DIR);
			}
		}
		if (drop)
			tree_entry_free(e);
		else
			out.entries[out.n++] = *e;
	}
	for (size_t i = 0; i < c->add.n; i++)
		out.entries[out.n++] = c->add.entries[i];
	free(c->add.entries);
	c->add = (struct tree){0};
	free(t->entries);
	*t = out;
	tree_sort(t);
	fix_links(t);
	return tree_validate(t, err);
}
