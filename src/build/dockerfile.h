/* Dockerfiles: the parser (instructions with their line and column, exec or
 * shell form, --flags, continuation lines, comments, the escape directive)
 * and Docker's variable expansion ($VAR, ${VAR}, ${VAR:-default},
 * ${VAR:+alternative}). Building from the parsed file is src/build/build.c. */
#pragma once

#include "../base/error.h"

enum df_kind {
	DF_FROM,
	DF_RUN,
	DF_COPY,
	DF_ADD,
	DF_ENV,
	DF_ARG,
	DF_WORKDIR,
	DF_USER,
	DF_EXPOSE,
	DF_CMD,
	DF_ENTRYPOINT,
	DF_LABEL,
	DF_HEALTHCHECK,
	DF_SHELL,
	DF_STOPSIGNAL,
	DF_VOLUME,
	DF_MAINTAINER,
};

struct df_flag {
	char *name; /* without "--" */
	char *value;
};

struct df_instr {
	enum df_kind kind;
	unsigned line, column; /* of the keyword, 1-based */
	char *raw;	       /* the arguments after flags, continuations joined */
	bool exec_form;	       /* a JSON array of strings */
	char **args;	       /* exec form: the strings; else whitespace-split words */
	size_t n_args;
	struct df_flag *flags;
	size_t n_flags;
};

struct dockerfile {
	char *name; /* for messages */
	struct df_instr *v;
	size_t n;
	char escape; /* '\\' or '`' */
};

/* Parse text (len bytes) of the file called name. On error, err reads
 * "name:line:column: what was expected". */
int dockerfile_parse(const char *name, const char *text, size_t len, struct dockerfile *ret,
		     struct cairn_error *err);
void dockerfile_free(struct dockerfile *df);
const char *df_kind_name(enum df_kind k);
/* The value of flag name, or NULL. */
const char *df_flag(const struct df_instr *in, const char *name);

/* Look up a variable; NULL when unset. */
typedef const char *(*df_lookup_fn)(const char *name, void *userdata);

/* Expand $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word} in word (escape char before
 * '$' keeps it literal). Returns a new string, or NULL with err set on a
 * malformed reference. */
char *df_expand(const char *word, char escape, df_lookup_fn lookup, void *userdata,
		struct cairn_error *err);

/* Split "k=v k2="v 2"" (ENV, LABEL, ARG) into pairs, unquoting; the legacy
 * "ENV key value" form gives one pair. ARG allows a key without '='
 * (value NULL). */
struct df_pair {
	char *key;
	char *value;
};
int df_pairs(const struct df_instr *in, char escape, struct df_pair **ret, size_t *ret_n,
	     struct cairn_error *err);
void df_pairs_free(struct df_pair *v, size_t n);
