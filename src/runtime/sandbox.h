/* Capabilities and the seccomp filter of an instance (src/runtime). */
#pragma once

#include "../base/macro.h"

/* Cut the bounding set to Docker's default capabilities (keep_defaults) or to
 * nothing. Needs CAP_SETPCAP: call before leaving root. */
int sandbox_limit_bounding(bool keep_defaults);
/* Set the effective and permitted sets to the defaults or to nothing, and
 * clear the ambient set. */
int sandbox_set_caps(bool keep_defaults);
/* Both, for a process that stays root. */
int sandbox_drop_caps(bool keep_defaults);

/* Load the default filter. Call after PR_SET_NO_NEW_PRIVS, last before exec. */
int sandbox_seccomp(void);
