/* Unit tests of src/base: digests, buffers and JSON escaping, UTF-8 checks,
 * errors, atomic writes, and resolution inside a root. */
#include "unit.h"

#include "../../src/base/buf.h"
#include "../../src/base/error.h"
#include "../../src/base/hash.h"

#include <sys/stat.h>

static void test_sha256_vectors(void **state)
{
	struct digest d;
	char hex[DIGEST_HEX_LEN + 1];
	digest_buffer("abc", 3, &d);
	digest_to_hex(&d, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest_buffer("", 0, &d);
	digest_to_hex(&d, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* streaming gives the same as one shot */
	struct hasher *h = hasher_new();
	hasher_update(h, "a", 1);
	hasher_update(h, "bc", 2);
	struct digest d2;
	hasher_final(h, &d2);
	hasher_free(h);
	digest_buffer("abc", 3, &d);
	assert_true(digest_eq(&d, &d2));
}

static void test_digest_strings(void **state)
{
	struct digest d, back;
	char s[DIGEST_STR_LEN];
	digest_buffer("x", 1, &d);
	digest_to_string(&d, s);
	assert_true(startswith(s, "sha256:"));
	assert_int_equal(digest_from_string(s, &back), 0);
	assert_true(digest_eq(&d, &back));
	assert_int_equal(digest_from_string(s + 7, &back), -EINVAL);		 /* no prefix */
	assert_int_equal(digest_from_hex("abc", &back), -EINVAL);		 /* short */
	s[10] = 'g';
	assert_int_equal(digest_from_string(s, &back), -EINVAL);		 /* not hex */
	char longer[DIGEST_STR_LEN + 2];
	digest_to_string(&d, longer);
	strncat(longer, "0", 2);
	assert_int_equal(digest_from_string(longer, &back), -EINVAL); /* too long */
}

static void test_json_string(void **state)
{
	struct buf b = {0};
	const char in[] = "a\"b\\c\n\t\x01/é";
	buf_put_json_string(&b, in, sizeof(in) - 1);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001/é\"");
	buf_free(&b);
	buf_put_u64(&b, 0);
	buf_putc(&b, ' ');
	buf_put_u64(&b, UINT64_MAX);
	assert_string_equal(b.data, "0 18446744073709551615");
	buf_free(&b);
}

static void test_utf8(void **state)
{
	assert_true(utf8_valid("plain", 5));
	assert_true(utf8_valid("\xc3\xa9", 2));		/* é */
	assert_true(utf8_valid("\xf0\x9f\x98\x80", 4)); /* emoji */
	assert_false(utf8_valid("\xc3", 1));		/* truncated */
	assert_false(utf8_valid("\xc0\xaf", 2));	/* overlong '/' */
	assert_false(utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(utf8_valid("\xff", 1));
	assert_false(utf8_valid("a\0b", 3));
}

static void test_hex(void **state)
{
	uint8_t *out;
	size_t n;
	char *h = hex_encode("\x00\xff\x10", 3);
	assert_string_equal(h, "00ff10");
	assert_int_equal(hex_decode(h, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\x00\xff\x10", 3);
	free(out);
	free(h);
	assert_int_equal(hex_decode("abc", &out, &n), -EINVAL);
	assert_int_equal(hex_decode("zz", &out, &n), -EINVAL);
}

static void test_error_wrap(void **state)
{
	struct cairn_error err = {0};
	assert_int_equal(error_set(&err, ENOENT, "file %s", "x"), -ENOENT);
	assert_int_equal(error_wrap(&err, "importing %s", "y.tar"), -ENOENT);
	assert_string_equal(error_message(&err), "importing y.tar: file x");
	assert_int_equal(err.code, ENOENT);
	error_clear(&err);
	assert_null(err.msg);
	assert_int_equal(error_set(NULL, EINVAL, "ignored"), -EINVAL);
}

static void test_atomic_write(void **state)
{
	char *dir = scratch_new();
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(write_file_atomic_at(fd, "f", "one", 3, 0640, true), 0);
	assert_int_equal(write_file_atomic_at(fd, "f", "second", 6, 0600, true), 0);
	char *data;
	size_t len;
	assert_int_equal(read_file_at(fd, "f", &data, &len, 100), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "second");
	free(data);
	struct stat st;
	assert_int_equal(fstatat(fd, "f", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(read_file_at(fd, "f", &data, &len, 3), -EFBIG);
	assert_int_equal(dir_is_empty_at(AT_FDCWD, dir), 0);
	close(fd);
	scratch_free(dir);
}

/* A symlink inside a root that points at /etc resolves inside the root. */
static void test_open_in_root(void **state)
{
	char *dir = scratch_new();
	int root = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(mkdirat(root, "etc", 0755), 0);
	int f = openat(root, "etc/passwd", O_WRONLY | O_CREAT, 0644);
	assert_true(f >= 0);
	assert_int_equal(write(f, "inside\n", 7), 7);
	close(f);
	assert_int_equal(symlinkat("/etc", root, "l"), 0);
	assert_int_equal(symlinkat("../../../../etc/passwd", root, "up"), 0);
	char buf[64] = {0};
	int fd = open_in_root(root, "l/passwd", O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	assert_string_equal(buf, "inside\n");
	close(fd);
	fd = open_in_root(root, "up", O_RDONLY, 0);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	assert_string_equal(buf, "inside\n");
	close(fd);
	const char *base;
	fd = open_parent_in_root(root, "l/passwd", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "passwd");
	close(fd);
	close(root);
	scratch_free(dir);
}

static void test_rm_rf(void **state)
{
	char *dir = scratch_new();
	int root = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(mkdir_p_at(root, "a/b/c", 0755), 0);
	assert_int_equal(fchmodat(root, "a/b", 0, 0), 0);
	assert_int_equal(symlinkat("/etc", root, "a/l"), 0);
	assert_int_equal(rm_rf_at(root, "a"), 0);
	assert_int_equal(faccessat(root, "a", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(access("/etc/passwd", F_OK), 0); /* the symlink was not followed */
	assert_int_equal(rm_rf_at(root, "missing"), 0);
	close(root);
	scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_digest_strings),
		cmocka_unit_test(test_json_string),    cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_hex),	       cmocka_unit_test(test_error_wrap),
		cmocka_unit_test(test_atomic_write),   cmocka_unit_test(test_open_in_root),
		cmocka_unit_test(test_rm_rf),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
