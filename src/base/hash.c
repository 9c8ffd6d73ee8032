/* SHA-256 through OpenSSL's libcrypto (SHA-NI accelerated where present).
 *
 * This uses the SHA256_* functions rather than EVP: through EVP, OpenSSL 3
 * loads its default provider on the first digest, 0.4 ms that every command
 * (cairn run included) would pay; the SHA256_* functions reach the same
 * assembly without it. They are deprecated in OpenSSL 3 but present and
 * maintained; this file is the only user. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <openssl/sha.h>

struct hasher {
	SHA256_CTX ctx;
};

struct hasher *hasher_new(void)
{
	struct hasher *h = xmalloc(sizeof(*h));
	if (SHA256_Init(&h->ctx) != 1)
		oom();
	return h;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
	if (len && SHA256_Update(&h->ctx, data, len) != 1)
		oom();
}

void hasher_final(struct hasher *h, struct digest *ret)
{
	if (SHA256_Final(ret->b, &h->ctx) != 1 || SHA256_Init(&h->ctx) != 1)
		oom();
}

struct hasher *hasher_free(struct hasher *h)
{
	free(h);
	return NULL;
}

void digest_buffer(const void *data, size_t len, struct digest *ret)
{
	/* Not SHA256(): in OpenSSL 3 it goes through EVP and its providers. */
	SHA256_CTX ctx;
	if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, data, len) != 1 ||
	    SHA256_Final(ret->b, &ctx) != 1)
		oom();
}
int digest_fd(int fd, struct digest *ret, uint64_t *ret_size)
{
	_cleanup_(hasher_freep) struct hasher *h = hasher_new();
	_cleanup_free_ uint8_t *buf = xmalloc(1 << 17);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 17);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		hasher_update(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	hasher_final(h, ret);
	if (ret_size)
		*ret_size = total;
	return 0;
}

static const char hexchars[] = "0123456789abcdef";

void digest_to_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1])
{
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		out[2 * i] = hexchars[d->b[i] >> 4];
		out[2 * i + 1] = hexchars[d->b[i] & 15];
	}
	out[DIGEST_HEX_LEN] = 0;
}

void digest_to_string(const struct digest *d, char out[DIGEST_STR_LEN])
{
	memcpy(out, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1);
	digest_to_hex(d, out + sizeof(DIGEST_PREFIX) - 1);
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int digest_from_hex(const char *hex, struct digest *ret)
{
	struct digest d;
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = unhex(hex[2 * i]);
		if (hi < 0)
			return -EINVAL;
		int lo = unhex(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		d.b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[DIGEST_HEX_LEN] != 0)
		return -EINVAL;
	*ret = d;
	return 0;
}

int digest_from_string(const char *s, struct digest *ret)
{
	if (!startswith(s, DIGEST_PREFIX))
		return -EINVAL;
	return digest_from_hex(s + sizeof(DIGEST_PREFIX) - 1, ret);
}
