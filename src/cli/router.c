/* cairn router: the router process (started by the daemon; not for users).
 * Serves $ROOT/router.sock until SIGTERM. */
#include "cli.h"

#include "../router/router.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_router = {
	.name = "router",
	.args = "",
	.summary = "Run the router in the foreground (the daemon starts it)",
	.help = "Listens on $ROOT/router.sock (mode 0600) for the daemon's route tables.\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	int r = cli_parse_simple(cli, &cmd_router, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	struct cairn_error err = {0};
	_cleanup_free_ char *path = xasprintf("%s/router.sock", cli->root);
	if (mkdir(cli->root, 0700) < 0 && errno != EEXIST)
		return cli_fail("%s: %s", cli->root, strerror(errno));
	if (router_main(path, &err) < 0)
		return cli_error_clear(&err);
	return 0;
}
