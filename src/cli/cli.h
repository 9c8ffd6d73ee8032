/* The command-line front end: global options, the command table, and helpers
 * every command shares (opening the store and state, resolving an image,
 * printing sizes and times). Only this folder prints to the user or chooses
 * the exit code: 0 success, 1 failure, 2 usage error. */
#pragma once

#include "../base/error.h"
#include "../state/state.h"
#include "../store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#define EXIT_USAGE 2

struct cli {
	const char *root; /* --root, $CAIRN_ROOT, or /var/lib/cairn */
	bool json;
};

struct command {
	const char *name;
	const char *args;    /* "SOURCE NAME:TAG" */
	const char *summary; /* one line */
	const char *help;    /* options and details */
	int (*run)(struct cli *cli, int argc, char **argv);
	bool hidden; /* left out of 'cairn --help' (commands cairn runs itself) */
};

extern const struct command cmd_import, cmd_images, cmd_inspect, cmd_tag, cmd_rm, cmd_history,
	cmd_checkout, cmd_gc, cmd_fsck, cmd_verify, cmd_run, cmd_ps,
	cmd_stop, cmd_logs, cmd_exec, cmd_build, cmd_router, cmd_daemon, cmd_deploy,
	cmd_status, cmd_releases, cmd_rollback, cmd_promote, cmd_scale, cmd_events, cmd_probe;

/* Options every command accepts; getopt value codes for them. */
enum {
	OPT_HELP = 'h',
	OPT_JSON = 0x100,
	OPT_ROOT,
	OPT_COMMON_END,
};
#define COMMON_LONG_OPTIONS                                                                        \
	{"help", no_argument, NULL, OPT_HELP}, {"json", no_argument, NULL, OPT_JSON},              \
		{"root", required_argument, NULL, OPT_ROOT}

/* Handle a common option (or report an unknown one): returns -1 when parsing
 * goes on, or an exit code to return now (0 after --help, 2 on a bad option). */
int cli_common_option(struct cli *cli, const struct command *cmd, int opt, char **argv);
/* Parse only the common options; positional arguments start at argv[optind].
 * Returns -1 to go on, or an exit code (usage errors when the count of
 * arguments is outside min..max; max -1 means no limit). */
int cli_parse_simple(struct cli *cli, const struct command *cmd, int argc, char **argv,
		     int min_args, int max_args);
/* Print "cairn: <msg>" to stderr and return 1 (or EXIT_USAGE for usage). */
_printf_(1, 2) int cli_fail(const char *fmt, ...);
_printf_(2, 3) int cli_usage(const struct command *cmd, const char *fmt, ...);
/* Print the error and return 1. */
int cli_error(const struct cairn_error *err);
/* The same, then release err's message. */
int cli_error_clear(struct cairn_error *err);
_printf_(1, 2) void cli_warn(const char *fmt, ...);
void cli_command_help(const struct command *cmd, FILE *f);
/* Reset getopt before a command parses its arguments. */
void cli_getopt_reset(void);

int cli_open_store(struct cli *cli, bool create, struct store **ret, struct cairn_error *err);
int cli_open_state(struct cli *cli, struct state **ret, struct cairn_error *err);

/* Open the state and the store, resolve ref (NAME[:TAG], id or prefix) to
 * ret_id, and load the image's manifest and tree where ret_manifest or
 * ret_tree are non-NULL, checking every hash. With lock, the store's shared
 * lock is held until the store is closed. */
struct image_manifest;
struct tree;
int cli_open_image(struct cli *cli, const char *ref, bool lock, struct state **ret_state,
		   struct store **ret_store, char ret_id[DIGEST_STR_LEN],
		   struct image_manifest *ret_manifest, struct tree *ret_tree,
		   struct cairn_error *err);

/* Resolve NAME[:TAG], an id or a unique id prefix to a full id. */
int cli_resolve(struct state *st, const char *ref, char ret_id[DIGEST_STR_LEN],
		struct cairn_error *err);

/* An instance's state as it really is: "running" in the record but gone
 * from the kernel is "dead". */
struct state_instance;
const char *instance_true_state(const struct state_instance *in);
/* Stop an instance (SIGTERM, grace_ms, SIGKILL) and see its end recorded. */
int instance_stop(struct state *st, const struct state_instance *in, int grace_ms,
		  struct cairn_error *err);

/* "312.4 MB" (powers of 1000, like docker). */
void format_size(uint64_t bytes, char *out, size_t len);
/* "2026-11-26 08:30:12" in UTC. */
void format_time(int64_t ns, char *out, size_t len);
/* "2026-11-26T08:30:12.123456789Z" */
void format_time_iso(int64_t ns, char *out, size_t len);
/* Short id: the first 12 hex digits. */
void format_short_id(const char *id, char out[13]);
/* Parse "64M", "1G", "4096" into bytes; -EINVAL when malformed. */
int parse_size(const char *s, uint64_t *ret);
int parse_u64(const char *s, uint64_t *ret);

/* Print a JSON value to stdout (indented) and a newline; consumes v. */
void print_json(json_t *v);
