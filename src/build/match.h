/* Path patterns as Docker uses them for .dockerignore and COPY/ADD sources
 * (Go's filepath.Match plus "**"), and the .dockerignore file itself: the
 * parser, the last-rule-wins exclusion test, and the question a build-context
 * walker asks before it skips an excluded directory. No file-system access. */
#pragma once

#include "../base/error.h"

/* True when pattern matches all of path, a '/'-separated relative path
 * ("src/a.c"). The pattern language:
 *   c       the byte c itself
 *   \c      c, even when it is one of * ? [ \ (a trailing \ is malformed)
 *   ?       one character (UTF-8 code point) other than '/'
 *   *       any run of bytes other than '/', including none
 *   [...]   one character in the class: c, \c (escaped) or ranges a-z; a
 *           leading ^ or ! negates it; as in Go it may not be empty and ']'
 *           or '-' must be escaped to be members
 *   **      any number of whole path components, including none. Followed
 *           by '/' it matches nothing or anything ending in '/': "**" "/x"
 *           matches "x" and "a/b/x", "a/" "**" "/b" matches "a/b" and
 *           "a/x/y/b". At the end of the pattern it matches anything: "a/" "**"
 *           matches everything under a, but not a itself.
 * (Examples here are C string literals, split where a '/' meets a '*' since
 * the pair would open or close this comment.)
 * A malformed pattern (an unterminated or empty class, a trailing \) never
 * matches; see path_pattern_valid(). Time is O(strlen(pattern) *
 * strlen(path)) whatever the pattern, space O(strlen(path)). */
bool path_match(const char *pattern, const char *path);

/* True when pattern is well formed, so that path_match() can match it. */
bool path_pattern_valid(const char *pattern);

struct ignore_rule {
	char *pattern; /* cleaned, without the leading '!' */
	bool negate;   /* the line started with '!': matching paths are kept */
};

struct ignore {
	struct ignore_rule *v; /* in file order */
	size_t n;
};

/* Parse .dockerignore text (len bytes, need not be NUL-terminated) into
 * *ret, as Docker reads it: one pattern per line; a line starting with '#' is
 * a comment (only in the first column: "  #x" is the pattern "#x"); blank
 * lines are skipped; surrounding whitespace is trimmed; a leading '!' negates
 * the rule; a leading UTF-8 byte-order mark is ignored. Patterns are cleaned
 * like Go's filepath.Clean ("a//b" and "a/./b" become "a/b", "a/../b" becomes
 * "b", a trailing '/' goes) and lose a leading '/'. On success *ret owns the
 * rules (release with ignore_free()) and 0 is returned. A malformed pattern,
 * a lone '!' or NUL bytes give -EINVAL with err set to
 * "name:line: bad pattern \"...\": why"; *ret is then untouched. */
int ignore_parse(const char *name, const char *text, size_t len, struct ignore *ret,
		 struct cairn_error *err);

/* Release the rules and empty *ig. Accepts NULL. */
void ignore_free(struct ignore *ig);

/* True when path (relative, cleaned, no leading '/': "src/a.c") is excluded
 * from the build context. Docker's semantics: the last rule that matches
 * decides, and a rule matches a path when its pattern matches the path itself
 * or any of its parent directories ("node_modules" excludes
 * "node_modules/x/y"). No rule matching means not excluded. */
bool ignore_excluded(const struct ignore *ig, const char *path);

/* True when some negated rule could match a path below directory dir (a
 * relative path as for ignore_excluded(); "" is the top of the context), so a
 * walker must not skip the excluded directory dir wholesale. Exact for
 * patterns like "!dir/keep", "!dir/" "*.c" or "!**" "/keep", and conservative
 * (true) where in doubt; also true, as in Docker, for a negated rule that
 * matches dir itself. */
bool ignore_may_reinclude_below(const struct ignore *ig, const char *dir);
