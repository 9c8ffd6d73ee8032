/* File-system helpers: crash-safe atomic writes, fd-relative directory work,
 * and opening paths inside a root by file descriptor (openat2 RESOLVE_IN_ROOT)
 * so that no symlink inside an image or tree can lead outside it. */
#pragma once

#include "macro.h"

#include <fcntl.h>
#include <sys/stat.h>

/* fsync() the directory open at dirfd, or the directory at path relative to it. */
int fsync_dir_at(int dirfd, const char *path);

/* Write data to dirfd/name atomically: temp file in the same directory, fsync,
 * rename over name, fsync the directory (the last two only when sync). */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync);

/* Write all of data to fd, retrying short writes. */
int write_all(int fd, const void *data, size_t len);
/* Read exactly len bytes unless EOF comes first; returns bytes read or -errno. */
ssize_t read_full(int fd, void *data, size_t len);

/* Read a whole file (at most max bytes; -EFBIG beyond) into a NUL-terminated buffer.
 * An empty path reads dirfd itself (an open regular file) from its start. */
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len, size_t max);

/* mkdir -p relative to dirfd; existing directories are fine. */
int mkdir_p_at(int dirfd, const char *path, mode_t mode);

/* 1 when dirfd/name is a directory with no entries, 0 when it has some, -errno. */
int dir_is_empty_at(int dirfd, const char *name);

/* Remove dirfd/name and everything below it, never following symlinks.
 * A missing name is success. */
int rm_rf_at(int dirfd, const char *name);

/* Open path inside the tree rooted at rootfd: ".." and absolute symlinks stay
 * inside the root (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). On
 * kernels without openat2 it falls back to a component-by-component walk with
 * O_NOFOLLOW that refuses symlinks in the path. O_CLOEXEC is always added. */
int open_in_root(int rootfd, const char *path, int flags, mode_t mode);

/* Open the parent directory of path inside rootfd (as open_in_root) and return
 * it, with the last component in *ret_base (pointing into path). */
int open_parent_in_root(int rootfd, const char *path, const char **ret_base);

/* One extended attribute. */
struct xattr {
	char *name;
	uint8_t *value;
	size_t len;
};

/* Read every xattr of an open file, sorted by name, except security.selinux
 * (a label of the host, not of the content). *ret is owned by the caller
 * (xattrs_free). A file system without xattrs gives none. */
int fs_read_xattrs(int fd, struct xattr **ret, size_t *ret_n);
void xattrs_free(struct xattr *v, size_t n);

/* A unique name "prefix.XXXXXX" (random) for temp files and dirs. Caller frees. */
char *tmp_name(const char *prefix);

/* Nanoseconds of CLOCK_REALTIME / CLOCK_MONOTONIC. */
int64_t now_realtime_ns(void);
int64_t now_monotonic_ns(void);
