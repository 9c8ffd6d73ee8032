/* The build executor: reads the Dockerfile and the context, works out which
 * stages the target needs, and runs their instructions in order. Each stage
 * carries a tree (in memory, sorted) and an image config; RUN executes in a
 * build instance whose writable overlay layer becomes the tree's changes,
 * COPY and ADD edit the tree directly from content already in the store.
 * RUN steps are cached under a digest of their parent tree and everything
 * that affects them; COPY and ADD need no cache (their result is computed
 * from digests without reading a byte that the stat cache vouches for). */
#include "build.h"

#include "../base/buf.h"
#include "../base/fs.h"
#include "../image/image.h"
#include "../state/state.h"
#include "dockerfile.h"
#include "internal.h"
#include "match.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define TAIL_MAX (64 * 1024)
#define TAIL_LINES 20
#define CACHE_KEY_VERSION 1

struct kv {
	char *key, *value; /* value NULL: declared without one */
};

static void kvs_free(struct kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static struct kv *kvs_find(struct kv *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].key, key))
			return &v[i];
	return NULL;
}

static void kvs_set(struct kv **v, size_t *n, const char *key, const char *value)
{
	struct kv *e = kvs_find(*v, *n, key);
	if (!e) {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		e = &(*v)[(*n)++];
		e->key = xstrdup(key);
		e->value = NULL;
	}
	free(e->value);
	e->value = value ? xstrdup(value) : NULL;
}

struct stage {
	char *name;	  /* "AS name" (lowercase), or NULL */
	char label[64];	  /* name or number, for progress */
	size_t from, end; /* instruction range */
	bool needed, done;
	struct tree tree;
	struct digest tree_id;
	bool tree_id_valid;
	json_t *config;
	struct kv *args; /* ARGs declared in the stage */
	size_t n_args;
	bool cmd_set;
	/* What the next RUN mounts below its writable layer: a checkout and the
	 * layers of the RUN steps since, as long as they are exactly the tree
	 * (a COPY or a cached step ends that; the next RUN checks out anew). */
	char *stack_base;	 /* a checkout directory */
	bool stack_base_shared; /* the image's shared checkout, made when missing */
	char **layers;		 /* upper directories, oldest first */
	size_t n_layers;
	bool stack_valid;
};
#define MAX_LAYERS 32

struct builder {
	struct store *s;
	struct state *st;
	const struct build_opts *o;
	struct cairn_error *err;
	char *df_path;
	char *df_text;
	size_t df_len;
	struct dockerfile df;
	struct ignore ig;
	bool have_ignore;
	struct dir_scan *ctx;
	bool ctx_stored;
	struct digest ctx_id;
	int ctx_fd;
	struct stage *stages;
	size_t n_stages;
	struct kv *global; /* ARGs before the first FROM */
	size_t n_global;
	struct kv *bargs; /* --build-arg */
	size_t n_bargs;
	bool *barg_used;
	struct store_txn *txn;
	char *scratch; /* $ROOT/tmp/build.XXXXXX */
	int scratch_fd;
	unsigned n_dirs;
	json_t *bases;
	unsigned step, steps;
	struct build_result *res;
	/* cache entries waiting for their trees to be committed */
	char **pend_keys, **pend_trees;
	size_t n_pend;
	/* the output of the running step */
	struct buf tail;
};

/* --- small helpers -------------------------------------------------------- */

static int fail_at(struct builder *b, const struct df_instr *in, int code, const char *fmt, ...)
	_printf_(4, 5);
static int fail_at(struct builder *b, const struct df_instr *in, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return error_set(b->err, code, "%s:%u: %s %s", b->df.name, in->line,
			 df_kind_name(in->kind), msg ? msg : "failed");
}

/* Add "file:line: KIND" in front of an error a helper set. */
static int wrap_at(struct builder *b, const struct df_instr *in, int r)
{
	(void)r;
	return error_wrap(b->err, "%s:%u: %s", b->df.name, in->line, df_kind_name(in->kind));
}

static bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), n = strlen(suffix);
	return a >= n && streq(s + a - n, suffix);
}

static json_t *config_get_array(json_t *cfg, const char *key)
{
	json_t *a = json_object_get(cfg, key);
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(cfg, key, a);
	}
	return a;
}

static json_t *config_get_object(json_t *cfg, const char *key)
{
	json_t *o = json_object_get(cfg, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(cfg, key, o);
	}
	return o;
}

/* The value of K in an Env array ("K=V" strings). */
static const char *env_lookup(json_t *env, const char *key)
{
	size_t i, kl = strlen(key);
	json_t *x;
	json_array_foreach(env, i, x)
	{
		const char *s = json_string_value(x);
		if (s && strncmp(s, key, kl) == 0 && s[kl] == '=')
			return s + kl + 1;
	}
	return NULL;
}

static void env_set(json_t *env, const char *key, const char *value)
{
	size_t i, kl = strlen(key);
	json_t *x;
	char *kvs = xasprintf("%s=%s", key, value);
	json_array_foreach(env, i, x)
	{
		const char *s = json_string_value(x);
		if (s && strncmp(s, key, kl) == 0 && s[kl] == '=') {
			json_array_set_new(env, i, json_string(kvs));
			free(kvs);
			return;
		}
	}
	json_array_append_new(env, json_string(kvs));
	free(kvs);
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The instruction as written, on one line and not too long (for progress). */
static char *instr_text(const struct df_instr *in)
{
	struct buf b = {0};
	buf_puts(&b, df_kind_name(in->kind));
	for (size_t i = 0; i < in->n_flags; i++) {
		buf_puts(&b, " --");
		buf_puts(&b, in->flags[i].name);
		if (*in->flags[i].value) {
			buf_putc(&b, '=');
			buf_puts(&b, in->flags[i].value);
		}
	}
	buf_putc(&b, ' ');
	for (const char *p = in->raw; *p; p++)
		buf_putc(&b, (*p == '\n' || *p == '\t') ? ' ' : *p);
	char *s = buf_steal(&b);
	if (strlen(s) > 100)
		memcpy(s + 97, "...", 4);
	return s;
}

/* --- variable lookup ------------------------------------------------------- */

struct lookup_ctx {
	struct builder *b;
	struct stage *stage; /* NULL: global ARGs only (FROM lines) */
};

static const char *lookup(const char *name, void *u)
{
	struct lookup_ctx *c = u;
	if (c->stage) {
		const char *v = env_lookup(json_object_get(c->stage->config, "Env"), name);
		if (v)
			return v;
		struct kv *a = kvs_find(c->stage->args, c->stage->n_args, name);
		return a ? a->value : NULL;
	}
	struct kv *a = kvs_find(c->b->global, c->b->n_global, name);
	return a ? a->value : NULL;
}

static char *expand(struct builder *b, struct stage *stage, const struct df_instr *in,
		    const char *word)
{
	struct lookup_ctx c = {b, stage};
	char *r = df_expand(word, b->df.escape, lookup, &c, b->err);
	if (!r)
		wrap_at(b, in, -EINVAL);
	return r;
}

/* The value an ARG takes: --build-arg first, else its default. */
static const char *barg_value(struct builder *b, const char *key, bool *found)
{
	for (size_t i = 0; i < b->n_bargs; i++)
		if (streq(b->bargs[i].key, key)) {
			b->barg_used[i] = true;
			*found = true;
			return b->bargs[i].value;
		}
	*found = false;
	return NULL;
}

static int do_arg(struct builder *b, struct stage *stage, const struct df_instr *in)
{
	struct df_pair *pairs = NULL;
	size_t n = 0;
	int r = df_pairs(in, b->df.escape, &pairs, &n, b->err);
	if (r < 0)
		return wrap_at(b, in, r);
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_free_ char *def = NULL;
		if (pairs[i].value && !(def = expand(b, stage, in, pairs[i].value)))
			r = -EINVAL;
		if (r < 0)
			break;
		bool given;
		const char *v = barg_value(b, pairs[i].key, &given);
		if (!given)
			v = def;
		if (!given && !v && stage) {
			/* "ARG X" in a stage takes the global ARG's value */
			struct kv *g = kvs_find(b->global, b->n_global, pairs[i].key);
			v = g ? g->value : NULL;
		}
		if (stage)
			kvs_set(&stage->args, &stage->n_args, pairs[i].key, v);
		else
			kvs_set(&b->global, &b->n_global, pairs[i].key, v);
	}
	df_pairs_free(pairs, n);
	return r;
}

/* --- the transaction and the tree ids --------------------------------------- */

static int txn(struct builder *b, struct store_txn **ret)
{
	if (!b->txn) {
		int r = store_txn_begin(b->s, &b->txn, b->err);
		if (r < 0)
			return r;
	}
	*ret = b->txn;
	return 0;
}

/* Make everything staged durable and visible, then record the cache entries
 * whose trees it contained. */
static int commit(struct builder *b)
{
	if (b->txn) {
		struct store_txn *t = TAKE_PTR(b->txn);
		int r = store_txn_commit(t, b->err);
		if (r < 0)
			return r;
	}
	if (b->n_pend && b->st && !b->o->no_record) {
		struct cairn_error e = {0};
		int r = state_begin(b->st, &e);
		for (size_t i = 0; i < b->n_pend && r == 0; i++)
			r = state_cache_put(b->st, b->pend_keys[i], b->pend_trees[i], &e);
		if (r == 0)
			r = state_commit(b->st, &e);
		else
			state_rollback(b->st);
		if (r < 0 && b->o->progress && b->o->progress->warn) {
			_cleanup_free_ char *m =
				xasprintf("the build cache was not updated: %s", error_message(&e));
			b->o->progress->warn(m, b->o->progress->userdata);
		}
		error_clear(&e);
	}
	for (size_t i = 0; i < b->n_pend; i++) {
		free(b->pend_keys[i]);
		free(b->pend_trees[i]);
	}
	b->n_pend = 0;
	return 0;
}

static void pend_cache(struct builder *b, const char *key, const struct digest *tree)
{
	b->pend_keys = xreallocarray(b->pend_keys, b->n_pend + 1, sizeof(char *));
	b->pend_trees = xreallocarray(b->pend_trees, b->n_pend + 1, sizeof(char *));
	char ts[DIGEST_STR_LEN];
	digest_to_string(tree, ts);
	b->pend_keys[b->n_pend] = xstrdup(key);
	b->pend_trees[b->n_pend++] = xstrdup(ts);
}

/* Store the stage's tree (when changed) and return its id; *ret_existed
 * says whether the store already had it (a step that made it did no new
 * work). */
static int stage_tree_id(struct builder *b, struct stage *sg, bool *ret_existed)
{
	if (sg->tree_id_valid) {
		if (ret_existed)
			*ret_existed = true;
		return 0;
	}
	_cleanup_free_ char *data = NULL;
	size_t len;
	tree_encode(&sg->tree, &data, &len);
	digest_buffer(data, len, &sg->tree_id);
	bool existed = store_has_object(b->s, &sg->tree_id);
	if (ret_existed)
		*ret_existed = existed;
	if (!existed) {
		struct store_txn *t;
		int r = txn(b, &t);
		if (r < 0)
			return r;
		r = store_txn_put(t, data, len, &sg->tree_id);
		if (r < 0)
			return error_set(b->err, -r, "storing a tree: %s", strerror(-r));
	}
	sg->tree_id_valid = true;
	return 0;
}

static int load_tree(struct builder *b, const struct digest *id, struct tree *ret)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = store_read_object(b->s, id, &data, &len, b->err);
	if (r < 0)
		return r;
	return tree_decode(data, len, ret, b->err);
}

/* Read a small file of the tree (for /etc/passwd): -ENOENT when absent. */
static int tree_read(struct builder *b, const struct tree *t, const char *path, char **ret)
{
	const struct tree_entry *e = tree_find(t, path);
	if (!e || e->type != ENTRY_FILE || e->size > (1u << 20))
		return -ENOENT;
	int r = commit(b);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = store_open_object(b->s, &e->digest);
	if (fd < 0)
		return fd;
	size_t len;
	return read_file_at(fd, "", ret, &len, 1u << 20);
}

/* --- the context ------------------------------------------------------------ */

static bool ctx_exclude(const char *path, bool is_dir, void *u)
{
	struct builder *b = u;
	if (!ignore_excluded(&b->ig, path))
		return false;
	return !(is_dir && ignore_may_reinclude_below(&b->ig, path));
}

static int context_scan(struct builder *b)
{
	if (b->ctx_stored)
		return 0;
	int64_t t0 = now_monotonic_ns();
	struct dir_scan_opts so = {.use_cache = true};
	if (b->have_ignore) {
		so.exclude = ctx_exclude;
		so.userdata = b;
	}
	int r = dir_scan_walk(b->s, b->o->context, &so, &b->ctx, b->err);
	if (r < 0)
		return error_wrap(b->err, "reading the build context");
	struct store_txn *t;
	r = txn(b, &t);
	if (r == 0)
		r = dir_scan_store(b->ctx, t, b->err);
	if (r < 0)
		return error_wrap(b->err, "reading the build context");
	_cleanup_free_ char *data = NULL;
	size_t len;
	tree_encode(dir_scan_tree(b->ctx), &data, &len);
	r = store_txn_put(t, data, len, &b->ctx_id);
	if (r < 0)
		return error_set(b->err, -r, "storing the context's tree: %s", strerror(-r));
	b->ctx_stored = true;
	trace_phase("build: context", t0);
	return 0;
}

/* --- stages ----------------------------------------------------------------- */

static bool valid_stage_name(const char *s)
{
	if (!islower((unsigned char)s[0]))
		return false;
	for (const char *p = s; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-' &&
		    *p != '_' && *p != '.')
			return false;
	return strlen(s) <= 128;
}

static struct stage *find_stage(struct builder *b, const char *ref, size_t before)
{
	_cleanup_free_ char *low = xstrdup(ref);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < before && i < b->n_stages; i++)
		if (b->stages[i].name && streq(b->stages[i].name, low))
			return &b->stages[i];
	/* a number names a stage too (COPY --from=0) */
	char *end;
	errno = 0;
	unsigned long k = strtoul(ref, &end, 10);
	if (*ref && !*end && errno == 0 && k < before && k < b->n_stages)
		return &b->stages[k];
	return NULL;
}

static int split_stages(struct builder *b)
{
	for (size_t i = 0; i < b->df.n; i++) {
		const struct df_instr *in = &b->df.v[i];
		if (in->kind != DF_FROM) {
			if (b->n_stages == 0 && in->kind != DF_ARG)
				return error_set(b->err, EINVAL,
						 "%s:%u: %s before the first FROM (only ARG may come "
						 "first)",
						 b->df.name, in->line, df_kind_name(in->kind));
			continue;
		}
		if (in->n_args != 1 && !(in->n_args == 3 && strcasecmp(in->args[1], "as") == 0))
			return error_set(b->err, EINVAL,
					 "%s:%u: FROM expects IMAGE or IMAGE AS NAME", b->df.name,
					 in->line);
		if (df_flag(in, "platform"))
			return error_set(b->err, EINVAL,
					 "%s:%u: FROM --platform: cairn builds for the host's "
					 "platform only",
					 b->df.name, in->line);
		b->stages = xreallocarray(b->stages, b->n_stages + 1, sizeof(*b->stages));
		struct stage *sg = &b->stages[b->n_stages];
		*sg = (struct stage){.from = i, .end = b->df.n};
		if (b->n_stages)
			b->stages[b->n_stages - 1].end = i;
		b->n_stages++; /* owned from here on, even when refused below */
		if (in->n_args == 3) {
			sg->name = xstrdup(in->args[2]);
			for (char *p = sg->name; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (!valid_stage_name(sg->name))
				return error_set(b->err, EINVAL,
						 "%s:%u: FROM: stage name \"%s\" must start with a "
						 "letter and use only letters, digits, '-', '_', '.'",
						 b->df.name, in->line, in->args[2]);
			if (find_stage(b, sg->name, b->n_stages - 1))
				return error_set(b->err, EINVAL,
						 "%s:%u: FROM: a stage named \"%s\" already exists",
						 b->df.name, in->line, sg->name);
			snprintf(sg->label, sizeof(sg->label), "%s", sg->name);
		} else
			snprintf(sg->label, sizeof(sg->label), "stage-%zu", b->n_stages - 1);
	}
	if (!b->n_stages)
		return error_set(b->err, EINVAL, "%s: no FROM instruction", b->df.name);
	return 0;
}

/* Mark the stages the target needs (FROM another stage, COPY --from). */
static int mark_needed(struct builder *b, size_t k)
{
	struct stage *sg = &b->stages[k];
	if (sg->needed)
		return 0;
	sg->needed = true;
	for (size_t i = sg->from; i < sg->end; i++) {
		const struct df_instr *in = &b->df.v[i];
		const char *ref = NULL;
		if (in->kind == DF_FROM)
			ref = in->args[0];
		else if ((in->kind == DF_COPY || in->kind == DF_ADD) && df_flag(in, "from"))
			ref = df_flag(in, "from");
		if (!ref)
			continue;
		struct lookup_ctx c = {b, NULL};
		_cleanup_free_ char *x = df_expand(ref, b->df.escape, lookup, &c, b->err);
		if (!x)
			return wrap_at(b, in, -EINVAL);
		struct stage *dep = find_stage(b, x, k);
		if (dep) {
			int r = mark_needed(b, (size_t)(dep - b->stages));
			if (r < 0)
				return r;
		} else if (in->kind != DF_FROM) {
			/* COPY --from a stage defined later is an error, as in Docker */
			struct stage *later = find_stage(b, x, b->n_stages);
			if (later)
				return fail_at(b, in, EINVAL,
					       "--from=%s: stage \"%s\" is defined after this one", x,
					       x);
		}
	}
	return 0;
}

/* --- FROM -------------------------------------------------------------------- */

static int do_from(struct builder *b, struct stage *sg, const struct df_instr *in)
{
	struct lookup_ctx c = {b, NULL};
	_cleanup_free_ char *ref = df_expand(in->args[0], b->df.escape, lookup, &c, b->err);
	if (!ref)
		return wrap_at(b, in, -EINVAL);
	size_t k = (size_t)(sg - b->stages);
	struct stage *base = find_stage(b, ref, k);
	if (base && base->name) {
		tree_dup(&base->tree, &sg->tree);
		sg->tree_id = base->tree_id;
		sg->tree_id_valid = base->tree_id_valid;
		sg->config = json_deep_copy(base->config);
	} else if (streq(ref, "scratch")) {
		struct tree_entry *e = tree_add(&sg->tree);
		e->path = xstrdup(".");
		e->type = ENTRY_DIR;
		e->mode = 0755;
		sg->config = json_object();
		json_array_append_new(b->bases, json_pack("{s:s}", "ref", "scratch"));
	} else {
		char id[DIGEST_STR_LEN];
		int r = b->o->resolve(ref, id, b->o->resolve_userdata, b->err);
		if (r < 0)
			return wrap_at(b, in, r);
		struct digest d;
		struct image_manifest m;
		if (digest_from_string(id, &d) < 0)
			return fail_at(b, in, EINVAL, "%s: not an image id", id);
		r = image_load(b->s, &d, &m, &sg->tree, b->err);
		if (r < 0)
			return wrap_at(b, in, r);
		sg->tree_id = m.tree;
		sg->tree_id_valid = true;
		sg->config = json_deep_copy(m.config);
		image_manifest_free(&m);
		/* RUN right after FROM mounts the image's shared checkout */
		sg->stack_base = xasprintf("%s/checkouts/%s", store_root(b->s), id + 7);
		sg->stack_base_shared = true;
		sg->stack_valid = !strpbrk(sg->stack_base, ":,");
		json_t *o = json_object();
		json_object_set_new(o, "ref", json_string(ref));
		json_object_set_new(o, "id", json_string(id));
		json_array_append_new(b->bases, o);
	}
	json_t *env = config_get_array(sg->config, "Env");
	if (!env_lookup(env, "PATH"))
		json_array_insert_new(env, 0, json_string(DEFAULT_PATH));
	return 0;
}

/* --- RUN ------------------------------------------------------------------- */

static void shell_of(struct stage *sg, json_t *out)
{
	json_t *sh = json_object_get(sg->config, "Shell");
	if (json_is_array(sh) && json_array_size(sh)) {
		size_t i;
		json_t *x;
		json_array_foreach(sh, i, x) json_array_append(out, x);
	} else {
		json_array_append_new(out, json_string("/bin/sh"));
		json_array_append_new(out, json_string("-c"));
	}
}

/* The command of RUN, CMD, ENTRYPOINT: exec form as written, shell form
 * through the stage's shell. */
static json_t *command_of(struct stage *sg, const struct df_instr *in)
{
	json_t *a = json_array();
	if (in->exec_form) {
		for (size_t i = 0; i < in->n_args; i++)
			json_array_append_new(a, json_string(in->args[i]));
	} else {
		shell_of(sg, a);
		json_array_append_new(a, json_string(in->raw));
	}
	return a;
}

static char **json_strv(json_t *a)
{
	size_t n = json_array_size(a), i;
	char **v = xcalloc(n + 1, sizeof(char *));
	json_t *x;
	json_array_foreach(a, i, x) v[i] = xstrdup(json_string_value(x));
	return v;
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* Keep the last TAIL_MAX bytes of output. */
static void tail_add(struct buf *t, const char *data, size_t len)
{
	buf_put(t, data, len);
	if (t->len > 2 * TAIL_MAX) {
		memmove(t->data, t->data + t->len - TAIL_MAX, TAIL_MAX);
		t->len = TAIL_MAX;
	}
}

/* The last TAIL_LINES lines of the output. */
static char *tail_lines(const struct buf *t)
{
	if (!t->len)
		return xstrdup("");
	size_t end = t->len, start = end;
	if (start && t->data[start - 1] == '\n')
		start--;
	unsigned lines = 0;
	while (start > 0) {
		if (t->data[start - 1] == '\n' && ++lines == TAIL_LINES)
			break;
		start--;
	}
	return xstrndup(t->data + start, end - start);
}

static char *scratch_dir(struct builder *b, const char *what)
{
	char *name = xasprintf("%s.%u", what, ++b->n_dirs);
	return name;
}

/* Run argv in a build instance on the stage's tree; its changes become the
 * tree's. */
static int run_step(struct builder *b, struct stage *sg, const struct df_instr *in,
		    json_t *argv, json_t *env, enum net_mode net)
{
	int r = commit(b); /* the checkout links to committed objects */
	if (r < 0)
		return r;
	_cleanup_free_ char *lower_n = scratch_dir(b, "lower"), *upper_n = scratch_dir(b, "upper"),
			    *work_n = scratch_dir(b, "work"), *inst_n = scratch_dir(b, "inst");
	_cleanup_free_ char *lower = xasprintf("%s/%s", b->scratch, lower_n),
			    *upper = xasprintf("%s/%s", b->scratch, upper_n),
			    *work = xasprintf("%s/%s", b->scratch, work_n),
			    *inst = xasprintf("%s/%s", b->scratch, inst_n);
	int64_t t0 = now_monotonic_ns();
	if (sg->stack_valid && sg->n_layers < MAX_LAYERS && sg->stack_base_shared &&
	    access(sg->stack_base, F_OK) < 0) {
		/* the shared checkout, made once (as cairn run does) */
		r = store_checkout(b->s, &sg->tree, sg->stack_base, true, b->err);
		if (r < 0 && access(sg->stack_base, F_OK) < 0)
			return wrap_at(b, in, r);
		error_clear(b->err);
	}
	/* mount(2) takes one page of options: the stack must fit in it */
	size_t stack_len = strlen(sg->stack_base ? sg->stack_base : "") + strlen(b->scratch) * 2;
	for (size_t i = 0; i < sg->n_layers; i++)
		stack_len += strlen(sg->layers[i]) + 1;
	if (!sg->stack_valid || sg->n_layers >= MAX_LAYERS || stack_len + strlen(upper) > 3000) {
		r = store_checkout(b->s, &sg->tree, lower, false, b->err);
		if (r < 0)
			return wrap_at(b, in, r);
		for (size_t i = 0; i < sg->n_layers; i++)
			free(sg->layers[i]);
		sg->n_layers = 0;
		free(sg->stack_base);
		sg->stack_base = xstrdup(lower);
		sg->stack_base_shared = false;
		sg->stack_valid = true;
	}
	trace_phase("build: checkout", t0);
	/* the stack, top first */
	struct buf lb = {0};
	for (size_t i = sg->n_layers; i-- > 0;) {
		buf_puts(&lb, sg->layers[i]);
		buf_putc(&lb, ':');
	}
	buf_puts(&lb, sg->stack_base);
	_cleanup_free_ char *lowers = buf_steal(&lb);
	const struct tree_entry *root = tree_find(&sg->tree, ".");
	if (mkdirat(b->scratch_fd, upper_n, 0755) < 0 || mkdirat(b->scratch_fd, work_n, 0700) < 0 ||
	    mkdirat(b->scratch_fd, inst_n, 0755) < 0 ||
	    fchownat(b->scratch_fd, upper_n, root->uid, root->gid, 0) < 0 ||
	    fchmodat(b->scratch_fd, upper_n, root->mode, 0) < 0)
		return error_set(b->err, errno, "preparing a build instance in %s: %s", b->scratch,
				 strerror(errno));
	char **args = json_strv(argv), **envv = json_strv(env);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		strv_free(args);
		strv_free(envv);
		return error_set(b->err, errno, "pipe: %s", strerror(errno));
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	const char *wd = json_string_value(json_object_get(sg->config, "WorkingDir"));
	const char *user = json_string_value(json_object_get(sg->config, "User"));
	struct run_spec spec = {
		.lower = lowers,
		.state_dir = inst,
		.upper = upper,
		.work = work,
		.argv = args,
		.env = envv,
		.workdir = wd && *wd ? wd : NULL,
		.user = user && *user ? user : NULL,
		.hostname = "cairn-build",
		.die_with_parent = true,
		.net = net,
		.stdio = {devnull, pipefd[1], pipefd[1]},
	};
	struct runtime_instance *ri = NULL;
	t0 = now_monotonic_ns();
	r = runtime_start(&spec, &ri, b->err);
	close(pipefd[1]);
	safe_close(devnull);
	strv_free(args);
	strv_free(envv);
	if (r < 0) {
		close(pipefd[0]);
		return wrap_at(b, in, r);
	}
	b->tail.len = 0;
	const struct build_progress *p = b->o->progress;
	char chunk[8192];
	bool killed = false;
	for (;;) {
		if (!killed && b->o->cancel && *b->o->cancel) {
			(void)kill(runtime_instance_pid(ri), SIGKILL);
			killed = true;
		}
		struct pollfd pfd = {pipefd[0], POLLIN, 0};
		int n = poll(&pfd, 1, 100);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0) {
			if (p && p->step_output)
				p->step_output("", 0, p->userdata);
			continue;
		}
		ssize_t k = read(pipefd[0], chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		tail_add(&b->tail, chunk, (size_t)k);
		if (p && p->step_output)
			p->step_output(chunk, (size_t)k, p->userdata);
	}
	close(pipefd[0]);
	struct run_result rr;
	runtime_wait(ri, &rr);
	trace_phase("build: run", t0);
	(void)rm_rf_at(b->scratch_fd, inst_n);
	if (killed) {
		(void)rm_rf_at(b->scratch_fd, upper_n);
		(void)rm_rf_at(b->scratch_fd, work_n);
		return error_set(b->err, EINTR, "%s:%u: interrupted", b->df.name, in->line);
	}
	if (rr.exit_code != 0) {
		free(b->res->failed_output);
		if (rr.message[0]) {
			tail_add(&b->tail, rr.message, strlen(rr.message));
			tail_add(&b->tail, "\n", 1);
		}
		b->res->failed_output = tail_lines(&b->tail);
		_cleanup_free_ char *text = instr_text(in);
		(void)rm_rf_at(b->scratch_fd, upper_n);
		(void)rm_rf_at(b->scratch_fd, work_n);
		return error_set(b->err, ECANCELED, "%s:%u: %s: exit code %d%s", b->df.name,
				 in->line, text, rr.exit_code,
				 rr.oom_killed ? " (out of memory)" : "");
	}
	/* The writable layer, as changes to the tree. */
	t0 = now_monotonic_ns();
	struct dir_scan *ds = NULL;
	struct dir_scan_opts so = {.overlay_upper = true};
	r = dir_scan_walk(b->s, upper, &so, &ds, b->err);
	struct store_txn *t = NULL;
	if (r == 0)
		r = txn(b, &t);
	if (r == 0)
		r = dir_scan_store(ds, t, b->err);
	if (r == 0) {
		struct changes c = {0};
		char *const *wh, *const *op;
		size_t nw, no;
		dir_scan_overlay(ds, &wh, &nw, &op, &no);
		for (size_t i = 0; i < nw; i++)
			changes_remove(&c, wh[i]);
		for (size_t i = 0; i < no; i++)
			changes_clear(&c, op[i]);
		tree_dup(dir_scan_tree(ds), &c.add);
		r = tree_apply(&sg->tree, &c, b->err);
		changes_free(&c);
		sg->tree_id_valid = false;
	}
	dir_scan_free(ds);
	(void)rm_rf_at(b->scratch_fd, work_n);
	trace_phase("build: layer", t0);
	if (r < 0) {
		(void)rm_rf_at(b->scratch_fd, upper_n);
		sg->stack_valid = false;
		return wrap_at(b, in, r);
	}
	/* the layer stays: the next RUN mounts it below its own */
	sg->layers = xreallocarray(sg->layers, sg->n_layers + 1, sizeof(char *));
	sg->layers[sg->n_layers++] = TAKE_PTR(upper);
	return 0;
}

static int do_run(struct builder *b, struct stage *sg, const struct df_instr *in, bool *cached)
{
	enum net_mode net = b->o->net;
	const char *nf = df_flag(in, "network");
	if (nf) {
		if (streq(nf, "none"))
			net = NET_NONE;
		else if (streq(nf, "host"))
			net = NET_HOST;
		else if (!streq(nf, "default"))
			return fail_at(b, in, EINVAL, "--network=%s: expected none, host or default",
				       nf);
	}
	if (in->n_args == 0)
		return fail_at(b, in, EINVAL, "needs a command");
	json_t *argv = command_of(sg, in);
	/* The environment: the image's, then the stage's ARGs it does not set. */
	json_t *env = json_deep_copy(config_get_array(sg->config, "Env"));
	for (size_t i = 0; i < sg->n_args; i++)
		if (sg->args[i].value && !env_lookup(env, sg->args[i].key))
			env_set(env, sg->args[i].key, sg->args[i].value);
	if (!env_lookup(env, "SOURCE_DATE_EPOCH")) {
		const char *sde = getenv("SOURCE_DATE_EPOCH");
		env_set(env, "SOURCE_DATE_EPOCH", sde && *sde ? sde : "0");
	}
	_cleanup_free_ char *kd = NULL;
	int r = stage_tree_id(b, sg, NULL);
	if (r < 0)
		goto out;
	char parent[DIGEST_STR_LEN];
	digest_to_string(&sg->tree_id, parent);
	json_t *k = json_object();
	json_object_set_new(k, "v", json_integer(CACHE_KEY_VERSION));
	json_object_set_new(k, "op", json_string("run"));
	json_object_set_new(k, "parent", json_string(parent));
	json_object_set(k, "argv", argv);
	json_object_set(k, "env", env);
	json_object_set(k, "user", json_object_get(sg->config, "User"));
	json_object_set(k, "workdir", json_object_get(sg->config, "WorkingDir"));
	kd = json_dumps(k, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(k);
	struct digest kdig;
	digest_buffer(kd, strlen(kd), &kdig);
	char key[DIGEST_STR_LEN];
	digest_to_string(&kdig, key);
	if (!b->o->no_cache && b->st) {
		char tid[DIGEST_STR_LEN];
		struct digest td;
		struct cairn_error e = {0};
		if (state_cache_get(b->st, key, tid, &e) == 0 && digest_from_string(tid, &td) == 0 &&
		    store_has_object(b->s, &td)) {
			struct tree t = {0};
			if (load_tree(b, &td, &t) == 0) {
				tree_free(&sg->tree);
				sg->tree = t;
				sg->stack_valid = false;
				sg->tree_id = td;
				sg->tree_id_valid = true;
				*cached = true;
				goto out;
			}
			tree_free(&t);
			error_clear(b->err);
		}
		error_clear(&e);
	}
	r = run_step(b, sg, in, argv, env, net);
	if (r == 0)
		r = stage_tree_id(b, sg, NULL);
	if (r == 0)
		pend_cache(b, key, &sg->tree_id);
out:
	json_decref(argv);
	json_decref(env);
	return r;
}

/* --- COPY and ADD ------------------------------------------------------------- */

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static bool is_url(const char *s)
{
	return startswith(s, "http://") || startswith(s, "https://") || startswith(s, "git@") ||
	       startswith(s, "git://") || startswith(s, "ftp://");
}

/* "user[:group]" as numbers, names looked up in the stage's /etc/passwd
 * and /etc/group. */
static int parse_owner_part(struct builder *b, struct stage *sg, const char *s, const char *file,
			    uint32_t *ret, uint32_t *ret_primary_gid)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s && !*end && errno == 0 && v <= UINT32_MAX) {
		*ret = (uint32_t)v;
		return 1;
	}
	_cleanup_free_ char *text = NULL;
	int r = tree_read(b, &sg->tree, file, &text);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *f[4] = {0};
		char *q = line;
		for (int i = 0; i < 4 && q; i++) {
			f[i] = q;
			q = strchr(q, ':');
			if (q)
				*q++ = 0;
		}
		if (f[0] && f[2] && streq(f[0], s)) {
			*ret = (uint32_t)strtoul(f[2], NULL, 10);
			if (ret_primary_gid && f[3])
				*ret_primary_gid = (uint32_t)strtoul(f[3], NULL, 10);
			return 1;
		}
	}
	return 0;
}

static int parse_chown(struct builder *b, struct stage *sg, const struct df_instr *in,
		       const char *spec, uint32_t *uid, uint32_t *gid)
{
	_cleanup_free_ char *u = xstrdup(spec);
	char *g = strchr(u, ':');
	if (g)
		*g++ = 0;
	uint32_t pgid = UINT32_MAX;
	int r = parse_owner_part(b, sg, u, "etc/passwd", uid, &pgid);
	if (r < 0)
		return wrap_at(b, in, r);
	if (r == 0)
		return fail_at(b, in, EINVAL, "--chown=%s: no user \"%s\" in the image's /etc/passwd",
			       spec, u);
	if (!g) {
		/* only a user: the same number as group, as Docker does */
		*gid = *uid;
		return 0;
	}
	r = parse_owner_part(b, sg, g, "etc/group", gid, NULL);
	if (r < 0)
		return wrap_at(b, in, r);
	if (r == 0)
		return fail_at(b, in, EINVAL, "--chown=%s: no group \"%s\" in the image's /etc/group",
			       spec, g);
	return 0;
}

/* Does the content look like a tar archive (plain or compressed)? */
static bool looks_like_archive(const unsigned char *h, size_t n)
{
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return true; /* gzip */
	if (n >= 3 && memcmp(h, "BZh", 3) == 0)
		return true;
	if (n >= 6 && memcmp(h, "\xfd" "7zXZ\0", 6) == 0)
		return true;
	if (n >= 4 && memcmp(h, "\x28\xb5\x2f\xfd", 4) == 0)
		return true; /* zstd */
	if (n >= 262 && memcmp(h + 257, "ustar", 5) == 0)
		return true;
	return false;
}

struct copy_src {
	const struct tree *tree;
	bool from_context;
	const struct tree_entry *e; /* a matched source */
};

struct copy_job {
	struct builder *b;
	struct stage *sg;
	const struct df_instr *in;
	struct changes c;
	bool chown;
	uint32_t uid, gid;
	bool chmod;
	uint32_t mode;
	bool add;
	const struct tree *src;
	bool from_context;
};

/* Add e (of the source tree) at path dst (already resolved). */
static void copy_entry(struct copy_job *j, const struct tree_entry *e, const char *dst,
		       const char *src_prefix, const char *dst_prefix)
{
	struct tree_entry *n = tree_add(&j->c.add);
	tree_entry_copy(n, e, dst);
	if (j->from_context) {
		n->uid = n->gid = 0;
		xattrs_free(n->xattrs, n->n_xattrs);
		n->xattrs = NULL;
		n->n_xattrs = 0;
	}
	if (j->chown) {
		n->uid = j->uid;
		n->gid = j->gid;
	}
	if (j->chmod && n->type != ENTRY_SYMLINK)
		n->mode = j->mode;
	if (n->link) {
		/* a hardlink group inside what is copied stays one */
		char *nl = NULL;
		if (src_prefix && (streq(src_prefix, ".") || (startswith(n->link, src_prefix) &&
							    n->link[strlen(src_prefix)] == '/'))) {
			const char *rest = streq(src_prefix, ".")
						   ? n->link
						   : n->link + strlen(src_prefix) + 1;
			nl = path_join(dst_prefix, rest);
		}
		free(n->link);
		n->link = nl;
	}
}

static const struct tree_entry *added(struct copy_job *j, const char *path)
{
	for (size_t i = j->c.add.n; i-- > 0;)
		if (streq(j->c.add.entries[i].path, path))
			return &j->c.add.entries[i];
	return NULL;
}

/* Make the directories leading to path (exclusive) exist. */
static int make_parents(struct copy_job *j, const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);
	char *slash = p;
	while ((slash = strchr(slash, '/'))) {
		*slash = 0;
		const struct tree_entry *e = tree_find(&j->sg->tree, p);
		if (!e)
			e = added(j, p);
		if (e && e->type != ENTRY_DIR)
			return fail_at(j->b, j->in, ENOTDIR, "cannot copy to /%s: /%s is not a directory",
				       path, p);
		if (!e) {
			struct tree_entry *n = tree_add(&j->c.add);
			n->path = xstrdup(p);
			n->type = ENTRY_DIR;
			n->mode = 0755;
		}
		*slash++ = '/';
	}
	return 0;
}

/* Resolve the directory part of a destination through the image's
 * symlinks, keeping the last component. */
static int resolve_dest(struct copy_job *j, const char *path, char **ret)
{
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (!slash) {
		*ret = xstrdup(path);
		return 0;
	}
	*slash = 0;
	_cleanup_free_ char *rdir = NULL;
	int r = tree_resolve(&j->sg->tree, dir, true, &rdir, j->b->err);
	if (r < 0)
		return wrap_at(j->b, j->in, r);
	*ret = path_join(rdir, slash + 1);
	return 0;
}

static int add_archive(struct copy_job *j, const struct tree_entry *e, const char *dest)
{
	struct builder *b = j->b;
	_cleanup_close_ int fd =
		open_in_root(b->ctx_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return fail_at(b, j->in, -fd, "%s: %s", e->path, strerror(-fd));
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_file_at(fd, "", &data, &len, 1ull << 32);
	if (r < 0)
		return fail_at(b, j->in, -r, "%s: %s", e->path, strerror(-r));
	struct store_txn *t;
	r = txn(b, &t);
	if (r < 0)
		return r;
	struct tree x = {0};
	struct import_limits lim = {IMPORT_DEFAULT_MAX_BYTES, IMPORT_DEFAULT_MAX_ENTRIES,
				    IMPORT_DEFAULT_MAX_DEPTH};
	uint64_t skipped;
	r = image_tar_from_memory(t, data, len, &lim, &x, &skipped, b->err);
	if (r < 0) {
		error_wrap(b->err, "%s", e->path);
		return wrap_at(b, j->in, r);
	}
	const struct tree_entry *d = tree_find(&j->sg->tree, dest);
	if (!d && !streq(dest, ".")) {
		r = make_parents(j, dest);
		if (r == 0 && !added(j, dest)) {
			struct tree_entry *n = tree_add(&j->c.add);
			n->path = xstrdup(dest);
			n->type = ENTRY_DIR;
			n->mode = 0755;
		}
	} else if (d && d->type != ENTRY_DIR)
		r = fail_at(b, j->in, ENOTDIR, "cannot extract %s into /%s: not a directory",
			    e->path, dest);
	for (size_t i = 0; i < x.n && r == 0; i++) {
		if (streq(x.entries[i].path, "."))
			continue;
		_cleanup_free_ char *p = path_join(dest, x.entries[i].path);
		bool saved = j->from_context;
		j->from_context = false; /* an archive's owners are kept */
		copy_entry(j, &x.entries[i], p, ".", dest);
		j->from_context = saved;
	}
	tree_free(&x);
	return r;
}

static int copy_item(struct copy_job *j, const struct tree_entry *e, const char *dest,
		     bool dest_is_dir)
{
	struct builder *b = j->b;
	if (e->type == ENTRY_DIR) {
		/* the directory's content goes into dest */
		const struct tree_entry *d = tree_find(&j->sg->tree, dest);
		if (!streq(dest, ".") && (!d || d->type != ENTRY_DIR)) {
			int r = make_parents(j, dest);
			if (r < 0)
				return r;
			if (!added(j, dest)) {
				struct tree_entry *n = tree_add(&j->c.add);
				n->path = xstrdup(dest);
				n->type = ENTRY_DIR;
				n->mode = 0755;
				if (j->chown) {
					n->uid = j->uid;
					n->gid = j->gid;
				}
			}
		}
		bool root = streq(e->path, ".");
		size_t pl = strlen(e->path);
		for (size_t i = 0; i < j->src->n; i++) {
			const struct tree_entry *x = &j->src->entries[i];
			if (root ? streq(x->path, ".")
				 : !(startswith(x->path, e->path) && x->path[pl] == '/'))
				continue;
			_cleanup_free_ char *p = path_join(dest, root ? x->path : x->path + pl + 1);
			/* a directory of the source landing on a symlink of the image
			 * follows it */
			_cleanup_free_ char *rp = NULL;
			int r = resolve_dest(j, p, &rp);
			if (r < 0)
				return r;
			copy_entry(j, x, rp, e->path, dest);
		}
		return 0;
	}
	_cleanup_free_ char *target = NULL;
	if (dest_is_dir) {
		const char *base = strrchr(e->path, '/');
		target = path_join(dest, base ? base + 1 : e->path);
	} else
		target = xstrdup(dest);
	if (j->add && j->from_context && e->type == ENTRY_FILE) {
		_cleanup_close_ int fd =
			open_in_root(b->ctx_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
		unsigned char h[512];
		ssize_t n = fd >= 0 ? pread(fd, h, sizeof(h), 0) : -1;
		if (n > 0 && looks_like_archive(h, (size_t)n))
			return add_archive(j, e, dest);
	}
	if (streq(target, "."))
		return fail_at(b, j->in, EINVAL, "cannot copy a file over /");
	int r = make_parents(j, target);
	if (r < 0)
		return r;
	copy_entry(j, e, target, NULL, NULL);
	return 0;
}

static int do_copy(struct builder *b, struct stage *sg, const struct df_instr *in, bool *cached)
{
	struct copy_job j = {.b = b, .sg = sg, .in = in, .add = in->kind == DF_ADD};
	_cleanup_free_ char *dest_raw = NULL, *abs = NULL, *dest = NULL;
	int r = 0;
	if (in->n_args < 2)
		return fail_at(b, in, EINVAL, "expects at least one source and a destination");
	if (df_flag(in, "checksum"))
		return fail_at(b, in, EINVAL,
			       "--checksum is for remote sources, which cairn does not fetch");
	const char *chown = df_flag(in, "chown"), *chmod = df_flag(in, "chmod"),
		   *from = df_flag(in, "from");
	struct tree from_tree = {0};
	if (from) {
		_cleanup_free_ char *x = expand(b, sg, in, from);
		if (!x)
			return -EINVAL;
		struct stage *fs = find_stage(b, x, (size_t)(sg - b->stages));
		if (fs) {
			j.src = &fs->tree;
		} else {
			char id[DIGEST_STR_LEN];
			struct digest d;
			r = b->o->resolve(x, id, b->o->resolve_userdata, b->err);
			if (r < 0)
				return error_wrap(b->err,
						  "%s:%u: %s --from=%s: not a stage of this "
						  "Dockerfile nor an image",
						  b->df.name, in->line, df_kind_name(in->kind), x);
			struct image_manifest m;
			if (digest_from_string(id, &d) < 0 ||
			    (r = image_load(b->s, &d, &m, &from_tree, b->err)) < 0)
				return wrap_at(b, in, r < 0 ? r : -EINVAL);
			image_manifest_free(&m);
			json_t *o = json_object();
			json_object_set_new(o, "ref", json_string(x));
			json_object_set_new(o, "id", json_string(id));
			json_array_append_new(b->bases, o);
			j.src = &from_tree;
		}
	} else {
		r = context_scan(b);
		if (r < 0)
			return r;
		j.src = dir_scan_tree(b->ctx);
		j.from_context = true;
	}
	if (chown) {
		_cleanup_free_ char *x = expand(b, sg, in, chown);
		r = x ? parse_chown(b, sg, in, x, &j.uid, &j.gid) : -EINVAL;
		if (r < 0)
			goto out;
		j.chown = true;
	}
	if (chmod) {
		char *end;
		unsigned long m = strtoul(chmod, &end, 8);
		if (!*chmod || *end || m > 07777) {
			r = fail_at(b, in, EINVAL, "--chmod=%s: expected octal permissions like 0755",
				    chmod);
			goto out;
		}
		j.chmod = true;
		j.mode = (uint32_t)m;
	}
	/* Expand every argument; the last is the destination. */
	size_t n_src = in->n_args - 1;
	dest_raw = expand(b, sg, in, in->args[n_src]);
	if (!dest_raw) {
		r = -EINVAL;
		goto out;
	}
	const struct tree_entry **items = xcalloc(1, sizeof(*items));
	size_t n_items = 0;
	for (size_t i = 0; i < n_src && r == 0; i++) {
		_cleanup_free_ char *s = expand(b, sg, in, in->args[i]);
		if (!s) {
			r = -EINVAL;
			break;
		}
		if (is_url(s)) {
			r = fail_at(b, in, EINVAL,
				    "%s: remote sources are not supported (cairn builds offline); "
				    "put the file in the build context and COPY it",
				    s);
			break;
		}
		_cleanup_free_ char *clean = path_clean(s);
		size_t before = n_items;
		if (has_glob(clean)) {
			if (!path_pattern_valid(clean)) {
				r = fail_at(b, in, EINVAL, "%s: bad pattern", s);
				break;
			}
			for (size_t k = 0; k < j.src->n; k++)
				if (!streq(j.src->entries[k].path, ".") &&
				    path_match(clean, j.src->entries[k].path)) {
					items = xreallocarray(items, n_items + 1, sizeof(*items));
					items[n_items++] = &j.src->entries[k];
				}
		} else {
			_cleanup_free_ char *rp = NULL;
			r = tree_resolve(j.src, clean, true, &rp, b->err);
			if (r < 0) {
				wrap_at(b, in, r);
				break;
			}
			const struct tree_entry *e = tree_find(j.src, rp);
			if (e) {
				items = xreallocarray(items, n_items + 1, sizeof(*items));
				items[n_items++] = e;
			}
		}
		if (n_items == before)
			r = fail_at(b, in, ENOENT, "%s: no such file in %s", s,
				    from ? "the source stage" : "the build context");
	}
	if (r < 0) {
		free(items);
		goto out;
	}
	/* The destination: relative to WORKDIR, through the image's symlinks. */
	const char *wd = json_string_value(json_object_get(sg->config, "WorkingDir"));
	abs = dest_raw[0] == '/' ? xstrdup(dest_raw)
				 : xasprintf("%s/%s", wd ? wd : "/", dest_raw);
	bool slash = dest_raw[strlen(dest_raw) - 1] == '/' || streq(dest_raw, ".") ||
		     endswith(dest_raw, "/.");
	if (n_items > 1 && !slash) {
		free(items);
		r = fail_at(b, in, EINVAL,
			    "with more than one source the destination must be a directory ending "
			    "in /");
		goto out;
	}
	r = tree_resolve(&sg->tree, abs, true, &dest, b->err);
	if (r < 0) {
		free(items);
		wrap_at(b, in, r);
		goto out;
	}
	const struct tree_entry *de = tree_find(&sg->tree, dest);
	bool dest_is_dir = slash || (de && de->type == ENTRY_DIR);
	if (!dest_is_dir) {
		/* the last component is a name to create: keep it as written */
		free(dest);
		dest = NULL;
		_cleanup_free_ char *c = path_clean(abs);
		r = resolve_dest(&j, c, &dest);
		if (r < 0) {
			free(items);
			goto out;
		}
	}
	for (size_t i = 0; i < n_items && r == 0; i++)
		r = copy_item(&j, items[i], dest, dest_is_dir);
	free(items);
	if (r < 0)
		goto out;
	r = tree_apply(&sg->tree, &j.c, b->err);
	sg->stack_valid = false;
	if (r < 0) {
		wrap_at(b, in, r);
		goto out;
	}
	sg->tree_id_valid = false;
	r = stage_tree_id(b, sg, cached);
out:
	changes_free(&j.c);
	tree_free(&from_tree);
	return r;
}

/* --- config instructions --------------------------------------------------- */

static int do_env_label(struct builder *b, struct stage *sg, const struct df_instr *in)
{
	struct df_pair *pairs = NULL;
	size_t n = 0;
	int r = df_pairs(in, b->df.escape, &pairs, &n, b->err);
	if (r < 0)
		return wrap_at(b, in, r);
	/* Every value sees the variables as they were before the instruction. */
	char **vals = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_free_ char *k = expand(b, sg, in, pairs[i].key);
		vals[i] = expand(b, sg, in, pairs[i].value ? pairs[i].value : "");
		if (!vals[i] || !k) {
			r = -EINVAL;
			break;
		}
		free(pairs[i].key);
		pairs[i].key = TAKE_PTR(k);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (in->kind == DF_ENV)
			env_set(config_get_array(sg->config, "Env"), pairs[i].key, vals[i]);
		else
			json_object_set_new(config_get_object(sg->config, "Labels"), pairs[i].key,
					    json_string(vals[i]));
	}
	for (size_t i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	df_pairs_free(pairs, n);
	return r;
}

/* Go-style durations: "30s", "1m30s", "500ms", "1h". */
static int parse_duration(const char *s, int64_t *ret)
{
	int64_t total = 0;
	if (!*s)
		return -EINVAL;
	if (streq(s, "0")) {
		*ret = 0;
		return 0;
	}
	while (*s) {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (end == s || errno || v < 0)
			return -EINVAL;
		s = end;
		int64_t unit;
		if (startswith(s, "ns"))
			unit = 1, s += 2;
		else if (startswith(s, "us"))
			unit = 1000, s += 2;
		else if (startswith(s, "ms"))
			unit = 1000000, s += 2;
		else if (*s == 's')
			unit = 1000000000LL, s++;
		else if (*s == 'm')
			unit = 60 * 1000000000LL, s++;
		else if (*s == 'h')
			unit = 3600 * 1000000000LL, s++;
		else
			return -EINVAL;
		if (v * (double)unit > 1e18)
			return -ERANGE;
		total += (int64_t)(v * (double)unit);
	}
	*ret = total;
	return 0;
}

static int do_healthcheck(struct builder *b, struct stage *sg, const struct df_instr *in)
{
	json_t *h = json_object();
	json_t *test = json_array();
	if (streq(in->args[0], "NONE")) {
		json_array_append_new(test, json_string("NONE"));
		if (in->n_flags) {
			json_decref(h);
			json_decref(test);
			return fail_at(b, in, EINVAL, "NONE takes no options");
		}
	} else if (in->exec_form) {
		json_array_append_new(test, json_string("CMD"));
		for (size_t i = 1; i < in->n_args; i++)
			json_array_append_new(test, json_string(in->args[i]));
	} else {
		if (in->n_args < 2) {
			json_decref(h);
			json_decref(test);
			return fail_at(b, in, EINVAL, "CMD needs a command");
		}
		json_array_append_new(test, json_string("CMD-SHELL"));
		json_array_append_new(test, json_string(in->args[1]));
	}
	json_object_set_new(h, "Test", test);
	static const struct {
		const char *flag, *key;
	} durations[] = {{"interval", "Interval"},
			 {"timeout", "Timeout"},
			 {"start-period", "StartPeriod"},
			 {"start-interval", "StartInterval"}};
	for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
		const char *v = df_flag(in, durations[i].flag);
		if (!v)
			continue;
		int64_t ns;
		if (parse_duration(v, &ns) < 0) {
			json_decref(h);
			return fail_at(b, in, EINVAL, "--%s=%s: expected a duration like 30s or 1m30s",
				       durations[i].flag, v);
		}
		json_object_set_new(h, durations[i].key, json_integer(ns));
	}
	const char *rv = df_flag(in, "retries");
	if (rv) {
		char *end;
		long n = strtol(rv, &end, 10);
		if (!*rv || *end || n < 0 || n > 1000000) {
			json_decref(h);
			return fail_at(b, in, EINVAL, "--retries=%s: expected a number", rv);
		}
		json_object_set_new(h, "Retries", json_integer(n));
	}
	json_object_set_new(sg->config, "Healthcheck", h);
	return 0;
}

static bool valid_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < 65;
	const char *name = startswith(s, "SIG") ? s + 3 : s;
	for (int i = 1; i < 65; i++) {
		const char *a = sigabbrev_np(i);
		if (a && streq(a, name))
			return true;
	}
	return startswith(name, "RTMIN") || startswith(name, "RTMAX");
}

/* WORKDIR: set it, and make the directory (and its parents) when missing. */
static int do_workdir(struct builder *b, struct stage *sg, const struct df_instr *in,
		      bool *changed)
{
	if (in->n_args != 1)
		return fail_at(b, in, EINVAL, "expects one path");
	_cleanup_free_ char *x = expand(b, sg, in, in->args[0]);
	if (!x)
		return -EINVAL;
	const char *cur = json_string_value(json_object_get(sg->config, "WorkingDir"));
	_cleanup_free_ char *joined =
		x[0] == '/' ? xstrdup(x) : xasprintf("%s/%s", cur && *cur ? cur : "/", x);
	_cleanup_free_ char *clean = path_clean(joined);
	_cleanup_free_ char *wd = streq(clean, ".") ? xstrdup("/") : xasprintf("/%s", clean);
	json_object_set_new(sg->config, "WorkingDir", json_string(wd));
	_cleanup_free_ char *res = NULL;
	int r = tree_resolve(&sg->tree, clean, true, &res, b->err);
	if (r < 0)
		return wrap_at(b, in, r);
	const struct tree_entry *e = tree_find(&sg->tree, res);
	if (e && e->type == ENTRY_DIR)
		return 0;
	if (e)
		return fail_at(b, in, ENOTDIR, "%s is not a directory", wd);
	struct copy_job j = {.b = b, .sg = sg, .in = in};
	r = make_parents(&j, res);
	if (r == 0) {
		struct tree_entry *n = tree_add(&j.c.add);
		n->path = xstrdup(res);
		n->type = ENTRY_DIR;
		n->mode = 0755;
		r = tree_apply(&sg->tree, &j.c, b->err);
		if (r < 0)
			wrap_at(b, in, r);
	}
	changes_free(&j.c);
	sg->tree_id_valid = false;
	sg->stack_valid = false;
	*changed = true;
	return r;
}

static int do_config(struct builder *b, struct stage *sg, const struct df_instr *in,
		     bool *tree_changed)
{
	switch (in->kind) {
	case DF_ENV:
	case DF_LABEL:
		return do_env_label(b, sg, in);
	case DF_ARG:
		return do_arg(b, sg, in);
	case DF_WORKDIR:
		return do_workdir(b, sg, in, tree_changed);
	case DF_USER: {
		if (in->n_args != 1)
			return fail_at(b, in, EINVAL, "expects USER[:GROUP]");
		_cleanup_free_ char *x = expand(b, sg, in, in->args[0]);
		if (!x)
			return -EINVAL;
		json_object_set_new(sg->config, "User", json_string(x));
		return 0;
	}
	case DF_EXPOSE: {
		json_t *ports = config_get_object(sg->config, "ExposedPorts");
		for (size_t i = 0; i < in->n_args; i++) {
			_cleanup_free_ char *x = expand(b, sg, in, in->args[i]);
			if (!x)
				return -EINVAL;
			char *proto = strchr(x, '/');
			if (proto)
				*proto++ = 0;
			for (char *p = proto; p && *p; p++)
				*p = (char)tolower((unsigned char)*p);
			char *end;
			unsigned long lo = strtoul(x, &end, 10), hi = lo;
			if (*end == '-')
				hi = strtoul(end + 1, &end, 10);
			if (!*x || *end || lo == 0 || hi > 65535 || hi < lo || hi - lo > 1000 ||
			    (proto && !streq(proto, "tcp") && !streq(proto, "udp") &&
			     !streq(proto, "sctp")))
				return fail_at(b, in, EINVAL,
					       "%s: expected PORT[/tcp|udp|sctp] or a range "
					       "LOW-HIGH",
					       in->args[i]);
			for (unsigned long p = lo; p <= hi; p++) {
				char key[32];
				snprintf(key, sizeof(key), "%lu/%s", p, proto ? proto : "tcp");
				json_object_set_new(ports, key, json_object());
			}
		}
		return 0;
	}
	case DF_CMD:
	case DF_ENTRYPOINT: {
		json_t *cmd = command_of(sg, in);
		if (in->kind == DF_CMD) {
			json_object_set_new(sg->config, "Cmd", cmd);
			sg->cmd_set = true;
		} else {
			json_object_set_new(sg->config, "Entrypoint", cmd);
			/* a CMD inherited from the base makes no sense with a new
			 * ENTRYPOINT */
			if (!sg->cmd_set)
				json_object_del(sg->config, "Cmd");
		}
		return 0;
	}
	case DF_HEALTHCHECK:
		return do_healthcheck(b, sg, in);
	case DF_SHELL:
		json_object_set_new(sg->config, "Shell", strv_json(in->args, in->n_args));
		return 0;
	case DF_STOPSIGNAL: {
		if (in->n_args != 1)
			return fail_at(b, in, EINVAL, "expects one signal");
		_cleanup_free_ char *x = expand(b, sg, in, in->args[0]);
		if (!x)
			return -EINVAL;
		for (char *p = x; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		if (!valid_signal(x))
			return fail_at(b, in, EINVAL, "%s: not a signal", in->args[0]);
		json_object_set_new(sg->config, "StopSignal", json_string(x));
		return 0;
	}
	case DF_VOLUME: {
		json_t *vols = config_get_object(sg->config, "Volumes");
		for (size_t i = 0; i < in->n_args; i++) {
			_cleanup_free_ char *x = expand(b, sg, in, in->args[i]);
			if (!x)
				return -EINVAL;
			if (x[0] != '/')
				return fail_at(b, in, EINVAL, "%s: expected an absolute path", x);
			_cleanup_free_ char *c = path_clean(x);
			_cleanup_free_ char *p = xasprintf("/%s", c);
			json_object_set_new(vols, p, json_object());
		}
		return 0;
	}
	case DF_MAINTAINER:
		json_object_set_new(sg->config, "Author",
				    json_string(in->n_args ? in->args[0] : ""));
		return 0;
	default:
		return fail_at(b, in, EINVAL, "unexpected here");
	}
}

/* --- the build ---------------------------------------------------------------- */

static int run_stage(struct builder *b, struct stage *sg)
{
	unsigned n_steps = (unsigned)(sg->end - sg->from);
	for (size_t i = sg->from; i < sg->end; i++) {
		const struct df_instr *in = &b->df.v[i];
		_cleanup_free_ char *text = instr_text(in);
		struct build_step_info info = {
			.index = ++b->step,
			.total = b->steps,
			.stage = sg->label,
			.stage_step = (unsigned)(i - sg->from + 1),
			.stage_steps = n_steps,
			.line = in->line,
			.text = text,
		};
		const struct build_progress *p = b->o->progress;
		if (b->o->cancel && *b->o->cancel)
			return error_set(b->err, EINTR, "interrupted before %s:%u", b->df.name,
					 in->line);
		if (p && p->step_begin)
			p->step_begin(&info, p->userdata);
		int64_t t0 = now_monotonic_ns();
		bool cached = false, changed = false;
		enum build_step_outcome how = STEP_CONFIG;
		int r;
		switch (in->kind) {
		case DF_FROM:
			r = do_from(b, sg, in);
			break;
		case DF_RUN:
			r = do_run(b, sg, in, &cached);
			how = cached ? STEP_CACHED : STEP_DONE;
			break;
		case DF_COPY:
		case DF_ADD:
			r = do_copy(b, sg, in, &cached);
			how = cached ? STEP_CACHED : STEP_DONE;
			break;
		default:
			/* WORKDIR may make a directory: a step of no cost all the same */
			r = do_config(b, sg, in, &changed);
			break;
		}
		if (r < 0)
			return r;
		b->res->steps++;
		if (how == STEP_CACHED)
			b->res->cached++;
		if (p && p->step_end)
			p->step_end(&info, how, now_monotonic_ns() - t0, p->userdata);
	}
	int r = stage_tree_id(b, sg, NULL);
	if (r < 0)
		return r;
	sg->done = true;
	return 0;
}

static int read_dockerfile(struct builder *b)
{
	const char *ctx = b->o->context;
	if (b->o->dockerfile) {
		b->df_path = xstrdup(b->o->dockerfile);
	} else {
		b->df_path = xasprintf("%s/Dockerfile", ctx);
		if (access(b->df_path, F_OK) < 0) {
			free(b->df_path);
			b->df_path = xasprintf("%s/Containerfile", ctx);
			if (access(b->df_path, F_OK) < 0)
				return error_set(b->err, ENOENT,
						 "%s: no Dockerfile or Containerfile (use -f FILE)",
						 ctx);
		}
	}
	int r = read_file_at(AT_FDCWD, b->df_path, &b->df_text, &b->df_len, 4u << 20);
	if (r < 0)
		return error_set(b->err, -r, "%s: %s", b->df_path, strerror(-r));
	const char *shown = startswith(b->df_path, "./") ? b->df_path + 2 : b->df_path;
	return dockerfile_parse(shown, b->df_text, b->df_len, &b->df, b->err);
}

static int read_ignore(struct builder *b)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file_at(b->ctx_fd, ".dockerignore", &text, &len, 1u << 20);
	if (r == -ENOENT)
		return 0;
	_cleanup_free_ char *name = xasprintf("%s/.dockerignore", b->o->context);
	if (r < 0)
		return error_set(b->err, -r, "%s: %s", name, strerror(-r));
	r = ignore_parse(name, text, len, &b->ig, b->err);
	if (r == 0)
		b->have_ignore = true;
	return r;
}

static char *iso_time(int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[64];
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03dZ", s, (int)((ns / 1000000) % 1000));
}

void build_result_free(struct build_result *r)
{
	free(r->provenance);
	free(r->failed_output);
	r->provenance = r->failed_output = NULL;
}

static void builder_free(struct builder *b)
{
	store_txn_abort(b->txn);
	for (size_t i = 0; i < b->n_stages; i++) {
		free(b->stages[i].name);
		tree_free(&b->stages[i].tree);
		json_decref(b->stages[i].config);
		kvs_free(b->stages[i].args, b->stages[i].n_args);
		free(b->stages[i].stack_base);
		for (size_t k = 0; k < b->stages[i].n_layers; k++)
			free(b->stages[i].layers[k]);
		free(b->stages[i].layers);
	}
	free(b->stages);
	kvs_free(b->global, b->n_global);
	kvs_free(b->bargs, b->n_bargs);
	free(b->barg_used);
	dockerfile_free(&b->df);
	if (b->have_ignore)
		ignore_free(&b->ig);
	dir_scan_free(b->ctx);
	safe_close(b->ctx_fd);
	if (b->scratch) {
		_cleanup_free_ char *copy = xstrdup(b->scratch);
		char *slash = strrchr(copy, '/');
		*slash = 0;
		_cleanup_close_ int pfd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0)
			(void)rm_rf_at(pfd, slash + 1);
	}
	safe_close(b->scratch_fd);
	free(b->scratch);
	json_decref(b->bases);
	for (size_t i = 0; i < b->n_pend; i++) {
		free(b->pend_keys[i]);
		free(b->pend_trees[i]);
	}
	free(b->pend_keys);
	free(b->pend_trees);
	buf_free(&b->tail);
	free(b->df_path);
	free(b->df_text);
}

static json_t *provenance(struct builder *b, int64_t start, int64_t end)
{
	json_t *p = json_object();
	struct digest d;
	digest_buffer(b->df_text ? b->df_text : "", b->df_len, &d);
	char s[DIGEST_STR_LEN];
	digest_to_string(&d, s);
	json_object_set_new(p, "dockerfile", json_string(s));
	_cleanup_free_ char *dfabs = realpath(b->df_path ? b->df_path : ".", NULL);
	json_object_set_new(p, "dockerfile_path", json_string(dfabs ? dfabs : b->df_path));
	_cleanup_free_ char *cabs = realpath(b->o->context, NULL);
	json_object_set_new(p, "context_path", json_string(cabs ? cabs : b->o->context));
	if (b->ctx_stored) {
		digest_to_string(&b->ctx_id, s);
		json_object_set_new(p, "context", json_string(s));
	}
	json_object_set(p, "bases", b->bases);
	json_t *ba = json_object();
	for (size_t i = 0; i < b->n_bargs; i++)
		json_object_set_new(ba, b->bargs[i].key,
				    json_string(b->bargs[i].value ? b->bargs[i].value : ""));
	json_object_set_new(p, "build_args", ba);
	if (b->o->target)
		json_object_set_new(p, "target", json_string(b->o->target));
	_cleanup_free_ char *t0 = iso_time(start), *t1 = iso_time(end);
	json_object_set_new(p, "started", json_string(t0));
	json_object_set_new(p, "finished", json_string(t1));
	return p;
}

static int record(struct builder *b, const char *id, const struct tree *t, int64_t start,
		  int64_t end, const char *prov, struct cairn_error *err)
{
	struct state_image im = {.created_ns = end};
	snprintf(im.id, sizeof(im.id), "%s", id);
	uint64_t bytes, entries;
	tree_stats(t, &bytes, &entries);
	im.size = bytes;
	im.entries = entries;
	_cleanup_free_ char *cabs = realpath(b->o->context, NULL);
	im.source = xasprintf("build %s", cabs ? cabs : b->o->context);
	int r = state_begin(b->st, err);
	if (r == 0) {
		digest_to_string(&b->res->tree, im.tree);
		r = state_image_add(b->st, &im, err);
		if (r == 0)
			r = state_build_add(b->st, id, start, end, "built", prov, err);
		for (size_t i = 0; i < b->o->n_tags && r == 0; i++) {
			_cleanup_free_ char *name = xstrdup(b->o->tags[i]);
			char *colon = strrchr(name, ':');
			if (colon && !strchr(colon, '/'))
				*colon++ = 0;
			r = state_tag_set(b->st, name, colon ? colon : "latest", id, "build", err);
		}
		if (r == 0)
			r = state_event(b->st, "build", id, prov, err);
		if (r == 0)
			r = state_commit(b->st, err);
		else
			state_rollback(b->st);
	}
	free(im.source);
	return r;
}

int build_run(struct store *s, struct state *st, const struct build_opts *o,
	      struct build_result *ret, struct cairn_error *err)
{
	struct builder b = {.s = s, .st = st, .o = o, .err = err, .ctx_fd = -1, .scratch_fd = -1,
			    .res = ret};
	*ret = (struct build_result){0};
	b.bases = json_array();
	int64_t start = now_realtime_ns();
	_cleanup_free_ char *name = NULL, *mdata = NULL;
	int r;
	b.ctx_fd = open(o->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b.ctx_fd < 0) {
		r = error_set(err, errno, "%s: %s", o->context, strerror(errno));
		goto out;
	}
	r = read_dockerfile(&b);
	if (r < 0)
		goto out;
	r = read_ignore(&b);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < o->n_build_args; i++) {
		const char *a = o->build_args[i], *eq = strchr(a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
		const char *v = eq ? eq + 1 : getenv(k);
		if (!*k) {
			r = error_set(err, EINVAL, "--build-arg %s: expected KEY=VALUE", a);
			goto out;
		}
		if (!v && !eq)
			continue; /* "K" with K unset: as Docker, nothing */
		kvs_set(&b.bargs, &b.n_bargs, k, v);
	}
	b.barg_used = xcalloc(b.n_bargs + 1, sizeof(bool));
	r = split_stages(&b);
	if (r < 0)
		goto out;
	/* global ARGs (before the first FROM) */
	for (size_t i = 0; i < b.stages[0].from && r == 0; i++)
		r = do_arg(&b, NULL, &b.df.v[i]);
	if (r < 0)
		goto out;
	size_t target = b.n_stages - 1;
	if (o->target) {
		struct stage *t = find_stage(&b, o->target, b.n_stages);
		if (!t || !t->name) {
			r = error_set(err, ENOENT, "--target %s: no stage named so in %s", o->target,
				      b.df.name);
			goto out;
		}
		target = (size_t)(t - b.stages);
	}
	r = mark_needed(&b, target);
	if (r < 0)
		goto out;
	for (size_t i = 0; i <= target; i++)
		if (b.stages[i].needed)
			b.steps += (unsigned)(b.stages[i].end - b.stages[i].from);
	/* scratch space for the build instances */
	name = tmp_name("build");
	b.scratch = xasprintf("%s/tmp/%s", store_root(s), name);
	if (mkdir(b.scratch, 0700) < 0) {
		r = error_set(err, errno, "%s: %s", b.scratch, strerror(errno));
		free(b.scratch);
		b.scratch = NULL;
		goto out;
	}
	b.scratch_fd = open(b.scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b.scratch_fd < 0) {
		r = error_set(err, errno, "%s: %s", b.scratch, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i <= target && r == 0; i++)
		if (b.stages[i].needed)
			r = run_stage(&b, &b.stages[i]);
	if (r < 0)
		goto out;
	/* the image */
	struct stage *sg = &b.stages[target];
	struct image_manifest m = {.tree = sg->tree_id, .config = sg->config};
	size_t mlen;
	image_manifest_encode(&m, &mdata, &mlen);
	struct store_txn *t;
	r = txn(&b, &t);
	if (r == 0)
		r = store_txn_put(t, mdata, mlen, &ret->id);
	if (r < 0) {
		r = error_set(err, -r, "storing the manifest: %s", strerror(-r));
		goto out;
	}
	ret->tree = sg->tree_id;
	r = commit(&b);
	if (r < 0)
		goto out;
	if (b.ctx)
		dir_scan_save_cache(b.ctx);
	for (size_t i = 0; i < b.n_bargs; i++)
		if (!b.barg_used[i] && o->progress && o->progress->warn) {
			_cleanup_free_ char *msg = xasprintf(
				"--build-arg %s was not used by any ARG", b.bargs[i].key);
			o->progress->warn(msg, o->progress->userdata);
		}
	int64_t end = now_realtime_ns();
	json_t *prov = provenance(&b, start, end);
	ret->provenance = json_dumps(prov, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(prov);
	if (st && !o->no_record) {
		char id[DIGEST_STR_LEN];
		digest_to_string(&ret->id, id);
		r = record(&b, id, &sg->tree, start, end, ret->provenance, err);
	}
out:
	if (r < 0) {
		/* keep what the successful steps made (the cache), record the
		 * failure; nothing else changes */
		struct cairn_error e2 = {0};
		(void)commit(&b);
		if (st && !o->no_record && b.df_text) {
			json_t *fp = provenance(&b, start, now_realtime_ns());
			json_object_set_new(fp, "error", json_string(error_message(err)));
			_cleanup_free_ char *ps = json_dumps(fp, JSON_SORT_KEYS | JSON_COMPACT);
			json_decref(fp);
			if (state_begin(st, &e2) == 0) {
				if (state_build_add(st, NULL, start, now_realtime_ns(), "failed", ps,
						    &e2) == 0)
					(void)state_commit(st, &e2);
				else
					state_rollback(st);
			}
		}
		error_clear(&e2);
	}
	builder_free(&b);
	return r;
}
