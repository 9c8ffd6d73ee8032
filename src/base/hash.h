/* SHA-256 digests (OpenSSL EVP): one-shot, streaming, and hex conversion.
 * A digest names every object in the store: "sha256:" + 64 lowercase hex. */
#pragma once

#include "macro.h"

#define DIGEST_LEN 32
#define DIGEST_HEX_LEN 64
#define DIGEST_PREFIX "sha256:"
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STR_LEN (sizeof(DIGEST_PREFIX) - 1 + DIGEST_HEX_LEN + 1)

struct digest {
	uint8_t b[DIGEST_LEN];
};

struct hasher; /* opaque */

struct hasher *hasher_new(void);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Finish into ret and reset h so it can hash again. */
void hasher_final(struct hasher *h, struct digest *ret);
struct hasher *hasher_free(struct hasher *h);
static inline void hasher_freep(struct hasher **h)
{
	hasher_free(*h);
}

void digest_buffer(const void *data, size_t len, struct digest *ret);

/* Hash everything readable from fd (from its current offset). -errno on error. */
int digest_fd(int fd, struct digest *ret, uint64_t *ret_size);

/* 64 lowercase hex chars + NUL into out (65 bytes). */
void digest_to_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1]);
/* "sha256:<hex>" into out (DIGEST_STR_LEN bytes). */
void digest_to_string(const struct digest *d, char out[DIGEST_STR_LEN]);
/* Parse 64 hex chars (exactly; case-insensitive). -EINVAL on anything else. */
int digest_from_hex(const char *hex, struct digest *ret);
/* Parse "sha256:<64 hex>". -EINVAL on anything else. */
int digest_from_string(const char *s, struct digest *ret);

static inline bool digest_eq(const struct digest *a, const struct digest *b)
{
	return memcmp(a->b, b->b, DIGEST_LEN) == 0;
}
