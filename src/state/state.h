/* The state database ($ROOT/cairn.db, SQLite in WAL mode, synchronous=FULL):
 * images with their provenance, tags with the full history of what each one
 * pointed to, and an append-only event log. Every change is one transaction. */
#pragma once

#include "../base/error.h"
#include "../base/hash.h"

struct state;

/* Open (creating and migrating) the database under root. */
int state_open(const char *root, struct state **ret, struct cairn_error *err);
struct state *state_close(struct state *st);
static inline void state_closep(struct state **st)
{
	state_close(*st);
}

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int state_begin(struct state *st, struct cairn_error *err);
int state_commit(struct state *st, struct cairn_error *err);
void state_rollback(struct state *st);

struct state_image {
	char id[DIGEST_STR_LEN];
	char tree[DIGEST_STR_LEN];
	int64_t created_ns;
	uint64_t size, entries;
	char *source; /* what it was made from: "import directory /path", ... */
};
void state_image_free(struct state_image *im);
void state_images_free(struct state_image *v, size_t n);

/* Record an image; an image already known keeps its first record (returns 0). */
int state_image_add(struct state *st, const struct state_image *im, struct cairn_error *err);
/* -ENOENT (without touching err) when unknown. */
int state_image_get(struct state *st, const char *id, struct state_image *ret,
		    struct cairn_error *err);
int state_image_list(struct state *st, struct state_image **ret, size_t *ret_n,
		     struct cairn_error *err);
/* Remove an image and (with history) every tag that points at it. */
int state_image_remove(struct state *st, const char *id, struct cairn_error *err);

struct state_tag {
	char *name, *tag;
	char id[DIGEST_STR_LEN];
	int64_t updated_ns;
};
void state_tags_free(struct state_tag *v, size_t n);

/* Point name:tag at id, recording the move in the history when it changes.
 * why is a word for the history ("import", "tag", "build"). */
int state_tag_set(struct state *st, const char *name, const char *tag, const char *id,
		  const char *why, struct cairn_error *err);
/* -ENOENT (without touching err) when the tag does not exist. */
int state_tag_get(struct state *st, const char *name, const char *tag,
		  char ret_id[DIGEST_STR_LEN], struct cairn_error *err);
int state_tag_remove(struct state *st, const char *name, const char *tag,
		     struct cairn_error *err);
/* All tags, or those of one image (id non-NULL), sorted by name and tag. */
int state_tag_list(struct state *st, const char *id, struct state_tag **ret, size_t *ret_n,
		   struct cairn_error *err);

struct state_tag_event {
	int64_t at_ns;
	char *name, *tag;
	char id[DIGEST_STR_LEN];       /* "" when the tag was removed */
	char previous[DIGEST_STR_LEN]; /* "" when the tag was new */
	char *why;
};
void state_tag_events_free(struct state_tag_event *v, size_t n);
/* History of every tag of name (tag NULL) or of one tag, oldest first. */
int state_tag_history(struct state *st, const char *name, const char *tag,
		      struct state_tag_event **ret, size_t *ret_n, struct cairn_error *err);

/* Find the one image whose hex id starts with hex_prefix (lowercase hex,
 * without "sha256:"). -ENOENT when none, -ENOTUNIQ when several (err says so). */
int state_image_find_prefix(struct state *st, const char *hex_prefix,
			    char ret_id[DIGEST_STR_LEN], struct cairn_error *err);

/* Image ids that gc must keep: every tagged image (later also releases). */
int state_gc_roots(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err);
/* Forget images that no root reaches (after gc removed their objects). */
int state_forget_unreferenced(struct state *st, uint64_t *ret_n, struct cairn_error *err);

/* Append to the audit log. */
int state_event(struct state *st, const char *kind, const char *subject, const char *detail,
		struct cairn_error *err);

/* Free a NULL-terminated-free array of n strings. */
void strv_free_n(char **v, size_t n);

/* --- instances ------------------------------------------------------------ */

struct state_instance {
	char id[33]; /* 32 hex */
	char *name;
	char image[DIGEST_STR_LEN];
	char *command; /* for display */
	int64_t created_ns, started_ns, finished_ns;
	char *state; /* "created", "running", "exited" */
	int exit_code;
	bool oom;
	int pid;	   /* the instance's init on the host */
	uint64_t pid_start; /* its start time (clock ticks), against pid reuse */
	int monitor_pid;
	char *ports;
	bool tainted;
	char *tainted_why;
};
void state_instance_free(struct state_instance *in);
void state_instances_free(struct state_instance *v, size_t n);

int state_instance_add(struct state *st, const struct state_instance *in,
		       struct cairn_error *err);
int state_instance_set_running(struct state *st, const char *id, int pid, uint64_t pid_start,
			       int monitor_pid, struct cairn_error *err);
int state_instance_set_exited(struct state *st, const char *id, int exit_code, bool oom,
			      struct cairn_error *err);
int state_instance_taint(struct state *st, const char *id, const char *why,
			 struct cairn_error *err);
int state_instance_remove(struct state *st, const char *id, struct cairn_error *err);
/* By exact id, name, or unique id prefix (4+ hex). -ENOENT when none. */
int state_instance_find(struct state *st, const char *ref, struct state_instance *ret,
			struct cairn_error *err);
/* Newest first; all, or only those not exited. */
int state_instance_list(struct state *st, bool all, struct state_instance **ret, size_t *ret_n,
			struct cairn_error *err);

/* --- builds ----------------------------------------------------------------- */

/* The build cache: a step's key (a digest of its parent tree, the expanded
 * instruction and what it read) to the tree it made. -ENOENT when absent. */
int state_cache_get(struct state *st, const char *key, char ret_tree[DIGEST_STR_LEN],
		    struct cairn_error *err);
int state_cache_put(struct state *st, const char *key, const char *tree, struct cairn_error *err);
int state_cache_forget(struct state *st, const char *key, struct cairn_error *err);
/* Trees the cache names (gc keeps them). */
int state_cache_trees(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err);
int state_cache_clear(struct state *st, uint64_t *ret_n, struct cairn_error *err);

/* Record a build: outcome "built" (image set) or "failed"; provenance is a
 * JSON object (Dockerfile and context digests, bases, build args, times). */
int state_build_add(struct state *st, const char *image, int64_t started_ns,
		    int64_t finished_ns, const char *outcome, const char *provenance,
		    struct cairn_error *err);
/* The provenance of the newest successful build of image; -ENOENT when none. */
int state_build_latest(struct state *st, const char *image, char **ret_provenance,
		       struct cairn_error *err);

/* --- releases ------------------------------------------------------------------- */

/* A release: an environment's numbered deployment of an image with a
 * configuration. state: "deploying", "live", "previous" (kept ready for a
 * rollback), "retired", "failed". */
struct state_release {
	char *env;
	unsigned number;
	char *service;
	char image[DIGEST_STR_LEN];
	char *config; /* the resolved service configuration, canonical JSON */
	char config_digest[DIGEST_STR_LEN];
	int64_t created_ns, finished_ns;
	char *state;
	char *reason;  /* why it failed, or what ended it */
	char *trigger; /* "deploy", "rollback to v3", "promote from dev", ... */
};
void state_release_free(struct state_release *r);
void state_releases_free(struct state_release *v, size_t n);

/* Number (max + 1 for env) and record r (env, service, image, config,
 * config_digest, state, trigger); sets r->number and r->created_ns. Call
 * inside a transaction. */
int state_release_create(struct state *st, struct state_release *r, struct cairn_error *err);
/* Set the state (and the reason when non-NULL; the finish time once when
 * finished). */
int state_release_set_state(struct state *st, const char *env, unsigned number,
			    const char *state, const char *reason, bool finished,
			    struct cairn_error *err);
/* -ENOENT (err untouched) when there is none. */
int state_release_get(struct state *st, const char *env, unsigned number,
		      struct state_release *ret, struct cairn_error *err);
/* The newest release of env in state; -ENOENT when none. */
int state_release_with_state(struct state *st, const char *env, const char *state,
			     struct state_release *ret, struct cairn_error *err);
/* Newest first; every env when env is NULL. */
int state_release_list(struct state *st, const char *env, struct state_release **ret,
		       size_t *ret_n, struct cairn_error *err);
/* Which instances belong to which release. */
int state_release_add_instance(struct state *st, const char *env, unsigned number,
			       const char *instance, struct cairn_error *err);
int state_release_remove_instance(struct state *st, const char *instance,
				  struct cairn_error *err);
int state_release_move_instances(struct state *st, const char *env, unsigned from, unsigned to,
				 struct cairn_error *err);
int state_release_instances(struct state *st, const char *env, unsigned number, char ***ret,
			    size_t *ret_n, struct cairn_error *err);
/* Environments that have releases. */
int state_envs(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err);

struct state_event {
	int64_t at_ns;
	char *kind, *subject, *detail;
};
/* The last limit events (oldest first) whose subject is subject_prefix or
 * starts with subject_prefix + "/" (all when NULL). */
int state_event_list(struct state *st, const char *subject_prefix, size_t limit,
		     struct state_event **ret, size_t *ret_n, struct cairn_error *err);
void state_events_free(struct state_event *v, size_t n);
