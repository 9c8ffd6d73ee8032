/* cairn build [OPTIONS] [CONTEXT]: a Dockerfile becomes an image, with one
 * progress line per step; --check-reproducible builds twice in scratch
 * stores and compares. */
#include "cli.h"

#include "../base/buf.h"
#include "../base/fs.h"
#include "../build/build.h"
#include "../image/image.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_build = {
	.name = "build",
	.args = "[OPTIONS] [CONTEXT]",
	.summary = "Build an image from a Dockerfile",
	.help = "CONTEXT (default .) is the directory COPY and ADD read from; a .dockerignore\n"
		"in it leaves paths out. The Dockerfile is CONTEXT/Dockerfile, else\n"
		"CONTEXT/Containerfile. Prints the image id last, on standard output.\n"
		"The id depends only on the Dockerfile, the content of the context and the\n"
		"base images: never on mtimes, the time, the host or the user building.\n"
		"\n"
		"Options:\n"
		"  -f, --file FILE           the Dockerfile\n"
		"  -t, --tag NAME[:TAG]      tag the image (repeatable)\n"
		"  --build-arg KEY[=VALUE]   set an ARG (KEY alone: from the environment)\n"
		"  --target STAGE            build up to this stage\n"
		"  --network MODE            for RUN: private (loopback only, the default),\n"
		"                            none, or host\n"
		"  --no-cache                run every RUN step again\n"
		"  --progress MODE           auto, plain (live RUN output), or quiet\n"
		"  -q, --quiet               the same as --progress quiet\n"
		"  --check-reproducible      build twice in two scratch stores and compare\n",
	.run = run,
};

/* --- progress --------------------------------------------------------------- */

enum progress_mode { PROGRESS_AUTO, PROGRESS_PLAIN, PROGRESS_QUIET };

struct progress {
	enum progress_mode mode;
	bool tty;
	FILE *f;
	int64_t started;
	const struct build_step_info *cur;
	char line[160]; /* the last line of output (live view) */
	struct buf partial; /* plain: output not yet ended by a newline */
	int64_t last_draw;
};

static unsigned term_width(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

static void step_label(const struct build_step_info *s, char *out, size_t len)
{
	snprintf(out, len, "[%u/%u] %s %u/%u: %s", s->index, s->total, s->stage, s->stage_step,
		 s->stage_steps, s->text);
}

static void live_draw(struct progress *p)
{
	if (!p->cur)
		return;
	char label[256];
	step_label(p->cur, label, sizeof(label));
	double secs = (double)(now_monotonic_ns() - p->started) / 1e9;
	unsigned w = term_width();
	char out[512];
	int n = snprintf(out, sizeof(out), "%s  %.1fs", label, secs);
	if (p->line[0] && n > 0 && (unsigned)n + 6 < w)
		snprintf(out + n, sizeof(out) - (size_t)n, "  | %s", p->line);
	if (strlen(out) > w - 1)
		out[w - 1] = 0;
	fprintf(p->f, "\r\033[K%s", out);
	fflush(p->f);
	p->last_draw = now_monotonic_ns();
}

static void on_begin(const struct build_step_info *s, void *u)
{
	struct progress *p = u;
	p->cur = s;
	p->started = now_monotonic_ns();
	p->line[0] = 0;
	p->partial.len = 0;
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_PLAIN) {
		char label[256];
		step_label(s, label, sizeof(label));
		fprintf(p->f, "%s\n", label);
	} else if (p->tty)
		live_draw(p);
}

static void plain_line(struct progress *p, const char *s, size_t n)
{
	fprintf(p->f, "  | %.*s\n", (int)n, s);
}

static void on_output(const char *data, size_t len, void *u)
{
	struct progress *p = u;
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_PLAIN) {
		buf_put(&p->partial, data, len);
		size_t start = 0;
		for (size_t i = 0; i < p->partial.len; i++)
			if (p->partial.data[i] == '\n') {
				plain_line(p, p->partial.data + start, i - start);
				start = i + 1;
			}
		memmove(p->partial.data, p->partial.data + start, p->partial.len - start);
		p->partial.len -= start;
		fflush(p->f);
		return;
	}
	if (!p->tty)
		return;
	/* the live view keeps the last complete or partial line */
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\n' || c == '\r') {
			if (i + 1 < len)
				p->line[0] = 0;
			continue;
		}
		size_t l = strlen(p->line);
		if (l + 1 < sizeof(p->line) && (unsigned char)c >= 0x20) {
			p->line[l] = c;
			p->line[l + 1] = 0;
		}
	}
	if (now_monotonic_ns() - p->last_draw > 100 * 1000000LL || len == 0)
		live_draw(p);
}

static void on_end(const struct build_step_info *s, enum build_step_outcome how, int64_t ns,
		   void *u)
{
	struct progress *p = u;
	p->cur = NULL;
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_PLAIN && p->partial.len) {
		plain_line(p, p->partial.data, p->partial.len);
		p->partial.len = 0;
	}
	char label[256], what[32];
	step_label(s, label, sizeof(label));
	if (p->mode == PROGRESS_PLAIN && how == STEP_CONFIG) {
		fflush(p->f);
		return; /* its line was printed when it began */
	}
	if (how == STEP_CACHED)
		snprintf(what, sizeof(what), "cached");
	else if (how == STEP_CONFIG)
		what[0] = 0;
	else
		snprintf(what, sizeof(what), "%.2fs", (double)ns / 1e9);
	if (p->tty && p->mode == PROGRESS_AUTO)
		fprintf(p->f, "\r\033[K");
	if (what[0])
		fprintf(p->f, "%s  %s\n", label, what);
	else
		fprintf(p->f, "%s\n", label);
	fflush(p->f);
}

static void on_warn(const char *msg, void *u)
{
	struct progress *p = u;
	if (p->tty && p->mode == PROGRESS_AUTO && p->cur)
		fprintf(p->f, "\r\033[K");
	cli_warn("%s", msg);
}

/* --- resolving bases --------------------------------------------------------- */

static int resolve_main(const char *ref, char ret_id[DIGEST_STR_LEN], void *u,
			struct cairn_error *err)
{
	struct state *st = u;
	return cli_resolve(st, ref, ret_id, err);
}

/* For a scratch store: resolve in the main state, then copy the image's
 * objects into the scratch store. */
struct scratch_resolve {
	struct state *st;
	struct store *main, *scratch;
};

static int copy_object(struct store *from, struct store_txn *t, const struct digest *d,
		       void *buf, size_t buflen, struct cairn_error *err)
{
	_cleanup_close_ int fd = store_open_object(from, d);
	char s[DIGEST_STR_LEN];
	digest_to_string(d, s);
	if (fd < 0)
		return error_set(err, -fd, "object %s: %s", s, strerror(-fd));
	struct digest got;
	uint64_t size;
	int r = store_txn_put_fd(t, fd, buf, buflen, &got, &size);
	if (r < 0)
		return error_set(err, -r, "copying %s: %s", s, strerror(-r));
	if (!digest_eq(&got, d))
		return error_set(err, EBADMSG, "object %s is corrupt", s);
	return 0;
}

static int resolve_scratch(const char *ref, char ret_id[DIGEST_STR_LEN], void *u,
			   struct cairn_error *err)
{
	struct scratch_resolve *sr = u;
	int r = cli_resolve(sr->st, ref, ret_id, err);
	if (r < 0)
		return r;
	struct digest id;
	if (digest_from_string(ret_id, &id) < 0)
		return error_set(err, EINVAL, "%s: not an image id", ret_id);
	if (store_has_object(sr->scratch, &id))
		return 0;
	struct image_manifest m;
	struct tree t = {0};
	r = image_load(sr->main, &id, &m, &t, err);
	if (r < 0)
		return r;
	struct store_txn *txn = NULL;
	const size_t buflen = 1 << 20;
	_cleanup_free_ void *buf = xmalloc(buflen);
	r = store_txn_begin(sr->scratch, &txn, err);
	if (r == 0)
		r = copy_object(sr->main, txn, &id, buf, buflen, err);
	if (r == 0)
		r = copy_object(sr->main, txn, &m.tree, buf, buflen, err);
	for (size_t i = 0; i < t.n && r == 0; i++)
		if (t.entries[i].type == ENTRY_FILE && !t.entries[i].link)
			r = copy_object(sr->main, txn, &t.entries[i].digest, buf, buflen, err);
	if (r == 0)
		r = store_txn_commit(txn, err);
	else
		store_txn_abort(txn);
	image_manifest_free(&m);
	tree_free(&t);
	return r;
}

/* --- --check-reproducible ------------------------------------------------------ */

struct first_diff {
	bool found;
	char *text;
};

static void diff_cb(enum diff_kind kind, const char *path, const char *what, void *u)
{
	struct first_diff *fd = u;
	if (fd->found)
		return;
	fd->found = true;
	const char *p = streq(path, ".") ? "/" : path;
	if (kind == DIFF_ADDED)
		fd->text = xasprintf("/%s is only in the second build", streq(p, "/") ? "" : p);
	else if (kind == DIFF_REMOVED)
		fd->text = xasprintf("/%s is only in the first build", streq(p, "/") ? "" : p);
	else
		fd->text = xasprintf("/%s differs: %s", streq(p, "/") ? "" : p, what);
}

static int check_reproducible(struct cli *cli, struct build_opts *o, struct state *st,
			      struct store *main_store)
{
	struct cairn_error err = {0};
	struct store *scratch[2] = {NULL, NULL};
	char *roots[2] = {NULL, NULL};
	struct build_result res[2];
	memset(res, 0, sizeof(res));
	int ret = 1;
	o->no_record = true;
	o->no_cache = true;
	o->tags = NULL;
	o->n_tags = 0;
	for (int k = 0; k < 2; k++) {
		_cleanup_free_ char *name = tmp_name("reproducible");
		roots[k] = xasprintf("%s/tmp/%s", cli->root, name);
		if (store_open(roots[k], true, &scratch[k], &err) < 0 ||
		    store_lock(scratch[k], false, &err) < 0)
			goto out;
		struct scratch_resolve sr = {st, main_store, scratch[k]};
		o->resolve = resolve_scratch;
		o->resolve_userdata = &sr;
		if (build_run(scratch[k], NULL, o, &res[k], &err) < 0) {
			if (res[k].failed_output && *res[k].failed_output)
				fprintf(stderr, "%s", res[k].failed_output);
			error_wrap(&err, "build %d of 2", k + 1);
			goto out;
		}
	}
	char a[DIGEST_STR_LEN], b[DIGEST_STR_LEN];
	digest_to_string(&res[0].id, a);
	digest_to_string(&res[1].id, b);
	if (digest_eq(&res[0].id, &res[1].id)) {
		if (cli->json) {
			json_t *j = json_object();
			json_object_set_new(j, "reproducible", json_true());
			json_object_set_new(j, "id", json_string(a));
			print_json(j);
		} else {
			fprintf(stderr, "reproducible: two builds in fresh stores gave the same id\n");
			printf("%s\n", a);
		}
		ret = 0;
		goto out;
	}
	/* Name the first difference: a path, else the config. */
	struct image_manifest m[2];
	memset(m, 0, sizeof(m));
	struct tree t[2] = {{0}, {0}};
	struct first_diff fd = {0};
	for (int k = 0; k < 2; k++)
		if (image_load(scratch[k], &res[k].id, &m[k], &t[k], &err) < 0)
			goto out;
	image_tree_diff(&t[0], &t[1], diff_cb, &fd);
	if (!fd.found) {
		const char *key;
		json_t *v;
		json_object_foreach(m[0].config, key, v) if (!fd.found &&
							       !json_equal(v, json_object_get(
											m[1].config,
											key))) {
			fd.found = true;
			fd.text = xasprintf("the config's %s differs", key);
		}
		if (!fd.found)
			fd.text = xstrdup("the config differs");
	}
	if (cli->json) {
		json_t *j = json_object();
		json_object_set_new(j, "reproducible", json_false());
		json_object_set_new(j, "ids", json_pack("[ss]", a, b));
		json_object_set_new(j, "difference", json_string(fd.text));
		print_json(j);
	} else
		fprintf(stderr, "cairn: not reproducible: %s (%s vs %s)\n", fd.text, a, b);
	free(fd.text);
	for (int k = 0; k < 2; k++) {
		image_manifest_free(&m[k]);
		tree_free(&t[k]);
	}
	ret = 1;
out:
	if (err.code)
		ret = cli_error(&err);
	error_clear(&err);
	for (int k = 0; k < 2; k++) {
		build_result_free(&res[k]);
		store_close(scratch[k]);
		if (roots[k]) {
			_cleanup_free_ char *tmp = xasprintf("%s/tmp", cli->root);
			_cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (tfd >= 0)
				(void)rm_rf_at(tfd, strrchr(roots[k], '/') + 1);
		}
		free(roots[k]);
	}
	return ret;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* --- the command ----------------------------------------------------------------- */

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
}

static int run(struct cli *cli, int argc, char **argv)
{
	enum {
		OPT_BUILD_ARG = OPT_COMMON_END,
		OPT_TARGET,
		OPT_NETWORK,
		OPT_NO_CACHE,
		OPT_PROGRESS,
		OPT_CHECK,
	};
	static const struct option opts[] = {
		COMMON_LONG_OPTIONS,
		{"file", required_argument, NULL, 'f'},
		{"tag", required_argument, NULL, 't'},
		{"build-arg", required_argument, NULL, OPT_BUILD_ARG},
		{"target", required_argument, NULL, OPT_TARGET},
		{"network", required_argument, NULL, OPT_NETWORK},
		{"no-cache", no_argument, NULL, OPT_NO_CACHE},
		{"progress", required_argument, NULL, OPT_PROGRESS},
		{"quiet", no_argument, NULL, 'q'},
		{"check-reproducible", no_argument, NULL, OPT_CHECK},
		{0},
	};
	struct build_opts o = {.net = NET_PRIVATE};
	struct progress p = {.mode = PROGRESS_AUTO, .f = stderr};
	bool check = false;
	char **tags = NULL, **bargs = NULL;
	size_t n_tags = 0, n_bargs = 0;
	int ret = 1;
	int c;
	struct cairn_error err = {0};
	struct build_result res = {0};
	struct state *st = NULL;
	struct store *store = NULL;
	while ((c = getopt_long(argc, argv, "+:hf:t:q", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.dockerfile = optarg;
			break;
		case 't': {
			_cleanup_free_ char *name = NULL, *tag = NULL;
			if (image_ref_parse(optarg, &name, &tag, &err) < 0) {
				ret = cli_usage(&cmd_build, "-t %s: %s", optarg, error_message(&err));
				goto out;
			}
			_cleanup_free_ char *full = xasprintf("%s:%s", name, tag);
			strv_add(&tags, &n_tags, full);
			break;
		}
		case OPT_BUILD_ARG:
			if (!*optarg || optarg[0] == '=') {
				ret = cli_usage(&cmd_build, "--build-arg %s: expected KEY=VALUE or KEY",
						optarg);
				goto out;
			}
			strv_add(&bargs, &n_bargs, optarg);
			break;
		case OPT_TARGET:
			o.target = optarg;
			break;
		case OPT_NETWORK:
			if (streq(optarg, "private") || streq(optarg, "default"))
				o.net = NET_PRIVATE;
			else if (streq(optarg, "none"))
				o.net = NET_NONE;
			else if (streq(optarg, "host"))
				o.net = NET_HOST;
			else {
				ret = cli_usage(&cmd_build,
						"--network: expected private, none or host, got \"%s\"",
						optarg);
				goto out;
			}
			break;
		case OPT_NO_CACHE:
			o.no_cache = true;
			break;
		case OPT_PROGRESS:
			if (streq(optarg, "auto"))
				p.mode = PROGRESS_AUTO;
			else if (streq(optarg, "plain"))
				p.mode = PROGRESS_PLAIN;
			else if (streq(optarg, "quiet"))
				p.mode = PROGRESS_QUIET;
			else {
				ret = cli_usage(&cmd_build,
						"--progress: expected auto, plain or quiet, got \"%s\"",
						optarg);
				goto out;
			}
			break;
		case 'q':
			p.mode = PROGRESS_QUIET;
			break;
		case OPT_CHECK:
			check = true;
			break;
		default: {
			int r = cli_common_option(cli, &cmd_build, c, argv);
			if (r >= 0) {
				ret = r;
				goto out;
			}
		}
		}
	}
	if (argc - optind > 1) {
		ret = cli_usage(&cmd_build, "expected at most one CONTEXT");
		goto out;
	}
	o.context = argc - optind == 1 ? argv[optind] : ".";
	o.tags = tags;
	o.n_tags = n_tags;
	o.build_args = bargs;
	o.n_build_args = n_bargs;
	p.tty = isatty(STDERR_FILENO) && p.mode == PROGRESS_AUTO;
	if (cli->json && p.mode == PROGRESS_AUTO)
		p.mode = PROGRESS_QUIET;
	struct build_progress bp = {on_begin, on_output, on_end, on_warn, &p};
	o.progress = &bp;
	if (cli_open_store(cli, true, &store, &err) < 0 || store_lock(store, false, &err) < 0 ||
	    cli_open_state(cli, &st, &err) < 0) {
		ret = cli_error(&err);
		goto out;
	}
	if (check) {
		ret = check_reproducible(cli, &o, st, store);
		goto out;
	}
	o.resolve = resolve_main;
	o.resolve_userdata = st;
	/* Ctrl-C stops the running step and leaves the store as it was. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	o.cancel = &interrupted;
	int64_t t0 = now_monotonic_ns();
	if (build_run(store, st, &o, &res, &err) < 0) {
		if (p.tty && p.mode == PROGRESS_AUTO)
			fprintf(stderr, "\r\033[K");
		if (res.failed_output && *res.failed_output) {
			fprintf(stderr, "cairn: the last lines of its output:\n");
			const char *s = res.failed_output;
			while (*s) {
				const char *nl = strchr(s, '\n');
				size_t n = nl ? (size_t)(nl - s) : strlen(s);
				fprintf(stderr, "  | %.*s\n", (int)n, s);
				s += n + (nl ? 1 : 0);
			}
		}
		ret = cli_error(&err);
		goto out;
	}
	char id[DIGEST_STR_LEN];
	digest_to_string(&res.id, id);
	if (cli->json) {
		json_t *j = json_object();
		char tree[DIGEST_STR_LEN];
		digest_to_string(&res.tree, tree);
		json_object_set_new(j, "id", json_string(id));
		json_object_set_new(j, "tree", json_string(tree));
		json_object_set_new(j, "steps", json_integer(res.steps));
		json_object_set_new(j, "cached", json_integer(res.cached));
		json_t *ta = json_array();
		for (size_t i = 0; i < n_tags; i++)
			json_array_append_new(ta, json_string(tags[i]));
		json_object_set_new(j, "tags", ta);
		json_object_set_new(j, "provenance", json_loads(res.provenance, 0, NULL));
		print_json(j);
	} else {
		if (p.mode != PROGRESS_QUIET) {
			fprintf(stderr, "built in %.2fs: %u steps, %u cached",
				(double)(now_monotonic_ns() - t0) / 1e9, res.steps, res.cached);
			for (size_t i = 0; i < n_tags; i++)
				fprintf(stderr, "%s%s", i ? ", " : "; tagged ", tags[i]);
			fprintf(stderr, "\n");
		}
		printf("%s\n", id);
	}
	ret = 0;
out:
	error_clear(&err);
	build_result_free(&res);
	buf_free(&p.partial);
	state_close(st);
	store_close(store);
	for (size_t i = 0; i < n_tags; i++)
		free(tags[i]);
	free(tags);
	for (size_t i = 0; i < n_bargs; i++)
		free(bargs[i]);
	free(bargs);
	return ret;
}
