/* Images: a manifest naming a tree and a run config, stored as an object whose
 * digest is the image id. This module parses references (NAME:TAG), encodes
 * manifests canonically, imports directories and tar archives into the store,
 * and walks what an image reaches (for gc and fsck). */
#pragma once

#include "../base/error.h"
#include "../store/store.h"
#include "../store/tree.h"

#include <jansson.h>

#define IMAGE_MEDIA_TYPE "application/vnd.cairn.image.v1+json"

/* --- references ------------------------------------------------------------- */

/* Parse "name[:tag]" (tag defaults to "latest"). Names are lowercase
 * components [a-z0-9] separated by '.', '_', '__', '-' runs, joined by '/',
 * optionally after a registry "host[:port]/"; tags match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
 * On error err says what is wrong with which part. */
int image_ref_parse(const char *ref, char **ret_name, char **ret_tag, struct cairn_error *err);

/* True when s looks like an image id or id prefix ("sha256:…" or 4-64 hex). */
bool image_ref_is_id(const char *s);

/* --- manifests --------------------------------------------------------------- */

struct image_manifest {
	struct digest tree;
	json_t *config; /* owned; a JSON object */
};

void image_manifest_free(struct image_manifest *m);
/* Canonical bytes: sorted keys, no whitespace. Caller frees *ret. */
void image_manifest_encode(const struct image_manifest *m, char **ret, size_t *ret_len);
int image_manifest_decode(const char *data, size_t len, struct image_manifest *ret,
			  struct cairn_error *err);

/* Load an image's manifest (and its tree, when ret_tree is non-NULL), checking
 * every hash on the way. */
int image_load(struct store *s, const struct digest *id, struct image_manifest *ret_manifest,
	       struct tree *ret_tree, struct cairn_error *err);

/* Add the image, its tree and every file object it uses to set. */
int image_add_reachable(struct store *s, const struct digest *id, struct digest_set *set,
			struct cairn_error *err);

/* Add a tree and every file object it uses to set (the build cache's trees). */
int image_add_tree_reachable(struct store *s, const struct digest *tree, struct digest_set *set,
			     struct cairn_error *err);

/* --- import ------------------------------------------------------------------- */

struct import_limits {
	uint64_t max_bytes;   /* total content bytes */
	uint64_t max_entries; /* paths */
	unsigned max_depth;   /* path components */
};
#define IMPORT_DEFAULT_MAX_BYTES (64ull << 30)
#define IMPORT_DEFAULT_MAX_ENTRIES 2000000ull
#define IMPORT_DEFAULT_MAX_DEPTH 128u

struct import_result {
	struct digest id;
	struct digest tree;
	uint64_t bytes;	     /* content bytes of the image */
	uint64_t entries;    /* paths in the tree */
	uint64_t skipped;    /* device nodes, fifos, sockets left out */
	uint64_t files_read; /* files hashed (not answered by the stat cache) */
	char *source_kind;   /* "directory", "tar", "tar+gzip", ... (owned) */
};
void import_result_free(struct import_result *r);

/* Import a directory or a tar archive (plain, gzip, zstd, xz, bzip2; "-" reads
 * one from standard input) at source
 * into the store as a new image with config (a JSON object, borrowed; NULL for
 * empty). All objects are durable when it returns 0; nothing new is visible
 * when it fails. The caller holds the store lock (shared). */
int image_import(struct store *s, const char *source, const json_t *config,
		 const struct import_limits *limits, struct import_result *ret,
		 struct cairn_error *err);

/* --- scanning a directory in steps (build contexts, overlay upper layers) --- */

struct dir_scan_opts {
	const struct import_limits *limits; /* NULL: the import defaults */
	/* An overlayfs upper directory: character devices 0:0 are whiteouts,
	 * directories marked trusted.overlay.opaque are listed, and overlayfs's
	 * own trusted.overlay.* xattrs are left out of the tree. */
	bool overlay_upper;
	/* Answer unchanged files from the store's stat cache. */
	bool use_cache;
	/* Leave out a path (and, for a directory, everything below it); called
	 * from several threads at once. */
	bool (*exclude)(const char *path, bool is_dir, void *userdata);
	void *userdata;
};
struct dir_scan;

/* Walk dir by file descriptor (never following a symlink) into an unsorted
 * tree, reading no file content except what the stat cache answers. */
int dir_scan_walk(struct store *s, const char *dir, const struct dir_scan_opts *o,
		  struct dir_scan **ret, struct cairn_error *err);
/* The tree: unsorted after the walk, sorted and validated after
 * dir_scan_store. */
const struct tree *dir_scan_tree(const struct dir_scan *ds);
/* Files the stat cache did not answer. */
size_t dir_scan_pending(const struct dir_scan *ds);
/* Whiteouts and opaque directories found in an overlay upper directory. */
void dir_scan_overlay(const struct dir_scan *ds, char *const **ret_whiteouts, size_t *ret_nw,
		      char *const **ret_opaques, size_t *ret_no);
/* Hash and stage the files still to be read into txn on every core, link
 * hardlink groups, sort and validate the tree. Call once. */
int dir_scan_store(struct dir_scan *ds, struct store_txn *txn, struct cairn_error *err);
/* Remember the digests for the next walk; only after txn was committed. */
void dir_scan_save_cache(struct dir_scan *ds);
struct dir_scan *dir_scan_free(struct dir_scan *ds);

/* Read a directory into a tree (hashing files, storing nothing), for verify.
 * Special files are counted in *ret_skipped and left out. */
int image_scan_dir(const char *dir, struct tree *ret, uint64_t *ret_skipped,
		   struct cairn_error *err);

/* Import a tar archive from memory into txn (used by the fuzzer and tests).
 * Fills ret with a sorted, validated tree. */
int image_tar_from_memory(struct store_txn *txn, const void *data, size_t len,
			  const struct import_limits *limits, struct tree *ret,
			  uint64_t *ret_skipped, struct cairn_error *err);

/* --- comparing ------------------------------------------------------------------ */

enum diff_kind {
	DIFF_ADDED,
	DIFF_REMOVED,
	DIFF_CHANGED,
};

/* Compare two sorted trees, calling fn for every difference in path order;
 * what is a short description of the change ("content", "mode (0644 -> 0600)").
 * Returns the number of differences. */
size_t image_tree_diff(const struct tree *expected, const struct tree *actual,
		       void (*fn)(enum diff_kind kind, const char *path, const char *what, void *u),
		       void *userdata);
