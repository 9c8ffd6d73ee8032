/* struct cairn_error: set, wrap with context, clear. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int error_set(struct cairn_error *err, int code, const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (!err)
		return -code;
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	free(err->msg);
	err->msg = msg;
	err->code = code;
	return -code;
}

int error_wrap(struct cairn_error *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	if (err->code == 0)
		err->code = EIO;
	va_list ap;
	char *ctx, *msg;
	va_start(ap, fmt);
	int r = vasprintf(&ctx, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	msg = xasprintf("%s: %s", ctx, err->msg ? err->msg : strerror(err->code));
	free(ctx);
	free(err->msg);
	err->msg = msg;
	return -err->code;
}

void error_clear(struct cairn_error *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->code = 0;
}
