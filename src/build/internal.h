/* Pieces shared inside src/build: tree edits for build steps. */
#pragma once

#include "../store/tree.h"

/* Deep copies. */
void tree_entry_copy(struct tree_entry *dst, const struct tree_entry *src, const char *path);
void tree_dup(const struct tree *src, struct tree *ret);

/* Resolve path (relative to the root, or absolute) inside a sorted tree as
 * the kernel would inside the image: "." and ".." (never above the root),
 * symlinks in every component followed (the last one only with
 * follow_last). The result is a canonical tree path ("." for the root);
 * components that do not exist are kept as written. */
int tree_resolve(const struct tree *t, const char *path, bool follow_last, char **ret,
		 struct cairn_error *err);

/* "/a//./b/../c/" -> "a/c"; "" or "/" -> ".". Lexical only. */
char *path_clean(const char *path);
/* dir + "/" + name, where dir "." is the root. */
char *path_join(const char *dir, const char *name);

/* What a step changed: paths removed with everything below them, directories
 * whose old content is hidden (opaque), and entries added or replaced. */
struct changes {
	char **remove;
	size_t n_remove;
	char **clear;
	size_t n_clear;
	struct tree add;
};
void changes_remove(struct changes *c, const char *path);
void changes_clear(struct changes *c, const char *path);
void changes_free(struct changes *c);

/* Apply c to the sorted tree t (consuming c->add): an entry goes when it is
 * replaced, removed, below a removed or cleared directory, or below a path
 * that became something other than a directory. Then hardlink groups that
 * lost their head or diverged are repaired, and the result validated. */
int tree_apply(struct tree *t, struct changes *c, struct cairn_error *err);
