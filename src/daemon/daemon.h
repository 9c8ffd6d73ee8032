/* The daemon: cairn's control plane. It serves the HTTP/JSON API on
 * $ROOT/cairn.sock (mode 0600), keeps the router process running and fed
 * with each environment's route table, and carries out deploys, rollbacks,
 * promotions and scaling as numbered releases recorded in the state database
 * before anything is acted on. Instances are started as detached instances
 * (`cairn run -d`, each under its own monitor), so they and the router outlive
 * the daemon; a restarted daemon adopts them from the database. */
#pragma once

#include "../base/error.h"

/* Run in the foreground until SIGTERM or SIGINT. exe is the cairn binary
 * (for the router and the instances' monitors). */
int daemon_main(const char *root, const char *exe, struct cairn_error *err);
