/* Capabilities and the seccomp filter of an instance (src/runtime). */
#pragma once

#include "../base/macro.h"

/* Cut the bounding, ambient, effective and permitted sets to Docker's default
 * capabilities (keep_defaults) or to nothing. */
int sandbox_drop_caps(bool keep_defaults);

/* Load the default filter. Call after PR_SET_NO_NEW_PRIVS, last before exec. */
int sandbox_seccomp(void);
