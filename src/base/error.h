/* The error object every user-visible operation fills: an errno plus a message
 * that grows context on the way up ("importing x.tar: entry ../a: escapes"). */
#pragma once

#include "macro.h"

struct cairn_error {
	int code;  /* positive errno */
	char *msg; /* owned, NULL when no error */
};

/* Set err (if non-NULL) to code and a formatted message, replacing any earlier
 * one. Returns -code so callers can write "return error_set(err, EINVAL, ...)". */
_printf_(3, 4) int error_set(struct cairn_error *err, int code, const char *fmt, ...);

/* Prefix the message in err with formatted context: "context: old message".
 * Returns -err->code (or -EIO if err holds no error). */
_printf_(2, 3) int error_wrap(struct cairn_error *err, const char *fmt, ...);

/* Release the message; the error becomes empty. Accepts NULL. */
void error_clear(struct cairn_error *err);

static inline const char *error_message(const struct cairn_error *err)
{
	return err && err->msg ? err->msg : "unknown error";
}
