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
	bool named; /* a named volume under $ROOT/volumes (made on first use) */
};

struct port_map {
	int listen_fd; /* bound and listening on the host */
	uint16_t port;	/* inside the instance */
};

struct run_spec {
	const char *lower; /* the image's checkout (read-only); for a build step
			    * (upper set), "top:...:bottom" stacks layers */
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
	const char *cgroup_name; /* the instance id, for its cgroup; NULL: none */
	int stdio[3]; /* fds for the command's stdin, stdout, stderr; 0 = inherit */
	struct port_map *ports; /* published ports, relayed by the monitor */
	size_t n_ports;
	/* A build step: the root is writable, its changes land in upper (an
	 * empty directory; work, on the same file system, is overlayfs's
	 * scratch), and /tmp and /run are part of the root, not tmpfs. */
	const char *upper, *work;
	/* The instance is killed when the process that started it dies (a
	 * build, a foreground run); a detached instance outlives its monitor. */
	bool die_with_parent;
	const char *overlay_opts; /* set by runtime_start */
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

/* A started instance (runtime_start), waited for with runtime_wait. */
struct runtime_instance;

/* Start the instance and return once its command was exec'd, or once it
 * could not be (then runtime_wait reports 127 or 126 with the message). On
 * -errno, nothing is left running or mounted. */
int runtime_start(const struct run_spec *spec, struct runtime_instance **ret,
		  struct cairn_error *err);
/* The host pid of the instance's init. */
pid_t runtime_instance_pid(const struct runtime_instance *inst);
/* True when the command could not be exec'd (runtime_wait says why). */
bool runtime_instance_exec_failed(const struct runtime_instance *inst);
/* Wait for the instance to end, fill ret, remove its cgroup, free inst. */
void runtime_wait(struct runtime_instance *inst, struct run_result *ret);

/* --- detached instances ------------------------------------------------------ */

struct monitor_hooks {
	/* the command was exec'd (not called when it could not be) */
	void (*started)(void *userdata, pid_t pid, uint64_t pid_start);
	void (*exited)(void *userdata, const struct run_result *res);
	void *userdata;
};

/* Run in the monitor process: start the instance with stdout and stderr into
 * the log under logdir_fd, call the hooks, return when it has ended. */
int runtime_monitor(const struct run_spec *spec, int logdir_fd, const struct monitor_hooks *hooks,
		    struct cairn_error *err);

/* Remove the cgroup of instance name, when it has one (its monitor died). */
void runtime_cgroup_remove(const char *name);

/* The start time of a process (field 22 of /proc/PID/stat), 0 when gone. */
uint64_t runtime_pid_start_time(pid_t pid);
/* True when pid runs and is the process that started at pid_start. */
bool runtime_alive(pid_t pid, uint64_t pid_start);
/* A pidfd of pid if it is still the process that started at pid_start (0:
 * unchecked); -ESRCH when it is gone or the pid was reused. */
int runtime_pidfd(pid_t pid, uint64_t pid_start);
/* Signal the process if it is still the one recorded. */
int runtime_signal(pid_t pid, uint64_t pid_start, int sig);
/* SIGTERM, up to grace_ms for it to end, then SIGKILL. Once it is gone:
 * 1 when SIGKILL was needed, else 0. */
int runtime_stop(pid_t pid, uint64_t pid_start, int grace_ms);

/* runtime_exec's exit code for a command it killed at its timeout (as
 * timeout(1) and Docker's health checks say it). */
#define RUNTIME_EXEC_TIMED_OUT 124

/* Run spec->argv (with spec->env, spec->user, spec->workdir) inside the
 * running instance whose init is pid, with the same capabilities, seccomp
 * filter and no_new_privs as its command; wait for it. *ret_exit is its exit
 * code (127 with ret_message when it could not be executed).
 *
 * With spec->die_with_parent or a timeout_ms > 0, the command is contained:
 * it and every process of its session are killed when the caller dies (even
 * by SIGKILL), and once the command ended; after timeout_ms (0: none) they
 * are killed, *ret_exit is RUNTIME_EXEC_TIMED_OUT and ret_message says
 * "timed out after N ms". Without, the command runs on if the caller dies
 * (cairn exec). The caller must not ignore SIGCHLD nor reap children it did
 * not start; it must be single-threaded (this forks). */
int runtime_exec(pid_t pid, uint64_t pid_start, const struct run_spec *spec, int64_t timeout_ms,
		 int *ret_exit, char *ret_message, size_t message_len, struct cairn_error *err);
