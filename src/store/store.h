/* The content-addressed object store: every file's content, every tree and
 * every manifest is one object, named by the sha256 of its bytes, stored once
 * under $ROOT/objects/ab/cdef... New objects are staged in a transaction and
 * become visible only after they are durable (syncfs, rename, syncfs). */
#pragma once

#include "../base/error.h"
#include "../base/fs.h"
#include "../base/hash.h"

#include <sys/types.h>

struct store;
struct store_txn;

/* Largest tree or manifest object the store will load into memory. */
#define STORE_META_MAX (256u << 20)

/* Open (and with create, initialise) the store at root. The store holds the
 * directory fds; it is not thread-safe except where a function says so. */
int store_open(const char *root, bool create, struct store **ret, struct cairn_error *err);
struct store *store_close(struct store *s);
static inline void store_closep(struct store **s)
{
	store_close(*s);
}

const char *store_root(const struct store *s);
int store_root_fd(const struct store *s);

/* Take the store-wide lock: shared for writers of new objects (import, build),
 * exclusive for gc. Blocks. Held until store_close(). */
int store_lock(struct store *s, bool exclusive, struct cairn_error *err);

/* "ab/cdef..." (65 chars + NUL) for a digest. */
void store_object_relpath(const struct digest *d, char out[DIGEST_HEX_LEN + 2]);

/* True when the object is present (no content check). Thread-safe. */
bool store_has_object(struct store *s, const struct digest *d);

/* Open an object read-only. -ENOENT when missing. Thread-safe. */
int store_open_object(struct store *s, const struct digest *d);

/* Read a whole metadata object (tree, manifest) and check that its content
 * hashes to d: a corrupt object is never served (-EBADMSG). */
int store_read_object(struct store *s, const struct digest *d, char **ret, size_t *ret_len,
		      struct cairn_error *err);

/* Begin a transaction that stages new objects under $ROOT/tmp. */
int store_txn_begin(struct store *s, struct store_txn **ret, struct cairn_error *err);

/* Stage data as an object and return its digest. Objects already in the store
 * are not written again. Thread-safe on one transaction. */
int store_txn_put(struct store_txn *t, const void *data, size_t len, struct digest *ret);

/* Stage the content readable from fd (its current offset to EOF) and return its
 * digest and size. Reads fd once. Thread-safe on one transaction; the caller
 * supplies a scratch buffer of buflen bytes (at least 64 KiB). */
int store_txn_put_fd(struct store_txn *t, int fd, void *buf, size_t buflen, struct digest *ret,
		     uint64_t *ret_size);

/* A streaming writer for content that arrives in pieces (a tar entry). */
struct store_writer;
int store_writer_new(struct store_txn *t, struct store_writer **ret);
int store_writer_write(struct store_writer *w, const void *data, size_t len);
/* Finish: hash, stage (or drop when already stored), free w. */
int store_writer_finish(struct store_writer *w, struct digest *ret, uint64_t *ret_size);
/* Free the calling thread's cached writer buffer (call before a worker
 * thread ends). */
void store_writer_thread_done(void);
/* Drop a writer without staging anything. Accepts NULL. */
void store_writer_abort(struct store_writer *w);

/* Make every staged object durable and visible. On failure nothing that is
 * not durable becomes visible. The transaction is freed either way. */
int store_txn_commit(struct store_txn *t, struct cairn_error *err);
/* Drop the transaction and its staging area. Accepts NULL. */
void store_txn_abort(struct store_txn *t);
static inline void store_txn_abortp(struct store_txn **t)
{
	store_txn_abort(*t);
}

/* --- fsck and gc ------------------------------------------------------ */

/* A set of digests (open addressing). */
struct digest_set;
struct digest_set *digest_set_new(void);
struct digest_set *digest_set_free(struct digest_set *set);
/* Returns true when d was newly added. */
bool digest_set_add(struct digest_set *set, const struct digest *d);
bool digest_set_contains(const struct digest_set *set, const struct digest *d);
size_t digest_set_size(const struct digest_set *set);

struct store_fsck_result {
	struct digest *corrupt; /* objects whose content does not hash to the name */
	size_t n_corrupt;
	char **bad_copies; /* "ab/cdef….key: content" — checkout copies gone wrong */
	size_t n_bad_copies;
	char **changed_meta; /* objects whose mode, owner or xattrs were changed */
	size_t n_changed_meta;
	char **bad_names; /* files in objects/ that are not objects */
	size_t n_bad_names;
	uint64_t n_objects;
	uint64_t bytes;
	uint64_t repaired; /* with repair: files removed or reset */
};
/* Re-hash every object on nthreads threads, and check the metadata of every
 * object (mode 0644, the store's owner, no xattrs) and copy (the metadata its
 * name promises). Fills ret (caller frees with store_fsck_result_free);
 * returns 0 even when problems are found. With repair (exclusive lock held):
 * corrupt objects and copies are removed, so the next import or checkout
 * writes them again, and changed metadata is reset. */
int store_fsck(struct store *s, unsigned nthreads, bool repair, struct store_fsck_result *ret,
	       struct cairn_error *err);
void store_fsck_result_free(struct store_fsck_result *r);

struct store_gc_result {
	uint64_t objects_removed;
	uint64_t bytes_removed;
	uint64_t objects_kept;
	uint64_t bytes_kept;
};
/* Remove every object (and checkout variant) whose digest is not in keep, and
 * stale staging areas. With dry_run only counts. Needs the exclusive lock. */
int store_gc(struct store *s, const struct digest_set *keep, bool dry_run,
	     struct store_gc_result *ret, struct cairn_error *err);

/* A counter bumped by every gc that removed something; caches of "this object
 * exists" keyed on it stay valid until the next gc. */
uint64_t store_gc_generation(struct store *s);

/* --- checkouts --------------------------------------------------------- */

struct digest_set;

/* Metadata of one file as a checkout needs it. */
struct file_meta {
	uint32_t mode; /* 07777 bits */
	uint32_t uid, gid;
	const struct xattr *xattrs; /* sorted by name */
	size_t n_xattrs;
};

/* Put a file with content d and metadata meta at dirfd/name: a hardlink to the
 * object when its metadata matches, else to a variant (a copy of the object
 * carrying meta, made once and kept beside it), or a copy when dirfd is on
 * another file system. The file linked is hashed first (once per checkout:
 * verified remembers what was checked), so a corrupt object is never served:
 * -EBADMSG names it. */
int store_link_object(struct store *s, const struct digest *d, const struct file_meta *meta,
		      int dirfd, const char *name, struct digest_set *verified,
		      struct cairn_error *err);

/* Materialize tree t at dir (which must not exist, or be an empty directory):
 * built beside it under a temporary name, synced when durable, then renamed
 * into place, so dir is either absent or complete. Every path is created
 * relative to fds opened inside the new root (RESOLVE_IN_ROOT). */
struct tree;
int store_checkout(struct store *s, const struct tree *t, const char *dir, bool durable,
		   struct cairn_error *err);
