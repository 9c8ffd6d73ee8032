/* Shared bits of the cmocka unit tests: includes and a scratch directory
 * helper. Each test file covers one module. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/base/fs.h"

#include <stdio.h>

/* A fresh directory under $TMPDIR (or /var/tmp), removed by scratch_free(). */
static inline char *scratch_new(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/cairn-unit.XXXXXX", base && *base ? base : "/var/tmp");
	if (!mkdtemp(tmpl))
		fail_msg("mkdtemp: %s", strerror(errno));
	return tmpl;
}

static inline void scratch_free(char *dir)
{
	assert_int_equal(rm_rf_at(AT_FDCWD, dir), 0);
	free(dir);
}

static inline void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}
