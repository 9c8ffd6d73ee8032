/* An instance's cgroup: memory, pids and cpu limits, on cgroup v2 where it is
 * the unified hierarchy, else on the v1 controllers (this host: hybrid). */
#pragma once

#include "../base/error.h"

#include <sys/types.h>

struct cgroup;

/* Create cairn/<name> under each controller and set the limits (0 = none).
 * A NULL name makes no cgroup (*ret = NULL), which the other calls accept. */
int cgroup_create(const char *name, uint64_t memory_bytes, uint64_t pids_max, uint64_t cpu_millis,
		  struct cgroup **ret, struct cairn_error *err);
/* Move pid into the cgroup. */
int cgroup_attach(struct cgroup *cg, pid_t pid, struct cairn_error *err);
/* True when the kernel's OOM killer killed a process of the cgroup. */
bool cgroup_oom_killed(struct cgroup *cg);
/* Remove the cgroup (its processes must be gone) and free cg. */
void cgroup_destroy(struct cgroup *cg);
