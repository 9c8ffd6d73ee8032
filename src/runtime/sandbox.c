/* The last steps before the command runs: capabilities cut to Docker's
 * default set, no_new_privs, and a seccomp filter that refuses the system
 * calls Docker's default profile refuses (mount, keyctl, bpf, ptrace,
 * open_by_handle_at, kexec, namespaces of any kind, ...). */
#include "sandbox.h"

#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static const cap_value_t default_caps[] = {
	CAP_CHOWN,	  CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER,	      CAP_MKNOD,
	CAP_NET_RAW,	  CAP_SETGID,	    CAP_SETUID, CAP_SETFCAP,	      CAP_SETPCAP,
	CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

int sandbox_limit_bounding(bool keep_defaults)
{
	/* Needs CAP_SETPCAP in the effective set: call while still root. */
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		bool keep = false;
		for (size_t i = 0; keep_defaults && i < ELEMENTSOF(default_caps); i++)
			keep = keep || default_caps[i] == c;
		if (!keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

int sandbox_drop_caps(bool keep_defaults)
{
	int r = sandbox_limit_bounding(keep_defaults);
	if (r < 0)
		return r;
	return sandbox_set_caps(keep_defaults);
}

int sandbox_set_caps(bool keep_defaults)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	cap_t caps = cap_init();
	if (!caps)
		return -ENOMEM;
	int r = 0;
	if (keep_defaults &&
	    (cap_set_flag(caps, CAP_EFFECTIVE, ELEMENTSOF(default_caps), default_caps, CAP_SET) < 0 ||
	     cap_set_flag(caps, CAP_PERMITTED, ELEMENTSOF(default_caps), default_caps, CAP_SET) < 0))
		r = -errno;
	if (r == 0 && cap_set_proc(caps) < 0)
		r = -errno;
	cap_free(caps);
	return r;
}

/* Refused with EPERM, as Docker's default profile refuses them to a
 * container without CAP_SYS_ADMIN and friends. */
static const char *const denied[] = {
	"acct",		     "add_key",		 "bpf",		      "clock_adjtime",
	"clock_settime",     "create_module",	 "delete_module",     "finit_module",
	"fsconfig",	     "fsmount",		 "fsopen",	      "fspick",
	"get_kernel_syms",   "get_mempolicy",	 "init_module",	      "io_uring_enter",
	"io_uring_register", "io_uring_setup",	 "ioperm",	      "iopl",
	"kcmp",		     "kexec_file_load",	 "kexec_load",	      "keyctl",
	"lookup_dcookie",    "mbind",		 "mount",	      "mount_setattr",
	"move_mount",	     "move_pages",	 "name_to_handle_at", "nfsservctl",
	"open_by_handle_at", "open_tree",	 "perf_event_open",   "pivot_root",
	"process_vm_readv",  "process_vm_writev", "ptrace",	      "query_module",
	"quotactl",	     "quotactl_fd",	 "reboot",	      "request_key",
	"set_mempolicy",     "setns",		 "settimeofday",      "stime",
	"swapoff",	     "swapon",		 "sysfs",	      "_sysctl",
	"syslog",	     "umount",		 "umount2",	      "unshare",
	"uselib",	     "userfaultfd",	 "ustat",	      "vm86",
	"vm86old",
};

int sandbox_seccomp(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < ELEMENTSOF(denied) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr != __NR_SCMP_ERROR)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* clone with any namespace flag (a user namespace above all): refused.
	 * clone3 hides its flags in memory a filter cannot read, so it answers
	 * ENOSYS and the C library falls back to clone. */
	static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
					    CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
					    CLONE_NEWCGROUP};
	for (size_t i = 0; i < ELEMENTSOF(ns_flags) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
