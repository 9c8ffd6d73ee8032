/* libFuzzer target for the tar importer (image_tar_from_memory): every input
 * is imported into a staging transaction that is always aborted, which must
 * leave no file in the store and no descriptor open; an accepted archive must
 * give a valid tree whose canonical encoding round-trips. A custom mutator
 * repairs header checksums so mutations reach past libarchive. */
#include "../../src/base/fs.h"
#include "../../src/image/image.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>

static struct store *store;
static char store_dir[4096];
static int fd_baseline = -1, fd_watermark = -1;
/* inotify on objects/ and its shards: files created minus files removed. */
static int watch_fd = -1;
static long live_files;
static bool watch_overflowed;

static void remove_store(void)
{
	store = store_close(store);
	if (store_dir[0])
		(void)rm_rf_at(AT_FDCWD, store_dir);
}

/* The lowest free descriptor: it moves up when an input leaks one. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

/* A descriptor leaked by the importer points into the store. Others may be
 * opened by the fuzzing runtime itself (the symbolizer's pipes, when it prints
 * a new function), so those only raise the watermark, up to a bound. */
static void check_descriptors(void)
{
	int fd = lowest_free_fd();
	if (fd == fd_watermark)
		return;
	bool ours = fd < fd_watermark;
	for (int i = fd_watermark; i < fd; i++) {
		char proc[64], target[4096];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", i);
		ssize_t n = readlink(proc, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (startswith(target, store_dir)) {
			fprintf(stderr, "fuzz_tar: descriptor %d leaked: %s\n", i, target);
			ours = true;
		}
	}
	if (fd < fd_watermark)
		fprintf(stderr, "fuzz_tar: descriptor %d was closed by someone who did not own it\n",
			fd);
	if (ours)
		abort();
	fd_watermark = fd;
	if (fd_watermark > fd_baseline + 64) {
		fprintf(stderr, "fuzz_tar: descriptors keep leaking (lowest free: %d)\n", fd);
		abort();
	}
}

/* Watch objects/ and its shards, where the store stages new objects. The
 * store makes its shards on first use: make them all here, so each can be
 * watched (an unwatched new shard would be a creation in objects/, caught). */
static void watch_objects(void)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
	char path[sizeof(store_dir) + 16];
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/objects/%02x", store_dir, (unsigned)i);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			abort();
	}
	watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch_fd < 0)
		abort();
	for (int i = -1; i < 256; i++) {
		if (i < 0)
			snprintf(path, sizeof(path), "%s/objects", store_dir);
		else
			snprintf(path, sizeof(path), "%s/objects/%02x", store_dir, (unsigned)i);
		if (inotify_add_watch(watch_fd, path, mask) < 0) {
			fprintf(stderr, "fuzz_tar: cannot watch %s: %s\n", path, strerror(errno));
			abort();
		}
	}
}

static void drain_watch(void)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(watch_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			abort();
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				watch_overflowed = true;
			if (ev->mask & (IN_CREATE | IN_MOVED_TO))
				live_files++;
			if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
				live_files--;
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* Name what is left in objects/ (the slow way, only once something is). */
static size_t list_objects(void)
{
	char path[sizeof(store_dir) + 16];
	size_t found = 0;
	for (int i = -1; i < 256; i++) {
		if (i < 0)
			snprintf(path, sizeof(path), "%s/objects", store_dir);
		else
			snprintf(path, sizeof(path), "%s/objects/%02x", store_dir, (unsigned)i);
		DIR *d = opendir(path);
		if (!d)
			abort();
		struct dirent *de;
		while ((de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			if (i < 0 && strlen(de->d_name) == 2)
				continue; /* a shard */
			fprintf(stderr, "  left in the store: %s/%s\n", path, de->d_name);
			found++;
		}
		closedir(d);
	}
	return found;
}

/* Nothing may stay behind an aborted transaction: no staging file in the
 * shards (the importer never commits here) and nothing in tmp/. */
static void check_store_clean(void)
{
	drain_watch();
	if (live_files != 0 || watch_overflowed) {
		bool overflowed = watch_overflowed;
		watch_overflowed = false;
		live_files = 0;
		if (list_objects() > 0 || !overflowed) {
			fprintf(stderr, "fuzz_tar: the aborted transaction left files in objects/\n");
			abort();
		}
	}
	if (dir_is_empty_at(store_root_fd(store), "tmp") != 1) {
		fprintf(stderr, "fuzz_tar: the aborted transaction left files in tmp/\n");
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	int n = snprintf(store_dir, sizeof(store_dir), "%s/fuzz-tar-store.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof(store_dir) || !mkdtemp(store_dir)) {
		fprintf(stderr, "fuzz_tar: cannot create a store under %s\n", tmp);
		abort();
	}
	char *real = realpath(store_dir, NULL);
	if (!real || strlen(real) >= sizeof(store_dir))
		abort();
	memcpy(store_dir, real, strlen(real) + 1);
	free(real);
	struct cairn_error err = {0};
	if (store_open(store_dir, true, &store, &err) < 0) {
		fprintf(stderr, "fuzz_tar: %s\n", error_message(&err));
		abort();
	}
	atexit(remove_store);
	watch_objects();
	fd_baseline = fd_watermark = lowest_free_fd();
	return 0;
}

static void check_round_trip(const struct tree *t)
{
	struct cairn_error err = {0};
	if (tree_validate(t, &err) < 0) {
		fprintf(stderr, "fuzz_tar: imported tree is invalid: %s\n", error_message(&err));
		abort();
	}
	char *enc;
	size_t len;
	tree_encode(t, &enc, &len);
	struct tree back = {0};
	if (tree_decode(enc, len, &back, &err) < 0) {
		fprintf(stderr, "fuzz_tar: encoded tree does not decode: %s\n%.*s\n",
			error_message(&err), (int)(len > 4000 ? 4000 : len), enc);
		abort();
	}
	char *enc2;
	size_t len2;
	tree_encode(&back, &enc2, &len2);
	if (len2 != len || memcmp(enc, enc2, len) != 0) {
		fprintf(stderr, "fuzz_tar: tree encoding does not round-trip\n%.*s\n%.*s\n",
			(int)(len > 4000 ? 4000 : len), enc, (int)(len2 > 4000 ? 4000 : len2),
			enc2);
		abort();
	}
	free(enc);
	free(enc2);
	tree_free(&back);
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Recompute the checksum of every 512-byte block that carries the ustar magic
 * (both ustar and GNU headers do), as tar writes it: six octal digits, NUL,
 * space, over the header with the checksum field read as spaces. */
static void fix_checksums(uint8_t *data, size_t size)
{
	for (size_t off = 0; off + 512 <= size; off += 512) {
		uint8_t *h = data + off;
		if (memcmp(h + 257, "ustar", 5) != 0)
			continue;
		unsigned sum = 0;
		for (size_t i = 0; i < 512; i++)
			sum += i >= 148 && i < 156 ? ' ' : h[i];
		char field[9];
		snprintf(field, sizeof(field), "%06o", sum & 0777777);
		memcpy(h + 148, field, 6);
		h[154] = 0;
		h[155] = ' ';
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	/* Leave one in eight broken, so bad checksums stay covered too. */
	if (seed % 8)
		fix_checksums(data, size);
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct import_limits lim = {
		.max_bytes = 3u << 20, /* past one store writer buffer (1 MiB) */
		.max_entries = 1000,
		.max_depth = 32,
	};
	struct cairn_error err = {0};
	struct store_txn *txn;
	if (store_txn_begin(store, &txn, &err) < 0) {
		fprintf(stderr, "fuzz_tar: %s\n", error_message(&err));
		abort();
	}
	struct tree t = {0};
	uint64_t skipped = 0;
	int r = image_tar_from_memory(txn, data, size, &lim, &t, &skipped, &err);
	if (r == 0) {
		check_round_trip(&t);
		tree_free(&t);
	} else if (r > 0 || !err.msg) {
		fprintf(stderr, "fuzz_tar: failure %d without an error message\n", r);
		abort();
	}
	error_clear(&err);
	store_txn_abort(txn);

	check_store_clean();
	check_descriptors();
	return 0;
}
