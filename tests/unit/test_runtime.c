/* Unit tests of src/runtime that need no image: the seccomp filter and the
 * capability cuts (in a forked child), and the pid helpers that guard against
 * pid reuse. The instance itself is tested end to end (tests/e2e/2*.bats). */
#include "unit.h"

#include "../../src/runtime/runtime.h"
#include "../../src/runtime/sandbox.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Run fn in a child; return its exit code. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int seccomp_child(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sandbox_seccomp() < 0)
		return 10;
	if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM)
		return 11;
	if (mount("none", "/tmp", "tmpfs", 0, NULL) == 0 || errno != EPERM)
		return 12;
	if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) == 0 || errno != EPERM)
		return 13;
	if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
		return 14;
	/* ordinary work still works */
	if (getpid() <= 0 || access("/", F_OK) < 0)
		return 15;
	pid_t p = fork(); /* plain clone without namespace flags is allowed */
	if (p == 0)
		_exit(0);
	return p > 0 ? 0 : 16;
}

static void test_seccomp_denies(void **state)
{
	assert_int_equal(in_child(seccomp_child), 0);
}

static int caps_child(void)
{
	if (sandbox_drop_caps(true) < 0)
		return 10;
	/* CAP_SYS_ADMIN is gone: sethostname is refused */
	if (sethostname("x", 1) == 0 || errno != EPERM)
		return 11;
	if (prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0) != 0)
		return 12;
	if (prctl(PR_CAPBSET_READ, 0 /* CAP_CHOWN */, 0, 0, 0) != 1)
		return 13;
	if (sandbox_drop_caps(false) < 0)
		return 14;
	if (prctl(PR_CAPBSET_READ, 0, 0, 0, 0) != 0)
		return 15;
	return 0;
}

static void test_caps_default_set(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(caps_child), 0);
}

static void test_pid_helpers(void **state)
{
	uint64_t me = runtime_pid_start_time(getpid());
	assert_true(me > 0);
	assert_true(runtime_alive(getpid(), me));
	assert_false(runtime_alive(getpid(), me + 1)); /* a reused pid is not ours */
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	uint64_t start = runtime_pid_start_time(child);
	assert_true(start > 0);
	/* a stale start time: the signal is refused, the child lives */
	assert_int_equal(runtime_signal(child, start + 1, SIGKILL), -ESRCH);
	assert_true(runtime_alive(child, start));
	assert_int_equal(runtime_stop(child, start, 5000), 0);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_int_equal(runtime_pid_start_time(child), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seccomp_denies),
		cmocka_unit_test(test_caps_default_set),
		cmocka_unit_test(test_pid_helpers),
	};
	return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
