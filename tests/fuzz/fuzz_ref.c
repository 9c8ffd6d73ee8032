/* libFuzzer target for image references (image_ref_parse): whatever it
 * accepts, the "name:tag" it returns must parse again to the same name and
 * tag, since that is how the CLI prints and stores references. */
#include "../../src/image/image.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *ref = xmalloc(size + 1);
	memcpy(ref, data, size);
	ref[size] = 0;

	struct cairn_error err = {0};
	char *name = NULL, *tag = NULL;
	int r = image_ref_parse(ref, &name, &tag, &err);
	if (r < 0) {
		if (!err.msg || name || tag) {
			fprintf(stderr, "fuzz_ref: bad failure for \"%s\"\n", ref);
			abort();
		}
		error_clear(&err);
		free(ref);
		return 0;
	}
	if (!name || !tag || !*name || !*tag) {
		fprintf(stderr, "fuzz_ref: empty result for \"%s\"\n", ref);
		abort();
	}

	char *again = xasprintf("%s:%s", name, tag);
	char *name2 = NULL, *tag2 = NULL;
	if (image_ref_parse(again, &name2, &tag2, &err) < 0) {
		fprintf(stderr, "fuzz_ref: \"%s\" parsed as \"%s\", which does not parse: %s\n",
			ref, again, error_message(&err));
		abort();
	}
	if (!streq(name, name2) || !streq(tag, tag2)) {
		fprintf(stderr, "fuzz_ref: \"%s\" -> \"%s\" -> name \"%s\" tag \"%s\"\n", ref,
			again, name2, tag2);
		abort();
	}
	free(name2);
	free(tag2);
	free(again);
	free(name);
	free(tag);
	free(ref);
	return 0;
}
