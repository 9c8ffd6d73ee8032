/* Pieces shared by the import paths (directory, tar) inside src/image. */
#pragma once

#include "image.h"

/* What the directory walk learned about a path, beyond the tree entry. */
struct scan_stat {
	uint64_t dev, ino, nlink;
	int64_t mtime_ns, ctime_ns;
	bool pending; /* its content is still to be read */
};

/* --- stat cache: (path, dev, ino, size, mtime, ctime) -> digest, xattrs ----- */
struct statcache;
/* Load the cache for source (an absolute path) from cache_dirfd; an absent,
 * stale (other gc generation) or damaged cache loads as empty. Never fails. */
struct statcache *statcache_load(int cache_dirfd, const char *source, uint64_t gc_generation);
struct statcache *statcache_free(struct statcache *c);
/* Fill e's digest and xattrs from the cache when st matches; true on a hit. */
bool statcache_lookup(struct statcache *c, struct tree_entry *e, const struct scan_stat *st);
/* Files changed less than this before an import are not cached: the kernel's
 * timestamps are taken from a clock that ticks every few milliseconds, so a
 * file written again within one tick after it was read keeps its ctime. */
#define STATCACHE_MARGIN_NS (100 * 1000000LL)

/* Encode a new cache of the regular files in t (parallel to stats) whose
 * ctime and mtime are older than not_after_ns; *ret_count says how many. */
struct buf;
void statcache_build(uint64_t gc_generation, const struct tree *t, const struct scan_stat *stats,
		     int64_t not_after_ns, struct buf *ret, uint64_t *ret_count);
/* Records in a loaded cache (0 when none was loaded). */
uint64_t statcache_count(const struct statcache *c);
/* Write an encoded cache for source. Best effort: a cache is never required. */
void statcache_write(int cache_dirfd, const char *source, const struct buf *b);

/* Read the xattrs of an open file into e (skipping security.selinux, a label
 * of the host, not of the image). */
int read_xattrs_fd(int fd, struct tree_entry *e);

/* Add a root entry when the tree has none, link hardlink groups, sort and
 * validate; then store the tree and a manifest with config in txn. */
int import_finish(struct store_txn *txn, struct tree *t, const json_t *config,
		  struct import_result *ret, struct cairn_error *err);

/* Check a path against the limits; err names the path. */
int import_check_path(const char *path, const struct import_limits *lim, uint64_t n_entries,
		      struct cairn_error *err);

/* Import a tar archive read from fd (any compression libarchive knows). */
int import_tar_fd(struct store *s, int fd, const json_t *config, const struct import_limits *lim,
		  struct import_result *ret, struct cairn_error *err);
