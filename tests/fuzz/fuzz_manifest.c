/* libFuzzer target for the manifest decoder (image_manifest_decode): the image
 * id is the hash of the canonical bytes, so an accepted manifest must encode
 * to bytes that decode and encode again to exactly the same bytes. */
#include "../../src/image/image.h"

#include <stdio.h>

static void fail(const char *what, const char *a, size_t alen, const char *b, size_t blen)
{
	fprintf(stderr, "fuzz_manifest: %s\n%.*s\n%.*s\n", what,
		(int)(alen > 4000 ? 4000 : alen), a ? a : "", (int)(blen > 4000 ? 4000 : blen),
		b ? b : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cairn_error err = {0};
	struct image_manifest m = {0};
	int r = image_manifest_decode((const char *)data, size, &m, &err);
	if (r < 0) {
		if (!err.msg)
			fail("failure without an error message", NULL, 0, NULL, 0);
		error_clear(&err);
		return 0;
	}
	if (!json_is_object(m.config))
		fail("decoded config is not an object", NULL, 0, NULL, 0);

	char *enc;
	size_t len;
	image_manifest_encode(&m, &enc, &len);
	struct image_manifest back = {0};
	if (image_manifest_decode(enc, len, &back, &err) < 0)
		fail("canonical encoding does not decode", error_message(&err),
		     strlen(error_message(&err)), enc, len);
	if (!digest_eq(&m.tree, &back.tree))
		fail("tree digest changed", enc, len, NULL, 0);
	char *enc2;
	size_t len2;
	image_manifest_encode(&back, &enc2, &len2);
	if (len2 != len || memcmp(enc, enc2, len) != 0)
		fail("canonical encoding does not round-trip", enc, len, enc2, len2);
	free(enc);
	free(enc2);
	image_manifest_free(&back);
	image_manifest_free(&m);
	return 0;
}
