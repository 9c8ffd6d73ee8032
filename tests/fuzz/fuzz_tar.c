/* libFuzzer target for the tar importer (image_tar_from_memory): every input
 * is imported into a staging transaction that is always aborted; an accepted
 * archive must give a valid tree whose canonical encoding round-trips. */
#include "../../src/base/fs.h"
#include "../../src/image/image.h"

#include <fcntl.h>
#include <stdio.h>

static struct store *store;
static char store_dir[4096];
static int fd_baseline = -1, fd_watermark = -1;

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
	fd_baseline = fd_watermark = lowest_free_fd();
	return 0;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct import_limits lim = {
		.max_bytes = 1u << 20,
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

	/* Aborting must leave nothing staged and no descriptor open. */
	if (dir_is_empty_at(store_root_fd(store), "tmp") != 1) {
		fprintf(stderr, "fuzz_tar: the aborted transaction left files in tmp/\n");
		abort();
	}
	check_descriptors();
	return 0;
}
