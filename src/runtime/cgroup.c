/* cgroups for instances. On a pure v2 host everything is under
 * /sys/fs/cgroup/cairn/<name>; on v1 (or hybrid) each controller has its own
 * /sys/fs/cgroup/<controller>/cairn/<name>. */
#include "cgroup.h"
#include "runtime.h"

#include "../base/fs.h"

#include <stdio.h>
#include <sys/stat.h>

#define CGROOT "/sys/fs/cgroup"

struct cgroup {
	bool v2;
	char *paths[3]; /* v2: one; v1: memory, pids, cpu */
	size_t n;
};

static int write_str(const char *dir, const char *file, const char *value)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, value, strlen(value));
	close(fd);
	return r;
}

static int write_u64(const char *dir, const char *file, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return write_str(dir, file, buf);
}

int cgroup_create(const char *name, uint64_t memory_bytes, uint64_t pids_max, uint64_t cpu_millis,
		  struct cgroup **ret, struct cairn_error *err)
{
	*ret = NULL;
	if (!name)
		return 0;
	struct cgroup *cg = xcalloc(1, sizeof(*cg));
	cg->v2 = access(CGROOT "/cgroup.controllers", F_OK) == 0;
	int r = 0;
	const char *where = CGROOT;
	if (cg->v2) {
		(void)mkdir(CGROOT "/cairn", 0755);
		(void)write_str(CGROOT, "cgroup.subtree_control", "+memory +pids +cpu");
		(void)write_str(CGROOT "/cairn", "cgroup.subtree_control", "+memory +pids +cpu");
		cg->paths[cg->n++] = xasprintf(CGROOT "/cairn/%s", name);
	} else {
		static const char *const ctl[] = {"memory", "pids", "cpu"};
		for (size_t i = 0; i < ELEMENTSOF(ctl); i++) {
			_cleanup_free_ char *parent = xasprintf(CGROOT "/%s/cairn", ctl[i]);
			if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
				r = error_set(err, errno, "%s: %s", parent, strerror(errno));
				goto fail;
			}
			cg->paths[cg->n++] = xasprintf("%s/%s", parent, name);
		}
	}
	for (size_t i = 0; i < cg->n; i++)
		if (mkdir(cg->paths[i], 0755) < 0 && errno != EEXIST) {
			r = error_set(err, errno, "creating cgroup %s: %s", cg->paths[i],
				      strerror(errno));
			goto fail;
		}
	if (cg->v2) {
		const char *p = cg->paths[0];
		where = p;
		if (memory_bytes) {
			if ((r = write_u64(p, "memory.max", memory_bytes)) < 0)
				goto limit;
			/* absent without swap accounting: then there is no swap to limit */
			(void)write_str(p, "memory.swap.max", "0");
		}
		if (pids_max && (r = write_u64(p, "pids.max", pids_max)) < 0)
			goto limit;
		if (cpu_millis) {
			char buf[64];
			snprintf(buf, sizeof(buf), "%llu 100000",
				 (unsigned long long)(cpu_millis * 100));
			if ((r = write_str(p, "cpu.max", buf)) < 0)
				goto limit;
		}
	} else {
		where = cg->paths[0];
		if (memory_bytes) {
			if ((r = write_u64(cg->paths[0], "memory.limit_in_bytes", memory_bytes)) < 0)
				goto limit;
			(void)write_u64(cg->paths[0], "memory.memsw.limit_in_bytes", memory_bytes);
			(void)write_str(cg->paths[0], "memory.swappiness", "0");
		}
		where = cg->paths[1];
		if (pids_max && (r = write_u64(cg->paths[1], "pids.max", pids_max)) < 0)
			goto limit;
		where = cg->paths[2];
		if (cpu_millis && ((r = write_str(cg->paths[2], "cpu.cfs_period_us", "100000")) < 0 ||
				   (r = write_u64(cg->paths[2], "cpu.cfs_quota_us", cpu_millis * 100)) <
					   0))
			goto limit;
	}
	*ret = cg;
	return 0;
limit:
	r = error_set(err, -r, "setting a limit in %s: %s", where, strerror(-r));
fail:
	cgroup_destroy(cg);
	return r;
}

int cgroup_attach(struct cgroup *cg, pid_t pid, struct cairn_error *err)
{
	if (!cg)
		return 0;
	for (size_t i = 0; i < cg->n; i++) {
		int r = write_u64(cg->paths[i], "cgroup.procs", (uint64_t)pid);
		if (r < 0)
			return error_set(err, -r, "moving %d into %s: %s", (int)pid, cg->paths[i],
					 strerror(-r));
	}
	return 0;
}

bool cgroup_oom_killed(struct cgroup *cg)
{
	if (!cg)
		return false;
	_cleanup_free_ char *data = NULL;
	_cleanup_free_ char *file = xasprintf("%s/%s", cg->paths[0],
					      cg->v2 ? "memory.events" : "memory.oom_control");
	if (read_file_at(AT_FDCWD, file, &data, NULL, 4096) < 0)
		return false;
	const char *p = strstr(data, "oom_kill ");
	return p && strtoull(p + 9, NULL, 10) > 0;
}

void runtime_cgroup_remove(const char *name)
{
	static const char *const dirs[] = {CGROOT "/cairn", CGROOT "/memory/cairn",
					   CGROOT "/pids/cairn", CGROOT "/cpu/cairn"};
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dirs[i], name);
		(void)rmdir(p);
	}
}

void cgroup_destroy(struct cgroup *cg)
{
	if (!cg)
		return;
	for (size_t i = 0; i < cg->n; i++) {
		(void)rmdir(cg->paths[i]);
		free(cg->paths[i]);
	}
	free(cg);
}
