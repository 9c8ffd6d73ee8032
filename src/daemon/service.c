/* The cairn.yml parser (service.h). libfyaml's events become a small tree of
 * our own, in which an alias shares its anchor's node and adds the node's
 * expanded size to a budget (so "billion laughs" fails cleanly); each
 * environment's overrides are merged into the top-level sections, and the
 * merged tree is decoded into struct service_config with one-line errors that
 * name the line and the field. The canonical JSON of a config, and its
 * sha256, name a release's configuration. */
#include "service.h"

#include "../base/buf.h"
#include "../base/fs.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>

/* --- an arena: everything of one parse or one resolve, freed at once ------ */

struct arena {
	void **p;
	size_t n, cap;
};

static void *arena_adopt(struct arena *a, void *p)
{
	a->p = xgrow(a->p, &a->cap, a->n + 1, sizeof(void *));
	a->p[a->n++] = p;
	return p;
}

static void *arena_alloc(struct arena *a, size_t size)
{
	return arena_adopt(a, xcalloc(1, size));
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	return arena_adopt(a, xstrndup(s, n));
}

_printf_(2, 3) static char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return arena_adopt(a, s);
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->p[i]);
	free(a->p);
	*a = (struct arena){0};
}

/* --- the document tree ------------------------------------------------------ */

enum ykind { Y_NULL, Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode;

struct yentry {
	const char *key;
	unsigned key_line;
	struct ynode *value;
	const char *origin; /* path of the map it was written in (for errors); NULL:
			       the map holding it (differs after a merge) */
};

struct ynode {
	enum ykind kind;
	unsigned line;
	bool quoted;	  /* Y_SCALAR: written in quotes or as a block scalar */
	const char *text; /* Y_SCALAR: NUL-terminated, valid UTF-8 */
	size_t len;
	struct ynode **items; /* Y_SEQ */
	size_t n_items;
	struct yentry *entries; /* Y_MAP, in file order, keys unique */
	size_t n_entries;
	struct yentry **sorted; /* Y_MAP, by key */
	uint64_t size;		/* nodes with every alias expanded (capped) */
};

struct service_doc {
	char *name;
	struct arena arena;
	struct ynode *root;
};

#define NODES_CAP ((uint64_t)SERVICE_NODES_MAX + 1)
#define ANCHORS_MAX 256u
#define KEY_SHOWN_MAX 64u

static uint64_t size_add(uint64_t a, uint64_t b)
{
	uint64_t r = a + b;
	return r < a || r > NODES_CAP ? NODES_CAP : r;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct yentry *x = *(const struct yentry *const *)a;
	const struct yentry *y = *(const struct yentry *const *)b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/* (Re)build m->sorted from m->entries; the previous index is left to the arena. */
static void map_index(struct arena *a, struct ynode *m)
{
	m->sorted = arena_alloc(a, (m->n_entries ? m->n_entries : 1) * sizeof(*m->sorted));
	for (size_t i = 0; i < m->n_entries; i++)
		m->sorted[i] = &m->entries[i];
	qsort(m->sorted, m->n_entries, sizeof(*m->sorted), entry_cmp);
}

static const struct yentry *map_get(const struct ynode *m, const char *key)
{
	size_t lo = 0, hi = m->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->sorted[mid]->key, key);
		if (c == 0)
			return m->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Append key to a path for messages: control bytes escaped, long keys cut. */
static void put_key(struct buf *b, const char *key)
{
	size_t i = 0;
	for (; i < KEY_SHOWN_MAX && key[i]; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
	while (key[i] && ((unsigned char)key[i] & 0xc0) == 0x80)
		buf_putc(b, key[i++]);
	if (key[i])
		buf_puts(b, "...");
}

/* --- YAML events into the tree ---------------------------------------------- */

struct anchor {
	char *name;
	struct ynode *node; /* NULL while the anchored node is being built */
};

struct builder {
	const char *name;
	struct fy_parser *fyp;
	struct fy_diag *diag;
	struct arena *arena;
	struct cairn_error *err;
	struct anchor anchors[ANCHORS_MAX];
	size_t n_anchors;
	uint64_t nodes;
	struct buf path; /* where in the document we are, for messages */
};

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

_printf_(3, 4) static int build_fail(struct builder *b, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	if (b->path.len)
		(void)error_set(b->err, EINVAL, "%s:%u: %s: %s", b->name, line, b->path.data, msg);
	else
		(void)error_set(b->err, EINVAL, "%s:%u: %s", b->name, line, msg);
	free(msg);
	return -EINVAL; /* visibly negative, for callers and analyzers */
}

/* The next event, or NULL with err set to libfyaml's first error. */
static struct fy_event *next_event(struct builder *b)
{
	struct fy_event *e = fy_parser_parse(b->fyp);
	if (e)
		return e;
	void *it = NULL;
	struct fy_diag_error *de;
	while ((de = fy_diag_errors_iterate(b->diag, &it)))
		if (de->type >= FYET_ERROR) {
			_cleanup_free_ char *msg = xstrdup(de->msg ? de->msg : "syntax error");
			for (char *c = msg; *c; c++)
				if ((unsigned char)*c < 0x20)
					*c = ' '; /* our errors are one line */
			error_set(b->err, EINVAL, "%s:%d:%d: invalid YAML: %s", b->name, de->line,
				  de->column, msg);
			return NULL;
		}
	error_set(b->err, EINVAL, "%s: invalid YAML: unexpected end of input", b->name);
	return NULL;
}

static unsigned event_line(struct fy_event *e, unsigned fallback)
{
	const struct fy_mark *m = fy_event_start_mark(e);
	return m && m->line >= 0 ? (unsigned)m->line + 1 : fallback;
}

static int count_nodes(struct builder *b, uint64_t n, unsigned line)
{
	b->nodes = size_add(b->nodes, n);
	if (b->nodes > SERVICE_NODES_MAX)
		return build_fail(b, line, "more than %u YAML nodes once aliases are expanded",
				  SERVICE_NODES_MAX);
	return 0;
}

static size_t path_push(struct builder *b, const char *key)
{
	size_t saved = b->path.len;
	if (saved)
		buf_putc(&b->path, '.');
	put_key(&b->path, key);
	return saved;
}

static size_t path_push_index(struct builder *b, size_t i)
{
	size_t saved = b->path.len;
	buf_printf(&b->path, "[%zu]", i);
	return saved;
}

static void path_pop(struct builder *b, size_t saved)
{
	b->path.len = saved;
	if (b->path.data)
		b->path.data[saved] = '\0';
}

static struct ynode *build_node(struct builder *b, struct fy_event *e, unsigned depth,
				unsigned fallback_line);

static struct ynode *build_alias(struct builder *b, struct fy_event *e, unsigned line)
{
	size_t len = 0;
	const char *t = fy_token_get_text(e->alias.anchor, &len);
	_cleanup_free_ char *name = xstrndup(t ? t : "", t ? len : 0);
	fy_parser_event_free(b->fyp, e);
	for (size_t i = b->n_anchors; i-- > 0;) {
		if (!streq(b->anchors[i].name, name))
			continue;
		struct ynode *n = b->anchors[i].node;
		if (!n) {
			build_fail(b, line, "alias *%.64s refers to the node that contains it",
				   name);
			return NULL;
		}
		if (count_nodes(b, n->size, line) < 0)
			return NULL;
		return n;
	}
	build_fail(b, line, "alias *%.64s: no anchor &%.64s before it", name, name);
	return NULL;
}

static struct ynode *build_scalar(struct builder *b, struct fy_event *e, unsigned line)
{
	struct fy_token *tok = e->scalar.value;
	size_t len = 0;
	const char *t = tok ? fy_token_get_text(tok, &len) : NULL;
	if (!t)
		t = "", len = 0;
	bool plain = fy_token_scalar_style(tok) == FYSS_PLAIN;
	if (!utf8_valid(t, len)) {
		fy_parser_event_free(b->fyp, e);
		build_fail(b, line, "not valid UTF-8 text, or a NUL character");
		return NULL;
	}
	struct ynode *n = arena_alloc(b->arena, sizeof(*n));
	n->line = line;
	n->size = 1;
	n->text = arena_strndup(b->arena, t, len);
	n->len = len;
	fy_parser_event_free(b->fyp, e);
	n->kind = Y_SCALAR;
	n->quoted = !plain;
	if (plain && (len == 0 || streq(n->text, "~") || streq(n->text, "null") ||
		      streq(n->text, "Null") || streq(n->text, "NULL")))
		n->kind = Y_NULL;
	return n;
}

static struct ynode *build_seq(struct builder *b, struct fy_event *e, unsigned line, unsigned depth)
{
	fy_parser_event_free(b->fyp, e);
	struct ynode *n = arena_alloc(b->arena, sizeof(*n));
	n->kind = Y_SEQ;
	n->line = line;
	n->size = 1;
	_cleanup_free_ struct ynode **items = NULL;
	size_t cap = 0;
	for (;;) {
		struct fy_event *ie = next_event(b);
		if (!ie)
			return NULL;
		if (ie->type == FYET_SEQUENCE_END) {
			fy_parser_event_free(b->fyp, ie);
			break;
		}
		size_t saved = path_push_index(b, n->n_items);
		struct ynode *item = build_node(b, ie, depth + 1, line);
		path_pop(b, saved);
		if (!item)
			return NULL;
		items = xgrow(items, &cap, n->n_items + 1, sizeof(*items));
		items[n->n_items++] = item;
		n->size = size_add(n->size, item->size);
	}
	n->items = items ? arena_adopt(b->arena, TAKE_PTR(items)) : NULL;
	return n;
}

/* Add the entries of the merge sources (the value of a "<<" key: a mapping or
 * a list of them) that n does not have; earlier sources win. *entries is the
 * array behind n->entries (cap entries). */
static int apply_merge(struct builder *b, struct ynode *n, struct yentry **entries, size_t *cap,
		       const struct ynode *src, unsigned line)
{
	size_t n_src = src->kind == Y_SEQ ? src->n_items : 1;
	for (size_t s = 0; s < n_src; s++) {
		const struct ynode *m = src->kind == Y_SEQ ? src->items[s] : src;
		if (m->kind != Y_MAP)
			return build_fail(b, line,
					  "<<: expected a mapping or a list of mappings to merge");
		/* n->sorted points into *entries: collect first, then grow */
		_cleanup_free_ const struct yentry **add = xcalloc(m->n_entries + 1, sizeof(*add));
		size_t n_add = 0;
		for (size_t i = 0; i < m->n_entries; i++) {
			if (map_get(n, m->entries[i].key))
				continue;
			if (count_nodes(b, 1 + m->entries[i].value->size, line) < 0)
				return -EINVAL;
			add[n_add++] = &m->entries[i];
		}
		if (n_add == 0)
			continue;
		*entries = xgrow(*entries, cap, n->n_entries + n_add, sizeof(**entries));
		for (size_t i = 0; i < n_add; i++) {
			(*entries)[n->n_entries++] = *add[i];
			n->size = size_add(n->size, 1 + add[i]->value->size);
		}
		n->entries = *entries;
		map_index(b->arena, n);
	}
	return 0;
}

static struct ynode *build_map(struct builder *b, struct fy_event *e, unsigned line, unsigned depth)
{
	fy_parser_event_free(b->fyp, e);
	struct ynode *n = arena_alloc(b->arena, sizeof(*n));
	n->kind = Y_MAP;
	n->line = line;
	n->size = 1;
	_cleanup_free_ struct yentry *entries = NULL;
	size_t cap = 0;
	const struct ynode *merge_src = NULL;
	unsigned merge_line = 0;
	for (;;) {
		struct fy_event *ke = next_event(b);
		if (!ke)
			return NULL;
		if (ke->type == FYET_MAPPING_END) {
			fy_parser_event_free(b->fyp, ke);
			break;
		}
		unsigned key_line = event_line(ke, line);
		if (ke->type != FYET_SCALAR || ke->scalar.anchor || ke->scalar.tag) {
			fy_parser_event_free(b->fyp, ke);
			build_fail(b, key_line,
				   "expected a plain string as key (not a list, mapping, alias, "
				   "anchor or tag)");
			return NULL;
		}
		struct ynode *k = build_scalar(b, ke, key_line);
		if (!k)
			return NULL;
		if (k->len == 0 || k->kind == Y_NULL) {
			build_fail(b, key_line, "expected a key, got an empty or null one");
			return NULL;
		}
		bool is_merge = !k->quoted && streq(k->text, "<<");
		if (count_nodes(b, 1, key_line) < 0)
			return NULL;
		struct fy_event *ve = next_event(b);
		if (!ve)
			return NULL;
		size_t saved = path_push(b, k->text);
		struct ynode *v = build_node(b, ve, depth + 1, key_line);
		if (!v)
			return NULL;
		if (is_merge) {
			if (merge_src) {
				build_fail(b, key_line, "duplicate key (first at line %u)",
					   merge_line);
				return NULL;
			}
			if (v->kind != Y_MAP && v->kind != Y_SEQ) {
				build_fail(b, key_line,
					   "expected a mapping or a list of mappings to merge");
				return NULL;
			}
			path_pop(b, saved);
			merge_src = v;
			merge_line = key_line;
			continue;
		}
		path_pop(b, saved);
		entries = xgrow(entries, &cap, n->n_entries + 1, sizeof(*entries));
		entries[n->n_entries++] =
		    (struct yentry){.key = k->text, .key_line = key_line, .value = v};
		n->size = size_add(n->size, 1 + v->size);
	}
	n->entries = entries;
	map_index(b->arena, n);
	for (size_t i = 1; i < n->n_entries; i++) {
		const struct yentry *first = n->sorted[i - 1], *dup = n->sorted[i];
		if (!streq(first->key, dup->key))
			continue;
		size_t saved = path_push(b, dup->key);
		build_fail(b, dup->key_line, "duplicate key (first at line %u)", first->key_line);
		path_pop(b, saved);
		return NULL;
	}
	if (merge_src && apply_merge(b, n, &entries, &cap, merge_src, merge_line) < 0)
		return NULL;
	n->entries = entries ? arena_adopt(b->arena, TAKE_PTR(entries)) : NULL;
	return n;
}

/* Build the node that starts with event e (which it takes). NULL on error. */
static struct ynode *build_node(struct builder *b, struct fy_event *e, unsigned depth,
				unsigned fallback_line)
{
	unsigned line = event_line(e, fallback_line);
	struct fy_token *anchor = NULL, *tag = NULL;
	switch (e->type) {
	case FYET_ALIAS:
		return build_alias(b, e, line);
	case FYET_SCALAR:
		anchor = e->scalar.anchor, tag = e->scalar.tag;
		break;
	case FYET_SEQUENCE_START:
		anchor = e->sequence_start.anchor, tag = e->sequence_start.tag;
		break;
	case FYET_MAPPING_START:
		anchor = e->mapping_start.anchor, tag = e->mapping_start.tag;
		break;
	default:
		fy_parser_event_free(b->fyp, e);
		build_fail(b, line, "unexpected YAML structure");
		return NULL;
	}
	if (tag) {
		fy_parser_event_free(b->fyp, e);
		build_fail(b, line,
			   "YAML tags (!!str, !foo) are not supported; quote the value "
			   "to make it a string");
		return NULL;
	}
	if (depth >= SERVICE_DEPTH_MAX) {
		fy_parser_event_free(b->fyp, e);
		build_fail(b, line, "nested deeper than %u levels", SERVICE_DEPTH_MAX);
		return NULL;
	}
	if (count_nodes(b, 1, line) < 0) {
		fy_parser_event_free(b->fyp, e);
		return NULL;
	}
	size_t slot = SIZE_MAX;
	if (anchor) {
		if (b->n_anchors == ANCHORS_MAX) {
			fy_parser_event_free(b->fyp, e);
			build_fail(b, line, "more than %u anchors", ANCHORS_MAX);
			return NULL;
		}
		size_t len = 0;
		const char *t = fy_token_get_text(anchor, &len);
		slot = b->n_anchors++;
		b->anchors[slot] = (struct anchor){.name = xstrndup(t ? t : "", t ? len : 0)};
	}
	struct ynode *n;
	if (e->type == FYET_SCALAR)
		n = build_scalar(b, e, line);
	else if (e->type == FYET_SEQUENCE_START)
		n = build_seq(b, e, line, depth);
	else
		n = build_map(b, e, line, depth);
	if (n && slot != SIZE_MAX)
		b->anchors[slot].node = n;
	return n;
}

static int expect_event(struct builder *b, enum fy_event_type type)
{
	struct fy_event *e = next_event(b);
	if (!e)
		return -EINVAL;
	enum fy_event_type got = e->type;
	unsigned line = event_line(e, 1);
	fy_parser_event_free(b->fyp, e);
	if (got == type)
		return 0;
	if (type == FYET_STREAM_END && got == FYET_DOCUMENT_START)
		return build_fail(b, line,
				  "only one YAML document is allowed (a second one "
				  "starts here)");
	return build_fail(b, line, "unexpected YAML structure");
}

/* YAML is UTF-8 here, without NUL. Checked before libfyaml sees the text: its
 * 0.7.12 scanner loops forever on an invalid byte in a directive line. */
static int check_utf8(const char *name, const char *text, size_t len, struct cairn_error *err)
{
	unsigned line = 1;
	for (size_t i = 0; i < len; line++) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		if (!utf8_valid(text + i, n))
			return error_set(
			    err, EINVAL,
			    "%s:%u: not valid UTF-8 text, or a NUL character (cairn.yml "
			    "is UTF-8)",
			    name, line);
		i += n + 1;
	}
	return 0;
}

static int build_document(struct service_doc *d, const char *text, size_t len,
			  struct cairn_error *err)
{
	int r = check_utf8(d->name, text, len, err);
	if (r < 0)
		return r;

	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	struct builder b = {.name = d->name, .arena = &d->arena, .err = err};
	b.diag = fy_diag_create(&dcfg);
	if (!b.diag)
		oom();
	fy_diag_set_collect_errors(b.diag, true);
	struct fy_parse_cfg cfg = {
	    .flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS | FYPCF_JSON_NONE,
	    .diag = b.diag,
	};
	r = -EINVAL;
	b.fyp = fy_parser_create(&cfg);
	if (!b.fyp)
		oom();
	if (fy_parser_set_string(b.fyp, len ? text : "", len) != 0) {
		error_set(err, EINVAL, "%s: cannot read the text", d->name);
		goto out;
	}
	if (expect_event(&b, FYET_STREAM_START) < 0)
		goto out;
	struct fy_event *e = next_event(&b);
	if (!e)
		goto out;
	if (e->type != FYET_DOCUMENT_START) {
		fy_parser_event_free(b.fyp, e);
		error_set(err, EINVAL,
			  "%s:1: empty file: expected a mapping with service, run and environments",
			  d->name);
		goto out;
	}
	fy_parser_event_free(b.fyp, e);
	e = next_event(&b);
	if (!e)
		goto out;
	d->root = build_node(&b, e, 0, 1);
	if (!d->root)
		goto out;
	if (expect_event(&b, FYET_DOCUMENT_END) < 0 || expect_event(&b, FYET_STREAM_END) < 0)
		goto out;
	r = 0;
out:
	for (size_t i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	buf_free(&b.path);
	fy_parser_destroy(b.fyp);
	fy_diag_destroy(b.diag);
	return r;
}

/* --- values: pure checks shared by the YAML and the JSON readers ------------ */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Service and environment names: [a-z0-9][a-z0-9-]{0,62}. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Environment variable names: [A-Za-z_][A-Za-z0-9_]*, at most 255. */
static bool valid_var_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255 || is_digit(s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Volume names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
static bool valid_volume_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || !(is_alpha(s[0]) || is_digit(s[0])))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* USER[:GROUP], each [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}. */
static bool valid_user(const char *s)
{
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		if (!(is_alpha(s[0]) || is_digit(s[0]) || s[0] == '_'))
			return false;
		while (s[n] && s[n] != ':') {
			if (!is_alpha(s[n]) && !is_digit(s[n]) && !strchr("_.-", s[n]))
				return false;
			n++;
		}
		if (n > 64)
			return false;
		if (!s[n])
			return true;
		s += n + 1;
	}
	return false;
}

/* An HTTP request path: '/' then printable ASCII or UTF-8, no spaces. */
static bool valid_http_path(const char *s)
{
	size_t n = strlen(s);
	if (s[0] != '/' || n > 1024)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool valid_arg0(const char *s)
{
	return *s != '\0';
}

/* Lexical path cleaning as Go's path.Clean: no empty or "." components, ".."
 * resolved where it can be. A new string. */
static char *path_clean(const char *p)
{
	bool rooted = p[0] == '/';
	size_t len = strlen(p);
	_cleanup_free_ char *out = xmalloc(len + 2);
	size_t o = 0, floor = 0; /* floor: where ".." can no longer back up */
	if (rooted)
		out[o++] = '/', floor = 1;
	for (size_t i = 0; i < len;) {
		while (p[i] == '/')
			i++;
		size_t start = i;
		while (i < len && p[i] != '/')
			i++;
		size_t n = i - start;
		if (n == 0 || (n == 1 && p[start] == '.'))
			continue;
		if (n == 2 && p[start] == '.' && p[start + 1] == '.') {
			if (o > floor) {
				while (o > floor && out[o - 1] != '/')
					o--;
				if (o > floor)
					o--;
				continue;
			}
			if (rooted)
				continue;
			/* a leading ".." of a relative path stays */
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, "..", 2);
			o += 2;
			floor = o;
			continue;
		}
		if (o > 0 && out[o - 1] != '/')
			out[o++] = '/';
		memcpy(out + o, p + start, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return TAKE_PTR(out);
}

/* A clean absolute path other than "/", or NULL. */
static char *abs_path(const char *s)
{
	if (s[0] != '/')
		return NULL;
	char *p = path_clean(s);
	if (streq(p, "/")) {
		free(p);
		return NULL;
	}
	return p;
}

/* A clean relative path (to the directory of cairn.yml), or NULL. */
static char *rel_path(const char *s)
{
	if (!*s || s[0] == '/')
		return NULL;
	return path_clean(s);
}

/* --- image references: the grammar of src/image/ref.c (daemon links only
 * base), giving "name:tag" with the tag filled in, or "sha256:<hex>". */

static bool ref_component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (is_lower_alnum(s[i]))
			continue;
		if (s[i] == '.' || s[i] == '-') {
			if (s[i] == '.' && (i + 1 >= n || !is_lower_alnum(s[i + 1])))
				return false;
			continue;
		}
		if (s[i] == '_') {
			if (i + 1 < n && s[i + 1] == '_')
				i++;
			if (i + 1 >= n || !is_lower_alnum(s[i + 1]))
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static bool ref_host_valid(const char *s, size_t n)
{
	size_t i = 0;
	for (; i < n && s[i] != ':'; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	if (i == 0)
		return false;
	if (i < n) {
		if (i + 1 == n)
			return false;
		for (size_t k = i + 1; k < n; k++)
			if (!is_digit(s[k]))
				return false;
	}
	return true;
}

static bool ref_tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(is_alpha(t[0]) || is_digit(t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha(t[i]) && !is_digit(t[i]) && !strchr("_.-", t[i]))
			return false;
	return true;
}

static bool image_is_id(const char *s)
{
	return startswith(s, DIGEST_PREFIX);
}

/* The canonical form of an image reference, or NULL when it is not one. */
static char *image_canonical(const char *ref)
{
	if (image_is_id(ref)) {
		struct digest d;
		if (digest_from_string(ref, &d) < 0)
			return NULL;
		char out[DIGEST_STR_LEN];
		digest_to_string(&d, out);
		return xstrdup(out);
	}
	if (!*ref || strchr(ref, '@'))
		return NULL;
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	size_t name_len = colon ? (size_t)(colon - ref) : strlen(ref);
	const char *tag = colon ? colon + 1 : "latest";
	if (name_len == 0 || name_len > 255 || !ref_tag_valid(tag))
		return NULL;
	const char *p = ref, *end = ref + name_len;
	for (bool first = true;; first = false) {
		const char *s = memchr(p, '/', (size_t)(end - p));
		size_t n = s ? (size_t)(s - p) : (size_t)(end - p);
		bool ok = ref_component_valid(p, n);
		if (!ok && first && s &&
		    (memchr(p, '.', n) || memchr(p, ':', n) ||
		     (n == 9 && !strncmp(p, "localhost", 9))))
			ok = ref_host_valid(p, n);
		if (!ok)
			return NULL;
		if (!s)
			break;
		p = s + 1;
	}
	return xasprintf("%.*s:%s", (int)name_len, ref, tag);
}

/* --- numbers -------------------------------------------------------------------- */

#define DURATION_MAX (8760LL * 3600 * 1000000000LL) /* a year */
#define SIZE_MAX_BYTES (1ull << 50)
#define SIZE_MIN_BYTES (1ull << 20)
#define CPU_MAX_MILLIS 1024000u
#define PIDS_MAX 4194304u
#define COUNT_MAX 1000u

/* Decimal digits only, no sign, no overflow. */
static bool parse_uint(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!is_digit(*s) || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return false;
	}
	*ret = v;
	return true;
}

/* A decimal "W[.F]" scaled by 10^decimals (at most that many decimals), whole
 * part at most max_whole; *end is left after it. */
static bool parse_fixed(const char *s, unsigned decimals, uint64_t max_whole, uint64_t *ret,
			const char **end)
{
	uint64_t whole = 0, frac = 0;
	bool digits = false;
	for (; is_digit(*s); s++) {
		whole = whole * 10 + (uint64_t)(*s - '0');
		digits = true;
		if (whole > max_whole)
			return false;
	}
	unsigned k = 0;
	if (*s == '.') {
		for (s++; is_digit(*s); s++, k++) {
			if (k == decimals)
				return false;
			frac = frac * 10 + (uint64_t)(*s - '0');
			digits = true;
		}
	}
	if (!digits)
		return false;
	for (; k < decimals; k++)
		frac *= 10;
	uint64_t scale = 1;
	for (unsigned i = 0; i < decimals; i++)
		scale *= 10;
	*ret = whole * scale + frac;
	*end = s;
	return true;
}

/* Go's time.ParseDuration grammar without a sign: "0", or one or more of
 * number (with an optional fraction) and unit (ns, us, µs, ms, s, m, h).
 * -EINVAL when malformed, -ERANGE above DURATION_MAX. */
static int parse_duration(const char *s, int64_t *ret)
{
	if (streq(s, "0")) {
		*ret = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	unsigned __int128 total = 0;
	while (*s) {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool digits = false;
		for (; is_digit(*s); s++) {
			if (whole > (uint64_t)DURATION_MAX)
				return -ERANGE;
			whole = whole * 10 + (uint64_t)(*s - '0');
			digits = true;
		}
		if (*s == '.')
			for (s++; is_digit(*s); s++) {
				digits = true;
				if (scale < 1000000000000000000ull) {
					frac = frac * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
			}
		if (!digits)
			return -EINVAL;
		uint64_t unit;
		if (startswith(s, "ns"))
			unit = 1, s += 2;
		else if (startswith(s, "us"))
			unit = 1000, s += 2;
		else if (startswith(s, "\xc2\xb5s") || startswith(s, "\xce\xbcs"))
			unit = 1000, s += 3;
		else if (startswith(s, "ms"))
			unit = 1000000, s += 2;
		else if (*s == 's')
			unit = 1000000000ull, s++;
		else if (*s == 'm')
			unit = 60 * 1000000000ull, s++;
		else if (*s == 'h')
			unit = 3600 * 1000000000ull, s++;
		else
			return -EINVAL;
		total += (unsigned __int128)whole * unit + (unsigned __int128)frac * unit / scale;
		if (total > (unsigned __int128)DURATION_MAX)
			return -ERANGE;
	}
	*ret = (int64_t)total;
	return 0;
}

/* A byte size: digits and an optional K, M, G or T (powers of 1024, also
 * written Ki, KB, KiB, lowercase too). */
static bool parse_size(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;
	for (; is_digit(*p); p++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return false;
	if (p == s)
		return false;
	unsigned shift = 0;
	if (*p) {
		switch (*p) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		case 't':
		case 'T':
			shift = 40;
			break;
		default:
			return false;
		}
		p++;
		if (*p == 'i')
			p++;
		if (*p == 'B' || *p == 'b')
			p++;
		if (*p)
			return false;
	}
	if (v > (SIZE_MAX_BYTES >> shift))
		return false;
	*ret = v << shift;
	return true;
}

/* CPUs as a decimal ("0.5", at most 3 decimals) or millicpus ("500m"). */
static bool parse_cpu(const char *s, uint64_t *ret)
{
	uint64_t v;
	const char *end;
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == 'm') {
		_cleanup_free_ char *digits = xstrndup(s, n - 1);
		if (!parse_uint(digits, &v))
			return false;
	} else if (!parse_fixed(s, 3, CPU_MAX_MILLIS / 1000, &v, &end) || *end) {
		return false;
	}
	if (v < 1 || v > CPU_MAX_MILLIS)
		return false;
	*ret = v;
	return true;
}

/* A rate from 0 to 1 ("0.01", at most 6 decimals) or a percent ("1%", at most
 * 4 decimals), in parts per million. */
static bool parse_rate(const char *s, uint32_t *ret)
{
	uint64_t v;
	const char *end;
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '%') {
		if (!parse_fixed(s, 4, 100, &v, &end) || end != s + n - 1)
			return false;
	} else if (!parse_fixed(s, 6, 1, &v, &end) || *end) {
		return false;
	}
	if (v > 1000000)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool parse_bool(const char *s, bool *ret)
{
	if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE"))
		*ret = true;
	else if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE"))
		*ret = false;
	else
		return false;
	return true;
}

/* IPV4:PORT, [IPV6]:PORT or :PORT into ret (host canonical, "" for any). */
static bool parse_addr(const char *s, struct service_addr *ret)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return false;
	uint64_t port;
	if (!parse_uint(colon + 1, &port) || port < 1 || port > 65535)
		return false;
	size_t hl = (size_t)(colon - s);
	char host[INET6_ADDRSTRLEN];
	if (hl == 0) {
		host[0] = '\0';
	} else if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return false;
		char in[INET6_ADDRSTRLEN];
		memcpy(in, s + 1, hl - 2);
		in[hl - 2] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, in, &a6) != 1 ||
		    !inet_ntop(AF_INET6, &a6, host, sizeof(host)))
			return false;
	} else {
		if (hl >= sizeof(host))
			return false;
		char in[INET6_ADDRSTRLEN];
		memcpy(in, s, hl);
		in[hl] = '\0';
		struct in_addr a4;
		if (inet_pton(AF_INET, in, &a4) != 1 ||
		    !inet_ntop(AF_INET, &a4, host, sizeof(host)))
			return false;
	}
	ret->host = xstrdup(host);
	ret->port = (uint16_t)port;
	return true;
}

static char *addr_string(const struct service_addr *a)
{
	if (!*a->host)
		return xasprintf(":%u", a->port);
	if (strchr(a->host, ':'))
		return xasprintf("[%s]:%u", a->host, a->port);
	return xasprintf("%s:%u", a->host, a->port);
}

static bool addr_is_any(const char *host)
{
	return !*host || streq(host, "0.0.0.0") || streq(host, "::");
}

/* Whether binding both would clash. */
static bool addr_overlap(const struct service_addr *a, const struct service_addr *b)
{
	return a->port && b->port && a->port == b->port &&
	       (streq(a->host, b->host) || addr_is_any(a->host) || addr_is_any(b->host));
}

static bool steps_valid(const uint32_t *steps, size_t n)
{
	if (n == 0 || steps[n - 1] != 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (steps[i] < 1 || steps[i] > 100 || (i > 0 && steps[i] <= steps[i - 1]))
			return false;
	return true;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int env_var_cmp(const void *a, const void *b)
{
	return strcmp(((const struct service_env_var *)a)->name,
		      ((const struct service_env_var *)b)->name);
}

static int volume_cmp(const void *a, const void *b)
{
	return strcmp(((const struct service_volume *)a)->name,
		      ((const struct service_volume *)b)->name);
}

static const char *const strategy_names[] = {"blue-green", "rolling", "canary"};
static const char *const mode_names[] = {"http", "tcp"};
static const char *const check_names[] = {"tcp", "http", "exec"};

/* --- the config ----------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct service_config *service_config_free(struct service_config *c)
{
	if (!c)
		return NULL;
	free(c->service);
	free(c->environment);
	free(c->image);
	free(c->build_context);
	free(c->build_dockerfile);
	strv_free(c->run.command, c->run.n_command);
	for (size_t i = 0; i < c->run.n_env; i++) {
		free(c->run.env[i].name);
		free(c->run.env[i].value);
	}
	free(c->run.env);
	strv_free(c->run.secrets, c->run.n_secrets);
	for (size_t i = 0; i < c->run.n_volumes; i++) {
		free(c->run.volumes[i].name);
		free(c->run.volumes[i].path);
	}
	free(c->run.volumes);
	free(c->run.user);
	free(c->run.workdir);
	free(c->health.http_path);
	strv_free(c->health.exec, c->health.n_exec);
	free(c->deploy.canary.steps);
	free(c->listen.host);
	free(c->admin.host);
	free(c);
	return NULL;
}

/* A config with every default filled in (and nothing that must be given). */
static struct service_config *config_new(void)
{
	struct service_config *c = xcalloc(1, sizeof(*c));
	c->run.mode = SERVICE_MODE_HTTP;
	c->health = (struct service_health){
	    .check = SERVICE_CHECK_TCP,
	    .interval_ns = 1000000000LL,
	    .timeout_ns = 1000000000LL,
	    .start_period_ns = 0,
	    .healthy_after = 1,
	    .unhealthy_after = 3,
	};
	c->deploy = (struct service_deploy){
	    .strategy = SERVICE_STRATEGY_BLUE_GREEN,
	    .max_surge = 1,
	    .drain_timeout_ns = 10 * 1000000000LL,
	    .deploy_timeout_ns = 60 * 1000000000LL,
	    .keep_previous = 1,
	    .keep_previous_running = true,
	};
	c->deploy.canary.n_steps = 3;
	c->deploy.canary.steps = xmalloc(3 * sizeof(uint32_t));
	c->deploy.canary.steps[0] = 10;
	c->deploy.canary.steps[1] = 50;
	c->deploy.canary.steps[2] = 100;
	c->deploy.canary.pause_ns = 5 * 1000000000LL;
	c->deploy.canary.max_error_rate_ppm = 10000;
	c->deploy.canary.min_requests = 20;
	c->replicas = 1;
	c->admin.host = xstrdup("");
	return c;
}

/* --- decoding the merged tree --------------------------------------------------- */

struct walk {
	const char *name;
	struct arena *arena; /* scratch of this resolve */
	struct cairn_error *err;
};

/* A value being decoded, and how errors name it. */
struct field {
	const struct ynode *node; /* NULL: not given (absent, or null) */
	const char *path;
	unsigned line;
	bool present; /* the key is there, perhaps with a null value */
};

static const char *join(struct walk *w, const char *parent, const char *key)
{
	struct buf b = {0};
	if (*parent) {
		buf_puts(&b, parent);
		buf_putc(&b, '.');
	}
	put_key(&b, key);
	return arena_adopt(w->arena, buf_steal(&b));
}

/* What a node is, for "got ..." in messages: a quoted, escaped, cut scalar. */
static const char *describe(struct walk *w, const struct ynode *n)
{
	if (!n || n->kind == Y_NULL)
		return "nothing";
	if (n->kind == Y_MAP)
		return "a mapping";
	if (n->kind == Y_SEQ)
		return "a list";
	struct buf b = {0};
	buf_putc(&b, '"');
	size_t i = 0;
	for (; i < n->len && i < 48; i++) {
		unsigned char c = (unsigned char)n->text[i];
		if (c == '"' || c == '\\')
			buf_printf(&b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_printf(&b, "\\x%02x", c);
		else
			buf_putc(&b, (char)c);
	}
	while (i < n->len && ((unsigned char)n->text[i] & 0xc0) == 0x80)
		buf_putc(&b, n->text[i++]);
	if (i < n->len)
		buf_puts(&b, "...");
	buf_putc(&b, '"');
	return arena_adopt(w->arena, buf_steal(&b));
}

_printf_(3, 4) static int fail(struct walk *w, const struct field *f, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	if (*f->path)
		(void)error_set(w->err, EINVAL, "%s:%u: %s: %s", w->name, f->line, f->path, msg);
	else
		(void)error_set(w->err, EINVAL, "%s:%u: %s", w->name, f->line, msg);
	free(msg);
	return -EINVAL; /* visibly negative, for callers and analyzers */
}

static struct field entry_field(struct walk *w, const struct field *parent, const struct yentry *e)
{
	struct field f = {
	    .path = join(w, e->origin ? e->origin : parent->path, e->key),
	    .present = true,
	};
	if (e->value->kind != Y_NULL)
		f.node = e->value;
	f.line = e->value->kind == Y_SCALAR ? e->value->line : e->key_line;
	return f;
}

/* The value of key in the mapping parent (which may be not given). */
static struct field child(struct walk *w, const struct field *parent, const char *key)
{
	const struct yentry *e = parent->node ? map_get(parent->node, key) : NULL;
	if (e)
		return entry_field(w, parent, e);
	return (struct field){.path = join(w, parent->path, key), .line = parent->line};
}

static struct field item_field(struct walk *w, const struct field *list, size_t i)
{
	const struct ynode *n = list->node->items[i];
	return (struct field){
	    .node = n->kind == Y_NULL ? NULL : n,
	    .path = arena_printf(w->arena, "%s[%zu]", list->path, i),
	    .line = n->line,
	    .present = true,
	};
}

/* f must be a mapping whose keys are all in keys (NULL-terminated); with
 * allow_x, keys starting with "x-" are allowed too. */
static int expect_map(struct walk *w, const struct field *f, const char *expected,
		      const char *const *keys, bool allow_x)
{
	if (f->node->kind != Y_MAP)
		return fail(w, f, "expected %s, got %s", expected, describe(w, f->node));
	for (size_t i = 0; i < f->node->n_entries; i++) {
		const struct yentry *e = &f->node->entries[i];
		bool known = allow_x && startswith(e->key, "x-");
		for (size_t k = 0; keys[k] && !known; k++)
			known = streq(e->key, keys[k]);
		if (known)
			continue;
		struct buf list = {0};
		for (size_t k = 0; keys[k]; k++)
			buf_printf(&list, "%s%s", k ? ", " : "", keys[k]);
		struct field kf = entry_field(w, f, e);
		kf.line = e->key_line;
		int r = fail(w, &kf, "unknown key (expected one of: %s)", list.data);
		buf_free(&list);
		return r;
	}
	return 0;
}

static int get_text(struct walk *w, const struct field *f, const char *expected,
		    bool (*valid)(const char *), const char **ret)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SCALAR || (valid && !valid(f->node->text)))
		return fail(w, f, "expected %s, got %s", expected, describe(w, f->node));
	*ret = f->node->text;
	return 0;
}

static int get_uint(struct walk *w, const struct field *f, uint64_t min, uint64_t max,
		    uint64_t *ret)
{
	uint64_t v;
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SCALAR || !parse_uint(f->node->text, &v) || v < min || v > max)
		return fail(w, f, "expected an integer from %" PRIu64 " to %" PRIu64 ", got %s",
			    min, max, describe(w, f->node));
	*ret = v;
	return 0;
}

static int get_u32(struct walk *w, const struct field *f, uint32_t min, uint32_t max, uint32_t *ret)
{
	uint64_t v = *ret;
	int r = get_uint(w, f, min, max, &v);
	*ret = (uint32_t)v;
	return r;
}

static int get_bool(struct walk *w, const struct field *f, bool *ret)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SCALAR || !parse_bool(f->node->text, ret))
		return fail(w, f, "expected true or false, got %s", describe(w, f->node));
	return 0;
}

static int get_duration(struct walk *w, const struct field *f, bool zero_ok, int64_t *ret)
{
	int64_t v;
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SCALAR || parse_duration(f->node->text, &v) < 0 ||
	    (!zero_ok && v == 0))
		return fail(w, f,
			    "expected a duration like 500ms, 1s or 1m30s (%sat most 8760h), "
			    "got %s",
			    zero_ok ? "" : "above 0, ", describe(w, f->node));
	*ret = v;
	return 0;
}

static int get_enum(struct walk *w, const struct field *f, const char *const *names, size_t n,
		    unsigned *ret)
{
	if (!f->node)
		return 0;
	if (f->node->kind == Y_SCALAR)
		for (size_t i = 0; i < n; i++)
			if (streq(f->node->text, names[i])) {
				*ret = (unsigned)i;
				return 0;
			}
	struct buf list = {0};
	for (size_t i = 0; i < n; i++)
		buf_printf(&list, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	int r = fail(w, f, "expected %s, got %s", list.data, describe(w, f->node));
	buf_free(&list);
	return r;
}

/* A non-empty list of strings (scalars taken as their text); item 0 must pass
 * valid0. *ret untouched when not given. */
static int get_argv(struct walk *w, const struct field *f, const char *expected,
		    bool (*valid0)(const char *), char ***ret, size_t *ret_n)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SEQ || f->node->n_items == 0)
		return fail(w, f, "expected %s, got %s", expected,
			    f->node->kind == Y_SEQ ? "an empty list" : describe(w, f->node));
	size_t n = f->node->n_items;
	char **v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct field it = item_field(w, f, i);
		if (!it.node || it.node->kind != Y_SCALAR || (i == 0 && !valid0(it.node->text))) {
			strv_free(v, n);
			return fail(w, &it, "expected %s, got %s",
				    i == 0 ? "a program to run" : "a string", describe(w, it.node));
		}
		v[i] = xstrdup(it.node->text);
	}
	strv_free(*ret, *ret_n);
	*ret = v;
	*ret_n = n;
	return 0;
}

static const char *const top_keys[] = {"service", "build",  "image",	    "run",
				       "health",  "deploy", "environments", NULL};
static const char *const env_keys[] = {"replicas", "listen", "admin",  "image",	 "build",
				       "run",	   "health", "deploy", "canary", NULL};
static const char *const build_keys[] = {"dockerfile", "context", NULL};
static const char *const run_keys[] = {"command",   "port", "env",     "secrets", "volumes",
				       "resources", "user", "workdir", "mode",	  NULL};
static const char *const volume_keys[] = {"path", "single_writer", "read_only", NULL};
static const char *const resources_keys[] = {"memory", "pids", "cpu", NULL};
static const char *const health_keys[] = {
    "http",	    "tcp", "exec", "interval", "timeout", "healthy_after", "unhealthy_after",
    "start_period", NULL};
static const char *const probe_keys[] = {"http", "tcp", "exec"};
static const char *const deploy_keys[] = {"strategy",	   "max_surge",
					  "drain_timeout", "deploy_timeout",
					  "keep_previous", "keep_previous_running",
					  "canary",	   NULL};
static const char *const canary_keys[] = {"steps", "pause", "max_error_rate", "min_requests", NULL};

static int decode_build(struct walk *w, const struct field *f, struct service_config *c)
{
	if (!f->node)
		return 0;
	static const char rel[] = "a path relative to the directory of cairn.yml";
	struct field ctx = *f, df = {0};
	if (f->node->kind != Y_SCALAR) {
		int r = expect_map(w, f,
				   "a mapping with dockerfile and context, or the context "
				   "directory",
				   build_keys, false);
		if (r < 0)
			return r;
		ctx = child(w, f, "context");
		df = child(w, f, "dockerfile");
	}
	const char *t = ".";
	int r = get_text(w, &ctx, rel, NULL, &t);
	if (r < 0)
		return r;
	char *context = rel_path(t);
	if (!context)
		return fail(w, &ctx, "expected %s, got %s", rel, describe(w, ctx.node));
	c->build = true;
	c->build_context = context;
	if (df.node) {
		r = get_text(w, &df, rel, NULL, &t);
		if (r < 0)
			return r;
		c->build_dockerfile = rel_path(t);
		if (!c->build_dockerfile)
			return fail(w, &df, "expected %s, got %s", rel, describe(w, df.node));
	} else {
		_cleanup_free_ char *p = xasprintf("%s/Dockerfile", context);
		c->build_dockerfile = path_clean(p);
	}
	return 0;
}

static int decode_env_vars(struct walk *w, const struct field *f, struct service_run *run)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_MAP)
		return fail(w, f, "expected a mapping of NAME: value, got %s",
			    describe(w, f->node));
	run->env = xcalloc(f->node->n_entries ? f->node->n_entries : 1, sizeof(*run->env));
	for (size_t i = 0; i < f->node->n_entries; i++) {
		const struct yentry *e = &f->node->entries[i];
		if (!valid_var_name(e->key)) {
			struct field vf = entry_field(w, f, e);
			vf.line = e->key_line;
			return fail(w, &vf,
				    "expected a variable name of letters, digits and '_', not "
				    "starting with a digit");
		}
		if (e->value->kind == Y_NULL)
			continue;
		if (e->value->kind != Y_SCALAR) {
			struct field vf = entry_field(w, f, e);
			return fail(w, &vf, "expected a string, got %s", describe(w, vf.node));
		}
		run->env[run->n_env].name = xstrdup(e->key);
		run->env[run->n_env++].value = xstrdup(e->value->text);
	}
	qsort(run->env, run->n_env, sizeof(*run->env), env_var_cmp);
	return 0;
}

/* A name with where it came from, to find duplicates by sorting. */
struct named {
	const char *name;
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The first (by index) of two entries of v with the same name, or SIZE_MAX. */
static size_t find_duplicate(struct named *v, size_t n, size_t *ret_first)
{
	qsort(v, n, sizeof(*v), named_cmp);
	size_t dup = SIZE_MAX;
	for (size_t i = 1; i < n; i++)
		if (streq(v[i - 1].name, v[i].name) && v[i].index < dup) {
			dup = v[i].index;
			*ret_first = v[i - 1].index;
		}
	return dup;
}

static bool env_has(const struct service_run *run, const char *name)
{
	struct service_env_var key = {.name = (char *)name};
	if (run->n_env == 0)
		return false; /* run->env may be NULL, which bsearch must not get */
	return bsearch(&key, run->env, run->n_env, sizeof(*run->env), env_var_cmp) != NULL;
}

/* After decode_env_vars (run->env sorted). */
static int decode_secrets(struct walk *w, const struct field *f, struct service_run *run)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_SEQ)
		return fail(w, f, "expected a list of variable names, got %s",
			    describe(w, f->node));
	size_t n = f->node->n_items;
	_cleanup_free_ struct named *names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		struct field it = item_field(w, f, i);
		if (!it.node || it.node->kind != Y_SCALAR || !valid_var_name(it.node->text))
			return fail(w, &it,
				    "expected a variable name of letters, digits and '_', not "
				    "starting with a digit, got %s",
				    describe(w, it.node));
		if (env_has(run, it.node->text))
			return fail(w, &it,
				    "%s is also set in run.env (a variable is a secret or "
				    "not)",
				    it.node->text);
		names[i] = (struct named){.name = it.node->text, .index = i};
	}
	size_t first = 0, dup = find_duplicate(names, n, &first);
	if (dup != SIZE_MAX) {
		struct field it = item_field(w, f, dup);
		return fail(w, &it, "%s is listed twice (also at line %u)",
			    f->node->items[dup]->text, f->node->items[first]->line);
	}
	run->secrets = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		run->secrets[run->n_secrets++] = xstrdup(names[i].name);
	return 0;
}

static int decode_volumes(struct walk *w, const struct field *f, struct service_run *run)
{
	if (!f->node)
		return 0;
	if (f->node->kind != Y_MAP)
		return fail(w, f, "expected a mapping of name: /path, got %s",
			    describe(w, f->node));
	size_t n = f->node->n_entries;
	run->volumes = xcalloc(n + 1, sizeof(*run->volumes));
	_cleanup_free_ struct field *paths = xcalloc(n + 1, sizeof(*paths));
	_cleanup_free_ struct named *byp = xcalloc(n + 1, sizeof(*byp));
	static const char abs[] = "an absolute path other than /";
	for (size_t i = 0; i < n; i++) {
		const struct yentry *e = &f->node->entries[i];
		struct field vf = entry_field(w, f, e);
		if (!valid_volume_name(e->key)) {
			vf.line = e->key_line;
			return fail(w, &vf,
				    "expected a volume name of letters, digits, '_', '.' "
				    "and '-' (up to 64, starting with a letter or digit)");
		}
		if (!vf.node)
			continue;
		struct service_volume *v = &run->volumes[run->n_volumes];
		struct field pf = vf;
		if (vf.node->kind != Y_SCALAR) {
			int r = expect_map(w, &vf,
					   "/path or a mapping with path, single_writer, read_only",
					   volume_keys, false);
			if (r < 0)
				return r;
			pf = child(w, &vf, "path");
			if (!pf.node)
				return fail(w, &pf, "required: where the volume is mounted, %s",
					    abs);
			struct field sw = child(w, &vf, "single_writer");
			struct field ro = child(w, &vf, "read_only");
			if ((r = get_bool(w, &sw, &v->single_writer)) < 0 ||
			    (r = get_bool(w, &ro, &v->read_only)) < 0)
				return r;
		}
		if (pf.node->kind != Y_SCALAR || !(v->path = abs_path(pf.node->text)))
			return fail(w, &pf, "expected %s, got %s", abs, describe(w, pf.node));
		v->name = xstrdup(e->key);
		paths[run->n_volumes] = pf;
		byp[run->n_volumes] = (struct named){.name = v->path, .index = run->n_volumes};
		run->n_volumes++;
	}
	size_t first = 0, dup = find_duplicate(byp, run->n_volumes, &first);
	if (dup != SIZE_MAX)
		return fail(w, &paths[dup], "%s is also the path of volume %s",
			    run->volumes[dup].path, run->volumes[first].name);
	qsort(run->volumes, run->n_volumes, sizeof(*run->volumes), volume_cmp);
	return 0;
}

static int decode_resources(struct walk *w, const struct field *f, struct service_run *run)
{
	if (!f->node)
		return 0;
	int r = expect_map(w, f, "a mapping with memory, pids, cpu", resources_keys, false);
	if (r < 0)
		return r;
	struct field mem = child(w, f, "memory"), pids = child(w, f, "pids"),
		     cpu = child(w, f, "cpu");
	if (mem.node &&
	    (mem.node->kind != Y_SCALAR || !parse_size(mem.node->text, &run->memory_bytes) ||
	     run->memory_bytes < SIZE_MIN_BYTES))
		return fail(w, &mem, "expected a size like 64M or 1G (from 1M to 1024T), got %s",
			    describe(w, mem.node));
	if ((r = get_uint(w, &pids, 1, PIDS_MAX, &run->pids)) < 0)
		return r;
	if (cpu.node &&
	    (cpu.node->kind != Y_SCALAR || !parse_cpu(cpu.node->text, &run->cpu_millis)))
		return fail(w, &cpu,
			    "expected CPUs like 0.5 or 2 (at most 3 decimals), or millicpus like "
			    "500m (from 0.001 to 1024), got %s",
			    describe(w, cpu.node));
	return 0;
}

static int decode_run(struct walk *w, const struct field *f, struct service_run *run)
{
	int r = expect_map(w, f, "a mapping with port, command, env, ...", run_keys, false);
	if (r < 0)
		return r;
	struct field cmd = child(w, f, "command"), port = child(w, f, "port");
	if ((r = get_argv(w, &cmd, "a non-empty list of strings (argv)", valid_arg0, &run->command,
			  &run->n_command)) < 0)
		return r;
	if (!port.node)
		return fail(w, &port,
			    "required: the port the service listens on in its "
			    "instance, 1 to 65535");
	uint64_t p = 0;
	if ((r = get_uint(w, &port, 1, 65535, &p)) < 0)
		return r;
	run->port = (uint16_t)p;
	struct field env = child(w, f, "env"), secrets = child(w, f, "secrets");
	struct field volumes = child(w, f, "volumes"), res = child(w, f, "resources");
	if ((r = decode_env_vars(w, &env, run)) < 0 || (r = decode_secrets(w, &secrets, run)) < 0 ||
	    (r = decode_volumes(w, &volumes, run)) < 0 || (r = decode_resources(w, &res, run)) < 0)
		return r;
	struct field user = child(w, f, "user"), wd = child(w, f, "workdir");
	const char *t = NULL;
	if ((r = get_text(w, &user, "USER[:GROUP] (names or numeric ids)", valid_user, &t)) < 0)
		return r;
	if (t)
		run->user = xstrdup(t);
	t = NULL;
	if ((r = get_text(w, &wd, "an absolute path", NULL, &t)) < 0)
		return r;
	if (t && t[0] != '/')
		return fail(w, &wd, "expected an absolute path, got %s", describe(w, wd.node));
	if (t)
		run->workdir = path_clean(t);
	struct field mode = child(w, f, "mode");
	unsigned m = run->mode;
	if ((r = get_enum(w, &mode, mode_names, ELEMENTSOF(mode_names), &m)) < 0)
		return r;
	run->mode = m;
	return 0;
}

static int decode_health(struct walk *w, const struct field *f, struct service_health *h)
{
	if (!f->node)
		return 0;
	int r = expect_map(w, f, "a mapping with one of http, tcp, exec and timings", health_keys,
			   false);
	if (r < 0)
		return r;
	const struct field *given = NULL;
	struct field probes[ELEMENTSOF(probe_keys)];
	for (size_t i = 0; i < ELEMENTSOF(probe_keys); i++) {
		probes[i] = child(w, f, probe_keys[i]);
		if (!probes[i].node)
			continue;
		if (given)
			return fail(w, &probes[i],
				    "only one of http, tcp, exec can be given (%s is given too)",
				    given->path);
		given = &probes[i];
	}
	const char *t = NULL;
	if (probes[0].node) {
		if ((r = get_text(w, &probes[0], "a URL path starting with '/'", valid_http_path,
				  &t)) < 0)
			return r;
		h->check = SERVICE_CHECK_HTTP;
		h->http_path = xstrdup(t);
	} else if (probes[1].node) {
		bool on = false;
		if ((r = get_bool(w, &probes[1], &on)) < 0)
			return r;
		if (!on)
			return fail(w, &probes[1],
				    "expected true (a TCP connect check); for "
				    "another check give http or exec instead");
		h->check = SERVICE_CHECK_TCP;
	} else if (probes[2].node) {
		if ((r = get_argv(w, &probes[2], "a non-empty list of strings (argv)", valid_arg0,
				  &h->exec, &h->n_exec)) < 0)
			return r;
		h->check = SERVICE_CHECK_EXEC;
	}
	struct field interval = child(w, f, "interval"), timeout = child(w, f, "timeout");
	struct field ha = child(w, f, "healthy_after"), ua = child(w, f, "unhealthy_after");
	struct field sp = child(w, f, "start_period");
	if ((r = get_duration(w, &interval, false, &h->interval_ns)) < 0 ||
	    (r = get_duration(w, &timeout, false, &h->timeout_ns)) < 0 ||
	    (r = get_u32(w, &ha, 1, COUNT_MAX, &h->healthy_after)) < 0 ||
	    (r = get_u32(w, &ua, 1, COUNT_MAX, &h->unhealthy_after)) < 0 ||
	    (r = get_duration(w, &sp, true, &h->start_period_ns)) < 0)
		return r;
	return 0;
}

static int decode_canary(struct walk *w, const struct field *f, struct service_canary *cn)
{
	if (!f->node)
		return 0;
	int r = expect_map(w, f, "a mapping with steps, pause, max_error_rate, min_requests",
			   canary_keys, false);
	if (r < 0)
		return r;
	static const char steps_expected[] =
	    "a list of increasing percents ending at 100, like [10, 50, 100]";
	struct field steps = child(w, f, "steps");
	if (steps.node) {
		if (steps.node->kind != Y_SEQ || steps.node->n_items == 0 ||
		    steps.node->n_items > 100)
			return fail(w, &steps, "expected %s, got %s", steps_expected,
				    steps.node->kind == Y_SEQ ? "a list of that length"
							      : describe(w, steps.node));
		size_t n = steps.node->n_items;
		uint32_t *v = xcalloc(n, sizeof(*v));
		for (size_t i = 0; i < n; i++) {
			struct field it = item_field(w, &steps, i);
			uint64_t pct;
			if (!it.node || it.node->kind != Y_SCALAR ||
			    !parse_uint(it.node->text, &pct) || pct < 1 || pct > 100 ||
			    (i > 0 && pct <= v[i - 1]) || (i + 1 == n && pct != 100)) {
				free(v);
				return fail(w, &it, "expected %s, got %s (steps are %s)",
					    i + 1 == n ? "100 (the last step)"
						       : "a percent from 1 to 99 above the one "
							 "before",
					    describe(w, it.node), steps_expected);
			}
			v[i] = (uint32_t)pct;
		}
		free(cn->steps);
		cn->steps = v;
		cn->n_steps = n;
	}
	struct field pause = child(w, f, "pause"), rate = child(w, f, "max_error_rate");
	struct field minr = child(w, f, "min_requests");
	if ((r = get_duration(w, &pause, false, &cn->pause_ns)) < 0)
		return r;
	if (rate.node &&
	    (rate.node->kind != Y_SCALAR || !parse_rate(rate.node->text, &cn->max_error_rate_ppm)))
		return fail(w, &rate,
			    "expected a rate from 0 to 1 like 0.01, or a percent like 1%%, got %s",
			    describe(w, rate.node));
	return get_uint(w, &minr, 0, 1000000000u, &cn->min_requests);
}

static int decode_deploy(struct walk *w, const struct field *f, struct service_deploy *dp)
{
	if (!f->node)
		return 0;
	int r = expect_map(w, f, "a mapping with strategy, max_surge, ...", deploy_keys, false);
	if (r < 0)
		return r;
	struct field strategy = child(w, f, "strategy"), surge = child(w, f, "max_surge");
	struct field drain = child(w, f, "drain_timeout"), dt = child(w, f, "deploy_timeout");
	struct field kp = child(w, f, "keep_previous"), kpr = child(w, f, "keep_previous_running");
	struct field canary = child(w, f, "canary");
	unsigned s = dp->strategy;
	if ((r = get_enum(w, &strategy, strategy_names, ELEMENTSOF(strategy_names), &s)) < 0)
		return r;
	dp->strategy = s;
	if ((r = get_u32(w, &surge, 1, COUNT_MAX, &dp->max_surge)) < 0 ||
	    (r = get_duration(w, &drain, false, &dp->drain_timeout_ns)) < 0 ||
	    (r = get_duration(w, &dt, false, &dp->deploy_timeout_ns)) < 0 ||
	    (r = get_u32(w, &kp, 0, 100, &dp->keep_previous)) < 0 ||
	    (r = get_bool(w, &kpr, &dp->keep_previous_running)) < 0)
		return r;
	return decode_canary(w, &canary, &dp->canary);
}

static int decode_addr(struct walk *w, const struct field *f, struct service_addr *ret)
{
	struct service_addr a;
	if (f->node->kind != Y_SCALAR || !parse_addr(f->node->text, &a))
		return fail(w, f, "expected IPV4:PORT, [IPV6]:PORT or :PORT (any address), got %s",
			    describe(w, f->node));
	free(ret->host);
	*ret = a;
	return 0;
}

static bool is_probe_key(const char *key)
{
	for (size_t k = 0; k < ELEMENTSOF(probe_keys); k++)
		if (streq(key, probe_keys[k]))
			return true;
	return false;
}

/* Merge the override over into base: maps key by key, anything else replaced,
 * a null in over removes the key. With probe (health), an over naming one of
 * http, tcp, exec drops the base's. Entries keep the paths they came from. */
static struct field merge(struct walk *w, const struct field *base, const struct field *over,
			  bool probe)
{
	if (!over->present)
		return *base;
	if (!over->node)
		return (struct field){.path = over->path, .line = over->line};
	if (!base->node || base->node->kind != Y_MAP || over->node->kind != Y_MAP)
		return *over;
	const struct ynode *b = base->node, *o = over->node;
	bool drop_probe = false;
	for (size_t i = 0; probe && i < ELEMENTSOF(probe_keys); i++) {
		const struct yentry *e = map_get(o, probe_keys[i]);
		drop_probe |= e && e->value->kind != Y_NULL;
	}
	struct ynode *m = arena_alloc(w->arena, sizeof(*m));
	m->kind = Y_MAP;
	m->line = b->line;
	m->entries = arena_alloc(w->arena, (b->n_entries + o->n_entries + 1) * sizeof(*m->entries));
	for (size_t i = 0; i < b->n_entries; i++) {
		const struct yentry *be = &b->entries[i];
		if (drop_probe && is_probe_key(be->key))
			continue;
		const struct yentry *oe = map_get(o, be->key);
		struct yentry res = *be; /* m has base's path: be->origin stays right */
		if (oe && oe->value->kind == Y_NULL)
			continue; /* removed */
		if (oe && be->value->kind == Y_MAP && oe->value->kind == Y_MAP) {
			struct field bf = entry_field(w, base, be);
			struct field of = entry_field(w, over, oe);
			res.value = (struct ynode *)merge(w, &bf, &of, false).node;
		} else if (oe) {
			res = *oe;
			res.origin = oe->origin ? oe->origin : over->path;
		}
		if (res.value->kind != Y_NULL)
			m->entries[m->n_entries++] = res;
	}
	for (size_t i = 0; i < o->n_entries; i++) {
		const struct yentry *oe = &o->entries[i];
		if (oe->value->kind == Y_NULL ||
		    (map_get(b, oe->key) && !(drop_probe && is_probe_key(oe->key))))
			continue; /* removed, or merged above */
		struct yentry res = *oe;
		res.origin = oe->origin ? oe->origin : over->path;
		m->entries[m->n_entries++] = res;
	}
	map_index(w->arena, m);
	return (struct field){.node = m, .path = base->path, .line = base->line, .present = true};
}

/* Where an environment's listen and admin are written, for clash messages. */
struct env_addrs {
	unsigned listen_line, admin_line;
};

/* Resolve environment env of the document into a new config. */
static int resolve(const struct service_doc *d, const char *env, struct arena *scratch,
		   struct service_config **ret, struct env_addrs *ret_addrs,
		   struct cairn_error *err)
{
	struct walk w = {.name = d->name, .arena = scratch, .err = err};
	struct field root = {.node = d->root, .path = "", .line = 1, .present = true};
	struct field envs = child(&w, &root, "environments");
	struct field ef = child(&w, &envs, env);
	int r;
	if (ef.node &&
	    (r = expect_map(&w, &ef, "a mapping with replicas, listen, ...", env_keys, false)) < 0)
		return r;
	_cleanup_(service_config_freep) struct service_config *c = config_new();
	const struct ynode *svc = child(&w, &root, "service").node;
	c->service = xstrdup(svc ? svc->text : "");
	c->environment = xstrdup(env);

	static const char *const sections[] = {"build", "image", "run", "health", "deploy"};
	struct field eff[ELEMENTSOF(sections)];
	for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
		struct field base = child(&w, &root, sections[i]);
		struct field over = child(&w, &ef, sections[i]);
		eff[i] = merge(&w, &base, &over, streq(sections[i], "health"));
		if (!eff[i].node && !base.present && !over.present)
			eff[i].line = ef.line;
	}
	struct field *build = &eff[0], *image = &eff[1], *run = &eff[2], *health = &eff[3];
	struct field *deploy = &eff[4];

	/* canary: X in an environment is deploy: { strategy: canary, canary: X } */
	struct field canary = child(&w, &ef, "canary");
	if (canary.node) {
		struct field over_deploy = child(&w, &ef, "deploy");
		struct field od_canary = child(&w, &over_deploy, "canary");
		struct field od_strategy = child(&w, &over_deploy, "strategy");
		if (od_canary.node)
			return fail(&w, &canary, "also given as %s (give it once)", od_canary.path);
		if (od_strategy.node && (od_strategy.node->kind != Y_SCALAR ||
					 !streq(od_strategy.node->text, "canary")))
			return fail(&w, &canary, "means deploy.strategy canary, but %s is %s",
				    od_strategy.path, describe(&w, od_strategy.node));
		struct ynode *strategy = arena_alloc(scratch, sizeof(*strategy));
		*strategy = (struct ynode){
		    .kind = Y_SCALAR, .line = canary.line, .text = "canary", .len = 6, .size = 1};
		struct ynode *o = arena_alloc(scratch, sizeof(*o));
		o->kind = Y_MAP;
		o->line = canary.line;
		o->entries = arena_alloc(scratch, 2 * sizeof(*o->entries));
		o->entries[0] = (struct yentry){.key = "strategy",
						.key_line = canary.line,
						.value = strategy,
						.origin = ef.path};
		o->entries[1] = (struct yentry){.key = "canary",
						.key_line = canary.line,
						.value = (struct ynode *)canary.node,
						.origin = ef.path};
		o->n_entries = 2;
		map_index(scratch, o);
		struct field of = {
		    .node = o, .path = canary.path, .line = canary.line, .present = true};
		*deploy = merge(&w, deploy, &of, false);
	}

	if ((r = decode_build(&w, build, c)) < 0)
		return r;
	if (image->node) {
		const char *t = NULL;
		if ((r = get_text(&w, image, "NAME[:TAG] or sha256:<64 hex digits>", NULL, &t)) < 0)
			return r;
		if (!(c->image = image_canonical(t)))
			return fail(&w, image,
				    "expected NAME[:TAG] (lowercase name components, a tag of "
				    "letters, digits, '_', '.', '-') or sha256:<64 hex digits>, "
				    "got %s",
				    describe(&w, image->node));
		if (c->build && image_is_id(c->image))
			return fail(&w, image,
				    "with build, expected the NAME[:TAG] the built "
				    "image gets, not an image id");
	}
	if (!c->image && !c->build)
		return fail(&w, image,
			    "required: give image (NAME[:TAG] or sha256:...) or build (or both), "
			    "at the top level or in %s",
			    ef.path);
	if (!run->node)
		return fail(&w, run,
			    "required: a mapping with at least port, at the top level or in %s",
			    ef.path);
	if ((r = decode_run(&w, run, &c->run)) < 0 ||
	    (r = decode_health(&w, health, &c->health)) < 0 ||
	    (r = decode_deploy(&w, deploy, &c->deploy)) < 0)
		return r;

	struct field replicas = child(&w, &ef, "replicas"), listen = child(&w, &ef, "listen");
	struct field admin = child(&w, &ef, "admin");
	if ((r = get_u32(&w, &replicas, 0, COUNT_MAX, &c->replicas)) < 0)
		return r;
	if (!listen.node)
		return fail(&w, &listen,
			    "required: the address the router listens on for this "
			    "environment, like 127.0.0.1:8080");
	if ((r = decode_addr(&w, &listen, &c->listen)) < 0)
		return r;
	if (admin.node) {
		if ((r = decode_addr(&w, &admin, &c->admin)) < 0)
			return r;
		if (addr_overlap(&c->listen, &c->admin))
			return fail(&w, &admin, "clashes with %s", listen.path);
	}
	if (ret_addrs)
		*ret_addrs =
		    (struct env_addrs){.listen_line = listen.line, .admin_line = admin.line};
	*ret = TAKE_PTR(c);
	return 0;
}

/* --- the file ------------------------------------------------------------------- */

static struct service_doc *doc_free(struct service_doc *d)
{
	if (!d)
		return NULL;
	arena_free(&d->arena);
	free(d->name);
	free(d);
	return NULL;
}

struct service_file *service_file_free(struct service_file *f)
{
	if (!f)
		return NULL;
	free(f->name);
	free(f->dir);
	free(f->service);
	strv_free(f->envs, f->n_envs);
	doc_free(f->doc);
	free(f);
	return NULL;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* Where an environment listens, kept for the clash check once its config is
 * freed. */
struct env_listen {
	const char *env;
	struct service_addr addr[2]; /* listen, admin (port 0: none) */
	unsigned line[2];
};

static void env_listen_free(struct env_listen *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].addr[0].host);
		free(v[i].addr[1].host);
	}
	free(v);
}

/* No two environments may listen on clashing addresses. */
static int check_clashes(struct walk *w, const struct env_listen *v, size_t n)
{
	static const char *const what[] = {"listen", "admin"};
	for (size_t i = 0; i < n; i++)
		for (int a = 0; a < 2; a++)
			for (size_t k = 0; k < i; k++)
				for (int b = 0; b < 2; b++) {
					if (!addr_overlap(&v[i].addr[a], &v[k].addr[b]))
						continue;
					struct field f = {
					    .path = arena_printf(w->arena, "environments.%s.%s",
								 v[i].env, what[a]),
					    .line = v[i].line[a],
					};
					_cleanup_free_ char *as = addr_string(&v[i].addr[a]);
					_cleanup_free_ char *bs = addr_string(&v[k].addr[b]);
					return fail(w, &f, "%s clashes with %s of environments.%s",
						    as, bs, v[k].env);
				}
	return 0;
}

int service_parse(const char *name, const char *text, size_t len, struct service_file **ret,
		  struct cairn_error *err)
{
	if (len > SERVICE_FILE_MAX)
		return error_set(err, EFBIG, "%s: larger than %u bytes", name, SERVICE_FILE_MAX);
	struct service_doc *d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	_cleanup_(service_file_freep) struct service_file *f = xcalloc(1, sizeof(*f));
	f->doc = d;
	f->name = xstrdup(name);
	f->dir = dir_of(name);
	int r = build_document(d, text, len, err);
	if (r < 0)
		return r;

	struct arena scratch = {0};
	struct walk w = {.name = name, .arena = &scratch, .err = err};
	struct field root = {.node = d->root, .path = "", .line = d->root->line, .present = true};
	struct env_listen *listens = NULL;
	size_t n_listens = 0;
	r = expect_map(&w, &root, "a mapping with service, run and environments", top_keys, true);
	if (r < 0)
		goto out;
	struct field service = child(&w, &root, "service");
	if (!service.node) {
		r = fail(&w, &service, "required: the name of the service");
		goto out;
	}
	const char *t = NULL;
	r = get_text(&w, &service,
		     "a name of lowercase letters, digits and '-' (up to 63, "
		     "starting with a letter or digit)",
		     valid_name, &t);
	if (r < 0)
		goto out;
	f->service = xstrdup(t);
	struct field envs = child(&w, &root, "environments");
	static const char envs_expected[] =
	    "a mapping of 1 to 100 environments (name: { replicas, listen, ... })";
	if (!envs.node) {
		r = fail(&w, &envs, "required: %s", envs_expected);
		goto out;
	}
	if (envs.node->kind != Y_MAP) {
		r = fail(&w, &envs, "expected %s, got %s", envs_expected, describe(&w, envs.node));
		goto out;
	}
	if (envs.node->n_entries == 0 || envs.node->n_entries > SERVICE_ENVS_MAX) {
		r = fail(&w, &envs, "expected 1 to %u environments, got %zu", SERVICE_ENVS_MAX,
			 envs.node->n_entries);
		goto out;
	}
	size_t n = envs.node->n_entries;
	f->envs = xcalloc(n, sizeof(char *));
	listens = xcalloc(n, sizeof(*listens));
	for (size_t i = 0; i < n; i++) {
		const struct yentry *e = &envs.node->entries[i];
		if (!valid_name(e->key)) {
			struct field kf = entry_field(&w, &envs, e);
			kf.line = e->key_line;
			r = fail(&w, &kf,
				 "expected an environment name of lowercase letters, digits "
				 "and '-' (up to 63, starting with a letter or digit)");
			goto out;
		}
		f->envs[f->n_envs++] = xstrdup(e->key);
	}
	/* resolve (and so check) every environment, one at a time */
	for (; n_listens < n; n_listens++) {
		struct arena env_scratch = {0};
		struct service_config *c = NULL;
		struct env_addrs lines;
		r = resolve(d, f->envs[n_listens], &env_scratch, &c, &lines, err);
		arena_free(&env_scratch);
		if (r < 0)
			goto out;
		struct env_listen *l = &listens[n_listens];
		l->env = f->envs[n_listens];
		l->addr[0] = c->listen;
		l->addr[1] = c->admin;
		l->line[0] = lines.listen_line;
		l->line[1] = lines.admin_line;
		c->listen.host = c->admin.host = NULL; /* moved to l */
		service_config_free(c);
	}
	r = check_clashes(&w, listens, n_listens);
	if (r < 0)
		goto out;
	*ret = TAKE_PTR(f);
out:
	env_listen_free(listens, n_listens);
	arena_free(&scratch);
	return r;
}

int service_load(const char *path, struct service_file **ret, struct cairn_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_file_at(AT_FDCWD, path, &text, &len, SERVICE_FILE_MAX);
	if (r == -EFBIG)
		return error_set(err, EFBIG, "%s: larger than %u bytes", path, SERVICE_FILE_MAX);
	if (r < 0)
		return error_set(err, -r, "reading %s: %s", path, strerror(-r));
	return service_parse(path, text, len, ret, err);
}

int service_env(const struct service_file *f, const char *env, struct service_config **ret,
		struct cairn_error *err)
{
	bool known = false;
	for (size_t i = 0; i < f->n_envs && !known; i++)
		known = streq(f->envs[i], env);
	if (!known) {
		struct buf list = {0};
		for (size_t i = 0; i < f->n_envs; i++)
			buf_printf(&list, "%s%s", i ? ", " : "", f->envs[i]);
		int r = error_set(err, ENOENT, "%s: no environment \"%s\" (it has: %s)", f->name,
				  env, list.data ? list.data : "none");
		buf_free(&list);
		return r;
	}
	struct arena scratch = {0};
	int r = resolve(f->doc, env, &scratch, ret, NULL, err);
	arena_free(&scratch);
	return r;
}

/* --- canonical JSON ------------------------------------------------------------- */

/* Strings in a config are valid UTF-8 without NUL (checked on the way in), so
 * json_string cannot fail; if it did, an invariant is broken. */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (!j)
		abort();
	return j;
}

static json_t *jstrv(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(v[i]));
	return a;
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

json_t *service_config_json(const struct service_config *c)
{
	json_t *build = json_null();
	if (c->build)
		build = json_pack("{s:o, s:o}", "context", jstr(c->build_context), "dockerfile",
				  jstr(c->build_dockerfile));

	json_t *env = json_object();
	for (size_t i = 0; i < c->run.n_env; i++)
		json_object_set_new(env, c->run.env[i].name, jstr(c->run.env[i].value));
	json_t *volumes = json_object();
	for (size_t i = 0; i < c->run.n_volumes; i++) {
		const struct service_volume *v = &c->run.volumes[i];
		json_object_set_new(volumes, v->name,
				    json_pack("{s:o, s:b, s:b}", "path", jstr(v->path),
					      "single_writer", v->single_writer, "read_only",
					      v->read_only));
	}
	json_t *resources =
	    json_pack("{s:o, s:o, s:o}", "memory_bytes",
		      c->run.memory_bytes ? jint(c->run.memory_bytes) : json_null(), "pids",
		      c->run.pids ? jint(c->run.pids) : json_null(), "cpu_millis",
		      c->run.cpu_millis ? jint(c->run.cpu_millis) : json_null());
	json_t *run = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "command",
	    c->run.command ? jstrv(c->run.command, c->run.n_command) : json_null(), "port",
	    jint(c->run.port), "env", env, "secrets", jstrv(c->run.secrets, c->run.n_secrets),
	    "volumes", volumes, "resources", resources, "user", jstr(c->run.user), "workdir",
	    jstr(c->run.workdir), "mode", mode_names[c->run.mode]);

	const struct service_health *h = &c->health;
	json_t *health = json_pack(
	    "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "check", check_names[h->check], "http",
	    jstr(h->check == SERVICE_CHECK_HTTP ? h->http_path : NULL), "exec",
	    h->check == SERVICE_CHECK_EXEC ? jstrv(h->exec, h->n_exec) : json_null(), "interval_ns",
	    jint((uint64_t)h->interval_ns), "timeout_ns", jint((uint64_t)h->timeout_ns),
	    "healthy_after", jint(h->healthy_after), "unhealthy_after", jint(h->unhealthy_after),
	    "start_period_ns", jint((uint64_t)h->start_period_ns));

	const struct service_deploy *dp = &c->deploy;
	json_t *steps = json_array();
	for (size_t i = 0; i < dp->canary.n_steps; i++)
		json_array_append_new(steps, jint(dp->canary.steps[i]));
	json_t *canary = json_pack("{s:o, s:o, s:o, s:o}", "steps", steps, "pause_ns",
				   jint((uint64_t)dp->canary.pause_ns), "max_error_rate_ppm",
				   jint(dp->canary.max_error_rate_ppm), "min_requests",
				   jint(dp->canary.min_requests));
	json_t *deploy = json_pack(
	    "{s:s, s:o, s:o, s:o, s:o, s:b, s:o}", "strategy", strategy_names[dp->strategy],
	    "max_surge", jint(dp->max_surge), "drain_timeout_ns",
	    jint((uint64_t)dp->drain_timeout_ns), "deploy_timeout_ns",
	    jint((uint64_t)dp->deploy_timeout_ns), "keep_previous", jint(dp->keep_previous),
	    "keep_previous_running", dp->keep_previous_running, "canary", canary);

	_cleanup_free_ char *listen = addr_string(&c->listen);
	_cleanup_free_ char *admin = c->admin.port ? addr_string(&c->admin) : NULL;
	json_t *j = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "version",
			      SERVICE_CONFIG_VERSION, "service", jstr(c->service), "environment",
			      jstr(c->environment), "image", jstr(c->image), "build", build, "run",
			      run, "health", health, "deploy", deploy, "replicas",
			      jint(c->replicas), "listen", jstr(listen), "admin", jstr(admin));
	if (!j)
		abort(); /* json_pack fails only on a bad format or a NULL value */
	return j;
}

void service_config_digest(const struct service_config *c, char out[72])
{
	json_t *j = service_config_json(c);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	if (!s)
		oom();
	struct digest d;
	digest_buffer(s, strlen(s), &d);
	free(s);
	digest_to_string(&d, out);
}

/* --- reading it back ------------------------------------------------------------ */

_printf_(4, 5) static int jfail(struct cairn_error *err, const char *path, const char *key,
				const char *fmt, ...)
{
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	if (*path || *key)
		(void)error_set(err, EINVAL, "config: %s%s%s: %s", path, *path && *key ? "." : "",
				key, msg);
	else
		(void)error_set(err, EINVAL, "config: %s", msg);
	free(msg);
	return -EINVAL; /* visibly negative, for callers and analyzers */
}

/* j must be an object with exactly keys (NULL-terminated). */
static int jkeys(json_t *j, const char *path, const char *key, const char *const *keys,
		 struct cairn_error *err)
{
	if (!json_is_object(j)) {
		(void)jfail(err, path, key, "expected an object");
		return -EINVAL;
	}
	size_t n = 0;
	for (; keys[n]; n++)
		if (!json_object_get(j, keys[n])) {
			_cleanup_free_ char *p = xasprintf("%s%s%s", path, *path ? "." : "", key);
			(void)jfail(err, p, keys[n], "missing");
			return -EINVAL;
		}
	if (json_object_size(j) == n)
		return 0;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		bool known = false;
		for (size_t i = 0; keys[i] && !known; i++)
			known = streq(k, keys[i]);
		if (!known) {
			(void)jfail(err, path, key, "unknown key \"%.64s\"", k);
			return -EINVAL;
		}
	}
	return 0;
}

static bool jtext(json_t *v, const char **ret)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*ret = json_string_value(v);
	return true;
}

/* A string (or null when nullable: *ret = NULL) passing valid. */
static int jget_str(json_t *o, const char *path, const char *key, bool nullable,
		    bool (*valid)(const char *), const char **ret, struct cairn_error *err)
{
	json_t *v = json_object_get(o, key);
	if (nullable && json_is_null(v)) {
		*ret = NULL;
		return 0;
	}
	if (!jtext(v, ret) || (valid && !valid(*ret))) {
		(void)jfail(err, path, key, "expected a valid string%s",
			    nullable ? " or null" : "");
		return -EINVAL;
	}
	return 0;
}

/* An integer in [min, max]; null is 0 when nullable. */
static int jget_uint(json_t *o, const char *path, const char *key, bool nullable, uint64_t min,
		     uint64_t max, uint64_t *ret, struct cairn_error *err)
{
	json_t *v = json_object_get(o, key);
	if (nullable && json_is_null(v)) {
		*ret = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max) {
		(void)jfail(err, path, key, "expected an integer from %" PRIu64 " to %" PRIu64, min,
			    max);
		return -EINVAL;
	}
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int jget_u32(json_t *o, const char *path, const char *key, uint32_t min, uint32_t max,
		    uint32_t *ret, struct cairn_error *err)
{
	uint64_t v = 0;
	int r = jget_uint(o, path, key, false, min, max, &v, err);
	if (r >= 0)
		*ret = (uint32_t)v;
	return r;
}

static int jget_ns(json_t *o, const char *path, const char *key, bool zero_ok, int64_t *ret,
		   struct cairn_error *err)
{
	uint64_t v = 0;
	int r = jget_uint(o, path, key, false, zero_ok ? 0 : 1, (uint64_t)DURATION_MAX, &v, err);
	if (r >= 0)
		*ret = (int64_t)v;
	return r;
}

static int jget_bool(json_t *o, const char *path, const char *key, bool *ret,
		     struct cairn_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_boolean(v)) {
		(void)jfail(err, path, key, "expected true or false");
		return -EINVAL;
	}
	*ret = json_is_true(v);
	return 0;
}

static int jget_enum(json_t *o, const char *path, const char *key, const char *const *names,
		     size_t n, unsigned *ret, struct cairn_error *err)
{
	const char *s = NULL;
	if (jtext(json_object_get(o, key), &s))
		for (size_t i = 0; i < n; i++)
			if (streq(s, names[i])) {
				*ret = (unsigned)i;
				return 0;
			}
	(void)jfail(err, path, key, "expected one of the known names");
	return -EINVAL;
}

/* A non-empty array of strings whose first passes valid0, or null (NULL, 0)
 * when nullable. */
static int jget_argv(json_t *o, const char *path, const char *key, bool nullable, char ***ret,
		     size_t *ret_n, struct cairn_error *err)
{
	json_t *v = json_object_get(o, key);
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) == 0) {
		(void)jfail(err, path, key, "expected a non-empty array of strings");
		return -EINVAL;
	}
	size_t n = json_array_size(v);
	char **a = xcalloc(n, sizeof(*a));
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		if (!jtext(json_array_get(v, i), &s) || (i == 0 && !*s)) {
			strv_free(a, n);
			(void)jfail(err, path, key, "expected a non-empty array of strings");
			return -EINVAL;
		}
		a[i] = xstrdup(s);
	}
	*ret = a;
	*ret_n = n;
	return 0;
}

static int jget_addr(json_t *o, const char *path, const char *key, struct service_addr *ret,
		     struct cairn_error *err)
{
	const char *s = NULL;
	struct service_addr a;
	if (!jtext(json_object_get(o, key), &s) || !parse_addr(s, &a)) {
		(void)jfail(err, path, key, "expected IPV4:PORT, [IPV6]:PORT or :PORT");
		return -EINVAL;
	}
	free(ret->host);
	*ret = a;
	return 0;
}

static int run_from_json(json_t *j, struct service_run *run, struct cairn_error *err)
{
	int r;
	const char *p = "run";
	uint64_t v = 0;
	if ((r = jget_argv(j, p, "command", true, &run->command, &run->n_command, err)) < 0 ||
	    (r = jget_uint(j, p, "port", false, 1, 65535, &v, err)) < 0)
		return r;
	run->port = (uint16_t)v;

	json_t *env = json_object_get(j, "env");
	if (!json_is_object(env))
		return jfail(err, p, "env", "expected an object");
	run->env = xcalloc(json_object_size(env) + 1, sizeof(*run->env));
	const char *k;
	json_t *jv;
	json_object_foreach(env, k, jv)
	{
		const char *s = NULL;
		if (!valid_var_name(k) || !jtext(jv, &s))
			return jfail(err, "run.env", k, "expected a variable name and a string");
		run->env[run->n_env].name = xstrdup(k);
		run->env[run->n_env++].value = xstrdup(s);
	}
	qsort(run->env, run->n_env, sizeof(*run->env), env_var_cmp);

	json_t *secrets = json_object_get(j, "secrets");
	if (!json_is_array(secrets))
		return jfail(err, p, "secrets", "expected an array");
	size_t n = json_array_size(secrets);
	run->secrets = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		if (!jtext(json_array_get(secrets, i), &s) || !valid_var_name(s))
			return jfail(err, p, "secrets", "expected an array of variable names");
		if (env_has(run, s))
			return jfail(err, p, "secrets", "%s is also in run.env", s);
		run->secrets[run->n_secrets++] = xstrdup(s);
	}
	qsort(run->secrets, run->n_secrets, sizeof(char *), str_cmp);
	for (size_t i = 1; i < n; i++)
		if (streq(run->secrets[i - 1], run->secrets[i]))
			return jfail(err, p, "secrets", "%s is listed twice", run->secrets[i]);

	json_t *volumes = json_object_get(j, "volumes");
	if (!json_is_object(volumes))
		return jfail(err, p, "volumes", "expected an object");
	run->volumes = xcalloc(json_object_size(volumes) + 1, sizeof(*run->volumes));
	json_object_foreach(volumes, k, jv)
	{
		static const char *const keys[] = {"path", "single_writer", "read_only", NULL};
		if (!valid_volume_name(k))
			return jfail(err, "run.volumes", k, "expected a volume name");
		_cleanup_free_ char *vp = xasprintf("run.volumes.%s", k);
		struct service_volume *vol = &run->volumes[run->n_volumes];
		const char *s = NULL;
		if ((r = jkeys(jv, "run.volumes", k, keys, err)) < 0 ||
		    (r = jget_str(jv, vp, "path", false, NULL, &s, err)) < 0 ||
		    (r = jget_bool(jv, vp, "single_writer", &vol->single_writer, err)) < 0 ||
		    (r = jget_bool(jv, vp, "read_only", &vol->read_only, err)) < 0)
			return r;
		if (!(vol->path = abs_path(s)))
			return jfail(err, vp, "path", "expected an absolute path other than /");
		vol->name = xstrdup(k);
		run->n_volumes++;
	}
	_cleanup_free_ struct named *byp = xcalloc(run->n_volumes + 1, sizeof(*byp));
	for (size_t i = 0; i < run->n_volumes; i++)
		byp[i] = (struct named){.name = run->volumes[i].path, .index = i};
	size_t first = 0, dup = find_duplicate(byp, run->n_volumes, &first);
	if (dup != SIZE_MAX)
		return jfail(err, "run.volumes", run->volumes[dup].name, "path %s used twice",
			     run->volumes[dup].path);
	qsort(run->volumes, run->n_volumes, sizeof(*run->volumes), volume_cmp);

	static const char *const res_keys[] = {"memory_bytes", "pids", "cpu_millis", NULL};
	json_t *res = json_object_get(j, "resources");
	if ((r = jkeys(res, p, "resources", res_keys, err)) < 0 ||
	    (r = jget_uint(res, "run.resources", "memory_bytes", true, SIZE_MIN_BYTES,
			   SIZE_MAX_BYTES, &run->memory_bytes, err)) < 0 ||
	    (r = jget_uint(res, "run.resources", "pids", true, 1, PIDS_MAX, &run->pids, err)) < 0 ||
	    (r = jget_uint(res, "run.resources", "cpu_millis", true, 1, CPU_MAX_MILLIS,
			   &run->cpu_millis, err)) < 0)
		return r;

	const char *s = NULL;
	if ((r = jget_str(j, p, "user", true, valid_user, &s, err)) < 0)
		return r;
	run->user = s ? xstrdup(s) : NULL;
	if ((r = jget_str(j, p, "workdir", true, NULL, &s, err)) < 0)
		return r;
	if (s) {
		if (s[0] != '/')
			return jfail(err, p, "workdir", "expected an absolute path");
		run->workdir = path_clean(s);
	}
	unsigned m = 0;
	if ((r = jget_enum(j, p, "mode", mode_names, ELEMENTSOF(mode_names), &m, err)) < 0)
		return r;
	run->mode = m;
	return 0;
}

static int health_from_json(json_t *j, struct service_health *h, struct cairn_error *err)
{
	const char *p = "health";
	unsigned check = 0;
	int r;
	const char *s = NULL;
	if ((r = jget_enum(j, p, "check", check_names, ELEMENTSOF(check_names), &check, err)) < 0)
		return r;
	h->check = check;
	if ((r = jget_str(j, p, "http", check != SERVICE_CHECK_HTTP, valid_http_path, &s, err)) < 0)
		return r;
	if (check != SERVICE_CHECK_HTTP && s)
		return jfail(err, p, "http", "expected null for check %s", check_names[check]);
	h->http_path = s ? xstrdup(s) : NULL;
	json_t *exec = json_object_get(j, "exec");
	if (check != SERVICE_CHECK_EXEC && !json_is_null(exec))
		return jfail(err, p, "exec", "expected null for check %s", check_names[check]);
	if ((r = jget_argv(j, p, "exec", check != SERVICE_CHECK_EXEC, &h->exec, &h->n_exec, err)) <
		0 ||
	    (r = jget_ns(j, p, "interval_ns", false, &h->interval_ns, err)) < 0 ||
	    (r = jget_ns(j, p, "timeout_ns", false, &h->timeout_ns, err)) < 0 ||
	    (r = jget_u32(j, p, "healthy_after", 1, COUNT_MAX, &h->healthy_after, err)) < 0 ||
	    (r = jget_u32(j, p, "unhealthy_after", 1, COUNT_MAX, &h->unhealthy_after, err)) < 0 ||
	    (r = jget_ns(j, p, "start_period_ns", true, &h->start_period_ns, err)) < 0)
		return r;
	return 0;
}

static int deploy_from_json(json_t *j, struct service_deploy *dp, struct cairn_error *err)
{
	const char *p = "deploy";
	unsigned s = 0;
	int r;
	static const char *const canary_json_keys[] = {"steps", "pause_ns", "max_error_rate_ppm",
						       "min_requests", NULL};
	if ((r = jget_enum(j, p, "strategy", strategy_names, ELEMENTSOF(strategy_names), &s, err)) <
	    0)
		return r;
	dp->strategy = s;
	if ((r = jget_u32(j, p, "max_surge", 1, COUNT_MAX, &dp->max_surge, err)) < 0 ||
	    (r = jget_ns(j, p, "drain_timeout_ns", false, &dp->drain_timeout_ns, err)) < 0 ||
	    (r = jget_ns(j, p, "deploy_timeout_ns", false, &dp->deploy_timeout_ns, err)) < 0 ||
	    (r = jget_u32(j, p, "keep_previous", 0, 100, &dp->keep_previous, err)) < 0 ||
	    (r = jget_bool(j, p, "keep_previous_running", &dp->keep_previous_running, err)) < 0)
		return r;
	json_t *c = json_object_get(j, "canary");
	if ((r = jkeys(c, p, "canary", canary_json_keys, err)) < 0)
		return r;
	json_t *steps = json_object_get(c, "steps");
	size_t n = json_array_size(steps);
	if (!json_is_array(steps) || n == 0 || n > 100)
		return jfail(err, "deploy.canary", "steps",
			     "expected increasing percents ending at 100");
	uint32_t *v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(steps, i);
		v[i] =
		    json_is_integer(x) && json_integer_value(x) >= 1 && json_integer_value(x) <= 100
			? (uint32_t)json_integer_value(x)
			: 0;
	}
	free(dp->canary.steps);
	dp->canary.steps = v;
	dp->canary.n_steps = n;
	if (!steps_valid(v, n))
		return jfail(err, "deploy.canary", "steps",
			     "expected increasing percents ending at 100");
	uint64_t ppm = 0;
	if ((r = jget_ns(c, "deploy.canary", "pause_ns", false, &dp->canary.pause_ns, err)) < 0 ||
	    (r = jget_uint(c, "deploy.canary", "max_error_rate_ppm", false, 0, 1000000, &ppm,
			   err)) < 0 ||
	    (r = jget_uint(c, "deploy.canary", "min_requests", false, 0, 1000000000u,
			   &dp->canary.min_requests, err)) < 0)
		return r;
	dp->canary.max_error_rate_ppm = (uint32_t)ppm;
	return 0;
}

int service_config_from_json(json_t *j, struct service_config **ret, struct cairn_error *err)
{
	static const char *const keys[] = {"version",  "service", "environment", "image",
					   "build",    "run",	  "health",	 "deploy",
					   "replicas", "listen",  "admin",	 NULL};
	static const char *const build_json_keys[] = {"context", "dockerfile", NULL};
	static const char *const run_json_keys[] = {"command", "port",	    "env",  "secrets",
						    "volumes", "resources", "user", "workdir",
						    "mode",    NULL};
	static const char *const health_json_keys[] = {"check",
						       "http",
						       "exec",
						       "interval_ns",
						       "timeout_ns",
						       "healthy_after",
						       "unhealthy_after",
						       "start_period_ns",
						       NULL};
	static const char *const deploy_json_keys[] = {"strategy",	   "max_surge",
						       "drain_timeout_ns", "deploy_timeout_ns",
						       "keep_previous",	   "keep_previous_running",
						       "canary",	   NULL};
	int r;
	if ((r = jkeys(j, "", "", keys, err)) < 0)
		return r;
	uint64_t version = 0;
	if ((r = jget_uint(j, "", "version", false, SERVICE_CONFIG_VERSION, SERVICE_CONFIG_VERSION,
			   &version, err)) < 0)
		return r;
	_cleanup_(service_config_freep) struct service_config *c = config_new();
	const char *s = NULL;
	if ((r = jget_str(j, "", "service", false, valid_name, &s, err)) < 0)
		return r;
	c->service = xstrdup(s);
	if ((r = jget_str(j, "", "environment", false, valid_name, &s, err)) < 0)
		return r;
	c->environment = xstrdup(s);
	if ((r = jget_str(j, "", "image", true, NULL, &s, err)) < 0)
		return r;
	if (s && !(c->image = image_canonical(s)))
		return jfail(err, "", "image", "expected NAME[:TAG] or sha256:<64 hex digits>");
	json_t *build = json_object_get(j, "build");
	if (!json_is_null(build)) {
		if ((r = jkeys(build, "", "build", build_json_keys, err)) < 0)
			return r;
		c->build = true;
		if ((r = jget_str(build, "build", "context", false, NULL, &s, err)) < 0)
			return r;
		if (!(c->build_context = rel_path(s)))
			return jfail(err, "build", "context", "expected a relative path");
		if ((r = jget_str(build, "build", "dockerfile", false, NULL, &s, err)) < 0)
			return r;
		if (!(c->build_dockerfile = rel_path(s)))
			return jfail(err, "build", "dockerfile", "expected a relative path");
		if (c->image && image_is_id(c->image))
			return jfail(err, "", "image", "expected a NAME:TAG with build, not an id");
	}
	if (!c->image && !c->build)
		return jfail(err, "", "image", "expected an image or a build");

	json_t *run = json_object_get(j, "run"), *health = json_object_get(j, "health");
	json_t *deploy = json_object_get(j, "deploy");
	if ((r = jkeys(run, "", "run", run_json_keys, err)) < 0 ||
	    (r = run_from_json(run, &c->run, err)) < 0 ||
	    (r = jkeys(health, "", "health", health_json_keys, err)) < 0 ||
	    (r = health_from_json(health, &c->health, err)) < 0 ||
	    (r = jkeys(deploy, "", "deploy", deploy_json_keys, err)) < 0 ||
	    (r = deploy_from_json(deploy, &c->deploy, err)) < 0 ||
	    (r = jget_u32(j, "", "replicas", 0, COUNT_MAX, &c->replicas, err)) < 0 ||
	    (r = jget_addr(j, "", "listen", &c->listen, err)) < 0)
		return r;
	if (!json_is_null(json_object_get(j, "admin"))) {
		if ((r = jget_addr(j, "", "admin", &c->admin, err)) < 0)
			return r;
		if (addr_overlap(&c->listen, &c->admin))
			return jfail(err, "", "admin", "clashes with listen");
	}
	*ret = TAKE_PTR(c);
	return 0;
}
