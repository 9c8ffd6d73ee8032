/* Unit tests of src/build/dockerfile.c: instructions, forms, flags,
 * continuations, comments, the escape directive, errors with line and
 * column, Docker's variable expansion and KEY=VALUE pairs. */
#include "unit.h"

#include "../../src/build/dockerfile.h"
#include "../../src/build/internal.h"

static struct dockerfile parse_ok(const char *text)
{
	struct dockerfile df = {0};
	struct cairn_error err = {0};
	if (dockerfile_parse("Dockerfile", text, strlen(text), &df, &err) < 0)
		fail_msg("parse failed: %s", error_message(&err));
	return df;
}

static void parse_fails(const char *text, const char *needle)
{
	struct dockerfile df = {0};
	struct cairn_error err = {0};
	assert_int_equal(dockerfile_parse("Dockerfile", text, strlen(text), &df, &err), -EINVAL);
	if (!strstr(error_message(&err), needle))
		fail_msg("error \"%s\" does not contain \"%s\"", error_message(&err), needle);
	error_clear(&err);
}

static void test_instructions(void **state)
{
	struct dockerfile df = parse_ok("# a comment\n"
					"ARG BASE=busybox:v1\n"
					"FROM $BASE AS build\n"
					"run echo one \\\n"
					"  # a comment inside\n"
					"    two\n"
					"COPY --from=build --chown=1:2 a b /dst/\n"
					"CMD [\"/bin/httpd\", \"-f\"]\n"
					"ENTRYPOINT /bin/sh -c 'x'\n"
					"HEALTHCHECK --interval=5s CMD wget -q localhost\n"
					"SHELL [\"/bin/sh\", \"-ec\"]\n"
					"RUN [ -f /x ] || true\n");
	assert_int_equal(df.n, 9);
	assert_int_equal(df.v[0].kind, DF_ARG);
	assert_int_equal(df.v[1].kind, DF_FROM);
	assert_int_equal(df.v[1].line, 3);
	assert_int_equal(df.v[1].n_args, 3);
	assert_string_equal(df.v[1].args[2], "build");
	assert_int_equal(df.v[2].kind, DF_RUN);
	assert_int_equal(df.v[2].line, 4);
	assert_string_equal(df.v[2].raw, "echo one     two");
	assert_false(df.v[2].exec_form);
	assert_int_equal(df.v[3].kind, DF_COPY);
	assert_int_equal(df.v[3].line, 7);
	assert_string_equal(df_flag(&df.v[3], "from"), "build");
	assert_string_equal(df_flag(&df.v[3], "chown"), "1:2");
	assert_int_equal(df.v[3].n_args, 3);
	assert_true(df.v[4].exec_form);
	assert_int_equal(df.v[4].n_args, 2);
	assert_string_equal(df.v[4].args[1], "-f");
	assert_false(df.v[5].exec_form);
	assert_string_equal(df.v[6].args[0], "CMD");
	assert_string_equal(df_flag(&df.v[6], "interval"), "5s");
	assert_true(df.v[7].exec_form);
	/* "RUN [ -f /x ]" is not JSON: shell form, as in Docker */
	assert_false(df.v[8].exec_form);
	assert_string_equal(df.v[8].args[0], "[ -f /x ] || true");
	dockerfile_free(&df);
}

static void test_escape_directive(void **state)
{
	struct dockerfile df = parse_ok("# escape=`\n"
					"FROM scratch\n"
					"RUN dir c:\\ `\n"
					"    && echo done\n");
	assert_int_equal(df.escape, '`');
	assert_int_equal(df.n, 2);
	assert_string_equal(df.v[1].raw, "dir c:\\     && echo done");
	dockerfile_free(&df);
}

static void test_errors(void **state)
{
	parse_fails("FROM scratch\nFROBNICATE x\n", "Dockerfile:2:1: unknown instruction \"FROBNICATE\"");
	parse_fails("FROM scratch\n  COPY onlyone\n", "Dockerfile:2:8: COPY expects");
	parse_fails("RUN echo\n", "first instruction must be FROM");
	parse_fails("FROM a b\n", "FROM expects IMAGE [AS NAME]");
	parse_fails("FROM scratch\nCOPY --bogus=1 a b\n", "COPY does not take --bogus");
	parse_fails("FROM scratch\nSHELL /bin/sh\n", "SHELL expects a JSON array");
	parse_fails("# just a comment\n\n", "no instructions");
	parse_fails("ARG X=1\n", "no FROM");
	parse_fails("FROM scratch\nWORKDIR /a /b\n", "WORKDIR expects one argument");
	parse_fails("# escape=x\nFROM scratch\n", "escape must be");
	parse_fails("FROM scratch\nRUN\n", "RUN expects arguments");
}

struct vars {
	const char *const *kv;
};

static const char *lookup(const char *name, void *u)
{
	const struct vars *v = u;
	for (size_t i = 0; v->kv[i]; i += 2)
		if (streq(v->kv[i], name))
			return v->kv[i + 1];
	return NULL;
}

static void expect_expand(const char *in, const char *want)
{
	static const char *const kv[] = {"A", "alpha", "EMPTY", "", "N", "9", NULL};
	struct vars v = {kv};
	struct cairn_error err = {0};
	char *got = df_expand(in, '\\', lookup, &v, &err);
	if (!got)
		fail_msg("expand \"%s\": %s", in, error_message(&err));
	if (!streq(got, want))
		fail_msg("expand \"%s\": got \"%s\", want \"%s\"", in, got, want);
	free(got);
}

static void test_expand(void **state)
{
	expect_expand("$A", "alpha");
	expect_expand("${A}x", "alphax");
	expect_expand("x$A/y", "xalpha/y");
	expect_expand("${UNSET:-dflt}", "dflt");
	expect_expand("${EMPTY:-dflt}", "dflt");
	expect_expand("${A:-dflt}", "alpha");
	expect_expand("${A:+set}", "set");
	expect_expand("${UNSET:+set}", "");
	expect_expand("${UNSET:-${A}-$N}", "alpha-9");
	expect_expand("\\$A", "$A");
	expect_expand("'$A'", "$A");
	expect_expand("\"$A b\"", "alpha b");
	expect_expand("$", "$");
	expect_expand("a$1", "a$1");
	struct cairn_error err = {0};
	struct vars v = {(const char *const[]){NULL}};
	assert_null(df_expand("${A", '\\', lookup, &v, &err));
	error_clear(&err);
	assert_null(df_expand("${A:?x}", '\\', lookup, &v, &err));
	error_clear(&err);
	assert_null(df_expand("'open", '\\', lookup, &v, &err));
	error_clear(&err);
}

static void test_pairs(void **state)
{
	struct dockerfile df = parse_ok("FROM scratch\n"
					"ENV A=1 B=\"two words\" C='$X'\n"
					"ENV LEGACY value with spaces\n"
					"ARG ONLY\n"
					"LABEL a=b\n");
	struct df_pair *p;
	size_t n;
	struct cairn_error err = {0};
	assert_int_equal(df_pairs(&df.v[1], '\\', &p, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].key, "A");
	assert_string_equal(p[1].value, "\"two words\"");
	assert_string_equal(p[2].value, "'$X'");
	df_pairs_free(p, n);
	assert_int_equal(df_pairs(&df.v[2], '\\', &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].key, "LEGACY");
	assert_string_equal(p[0].value, "value with spaces");
	df_pairs_free(p, n);
	assert_int_equal(df_pairs(&df.v[3], '\\', &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_null(p[0].value);
	df_pairs_free(p, n);
	dockerfile_free(&df);
}

/* --- tree edits (src/build/treeops.c) ------------------------------------- */

static struct tree_entry *add(struct tree *t, const char *path, enum entry_type type,
			      const char *target_or_content)
{
	struct tree_entry *e = tree_add(t);
	e->path = xstrdup(path);
	e->type = type;
	e->mode = type == ENTRY_SYMLINK ? 0777 : type == ENTRY_DIR ? 0755 : 0644;
	if (type == ENTRY_SYMLINK)
		e->target = xstrdup(target_or_content);
	if (type == ENTRY_FILE) {
		e->size = strlen(target_or_content);
		digest_buffer(target_or_content, e->size, &e->digest);
	}
	return e;
}

/* A small image: /bin -> usr/bin, /lib -> /usr/lib, /usr/bin/sh, /etc/a,
 * /etc/a.b, /loop -> loop, /up -> ../../.. */
static void base_tree(struct tree *t)
{
	*t = (struct tree){0};
	add(t, ".", ENTRY_DIR, NULL);
	add(t, "bin", ENTRY_SYMLINK, "usr/bin");
	add(t, "lib", ENTRY_SYMLINK, "/usr/lib");
	add(t, "usr", ENTRY_DIR, NULL);
	add(t, "usr/bin", ENTRY_DIR, NULL);
	add(t, "usr/bin/sh", ENTRY_FILE, "sh");
	add(t, "usr/lib", ENTRY_DIR, NULL);
	add(t, "etc", ENTRY_DIR, NULL);
	add(t, "etc/a", ENTRY_DIR, NULL);
	add(t, "etc/a/x", ENTRY_FILE, "x");
	add(t, "etc/a.b", ENTRY_FILE, "ab");
	add(t, "loop", ENTRY_SYMLINK, "loop");
	add(t, "up", ENTRY_SYMLINK, "../../..");
	tree_sort(t);
	struct cairn_error err = {0};
	if (tree_validate(t, &err) < 0)
		fail_msg("base tree: %s", error_message(&err));
}

static void resolves(const struct tree *t, const char *path, bool follow, const char *want)
{
	struct cairn_error err = {0};
	char *got = NULL;
	if (tree_resolve(t, path, follow, &got, &err) < 0)
		fail_msg("%s: %s", path, error_message(&err));
	if (strcmp(got, want) != 0)
		fail_msg("resolve %s: got %s, want %s", path, got, want);
	free(got);
}

static void test_tree_resolve(void **state)
{
	struct tree t;
	base_tree(&t);
	resolves(&t, "/bin/sh", true, "usr/bin/sh");
	resolves(&t, "bin", true, "usr/bin");
	resolves(&t, "bin", false, "bin");
	resolves(&t, "/bin/new/deeper", true, "usr/bin/new/deeper");
	resolves(&t, "/lib/x", true, "usr/lib/x");
	resolves(&t, "/../../etc/./a//x", true, "etc/a/x");
	resolves(&t, "/up/etc", true, "etc"); /* ".." stops at the root */
	resolves(&t, "/", true, ".");
	resolves(&t, "", true, ".");
	struct cairn_error err = {0};
	char *got = NULL;
	assert_int_equal(tree_resolve(&t, "/loop/x", true, &got, &err), -ELOOP);
	error_clear(&err);
	tree_free(&t);
}

static void test_path_clean(void **state)
{
	static const char *const cases[][2] = {
		{"/a//./b/../c/", "a/c"}, {"", "."}, {"/", "."}, {"../..", "."},
		{"./x", "x"},		  {"a/b/..", "a"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *c = path_clean(cases[i][0]);
		if (strcmp(c, cases[i][1]) != 0)
			fail_msg("clean %s: got %s, want %s", cases[i][0], c, cases[i][1]);
		free(c);
	}
}

static void apply_ok(struct tree *t, struct changes *c)
{
	struct cairn_error err = {0};
	if (tree_apply(t, c, &err) < 0)
		fail_msg("apply: %s", error_message(&err));
	changes_free(c);
}

static void test_tree_apply(void **state)
{
	struct tree t;
	base_tree(&t);
	struct changes c = {0};
	/* remove etc/a: its child goes, the sibling "etc/a.b" (sorted between
	 * them) stays */
	changes_remove(&c, "etc/a");
	add(&c.add, "etc/new", ENTRY_FILE, "n");
	apply_ok(&t, &c);
	assert_null(tree_find(&t, "etc/a"));
	assert_null(tree_find(&t, "etc/a/x"));
	assert_non_null(tree_find(&t, "etc/a.b"));
	assert_non_null(tree_find(&t, "etc/new"));

	/* an opaque directory keeps only what the change adds below it */
	c = (struct changes){0};
	changes_clear(&c, "usr");
	add(&c.add, "usr", ENTRY_DIR, NULL)->mode = 0700;
	add(&c.add, "usr/only", ENTRY_FILE, "o");
	apply_ok(&t, &c);
	assert_int_equal(tree_find(&t, "usr")->mode, 0700);
	assert_non_null(tree_find(&t, "usr/only"));
	assert_null(tree_find(&t, "usr/bin"));
	assert_null(tree_find(&t, "usr/bin/sh"));

	/* a directory replaced by a file loses its children */
	c = (struct changes){0};
	add(&c.add, "usr", ENTRY_FILE, "now a file");
	apply_ok(&t, &c);
	assert_int_equal(tree_find(&t, "usr")->type, ENTRY_FILE);
	assert_null(tree_find(&t, "usr/only"));
	tree_free(&t);
}

static void test_tree_apply_links(void **state)
{
	struct tree t = {0};
	add(&t, ".", ENTRY_DIR, NULL);
	add(&t, "a", ENTRY_FILE, "same");
	add(&t, "b", ENTRY_FILE, "same")->link = xstrdup("a");
	add(&t, "c", ENTRY_FILE, "same")->link = xstrdup("a");
	tree_sort(&t);
	/* the group's head goes: b heads it, c follows b */
	struct changes c = {0};
	changes_remove(&c, "a");
	apply_ok(&t, &c);
	assert_null(tree_find(&t, "b")->link);
	assert_string_equal(tree_find(&t, "c")->link, "b");
	/* the head changes content: c leaves the group */
	c = (struct changes){0};
	add(&c.add, "b", ENTRY_FILE, "other");
	apply_ok(&t, &c);
	assert_null(tree_find(&t, "c")->link);
	tree_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instructions), cmocka_unit_test(test_escape_directive),
		cmocka_unit_test(test_errors),	     cmocka_unit_test(test_expand),
		cmocka_unit_test(test_pairs), cmocka_unit_test(test_tree_resolve),
		cmocka_unit_test(test_path_clean), cmocka_unit_test(test_tree_apply),
		cmocka_unit_test(test_tree_apply_links),
	};
	return cmocka_run_group_tests_name("build", tests, NULL, NULL);
}
