/* cairn ps [-a]: instances, with the truth about each: a record that says
 * running whose process is gone is shown dead. */
#include "cli.h"

#include "../runtime/runtime.h"

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_ps = {
	.name = "ps",
	.args = "[-a]",
	.summary = "List instances: id, name, image, state, started, pid, ports, tainted",
	.help = "Options:\n"
		"  -a, --all   also instances that have exited\n",
	.run = run,
};

/* The state to show: the record's, corrected by what the kernel says. */
const char *instance_true_state(const struct state_instance *in)
{
	if (streq(in->state, "running") && !runtime_alive(in->pid, in->pid_start))
		return "dead";
	return in->state;
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS, {"all", no_argument, NULL, 'a'},
					     {0}};
	bool all = false;
	int c;
	while ((c = getopt_long(argc, argv, "+:ha", opts, NULL)) != -1) {
		if (c == 'a') {
			all = true;
			continue;
		}
		int r = cli_common_option(cli, &cmd_ps, c, argv);
		if (r >= 0)
			return r;
	}
	if (optind != argc)
		return cli_usage(&cmd_ps, "unexpected argument \"%s\"", argv[optind]);
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	struct state_instance *v = NULL;
	size_t n = 0;
	if (cli_open_state(cli, &st, &err) < 0 || state_instance_list(st, true, &v, &n, &err) < 0) {
		int r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	json_t *arr = cli->json ? json_array() : NULL;
	if (!arr)
		printf("%-12s %-16s %-12s %-12s %-20s %-8s %-16s %s\n", "INSTANCE", "NAME", "IMAGE",
		       "STATE", "STARTED", "PID", "PORTS", "TAINTED");
	for (size_t i = 0; i < n; i++) {
		struct state_instance *in = &v[i];
		const char *state = instance_true_state(in);
		if (!all && streq(state, "exited"))
			continue;
		char started[48] = "-", image[13], shown[32];
		if (in->started_ns)
			format_time(in->started_ns, started, sizeof(started));
		format_short_id(in->image, image);
		if (streq(state, "exited"))
			snprintf(shown, sizeof(shown), "exited (%d)", in->exit_code);
		else
			snprintf(shown, sizeof(shown), "%s", state);
		if (arr) {
			char iso[48] = "";
			if (in->started_ns)
				format_time_iso(in->started_ns, iso, sizeof(iso));
			json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:i, s:s, s:b, s:s?}",
					      "id", in->id, "name", in->name, "image", in->image,
					      "command", in->command, "state", state, "started",
					      in->started_ns ? iso : NULL, "pid", in->pid, "ports",
					      in->ports, "tainted", in->tainted, "tainted_why",
					      in->tainted ? in->tainted_why : NULL);
			if (streq(state, "exited"))
				json_object_set_new(o, "exit_code", json_integer(in->exit_code));
			json_array_append_new(arr, o);
		} else {
			char pid[16] = "-";
			if (streq(state, "running"))
				snprintf(pid, sizeof(pid), "%d", in->pid);
			printf("%-12.12s %-16s %-12s %-12s %-20s %-8s %-16s %s\n", in->id, in->name,
			       image, shown, started, pid, *in->ports ? in->ports : "-",
			       in->tainted ? "yes" : "no");
		}
	}
	state_instances_free(v, n);
	if (arr)
		print_json(arr);
	return EXIT_SUCCESS;
}
