/* libFuzzer target for the Dockerfile parser and the word expansion
 * (src/build/dockerfile.c): any input either parses into instructions whose
 * words expand and whose KEY=VALUE pairs split, or fails with a message. */
#include "../../src/build/dockerfile.h"

#include <stdio.h>

static const char *lookup(const char *name, void *u)
{
	(void)u;
	if (name[0] == 'A')
		return "alpha";
	if (name[0] == 'E')
		return "";
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dockerfile df = {0};
	struct cairn_error err = {0};
	if (dockerfile_parse("Dockerfile", (const char *)data, size, &df, &err) < 0) {
		if (!err.msg)
			abort(); /* a failure always says why */
		error_clear(&err);
		return 0;
	}
	for (size_t i = 0; i < df.n; i++) {
		const struct df_instr *in = &df.v[i];
		if (in->line == 0 || in->column == 0 || !in->raw)
			abort();
		for (size_t k = 0; k < in->n_args; k++) {
			char *w = df_expand(in->args[k], df.escape, lookup, NULL, &err);
			if (!w && !err.msg)
				abort();
			free(w);
			error_clear(&err);
		}
		if (in->kind == DF_ENV || in->kind == DF_LABEL || in->kind == DF_ARG) {
			struct df_pair *p;
			size_t n;
			if (df_pairs(in, df.escape, &p, &n, &err) == 0)
				df_pairs_free(p, n);
			else if (!err.msg)
				abort();
			error_clear(&err);
		}
	}
	dockerfile_free(&df);
	return 0;
}
