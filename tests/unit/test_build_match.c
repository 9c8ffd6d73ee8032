/* Unit tests of src/build/match.c: Docker's path patterns (*, ?, classes,
 * escapes, ** in every position, malformed patterns, a pathological pattern)
 * and .dockerignore (comments, blank lines, cleaning, parent directories,
 * negation order, re-inclusion below an excluded directory, errors). */
#include "unit.h"

#include "../../src/build/match.h"

#define MATCH(pat, path) assert_true(path_match(pat, path))
#define NO_MATCH(pat, path) assert_false(path_match(pat, path))

static void test_star_question(void **state)
{
	MATCH("*.c", "a.c");
	MATCH("*.c", ".c");
	NO_MATCH("*.c", "dir/a.c");
	NO_MATCH("*.c", "a.h");
	MATCH("*", "");
	MATCH("*", "anything");
	NO_MATCH("*", "a/b");
	MATCH("a*", "a");
	MATCH("a*b*c", "axxbyyc");
	NO_MATCH("a*b", "a/b");
	MATCH("src/*/main.c", "src/x/main.c");
	NO_MATCH("src/*/main.c", "src/x/y/main.c");
	MATCH("*/*", "a/b");
	MATCH("?.c", "a.c");
	NO_MATCH("?.c", "ab.c");
	NO_MATCH("?.c", ".c");
	NO_MATCH("a?b", "a/b");
	/* ? is one character, not one byte */
	MATCH("?", "\xc3\xa9");
	NO_MATCH("??", "\xc3\xa9");
	MATCH("caf?", "caf\xc3\xa9");
	/* literal text, including bytes that are not UTF-8 */
	MATCH("exact/path.txt", "exact/path.txt");
	NO_MATCH("exact/path.txt", "exact/path.txt2");
	NO_MATCH("exact/path.txt", "exact/path.tx");
	MATCH("\xff*", "\xff\xfe");
	MATCH("?", "\xff");
	MATCH("", "");
	NO_MATCH("", "a");
}

static void test_classes(void **state)
{
	MATCH("[abc].c", "b.c");
	NO_MATCH("[abc].c", "d.c");
	MATCH("file[0-9]", "file7");
	NO_MATCH("file[0-9]", "filex");
	MATCH("[a-cx-z]", "y");
	NO_MATCH("[a-cx-z]", "m");
	MATCH("[^a-c]", "d");
	NO_MATCH("[^a-c]", "b");
	MATCH("[!a-c]", "d");
	NO_MATCH("[!a-c]", "a");
	/* members that must be escaped */
	MATCH("[\\]]", "]");
	MATCH("[\\-]", "-");
	MATCH("[a\\-z]", "-");
	NO_MATCH("[a\\-z]", "m");
	MATCH("[\\^]", "^");
	MATCH("[*?]", "*");
	NO_MATCH("[*?]", "x");
	/* ranges of code points, and a class takes a whole character */
	MATCH("[\xc3\xa0-\xc3\xbf]", "\xc3\xa9");
	NO_MATCH("[\xc3\xa0-\xc3\xbf]", "e");
	MATCH("[^a]", "\xc3\xa9");
	NO_MATCH("[^a]x", "\xc3\xa9");
	/* a class matches exactly one character */
	NO_MATCH("[ab]", "ab");
	NO_MATCH("[ab]", "");
	/* lo > hi is accepted (as in Go) and matches nothing */
	assert_true(path_pattern_valid("[z-a]"));
	NO_MATCH("[z-a]", "m");
}

static void test_escapes(void **state)
{
	MATCH("\\*", "*");
	NO_MATCH("\\*", "a");
	MATCH("\\?", "?");
	NO_MATCH("\\?", "a");
	MATCH("a\\[b", "a[b");
	MATCH("\\\\", "\\");
	MATCH("\\a", "a");
	MATCH("\\**", "*abc");
	NO_MATCH("\\**", "abc");
	MATCH("\\*\\*/x", "**/x");
	NO_MATCH("\\*\\*/x", "a/x");
}

static void test_globstar(void **state)
{
	/* alone: everything */
	MATCH("**", "");
	MATCH("**", "a");
	MATCH("**", "a/b/c");
	/* at the start */
	MATCH("**/x", "x");
	MATCH("**/x", "a/x");
	MATCH("**/x", "a/b/x");
	NO_MATCH("**/x", "ax");
	NO_MATCH("**/x", "a/bx");
	NO_MATCH("**/x", "x/a");
	MATCH("**/*.c", "x.c");
	MATCH("**/*.c", "a/b/x.c");
	NO_MATCH("**/*.c", "a/b/x.h");
	/* at the end: everything under, not the directory itself */
	MATCH("a/**", "a/x");
	MATCH("a/**", "a/x/y/z");
	NO_MATCH("a/**", "a");
	NO_MATCH("a/**", "ab");
	NO_MATCH("a/**", "b/a/x");
	MATCH("a/**/", "a/x");
	/* in the middle */
	MATCH("a/**/b", "a/b");
	MATCH("a/**/b", "a/x/b");
	MATCH("a/**/b", "a/x/y/b");
	NO_MATCH("a/**/b", "ab");
	NO_MATCH("a/**/b", "a/xb");
	NO_MATCH("a/**/b", "a/x/y/b/c");
	NO_MATCH("a/**/b", "b");
	MATCH("a/**/b/**/c", "a/b/c");
	MATCH("a/**/b/**/c", "a/1/2/b/3/c");
	NO_MATCH("a/**/b/**/c", "a/1/2/3/c");
	MATCH("**/a/**", "a/x");
	MATCH("**/a/**", "q/r/a/x/y");
	NO_MATCH("**/a/**", "q/r/a");
	MATCH("**/**/x", "x");
	MATCH("**/**/x", "1/2/3/x");
	MATCH("src/**/*_test.go", "src/a/b/x_test.go");
	MATCH("src/**/*_test.go", "src/x_test.go");
	NO_MATCH("src/**/*_test.go", "src/a/x_test.c");
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "[",   "[a",  "a[",	 "[]",	 "[]a]",  "[^]",  "[!]",   "[a-]",   "[-a]",
	    "[a-", "x\\", "[\\", "[a\\", "[a-\\", "ok/[", "**/[x", "[\xff]",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (path_pattern_valid(bad[i]))
			fail_msg("\"%s\" should be malformed", bad[i]);
		/* never matches, not even its own text */
		assert_false(path_match(bad[i], bad[i]));
		assert_false(path_match(bad[i], ""));
		assert_false(path_match(bad[i], "a"));
	}
	/* malformed anywhere, even past a point that already fails to match */
	assert_false(path_match("zzz[", "a"));
	static const char *const good[] = {
	    "", "a", "*", "**", "[a]", "[\\]]", "[^a]", "\\[", "a\\*", "[a-z0-9_]", "***",
	};
	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		if (!path_pattern_valid(good[i]))
			fail_msg("\"%s\" should be valid", good[i]);
}

/* Patterns that make a backtracking matcher take exponential time. Only the
 * result is asserted; the time limit of the test catches a blowup. */
static void test_pathological(void **state)
{
	size_t n = 20000;
	char *s = xmalloc(n + 2);
	memset(s, 'a', n);
	s[n] = 0;
	NO_MATCH("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s);
	NO_MATCH("**a**a**a**a**a**a**a**a**a**a**b", s);
	s[n] = 'b';
	s[n + 1] = 0;
	MATCH("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s);
	free(s);

	/* deep paths against many ** */
	struct ignore ig = {0};
	char *deep = xmalloc(2 * n + 2);
	for (size_t i = 0; i < n; i++) {
		deep[2 * i] = 'a';
		deep[2 * i + 1] = '/';
	}
	deep[2 * n - 1] = 0;
	NO_MATCH("**/a/**/a/**/a/**/a/**/a/**/b", deep);
	MATCH("**/a/**/a/**/a/**/a/**/a/**/a", deep);
	assert_int_equal(ignore_parse("i", "**/a/**/a/**/b\n", 15, &ig, NULL), 0);
	assert_false(ignore_excluded(&ig, deep));
	ignore_free(&ig);
	free(deep);
}

static struct ignore parse_ok(const char *text)
{
	struct ignore ig = {0};
	struct cairn_error err = {0};
	if (ignore_parse(".dockerignore", text, strlen(text), &ig, &err) < 0)
		fail_msg("parse failed: %s", error_message(&err));
	return ig;
}

static void parse_fails(const char *text, size_t len, const char *needle)
{
	struct ignore ig = {.v = (void *)&ig, .n = 42};
	struct cairn_error err = {0};
	assert_int_equal(ignore_parse(".dockerignore", text, len, &ig, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	if (!strstr(error_message(&err), needle))
		fail_msg("error \"%s\" does not contain \"%s\"", error_message(&err), needle);
	/* untouched on failure */
	assert_ptr_equal(ig.v, &ig);
	assert_int_equal(ig.n, 42);
	error_clear(&err);
}

static void test_parse(void **state)
{
	struct ignore ig = parse_ok("\xef\xbb\xbf# a comment\n"
				    "\n"
				    "   \n"
				    "\t*.o  \n"
				    "  #not-a-comment\n"
				    "!keep.o\r\n"
				    "!  spaced\n"
				    "#!not-a-rule\n"
				    "last");
	assert_int_equal(ig.n, 5);
	assert_string_equal(ig.v[0].pattern, "*.o");
	assert_false(ig.v[0].negate);
	/* as in Docker, '#' starts a comment only in the first column */
	assert_string_equal(ig.v[1].pattern, "#not-a-comment");
	assert_false(ig.v[1].negate);
	assert_string_equal(ig.v[2].pattern, "keep.o");
	assert_true(ig.v[2].negate);
	assert_string_equal(ig.v[3].pattern, "spaced");
	assert_true(ig.v[3].negate);
	assert_string_equal(ig.v[4].pattern, "last");
	ignore_free(&ig);
	assert_null(ig.v);
	assert_int_equal(ig.n, 0);
	ignore_free(NULL);

	ig = parse_ok("");
	assert_int_equal(ig.n, 0);
	assert_false(ignore_excluded(&ig, "a"));
	ignore_free(&ig);
	ig = parse_ok("# only\n\n#comments\n");
	assert_int_equal(ig.n, 0);
	ignore_free(&ig);
}

static void test_clean(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"/a", "a"},	  {"./b", "b"},	   {"c//d", "c/d"},	 {"e/./f", "e/f"},
	    {"g/", "g"},	  {"h/../i", "i"}, {"//j//", "j"},	 {"/../k", "k"},
	    {"../l", "../l"},	  {"m/..", "."},   {"n/o/../../p", "p"}, {"./q/./r/", "q/r"},
	    {"s/t/u/../..", "s"}, {"**/", "**"},   {"/", "/"},		 {"a/b/../../..", ".."},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct ignore ig = parse_ok(cases[i].in);
		assert_int_equal(ig.n, 1);
		if (!streq(ig.v[0].pattern, cases[i].out))
			fail_msg("\"%s\" cleaned to \"%s\", want \"%s\"", cases[i].in,
				 ig.v[0].pattern, cases[i].out);
		ignore_free(&ig);
	}
	struct ignore ig = parse_ok("!/x/./y/\n");
	assert_string_equal(ig.v[0].pattern, "x/y");
	assert_true(ig.v[0].negate);
	ignore_free(&ig);
	/* a cleaned pattern works on the paths a walker gives */
	ig = parse_ok("/build/\n./src//gen/\n");
	assert_true(ignore_excluded(&ig, "build"));
	assert_true(ignore_excluded(&ig, "build/out.o"));
	assert_true(ignore_excluded(&ig, "src/gen/x.c"));
	assert_false(ignore_excluded(&ig, "src/main.c"));
	ignore_free(&ig);
}

static void test_parents(void **state)
{
	struct ignore ig = parse_ok("node_modules\n"
				    "*/tmp\n"
				    "**/*.log\n");
	assert_true(ignore_excluded(&ig, "node_modules"));
	assert_true(ignore_excluded(&ig, "node_modules/x"));
	assert_true(ignore_excluded(&ig, "node_modules/x/y"));
	assert_false(ignore_excluded(&ig, "node_modulesx"));
	assert_false(ignore_excluded(&ig, "node_modulesx/y"));
	assert_false(ignore_excluded(&ig, "a/node_modules"));
	assert_true(ignore_excluded(&ig, "a/tmp"));
	assert_true(ignore_excluded(&ig, "a/tmp/b/c"));
	assert_false(ignore_excluded(&ig, "tmp"));
	assert_false(ignore_excluded(&ig, "a/b/tmp"));
	assert_true(ignore_excluded(&ig, "x.log"));
	assert_true(ignore_excluded(&ig, "deep/down/x.log"));
	/* a directory named like a log takes its contents with it */
	assert_true(ignore_excluded(&ig, "old.log/data"));
	assert_false(ignore_excluded(&ig, "src/main.c"));
	ignore_free(&ig);

	ig = parse_ok("a/**\n");
	assert_false(ignore_excluded(&ig, "a"));
	assert_true(ignore_excluded(&ig, "a/b"));
	assert_true(ignore_excluded(&ig, "a/b/c"));
	ignore_free(&ig);
}

static void test_negation_order(void **state)
{
	/* a later exception wins */
	struct ignore ig = parse_ok("*.md\n!README.md\n");
	assert_false(ignore_excluded(&ig, "README.md"));
	assert_true(ignore_excluded(&ig, "CHANGES.md"));
	assert_false(ignore_excluded(&ig, "main.c"));
	/* patterns are anchored at the top of the context */
	assert_false(ignore_excluded(&ig, "docs/x.md"));
	ignore_free(&ig);

	/* an earlier exception loses */
	ig = parse_ok("!README.md\n*.md\n");
	assert_true(ignore_excluded(&ig, "README.md"));
	assert_true(ignore_excluded(&ig, "CHANGES.md"));
	ignore_free(&ig);

	/* exclude everything but a few */
	ig = parse_ok("*\n!src\n!Makefile\nsrc/*.o\n!src/keep.o\n");
	assert_true(ignore_excluded(&ig, "README"));
	assert_true(ignore_excluded(&ig, "docs/a.md"));
	assert_false(ignore_excluded(&ig, "Makefile"));
	assert_false(ignore_excluded(&ig, "src"));
	assert_false(ignore_excluded(&ig, "src/main.c"));
	assert_false(ignore_excluded(&ig, "src/sub/x.o"));
	assert_true(ignore_excluded(&ig, "src/main.o"));
	assert_false(ignore_excluded(&ig, "src/keep.o"));
	ignore_free(&ig);

	/* an exception for a path below an excluded directory */
	ig = parse_ok("docs\n!docs/keep.md\n");
	assert_true(ignore_excluded(&ig, "docs"));
	assert_true(ignore_excluded(&ig, "docs/other.md"));
	assert_false(ignore_excluded(&ig, "docs/keep.md"));
	ignore_free(&ig);
}

static void test_reinclude(void **state)
{
	struct ignore ig = parse_ok("docs\n!docs/keep.md\n!vendor/*/LICENSE\n!**/.keep\n");
	assert_true(ignore_may_reinclude_below(&ig, "docs"));
	assert_true(ignore_may_reinclude_below(&ig, "docs/"));
	assert_true(ignore_may_reinclude_below(&ig, "vendor"));
	assert_true(ignore_may_reinclude_below(&ig, "vendor/x"));
	assert_true(ignore_may_reinclude_below(&ig, "anything/at/all"));
	assert_true(ignore_may_reinclude_below(&ig, ""));
	ignore_free(&ig);

	ig = parse_ok("docs\nbuild\n!docs/keep.md\n!vendor/*/LICENSE\n!*.md\n");
	assert_true(ignore_may_reinclude_below(&ig, "docs"));
	assert_false(ignore_may_reinclude_below(&ig, "build"));
	assert_false(ignore_may_reinclude_below(&ig, "docsx"));
	assert_false(ignore_may_reinclude_below(&ig, "doc"));
	assert_true(ignore_may_reinclude_below(&ig, "vendor/lib"));
	assert_false(ignore_may_reinclude_below(&ig, "vendor/lib/sub"));
	assert_false(ignore_may_reinclude_below(&ig, "other"));
	ignore_free(&ig);

	/* as in Docker, an exception naming the directory itself counts */
	ig = parse_ok("!build\nbuild\n");
	assert_true(ignore_may_reinclude_below(&ig, "build"));
	ignore_free(&ig);

	/* no exceptions: any excluded directory can be skipped */
	ig = parse_ok("a\n**\n");
	assert_false(ignore_may_reinclude_below(&ig, "a"));
	assert_false(ignore_may_reinclude_below(&ig, ""));
	ignore_free(&ig);

	/* what the walker does with it */
	ig = parse_ok("node_modules\n!node_modules/keep/**\n");
	assert_true(ignore_excluded(&ig, "node_modules"));
	assert_true(ignore_may_reinclude_below(&ig, "node_modules"));
	assert_true(ignore_excluded(&ig, "node_modules/other"));
	assert_false(ignore_may_reinclude_below(&ig, "node_modules/other"));
	assert_true(ignore_may_reinclude_below(&ig, "node_modules/keep"));
	assert_false(ignore_excluded(&ig, "node_modules/keep/a/b"));
	ignore_free(&ig);
}

static void test_errors(void **state)
{
	parse_fails("ok\n[a\n", 6, ".dockerignore:2: bad pattern \"[a\"");
	parse_fails("# c\n\n!src/[]x\n", 14, ".dockerignore:3: bad pattern \"!src/[]x\"");
	parse_fails("a\\", 2, ".dockerignore:1: bad pattern \"a\\\"");
	parse_fails("a\n  !  \n", 8, ".dockerignore:2: bad pattern \"!\"");
	parse_fails("!", 1, "'!' needs a pattern");
	parse_fails("a\0b\n", 4, "NUL");
	/* malformed after cleaning: the escaped '/' goes with the trailing '/' */
	parse_fails("a\\/", 3, "bad pattern \"a\\/\"");
	/* the error says what to do */
	parse_fails("[x", 2, "not closed");
	parse_fails("x\\", 2, "lone");
	/* err may be NULL */
	struct ignore ig = {0};
	assert_int_equal(ignore_parse("i", "[", 1, &ig, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_star_question), cmocka_unit_test(test_classes),
	    cmocka_unit_test(test_escapes),	  cmocka_unit_test(test_globstar),
	    cmocka_unit_test(test_malformed),	  cmocka_unit_test(test_pathological),
	    cmocka_unit_test(test_parse),	  cmocka_unit_test(test_clean),
	    cmocka_unit_test(test_parents),	  cmocka_unit_test(test_negation_order),
	    cmocka_unit_test(test_reinclude),	  cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests_name("build_match", tests, NULL, NULL);
}
