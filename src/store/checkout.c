/* Checkouts: materialize a tree as a directory of hardlinks into the store.
 * Built under a temporary name beside the target and renamed into place, so a
 * checkout is either complete or absent. Every entry is created relative to a
 * parent directory fd opened inside the new root with RESOLVE_IN_ROOT. */
#include "store.h"
#include "tree.h"

#include "../base/fs.h"

#include <libgen.h>
#include <stdio.h>
#include <sys/xattr.h>

struct parent_cache {
	char *path; /* parent path inside the root, "" for the root */
	int fd;
};

static int parent_fd(int rootfd, struct parent_cache *pc, const char *path, const char **ret_base)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	*ret_base = slash ? slash + 1 : path;
	if (pc->path && strlen(pc->path) == plen && strncmp(pc->path, path, plen) == 0)
		return pc->fd;
	pc->fd = safe_close(pc->fd);
	free(pc->path);
	pc->path = xstrndup(path, plen);
	int fd = open_in_root(rootfd, plen ? pc->path : ".", O_PATH | O_DIRECTORY, 0);
	if (fd < 0) {
		free(pc->path);
		pc->path = NULL;
		return fd;
	}
	pc->fd = fd;
	return fd;
}

static int set_dir_meta(int rootfd, const struct tree_entry *e, struct cairn_error *err)
{
	_cleanup_close_ int fd = streq(e->path, ".")
					 ? fcntl(rootfd, F_DUPFD_CLOEXEC, 3)
					 : open_in_root(rootfd, e->path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return error_set(err, fd == -1 ? errno : -fd, "opening %s: %s", e->path,
				 strerror(fd == -1 ? errno : -fd));
	if (fchown(fd, e->uid, e->gid) < 0 || fchmod(fd, e->mode) < 0)
		return error_set(err, errno, "setting owner and mode of %s: %s", e->path,
				 strerror(errno));
	for (size_t i = 0; i < e->n_xattrs; i++)
		if (fsetxattr(fd, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len, 0) < 0)
			return error_set(err, errno, "setting xattr %s on %s: %s", e->xattrs[i].name,
					 e->path, strerror(errno));
	return 0;
}

static int checkout_entries(struct store *s, const struct tree *t, int rootfd,
			    struct cairn_error *err)
{
	struct parent_cache pc = {.fd = -1};
	struct digest_set *verified = digest_set_new();
	int r = 0;
	for (size_t i = 1; i < t->n && r == 0; i++) {
		const struct tree_entry *e = &t->entries[i];
		const char *base;
		int pfd = parent_fd(rootfd, &pc, e->path, &base);
		if (pfd < 0) {
			r = error_set(err, -pfd, "opening the parent of %s: %s", e->path,
				      strerror(-pfd));
			break;
		}
		switch (e->type) {
		case ENTRY_DIR:
			if (mkdirat(pfd, base, 0700) < 0)
				r = error_set(err, errno, "creating %s: %s", e->path,
					      strerror(errno));
			break;
		case ENTRY_FILE: {
			struct file_meta m = {.mode = e->mode,
					      .uid = e->uid,
					      .gid = e->gid,
					      .xattrs = e->xattrs,
					      .n_xattrs = e->n_xattrs};
			r = store_link_object(s, &e->digest, &m, pfd, base, verified, err);
			if (r < 0)
				error_wrap(err, "%s", e->path);
			break;
		}
		case ENTRY_SYMLINK:
			if (symlinkat(e->target, pfd, base) < 0 ||
			    fchownat(pfd, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
				r = error_set(err, errno, "creating symlink %s: %s", e->path,
					      strerror(errno));
			break;
		}
	}
	safe_close(pc.fd);
	free(pc.path);
	digest_set_free(verified);
	/* Directory metadata last and deepest first, so a 0555 directory is
	 * filled before it is closed. */
	for (size_t i = t->n; r == 0 && i-- > 0;)
		if (t->entries[i].type == ENTRY_DIR)
			r = set_dir_meta(rootfd, &t->entries[i], err);
	return r;
}

int store_checkout(struct store *s, const struct tree *t, const char *dir, bool durable,
		   struct cairn_error *err)
{
	_cleanup_free_ char *copy1 = xstrdup(dir), *copy2 = xstrdup(dir);
	const char *parent = dirname(copy1), *name = basename(copy2);
	if (streq(name, "/") || streq(name, ".") || streq(name, ".."))
		return error_set(err, EINVAL, "%s: not a usable checkout directory", dir);
	_cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return error_set(err, errno, "%s: %s", parent, strerror(errno));
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISDIR(st.st_mode))
			return error_set(err, EEXIST, "%s exists and is not a directory", dir);
		if (dir_is_empty_at(pfd, name) != 1)
			return error_set(err, ENOTEMPTY, "%s exists and is not empty", dir);
	}
	_cleanup_free_ char *tmp_base = xasprintf(".%s.checkout", name);
	_cleanup_free_ char *tmp = tmp_name(tmp_base);
	if (mkdirat(pfd, tmp, 0700) < 0)
		return error_set(err, errno, "creating %s in %s: %s", tmp, parent, strerror(errno));
	int r;
	{
		_cleanup_close_ int rootfd =
			openat(pfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (rootfd < 0)
			r = error_set(err, errno, "opening %s: %s", tmp, strerror(errno));
		else
			r = checkout_entries(s, t, rootfd, err);
		if (r == 0 && durable && syncfs(rootfd) < 0)
			r = error_set(err, errno, "syncing %s: %s", dir, strerror(errno));
	}
	if (r == 0 && renameat(pfd, tmp, pfd, name) < 0)
		r = error_set(err, errno, "moving the checkout to %s: %s", dir, strerror(errno));
	if (r == 0 && durable)
		r = fsync(pfd) < 0 ? error_set(err, errno, "syncing %s: %s", parent,
					       strerror(errno))
				   : 0;
	if (r < 0)
		(void)rm_rf_at(pfd, tmp);
	return r;
}
