/* Importing a directory: walk it by file descriptor (never following a
 * symlink), answer unchanged files from the stat cache, hash and stage the rest
 * on every core, then link hardlink groups, sort, and store tree and manifest.
 * Also image_import(), which picks the directory or the tar path. */
#include "internal.h"

#include "../base/buf.h"
#include "../base/fs.h"

#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/sysinfo.h>
#include <sys/xattr.h>

struct scan {
	struct tree tree;
	struct scan_stat *stats; /* parallel to tree.entries */
	size_t stats_cap;
	int srcfd;
	struct store_txn *txn; /* NULL: hash only (verify) */
	const struct import_limits *lim;
	struct statcache *cache;
	size_t *pending; /* entries whose content must be read */
	size_t n_pending, pending_cap;
	uint64_t skipped;
	const struct dir_scan_opts *opts; /* NULL: a plain import */
	char **whiteouts, **opaques;	   /* overlay upper layers */
	size_t n_whiteouts, n_opaques;
	/* worker state */
	atomic_size_t next;
	pthread_mutex_t lock;
	int error;
	struct cairn_error *err;
};

int read_xattrs_fd(int fd, struct tree_entry *e)
{
	struct xattr *v;
	size_t n;
	int r = fs_read_xattrs(fd, &v, &n);
	if (r < 0)
		return r;
	xattrs_free(e->xattrs, e->n_xattrs);
	e->xattrs = v;
	e->n_xattrs = n;
	return 0;
}

int import_check_path(const char *path, const struct import_limits *lim, uint64_t n_entries,
		      struct cairn_error *err)
{
	if (n_entries > lim->max_entries)
		return error_set(err, EFBIG, "more than %llu entries (the limit; see --max-entries)",
				 (unsigned long long)lim->max_entries);
	const char *why = tree_path_problem(path);
	if (why)
		return error_set(err, EINVAL, "entry \"%s\": %s", path, why);
	unsigned depth = 1;
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	if (depth > lim->max_depth)
		return error_set(err, EFBIG,
				 "entry \"%.80s…\": deeper than %u directories (the limit; see "
				 "--max-depth)",
				 path, lim->max_depth);
	return 0;
}

/* --- the walk ----------------------------------------------------------------
 *
 * Directories are walked on every core: a worker reads one directory at a
 * time, keeps what it finds in its own part (no locks on the hot path), and
 * hands a subdirectory to the shared queue when the queue runs low, else
 * descends itself (which bounds the open directory fds). */

struct scan_part {
	struct tree tree;
	struct scan_stat *stats; /* parallel to tree.entries */
	size_t stats_cap;
	size_t *pending; /* indexes into this part's entries */
	size_t n_pending, pending_cap;
	uint64_t skipped;
	char **whiteouts, **opaques;
	size_t n_whiteouts, n_opaques;
	struct cairn_error err;
};

static void strs_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

#define OVERLAY_XATTR_PREFIX "trusted.overlay."

/* Drop overlayfs's own xattrs; true when they marked an opaque directory. */
static bool strip_overlay_xattrs(struct tree_entry *e)
{
	bool opaque = false;
	size_t k = 0;
	for (size_t i = 0; i < e->n_xattrs; i++) {
		struct xattr *x = &e->xattrs[i];
		if (startswith(x->name, OVERLAY_XATTR_PREFIX)) {
			if (streq(x->name, OVERLAY_XATTR_PREFIX "opaque") && x->len == 1 &&
			    x->value[0] == 'y')
				opaque = true;
			free(x->name);
			free(x->value);
		} else
			e->xattrs[k++] = *x;
	}
	e->n_xattrs = k;
	return opaque;
}

struct dir_item {
	int fd;
	char *rel;
};

struct walk {
	struct scan *sc;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dir_item *queue;
	size_t n_queue, cap_queue;
	unsigned busy, nthreads;
	bool failed;
	atomic_uint_fast64_t entries, bytes;
};

static struct tree_entry *part_add(struct scan_part *p, const char *path, const struct stat *st)
{
	struct tree_entry *e = tree_add(&p->tree);
	p->stats = xgrow(p->stats, &p->stats_cap, p->tree.n, sizeof(*p->stats));
	p->stats[p->tree.n - 1] = (struct scan_stat){
		.dev = st->st_dev,
		.ino = st->st_ino,
		.nlink = st->st_nlink,
		.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec,
		.ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec,
	};
	e->path = xstrdup(path);
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	return e;
}

static bool walk_failed(struct walk *w)
{
	return __atomic_load_n(&w->failed, __ATOMIC_RELAXED);
}

/* Offer a subdirectory to other workers; false when the queue is long enough
 * (the caller then walks it itself). Takes fd and rel on success. */
static bool walk_offer(struct walk *w, int fd, const char *rel)
{
	bool taken = false;
	pthread_mutex_lock(&w->lock);
	if (w->n_queue < w->nthreads) {
		w->queue = xgrow(w->queue, &w->cap_queue, w->n_queue + 1, sizeof(*w->queue));
		w->queue[w->n_queue++] = (struct dir_item){fd, xstrdup(rel)};
		pthread_cond_signal(&w->cond);
		taken = true;
	}
	pthread_mutex_unlock(&w->lock);
	return taken;
}

static int walk_dir(struct walk *w, struct scan_part *p, int dirfd, const char *rel)
{
	struct scan *sc = w->sc;
	int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		safe_close(dfd);
		return error_set(&p->err, errno, "reading directory %s: %s", rel, strerror(errno));
	}
	int r = 0;
	struct dirent *de;
	errno = 0;
	while (r == 0 && !walk_failed(w) && (de = readdir(d))) {
		const char *name = de->d_name;
		if (streq(name, ".") || streq(name, ".."))
			continue;
		_cleanup_free_ char *path = streq(rel, ".") ? xstrdup(name)
							     : xasprintf("%s/%s", rel, name);
		r = import_check_path(path, sc->lim, atomic_fetch_add(&w->entries, 1) + 2, &p->err);
		if (r < 0)
			break;
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = error_set(&p->err, errno, "%s: %s", path, strerror(errno));
			break;
		}
		if (sc->opts && sc->opts->exclude &&
		    sc->opts->exclude(path, S_ISDIR(st.st_mode), sc->opts->userdata)) {
			errno = 0;
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			struct tree_entry *e = part_add(p, path, &st);
			e->type = ENTRY_FILE;
			e->size = (uint64_t)st.st_size;
			if (atomic_fetch_add(&w->bytes, e->size) + e->size > sc->lim->max_bytes) {
				r = error_set(&p->err, EFBIG,
					      "more than %llu bytes of content (the limit; see "
					      "--max-bytes)",
					      (unsigned long long)sc->lim->max_bytes);
				break;
			}
			if (!sc->cache ||
			    !statcache_lookup(sc->cache, e, &p->stats[p->tree.n - 1])) {
				p->stats[p->tree.n - 1].pending = true;
				p->pending = xgrow(p->pending, &p->pending_cap, p->n_pending + 1,
						   sizeof(size_t));
				p->pending[p->n_pending++] = p->tree.n - 1;
			}
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = error_set(&p->err, errno, "%s: %s", path, strerror(errno));
				break;
			}
			struct tree_entry *e = part_add(p, path, &st);
			e->type = ENTRY_DIR;
			r = read_xattrs_fd(sub, e);
			if (r < 0) {
				safe_close(sub);
				r = error_set(&p->err, -r, "%s: reading xattrs: %s", path,
					      strerror(-r));
				break;
			}
			if (sc->opts && sc->opts->overlay_upper && strip_overlay_xattrs(e))
				strv_push(&p->opaques, &p->n_opaques, path);
			if (!walk_offer(w, sub, path)) {
				r = walk_dir(w, p, sub, path);
				safe_close(sub);
			}
		} else if (S_ISLNK(st.st_mode)) {
			size_t cap = (size_t)st.st_size + 2;
			_cleanup_free_ char *target = xmalloc(cap);
			ssize_t n = readlinkat(dirfd, name, target, cap);
			if (n < 0 || (size_t)n >= cap) {
				r = error_set(&p->err, n < 0 ? errno : EAGAIN,
					      "%s: reading symlink: %s", path,
					      n < 0 ? strerror(errno) : "changed while read");
				break;
			}
			target[n] = 0;
			struct tree_entry *e = part_add(p, path, &st);
			e->type = ENTRY_SYMLINK;
			e->mode = 0777;
			e->target = TAKE_PTR(target);
		} else if (S_ISCHR(st.st_mode) && st.st_rdev == 0 && sc->opts &&
			   sc->opts->overlay_upper) {
			strv_push(&p->whiteouts, &p->n_whiteouts, path);
		} else {
			p->skipped++;
		}
		errno = 0;
	}
	if (r == 0 && errno != 0)
		r = error_set(&p->err, errno, "reading directory %s: %s", rel, strerror(errno));
	closedir(d);
	return r;
}

struct walk_worker {
	struct walk *w;
	struct scan_part part;
};

static void *walk_worker(void *u)
{
	struct walk_worker *ww = u;
	struct walk *w = ww->w;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->n_queue == 0 && w->busy > 0 && !w->failed)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->n_queue == 0 || w->failed)
			break;
		struct dir_item item = w->queue[--w->n_queue];
		w->busy++;
		pthread_mutex_unlock(&w->lock);
		int r = walk_dir(w, &ww->part, item.fd, item.rel);
		safe_close(item.fd);
		free(item.rel);
		pthread_mutex_lock(&w->lock);
		w->busy--;
		if (r < 0)
			w->failed = true;
		if (r < 0 || (w->busy == 0 && w->n_queue == 0))
			pthread_cond_broadcast(&w->cond);
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Append a part to the scan's tree, moving its entries. */
static void scan_merge(struct scan *sc, struct scan_part *p)
{
	size_t base = sc->tree.n;
	sc->tree.entries = xgrow(sc->tree.entries, &sc->tree.cap, base + p->tree.n,
				 sizeof(*sc->tree.entries));
	sc->stats = xgrow(sc->stats, &sc->stats_cap, base + p->tree.n, sizeof(*sc->stats));
	if (p->tree.n) {
		memcpy(sc->tree.entries + base, p->tree.entries,
		       p->tree.n * sizeof(*p->tree.entries));
		memcpy(sc->stats + base, p->stats, p->tree.n * sizeof(*p->stats));
	}
	sc->tree.n += p->tree.n;
	sc->pending = xgrow(sc->pending, &sc->pending_cap, sc->n_pending + p->n_pending,
			    sizeof(size_t));
	for (size_t i = 0; i < p->n_pending; i++)
		sc->pending[sc->n_pending++] = base + p->pending[i];
	sc->skipped += p->skipped;
	for (size_t i = 0; i < p->n_whiteouts; i++)
		strv_push(&sc->whiteouts, &sc->n_whiteouts, p->whiteouts[i]);
	for (size_t i = 0; i < p->n_opaques; i++)
		strv_push(&sc->opaques, &sc->n_opaques, p->opaques[i]);
	free(p->tree.entries);
	free(p->stats);
	free(p->pending);
	p->tree = (struct tree){0};
	p->stats = NULL;
	p->pending = NULL;
	p->n_pending = 0;
}

static void part_free(struct scan_part *p)
{
	strs_free(p->whiteouts, p->n_whiteouts);
	strs_free(p->opaques, p->n_opaques);
	tree_free(&p->tree);
	free(p->stats);
	free(p->pending);
	error_clear(&p->err);
}

/* Walk the source below its root (already in sc->tree) on every core. */
static int scan_walk(struct scan *sc)
{
	unsigned n = (unsigned)get_nprocs();
	if (n > 16)
		n = 16;
	struct walk w = {.sc = sc, .nthreads = n};
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	atomic_init(&w.entries, 0);
	atomic_init(&w.bytes, 0);
	int root = fcntl(sc->srcfd, F_DUPFD_CLOEXEC, 3);
	if (root < 0)
		return error_set(sc->err, errno, "%s", strerror(errno));
	w.queue = xcalloc(1, sizeof(*w.queue));
	w.queue[0] = (struct dir_item){root, xstrdup(".")};
	w.n_queue = w.cap_queue = 1;
	struct walk_worker *ww = xcalloc(n, sizeof(*ww));
	pthread_t th[16];
	unsigned started = 0;
	for (unsigned i = 0; i < n; i++)
		ww[i].w = &w;
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&th[started], NULL, walk_worker, &ww[i]) == 0)
			started++;
	walk_worker(&ww[0]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	int r = 0;
	for (unsigned i = 0; i < n; i++)
		if (r == 0 && ww[i].part.err.code) {
			r = error_set(sc->err, ww[i].part.err.code, "%s",
				      error_message(&ww[i].part.err));
		}
	for (unsigned i = 0; i < n; i++) {
		if (r == 0)
			scan_merge(sc, &ww[i].part);
		part_free(&ww[i].part);
	}
	for (size_t i = 0; i < w.n_queue; i++) {
		safe_close(w.queue[i].fd);
		free(w.queue[i].rel);
	}
	free(w.queue);
	free(ww);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return r;
}

/* Record the first error of any worker: "path: what" (what defaults to the
 * errno text). */
static void scan_fail(struct scan *sc, int code, const char *path, const char *what)
{
	pthread_mutex_lock(&sc->lock);
	if (sc->error == 0) {
		sc->error = -code;
		error_set(sc->err, code, "%s: %s", path, what ? what : strerror(code));
	}
	pthread_mutex_unlock(&sc->lock);
}

static void *scan_worker(void *u)
{
	struct scan *sc = u;
	const size_t buflen = 1 << 20;
	_cleanup_free_ void *buf = xmalloc(buflen);
	for (;;) {
		size_t k = atomic_fetch_add(&sc->next, 1);
		if (k >= sc->n_pending || __atomic_load_n(&sc->error, __ATOMIC_RELAXED))
			break;
		size_t idx = sc->pending[k];
		struct tree_entry *e = &sc->tree.entries[idx];
		const struct scan_stat *ss = &sc->stats[idx];
		_cleanup_close_ int fd =
			open_in_root(sc->srcfd, e->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY, 0);
		if (fd < 0) {
			scan_fail(sc, -fd, e->path, NULL);
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_ino != ss->ino || st.st_dev != ss->dev ||
		    !S_ISREG(st.st_mode)) {
			scan_fail(sc, EAGAIN, e->path, "changed during the import");
			break;
		}
		int r = read_xattrs_fd(fd, e);
		if (r < 0) {
			scan_fail(sc, -r, e->path, "cannot read its xattrs");
			break;
		}
		if (sc->opts && sc->opts->overlay_upper)
			(void)strip_overlay_xattrs(e);
		uint64_t size;
		if (sc->txn)
			r = store_txn_put_fd(sc->txn, fd, buf, buflen, &e->digest, &size);
		else
			r = digest_fd(fd, &e->digest, &size);
		if (r < 0) {
			scan_fail(sc, -r, e->path, NULL);
			break;
		}
		if (size != e->size) {
			scan_fail(sc, EAGAIN, e->path, "changed during the import");
			break;
		}
	}
	store_writer_thread_done();
	return NULL;
}

static int scan_hash_pending(struct scan *sc)
{
	/* Two more workers than cores: large objects are written with O_DIRECT,
	 * and a worker waiting for the disk should not leave a core idle. */
	unsigned n = (unsigned)get_nprocs() + 2;
	if (n > 16)
		n = 16;
	if (n > sc->n_pending)
		n = (unsigned)sc->n_pending;
	pthread_mutex_init(&sc->lock, NULL);
	atomic_init(&sc->next, 0);
	pthread_t th[16];
	unsigned started = 0;
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&th[started], NULL, scan_worker, sc) == 0)
			started++;
	scan_worker(sc);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&sc->lock);
	return sc->error;
}

struct hl {
	uint64_t dev, ino;
	size_t idx;
	const char *path;
};

static int hl_cmp(const void *a, const void *b)
{
	const struct hl *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return tree_path_cmp(x->path, y->path);
}

/* Files sharing an inode become one hardlink group: the first path in tree
 * order keeps the content, the others name it in "link". */
static void scan_link_hardlinks(struct scan *sc)
{
	size_t n = 0;
	_cleanup_free_ struct hl *v = NULL;
	for (size_t i = 0; i < sc->tree.n; i++)
		if (sc->tree.entries[i].type == ENTRY_FILE && sc->stats[i].nlink > 1)
			n++;
	if (n < 2)
		return;
	v = xcalloc(n, sizeof(*v));
	n = 0;
	for (size_t i = 0; i < sc->tree.n; i++)
		if (sc->tree.entries[i].type == ENTRY_FILE && sc->stats[i].nlink > 1)
			v[n++] = (struct hl){sc->stats[i].dev, sc->stats[i].ino, i,
					     sc->tree.entries[i].path};
	qsort(v, n, sizeof(*v), hl_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t first = i - 1;
		while (first > 0 && v[first - 1].dev == v[i].dev && v[first - 1].ino == v[i].ino)
			first--;
		if (v[first].dev == v[i].dev && v[first].ino == v[i].ino) {
			struct tree_entry *e = &sc->tree.entries[v[i].idx];
			free(e->link);
			e->link = xstrdup(sc->tree.entries[v[first].idx].path);
		}
	}
}

static void scan_free(struct scan *sc)
{
	strs_free(sc->whiteouts, sc->n_whiteouts);
	strs_free(sc->opaques, sc->n_opaques);
	tree_free(&sc->tree);
	free(sc->stats);
	free(sc->pending);
	statcache_free(sc->cache);
}

/* Walk dir and fill sc->tree (unsorted, hardlinks linked); hash pending files
 * into sc->txn (or only hash when NULL). */
static int scan_run(struct scan *sc, const char *dir)
{
	struct stat st;
	if (fstat(sc->srcfd, &st) < 0)
		return error_set(sc->err, errno, "%s: %s", dir, strerror(errno));
	struct tree_entry *root = tree_add(&sc->tree);
	root->path = xstrdup(".");
	root->type = ENTRY_DIR;
	root->mode = st.st_mode & 07777;
	root->uid = st.st_uid;
	root->gid = st.st_gid;
	sc->stats = xgrow(sc->stats, &sc->stats_cap, 1, sizeof(*sc->stats));
	sc->stats[0] = (struct scan_stat){.dev = st.st_dev, .ino = st.st_ino, .nlink = st.st_nlink};
	int r = read_xattrs_fd(sc->srcfd, root);
	if (r < 0)
		return error_set(sc->err, -r, "%s: reading xattrs: %s", dir, strerror(-r));
	int64_t t0 = now_monotonic_ns();
	r = scan_walk(sc);
	if (r < 0)
		return r;
	trace_phase("walk", t0);
	t0 = now_monotonic_ns();
	r = scan_hash_pending(sc);
	if (r < 0)
		return r;
	trace_phase("hash and stage", t0);
	scan_link_hardlinks(sc);
	return 0;
}

static int import_dir(struct store *s, const char *source, int srcfd, const json_t *config,
		      const struct import_limits *lim, struct import_result *ret,
		      struct cairn_error *err)
{
	_cleanup_free_ char *abs = realpath(source, NULL);
	if (!abs)
		return error_set(err, errno, "%s: %s", source, strerror(errno));
	int64_t start = now_realtime_ns();
	_cleanup_close_ int cachefd = openat(store_root_fd(s), "cache",
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t gen = store_gc_generation(s);
	struct scan sc = {.srcfd = srcfd, .lim = lim, .err = err};
	if (cachefd >= 0)
		sc.cache = statcache_load(cachefd, abs, gen);
	struct store_txn *txn = NULL;
	int r = store_txn_begin(s, &txn, err);
	if (r < 0)
		goto out;
	sc.txn = txn;
	r = scan_run(&sc, source);
	if (r < 0) {
		store_txn_abort(txn);
		goto out;
	}
	ret->files_read = sc.n_pending;
	ret->skipped = sc.skipped;
	ret->source_kind = xstrdup("directory");
	/* Encode the cache now (stats are parallel to the unsorted entries),
	 * write it only after the objects it vouches for are committed. Files
	 * changed just before the import are left out (see statcache.c). */
	struct buf cache = {0};
	uint64_t cached = 0;
	statcache_build(gen, &sc.tree, sc.stats, start - STATCACHE_MARGIN_NS, &cache, &cached);
	int64_t t0 = now_monotonic_ns();
	r = import_finish(txn, &sc.tree, config, ret, err);
	trace_phase("finish (tree, commit)", t0);
	/* An unchanged tree whose every file came from the cache has nothing
	 * new to remember. */
	bool same_cache = sc.n_pending == 0 && sc.cache && statcache_count(sc.cache) == cached;
	if (r == 0 && cachefd >= 0 && !same_cache)
		statcache_write(cachefd, abs, &cache);
	buf_free(&cache);
out:
	scan_free(&sc);
	return r;
}

int image_scan_dir(const char *dir, struct tree *ret, uint64_t *ret_skipped,
		   struct cairn_error *err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "%s: %s", dir, strerror(errno));
	struct import_limits lim = {UINT64_MAX, UINT64_MAX, TREE_MAX_DEPTH};
	struct scan sc = {.srcfd = fd, .lim = &lim, .err = err};
	int r = scan_run(&sc, dir);
	if (r == 0) {
		tree_sort(&sc.tree);
		r = tree_validate(&sc.tree, err);
	}
	if (r == 0) {
		*ret = sc.tree;
		sc.tree = (struct tree){0};
		if (ret_skipped)
			*ret_skipped = sc.skipped;
	}
	scan_free(&sc);
	return r;
}

int import_finish(struct store_txn *txn, struct tree *t, const json_t *config,
		  struct import_result *ret, struct cairn_error *err)
{
	tree_sort(t);
	int r = tree_validate(t, err);
	if (r < 0) {
		store_txn_abort(txn);
		return r;
	}
	_cleanup_free_ char *tdata = NULL;
	size_t tlen;
	tree_encode(t, &tdata, &tlen);
	struct image_manifest m = {.config = (json_t *)config};
	r = store_txn_put(txn, tdata, tlen, &m.tree);
	if (r < 0) {
		store_txn_abort(txn);
		return error_set(err, -r, "storing the tree: %s", strerror(-r));
	}
	_cleanup_free_ char *mdata = NULL;
	size_t mlen;
	image_manifest_encode(&m, &mdata, &mlen);
	struct digest id;
	r = store_txn_put(txn, mdata, mlen, &id);
	if (r < 0) {
		store_txn_abort(txn);
		return error_set(err, -r, "storing the manifest: %s", strerror(-r));
	}
	r = store_txn_commit(txn, err);
	if (r < 0)
		return r;
	ret->id = id;
	ret->tree = m.tree;
	uint64_t bytes, entries;
	tree_stats(t, &bytes, &entries);
	ret->bytes = bytes;
	ret->entries = entries;
	return 0;
}

void import_result_free(struct import_result *r)
{
	free(r->source_kind);
	r->source_kind = NULL;
}

int image_import(struct store *s, const char *source, const json_t *config,
		 const struct import_limits *limits, struct import_result *ret,
		 struct cairn_error *err)
{
	struct import_limits lim = {IMPORT_DEFAULT_MAX_BYTES, IMPORT_DEFAULT_MAX_ENTRIES,
				    IMPORT_DEFAULT_MAX_DEPTH};
	if (limits)
		lim = *limits;
	if (lim.max_depth > TREE_MAX_DEPTH)
		lim.max_depth = TREE_MAX_DEPTH;
	/* "-" is a tar archive on standard input. Anything else is looked at
	 * before it is opened: opening a socket or a device is not harmless. */
	bool is_stdin = streq(source, "-");
	struct stat st;
	if (!is_stdin && stat(source, &st) < 0)
		return error_set(err, errno, "%s: %s", source, strerror(errno));
	if (!is_stdin && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		return error_set(err, EINVAL, "%s: not a directory or a tar archive", source);
	_cleanup_close_ int fd = is_stdin ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
					  : open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return error_set(err, errno, "%s: %s", source, strerror(errno));
	if (fstat(fd, &st) < 0)
		return error_set(err, errno, "%s: %s", source, strerror(errno));
	struct import_result res = {0};
	int r;
	if (S_ISDIR(st.st_mode))
		r = import_dir(s, source, fd, config, &lim, &res, err);
	else if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || is_stdin)
		r = import_tar_fd(s, fd, config, &lim, &res, err);
	else
		return error_set(err, EINVAL, "%s: not a directory or a tar archive", source);
	if (r < 0) {
		import_result_free(&res);
		return error_wrap(err, "importing %s", source);
	}
	*ret = res;
	return 0;
}

/* --- scanning in steps ------------------------------------------------------ */

struct dir_scan {
	struct scan sc;
	char *abs;
	int srcfd, cachefd;
	uint64_t gen;
	int64_t start_ns;
	struct import_limits lim;
	struct dir_scan_opts opts;
	struct buf cache;
	uint64_t cached;
	bool stored;
};

struct dir_scan *dir_scan_free(struct dir_scan *ds)
{
	if (!ds)
		return NULL;
	scan_free(&ds->sc);
	safe_close(ds->srcfd);
	safe_close(ds->cachefd);
	buf_free(&ds->cache);
	free(ds->abs);
	free(ds);
	return NULL;
}

int dir_scan_walk(struct store *s, const char *dir, const struct dir_scan_opts *o,
		  struct dir_scan **ret, struct cairn_error *err)
{
	struct dir_scan *ds = xcalloc(1, sizeof(*ds));
	ds->cachefd = -1;
	ds->opts = *o;
	ds->lim = o->limits ? *o->limits
			    : (struct import_limits){IMPORT_DEFAULT_MAX_BYTES,
						     IMPORT_DEFAULT_MAX_ENTRIES,
						     IMPORT_DEFAULT_MAX_DEPTH};
	ds->srcfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ds->abs = realpath(dir, NULL);
	if (ds->srcfd < 0 || !ds->abs) {
		error_set(err, errno, "%s: %s", dir, strerror(errno));
		dir_scan_free(ds);
		return -errno;
	}
	ds->start_ns = now_realtime_ns();
	ds->sc = (struct scan){.srcfd = ds->srcfd, .lim = &ds->lim, .err = err, .opts = &ds->opts};
	if (o->use_cache && s) {
		ds->cachefd = openat(store_root_fd(s), "cache",
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ds->gen = store_gc_generation(s);
		if (ds->cachefd >= 0)
			ds->sc.cache = statcache_load(ds->cachefd, ds->abs, ds->gen);
	}
	struct stat st;
	if (fstat(ds->srcfd, &st) < 0) {
		int r = error_set(err, errno, "%s: %s", dir, strerror(errno));
		dir_scan_free(ds);
		return r;
	}
	struct tree_entry *root = tree_add(&ds->sc.tree);
	root->path = xstrdup(".");
	root->type = ENTRY_DIR;
	root->mode = st.st_mode & 07777;
	root->uid = st.st_uid;
	root->gid = st.st_gid;
	ds->sc.stats = xgrow(ds->sc.stats, &ds->sc.stats_cap, 1, sizeof(*ds->sc.stats));
	ds->sc.stats[0] = (struct scan_stat){.dev = st.st_dev, .ino = st.st_ino, .nlink = 1};
	int r = read_xattrs_fd(ds->srcfd, root);
	if (r < 0)
		r = error_set(err, -r, "%s: reading xattrs: %s", dir, strerror(-r));
	if (r == 0 && o->overlay_upper)
		(void)strip_overlay_xattrs(root);
	if (r == 0)
		r = scan_walk(&ds->sc);
	if (r < 0) {
		dir_scan_free(ds);
		return r;
	}
	*ret = ds;
	return 0;
}

const struct tree *dir_scan_tree(const struct dir_scan *ds)
{
	return &ds->sc.tree;
}

size_t dir_scan_pending(const struct dir_scan *ds)
{
	return ds->sc.n_pending;
}

void dir_scan_overlay(const struct dir_scan *ds, char *const **ret_whiteouts, size_t *ret_nw,
		      char *const **ret_opaques, size_t *ret_no)
{
	*ret_whiteouts = ds->sc.whiteouts;
	*ret_nw = ds->sc.n_whiteouts;
	*ret_opaques = ds->sc.opaques;
	*ret_no = ds->sc.n_opaques;
}

int dir_scan_store(struct dir_scan *ds, struct store_txn *txn, struct cairn_error *err)
{
	assert(!ds->stored);
	ds->sc.txn = txn;
	ds->sc.err = err;
	int r = scan_hash_pending(&ds->sc);
	if (r < 0)
		return r;
	scan_link_hardlinks(&ds->sc);
	if (ds->cachefd >= 0)
		statcache_build(ds->gen, &ds->sc.tree, ds->sc.stats,
				ds->start_ns - STATCACHE_MARGIN_NS, &ds->cache, &ds->cached);
	tree_sort(&ds->sc.tree);
	ds->stored = true;
	return tree_validate(&ds->sc.tree, err);
}

void dir_scan_save_cache(struct dir_scan *ds)
{
	bool same = ds->sc.n_pending == 0 && ds->sc.cache &&
		    statcache_count(ds->sc.cache) == ds->cached;
	if (ds->stored && ds->cachefd >= 0 && !same)
		statcache_write(ds->cachefd, ds->abs, &ds->cache);
}
