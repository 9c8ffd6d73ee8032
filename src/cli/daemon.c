/* cairn daemon: the control plane, in the foreground. */
#include "cli.h"

#include "../daemon/daemon.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_daemon = {
	.name = "daemon",
	.args = "",
	.summary = "Run the control plane in the foreground (API on $ROOT/cairn.sock)",
	.help = "Starts the router when none runs, adopts the instances and releases the\n"
		"state database knows, and serves the API until SIGTERM. The router and the\n"
		"instances outlive it. contrib/cairn.service runs it under systemd.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_daemon, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
	if (!exe)
		return cli_fail("/proc/self/exe: %s", strerror(errno));
	if (daemon_main(cli->root, exe, &err) < 0)
		return cli_error_clear(&err);
	return 0;
}
