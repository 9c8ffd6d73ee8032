/* The object store: layout, lock, staging transactions, fsck, gc, and the
 * per-metadata variants that checkouts hardlink.
 *
 * Durability: new objects are written to a private staging directory without
 * per-file fsync; commit calls syncfs() once, renames every staged object into
 * objects/ (never replacing one), and calls syncfs() again. An object therefore
 * appears under its name only once its content is on disk, and a crash at any
 * point leaves either nothing or durable objects that gc can collect. */
#include "store.h"

#include "../base/fs.h"

#include <dirent.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

struct store {
	char *root;
	int root_fd;
	int objects_fd;
	int tmp_fd;
	int lock_fd;
};

static const char *const subdirs[] = {"objects", "tmp", "checkouts", "instances", "volumes",
				      "cache"};

const char *store_root(const struct store *s)
{
	return s->root;
}

int store_root_fd(const struct store *s)
{
	return s->root_fd;
}

/* Create what is missing of the layout, objects/ last: a store with objects/
 * has everything else. The 256 shard directories under objects/ are made
 * when first needed (shard_retry), so creating a store costs a few mkdirs. */
static int store_init_layout(int root_fd)
{
	for (size_t i = ELEMENTSOF(subdirs); i-- > 0;)
		if (mkdirat(root_fd, subdirs[i], 0700) < 0 && errno != EEXIST)
			return -errno;
	return 0;
}

/* True when root holds nothing but what cairn puts there: a store whose
 * creation was cut short, which opening completes. */
static bool looks_like_partial_store(int root_fd)
{
	int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		safe_close(fd);
		return false;
	}
	bool ours = true;
	struct dirent *de;
	while (ours && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, "..") || streq(de->d_name, "lock") ||
		    startswith(de->d_name, "cairn.db"))
			continue;
		bool known = false;
		for (size_t i = 0; i < ELEMENTSOF(subdirs); i++)
			known = known || streq(de->d_name, subdirs[i]);
		ours = known;
	}
	closedir(d);
	return ours;
}

/* Run op; when it fails with ENOENT because the shard directory of rel
 * ("ab/…") does not exist yet, make the shard and run it again. */
#define shard_retry(s, rel, op)                                                                    \
	({                                                                                         \
		int _r = (op);                                                                     \
		if (_r < 0 && errno == ENOENT) {                                                   \
			char _shard[3] = {(rel)[0], (rel)[1], 0};                                  \
			if (mkdirat((s)->objects_fd, _shard, 0700) == 0 || errno == EEXIST)        \
				_r = (op);                                                         \
			else                                                                       \
				errno = ENOENT;                                                    \
		}                                                                                  \
		_r;                                                                                \
	})

int store_open(const char *root, bool create, struct store **ret, struct cairn_error *err)
{
	if (create) {
		int r = mkdir_p_at(AT_FDCWD, root, 0700);
		if (r < 0)
			return error_set(err, -r, "cannot create store root %s: %s", root,
					 strerror(-r));
	}
	_cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return error_set(err, errno, "cannot open store root %s: %s", root,
				 strerror(errno));
	/* Without objects/ this is no store, unless all it holds is what cairn
	 * makes: then a creation was cut short, and finishing it is harmless. */
	if (!create && faccessat(root_fd, "objects", F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
	    !looks_like_partial_store(root_fd))
		return error_set(err, ENOENT, "%s is not a cairn store (no objects/)", root);
	{
		int r = store_init_layout(root_fd);
		if (r < 0)
			return error_set(err, -r, "cannot initialise store %s: %s", root,
					 strerror(-r));
	}
	struct store *s = xcalloc(1, sizeof(*s));
	s->root = xstrdup(root);
	s->lock_fd = -1;
	s->objects_fd = openat(root_fd, "objects", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	s->tmp_fd = openat(root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	s->root_fd = TAKE_FD(root_fd);
	if (s->objects_fd < 0 || s->tmp_fd < 0) {
		int e = errno;
		store_close(s);
		return error_set(err, e, "cannot open store %s: %s", root, strerror(e));
	}
	*ret = s;
	return 0;
}

struct store *store_close(struct store *s)
{
	if (!s)
		return NULL;
	safe_close(s->objects_fd);
	safe_close(s->tmp_fd);
	safe_close(s->lock_fd);
	safe_close(s->root_fd);
	free(s->root);
	free(s);
	return NULL;
}

int store_lock(struct store *s, bool exclusive, struct cairn_error *err)
{
	if (s->lock_fd < 0) {
		s->lock_fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (s->lock_fd < 0)
			return error_set(err, errno, "cannot open %s/lock: %s", s->root,
					 strerror(errno));
	}
	while (flock(s->lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR)
			return error_set(err, errno, "cannot lock %s: %s", s->root,
					 strerror(errno));
	}
	return 0;
}

void store_object_relpath(const struct digest *d, char out[DIGEST_HEX_LEN + 2])
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_to_hex(d, hex);
	out[0] = hex[0];
	out[1] = hex[1];
	out[2] = '/';
	memcpy(out + 3, hex + 2, DIGEST_HEX_LEN - 2 + 1);
}

bool store_has_object(struct store *s, const struct digest *d)
{
	char rel[DIGEST_HEX_LEN + 2];
	store_object_relpath(d, rel);
	return faccessat(s->objects_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int store_open_object(struct store *s, const struct digest *d)
{
	char rel[DIGEST_HEX_LEN + 2];
	store_object_relpath(d, rel);
	int fd = openat(s->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? -errno : fd;
}

int store_read_object(struct store *s, const struct digest *d, char **ret, size_t *ret_len,
		      struct cairn_error *err)
{
	char rel[DIGEST_HEX_LEN + 2], name[DIGEST_STR_LEN];
	store_object_relpath(d, rel);
	digest_to_string(d, name);
	char *data;
	size_t len;
	int r = read_file_at(s->objects_fd, rel, &data, &len, STORE_META_MAX);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "object %s is missing from the store", name);
	if (r < 0)
		return error_set(err, -r, "cannot read object %s: %s", name, strerror(-r));
	struct digest got;
	digest_buffer(data, len, &got);
	if (!digest_eq(&got, d)) {
		free(data);
		return error_set(err, EBADMSG,
				 "object %s is corrupt (its content does not match its name); "
				 "run 'cairn fsck'",
				 name);
	}
	*ret = data;
	*ret_len = len;
	return 0;
}

/* --- transactions ------------------------------------------------------- */

/* A staged object is a file "ab/.tmp.<txn>.<n>" in one of the shard
 * directories (spreading creations over 256 directories keeps two workers off
 * one directory lock and spreads inode allocation), renamed to its digest name
 * at commit. Leftovers of a crash are removed by gc and ignored by fsck. */
struct staged {
	struct digest d;
	uint64_t n;
};

struct store_txn {
	struct store *store;
	char id[17];
	atomic_uint_fast64_t counter;
	pthread_mutex_t lock;
	struct staged *staged;
	size_t n_staged, cap;
};

/* Content is gathered in an aligned buffer. An object that fits is written
 * like store_txn_put() (after the dedup check, so a known object costs no
 * write). A larger one streams to a staging file opened with O_DIRECT: the
 * store does not need its content in the page cache, and on the virtual disks
 * we run on, buffered writes cost several times more CPU than the hashing. */
#define WRITER_BUF (1u << 20)
#define DIRECT_ALIGN 4096u

struct store_writer {
	struct store_txn *txn;
	struct hasher *hasher;
	uint8_t *buf; /* WRITER_BUF bytes, DIRECT_ALIGN-aligned */
	size_t used;
	uint64_t n; /* staging file number, once there is a file */
	int fd;	    /* -1 until the buffer first fills */
	bool direct;
	uint64_t size;
};

/* One buffer per thread, reused by its writers (a thread runs one at a time). */
static __thread uint8_t *writer_buf_cache;

static uint8_t *writer_buf_get(void)
{
	uint8_t *b = TAKE_PTR(writer_buf_cache);
	if (!b) {
		b = aligned_alloc(DIRECT_ALIGN, WRITER_BUF);
		if (!b)
			oom();
	}
	return b;
}

void store_writer_thread_done(void)
{
	free(TAKE_PTR(writer_buf_cache));
}

static void writer_buf_put(uint8_t *b)
{
	if (!writer_buf_cache)
		writer_buf_cache = b;
	else
		free(b);
}

#define STAGE_PREFIX ".tmp."

static void stage_name(const struct store_txn *t, uint64_t n, char out[48])
{
	snprintf(out, 48, "%02x/" STAGE_PREFIX "%s.%llu", (unsigned)(n & 0xff), t->id,
		 (unsigned long long)n);
}

int store_txn_begin(struct store *s, struct store_txn **ret, struct cairn_error *err)
{
	struct store_txn *t = xcalloc(1, sizeof(*t));
	_cleanup_free_ char *name = tmp_name("t");
	snprintf(t->id, sizeof(t->id), "%s", name + 2);
	t->store = s;
	atomic_init(&t->counter, 0);
	pthread_mutex_init(&t->lock, NULL);
	*ret = t;
	return 0;
}

/* Create a staging file; its number goes to *ret_n. */
static int stage_create(struct store_txn *t, uint64_t *ret_n)
{
	uint64_t n = atomic_fetch_add(&t->counter, 1);
	char name[48];
	stage_name(t, n, name);
	int fd = shard_retry(t->store, name,
			     openat(t->store->objects_fd, name,
				    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
	if (fd < 0)
		return -errno;
	*ret_n = n;
	return fd;
}

static void stage_unlink(struct store_txn *t, uint64_t n)
{
	char name[48];
	stage_name(t, n, name);
	(void)unlinkat(t->store->objects_fd, name, 0);
}

/* A finished staging file holds d: keep it for commit, or drop it when the
 * store already has d (unless the caller just checked: checked). */
static void txn_stage(struct store_txn *t, uint64_t n, const struct digest *d, bool checked)
{
	if (!checked && store_has_object(t->store, d)) {
		stage_unlink(t, n);
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->staged = xgrow(t->staged, &t->cap, t->n_staged + 1, sizeof(*t->staged));
	t->staged[t->n_staged++] = (struct staged){*d, n};
	pthread_mutex_unlock(&t->lock);
}

int store_txn_put(struct store_txn *t, const void *data, size_t len, struct digest *ret)
{
	struct digest d;
	digest_buffer(data, len, &d);
	if (store_has_object(t->store, &d)) {
		*ret = d;
		return 0;
	}
	uint64_t n = 0;
	int fd = stage_create(t, &n);
	if (fd < 0)
		return fd;
	int r = write_all(fd, data, len);
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	safe_close(fd);
	if (r < 0) {
		stage_unlink(t, n);
		return r;
	}
	txn_stage(t, n, &d, true);
	*ret = d;
	return 0;
}

int store_writer_new(struct store_txn *t, struct store_writer **ret)
{
	struct store_writer *w = xcalloc(1, sizeof(*w));
	w->txn = t;
	w->fd = -1;
	w->buf = writer_buf_get();
	w->hasher = hasher_new();
	*ret = w;
	return 0;
}

/* Write the buffer out (len bytes; padded to the alignment for O_DIRECT, the
 * padding cut off by the caller with ftruncate). */
static int writer_flush(struct store_writer *w, size_t len)
{
	if (w->fd < 0) {
		uint64_t n = atomic_fetch_add(&w->txn->counter, 1);
		char name[48];
		stage_name(w->txn, n, name);
		int fd = shard_retry(w->txn->store, name,
				     openat(w->txn->store->objects_fd, name,
					    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0644));
		w->direct = fd >= 0;
		if (fd < 0 && errno == EINVAL) /* no O_DIRECT on this file system */
			fd = openat(w->txn->store->objects_fd, name,
				    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		w->n = n;
		w->fd = fd;
	}
	size_t out = len;
	if (w->direct && out % DIRECT_ALIGN) {
		size_t padded = (out + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
		memset(w->buf + out, 0, padded - out);
		out = padded;
	}
	int r = write_all(w->fd, w->buf, out);
	if (r == -EINVAL && w->direct) {
		/* The device wants another alignment: go on buffered. */
		int fl = fcntl(w->fd, F_GETFL);
		if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
			return -errno;
		w->direct = false;
		r = write_all(w->fd, w->buf, len);
	}
	return r;
}

int store_writer_write(struct store_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	hasher_update(w->hasher, data, len);
	w->size += len;
	while (len > 0) {
		size_t n = WRITER_BUF - w->used;
		if (n > len)
			n = len;
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		len -= n;
		if (w->used == WRITER_BUF) {
			int r = writer_flush(w, WRITER_BUF);
			if (r < 0)
				return r;
			w->used = 0;
		}
	}
	return 0;
}

static void writer_free(struct store_writer *w)
{
	writer_buf_put(w->buf);
	hasher_free(w->hasher);
	free(w);
}

void store_writer_abort(struct store_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		safe_close(w->fd);
		stage_unlink(w->txn, w->n);
	}
	writer_free(w);
}

int store_writer_finish(struct store_writer *w, struct digest *ret, uint64_t *ret_size)
{
	struct digest d;
	int r = 0;
	if (w->fd < 0) {
		/* Small: one buffered write, skipped when the store has it. */
		r = store_txn_put(w->txn, w->buf, w->used, &d);
		uint64_t size = w->size;
		writer_free(w);
		if (r < 0)
			return r;
		*ret = d;
		if (ret_size)
			*ret_size = size;
		return 0;
	}
	hasher_final(w->hasher, &d);
	if (w->used)
		r = writer_flush(w, w->used);
	if (r == 0 && w->direct && ftruncate(w->fd, (off_t)w->size) < 0)
		r = -errno;
	if (r == 0 && fchmod(w->fd, 0644) < 0)
		r = -errno;
	if (r < 0) {
		store_writer_abort(w);
		return r;
	}
	w->fd = safe_close(w->fd);
	txn_stage(w->txn, w->n, &d, false);
	*ret = d;
	if (ret_size)
		*ret_size = w->size;
	writer_free(w);
	return 0;
}

int store_txn_put_fd(struct store_txn *t, int fd, void *buf, size_t buflen, struct digest *ret,
		     uint64_t *ret_size)
{
	/* Small files: read whole, hash, and write only when new. */
	ssize_t n = read_full(fd, buf, buflen);
	if (n < 0)
		return (int)n;
	if ((size_t)n < buflen) {
		int r = store_txn_put(t, buf, (size_t)n, ret);
		if (r == 0 && ret_size)
			*ret_size = (uint64_t)n;
		return r;
	}
	/* Large files: stream into staging while hashing. */
	struct store_writer *w;
	int r = store_writer_new(t, &w);
	if (r < 0)
		return r;
	for (;;) {
		r = store_writer_write(w, buf, (size_t)n);
		if (r < 0)
			break;
		n = read_full(fd, buf, buflen);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			return store_writer_finish(w, ret, ret_size);
	}
	store_writer_abort(w);
	return r;
}

static void txn_free(struct store_txn *t)
{
	pthread_mutex_destroy(&t->lock);
	free(t->staged);
	free(t);
}

void store_txn_abort(struct store_txn *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_staged; i++)
		stage_unlink(t, t->staged[i].n);
	txn_free(t);
}

/* Rename staged objects [from, to) into place; returns -errno of the first
 * failure, leaving the rest staged (the caller unlinks what remains). */
struct rename_job {
	struct store_txn *t;
	size_t from, to, done;
	int error;
	char failed[DIGEST_HEX_LEN + 2];
};

static void *rename_range(void *u)
{
	struct rename_job *job = u;
	struct store *s = job->t->store;
	for (size_t i = job->from; i < job->to; i++, job->done++) {
		char from[48], to[DIGEST_HEX_LEN + 2];
		stage_name(job->t, job->t->staged[i].n, from);
		store_object_relpath(&job->t->staged[i].d, to);
		if (shard_retry(s, to, renameat2(s->objects_fd, from, s->objects_fd, to,
						 RENAME_NOREPLACE)) < 0) {
			if (errno != EEXIST) {
				job->error = -errno;
				memcpy(job->failed, to, sizeof(to));
				break;
			}
			(void)unlinkat(s->objects_fd, from, 0); /* staged twice in this txn */
		}
	}
	return NULL;
}

int store_txn_commit(struct store_txn *t, struct cairn_error *err)
{
	struct store *s = t->store;
	int r = 0;
	if (t->n_staged == 0) {
		txn_free(t); /* nothing new: the unchanged re-import path */
		return 0;
	}
	/* One syncfs makes every staged file durable before any gets its name. */
	int64_t t0 = now_monotonic_ns();
	if (syncfs(s->objects_fd) < 0) {
		r = error_set(err, errno, "syncing staged objects: %s", strerror(errno));
		store_txn_abort(t);
		return r;
	}
	trace_phase("commit: syncfs 1", t0);
	/* Renames in two halves on two threads: each takes its directories'
	 * locks, so they rarely meet. */
	t0 = now_monotonic_ns();
	struct rename_job jobs[2] = {{t, 0, t->n_staged / 2, 0, 0, ""},
				     {t, t->n_staged / 2, t->n_staged, 0, 0, ""}};
	pthread_t th;
	bool threaded = t->n_staged > 256 && pthread_create(&th, NULL, rename_range, &jobs[1]) == 0;
	rename_range(&jobs[0]);
	if (threaded)
		pthread_join(th, NULL);
	else
		rename_range(&jobs[1]);
	trace_phase("commit: renames", t0);
	for (size_t k = 0; k < 2 && r == 0; k++)
		if (jobs[k].error)
			r = error_set(err, -jobs[k].error, "moving object %s into the store: %s",
				      jobs[k].failed, strerror(-jobs[k].error));
	t0 = now_monotonic_ns();
	if (r == 0 && syncfs(s->objects_fd) < 0)
		r = error_set(err, errno, "syncing the store: %s", strerror(errno));
	trace_phase("commit: syncfs 2", t0);
	/* What a failure left staged goes; what was renamed stays (gc's). */
	for (size_t k = 0; k < 2; k++)
		for (size_t i = jobs[k].from + jobs[k].done; i < jobs[k].to; i++)
			stage_unlink(t, t->staged[i].n);
	txn_free(t);
	return r;
}

static void strv_free_n_(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- digest sets ---------------------------------------------------------- */

struct digest_set {
	struct digest *slots;
	uint8_t *used;
	size_t cap, n;
};

struct digest_set *digest_set_new(void)
{
	struct digest_set *set = xcalloc(1, sizeof(*set));
	set->cap = 1024;
	set->slots = xcalloc(set->cap, sizeof(*set->slots));
	set->used = xcalloc(set->cap, 1);
	return set;
}

struct digest_set *digest_set_free(struct digest_set *set)
{
	if (set) {
		free(set->slots);
		free(set->used);
		free(set);
	}
	return NULL;
}

static size_t digest_slot(const struct digest_set *set, const struct digest *d)
{
	uint64_t h;
	memcpy(&h, d->b, sizeof(h)); /* already uniformly distributed */
	size_t i = (size_t)h & (set->cap - 1);
	while (set->used[i] && !digest_eq(&set->slots[i], d))
		i = (i + 1) & (set->cap - 1);
	return i;
}

bool digest_set_add(struct digest_set *set, const struct digest *d)
{
	if ((set->n + 1) * 2 > set->cap) {
		struct digest_set bigger = {.cap = set->cap * 2};
		bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
		bigger.used = xcalloc(bigger.cap, 1);
		for (size_t i = 0; i < set->cap; i++)
			if (set->used[i]) {
				size_t j = digest_slot(&bigger, &set->slots[i]);
				bigger.used[j] = 1;
				bigger.slots[j] = set->slots[i];
			}
		free(set->slots);
		free(set->used);
		set->slots = bigger.slots;
		set->used = bigger.used;
		set->cap = bigger.cap;
	}
	size_t i = digest_slot(set, d);
	if (set->used[i])
		return false;
	set->used[i] = 1;
	set->slots[i] = *d;
	set->n++;
	return true;
}

bool digest_set_contains(const struct digest_set *set, const struct digest *d)
{
	return set->used[digest_slot(set, d)];
}

size_t digest_set_size(const struct digest_set *set)
{
	return set->n;
}

/* --- enumerating objects ---------------------------------------------------- */

struct object_name {
	char rel[300]; /* "ab/" + a directory entry name */
	struct digest base;
	bool variant;
	bool valid;
	bool staging; /* a ".tmp." file of a running or crashed transaction */
};

/* Parse "cdef…" or "cdef….0123456789abcdef" found in shard dir "ab". */
static void parse_object_name(const char *shard, const char *name, struct object_name *ret)
{
	*ret = (struct object_name){0};
	snprintf(ret->rel, sizeof(ret->rel), "%s/%s", shard, name);
	if (startswith(name, STAGE_PREFIX)) {
		ret->staging = true;
		return;
	}
	size_t n = strlen(name);
	if (n != DIGEST_HEX_LEN - 2 && n != DIGEST_HEX_LEN - 2 + 17)
		return;
	char hex[DIGEST_HEX_LEN + 1];
	memcpy(hex, shard, 2);
	memcpy(hex + 2, name, DIGEST_HEX_LEN - 2);
	hex[DIGEST_HEX_LEN] = 0;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return;
	if (digest_from_hex(hex, &ret->base) < 0)
		return;
	if (n > DIGEST_HEX_LEN - 2) {
		if (name[DIGEST_HEX_LEN - 2] != '.')
			return;
		for (const char *p = name + DIGEST_HEX_LEN - 1; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return;
		ret->variant = true;
	}
	ret->valid = true;
}

/* Call fn for every file under objects/. Stops at the first negative return. */
static int store_foreach_object(struct store *s,
				int (*fn)(struct store *s, const struct object_name *o, void *u),
				void *userdata)
{
	for (unsigned i = 0; i < 256; i++) {
		char shard[3];
		snprintf(shard, sizeof(shard), "%02x", i);
		int fd = openat(s->objects_fd, shard, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
							      O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		DIR *d = fdopendir(fd);
		if (!d) {
			safe_close(fd);
			return -errno;
		}
		struct dirent *de;
		int r = 0;
		while ((de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			struct object_name o;
			parse_object_name(shard, de->d_name, &o);
			r = fn(s, &o, userdata);
			if (r < 0)
				break;
		}
		closedir(d);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- fsck ------------------------------------------------------------------ */

struct fsck_job {
	struct store *store;
	struct object_name *names;
	size_t n, cap;
	bool repair;
	uid_t owner_uid;
	gid_t owner_gid;
	atomic_size_t next;
	atomic_uint_fast64_t bytes;
	pthread_mutex_t lock;
	struct store_fsck_result *res;
};

static int fsck_collect(struct store *s, const struct object_name *o, void *u)
{
	(void)s;
	struct fsck_job *job = u;
	if (o->staging)
		return 0;
	job->names = xgrow(job->names, &job->cap, job->n + 1, sizeof(*job->names));
	job->names[job->n++] = *o;
	return 0;
}

static void variant_key(const struct file_meta *m, char out[17]);

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = s;
}

/* Check one object file: content against the name, metadata against what the
 * name promises. Returns what is wrong in *what (static), or NULL. */
static const char *fsck_one(struct fsck_job *job, const struct object_name *o, int fd,
			    uint64_t *ret_size)
{
	struct digest got;
	struct stat st;
	if (digest_fd(fd, &got, ret_size) < 0 || !digest_eq(&got, &o->base))
		return "content";
	if (fstat(fd, &st) < 0)
		return "content";
	struct xattr *xv = NULL;
	size_t xn = 0;
	if (fs_read_xattrs(fd, &xv, &xn) < 0)
		return "metadata";
	const char *what = NULL;
	if (!o->variant) {
		if ((st.st_mode & 07777) != 0644 || st.st_uid != job->owner_uid ||
		    st.st_gid != job->owner_gid || xn)
			what = "metadata";
	} else {
		struct file_meta m = {st.st_mode & 07777, st.st_uid, st.st_gid, xv, xn};
		char key[17];
		variant_key(&m, key);
		if (!streq(key, o->rel + 3 + DIGEST_HEX_LEN - 2 + 1))
			what = "metadata";
	}
	xattrs_free(xv, xn);
	return what;
}

static void fsck_repair(struct fsck_job *job, const struct object_name *o, const char *what,
			int fd)
{
	bool ok;
	if (streq(what, "content") || o->variant)
		ok = unlinkat(job->store->objects_fd, o->rel, 0) == 0;
	else {
		/* A base object's metadata: put back the canonical one. */
		ok = fchown(fd, job->owner_uid, job->owner_gid) == 0 && fchmod(fd, 0644) == 0;
		struct xattr *xv = NULL;
		size_t xn = 0;
		if (ok && fs_read_xattrs(fd, &xv, &xn) == 0)
			for (size_t i = 0; i < xn; i++)
				ok = ok && fremovexattr(fd, xv[i].name) == 0;
		xattrs_free(xv, xn);
	}
	if (ok)
		job->res->repaired++;
}

static void *fsck_worker(void *u)
{
	struct fsck_job *job = u;
	for (;;) {
		size_t i = atomic_fetch_add(&job->next, 1);
		if (i >= job->n)
			break;
		struct object_name *o = &job->names[i];
		const char *what = NULL;
		uint64_t size = 0;
		int fd = -1;
		if (o->valid) {
			fd = openat(job->store->objects_fd, o->rel,
				    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
			what = fd < 0 ? "content" : fsck_one(job, o, fd, &size);
			atomic_fetch_add(&job->bytes, size);
		}
		if (!o->valid || what) {
			pthread_mutex_lock(&job->lock);
			struct store_fsck_result *res = job->res;
			if (!o->valid)
				strv_push(&res->bad_names, &res->n_bad_names, xstrdup(o->rel));
			else if (o->variant)
				strv_push(&res->bad_copies, &res->n_bad_copies,
					  xasprintf("%s: %s", o->rel, what));
			else if (streq(what, "metadata"))
				strv_push(&res->changed_meta, &res->n_changed_meta,
					  xstrdup(o->rel));
			else {
				res->corrupt = xreallocarray(res->corrupt, res->n_corrupt + 1,
							     sizeof(struct digest));
				res->corrupt[res->n_corrupt++] = o->base;
			}
			if (job->repair && o->valid)
				fsck_repair(job, o, what, fd);
			pthread_mutex_unlock(&job->lock);
		}
		safe_close(fd);
	}
	return NULL;
}

static int bump_gc_generation(struct store *s, struct cairn_error *err);

int store_fsck(struct store *s, unsigned nthreads, bool repair, struct store_fsck_result *ret,
	       struct cairn_error *err)
{
	struct stat st;
	if (fstat(s->objects_fd, &st) < 0)
		return error_set(err, errno, "%s/objects: %s", s->root, strerror(errno));
	struct store_fsck_result res = {0};
	struct fsck_job job = {.store = s,
			       .res = &res,
			       .repair = repair,
			       .owner_uid = st.st_uid,
			       .owner_gid = st.st_gid};
	pthread_mutex_init(&job.lock, NULL);
	atomic_init(&job.next, 0);
	atomic_init(&job.bytes, 0);
	int r = store_foreach_object(s, fsck_collect, &job);
	if (r < 0) {
		free(job.names);
		return error_set(err, -r, "listing objects: %s", strerror(-r));
	}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > 64)
		nthreads = 64;
	pthread_t th[64];
	unsigned started = 0;
	for (unsigned i = 1; i < nthreads; i++)
		if (pthread_create(&th[started], NULL, fsck_worker, &job) == 0)
			started++;
	fsck_worker(&job);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&job.lock);
	res.n_objects = job.n;
	res.bytes = atomic_load(&job.bytes);
	free(job.names);
	/* Removed objects must not be vouched for by a stat cache any more. */
	if (repair && res.repaired && (r = bump_gc_generation(s, err)) < 0) {
		store_fsck_result_free(&res);
		return r;
	}
	if (repair && res.repaired && syncfs(s->objects_fd) < 0) {
		store_fsck_result_free(&res);
		return error_set(err, errno, "syncing the store: %s", strerror(errno));
	}
	*ret = res;
	return 0;
}

void store_fsck_result_free(struct store_fsck_result *r)
{
	strv_free_n_(r->bad_names, r->n_bad_names);
	strv_free_n_(r->bad_copies, r->n_bad_copies);
	strv_free_n_(r->changed_meta, r->n_changed_meta);
	free(r->corrupt);
	*r = (struct store_fsck_result){0};
}

/* --- gc ---------------------------------------------------------------------- */

struct gc_job {
	const struct digest_set *keep;
	bool dry_run;
	struct store_gc_result res;
	int error;
};

static int gc_visit(struct store *s, const struct object_name *o, void *u)
{
	struct gc_job *job = u;
	struct stat st;
	if (fstatat(s->objects_fd, o->rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	uint64_t bytes = (uint64_t)st.st_size;
	if (o->staging) {
		/* Under the exclusive lock no transaction runs: a crash left it. */
		if (!job->dry_run)
			(void)unlinkat(s->objects_fd, o->rel, 0);
		return 0;
	}
	if (o->valid && digest_set_contains(job->keep, &o->base)) {
		job->res.objects_kept++;
		job->res.bytes_kept += bytes;
		return 0;
	}
	if (!job->dry_run && unlinkat(s->objects_fd, o->rel, 0) < 0) {
		job->error = -errno;
		return 0;
	}
	job->res.objects_removed++;
	job->res.bytes_removed += bytes;
	return 0;
}

uint64_t store_gc_generation(struct store *s)
{
	_cleanup_free_ char *data = NULL;
	if (read_file_at(s->root_fd, "gc-generation", &data, NULL, 64) < 0)
		return 0;
	return strtoull(data, NULL, 10);
}

static int bump_gc_generation(struct store *s, struct cairn_error *err)
{
	char gen[32];
	int n = snprintf(gen, sizeof(gen), "%llu\n", (unsigned long long)store_gc_generation(s) + 1);
	int r = write_file_atomic_at(s->root_fd, "gc-generation", gen, (size_t)n, 0600, true);
	if (r < 0)
		return error_set(err, -r, "writing %s/gc-generation: %s", s->root, strerror(-r));
	return 0;
}

int store_gc(struct store *s, const struct digest_set *keep, bool dry_run,
	     struct store_gc_result *ret, struct cairn_error *err)
{
	struct gc_job job = {.keep = keep, .dry_run = dry_run};
	if (!dry_run) {
		/* Bump the generation first: a stat cache written before this gc must
		 * not vouch for objects this gc may remove. */
		int r = bump_gc_generation(s, err);
		if (r < 0)
			return r;
		/* Staging areas of crashed imports (the exclusive lock says no
		 * transaction is running). */
		int tfd = fcntl(s->tmp_fd, F_DUPFD_CLOEXEC, 3);
		DIR *td = tfd >= 0 ? fdopendir(tfd) : NULL;
		if (td) {
			struct dirent *de;
			while ((de = readdir(td)))
				if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
					(void)rm_rf_at(s->tmp_fd, de->d_name);
			closedir(td);
		} else
			safe_close(tfd);
	}
	int r = store_foreach_object(s, gc_visit, &job);
	if (r < 0)
		return error_set(err, -r, "listing objects: %s", strerror(-r));
	if (job.error < 0)
		return error_set(err, -job.error, "removing objects: %s", strerror(-job.error));
	if (!dry_run && job.res.objects_removed && syncfs(s->objects_fd) < 0)
		return error_set(err, errno, "syncing the store: %s", strerror(errno));
	*ret = job.res;
	return 0;
}

/* --- variants ------------------------------------------------------------------ */

static void variant_key(const struct file_meta *m, char out[17])
{
	_cleanup_(hasher_freep) struct hasher *h = hasher_new();
	uint32_t head[3] = {m->mode, m->uid, m->gid};
	hasher_update(h, head, sizeof(head));
	for (size_t i = 0; i < m->n_xattrs; i++) {
		uint64_t len = m->xattrs[i].len;
		hasher_update(h, m->xattrs[i].name, strlen(m->xattrs[i].name) + 1);
		hasher_update(h, &len, sizeof(len));
		hasher_update(h, m->xattrs[i].value, m->xattrs[i].len);
	}
	struct digest d;
	hasher_final(h, &d);
	char hex[DIGEST_HEX_LEN + 1];
	digest_to_hex(&d, hex);
	memcpy(out, hex, 16);
	out[16] = 0;
}

static int copy_fd(int src, int dst)
{
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	for (;;) {
		ssize_t n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			return 0;
	}
	/* copy_file_range unsupported here: plain read/write from the start. */
	if (lseek(src, 0, SEEK_SET) < 0 || lseek(dst, 0, SEEK_SET) < 0 || ftruncate(dst, 0) < 0)
		return -errno;
	char buf[65536];
	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		int r = write_all(dst, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

/* Find or make the object file that carries meta: the object itself when its
 * metadata already matches, else the variant "ab/cdef….<key>". Returns its
 * path relative to objects/ in *ret_rel. */
static int store_object_variant(struct store *s, const struct digest *d,
				const struct file_meta *meta, char **ret_rel,
				struct cairn_error *err)
{
	char rel[DIGEST_HEX_LEN + 2], name[DIGEST_STR_LEN];
	store_object_relpath(d, rel);
	digest_to_string(d, name);
	struct stat st;
	if (fstatat(s->objects_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return error_set(err, errno, "object %s: %s", name, strerror(errno));
	if (meta->n_xattrs == 0 && (st.st_mode & 07777) == meta->mode && st.st_uid == meta->uid &&
	    st.st_gid == meta->gid) {
		*ret_rel = xstrdup(rel);
		return 0;
	}
	char key[17];
	variant_key(meta, key);
	_cleanup_free_ char *vrel = xasprintf("%s.%s", rel, key);
	if (faccessat(s->objects_fd, vrel, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		*ret_rel = TAKE_PTR(vrel);
		return 0;
	}
	/* Make it: copy (a reflink where the file system can), set owner, then
	 * mode (chown clears setuid), then xattrs; fsync; rename into place. */
	_cleanup_close_ int base =
		openat(s->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (base < 0)
		return error_set(err, errno, "object %s: %s", name, strerror(errno));
	_cleanup_free_ char *tmp = tmp_name("variant");
	_cleanup_close_ int out =
		openat(s->tmp_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return error_set(err, errno, "creating a copy of %s: %s", name, strerror(errno));
	int r = copy_fd(base, out);
	if (r == 0 && fchown(out, meta->uid, meta->gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(out, meta->mode) < 0)
		r = -errno;
	for (size_t i = 0; r == 0 && i < meta->n_xattrs; i++)
		if (fsetxattr(out, meta->xattrs[i].name, meta->xattrs[i].value, meta->xattrs[i].len,
			      0) < 0)
			r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r == 0 && renameat2(s->tmp_fd, tmp, s->objects_fd, vrel, RENAME_NOREPLACE) < 0 &&
	    errno != EEXIST)
		r = -errno;
	(void)unlinkat(s->tmp_fd, tmp, 0); /* left only when another made it first */
	if (r < 0)
		return error_set(err, -r, "creating a copy of %s with its metadata: %s", name,
				 strerror(-r));
	*ret_rel = TAKE_PTR(vrel);
	return 0;
}

/* Hash the object file at rel (objects/-relative) against d, once per set. */
static int verify_object_file(struct store *s, const char *rel, const struct digest *d,
			      struct digest_set *verified, struct cairn_error *err)
{
	struct digest key;
	digest_buffer(rel, strlen(rel), &key);
	if (verified && digest_set_contains(verified, &key))
		return 0;
	_cleanup_close_ int fd = openat(s->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct digest got;
	if (fd < 0 || digest_fd(fd, &got, NULL) < 0)
		return error_set(err, errno, "object objects/%s: %s", rel, strerror(errno));
	if (!digest_eq(&got, d)) {
		char name[DIGEST_STR_LEN];
		digest_to_string(d, name);
		return error_set(err, EBADMSG,
				 "object %s (objects/%s) is corrupt; run 'cairn fsck --repair' "
				 "and import the image again",
				 name, rel);
	}
	if (verified)
		digest_set_add(verified, &key);
	return 0;
}

int store_link_object(struct store *s, const struct digest *d, const struct file_meta *meta,
		      int dirfd, const char *name, struct digest_set *verified,
		      struct cairn_error *err)
{
	_cleanup_free_ char *rel = NULL;
	int r = store_object_variant(s, d, meta, &rel, err);
	if (r < 0)
		return r;
	r = verify_object_file(s, rel, d, verified, err);
	if (r < 0)
		return r;
	if (linkat(s->objects_fd, rel, dirfd, name, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EMLINK && errno != EPERM)
		return error_set(err, errno, "linking %s: %s", name, strerror(errno));
	/* Another file system (or too many links): copy, then set the metadata. */
	_cleanup_close_ int src = openat(s->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int dst = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
							     O_CLOEXEC, 0600);
	if (src < 0 || dst < 0)
		return error_set(err, errno, "copying %s: %s", name, strerror(errno));
	r = copy_fd(src, dst);
	if (r == 0 && fchown(dst, meta->uid, meta->gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(dst, meta->mode) < 0)
		r = -errno;
	for (size_t i = 0; r == 0 && i < meta->n_xattrs; i++)
		if (fsetxattr(dst, meta->xattrs[i].name, meta->xattrs[i].value, meta->xattrs[i].len,
			      0) < 0)
			r = -errno;
	return r < 0 ? error_set(err, -r, "copying %s: %s", name, strerror(-r)) : 0;
}
