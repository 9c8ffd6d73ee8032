/* Starting an instance. The caller (the CLI, later the monitor) clones a child
 * into new namespaces; the child builds the root (an overlay of a skeleton of
 * mountpoints over the image's checkout, read-only), /proc, /dev, /sys and the
 * tmpfs mounts, pivots into it, and becomes a small init: it forks the
 * command, forwards signals to it, reaps every zombie, and exits with the
 * command's status. The command drops capabilities, sets no_new_privs, loads
 * the seccomp filter, closes every fd above 2, and execs.
 *
 * Errors in the child before exec travel back on a pipe as "errno message". */
#include "runtime.h"
#include "cgroup.h"
#include "sandbox.h"

#include "../base/fs.h"

#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Report an error from the child to the parent and exit: 125 for a failure
 * to set the instance up, 127 or 126 when exec says the command does not
 * exist or cannot run (exec_failed), as a shell does. */
_noreturn_ static void child_report(int errfd, bool exec_failed, int code, const char *what,
				    const char *arg)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%d %s%s%s", code, what, arg ? ": " : "",
			 arg ? arg : "");
	if (n > 0)
		(void)!write(errfd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	if (!exec_failed)
		_exit(125);
	_exit(code == ENOENT ? 127 : code == EACCES ? 126 : 125);
}

_noreturn_ static void child_fail(int errfd, int code, const char *what, const char *arg)
{
	child_report(errfd, false, code, what, arg);
}

#define CHECK(cond, what, arg)                                                                     \
	do {                                                                                       \
		if (!(cond))                                                                       \
			child_fail(errfd, errno, what, arg);                                       \
	} while (0)

/* The child works with the new root as its current directory: every path
 * below is relative to it. */
static int mount_fs(const char *rel, const char *fstype, unsigned long flags, const char *data)
{
	return mount(fstype, rel, fstype, flags, data);
}

static void make_dev(int errfd)
{
	CHECK(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536") == 0,
	      "mounting /dev", NULL);
	int dfd = open("dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0, "opening /dev", NULL);
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5}, {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
		CHECK(mknodat(dfd, nodes[i].name, S_IFCHR | 0666,
			      makedev(nodes[i].maj, nodes[i].min)) == 0,
		      "creating /dev node", nodes[i].name);
		CHECK(fchmodat(dfd, nodes[i].name, 0666, 0) == 0, "chmod /dev node", nodes[i].name);
	}
	CHECK(mkdirat(dfd, "pts", 0755) == 0 && mkdirat(dfd, "shm", 01777) == 0 &&
		      mkdirat(dfd, "mqueue", 0755) == 0,
	      "creating /dev directories", NULL);
	static const char *const links[][2] = {{"/proc/self/fd", "fd"},	 {"/proc/self/fd/0", "stdin"},
					       {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
					       {"pts/ptmx", "ptmx"}};
	for (size_t i = 0; i < ELEMENTSOF(links); i++)
		CHECK(symlinkat(links[i][0], dfd, links[i][1]) == 0, "creating /dev link",
		      links[i][1]);
	close(dfd);
	CHECK(mount_fs("dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		       "newinstance,ptmxmode=0666,mode=0620") == 0,
	      "mounting /dev/pts", NULL);
	CHECK(mount_fs("dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		       "mode=1777,size=67108864") == 0,
	      "mounting /dev/shm", NULL);
	CHECK(mount_fs("dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
	      "mounting /dev/mqueue", NULL);
}

/* /proc paths that leak the host or let a container hurt it: files get
 * /dev/null bound over them, directories an empty read-only tmpfs. */
static const char *const masked[] = {
	"proc/kcore",	  "proc/keys",	     "proc/timer_list", "proc/sched_debug",
	"proc/kallsyms",  "proc/latency_stats", "proc/acpi",	  "proc/scsi",
	"proc/sysrq-trigger", "sys/firmware",  "proc/interrupts",
};
static const char *const read_only[] = {"proc/sys", "proc/irq", "proc/bus", "proc/fs"};

static void mask_paths(int errfd)
{
	for (size_t i = 0; i < ELEMENTSOF(masked); i++) {
		const char *path = masked[i];
		struct stat st;
		if (lstat(path, &st) < 0)
			continue; /* not on this kernel */
		if (S_ISDIR(st.st_mode))
			CHECK(mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				    "size=0") == 0,
			      "masking", masked[i]);
		else
			CHECK(mount("dev/null", path, NULL, MS_BIND, NULL) == 0, "masking", masked[i]);
	}
	for (size_t i = 0; i < ELEMENTSOF(read_only); i++) {
		const char *path = read_only[i];
		if (access(path, F_OK) < 0)
			continue;
		CHECK(mount(path, path, NULL, MS_BIND | MS_REC, NULL) == 0, "binding", read_only[i]);
		CHECK(mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
						      MS_NOEXEC,
			    NULL) == 0,
		      "making read-only", read_only[i]);
	}
}

/* Bind a volume at its target, resolved inside the new root by fd so that a
 * symlink in the image cannot move the mount outside it. */
static void mount_volume(int errfd, int rootfd, const struct mount_spec *m)
{
	int fd = open_in_root(rootfd, m->target, O_PATH | O_DIRECTORY, 0);
	if (fd < 0) {
		errno = -fd;
		child_fail(errfd, errno, "volume target", m->target);
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	CHECK(mount(m->source, proc, NULL, MS_BIND | MS_REC, NULL) == 0, "mounting volume",
	      m->target);
	close(fd);
	if (m->read_only) {
		fd = open_in_root(rootfd, m->target, O_PATH | O_DIRECTORY, 0);
		CHECK(fd >= 0, "volume target", m->target);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		CHECK(mount(NULL, proc, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0,
		      "making volume read-only", m->target);
		close(fd);
	}
}

static void loopback_up(int errfd)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0, "socket", NULL);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "loopback", NULL);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "loopback up", NULL);
	close(s);
}

/* Parse "uid[:gid]" or a user name from the image's /etc/passwd (we are
 * inside the new root: nothing of the host can be reached by a path). */
static void resolve_user(int errfd, const char *user, uid_t *uid, gid_t *gid)
{
	*uid = 0;
	*gid = 0;
	if (!user || !*user)
		return;
	char name[256];
	snprintf(name, sizeof(name), "%s", user);
	char *colon = strchr(name, ':');
	if (colon)
		*colon = 0;
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	bool numeric = *name && !*end && !errno;
	if (numeric)
		*uid = (uid_t)v; /* gid 0 unless /etc/passwd says otherwise, as Docker */
	FILE *f = fopen("/etc/passwd", "re");
	bool found = numeric;
	if (f) {
		struct passwd *pw;
		while ((pw = fgetpwent(f)))
			if (numeric ? pw->pw_uid == *uid : streq(pw->pw_name, name)) {
				*uid = pw->pw_uid;
				*gid = pw->pw_gid;
				found = true;
				break;
			}
		fclose(f);
	}
	if (!found) {
		errno = ENOENT;
		child_fail(errfd, ENOENT, "no such user in the image's /etc/passwd", name);
	}
	if (colon) {
		const char *g = colon + 1;
		errno = 0;
		v = strtoul(g, &end, 10);
		if (*g && !*end && !errno) {
			*gid = (gid_t)v;
			return;
		}
		FILE *gf = fopen("/etc/group", "re");
		struct group *gr;
		bool gfound = false;
		while (gf && (gr = fgetgrent(gf)))
			if (streq(gr->gr_name, g)) {
				*gid = gr->gr_gid;
				gfound = true;
				break;
			}
		if (gf)
			fclose(gf);
		if (!gfound)
			child_fail(errfd, ENOENT, "no such group in the image's /etc/group", g);
	}
}

/* The command's side of the fork in init (or in runtime_exec): become the
 * user, shed privileges, and exec. With parent_pidfd (a pidfd of the parent,
 * else -1) the command dies with its parent. Never returns. */
_noreturn_ static void exec_command(int errfd, const struct run_spec *spec, uid_t uid, gid_t gid,
				   int parent_pidfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	CHECK(setsid() >= 0, "setsid", NULL);
	int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (adj >= 0) { /* back to the normal score init lowered */
		(void)!write(adj, "0", 1);
		close(adj);
	}
	const char *wd = spec->workdir && *spec->workdir ? spec->workdir : "/";
	CHECK(chdir(wd) == 0, "workdir", wd);
	CHECK(setgroups(0, NULL) == 0, "setgroups", NULL);
	CHECK(setresgid(gid, gid, gid) == 0, "setgid", NULL);
	/* The bounding set while still root; then a non-root user loses every
	 * capability in setuid (no KEEPCAPS), root keeps Docker's default set. */
	int r = sandbox_limit_bounding(true);
	if (r < 0)
		child_fail(errfd, -r, "limiting capabilities", NULL);
	CHECK(setresuid(uid, uid, uid) == 0, "setuid", NULL);
	if (parent_pidfd >= 0) {
		/* Set after setuid, which clears it. The parent lives outside our
		 * pid namespace (getppid() says 0 either way): its pidfd tells
		 * whether it died before the line below. */
		CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0, "parent death signal", NULL);
		struct pollfd pp = {.fd = parent_pidfd, .events = POLLIN};
		if (poll(&pp, 1, 0) != 0)
			_exit(128 + SIGKILL);
	}
	r = sandbox_set_caps(uid == 0);
	if (r < 0)
		child_fail(errfd, -r, "setting capabilities", NULL);
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs", NULL);
	r = sandbox_seccomp();
	if (r < 0)
		child_fail(errfd, -r, "loading the seccomp filter", NULL);
	/* Every fd above stderr goes, but the error pipe, which exec closes. */
	if (errfd > 3)
		(void)syscall(SYS_close_range, 3, errfd - 1, 0);
	(void)syscall(SYS_close_range, errfd + 1, ~0U, 0);
	execvpe(spec->argv[0], spec->argv, spec->env);
	child_report(errfd, true, errno, "exec", spec->argv[0]);
}

static volatile sig_atomic_t forward_to;

static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
}

/* pid 1 of the instance: forward signals, reap zombies, exit like the command. */
_noreturn_ static void run_init(int errfd, const struct run_spec *spec, uid_t uid, gid_t gid)
{
	/* Nothing in the instance may open /proc/1/exe (the host's cairn binary)
	 * or ptrace us. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	sigemptyset(&old); /* whatever the caller blocked, init takes signals */
	/* Out of memory, the kernel should kill the command, not init. */
	int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (adj >= 0) {
		(void)!write(adj, "-1000", 5);
		close(adj);
	}
	pid_t pid = fork();
	CHECK(pid >= 0, "fork", NULL);
	if (pid == 0)
		exec_command(errfd, spec, uid, gid, -1);
	close(errfd);
	(void)syscall(SYS_close_range, 3, ~0U, 0);
	forward_to = pid;
	struct sigaction sa = {.sa_handler = forward_signal};
	static const int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < ELEMENTSOF(fwd); i++)
		sigaction(fwd[i], &sa, NULL);
	(void)sandbox_drop_caps(false);
	sigprocmask(SIG_SETMASK, &old, NULL);
	int code = 125;
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, 0);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			break; /* no children left */
		}
		if (p == pid) {
			/* The command is the instance: when it ends, init ends, and
			 * the kernel ends whatever else runs in the pid namespace. */
			code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
	}
	_exit(code);
}

/* The skeleton (in the current directory): the mountpoints the instance
 * needs, as the upper lower layer of the overlay, so images need not have
 * them and are never changed. Volume targets were checked by the parent. */
static void make_skeleton(int errfd, const struct run_spec *spec)
{
	static const char *const dirs[] = {"root",     "skel",	   "skel/proc",
					   "skel/dev", "skel/sys", "skel/tmp", "skel/run"};
	/* A build step keeps /tmp and /run of the image: the skeleton's would
	 * hide their modes. */
	size_t n = spec->upper ? ELEMENTSOF(dirs) - 2 : ELEMENTSOF(dirs);
	for (size_t i = 0; i < n; i++)
		CHECK(mkdir(dirs[i], 0755) == 0, "creating the skeleton", dirs[i]);
	int skel = open("skel", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(skel >= 0, "opening the skeleton", NULL);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const char *t = spec->mounts[i].target;
		while (*t == '/')
			t++;
		int r = mkdir_p_at(skel, t, 0755);
		if (r < 0)
			child_fail(errfd, -r, "volume target", spec->mounts[i].target);
	}
	close(skel);
}

/* Everything the child does between clone and init. */
_noreturn_ static void child_main(const struct run_spec *spec, int syncfd, int errfd)
{
	char go;
	/* Set before waiting for the parent: if it is already gone, the read
	 * below sees EOF. */
	if (spec->die_with_parent)
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(syncfd, &go, 1) != 1)
		_exit(125); /* the parent went away */
	close(syncfd);
	CHECK(unshare(CLONE_NEWCGROUP) == 0, "cgroup namespace", NULL);
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0, "making / a slave", NULL);

	/* A private tmpfs over the instance directory (in this mount namespace
	 * only) holds the skeleton and the root's mountpoint: the host's file
	 * system sees no mkdir, and there is nothing to clean up. */
	CHECK(mount("tmpfs", spec->state_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m") ==
		      0,
	      "mounting the instance's scratch space", spec->state_dir);
	CHECK(chdir(spec->state_dir) == 0, "entering the instance directory", spec->state_dir);
	make_skeleton(errfd, spec);
	CHECK(mount("overlay", "root", "overlay", (spec->upper ? 0 : MS_RDONLY) | MS_NODEV,
		    spec->overlay_opts) == 0,
	      "mounting the root", spec->lower);
	CHECK(chdir("root") == 0, "entering the root", NULL);
	CHECK(mount_fs("proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
	      "mounting /proc", NULL);
	make_dev(errfd);
	CHECK(mount_fs("sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
	      "mounting /sys", NULL);
	if (!spec->upper) {
		CHECK(mount_fs("tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") == 0,
		      "mounting /tmp", NULL);
		CHECK(mount_fs("run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") == 0,
		      "mounting /run", NULL);
	}
	mask_paths(errfd);
	if (spec->n_mounts) {
		int rootfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		CHECK(rootfd >= 0, "opening the root", NULL);
		for (size_t i = 0; i < spec->n_mounts; i++)
			mount_volume(errfd, rootfd, &spec->mounts[i]);
		close(rootfd);
	}
	CHECK(syscall(SYS_pivot_root, ".", ".") == 0, "pivot_root", NULL);
	CHECK(umount2(".", MNT_DETACH) == 0, "detaching the host's root", NULL);
	CHECK(chdir("/") == 0, "chdir /", NULL);
	if (spec->hostname)
		CHECK(sethostname(spec->hostname, strlen(spec->hostname)) == 0, "hostname",
		      spec->hostname);
	if (spec->net == NET_PRIVATE)
		loopback_up(errfd);
	uid_t uid;
	gid_t gid;
	resolve_user(errfd, spec->user, &uid, &gid);
	run_init(errfd, spec, uid, gid);
}

struct runtime_instance {
	pid_t pid; /* the instance's init, in the host's pid namespace */
	bool reaped;
	int status;
	struct cgroup *cg;
	char message[600]; /* "errno text" from the child, when it failed */
	ssize_t message_len;
};

static int check_spec(const struct run_spec *spec, struct cairn_error *err)
{
	/* a build step may stack layers in lower: "top:...:bottom" */
	if (strpbrk(spec->lower, spec->upper ? "," : ":,") || strpbrk(spec->state_dir, ":,") ||
	    (spec->upper && (strpbrk(spec->upper, ":,") || strpbrk(spec->work, ":,"))))
		return error_set(err, EINVAL, "paths with ':' or ',' cannot be overlay layers: %s",
				 spec->lower);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const char *t = spec->mounts[i].target, *why = NULL;
		if (t[0] != '/' || !t[1])
			why = "not an absolute path below /";
		for (const char *p = t + 1; !why && *p;) {
			const char *slash = strchr(p, '/');
			size_t n = slash ? (size_t)(slash - p) : strlen(p);
			if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
				why = "empty, \".\" or \"..\" components";
			p = slash ? slash + 1 : p + n;
		}
		if (why)
			return error_set(err, EINVAL, "volume target %s: %s", t, why);
	}
	return 0;
}

int runtime_start(const struct run_spec *spec, struct runtime_instance **ret,
		  struct cairn_error *err)
{
	int r = check_spec(spec, err);
	if (r < 0)
		return r;
	/* A writable layer records whole files and directories: no redirects,
	 * no metadata-only copies, so the upper directory alone says what
	 * changed. */
	_cleanup_free_ char *opts =
		spec->upper ? xasprintf("lowerdir=%s/skel:%s,upperdir=%s,workdir=%s,"
					"redirect_dir=off,metacopy=off,index=off",
					spec->state_dir, spec->lower, spec->upper, spec->work)
			    : xasprintf("lowerdir=%s/skel:%s", spec->state_dir, spec->lower);
	struct run_spec sp = *spec;
	sp.overlay_opts = opts;
	spec = &sp;
	int64_t t0 = now_monotonic_ns();
	struct cgroup *cg = NULL;
	r = cgroup_create(spec->cgroup_name, spec->memory_bytes, spec->pids_max, spec->cpu_millis,
			  &cg, err);
	if (r < 0)
		return r;
	trace_phase("run: cgroup", t0);
	int syncp[2], errp[2];
	if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		cgroup_destroy(cg);
		return error_set(err, errno, "pipe: %s", strerror(errno));
	}
	unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
	if (spec->net != NET_HOST)
		flags |= CLONE_NEWNET;
	fflush(NULL);
	pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		close(syncp[0]);
		close(syncp[1]);
		close(errp[0]);
		close(errp[1]);
		cgroup_destroy(cg);
		return error_set(err, e, "creating the instance's namespaces: %s", strerror(e));
	}
	if (pid == 0) {
		close(syncp[1]);
		close(errp[0]);
		for (int i = 0; i < 3; i++)
			if (spec->stdio[i] > 0 && spec->stdio[i] != i &&
			    dup2(spec->stdio[i], i) < 0)
				_exit(125);
		child_main(spec, syncp[0], errp[1]);
	}
	close(syncp[0]);
	close(errp[1]);
	trace_phase("run: clone", t0);
	r = cgroup_attach(cg, pid, err);
	trace_phase("run: cgroup attach", t0);
	if (r == 0 && write(syncp[1], "g", 1) != 1)
		r = error_set(err, errno, "starting the instance: %s", strerror(errno));
	close(syncp[1]);
	struct runtime_instance *inst = xcalloc(1, sizeof(*inst));
	inst->pid = pid;
	inst->cg = cg;
	if (r < 0) {
		kill(pid, SIGKILL);
		close(errp[0]);
		struct run_result ignored;
		runtime_wait(inst, &ignored);
		return r;
	}
	/* The error pipe: EOF once the command was exec'd (or init exited). */
	inst->message_len = read_full(errp[0], inst->message, sizeof(inst->message) - 1);
	close(errp[0]);
	trace_phase("run: exec'd", t0);
	if (inst->message_len > 0) {
		inst->message[inst->message_len] = 0;
		int e = (int)strtol(inst->message, NULL, 10);
		/* Only exec's own failure is the command's; the child's exit code
		 * says which (it exits at once after writing). */
		int status = 0;
		bool exec_failed = false;
		if (waitpid(inst->pid, &status, 0) == inst->pid) {
			inst->reaped = true;
			inst->status = status;
			exec_failed = WIFEXITED(status) &&
				      (WEXITSTATUS(status) == 127 || WEXITSTATUS(status) == 126);
		}
		if (!exec_failed) {
			/* Not the command's fault: the instance could not be set up. */
			const char *text = strchr(inst->message, ' ');
			r = error_set(err, e ? e : EIO, "starting the instance: %s: %s",
				      text ? text + 1 : inst->message, strerror(e ? e : EIO));
			struct run_result ignored;
			runtime_wait(inst, &ignored);
			return r;
		}
	}
	*ret = inst;
	return 0;
}

pid_t runtime_instance_pid(const struct runtime_instance *inst)
{
	return inst->pid;
}

bool runtime_instance_exec_failed(const struct runtime_instance *inst)
{
	return inst->message_len > 0;
}

void runtime_wait(struct runtime_instance *inst, struct run_result *ret)
{
	int status = inst->status;
	while (!inst->reaped && waitpid(inst->pid, &status, 0) < 0 && errno == EINTR)
		;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	*ret = (struct run_result){.exit_code = code, .oom_killed = cgroup_oom_killed(inst->cg)};
	cgroup_destroy(inst->cg);
	if (inst->message_len > 0 && (code == 127 || code == 126)) {
		/* The command does not exist or cannot run: the command's answer
		 * (as a shell gives it), not a failure to start the instance. */
		char *text = strchr(inst->message, ' ');
		int e = (int)strtol(inst->message, NULL, 10);
		snprintf(ret->message, sizeof(ret->message), "%.400s: %s",
			 text ? text + 1 : inst->message, strerror(e ? e : ENOENT));
	}
	free(inst);
}

static pid_t forward_pid;

static void parent_forward(int sig)
{
	if (forward_pid > 0)
		kill(forward_pid, sig);
}

int runtime_run(const struct run_spec *spec, struct run_result *ret, struct cairn_error *err)
{
	static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = parent_forward}, old[ELEMENTSOF(fwd)];
	sigset_t block, prev;
	sigemptyset(&block);
	for (size_t i = 0; i < ELEMENTSOF(fwd); i++)
		sigaddset(&block, fwd[i]);
	/* Signals wait until the pid to forward them to is known. */
	sigprocmask(SIG_BLOCK, &block, &prev);
	struct runtime_instance *inst;
	int r = runtime_start(spec, &inst, err);
	if (r < 0) {
		sigprocmask(SIG_SETMASK, &prev, NULL);
		return r;
	}
	forward_pid = inst->pid;
	for (size_t i = 0; i < ELEMENTSOF(fwd); i++)
		sigaction(fwd[i], &sa, &old[i]);
	sigprocmask(SIG_SETMASK, &prev, NULL);
	runtime_wait(inst, ret);
	sigprocmask(SIG_BLOCK, &block, NULL);
	forward_pid = 0;
	for (size_t i = 0; i < ELEMENTSOF(fwd); i++)
		sigaction(fwd[i], &old[i], NULL);
	sigprocmask(SIG_SETMASK, &prev, NULL);
	return 0;
}

/* The signals that tell exec_middle its caller gave up: a timeout, or the
 * caller's death (its parent death signal). */
static void exec_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* The process between runtime_exec's caller and the command: it enters the
 * instance's namespaces (the pid namespace applies to its children, hence
 * the fork) and waits for the command. With contain (the caller blocked the
 * stop signals and SIGCHLD before the fork), it also kills the command's
 * whole session (the command called setsid: its process group is its pid)
 * when the caller sends a stop signal or dies, and once the command ended,
 * so that nothing the command started outlives it. Never returns. */
_noreturn_ static void exec_middle(int errfd, int pidfd, pid_t caller, const struct run_spec *spec,
				   bool contain)
{
	if (contain) {
		CHECK(prctl(PR_SET_PDEATHSIG, SIGTERM) == 0, "parent death signal", NULL);
		if (getppid() != caller)
			_exit(125); /* it died before the line above */
	}
	/* Every namespace of the instance at once. */
	CHECK(setns(pidfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID |
				   CLONE_NEWCGROUP) == 0,
	      "entering the instance's namespaces", NULL);
	close(pidfd);
	CHECK(chdir("/") == 0, "chdir /", NULL);
	uid_t uid;
	gid_t gid;
	resolve_user(errfd, spec->user, &uid, &gid);
	int self = -1;
	if (contain) {
		self = (int)syscall(SYS_pidfd_open, getpid(), 0);
		CHECK(self >= 0, "pidfd_open", NULL);
	}
	pid_t inner = fork();
	CHECK(inner >= 0, "fork", NULL);
	if (inner == 0)
		exec_command(errfd, spec, uid, gid, self);
	safe_close(self);
	close(errfd);
	int status = 0;
	if (!contain) {
		while (waitpid(inner, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	sigset_t wait_set;
	exec_stop_signals(&wait_set);
	sigaddset(&wait_set, SIGCHLD);
	for (;;) {
		int sig = sigwaitinfo(&wait_set, NULL);
		if (sig < 0)
			continue; /* EINTR */
		if (sig != SIGCHLD)
			break; /* the caller gave up, or died */
		/* Ended? Not reaped yet: its zombie keeps its pid, hence its
		 * process group id, from being reused before the kill below. */
		siginfo_t si = {0};
		if (waitid(P_PID, (id_t)inner, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == inner)
			break;
	}
	(void)kill(-inner, SIGKILL);
	(void)kill(inner, SIGKILL); /* when it died before its setsid */
	while (waitpid(inner, &status, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* runtime_exec's wait for a contained command (the stop signals and SIGCHLD
 * are blocked): until the middle process ends, telling it to stop at the
 * timeout or when the caller is told to stop. 1 when the timeout passed,
 * 0 when not; *ret_signal is the stop signal the caller got (0: none). */
static int wait_contained(pid_t child, int64_t timeout_ms, int *ret_signal,
			  struct cairn_error *err)
{
	sigset_t stop;
	exec_stop_signals(&stop);
	_cleanup_close_ int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	_cleanup_close_ int cfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (sfd < 0 || cfd < 0) {
		int e = errno;
		(void)kill(child, SIGTERM);
		return error_set(err, e, "watching the command: %s", strerror(e));
	}
	int64_t deadline = timeout_ms > 0 ? now_monotonic_ns() + timeout_ms * 1000000LL : 0;
	bool told = false, timed_out = false;
	*ret_signal = 0;
	for (;;) {
		int wait_ms = -1;
		if (deadline && !told) {
			int64_t left = (deadline - now_monotonic_ns() + 999999) / 1000000;
			if (left <= 0) {
				/* the middle process kills the command's session, ends */
				(void)kill(child, SIGTERM);
				told = timed_out = true;
				continue;
			}
			wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		struct pollfd p[2] = {{.fd = cfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		int r = poll(p, 2, wait_ms);
		if (r < 0 && errno != EINTR) {
			int e = errno;
			(void)kill(child, SIGTERM);
			return error_set(err, e, "poll: %s", strerror(e));
		}
		if (r > 0 && p[0].revents)
			return timed_out;
		struct signalfd_siginfo si;
		if (r > 0 && p[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			(void)kill(child, SIGTERM);
			told = true;
			if (!*ret_signal)
				*ret_signal = (int)si.ssi_signo;
		}
	}
}

int runtime_exec(pid_t pid, uint64_t pid_start, const struct run_spec *spec, int64_t timeout_ms,
		 int *ret_exit, char *ret_message, size_t message_len, struct cairn_error *err)
{
	int pidfd = runtime_pidfd(pid, pid_start);
	if (pidfd < 0)
		return error_set(err, ESRCH, "the instance is not running");
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) < 0) {
		close(pidfd);
		return error_set(err, errno, "pipe: %s", strerror(errno));
	}
	bool contain = spec->die_with_parent || timeout_ms > 0;
	/* The middle process must find the stop signals and SIGCHLD blocked
	 * from its first instruction, to take them with sigwaitinfo. */
	sigset_t block, prev;
	exec_stop_signals(&block);
	sigaddset(&block, SIGCHLD);
	if (contain)
		sigprocmask(SIG_BLOCK, &block, &prev);
	pid_t caller = getpid();
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		close(errp[0]);
		exec_middle(errp[1], pidfd, caller, spec, contain);
	}
	int fork_errno = errno;
	close(pidfd);
	close(errp[1]);
	if (child < 0) {
		if (contain)
			sigprocmask(SIG_SETMASK, &prev, NULL);
		close(errp[0]);
		return error_set(err, fork_errno, "fork: %s", strerror(fork_errno));
	}
	int timed_out = 0, stop_signal = 0;
	if (contain)
		timed_out = wait_contained(child, timeout_ms, &stop_signal, err);
	/* EOF once the command was exec'd, could not be, or was killed. */
	char msg[600];
	ssize_t n = read_full(errp[0], msg, sizeof(msg) - 1);
	close(errp[0]);
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (contain)
		sigprocmask(SIG_SETMASK, &prev, NULL);
	if (timed_out < 0)
		return timed_out;
	*ret_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (message_len)
		ret_message[0] = 0;
	if (timed_out) {
		*ret_exit = RUNTIME_EXEC_TIMED_OUT;
		snprintf(ret_message, message_len, "timed out after %lld ms", (long long)timeout_ms);
	} else if (stop_signal) {
		*ret_exit = 128 + stop_signal; /* as if it had ended us */
		snprintf(ret_message, message_len, "stopped by signal %d", stop_signal);
	} else if (n > 0) {
		msg[n] = 0;
		char *text = strchr(msg, ' ');
		int e = (int)strtol(msg, NULL, 10);
		snprintf(ret_message, message_len, "%.400s: %s", text ? text + 1 : msg,
			 strerror(e ? e : EIO));
	}
	return 0;
}
