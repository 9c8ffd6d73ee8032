/* Loading libarchive at run time (see archive_api.h). */
#define ARCHIVE_API_IMPL
#include "archive_api.h"

#include <dlfcn.h>

struct archive_api archive_api;

int archive_api_load(struct cairn_error *err)
{
	static int loaded = 0; /* 1 ok, -errno failed */
	if (loaded == 1)
		return 0;
	void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return error_set(err, ELIBACC, "cannot load libarchive.so.13 (%s); install libarchive13",
				 dlerror());
#define ARCHIVE_API_LOAD(f)                                                                        \
	archive_api.f = (__typeof__(f) *)dlsym(h, #f);                                             \
	if (!archive_api.f)                                                                        \
		return error_set(err, ELIBACC, "libarchive.so.13 has no %s", #f);
	ARCHIVE_API_FUNCS(ARCHIVE_API_LOAD)
#undef ARCHIVE_API_LOAD
	loaded = 1;
	return 0;
}
