/* File-system helpers: atomic writes, fd-relative trees, in-root resolution. */
#include "fs.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>

int fsync_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	safe_close(fd);
	return r;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_full(int fd, void *data, size_t len)
{
	char *p = data;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

char *tmp_name(const char *prefix)
{
	uint64_t rnd;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)now_monotonic_ns() ^ ((uint64_t)getpid() << 32);
	return xasprintf("%s.%016llx", prefix, (unsigned long long)rnd);
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync)
{
	_cleanup_free_ char *tmp = tmp_name(".tmp");
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && sync && fsync(fd) < 0)
		r = -errno;
	safe_close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (sync)
		return fsync_dir_at(dirfd, NULL);
	return 0;
}

int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len, size_t max)
{
	/* "" reads dirfd itself, an open regular file, from its start */
	_cleanup_close_ int fd = *path ? openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
				       : fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (!*path && lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* Read to the end: files of /proc and /sys say their size is 0, and a
	 * file that grew is read as it is now (the store hashes what it read). */
	size_t cap = (size_t)st.st_size + 1 > 4096 ? (size_t)st.st_size + 1 : 4096, len = 0;
	_cleanup_free_ char *data = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max)
				return -EFBIG;
			data = xrealloc(data, cap *= 2);
		}
		ssize_t n = read(fd, data + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	data[len] = 0;
	*ret = TAKE_PTR(data);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int dir_is_empty_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return -errno;
	}
	int r = 1;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
			r = 0;
			break;
		}
	closedir(d);
	return r;
}

static int rm_rf_children(int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int q = rm_rf_at(dirfd(d), de->d_name);
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	return r;
}

int rm_rf_at(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* A directory we cannot enter because it is mode 0: make it ours. */
		if (errno == EACCES && fchmodat(dirfd, name, 0700, 0) == 0)
			fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	(void)fchmod(fd, 0700);
	int r = rm_rf_children(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

static int openat2_supported = -1;

static int open_in_root_fallback(int rootfd, const char *path, int flags, mode_t mode)
{
	/* Walk one component at a time with O_NOFOLLOW; ".." is refused, symlinks
	 * in the middle are refused (openat with O_NOFOLLOW|O_DIRECTORY fails). */
	_cleanup_free_ char *copy = xstrdup(path);
	_cleanup_close_ int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return -errno;
	char *save = NULL, *comp = strtok_r(copy, "/", &save);
	if (!comp)
		return TAKE_FD(cur);
	for (;;) {
		char *next = strtok_r(NULL, "/", &save);
		if (streq(comp, ".."))
			return -EXDEV;
		if (!next) {
			int fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			if (fd < 0)
				return -errno;
			return fd;
		}
		if (!streq(comp, ".")) {
			int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			safe_close(cur);
			cur = fd;
		}
		comp = next;
	}
}

int open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	if (openat2_supported != 0) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_CLOEXEC),
			.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd >= 0) {
			openat2_supported = 1;
			return (int)fd;
		}
		if (errno != ENOSYS)
			return -errno;
		openat2_supported = 0;
	}
	return open_in_root_fallback(rootfd, path, flags, mode);
}

int open_parent_in_root(int rootfd, const char *path, const char **ret_base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*ret_base = path;
		int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? -errno : fd;
	}
	_cleanup_free_ char *dir = xstrndup(path, (size_t)(slash - path));
	int fd = open_in_root(rootfd, *dir ? dir : ".", O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	*ret_base = slash + 1;
	return fd;
}

int64_t now_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t now_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

void xattrs_free(struct xattr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

int fs_read_xattrs(int fd, struct xattr **ret, size_t *ret_n)
{
	char small[1024];
	char *big = NULL, *names = small;
	ssize_t n = flistxattr(fd, small, sizeof(small));
	if (n < 0 && errno == ERANGE) {
		n = flistxattr(fd, NULL, 0);
		if (n < 0)
			return -errno;
		big = xmalloc((size_t)n + 1);
		names = big;
		n = flistxattr(fd, big, (size_t)n);
	}
	if (n < 0) {
		int e = errno;
		free(big);
		*ret = NULL;
		*ret_n = 0;
		return (e == ENOTSUP || e == EOPNOTSUPP) ? 0 : -e;
	}
	struct xattr *v = NULL;
	size_t count = 0;
	int r = 0;
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		if (!*p || streq(p, "security.selinux"))
			continue;
		ssize_t vl = fgetxattr(fd, p, NULL, 0);
		if (vl < 0) {
			r = -errno;
			break;
		}
		uint8_t *val = xmalloc((size_t)vl + 1);
		vl = fgetxattr(fd, p, val, (size_t)vl);
		if (vl < 0) {
			r = -errno;
			free(val);
			break;
		}
		v = xreallocarray(v, count + 1, sizeof(*v));
		v[count++] = (struct xattr){xstrdup(p), val, (size_t)vl};
	}
	free(big);
	if (r < 0) {
		xattrs_free(v, count);
		return r;
	}
	if (count > 1)
		qsort(v, count, sizeof(*v), xattr_cmp);
	*ret = v;
	*ret_n = count;
	return 0;
}
