/* Trees: the canonical list of every path in an image with its type, mode,
 * owner, xattrs and content digest. A tree is stored as one object in a
 * canonical JSON encoding (sorted paths, fixed key order, no whitespace), so
 * the same files always give the same tree digest. */
#pragma once

#include "store.h"

enum entry_type {
	ENTRY_DIR,
	ENTRY_FILE,
	ENTRY_SYMLINK,
};

struct tree_entry {
	char *path; /* "." for the root, else "a/b" (no leading or trailing slash) */
	enum entry_type type;
	uint32_t mode; /* 07777 bits, including setuid/setgid/sticky */
	uint32_t uid, gid;
	uint64_t size;	     /* files */
	struct digest digest; /* files */
	char *target;	     /* symlinks */
	char *link;	     /* files: the first path of its hardlink group, or NULL */
	struct xattr *xattrs; /* sorted by name, owned */
	size_t n_xattrs;
};

struct tree {
	struct tree_entry *entries;
	size_t n, cap;
};

/* Limits a tree must respect (import enforces them with clear errors). */
#define TREE_MAX_PATH 4096
#define TREE_MAX_DEPTH 256

/* Append a zeroed entry; the tree owns everything the entry points to. */
struct tree_entry *tree_add(struct tree *t);
void tree_entry_free(struct tree_entry *e);
void tree_free(struct tree *t);
/* Path order: "." (the root) first, then bytewise. */
int tree_path_cmp(const char *a, const char *b);
/* Sort by path (root first, then bytewise). */
void tree_sort(struct tree *t);
/* Binary search in a sorted tree; NULL when absent. */
const struct tree_entry *tree_find(const struct tree *t, const char *path);
/* Sort the xattrs of an entry by name. */
void tree_entry_sort_xattrs(struct tree_entry *e);

/* Check that path is a canonical relative path: no empty, "." or ".."
 * components, no leading or trailing slash, under the length and depth limits.
 * "." alone (the root) is valid. Returns a static reason or NULL when valid. */
const char *tree_path_problem(const char *path);

/* True for an xattr name Linux can set: "user.", "trusted.", "security." or
 * "system." and more, valid UTF-8, at most 255 bytes. */
bool tree_xattr_name_valid(const char *name);

/* Check a sorted tree: unique valid paths, a root entry, every parent present
 * and a directory (so no path passes through a symlink or a file), hardlinks
 * pointing at an earlier regular file with the same content, xattr names
 * valid and unique. On failure err
 * names the first bad entry. */
int tree_validate(const struct tree *t, struct cairn_error *err);

/* Canonical encoding of a sorted, valid tree. Caller frees *ret. */
void tree_encode(const struct tree *t, char **ret, size_t *ret_len);

/* Parse an encoded tree (strictly: unknown keys, bad types and invalid trees
 * are errors). */
int tree_decode(const char *data, size_t len, struct tree *ret, struct cairn_error *err);

/* Sum of file sizes (hardlinks counted once) and number of entries. */
void tree_stats(const struct tree *t, uint64_t *ret_bytes, uint64_t *ret_files);

/* Equal metadata and content (used by verify): fills what differs as a short
 * word list ("content mode owner target xattrs type") into out. */
bool tree_entry_same(const struct tree_entry *a, const struct tree_entry *b, char *out,
		     size_t outlen);
