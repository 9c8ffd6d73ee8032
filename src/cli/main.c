/* cairn's entry point: global options (--root, --json, --help, --version),
 * then one command from the table, each in its own file. */
#include "cli.h"

#include "config.h"

#include <locale.h>
#include <sys/stat.h>

static const struct command *const commands[] = {
	&cmd_build, &cmd_import, &cmd_images, &cmd_inspect, &cmd_tag,    &cmd_rm,
	&cmd_history, &cmd_checkout, &cmd_gc, &cmd_fsck, &cmd_verify, &cmd_run, &cmd_ps, &cmd_stop,
	&cmd_logs, &cmd_exec, &cmd_daemon, &cmd_deploy, &cmd_status, &cmd_releases,
	&cmd_rollback, &cmd_promote, &cmd_scale, &cmd_events, &cmd_router, &cmd_probe,
};

static void main_help(FILE *f)
{
	fputs("Usage: cairn [--root DIR] [--json] COMMAND [ARGS...]\n"
	      "\n"
	      "cairn builds immutable, content-addressed images and keeps every version.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (!commands[i]->hidden)
			fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Options:\n"
	      "  --root DIR     the store (default $CAIRN_ROOT or /var/lib/cairn)\n"
	      "  --json         machine-readable output for listings and inspect\n"
	      "  -h, --help     this help; 'cairn COMMAND --help' for a command\n"
	      "  -V, --version  print the version\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n",
	      f);
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "C");
	umask(022);
	struct cli cli = {.root = getenv("CAIRN_ROOT")};
	if (!cli.root || !*cli.root)
		cli.root = "/var/lib/cairn";

	static const struct option opts[] = {
		{"root", required_argument, NULL, OPT_ROOT},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			cli.root = optarg;
			break;
		case OPT_JSON:
			cli.json = true;
			break;
		case 'h':
			main_help(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("cairn %s\n", CAIRN_VERSION);
			return EXIT_SUCCESS;
		case ':':
			return cli_usage(NULL, "option %s needs a value", argv[optind - 1]);
		default:
			return cli_usage(NULL, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		main_help(stderr);
		return EXIT_USAGE;
	}
	/* Paths under the root travel to other processes and into overlay
	 * options: make it absolute. */
	_cleanup_free_ char *abs_root = NULL;
	if (cli.root[0] != '/') {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return cli_fail("cannot find the current directory: %s", strerror(errno));
		abs_root = xasprintf("%s/%s", cwd, cli.root);
		cli.root = abs_root;
	}
	const char *name = argv[optind];
	if (streq(name, "help")) {
		if (optind + 1 < argc) {
			for (size_t i = 0; i < ELEMENTSOF(commands); i++)
				if (streq(commands[i]->name, argv[optind + 1])) {
					cli_command_help(commands[i], stdout);
					return EXIT_SUCCESS;
				}
			return cli_usage(NULL, "unknown command \"%s\"", argv[optind + 1]);
		}
		main_help(stdout);
		return EXIT_SUCCESS;
	}
	if (streq(name, "version")) {
		printf("cairn %s\n", CAIRN_VERSION);
		return EXIT_SUCCESS;
	}
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (streq(commands[i]->name, name)) {
			int first = optind;
			cli_getopt_reset();
			return commands[i]->run(&cli, argc - first, argv + first);
		}
	return cli_usage(NULL, "unknown command \"%s\"", name);
}
