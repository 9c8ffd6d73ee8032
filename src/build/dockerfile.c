/* The Dockerfile parser and Docker's word expansion. Follows the Dockerfile
 * reference: parser directives (escape) at the top, comments, continuation
 * lines ending in the escape character, case-insensitive keywords, --flags
 * before the arguments, JSON exec form for RUN, CMD, ENTRYPOINT, SHELL,
 * VOLUME, COPY and ADD. Errors name the file, line and column. */
#include "dockerfile.h"

#include "../base/buf.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>

static const char *const kind_names[] = {
	[DF_FROM] = "FROM",	    [DF_RUN] = "RUN",		[DF_COPY] = "COPY",
	[DF_ADD] = "ADD",	    [DF_ENV] = "ENV",		[DF_ARG] = "ARG",
	[DF_WORKDIR] = "WORKDIR",   [DF_USER] = "USER",		[DF_EXPOSE] = "EXPOSE",
	[DF_CMD] = "CMD",	    [DF_ENTRYPOINT] = "ENTRYPOINT", [DF_LABEL] = "LABEL",
	[DF_HEALTHCHECK] = "HEALTHCHECK", [DF_SHELL] = "SHELL", [DF_STOPSIGNAL] = "STOPSIGNAL",
	[DF_VOLUME] = "VOLUME",	    [DF_MAINTAINER] = "MAINTAINER",
};

const char *df_kind_name(enum df_kind k)
{
	return (size_t)k < ELEMENTSOF(kind_names) ? kind_names[k] : "?";
}

static void instr_free(struct df_instr *in)
{
	free(in->raw);
	for (size_t i = 0; i < in->n_args; i++)
		free(in->args[i]);
	free(in->args);
	for (size_t i = 0; i < in->n_flags; i++) {
		free(in->flags[i].name);
		free(in->flags[i].value);
	}
	free(in->flags);
}

void dockerfile_free(struct dockerfile *df)
{
	for (size_t i = 0; i < df->n; i++)
		instr_free(&df->v[i]);
	free(df->v);
	free(df->name);
	*df = (struct dockerfile){0};
}

const char *df_flag(const struct df_instr *in, const char *name)
{
	for (size_t i = 0; i < in->n_flags; i++)
		if (streq(in->flags[i].name, name))
			return in->flags[i].value;
	return NULL;
}

static void push_arg(struct df_instr *in, const char *s, size_t n)
{
	in->args = xreallocarray(in->args, in->n_args + 2, sizeof(char *));
	in->args[in->n_args++] = xstrndup(s, n);
	in->args[in->n_args] = NULL;
}

/* Which flags each instruction takes; a flag not listed is an error. */
static bool flag_allowed(enum df_kind k, const char *name)
{
	static const struct {
		enum df_kind kind;
		const char *name;
	} allowed[] = {
		{DF_FROM, "platform"},	     {DF_COPY, "from"},		  {DF_COPY, "chown"},
		{DF_COPY, "chmod"},	     {DF_COPY, "link"},		  {DF_ADD, "chown"},
		{DF_ADD, "chmod"},	     {DF_ADD, "link"},		  {DF_ADD, "checksum"},
		{DF_RUN, "network"},	     {DF_HEALTHCHECK, "interval"}, {DF_HEALTHCHECK, "timeout"},
		{DF_HEALTHCHECK, "retries"}, {DF_HEALTHCHECK, "start-period"},
		{DF_HEALTHCHECK, "start-interval"},
	};
	for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
		if (allowed[i].kind == k && streq(allowed[i].name, name))
			return true;
	return false;
}

static bool takes_exec_form(enum df_kind k)
{
	return k == DF_RUN || k == DF_CMD || k == DF_ENTRYPOINT || k == DF_SHELL ||
	       k == DF_VOLUME || k == DF_COPY || k == DF_ADD || k == DF_HEALTHCHECK;
}

/* Parse the arguments text of one instruction into in. */
static int parse_args(const struct dockerfile *df, struct df_instr *in, const char *text,
		      unsigned argcol, struct cairn_error *err)
{
	const char *p = text;
	/* --flags, at the start only */
	while (p[0] == '-' && p[1] == '-' && p[2] && !isspace((unsigned char)p[2])) {
		const char *end = p;
		while (*end && !isspace((unsigned char)*end))
			end++;
		_cleanup_free_ char *tok = xstrndup(p + 2, (size_t)(end - p - 2));
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = 0;
		if (!flag_allowed(in->kind, tok))
			return error_set(err, EINVAL, "%s:%u:%u: %s does not take --%s", df->name,
					 in->line, argcol + (unsigned)(p - text),
					 df_kind_name(in->kind), tok);
		in->flags = xreallocarray(in->flags, in->n_flags + 1, sizeof(*in->flags));
		in->flags[in->n_flags++] = (struct df_flag){xstrdup(tok), xstrdup(eq ? eq + 1 : "")};
		p = end;
		while (isspace((unsigned char)*p))
			p++;
		if (in->kind == DF_HEALTHCHECK && !*p)
			break;
	}
	in->raw = xstrdup(p);
	/* trailing whitespace is not part of the arguments */
	size_t n = strlen(in->raw);
	while (n && isspace((unsigned char)in->raw[n - 1]))
		in->raw[--n] = 0;
	const char *body = in->raw;
	if (in->kind == DF_HEALTHCHECK) {
		/* HEALTHCHECK NONE | HEALTHCHECK [flags] CMD ... */
		if (strcasecmp(body, "NONE") == 0) {
			push_arg(in, "NONE", 4);
			return 0;
		}
		if (strncasecmp(body, "CMD", 3) != 0 || (body[3] && !isspace((unsigned char)body[3])))
			return error_set(err, EINVAL, "%s:%u:%u: HEALTHCHECK expects CMD or NONE",
					 df->name, in->line, argcol);
		body += 3;
		while (isspace((unsigned char)*body))
			body++;
		push_arg(in, "CMD", 3);
	}
	if (takes_exec_form(in->kind) && body[0] == '[') {
		json_error_t jerr;
		json_t *arr = json_loads(body, 0, &jerr);
		bool ok = json_is_array(arr) && json_array_size(arr) > 0;
		size_t i;
		json_t *x;
		json_array_foreach(arr, i, x) ok = ok && json_is_string(x);
		if (ok) {
			in->exec_form = true;
			json_array_foreach(arr, i, x)
				push_arg(in, json_string_value(x), json_string_length(x));
			json_decref(arr);
			return 0;
		}
		json_decref(arr);
		if (in->kind == DF_SHELL)
			return error_set(err, EINVAL,
					 "%s:%u:%u: SHELL expects a JSON array of strings, like "
					 "[\"/bin/sh\", \"-c\"]",
					 df->name, in->line, argcol);
		/* RUN [ ... that is not JSON is shell form, as in Docker */
	}
	if (in->kind == DF_SHELL)
		return error_set(err, EINVAL, "%s:%u:%u: SHELL expects a JSON array of strings",
				 df->name, in->line, argcol);
	if (in->kind == DF_RUN || in->kind == DF_CMD || in->kind == DF_ENTRYPOINT ||
	    in->kind == DF_HEALTHCHECK || in->kind == DF_ENV || in->kind == DF_LABEL ||
	    in->kind == DF_ARG || in->kind == DF_MAINTAINER) {
		if (*body)
			push_arg(in, body, strlen(body));
	} else {
		for (const char *q = body; *q;) {
			while (isspace((unsigned char)*q))
				q++;
			const char *s = q;
			while (*q && !isspace((unsigned char)*q))
				q++;
			if (q > s)
				push_arg(in, s, (size_t)(q - s));
		}
	}
	/* How many arguments each takes. */
	size_t min = 1, max = SIZE_MAX;
	const char *usage = "an argument";
	switch (in->kind) {
	case DF_FROM:
		usage = "IMAGE [AS NAME]";
		max = 3;
		if (in->n_args == 2 || (in->n_args == 3 && strcasecmp(in->args[1], "AS") != 0))
			min = 4; /* force the error below */
		break;
	case DF_COPY:
	case DF_ADD:
		min = 2;
		usage = "SOURCE... DEST";
		break;
	case DF_WORKDIR:
	case DF_USER:
	case DF_STOPSIGNAL:
		max = 1;
		usage = "one argument";
		break;
	case DF_CMD:
	case DF_ENTRYPOINT:
		usage = "a command";
		break;
	default:
		break;
	}
	if (in->n_args < min || in->n_args > max)
		return error_set(err, EINVAL, "%s:%u:%u: %s expects %s", df->name, in->line, argcol,
				 df_kind_name(in->kind), usage);
	return 0;
}

/* Parser directives: "# escape=`" lines before anything else. */
static const char *parse_directives(struct dockerfile *df, const char *p, const char *end,
				    unsigned *line, struct cairn_error *err, int *r)
{
	*r = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *q = p;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		if (q == le || *q != '#')
			break;
		q++;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		const char *k = q;
		while (q < le && (isalpha((unsigned char)*q)))
			q++;
		size_t klen = (size_t)(q - k);
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		if (klen == 0 || q == le || *q != '=')
			break; /* an ordinary comment ends the directives */
		q++;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		const char *v = q;
		const char *ve = le;
		while (ve > v && isspace((unsigned char)ve[-1]))
			ve--;
		if (klen == 6 && strncasecmp(k, "escape", 6) == 0) {
			if (ve - v != 1 || (*v != '\\' && *v != '`')) {
				*r = error_set(err, EINVAL, "%s:%u: escape must be \\ or `", df->name,
					       *line);
				return p;
			}
			df->escape = *v;
		} else if (!(klen == 6 && strncasecmp(k, "syntax", 6) == 0) &&
			   !(klen == 5 && strncasecmp(k, "check", 5) == 0)) {
			break; /* unknown directives are comments */
		}
		(*line)++;
		p = nl ? nl + 1 : end;
	}
	return p;
}

int dockerfile_parse(const char *name, const char *text, size_t len, struct dockerfile *ret,
		     struct cairn_error *err)
{
	struct dockerfile df = {.name = xstrdup(name), .escape = '\\'};
	if (memchr(text, 0, len)) {
		int r = error_set(err, EINVAL, "%s: not a text file (it has NUL bytes)", name);
		dockerfile_free(&df);
		return r;
	}
	const char *p = text, *end = text + len;
	unsigned line = 1;
	int r;
	p = parse_directives(&df, p, end, &line, err, &r);
	if (r < 0) {
		dockerfile_free(&df);
		return r;
	}
	size_t cap = 0;
	while (p < end) {
		/* one logical line: from here to an end of line not escaped */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *q = p;
		while (q < le && isspace((unsigned char)*q))
			q++;
		if (q == le || *q == '#') {
			line++;
			p = nl ? nl + 1 : end;
			continue;
		}
		unsigned start_line = line, col = (unsigned)(q - p) + 1;
		struct buf logical = {0};
		for (;;) {
			const char *e = le;
			while (e > q && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
				e--;
			bool cont = e > q && e[-1] == df.escape;
			buf_put(&logical, q, (size_t)(cont ? e - 1 - q : e - q));
			line++;
			p = nl ? nl + 1 : end;
			if (!cont || p >= end)
				break;
			/* skip comment lines inside a continuation */
			for (;;) {
				nl = memchr(p, '\n', (size_t)(end - p));
				le = nl ? nl : end;
				q = p;
				while (q < le && isspace((unsigned char)*q))
					q++;
				if (q < le && *q == '#' && p < end) {
					line++;
					p = nl ? nl + 1 : end;
					if (p >= end)
						break;
					continue;
				}
				break;
			}
			if (p >= end)
				break;
			q = p;
		}
		const char *s = logical.data ? logical.data : "";
		const char *kw = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		size_t kwlen = (size_t)(s - kw);
		while (*s && isspace((unsigned char)*s))
			s++;
		int kind = -1;
		for (size_t i = 0; i < ELEMENTSOF(kind_names); i++)
			if (strlen(kind_names[i]) == kwlen && strncasecmp(kw, kind_names[i], kwlen) == 0)
				kind = (int)i;
		if (kind < 0) {
			r = error_set(err, EINVAL,
				      "%s:%u:%u: unknown instruction \"%.*s\" (expected FROM, RUN, COPY, "
				      "ADD, ENV, ARG, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, LABEL, "
				      "HEALTHCHECK, SHELL, STOPSIGNAL or VOLUME)",
				      name, start_line, col, (int)(kwlen > 40 ? 40 : kwlen), kw);
			buf_free(&logical);
			dockerfile_free(&df);
			return r;
		}
		df.v = xgrow(df.v, &cap, df.n + 1, sizeof(*df.v));
		struct df_instr *in = &df.v[df.n++];
		*in = (struct df_instr){.kind = (enum df_kind)kind, .line = start_line, .column = col};
		if (!*s && kind != DF_HEALTHCHECK)
			r = error_set(err, EINVAL, "%s:%u:%u: %s expects arguments", name, start_line,
				      col, kind_names[kind]);
		else
			r = parse_args(&df, in, s, col + (unsigned)(s - logical.data), err);
		buf_free(&logical);
		if (r < 0) {
			dockerfile_free(&df);
			return r;
		}
		if (df.n == 1 && kind != DF_FROM && kind != DF_ARG) {
			r = error_set(err, EINVAL, "%s:%u:%u: the first instruction must be FROM (or ARG)",
				      name, start_line, col);
			dockerfile_free(&df);
			return r;
		}
	}
	if (df.n == 0) {
		r = error_set(err, EINVAL, "%s: no instructions (a Dockerfile starts with FROM)", name);
		dockerfile_free(&df);
		return r;
	}
	bool from = false;
	for (size_t i = 0; i < df.n; i++)
		from = from || df.v[i].kind == DF_FROM;
	if (!from) {
		r = error_set(err, EINVAL, "%s: no FROM instruction", name);
		dockerfile_free(&df);
		return r;
	}
	*ret = df;
	return 0;
}

/* --- expansion ------------------------------------------------------------ */

static bool name_char(char c, bool first)
{
	return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

static int expand_into(struct buf *out, const char *w, char escape, df_lookup_fn lookup, void *u,
		       unsigned depth, struct cairn_error *err)
{
	if (depth > 16)
		return error_set(err, EINVAL, "variables nested too deep in \"%.40s\"", w);
	char quote = 0;
	for (const char *p = w; *p;) {
		char c = *p;
		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
			else
				buf_putc(out, c);
			p++;
			continue;
		}
		if (c == escape && p[1]) {
			/* the escape keeps the next character as it is */
			buf_putc(out, p[1]);
			p += 2;
			continue;
		}
		if (c == '\'' && !quote) {
			quote = '\'';
			p++;
			continue;
		}
		if (c == '"') {
			quote = quote == '"' ? 0 : '"';
			p++;
			continue;
		}
		if (c != '$') {
			buf_putc(out, c);
			p++;
			continue;
		}
		if (p[1] == '{') {
			const char *s = p + 2;
			const char *n = s;
			while (name_char(*n, n == s))
				n++;
			if (n == s)
				return error_set(err, EINVAL, "bad variable reference in \"%.60s\"", w);
			_cleanup_free_ char *name = xstrndup(s, (size_t)(n - s));
			const char *val = lookup(name, u);
			if (*n == '}') {
				if (val)
					buf_puts(out, val);
				p = n + 1;
				continue;
			}
			if (n[0] != ':' || (n[1] != '-' && n[1] != '+'))
				return error_set(err, EINVAL,
						 "bad variable reference in \"%.60s\": expected }, :- "
						 "or :+ after %s",
						 w, name);
			/* the word runs to the matching } */
			const char *ws = n + 2, *we = ws;
			int level = 1;
			while (*we && level) {
				if (*we == escape && we[1]) {
					we += 2;
					continue;
				}
				if (*we == '{')
					level++;
				else if (*we == '}')
					level--;
				if (level)
					we++;
			}
			if (!*we)
				return error_set(err, EINVAL, "unterminated ${ in \"%.60s\"", w);
			_cleanup_free_ char *word = xstrndup(ws, (size_t)(we - ws));
			bool set = val && *val;
			if (n[1] == '-') {
				if (set)
					buf_puts(out, val);
				else if (expand_into(out, word, escape, lookup, u, depth + 1, err) < 0)
					return -EINVAL;
			} else if (set && expand_into(out, word, escape, lookup, u, depth + 1, err) < 0)
				return -EINVAL;
			p = we + 1;
			continue;
		}
		if (name_char(p[1], true)) {
			const char *s = p + 1, *n = s;
			while (name_char(*n, n == s))
				n++;
			_cleanup_free_ char *name = xstrndup(s, (size_t)(n - s));
			const char *val = lookup(name, u);
			if (val)
				buf_puts(out, val);
			p = n;
			continue;
		}
		buf_putc(out, '$');
		p++;
	}
	if (quote)
		return error_set(err, EINVAL, "unterminated %c quote in \"%.60s\"", quote, w);
	return 0;
}

char *df_expand(const char *word, char escape, df_lookup_fn lookup, void *userdata,
		struct cairn_error *err)
{
	struct buf out = {0};
	if (expand_into(&out, word, escape, lookup, userdata, 0, err) < 0) {
		buf_free(&out);
		return NULL;
	}
	return buf_steal(&out);
}

/* --- key=value pairs ---------------------------------------------------- */

void df_pairs_free(struct df_pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

int df_pairs(const struct df_instr *in, char escape, struct df_pair **ret, size_t *ret_n,
	     struct cairn_error *err)
{
	const char *s = in->raw;
	struct df_pair *v = NULL;
	size_t n = 0;
	const char *first_eq = NULL;
	for (const char *q = s; *q && !isspace((unsigned char)*q); q++)
		if (*q == '=') {
			first_eq = q;
			break;
		}
	if (!first_eq && in->kind != DF_ARG) {
		/* legacy: "ENV key value" */
		const char *k = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		const char *ke = s;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			return error_set(err, EINVAL, "%u:%u: %s expects KEY=VALUE or KEY VALUE",
					 in->line, in->column, df_kind_name(in->kind));
		v = xcalloc(1, sizeof(*v));
		v[0] = (struct df_pair){xstrndup(k, (size_t)(ke - k)), xstrdup(s)};
		*ret = v;
		*ret_n = 1;
		return 0;
	}
	while (*s) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		const char *k = s;
		while (*s && *s != '=' && !isspace((unsigned char)*s))
			s++;
		_cleanup_free_ char *key = xstrndup(k, (size_t)(s - k));
		if (!*key || (*s != '=' && in->kind != DF_ARG)) {
			df_pairs_free(v, n);
			return error_set(err, EINVAL, "%u:%u: %s expects KEY=VALUE pairs, got \"%.40s\"",
					 in->line, in->column, df_kind_name(in->kind), k);
		}
		char *value = NULL;
		if (*s == '=') {
			s++;
			const char *vs = s;
			char quote = 0;
			while (*s && (quote || !isspace((unsigned char)*s))) {
				if (*s == escape && s[1] && quote != '\'') {
					s += 2;
					continue;
				}
				if (!quote && (*s == '"' || *s == '\''))
					quote = *s;
				else if (quote && *s == quote)
					quote = 0;
				s++;
			}
			if (quote) {
				df_pairs_free(v, n);
				return error_set(err, EINVAL, "%u:%u: unterminated %c quote", in->line,
						 in->column, quote);
			}
			value = xstrndup(vs, (size_t)(s - vs));
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = (struct df_pair){TAKE_PTR(key), value};
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
