/* cairn router: the router process (started by the daemon; not for users).
 * Serves $ROOT/router.sock until SIGTERM. */
#include "cli.h"

#include "../router/router.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_router = {
	.name = "router",
	.args = "[--workers N]",
	.summary = "Run the router in the foreground (the daemon starts it)",
	.help = "Listens on $ROOT/router.sock (mode 0600) for the daemon's route tables.\n"
		"Options:\n"
		"  --workers N   threads serving traffic (default: one per CPU, at most 16;\n"
		"                also CAIRN_ROUTER_WORKERS)\n",
	.run = run,
};

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"workers", required_argument, NULL, 'W'},
					     {0}};
	const char *workers = getenv("CAIRN_ROUTER_WORKERS");
	int c;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'W') {
			workers = optarg;
			continue;
		}
		int r = cli_common_option(cli, &cmd_router, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind < argc)
		return cli_usage(&cmd_router, "unexpected argument \"%s\"", argv[optind]);
	uint64_t n = 0;
	if (workers && *workers && (parse_u64(workers, &n) < 0 || n < 1 || n > 64))
		return cli_usage(&cmd_router, "--workers: expected 1 to 64, got \"%s\"", workers);
	struct cairn_error err = {0};
	_cleanup_free_ char *path = xasprintf("%s/router.sock", cli->root);
	if (mkdir(cli->root, 0700) < 0 && errno != EEXIST)
		return cli_fail("%s: %s", cli->root, strerror(errno));
	if (router_main(path, (unsigned)n, &err) < 0)
		return cli_error_clear(&err);
	return 0;
}
