/* The runtime: start an instance, an isolated Linux container whose root is
 * an image's shared checkout mounted read-only. New pid, mount, uts, ipc, net
 * and cgroup namespaces; a minimal /dev; /proc with the dangerous paths
 * masked; Docker's default capabilities at most; no_new_privs; a seccomp
 * filter; no file descriptor of the host. A small init (pid 1) reaps zombies
 * and forwards signals to the command (pid 2). */
#pragma once

#include "../base/error.h"

#include <sys/types.h>

enum net_mode {
	NET_PRIVATE, /* own network namespace with only a loopback (the default) */
	NET_NONE,    /* own network namespace, loopback down */
	NET_HOST,    /* the host's network */
};

struct mount_spec {
	char *source;	/* host path (a volume directory or a host directory) */
	char *target;	/* absolute path inside the instance */
	bool read_only;
};

struct run_spec {
	const char *lower;	/* the image's checkout (read-only) */
	const char *state_dir;	/* instance dir: skeleton, root mountpoint */
	char **argv;		/* NULL-terminated; argv[0] is looked up in PATH */
	char **env;		/* NULL-terminated K=V */
	const char *workdir;	/* absolute path inside, or NULL for "/" */
	const char *user;	/* "uid[:gid]" or a name in the image's /etc/passwd, or NULL */
	const char *hostname;
	enum net_mode net;
	struct mount_spec *mounts;
	size_t n_mounts;
	/* limits, 0 = none */
	uint64_t memory_bytes;
	uint64_t pids_max;
	uint64_t cpu_millis; /* thousandths of a CPU */
	const char *cgroup_name; /* the instance id, for its cgroup */
	const char *overlay_opts; /* set by runtime_run */
};

/* What became of the command: exit code, or 128 + the signal that killed it
 * (as a shell reports it). 127 when the command does not exist, 126 when it
 * cannot be executed. */
struct run_result {
	int exit_code;
	bool oom_killed;
	char message[600]; /* why the command could not be executed (126, 127) */
};

/* Start the instance described by spec and wait for it (the foreground run).
 * Signals SIGINT, SIGTERM, SIGHUP, SIGQUIT sent to the caller are forwarded.
 * Returns 0 with ret filled when the command ran (whatever its exit code), or
 * -errno with err set when the instance could not be started; then nothing is
 * left mounted or running. */
int runtime_run(const struct run_spec *spec, struct run_result *ret, struct cairn_error *err);
