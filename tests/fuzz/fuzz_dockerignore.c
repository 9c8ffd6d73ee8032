/* libFuzzer target for .dockerignore and path patterns (src/build/match.c).
 * The input's first line is a path, the rest a .dockerignore. Whatever parses
 * has well-formed patterns; ignore_excluded() agrees with Docker's loop over
 * the rules written out plainly with path_match(); ignore_may_reinclude_below()
 * never says no for a directory above a path a negated rule matches; and a
 * malformed pattern matches nothing. */
#include "../../src/build/match.h"

#include <stdio.h>

/* Docker's MatchesOrParentMatches, one path_match() per rule and parent. */
static bool excluded_slowly(const struct ignore *ig, const char *path)
{
	bool matched = false;
	size_t n = strlen(path);
	char *prefix = xmalloc(n + 1);
	for (size_t r = 0; r < ig->n; r++) {
		bool m = path_match(ig->v[r].pattern, path);
		for (size_t k = 1; !m && k < n; k++) {
			if (path[k] != '/')
				continue;
			memcpy(prefix, path, k);
			prefix[k] = 0;
			m = path_match(ig->v[r].pattern, prefix);
		}
		if (m)
			matched = !ig->v[r].negate;
	}
	free(prefix);
	return matched;
}

static _noreturn_ void fail(const char *what, const char *path, const char *pattern)
{
	fprintf(stderr, "fuzz_dockerignore: %s (path \"%s\", pattern \"%s\")\n", what, path,
		pattern ? pattern : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t plen = nl ? (size_t)(nl - text) : size;
	char *path = xstrndup(text, plen); /* stops at a NUL too */
	const char *rest = nl ? nl + 1 : text + size;
	size_t rlen = (size_t)(text + size - rest);

	/* the rest as one raw pattern, malformed or not */
	char *raw = xstrndup(rest, rlen);
	bool valid = path_pattern_valid(raw);
	if (path_match(raw, path) && !valid)
		fail("a malformed pattern matched", path, raw);
	free(raw);

	struct ignore ig = {0};
	struct cairn_error err = {0};
	if (ignore_parse(".dockerignore", rest, rlen, &ig, &err) < 0) {
		if (!err.msg || err.code != EINVAL || ig.v || ig.n)
			fail("a failure without a message, or with output", path, NULL);
		error_clear(&err);
		free(path);
		return 0;
	}
	for (size_t r = 0; r < ig.n; r++) {
		const char *pat = ig.v[r].pattern;
		if (!path_pattern_valid(pat))
			fail("a parsed pattern is malformed", path, pat);
		if (!*pat || (pat[0] == '/' && pat[1]))
			fail("a parsed pattern is empty or absolute", path, pat);
		(void)path_match(pat, pat);
	}

	bool excluded = ignore_excluded(&ig, path);
	/* the plain loop costs rules * depth * pattern * path: keep it small */
	if (size <= 1024 && excluded != excluded_slowly(&ig, path))
		fail("ignore_excluded disagrees with Docker's loop", path, NULL);

	/* a negated rule that matches path re-includes below each parent */
	size_t n = strlen(path);
	for (size_t r = 0; r < ig.n && size <= 1024; r++) {
		if (!ig.v[r].negate || !path_match(ig.v[r].pattern, path))
			continue;
		for (size_t k = 1; k < n; k++) {
			if (path[k] != '/')
				continue;
			char *dir = xstrndup(path, k);
			if (!ignore_may_reinclude_below(&ig, dir))
				fail("ignore_may_reinclude_below missed a negated rule", path,
				     ig.v[r].pattern);
			free(dir);
		}
	}
	(void)ignore_may_reinclude_below(&ig, path);
	(void)ignore_may_reinclude_below(&ig, "");

	ignore_free(&ig);
	free(path);
	return 0;
}
