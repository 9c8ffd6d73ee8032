/* Unit tests of src/state: schema creation in WAL mode, images, tags with
 * history, id prefixes, gc roots, and rollback leaving nothing behind. */
#include "unit.h"

#include "../../src/state/state.h"

#include <sqlite3.h>

static void fake_image(struct state_image *im, const char *seed)
{
	struct digest d;
	digest_buffer(seed, strlen(seed), &d);
	*im = (struct state_image){.created_ns = 1, .size = 10, .entries = 2,
				   .source = (char *)"test"};
	digest_to_string(&d, im->id);
	digest_to_string(&d, im->tree);
}

static void test_open_wal(void **state)
{
	char *dir = scratch_new();
	struct state *st;
	struct cairn_error err = {0};
	assert_int_equal(state_open(dir, &st, &err), 0);
	state_close(st);
	assert_int_equal(state_open(dir, &st, &err), 0); /* reopen: schema exists */
	state_close(st);
	char *db = xasprintf("%s/cairn.db", dir);
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(raw);
	free(db);
	scratch_free(dir);
}

static void test_tags_and_history(void **state)
{
	char *dir = scratch_new();
	struct state *st;
	struct cairn_error err = {0};
	assert_int_equal(state_open(dir, &st, &err), 0);
	struct state_image a, b;
	fake_image(&a, "a");
	fake_image(&b, "b");
	assert_int_equal(state_image_add(st, &a, &err), 0);
	assert_int_equal(state_image_add(st, &b, &err), 0);
	assert_int_equal(state_image_add(st, &a, &err), 0); /* again: kept once */
	struct state_image *list;
	size_t n;
	assert_int_equal(state_image_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	state_images_free(list, n);

	assert_int_equal(state_tag_set(st, "app", "latest", a.id, "import", &err), 0);
	assert_int_equal(state_tag_set(st, "app", "latest", a.id, "import", &err), 0); /* no-op */
	assert_int_equal(state_tag_set(st, "app", "latest", b.id, "tag", &err), 0);
	char id[DIGEST_STR_LEN];
	assert_int_equal(state_tag_get(st, "app", "latest", id, &err), 0);
	assert_string_equal(id, b.id);
	assert_int_equal(state_tag_remove(st, "app", "latest", &err), 0);
	assert_int_equal(state_tag_get(st, "app", "latest", id, &err), -ENOENT);

	struct state_tag_event *h;
	assert_int_equal(state_tag_history(st, "app", NULL, &h, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].id, a.id);
	assert_string_equal(h[0].previous, "");
	assert_string_equal(h[1].id, b.id);
	assert_string_equal(h[1].previous, a.id);
	assert_string_equal(h[1].why, "tag");
	assert_string_equal(h[2].id, "");
	assert_string_equal(h[2].previous, b.id);
	state_tag_events_free(h, n);
	state_close(st);
	scratch_free(dir);
}

static void test_prefix_and_roots(void **state)
{
	char *dir = scratch_new();
	struct state *st;
	struct cairn_error err = {0};
	assert_int_equal(state_open(dir, &st, &err), 0);
	struct state_image a, b;
	fake_image(&a, "a");
	fake_image(&b, "b");
	assert_int_equal(state_image_add(st, &a, &err), 0);
	assert_int_equal(state_image_add(st, &b, &err), 0);
	char id[DIGEST_STR_LEN];
	char prefix[13];
	memcpy(prefix, a.id + 7, 12);
	prefix[12] = 0;
	assert_int_equal(state_image_find_prefix(st, prefix, id, &err), 0);
	assert_string_equal(id, a.id);
	assert_int_equal(state_image_find_prefix(st, "", id, &err), -ENOTUNIQ);
	error_clear(&err);
	assert_int_equal(state_image_find_prefix(st, "ffffffffffff", id, &err), -ENOENT);

	assert_int_equal(state_tag_set(st, "x", "1", a.id, "import", &err), 0);
	char **roots;
	size_t n;
	assert_int_equal(state_gc_roots(st, &roots, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(roots[0], a.id);
	strv_free_n(roots, n);
	uint64_t forgotten;
	assert_int_equal(state_forget_unreferenced(st, &forgotten, &err), 0);
	assert_int_equal(forgotten, 1);
	struct state_image got;
	assert_int_equal(state_image_get(st, b.id, &got, &err), -ENOENT);

	/* removing an image removes its tags */
	assert_int_equal(state_image_remove(st, a.id, &err), 0);
	assert_int_equal(state_tag_get(st, "x", "1", id, &err), -ENOENT);
	state_close(st);
	scratch_free(dir);
}

static void test_rollback(void **state)
{
	char *dir = scratch_new();
	struct state *st;
	struct cairn_error err = {0};
	assert_int_equal(state_open(dir, &st, &err), 0);
	struct state_image a;
	fake_image(&a, "a");
	assert_int_equal(state_begin(st, &err), 0);
	assert_int_equal(state_image_add(st, &a, &err), 0);
	assert_int_equal(state_tag_set(st, "x", "1", a.id, "import", &err), 0);
	state_rollback(st);
	struct state_image got;
	assert_int_equal(state_image_get(st, a.id, &got, &err), -ENOENT);
	struct state_tag_event *h;
	size_t n;
	assert_int_equal(state_tag_history(st, "x", NULL, &h, &n, &err), 0);
	assert_int_equal(n, 0);
	state_tag_events_free(h, n);
	state_close(st);
	scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_wal),
		cmocka_unit_test(test_tags_and_history),
		cmocka_unit_test(test_prefix_and_roots),
		cmocka_unit_test(test_rollback),
	};
	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
