/* Unit tests of src/store: transactions, corruption detection, fsck, gc,
 * digest sets, trees (canonical encoding, validation) and checkouts. */
#include "unit.h"

#include "../../src/store/store.h"
#include "../../src/store/tree.h"

#include <dirent.h>
#include <sys/stat.h>

static struct store *open_store(char **ret_dir)
{
	char *dir = scratch_new();
	char *root = xasprintf("%s/root", dir);
	struct store *s = NULL;
	struct cairn_error err = {0};
	assert_int_equal(store_open(root, true, &s, &err), 0);
	free(root);
	*ret_dir = dir;
	return s;
}

/* Entries of a directory, dot files included. */
static int count_dir_all(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
	closedir(d);
	return n;
}

static void test_txn_commit_and_abort(void **state)
{
	char *dir;
	struct store *s = open_store(&dir);
	struct cairn_error err = {0};
	struct store_txn *t;
	struct digest a, b;
	assert_int_equal(store_txn_begin(s, &t, &err), 0);
	assert_int_equal(store_txn_put(t, "hello", 5, &a), 0);
	assert_false(store_has_object(s, &a)); /* staged, not visible */
	assert_int_equal(store_txn_commit(t, &err), 0);
	assert_true(store_has_object(s, &a));
	char *data;
	size_t len;
	assert_int_equal(store_read_object(s, &a, &data, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	free(data);

	assert_int_equal(store_txn_begin(s, &t, &err), 0);
	assert_int_equal(store_txn_put(t, "discarded", 9, &b), 0);
	store_txn_abort(t);
	assert_false(store_has_object(s, &b));
	/* the abort left no staging file in any shard: objects/ holds exactly
	 * the one committed object */
	int files = 0;
	for (unsigned i = 0; i < 256; i++) {
		char *shard = xasprintf("%s/root/objects/%02x", dir, i);
		if (access(shard, F_OK) == 0)
			files += count_dir_all(shard);
		free(shard);
	}
	assert_int_equal(files, 1);
	store_close(s);
	scratch_free(dir);
}

static void test_writer_large_and_dedup(void **state)
{
	char *dir;
	struct store *s = open_store(&dir);
	struct cairn_error err = {0};
	struct store_txn *t;
	assert_int_equal(store_txn_begin(s, &t, &err), 0);
	struct store_writer *w;
	assert_int_equal(store_writer_new(t, &w), 0);
	char block[4096];
	memset(block, 'z', sizeof(block));
	for (int i = 0; i < 512; i++)
		assert_int_equal(store_writer_write(w, block, sizeof(block)), 0);
	struct digest d;
	uint64_t size;
	assert_int_equal(store_writer_finish(w, &d, &size), 0);
	assert_int_equal(size, 512 * 4096);
	/* the same content again is staged once */
	struct digest d2;
	char *all = xmalloc(512 * 4096);
	memset(all, 'z', 512 * 4096);
	assert_int_equal(store_txn_put(t, all, 512 * 4096, &d2), 0);
	assert_true(digest_eq(&d, &d2));
	free(all);
	assert_int_equal(store_txn_commit(t, &err), 0);
	int fd = store_open_object(s, &d);
	assert_true(fd >= 0);
	struct digest check;
	assert_int_equal(digest_fd(fd, &check, &size), 0);
	close(fd);
	assert_true(digest_eq(&d, &check));
	store_close(s);
	scratch_free(dir);
}

static void flip_byte(struct store *s, const struct digest *d)
{
	char rel[DIGEST_HEX_LEN + 2];
	store_object_relpath(d, rel);
	char *path = xasprintf("%s/objects/%s", store_root(s), rel);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	char c;
	assert_int_equal(pread(fd, &c, 1, 0), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, 0), 1);
	close(fd);
	free(path);
}

static void test_corruption_detected(void **state)
{
	char *dir;
	struct store *s = open_store(&dir);
	struct cairn_error err = {0};
	struct store_txn *t;
	struct digest good, bad;
	assert_int_equal(store_txn_begin(s, &t, &err), 0);
	assert_int_equal(store_txn_put(t, "good object", 11, &good), 0);
	assert_int_equal(store_txn_put(t, "bad object", 10, &bad), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	flip_byte(s, &bad);
	char *data;
	size_t len;
	assert_int_equal(store_read_object(s, &bad, &data, &len, &err), -EBADMSG);
	assert_non_null(strstr(error_message(&err), "corrupt"));
	error_clear(&err);
	/* a changed mode on the good object is metadata damage, not corruption */
	char rel[DIGEST_HEX_LEN + 2];
	store_object_relpath(&good, rel);
	char *gpath = xasprintf("%s/objects/%s", store_root(s), rel);
	assert_int_equal(chmod(gpath, 04755), 0);
	struct store_fsck_result fr;
	assert_int_equal(store_fsck(s, 2, false, &fr, &err), 0);
	assert_int_equal(fr.n_objects, 2);
	assert_int_equal(fr.n_corrupt, 1);
	assert_true(digest_eq(&fr.corrupt[0], &bad));
	assert_int_equal(fr.n_changed_meta, 1);
	assert_string_equal(fr.changed_meta[0], rel);
	store_fsck_result_free(&fr);
	/* repair: the corrupt object goes (a re-import writes it again), the
	 * mode is reset, the stat caches are invalidated */
	uint64_t gen = store_gc_generation(s);
	assert_int_equal(store_fsck(s, 1, true, &fr, &err), 0);
	assert_int_equal(fr.repaired, 2);
	store_fsck_result_free(&fr);
	assert_false(store_has_object(s, &bad));
	struct stat st;
	assert_int_equal(stat(gpath, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(store_gc_generation(s), gen + 1);
	assert_int_equal(store_fsck(s, 2, false, &fr, &err), 0);
	assert_int_equal(fr.n_corrupt + fr.n_changed_meta + fr.n_bad_copies, 0);
	store_fsck_result_free(&fr);
	free(gpath);
	store_close(s);
	scratch_free(dir);
}

static void test_gc(void **state)
{
	char *dir;
	struct store *s = open_store(&dir);
	struct cairn_error err = {0};
	struct store_txn *t;
	struct digest keep_d, drop_d;
	assert_int_equal(store_txn_begin(s, &t, &err), 0);
	assert_int_equal(store_txn_put(t, "keep me", 7, &keep_d), 0);
	assert_int_equal(store_txn_put(t, "drop me!", 8, &drop_d), 0);
	assert_int_equal(store_txn_commit(t, &err), 0);
	struct digest_set *keep = digest_set_new();
	digest_set_add(keep, &keep_d);
	uint64_t gen = store_gc_generation(s);
	struct store_gc_result res;
	assert_int_equal(store_lock(s, true, &err), 0);
	assert_int_equal(store_gc(s, keep, true, &res, &err), 0);
	assert_int_equal(res.objects_removed, 1);
	assert_int_equal(res.bytes_removed, 8);
	assert_true(store_has_object(s, &drop_d)); /* dry run */
	assert_int_equal(store_gc_generation(s), gen);
	assert_int_equal(store_gc(s, keep, false, &res, &err), 0);
	assert_int_equal(res.objects_removed, 1);
	assert_int_equal(res.objects_kept, 1);
	assert_false(store_has_object(s, &drop_d));
	assert_true(store_has_object(s, &keep_d));
	assert_int_equal(store_gc_generation(s), gen + 1);
	digest_set_free(keep);
	store_close(s);
	scratch_free(dir);
}

static void test_digest_set(void **state)
{
	struct digest_set *set = digest_set_new();
	struct digest d;
	for (int i = 0; i < 5000; i++) {
		digest_buffer(&i, sizeof(i), &d);
		assert_true(digest_set_add(set, &d));
	}
	for (int i = 0; i < 5000; i++) {
		digest_buffer(&i, sizeof(i), &d);
		assert_true(digest_set_contains(set, &d));
		assert_false(digest_set_add(set, &d));
	}
	int other = 99999;
	digest_buffer(&other, sizeof(other), &d);
	assert_false(digest_set_contains(set, &d));
	assert_int_equal(digest_set_size(set), 5000);
	digest_set_free(set);
}

static struct tree_entry *add(struct tree *t, const char *path, enum entry_type type,
			      uint32_t mode)
{
	struct tree_entry *e = tree_add(t);
	e->path = xstrdup(path);
	e->type = type;
	e->mode = mode;
	if (type == ENTRY_FILE) {
		digest_buffer(path, strlen(path), &e->digest);
		e->size = strlen(path);
	}
	return e;
}

static void test_tree_paths(void **state)
{
	assert_null(tree_path_problem("."));
	assert_null(tree_path_problem("a/b.c/d"));
	assert_null(tree_path_problem("..a/b.."));
	assert_non_null(tree_path_problem(""));
	assert_non_null(tree_path_problem("/abs"));
	assert_non_null(tree_path_problem("a/../b"));
	assert_non_null(tree_path_problem(".."));
	assert_non_null(tree_path_problem("a//b"));
	assert_non_null(tree_path_problem("a/"));
	assert_non_null(tree_path_problem("./a"));
}

static void test_tree_encode_canonical(void **state)
{
	struct tree t = {0};
	add(&t, "z", ENTRY_FILE, 0644);
	add(&t, ".", ENTRY_DIR, 0755);
	struct tree_entry *l = add(&t, "a", ENTRY_SYMLINK, 0777);
	l->target = xstrdup("/etc");
	struct tree_entry *x = add(&t, "b", ENTRY_DIR, 01777);
	x->n_xattrs = 1;
	x->xattrs = xcalloc(1, sizeof(*x->xattrs));
	x->xattrs[0].name = xstrdup("user.k");
	x->xattrs[0].value = (uint8_t *)xstrdup("\x01v");
	x->xattrs[0].len = 2;
	struct tree_entry *bad = add(&t, "n\xff", ENTRY_FILE, 0600); /* not UTF-8 */
	bad->uid = 7;
	tree_sort(&t);
	struct cairn_error err = {0};
	assert_int_equal(tree_validate(&t, &err), 0);
	char *enc;
	size_t len;
	tree_encode(&t, &enc, &len);
	assert_non_null(strstr(enc, "\"path_hex\":\"6eff\""));
	assert_non_null(strstr(enc, "\"xattrs\":{\"user.k\":\"0176\"}"));
	assert_true(startswith(enc, "{\"entries\":[{\"gid\":0,\"mode\":493,\"path\":\".\""));
	struct tree back = {0};
	assert_int_equal(tree_decode(enc, len, &back, &err), 0);
	char *enc2;
	size_t len2;
	tree_encode(&back, &enc2, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(enc, enc2, len);
	assert_string_equal(tree_find(&back, "n\xff")->path, "n\xff");
	free(enc);
	free(enc2);
	tree_free(&t);
	tree_free(&back);
}

static void test_tree_validate_refuses(void **state)
{
	struct cairn_error err = {0};
	struct tree t = {0};
	add(&t, ".", ENTRY_DIR, 0755);
	struct tree_entry *l = add(&t, "l", ENTRY_SYMLINK, 0777);
	l->target = xstrdup("/etc");
	add(&t, "l/passwd", ENTRY_FILE, 0644);
	tree_sort(&t);
	assert_int_equal(tree_validate(&t, &err), -EINVAL);
	assert_non_null(strstr(error_message(&err), "l/passwd"));
	assert_non_null(strstr(error_message(&err), "symlink"));
	error_clear(&err);
	tree_free(&t);

	add(&t, ".", ENTRY_DIR, 0755);
	add(&t, "a/b", ENTRY_FILE, 0644); /* parent missing */
	tree_sort(&t);
	assert_int_equal(tree_validate(&t, &err), -EINVAL);
	assert_non_null(strstr(error_message(&err), "parent"));
	error_clear(&err);
	tree_free(&t);

	add(&t, ".", ENTRY_DIR, 0755);
	struct tree_entry *h = add(&t, "h", ENTRY_FILE, 0644);
	h->link = xstrdup("missing");
	tree_sort(&t);
	assert_int_equal(tree_validate(&t, &err), -EINVAL);
	assert_non_null(strstr(error_message(&err), "hardlink"));
	error_clear(&err);
	tree_free(&t);

	/* decode refuses unknown keys and non-canonical hex paths */
	const char *unknown = "{\"entries\":[{\"gid\":0,\"mode\":493,\"path\":\".\",\"type\":"
			      "\"dir\",\"uid\":0,\"x\":1}],\"version\":1}";
	assert_int_equal(tree_decode(unknown, strlen(unknown), &t, &err), -EINVAL);
	error_clear(&err);
	const char *hexy = "{\"entries\":[{\"gid\":0,\"mode\":493,\"path_hex\":\"2e\",\"type\":"
			   "\"dir\",\"uid\":0}],\"version\":1}";
	assert_int_equal(tree_decode(hexy, strlen(hexy), &t, &err), -EINVAL);
	error_clear(&err);
}

static void test_checkout(void **state)
{
	char *dir;
	struct store *s = open_store(&dir);
	struct cairn_error err = {0};
	struct store_txn *txn;
	struct tree t = {0};
	assert_int_equal(store_txn_begin(s, &txn, &err), 0);
	add(&t, ".", ENTRY_DIR, 0755);
	add(&t, "ro", ENTRY_DIR, 0555);
	struct tree_entry *f = add(&t, "ro/plain", ENTRY_FILE, 0644);
	assert_int_equal(store_txn_put(txn, "data", 4, &f->digest), 0);
	f->size = 4;
	struct tree_entry *su = add(&t, "ro/suid", ENTRY_FILE, 04755);
	su->digest = f->digest;
	su->size = 4;
	su->uid = 1234;
	struct tree_entry *l = add(&t, "link", ENTRY_SYMLINK, 0777);
	l->target = xstrdup("ro/plain");
	assert_int_equal(store_txn_commit(txn, &err), 0);
	tree_sort(&t);
	assert_int_equal(tree_validate(&t, &err), 0);
	char *co = xasprintf("%s/co", dir);
	assert_int_equal(store_checkout(s, &t, co, false, &err), 0);
	struct stat st;
	char *p = xasprintf("%s/ro/suid", co);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 1234);
	free(p);
	p = xasprintf("%s/ro", co);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0555);
	free(p);
	p = xasprintf("%s/ro/plain", co);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(st.st_nlink >= 2); /* a hardlink into the store */
	free(p);
	/* a second checkout into an existing non-empty directory fails cleanly */
	assert_int_equal(store_checkout(s, &t, co, false, &err), -ENOTEMPTY);
	error_clear(&err);
	free(co);
	tree_free(&t);
	store_close(s);
	scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txn_commit_and_abort),
		cmocka_unit_test(test_writer_large_and_dedup),
		cmocka_unit_test(test_corruption_detected),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_digest_set),
		cmocka_unit_test(test_tree_paths),
		cmocka_unit_test(test_tree_encode_canonical),
		cmocka_unit_test(test_tree_validate_refuses),
		cmocka_unit_test(test_checkout),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
