/* Docker's path patterns and .dockerignore (see match.h). A pattern is read
 * as a sequence of tokens and run over the path as a set of reachable
 * positions, one token at a time: O(pattern * path) time whatever the
 * pattern, with no backtracking to blow up on "*a*a*a*a*b". The same run
 * tells, for every prefix of the path, whether the pattern matches it, which
 * is how one pass decides "the path or any of its parent directories". */
#include "match.h"

enum tok_kind {
	TOK_LIT,   /* one byte */
	TOK_ANY,   /* ?: one character, not '/' */
	TOK_STAR,  /* *: bytes other than '/' */
	TOK_CLASS, /* [...]: one character in (or not in) the class */
	TOK_DIRS,  /* ** not at the end: nothing, or anything ending in '/' */
	TOK_REST,  /* ** at the end: anything */
};

struct tok {
	enum tok_kind kind;
	unsigned char c; /* TOK_LIT */
	const char *cls; /* TOK_CLASS: the ranges, after '[' and any negation */
	bool negated;	 /* TOK_CLASS */
};

#define UTF8_BAD 0xfffdu

/* Decode the UTF-8 character at s[0..n), n >= 1, into *ret and return its
 * length. A byte that does not start a valid sequence (overlong, surrogate,
 * truncated) decodes as U+FFFD of length 1, as in Go. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *ret)
{
	uint32_t c = s[0], min;
	size_t len;
	if (c < 0x80) {
		*ret = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		len = 0;
		min = 0;
	}
	bool ok = len > 0 && n >= len;
	for (size_t i = 1; ok && i < len; i++) {
		ok = (s[i] & 0xc0) == 0x80;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (!ok || c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
		*ret = UTF8_BAD;
		return 1;
	}
	*ret = c;
	return len;
}

/* One member character of a class at *p, literal or escaped, advancing *p.
 * Go's rules: it may not be missing, '-' or ']' (those must be escaped), it
 * must be valid UTF-8, and the class must go on after it. */
static bool class_char(const char **p, uint32_t *ret)
{
	const char *s = *p;
	if (*s == 0 || *s == '-' || *s == ']')
		return false;
	if (*s == '\\' && *++s == 0)
		return false;
	size_t w = utf8_decode((const unsigned char *)s, strnlen(s, 4), ret);
	if (*ret == UTF8_BAD && w == 1)
		return false;
	s += w;
	if (*s == 0)
		return false;
	*p = s;
	return true;
}

/* Walk the ranges of a class starting at p (after '[' and any negation).
 * Returns the byte after the closing ']', or NULL when the class is
 * malformed; *in (when non-NULL) says whether c is in one of the ranges. */
static const char *class_scan(const char *p, uint32_t c, bool *in)
{
	bool hit = false;
	for (size_t nrange = 0;; nrange++) {
		if (*p == ']' && nrange > 0) {
			if (in)
				*in = hit;
			return p + 1;
		}
		uint32_t lo, hi;
		if (!class_char(&p, &lo))
			return NULL;
		hi = lo;
		if (*p == '-') {
			p++;
			if (!class_char(&p, &hi))
				return NULL;
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
}

/* Read the token at p (not at the end of the pattern) into *t. Returns the
 * rest of the pattern, or NULL when the token is malformed. */
static const char *tok_next(const char *p, struct tok *t)
{
	*t = (struct tok){.kind = TOK_LIT, .c = (unsigned char)*p};
	switch (*p) {
	case '*':
		if (p[1] != '*') {
			t->kind = TOK_STAR;
			return p + 1;
		}
		/* "**", and a '/' after it is part of it, as in Docker */
		p += 2;
		if (*p == '/')
			p++;
		t->kind = *p ? TOK_DIRS : TOK_REST;
		return p;
	case '?':
		t->kind = TOK_ANY;
		return p + 1;
	case '[':
		p++;
		t->kind = TOK_CLASS;
		t->negated = *p == '^' || *p == '!';
		if (t->negated)
			p++;
		t->cls = p;
		return class_scan(p, 0, NULL);
	case '\\':
		if (p[1] == 0)
			return NULL;
		t->c = (unsigned char)p[1];
		return p + 2;
	default:
		return p + 1;
	}
}

/* Why pattern is malformed, or NULL when it is well formed. */
static const char *pattern_problem(const char *pattern)
{
	for (const char *p = pattern; *p;) {
		struct tok t;
		const char *next = tok_next(p, &t);
		if (next) {
			p = next;
			continue;
		}
		if (*p == '\\')
			return "it ends in a lone '\\' (write \"\\\\\" for a backslash)";
		return "a '[' class is not closed or is malformed (it needs at least one member; "
		       "escape ']', '-' and '[' with '\\' to match them)";
	}
	return NULL;
}

bool path_pattern_valid(const char *pattern)
{
	return !pattern_problem(pattern);
}

/* Advance the set of reachable positions cur (n + 1 entries) over token t of
 * s[0..n) into next. */
static void glob_step(const struct tok *t, const char *s, size_t n, const bool *cur, bool *next)
{
	bool seen = false; /* some position before i is reachable */
	memset(next, 0, n + 1);
	for (size_t i = 0; i <= n; i++) {
		switch (t->kind) {
		case TOK_LIT:
			if (cur[i] && i < n && (unsigned char)s[i] == t->c)
				next[i + 1] = true;
			break;
		case TOK_ANY:
		case TOK_CLASS:
			if (cur[i] && i < n) {
				uint32_t c;
				size_t w = utf8_decode((const unsigned char *)s + i, n - i, &c);
				bool in = false;
				if (t->kind == TOK_ANY)
					in = c != '/';
				else
					(void)class_scan(t->cls, c, &in);
				if (in != (t->kind == TOK_CLASS && t->negated))
					next[i + w] = true;
			}
			break;
		case TOK_STAR:
			next[i] = cur[i] || (i > 0 && next[i - 1] && s[i - 1] != '/');
			break;
		case TOK_DIRS:
			next[i] = cur[i] || (seen && s[i - 1] == '/');
			seen = seen || cur[i];
			break;
		case TOK_REST:
			seen = seen || cur[i];
			next[i] = seen;
			break;
		}
	}
}

/* Run pattern over s[0..n). On success reach[i] (n + 1 entries, filled by
 * the caller's buffer) says whether the whole pattern matches s[0..i), and
 * *alive (when non-NULL) whether some beginning of the pattern matches all
 * of s, so that a longer string starting with s could match. Returns false,
 * with reach all false, when the pattern is malformed. */
static bool glob_run(const char *pattern, const char *s, size_t n, bool *reach, bool *alive)
{
	_cleanup_free_ bool *buf = xcalloc(2 * (n + 1), sizeof(bool));
	bool *cur = buf, *next = buf + n + 1;
	bool any = true, end = n == 0;
	cur[0] = true;
	for (const char *p = pattern; *p;) {
		struct tok t;
		p = tok_next(p, &t);
		if (!p) {
			memset(reach, 0, n + 1);
			if (alive)
				*alive = false;
			return false;
		}
		if (!any)
			continue; /* nothing can match; only check the rest is well formed */
		glob_step(&t, s, n, cur, next);
		bool *tmp = cur;
		cur = next;
		next = tmp;
		any = memchr(cur, true, n + 1) != NULL;
		end = end || cur[n];
	}
	memcpy(reach, cur, n + 1);
	if (alive)
		*alive = end;
	return true;
}

bool path_match(const char *pattern, const char *path)
{
	size_t n = strlen(path);
	_cleanup_free_ bool *reach = xmalloc(n + 1);
	return glob_run(pattern, path, n, reach, NULL) && reach[n];
}

/* Go's filepath.Clean for '/'-separated paths: the shortest equivalent path
 * with no empty, "." or inner ".." elements and no trailing '/'; "" gives ".".
 * Returns a new string. */
static char *path_clean(const char *p)
{
	size_t n = strlen(p), r = 0, w = 0;
	char *out = xmalloc(n + 2);
	bool rooted = n > 0 && p[0] == '/';
	if (rooted) {
		out[w++] = '/';
		r = 1;
	}
	size_t dotdot = w; /* out[0..dotdot) cannot be taken back by ".." */
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if (w != (rooted ? 1u : 0u))
				out[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				out[w++] = p[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = 0;
	return out;
}

void ignore_free(struct ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		free(ig->v[i].pattern);
	free(ig->v);
	*ig = (struct ignore){0};
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int ignore_parse(const char *name, const char *text, size_t len, struct ignore *ret,
		 struct cairn_error *err)
{
	if (memchr(text, 0, len))
		return error_set(err, EINVAL, "%s: not a text file (it has NUL bytes)", name);
	struct ignore ig = {0};
	size_t cap = 0;
	const char *p = text, *end = text + len;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (unsigned line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *q = p, *e = nl ? nl : end;
		p = nl ? nl + 1 : end;
		/* as in Docker: a comment only when '#' is the first byte */
		if (q < e && *q == '#')
			continue;
		while (q < e && is_space(*q))
			q++;
		while (e > q && is_space(e[-1]))
			e--;
		if (q == e)
			continue;
		_cleanup_free_ char *shown = xstrndup(q, (size_t)(e - q));
		bool negate = *q == '!';
		if (negate) {
			q++;
			while (q < e && is_space(*q))
				q++;
		}
		if (q == e) {
			int r = error_set(err, EINVAL,
					  "%s:%u: bad pattern \"%s\": '!' needs a pattern after it",
					  name, line, shown);
			ignore_free(&ig);
			return r;
		}
		_cleanup_free_ char *raw = xstrndup(q, (size_t)(e - q));
		char *pattern = path_clean(raw);
		if (pattern[0] == '/' && pattern[1] != 0)
			memmove(pattern, pattern + 1, strlen(pattern));
		const char *why = pattern_problem(pattern);
		if (why) {
			int r = error_set(err, EINVAL, "%s:%u: bad pattern \"%s\": %s", name, line,
					  shown, why);
			free(pattern);
			ignore_free(&ig);
			return r;
		}
		ig.v = xgrow(ig.v, &cap, ig.n + 1, sizeof(*ig.v));
		ig.v[ig.n++] = (struct ignore_rule){.pattern = pattern, .negate = negate};
	}
	*ret = ig;
	return 0;
}

bool ignore_excluded(const struct ignore *ig, const char *path)
{
	size_t n = strlen(path);
	_cleanup_free_ bool *reach = xmalloc(n + 1);
	/* the last rule that matches decides: look from the end */
	for (size_t r = ig->n; r-- > 0;) {
		if (!glob_run(ig->v[r].pattern, path, n, reach, NULL))
			continue;
		bool hit = reach[n];
		for (size_t k = 1; !hit && k < n; k++)
			hit = path[k] == '/' && reach[k]; /* a parent directory */
		if (hit)
			return !ig->v[r].negate;
	}
	return false;
}

bool ignore_may_reinclude_below(const struct ignore *ig, const char *dir)
{
	size_t d = strlen(dir);
	while (d > 0 && dir[d - 1] == '/')
		d--;
	if (d == 1 && dir[0] == '.')
		d = 0;
	_cleanup_free_ char *below = xmalloc(d + 2);
	memcpy(below, dir, d);
	below[d] = '/';
	below[d + 1] = 0;
	_cleanup_free_ bool *reach = xmalloc(d + 2);
	for (size_t r = 0; r < ig->n; r++) {
		if (!ig->v[r].negate)
			continue;
		if (d == 0)
			return true;
		bool alive;
		/* alive: the pattern can go on past "dir/"; reach[d]: it matches dir */
		if (glob_run(ig->v[r].pattern, below, d + 1, reach, &alive) && (alive || reach[d]))
			return true;
	}
	return false;
}
