/* Building an image from a Dockerfile: stages, RUN steps in build instances
 * with a writable layer, COPY and ADD from the context or other stages, the
 * image config, a step cache, and provenance. The result is an image in the
 * store whose id depends only on the Dockerfile, the context's content and
 * the base images. */
#pragma once

#include "../base/error.h"
#include "../base/hash.h"
#include "../runtime/runtime.h"

#include <signal.h>

struct store;
struct state;

struct build_step_info {
	unsigned index, total;		   /* 1-based, over the steps that run */
	const char *stage;		   /* the stage's name or number */
	unsigned stage_step, stage_steps; /* within the stage */
	unsigned line;			   /* in the Dockerfile */
	const char *text;		   /* the instruction as written (one line) */
};

/* How a step went: cached (no work), done (took time), or a config step. */
enum build_step_outcome {
	STEP_CACHED,
	STEP_DONE,
	STEP_CONFIG,
};

struct build_progress {
	void (*step_begin)(const struct build_step_info *s, void *u);
	/* Output of a RUN step as it comes (len 0: a tick, about every 100 ms). */
	void (*step_output)(const char *data, size_t len, void *u);
	void (*step_end)(const struct build_step_info *s, enum build_step_outcome how,
			 int64_t ns, void *u);
	void (*warn)(const char *msg, void *u);
	void *userdata;
};

struct build_opts {
	const char *context;	/* a directory */
	const char *dockerfile; /* NULL: CONTEXT/Dockerfile, else CONTEXT/Containerfile */
	const char *target;	/* a stage name; NULL: the last stage */
	char **build_args;	/* "K=V", or "K" to take K from the environment */
	size_t n_build_args;
	char **tags; /* "name:tag" (already parsed and valid), moved when the build succeeds */
	size_t n_tags;
	enum net_mode net;
	bool no_cache;
	/* Resolve a base image reference (NAME[:TAG], id) to an id. */
	int (*resolve)(const char *ref, char ret_id[DIGEST_STR_LEN], void *u,
		       struct cairn_error *err);
	void *resolve_userdata;
	const struct build_progress *progress;
	/* Set (by a signal handler) to stop the build: the running step is
	 * killed and the build fails as interrupted. */
	const volatile sig_atomic_t *cancel;
	/* Leave the state database alone: no image, build or cache record
	 * (scratch builds for --check-reproducible). */
	bool no_record;
};

struct build_result {
	struct digest id;
	struct digest tree;
	unsigned steps, cached;
	char *provenance; /* JSON text */
	/* When a RUN step failed: its last lines of output. */
	char *failed_output;
};
void build_result_free(struct build_result *r);

/* Build. The caller holds the store's shared lock. On failure err names the
 * Dockerfile line and what went wrong; no image is recorded and no tag moves,
 * while the steps that succeeded stay in the cache. */
int build_run(struct store *s, struct state *st, const struct build_opts *o,
	      struct build_result *ret, struct cairn_error *err);
