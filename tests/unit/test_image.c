/* Unit tests of src/image: references, canonical manifests, the tar importer
 * (hostile entries, limits, hardlinks, sparse holes) and the equality of a
 * directory import with an import of a tar of it. */
#include "unit.h"

#include "../../src/image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

static void test_ref_parse(void **state)
{
	char *name, *tag;
	struct cairn_error err = {0};
	assert_int_equal(image_ref_parse("app", &name, &tag, &err), 0);
	assert_string_equal(name, "app");
	assert_string_equal(tag, "latest");
	free(name);
	free(tag);
	assert_int_equal(image_ref_parse("reg.example:5000/team/app-x:v1.2_3", &name, &tag, &err),
			 0);
	assert_string_equal(name, "reg.example:5000/team/app-x");
	assert_string_equal(tag, "v1.2_3");
	free(name);
	free(tag);
	static const char *const bad[] = {"",	  "UPPER:x", "app:",   ":tag", "app:bad tag!",
					  "a..b", "app:-x",  "/app",   "app/", "a@sha256:00"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(image_ref_parse(bad[i], &name, &tag, &err), -EINVAL);
		assert_non_null(err.msg);
		error_clear(&err);
	}
	/* a 250-character name is fine, with or without a tag */
	char long_name[251], long_ref[260];
	memset(long_name, 'a', 250);
	long_name[250] = 0;
	assert_int_equal(image_ref_parse(long_name, &name, &tag, &err), 0);
	snprintf(long_ref, sizeof(long_ref), "%s:%s", name, tag);
	free(name);
	free(tag);
	assert_int_equal(image_ref_parse(long_ref, &name, &tag, &err), 0);
	assert_string_equal(tag, "latest");
	free(name);
	free(tag);
	memset(long_ref, 'a', 256);
	long_ref[256] = 0;
	assert_int_equal(image_ref_parse(long_ref, &name, &tag, &err), -EINVAL);
	error_clear(&err);
	assert_true(image_ref_is_id("sha256:abcd"));
	assert_true(image_ref_is_id("0123abcd"));
	assert_false(image_ref_is_id("abc"));
	assert_false(image_ref_is_id("app"));
}

static void test_manifest_canonical(void **state)
{
	struct image_manifest m = {0};
	digest_buffer("tree", 4, &m.tree);
	m.config = json_pack("{s:[s], s:s}", "Env", "A=1", "Cmd", "x");
	char *a;
	size_t alen;
	image_manifest_encode(&m, &a, &alen);
	/* sorted keys, no whitespace */
	assert_true(startswith(a, "{\"config\":{\"Cmd\":\"x\",\"Env\":[\"A=1\"]},\"mediaType\":"));
	struct image_manifest back;
	struct cairn_error err = {0};
	assert_int_equal(image_manifest_decode(a, alen, &back, &err), 0);
	char *b;
	size_t blen;
	image_manifest_encode(&back, &b, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	const char *extra = "{\"config\":{},\"mediaType\":\"" IMAGE_MEDIA_TYPE
			    "\",\"tree\":\"sha256:00\",\"x\":1}";
	assert_int_equal(image_manifest_decode(extra, strlen(extra), &back, &err), -EINVAL);
	error_clear(&err);
	free(a);
	free(b);
	image_manifest_free(&m);
	image_manifest_free(&back);
}

/* --- building tars in memory --------------------------------------------- */

struct tarw {
	struct archive *a;
	char *buf;
	size_t cap, used;
};

static void tar_begin(struct tarw *w)
{
	w->cap = 8 << 20;
	w->buf = xmalloc(w->cap);
	w->a = archive_write_new();
	archive_write_set_format_pax_restricted(w->a);
	assert_int_equal(archive_write_open_memory(w->a, w->buf, w->cap, &w->used), ARCHIVE_OK);
}

static void tar_add(struct tarw *w, const char *path, mode_t type, mode_t perm,
		    const char *content, const char *link_target, bool hard)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_perm(e, perm);
	if (hard) {
		archive_entry_set_hardlink(e, link_target);
		archive_entry_set_filetype(e, AE_IFREG);
	} else {
		archive_entry_set_filetype(e, type);
		if (type == AE_IFLNK)
			archive_entry_set_symlink(e, link_target);
	}
	size_t n = content ? strlen(content) : 0;
	archive_entry_set_size(e, (la_int64_t)n);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	if (n)
		assert_int_equal(archive_write_data(w->a, content, n), (la_ssize_t)n);
	archive_entry_free(e);
}

static void tar_add_xattr(struct tarw *w, const char *path, const char *xname, size_t xlen)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, 0);
	char *v = xcalloc(1, xlen + 1);
	archive_entry_xattr_add_entry(e, xname, v, xlen);
	free(v);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	archive_entry_free(e);
}

static void tar_end(struct tarw *w)
{
	assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
	archive_write_free(w->a);
}

struct fixture {
	char *dir;
	struct store *store;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = scratch_new();
	char *root = xasprintf("%s/root", f->dir);
	struct cairn_error err = {0};
	if (store_open(root, true, &f->store, &err) < 0)
		return -1;
	free(root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->store);
	scratch_free(f->dir);
	free(f);
	return 0;
}

/* Import a tar from memory; returns the result and leaves err set on failure. */
static int import_mem(struct fixture *f, struct tarw *w, const struct import_limits *lim,
		      struct tree *ret, struct cairn_error *err)
{
	struct store_txn *txn;
	assert_int_equal(store_txn_begin(f->store, &txn, err), 0);
	int r = image_tar_from_memory(txn, w->buf, w->used, lim, ret, NULL, err);
	store_txn_abort(txn);
	free(w->buf);
	return r;
}

static void expect_refused(struct fixture *f, struct tarw *w, const char *needle)
{
	struct tree t = {0};
	struct cairn_error err = {0};
	assert_true(import_mem(f, w, NULL, &t, &err) < 0);
	if (!strstr(error_message(&err), needle))
		fail_msg("error \"%s\" does not mention \"%s\"", error_message(&err), needle);
	error_clear(&err);
}

static void test_tar_hostile(void **state)
{
	struct fixture *f = *state;
	struct tarw w;
	tar_begin(&w);
	tar_add(&w, "../x", AE_IFREG, 0644, "evil", NULL, false);
	tar_end(&w);
	expect_refused(f, &w, "../x");

	tar_begin(&w);
	tar_add(&w, "/abs", AE_IFREG, 0644, "evil", NULL, false);
	tar_end(&w);
	expect_refused(f, &w, "/abs");

	tar_begin(&w);
	tar_add(&w, "a/../../x", AE_IFREG, 0644, "evil", NULL, false);
	tar_end(&w);
	expect_refused(f, &w, "a/../../x");

	tar_begin(&w);
	tar_add(&w, "l", AE_IFLNK, 0777, NULL, "/etc", false);
	tar_add(&w, "l/passwd", AE_IFREG, 0644, "root::0:0::/:/bin/sh\n", NULL, false);
	tar_end(&w);
	expect_refused(f, &w, "l/passwd");

	tar_begin(&w);
	tar_add(&w, "h", AE_IFREG, 0644, NULL, "/etc/passwd", true);
	tar_end(&w);
	expect_refused(f, &w, "/etc/passwd");

	tar_begin(&w);
	tar_add(&w, "h", AE_IFREG, 0644, NULL, "../../x", true);
	tar_end(&w);
	expect_refused(f, &w, "../../x");

	tar_begin(&w);
	tar_add(&w, "d", AE_IFDIR, 0755, NULL, NULL, false);
	tar_add(&w, "h", AE_IFREG, 0644, NULL, "d", true); /* hardlink to a directory */
	tar_end(&w);
	expect_refused(f, &w, "not a regular file");
}

/* xattrs Linux could never set are refused at import, not at checkout */
static void test_tar_xattrs(void **state)
{
	struct fixture *f = *state;
	struct tarw w;
	tar_begin(&w);
	tar_add_xattr(&w, "f", "bogus", 1);
	tar_end(&w);
	expect_refused(f, &w, "invalid xattr name");

	tar_begin(&w);
	tar_add_xattr(&w, "f", "user.big", 70000);
	tar_end(&w);
	expect_refused(f, &w, "xattrs larger");

	tar_begin(&w);
	tar_add_xattr(&w, "f", "user.ok", 10);
	tar_end(&w);
	struct tree t = {0};
	struct cairn_error err = {0};
	if (import_mem(f, &w, NULL, &t, &err) != 0)
		fail_msg("import failed: %s", error_message(&err));
	const struct tree_entry *e = tree_find(&t, "f");
	assert_int_equal(e->n_xattrs, 1);
	assert_string_equal(e->xattrs[0].name, "user.ok");
	assert_int_equal(e->xattrs[0].len, 10);
	tree_free(&t);
}

static void test_tar_limits(void **state)
{
	struct fixture *f = *state;
	struct import_limits lim = {1000, 100, 8};
	struct tarw w;
	tar_begin(&w);
	char *big = xmalloc(2001);
	memset(big, 'a', 2000);
	big[2000] = 0;
	tar_add(&w, "big", AE_IFREG, 0644, big, NULL, false);
	free(big);
	tar_end(&w);
	struct tree t = {0};
	struct cairn_error err = {0};
	assert_int_equal(import_mem(f, &w, &lim, &t, &err), -EFBIG);
	assert_non_null(strstr(error_message(&err), "--max-bytes"));
	error_clear(&err);

	tar_begin(&w);
	tar_add(&w, "a/b/c/d/e/f/g/h/i/j", AE_IFREG, 0644, "x", NULL, false);
	tar_end(&w);
	assert_int_equal(import_mem(f, &w, &lim, &t, &err), -EFBIG);
	assert_non_null(strstr(error_message(&err), "--max-depth"));
	error_clear(&err);

	tar_begin(&w);
	for (int i = 0; i < 200; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		tar_add(&w, name, AE_IFREG, 0644, "x", NULL, false);
	}
	tar_end(&w);
	assert_int_equal(import_mem(f, &w, &lim, &t, &err), -EFBIG);
	assert_non_null(strstr(error_message(&err), "--max-entries"));
	error_clear(&err);

	/* garbage is not a tar, and says so */
	w.buf = xstrdup("this is not a tar archive at all, just some text");
	w.used = strlen(w.buf);
	assert_int_equal(import_mem(f, &w, NULL, &t, &err), -EINVAL);
	assert_non_null(strstr(error_message(&err), "tar"));
	error_clear(&err);
}

static void test_tar_tree(void **state)
{
	struct fixture *f = *state;
	struct tarw w;
	tar_begin(&w);
	tar_add(&w, "./", AE_IFDIR, 0700, NULL, NULL, false);
	tar_add(&w, "./b/c", AE_IFREG, 04755, "content", NULL, false); /* implied parent b */
	tar_add(&w, "./a", AE_IFREG, 0644, "content", NULL, false);
	tar_add(&w, "./z", AE_IFREG, 0644, NULL, "./b/c", true);
	tar_add(&w, "./s", AE_IFLNK, 0755, NULL, "b/c", false);
	tar_add(&w, "./a", AE_IFREG, 0600, "replaced", NULL, false); /* later entry wins */
	tar_end(&w);
	struct tree t = {0};
	struct cairn_error err = {0};
	assert_int_equal(import_mem(f, &w, NULL, &t, &err), 0);
	assert_int_equal(t.n, 6);
	assert_string_equal(t.entries[0].path, ".");
	assert_int_equal(t.entries[0].mode, 0700);
	const struct tree_entry *b = tree_find(&t, "b");
	assert_non_null(b);
	assert_int_equal(b->type, ENTRY_DIR);
	assert_int_equal(b->mode, 0755);
	const struct tree_entry *a = tree_find(&t, "a");
	assert_int_equal(a->mode, 0600);
	assert_int_equal(a->size, 8);
	/* hardlink group: "b/c" sorts before "z", so z names b/c */
	const struct tree_entry *z = tree_find(&t, "z");
	assert_non_null(z->link);
	assert_string_equal(z->link, "b/c");
	assert_null(tree_find(&t, "b/c")->link);
	assert_int_equal(tree_find(&t, "s")->mode, 0777); /* symlink modes are normalised */
	tree_free(&t);
}

static void make_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, name);
	write_text(p, text);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

/* The same tree from a directory and from a tar of it gives the same id, and
 * mtimes do not matter. */
static void test_dir_equals_tar(void **state)
{
	struct fixture *f = *state;
	char *src = xasprintf("%s/src", f->dir);
	assert_int_equal(mkdir(src, 0755), 0);
	char *sub = xasprintf("%s/sub", src);
	assert_int_equal(mkdir(sub, 0750), 0);
	make_file(src, "a", "alpha", 0644);
	make_file(src, "sub/x", "xx", 02755);
	char *l = xasprintf("%s/lnk", src), *h1 = xasprintf("%s/a", src),
	     *h2 = xasprintf("%s/sub/hard", src);
	assert_int_equal(symlink("sub/x", l), 0);
	assert_int_equal(link(h1, h2), 0);

	struct import_result r1 = {0}, r2 = {0}, r3 = {0};
	struct cairn_error err = {0};
	assert_int_equal(image_import(f->store, src, NULL, NULL, &r1, &err), 0);
	struct timespec ts[2] = {{1000, 0}, {1000, 0}};
	assert_int_equal(utimensat(AT_FDCWD, h1, ts, 0), 0);
	assert_int_equal(image_import(f->store, src, NULL, NULL, &r2, &err), 0);
	assert_true(digest_eq(&r1.id, &r2.id));

	struct tarw w;
	tar_begin(&w);
	tar_add(&w, ".", AE_IFDIR, 0755, NULL, NULL, false);
	tar_add(&w, "sub", AE_IFDIR, 0750, NULL, NULL, false);
	tar_add(&w, "sub/hard", AE_IFREG, 0644, "alpha", NULL, false);
	tar_add(&w, "a", AE_IFREG, 0644, NULL, "sub/hard", true);
	tar_add(&w, "sub/x", AE_IFREG, 02755, "xx", NULL, false);
	tar_add(&w, "lnk", AE_IFLNK, 0777, NULL, "sub/x", false);
	tar_end(&w);
	char *tarpath = xasprintf("%s/src.tar", f->dir);
	int fd = open(tarpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write(fd, w.buf, w.used), (ssize_t)w.used);
	close(fd);
	free(w.buf);
	assert_int_equal(image_import(f->store, tarpath, NULL, NULL, &r3, &err), 0);
	if (!digest_eq(&r1.id, &r3.id))
		fail_msg("directory and tar imports differ: %s", error_message(&err));
	assert_string_equal(r3.source_kind, "tar");
	assert_int_equal(r3.entries, 6);

	/* and a different mode is a different image */
	assert_int_equal(chmod(h1, 0600), 0);
	struct import_result r4 = {0};
	assert_int_equal(image_import(f->store, src, NULL, NULL, &r4, &err), 0);
	assert_false(digest_eq(&r1.id, &r4.id));

	import_result_free(&r1);
	import_result_free(&r2);
	import_result_free(&r3);
	import_result_free(&r4);
	free(tarpath);
	free(l);
	free(h1);
	free(h2);
	free(sub);
	free(src);
}

static void test_import_missing_source(void **state)
{
	struct fixture *f = *state;
	struct import_result r = {0};
	struct cairn_error err = {0};
	assert_int_equal(image_import(f->store, "/nonexistent/dir", NULL, NULL, &r, &err), -ENOENT);
	assert_non_null(strstr(error_message(&err), "/nonexistent/dir"));
	error_clear(&err);
	assert_int_equal(image_import(f->store, "/dev/null", NULL, NULL, &r, &err), -EINVAL);
	error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_parse),
		cmocka_unit_test(test_manifest_canonical),
		cmocka_unit_test_setup_teardown(test_tar_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_equals_tar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_missing_source, setup, teardown),
	};
	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
