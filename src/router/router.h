/* The router: cairn's data plane for traffic. One process, started by the
 * daemon and outliving it, with a listener per environment, reaching each
 * instance through a socket made inside the instance's network namespace
 * (no bridge, no host port). It balances requests over the healthy backends
 * in rotation (least outstanding requests; per-release weights for canary
 * steps), health-checks every backend it knows continuously, drains the
 * backends the daemon takes out, and counts requests, errors and latency.
 *
 * The daemon drives it over a unix seqpacket socket ($ROOT/router.sock, mode
 * 0600): one JSON object per message, network namespace fds attached with
 * SCM_RIGHTS, one JSON answer per message. See router.c for the messages. */
#pragma once

#include "../base/error.h"

/* Serve the control socket at ctl_path until SIGTERM or SIGINT (then stop
 * accepting, let in-flight requests finish for up to a few seconds, and
 * return 0). -errno with err set when the router cannot start. */
int router_main(const char *ctl_path, unsigned workers, struct cairn_error *err);
