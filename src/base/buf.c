/* Growable buffers and canonical JSON string encoding. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need;
	if (__builtin_add_overflow(b->len, extra + 1, &need))
		oom();
	b->data = xgrow(b->data, &b->cap, need, 1);
}

void buf_put(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
}

void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = 0;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	buf_put(b, s, (size_t)n);
	free(s);
}

void buf_put_u64(struct buf *b, uint64_t v)
{
	char tmp[21];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_put(b, tmp + i, sizeof(tmp) - i);
}

void buf_put_json_string(struct buf *b, const char *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	buf_reserve(b, len + 2);
	buf_putc(b, '"');
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_put(b, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"':
			buf_put(b, "\\\"", 2);
			break;
		case '\\':
			buf_put(b, "\\\\", 2);
			break;
		case '\b':
			buf_put(b, "\\b", 2);
			break;
		case '\f':
			buf_put(b, "\\f", 2);
			break;
		case '\n':
			buf_put(b, "\\n", 2);
			break;
		case '\r':
			buf_put(b, "\\r", 2);
			break;
		case '\t':
			buf_put(b, "\\t", 2);
			break;
		default: {
			char esc[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
			buf_put(b, esc, 6);
		}
		}
	}
	buf_put(b, s + start, len - start);
	buf_putc(b, '"');
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){0};
}

char *buf_steal(struct buf *b)
{
	if (!b->data)
		buf_reserve(b, 0), b->data[0] = 0;
	char *d = b->data;
	*b = (struct buf){0};
	return d;
}

bool utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

char *hex_encode(const void *data, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	const uint8_t *p = data;
	char *out = xmalloc(len * 2 + 1);
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexd[p[i] >> 4];
		out[2 * i + 1] = hexd[p[i] & 15];
	}
	out[len * 2] = 0;
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hex_decode(const char *hex, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(hex);
	if (n % 2)
		return -EINVAL;
	uint8_t *out = xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return -EINVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret = out;
	*ret_len = n / 2;
	return 0;
}
