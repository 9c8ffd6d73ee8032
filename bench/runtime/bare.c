/* The "bare" floor of the runtime benchmark (bench/runtime/run.sh): the least
 * a container runtime has to do to run a command, with nothing else. One
 * clone() into new mount, pid, uts, ipc, network and cgroup namespaces; in
 * the child a read-only overlay of the root filesystem (two lower layers: an
 * empty one and ROOTFS, no upper layer, as cairn does), pivot_root into it,
 * a fresh /proc, exec; the parent waits and exits with the child's status.
 * No cgroup, no /dev, no capabilities or seccomp, no state on disk.
 *
 * Usage: bare ROOTFS EMPTY_DIR MOUNTPOINT CMD [ARGS...]   (as root)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "bare: %s: %m\n", what);
	_exit(125);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bare ROOTFS EMPTY_DIR MOUNTPOINT CMD [ARGS...]\n");
		return 2;
	}
	char opts[8192];
	if (snprintf(opts, sizeof(opts), "lowerdir=%s:%s", argv[2], argv[1]) >= (int)sizeof(opts))
		return 2;
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
			      CLONE_NEWNET | CLONE_NEWCGROUP | SIGCHLD;
	pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0)
		die("clone");
	if (pid == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			die("making / private");
		if (mount("overlay", argv[3], "overlay", MS_RDONLY | MS_NODEV, opts) < 0)
			die("mounting the overlay");
		if (chdir(argv[3]) < 0)
			die("chdir");
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			die("pivot_root");
		if (umount2(".", MNT_DETACH) < 0)
			die("detaching the old root");
		if (chdir("/") < 0)
			die("chdir /");
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			die("mounting /proc");
		execv(argv[4], argv + 4);
		die(argv[4]);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
