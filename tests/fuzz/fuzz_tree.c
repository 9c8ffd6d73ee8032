/* libFuzzer target for the tree decoder (tree_decode), which reads tree objects
 * from the store: an accepted input must be a valid tree whose canonical
 * encoding decodes again to the same bytes. */
#include "../../src/store/tree.h"

#include <stdio.h>

static void fail(const char *what, const char *a, size_t alen, const char *b, size_t blen)
{
	fprintf(stderr, "fuzz_tree: %s\n%.*s\n%.*s\n", what, (int)(alen > 4000 ? 4000 : alen),
		a ? a : "", (int)(blen > 4000 ? 4000 : blen), b ? b : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cairn_error err = {0};
	struct tree t = {0};
	int r = tree_decode((const char *)data, size, &t, &err);
	if (r < 0) {
		if (!err.msg)
			fail("failure without an error message", NULL, 0, NULL, 0);
		error_clear(&err);
		return 0;
	}
	if (tree_validate(&t, &err) < 0)
		fail("decoded tree is invalid", error_message(&err), strlen(error_message(&err)),
		     NULL, 0);

	char *enc;
	size_t len;
	tree_encode(&t, &enc, &len);
	struct tree back = {0};
	if (tree_decode(enc, len, &back, &err) < 0)
		fail("canonical encoding does not decode", error_message(&err),
		     strlen(error_message(&err)), enc, len);
	char *enc2;
	size_t len2;
	tree_encode(&back, &enc2, &len2);
	if (len2 != len || memcmp(enc, enc2, len) != 0)
		fail("canonical encoding does not round-trip", enc, len, enc2, len2);
	free(enc);
	free(enc2);
	tree_free(&back);
	tree_free(&t);
	return 0;
}
