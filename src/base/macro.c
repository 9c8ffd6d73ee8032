/* The xmalloc family: allocation that aborts cleanly on out-of-memory, with
 * overflow-checked sizes. Used by the CLI, the daemon and the router. */
#include "macro.h"

#include <stdarg.h>
#include <stdio.h>

void oom(void)
{
	static const char msg[] = "cairn: out of memory\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		oom();
	return xrealloc(p, total);
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return s;
}

void *xgrow(void *array, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return array;
	size_t n = *cap ? *cap : 16;
	while (n < need) {
		if (__builtin_mul_overflow(n, 2, &n))
			oom();
	}
	array = xreallocarray(array, n, size);
	*cap = n;
	return array;
}

#include <time.h>

void trace_phase(const char *what, int64_t start_ns)
{
	static int enabled = -1;
	if (enabled < 0)
		enabled = getenv("CAIRN_TRACE") != NULL;
	if (!enabled)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	fprintf(stderr, "cairn-trace: %-24s %8.2f ms\n", what, (double)(now - start_ns) / 1e6);
}
