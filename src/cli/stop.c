/* cairn stop [--time N] INSTANCE...: SIGTERM, a grace period, then SIGKILL.
 * Works whether or not the instance's monitor is still alive: when it is
 * not, stop records the end itself. */
#include "cli.h"

#include "../runtime/runtime.h"

#include <poll.h>
#include <signal.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_stop = {
	.name = "stop",
	.args = "[--time SECONDS] INSTANCE...",
	.summary = "Stop instances: SIGTERM, then SIGKILL after the grace period",
	.help = "INSTANCE is an id, a unique id prefix, or a name.\n"
		"\n"
		"Options:\n"
		"  -t, --time SECONDS   grace period before SIGKILL (default 10)\n",
	.run = run,
};

/* Wait (up to a deadline) for the monitor to record the end; record it
 * ourselves when the monitor is gone. */
static int settle(struct state *st, const struct state_instance *in, bool killed,
		  struct cairn_error *err)
{
	int64_t deadline = now_monotonic_ns() + 5 * 1000000000LL;
	for (;;) {
		struct state_instance now = {0};
		int r = state_instance_find(st, in->id, &now, err);
		if (r < 0)
			return r;
		bool done = !streq(now.state, "running");
		state_instance_free(&now);
		if (done)
			return 0;
		bool monitor = runtime_alive(in->monitor_pid, 0);
		if (!monitor || now_monotonic_ns() > deadline)
			break;
		(void)poll(NULL, 0, 10); /* the monitor writes within milliseconds */
	}
	/* No monitor to tell: the instance's cgroup and record are ours. */
	runtime_cgroup_remove(in->id);
	/* The command's own status died with its monitor: say what ended it. */
	int r = state_instance_set_exited(st, in->id, killed ? 137 : 143, false, err);
	return r == -ENOENT ? 0 : r;
}

int instance_stop(struct state *st, const struct state_instance *in, int grace_ms,
		  struct cairn_error *err)
{
	if (streq(in->state, "exited"))
		return 0;
	int r = runtime_stop(in->pid, in->pid_start, grace_ms);
	if (r < 0)
		return error_set(err, -r, "stopping %s (pid %d): %s", in->name, in->pid,
				 strerror(-r));
	r = settle(st, in, r == 1, err);
	if (r == 0)
		(void)state_event(st, "instance.stop", in->id, "", NULL);
	return r;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"time", required_argument, NULL, 't'}, {0}};
	uint64_t secs = 10;
	int c;
	while ((c = getopt_long(argc, argv, "+:ht:", opts, NULL)) != -1) {
		if (c == 't') {
			if (parse_u64(optarg, &secs) < 0 || secs > 86400)
				return cli_usage(&cmd_stop, "--time %s: expected seconds", optarg);
			continue;
		}
		int r = cli_common_option(cli, &cmd_stop, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind >= argc)
		return cli_usage(&cmd_stop, "expected an INSTANCE");
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	if (cli_open_state(cli, &st, &err) < 0)
		return cli_error(&err);
	int rc = EXIT_SUCCESS;
	for (int i = optind; i < argc; i++) {
		struct state_instance in = {0};
		int r = state_instance_find(st, argv[i], &in, &err);
		if (r == -ENOENT)
			r = error_set(&err, ENOENT, "no instance %s (see 'cairn ps -a')", argv[i]);
		if (r == 0)
			r = instance_stop(st, &in, (int)secs * 1000, &err);
		if (r < 0) {
			rc = cli_error(&err);
			error_clear(&err);
		} else
			puts(in.id);
		state_instance_free(&in);
	}
	return rc;
}
