/* A growable byte buffer, and the canonical JSON string encoder used for trees
 * and manifests (the same escaping jansson uses: \" \\ \b \f \n \r \t, other
 * control bytes as \u00XX, everything else verbatim). */
#pragma once

#include "macro.h"

struct buf {
	char *data; /* always NUL-terminated when len > 0 or after buf_putc */
	size_t len;
	size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_put(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
_printf_(2, 3) void buf_printf(struct buf *b, const char *fmt, ...);
void buf_put_u64(struct buf *b, uint64_t v);
/* Append s (len bytes) as a quoted JSON string. The caller ensures s is valid
 * UTF-8 (see utf8_valid). */
void buf_put_json_string(struct buf *b, const char *s, size_t len);
void buf_free(struct buf *b);
/* Hand the data out; b becomes empty. Never NULL. */
char *buf_steal(struct buf *b);

/* True when s[0..len) is well-formed UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

/* Lowercase hex of data into a new string. */
char *hex_encode(const void *data, size_t len);
/* Decode hex (even length) into a new buffer; -EINVAL on a bad digit. */
int hex_decode(const char *hex, uint8_t **ret, size_t *ret_len);
