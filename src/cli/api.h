/* The daemon's API, from the CLI: see src/cli/api.c. */
#pragma once

#include "cli.h"

/* Send METHOD PATH with a JSON body (may be NULL) to the daemon of cli->root
 * and read the answer to its end; line_fn (may be NULL) sees every JSON line
 * of a stream. *ret is the last JSON value of the answer. Without a daemon:
 * -ECONNREFUSED and a message saying how to start one. */
int api_call(struct cli *cli, const char *method, const char *path, json_t *body,
	     void (*line_fn)(json_t *line, void *u), void *u, json_t **ret,
	     struct cairn_error *err);
/* A line_fn printing progress ("  0.123s  message") to stderr, or with
 * --json every line to stdout; u is the struct cli. */
void api_print_progress(json_t *line, void *u);
/* Print the outcome of a release operation's last line; 0 when it went live. */
int api_finish(struct cli *cli, json_t *done);
