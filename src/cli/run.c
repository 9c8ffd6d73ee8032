/* cairn run IMAGE [-- CMD ARGS...]: run an image's command in a new instance,
 * in the foreground, and exit with the command's exit code. */
#include "cli.h"

#include "../base/buf.h"
#include "../base/fs.h"

#include <ctype.h>
#include <sys/stat.h>
#include "../image/image.h"
#include "../runtime/runtime.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_run = {
	.name = "run",
	.args = "[OPTIONS] IMAGE [-- CMD ARGS...]",
	.summary = "Run a command in a new instance of an image (read-only root)",
	.help = "Runs the image's Entrypoint and Cmd, or CMD when given, and exits with its\n"
		"exit code (127 when the command does not exist, 128+N when killed by signal N).\n"
		"\n"
		"Options:\n"
		"  -d, --detach           run in the background under a monitor; print the id\n"
		"  -e, --env K[=V]       set an environment variable (K alone: its value here)\n"
		"  -p, --publish [IP:]HOSTPORT:PORT  relay HOSTPORT on the host (IP default\n"
		"                         127.0.0.1) to PORT inside the instance (with -d)\n"
		"  -v, --volume SRC:DST[:ro]  SRC a volume name ($ROOT/volumes/SRC) or an\n"
		"                         absolute host path; DST an absolute path inside\n"
		"  -u, --user USER[:GROUP] run as this user (name or uid from the image)\n"
		"  -w, --workdir DIR      working directory inside the instance\n"
		"  --name NAME            hostname and name of the instance\n"
		"  --network MODE         private (default: own network, loopback only),\n"
		"                         none (no network at all), host (the host's)\n"
		"  --memory SIZE          memory limit (64M, 1G); exceeding it kills the command\n"
		"  --pids N               limit on processes and threads\n"
		"  --cpus N               CPU limit (0.5 = half a core)\n",
	.run = run,
};

static int parse_volume(struct cli *cli, const char *arg, struct mount_spec *ret,
			struct cairn_error *err)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *parts[3] = {0};
	size_t n = 0;
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			return error_set(err, EINVAL, "-v %s: expected SRC:DST[:ro]", arg);
		parts[n++] = p;
	}
	if (n < 2 || (n == 3 && !streq(parts[2], "ro") && !streq(parts[2], "rw")))
		return error_set(err, EINVAL, "-v %s: expected SRC:DST[:ro]", arg);
	if (parts[1][0] != '/')
		return error_set(err, EINVAL, "-v %s: the target %s is not an absolute path", arg,
				 parts[1]);
	for (const char *p = parts[1]; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return error_set(err, EINVAL, "-v %s: the target escapes with \"..\"", arg);
		p = slash ? slash + 1 : p + len;
	}
	if (parts[0][0] == '/') {
		struct stat st;
		if (stat(parts[0], &st) < 0 || !S_ISDIR(st.st_mode))
			return error_set(err, ENOENT, "-v %s: %s is not a directory", arg, parts[0]);
		ret->source = xstrdup(parts[0]);
	} else {
		for (const char *p = parts[0]; *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.') ||
			    streq(parts[0], ".") || streq(parts[0], ".."))
				return error_set(err, EINVAL,
						 "-v %s: a volume name is letters, digits, '_', '-', "
						 "'.'",
						 arg);
		/* made once the image is known (run()), so a refused run creates
		 * no volume */
		ret->source = xasprintf("%s/volumes/%s", cli->root, parts[0]);
		ret->named = true;
	}
	ret->target = xstrdup(parts[1]);
	ret->read_only = n == 3 && streq(parts[2], "ro");
	return 0;
}

struct monitor_ctx {
	struct state *st;
	const char *id;
	int ready_fd;
};

static void monitor_started(void *u, pid_t pid, uint64_t pid_start)
{
	struct monitor_ctx *m = u;
	(void)state_instance_set_running(m->st, m->id, pid, pid_start, getpid(), NULL);
	(void)state_event(m->st, "instance.start", m->id, "", NULL);
	m->ready_fd = safe_close(m->ready_fd); /* the CLI may go now */
}

static void monitor_exited(void *u, const struct run_result *res)
{
	struct monitor_ctx *m = u;
	(void)state_instance_set_exited(m->st, m->id, res->exit_code, res->oom_killed, NULL);
	_cleanup_free_ char *detail = xasprintf("exit %d%s", res->exit_code,
						res->oom_killed ? " (out of memory)" : "");
	(void)state_event(m->st, "instance.exit", m->id, detail, NULL);
	if (m->ready_fd >= 0 && res->message[0]) {
		/* The command could not even start: tell the waiting CLI. */
		_cleanup_free_ char *msg = xasprintf("%d %s", res->exit_code, res->message);
		(void)write_all(m->ready_fd, msg, strlen(msg));
	}
	m->ready_fd = safe_close(m->ready_fd);
}

/* The monitor process: its own session, no fd of the CLI's but the
 * readiness pipe, its own database connection. Never returns. */
_noreturn_ static void monitor_main(struct cli *cli, const struct run_spec *spec, const char *iid,
				    int ready_fd)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && devnull >= 0; i++)
		(void)dup2(devnull, i);
	/* Keep fd 3 (readiness) and 4.. (published ports); close the rest. */
	int hi = fcntl(ready_fd, F_DUPFD_CLOEXEC, 100);
	struct run_spec sp = *spec;
	struct port_map *pm = xcalloc(spec->n_ports + 1, sizeof(*pm));
	for (size_t i = 0; i < spec->n_ports; i++)
		pm[i] = (struct port_map){fcntl(spec->ports[i].listen_fd, F_DUPFD_CLOEXEC, 100),
					  spec->ports[i].port};
	if (hi < 0 || dup3(hi, 3, O_CLOEXEC) < 0)
		_exit(1);
	ready_fd = 3;
	for (size_t i = 0; i < spec->n_ports; i++) {
		if (pm[i].listen_fd < 0 || dup3(pm[i].listen_fd, 4 + (int)i, O_CLOEXEC) < 0)
			_exit(1);
		pm[i].listen_fd = 4 + (int)i;
	}
	sp.ports = pm;
	spec = &sp;
	(void)syscall(SYS_close_range, 4 + (unsigned)spec->n_ports, ~0U, 0);
	struct cairn_error err = {0};
	struct state *st = NULL;
	_cleanup_free_ char *dir = xasprintf("%s/instances/%s", cli->root, iid);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || cli_open_state(cli, &st, &err) < 0) {
		_cleanup_free_ char *msg = xasprintf("1 %s", err.msg ? err.msg : strerror(errno));
		(void)write_all(ready_fd, msg, strlen(msg));
		_exit(1);
	}
	struct monitor_ctx m = {st, iid, ready_fd};
	struct monitor_hooks hooks = {monitor_started, monitor_exited, &m};
	if (runtime_monitor(spec, dirfd, &hooks, &err) < 0) {
		(void)state_instance_set_exited(st, iid, 125, false, NULL);
		_cleanup_free_ char *msg = xasprintf("1 %s", error_message(&err));
		if (m.ready_fd >= 0)
			(void)write_all(m.ready_fd, msg, strlen(msg));
		_exit(1);
	}
	state_close(st);
	_exit(0);
}

/* Record the instance, start its monitor (double fork, new session), and
 * wait until the command was exec'd. */
static int run_detached(struct cli *cli, const struct run_spec *spec, struct state **stp,
			const char *iid, const char *image, const char *ports_desc,
			struct cairn_error *err)
{
	struct state *st = *stp;
	struct buf cmd = {0};
	for (char **a = spec->argv; *a; a++) {
		if (cmd.len)
			buf_putc(&cmd, ' ');
		buf_puts(&cmd, *a);
	}
	struct state_instance in = {.name = (char *)spec->hostname, .command = cmd.data,
				    .ports = (char *)ports_desc};
	snprintf(in.id, sizeof(in.id), "%s", iid);
	memcpy(in.image, image, sizeof(in.image));
	int r = state_instance_add(st, &in, err);
	buf_free(&cmd);
	if (r < 0)
		return r;
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return error_set(err, errno, "pipe: %s", strerror(errno));
	/* SQLite's state must not cross a fork: the monitor opens its own. */
	*stp = st = state_close(st);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(ready[0]);
		close(ready[1]);
		return error_set(err, errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(ready[0]);
		if (setsid() < 0)
			_exit(1);
		pid_t m = fork();
		if (m != 0)
			_exit(m < 0);
		monitor_main(cli, spec, iid, ready[1]);
	}
	close(ready[1]);
	int status;
	(void)waitpid(pid, &status, 0);
	char msg[800];
	ssize_t n = read_full(ready[0], msg, sizeof(msg) - 1);
	close(ready[0]);
	if (n > 0) {
		msg[n] = 0;
		char *text = strchr(msg, ' ');
		int code = (int)strtol(msg, NULL, 10);
		fprintf(stderr, "cairn: %s\n", text ? text + 1 : msg);
		return code == 126 || code == 127 ? code : EXIT_FAILURE;
	}
	struct state_instance now = {0};
	if (cli_open_state(cli, stp, err) < 0)
		return -EIO;
	st = *stp;
	if (state_instance_find(st, iid, &now, err) < 0) {
		state_instance_free(&now);
		return error_set(err, EIO, "the monitor of %s went away", iid);
	}
	state_instance_free(&now);
	if (cli->json)
		print_json(json_pack("{s:s}", "id", iid));
	else
		puts(iid);
	return EXIT_SUCCESS;
}

/* Strings of a JSON array, or NULL. */
static size_t json_strings(json_t *arr, char ***v, size_t n, size_t *cap)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
	{
		if (!json_is_string(x))
			continue;
		*v = xgrow(*v, cap, n + 2, sizeof(char *));
		(*v)[n++] = xstrdup(json_string_value(x));
		(*v)[n] = NULL;
	}
	return n;
}

/* -p [IP:]HOSTPORT:PORT: bind and listen now, so a port in use is reported
 * here and a client can connect as soon as the monitor runs. */
static int publish(const char *arg, struct port_map *ret, struct buf *desc,
		   struct cairn_error *err)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *parts[3];
	size_t n = 0;
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			return error_set(err, EINVAL, "-p %s: expected [IP:]HOSTPORT:PORT", arg);
		parts[n++] = p;
	}
	if (n < 2)
		return error_set(err, EINVAL, "-p %s: expected [IP:]HOSTPORT:PORT", arg);
	const char *ip = n == 3 ? parts[0] : "127.0.0.1";
	uint64_t hp, cp;
	if (parse_u64(parts[n - 2], &hp) < 0 || hp == 0 || hp > 65535 ||
	    parse_u64(parts[n - 1], &cp) < 0 || cp == 0 || cp > 65535)
		return error_set(err, EINVAL, "-p %s: ports are numbers from 1 to 65535", arg);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp)};
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return error_set(err, EINVAL, "-p %s: %s is not an IPv4 address", arg, ip);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
		int e = errno;
		safe_close(fd);
		return error_set(err, e, "-p %s: %s:%llu: %s", arg, ip, (unsigned long long)hp,
				 strerror(e));
	}
	*ret = (struct port_map){fd, (uint16_t)cp};
	buf_printf(desc, "%s%s:%llu->%llu/tcp", desc->len ? ", " : "", ip,
		   (unsigned long long)hp, (unsigned long long)cp);
	return 0;
}

/* Free what option parsing collected, and pass the exit code through. */
/* "-e K" values made here (freed with the env array) */
static char **env_owned;
static size_t n_env_owned;

static void env_owned_free(void)
{
	for (size_t i = 0; i < n_env_owned; i++)
		free(env_owned[i]);
	free(env_owned);
	env_owned = NULL;
	n_env_owned = 0;
}

static int opts_fail(struct run_spec *spec, char **env, struct buf *ports, int code)
{
	env_owned_free();
	buf_free(ports);
	for (size_t i = 0; i < spec->n_ports; i++)
		safe_close(spec->ports[i].listen_fd);
	free(spec->ports);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		free(spec->mounts[i].source);
		free(spec->mounts[i].target);
	}
	free(spec->mounts);
	free(env);
	return code;
}

static int run(struct cli *cli, int argc, char **argv)
{
	enum { OPT_NAME = OPT_COMMON_END, OPT_NETWORK, OPT_MEMORY, OPT_PIDS, OPT_CPUS };
	static const struct option opts[] = {
		COMMON_LONG_OPTIONS,
		{"env", required_argument, NULL, 'e'},
		{"detach", no_argument, NULL, 'd'},
		{"publish", required_argument, NULL, 'p'},
		{"volume", required_argument, NULL, 'v'},
		{"user", required_argument, NULL, 'u'},
		{"workdir", required_argument, NULL, 'w'},
		{"name", required_argument, NULL, OPT_NAME},
		{"network", required_argument, NULL, OPT_NETWORK},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"pids", required_argument, NULL, OPT_PIDS},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{0},
	};
	struct cairn_error err = {0};
	struct run_spec spec = {.net = NET_PRIVATE};
	char **env = NULL;
	size_t n_env = 0, cap_env = 0;
	int c, r;
	bool detach = false;
	struct buf ports = {0};
	while ((c = getopt_long(argc, argv, "+:hde:p:v:u:w:", opts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'd':
			detach = true;
			break;
		case 'p':
			spec.ports = xreallocarray(spec.ports, spec.n_ports + 1, sizeof(*spec.ports));
			if (publish(optarg, &spec.ports[spec.n_ports], &ports, &err) < 0) {
				int q = cli_error(&err);
				error_clear(&err);
				return opts_fail(&spec, env, &ports, q);
			}
			spec.n_ports++;
			break;
		case 'e':
			if (!*optarg || optarg[0] == '=')
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "-e %s: expected K=V or K", optarg));
			if (!strchr(optarg, '=')) {
				/* "-e K": K's value here, as Docker; nothing when unset */
				const char *val = getenv(optarg);
				if (!val)
					break;
				optarg = xasprintf("%s=%s", optarg, val);
				env_owned = xreallocarray(env_owned, n_env_owned + 1, sizeof(char *));
				env_owned[n_env_owned++] = optarg;
			}
			env = xgrow(env, &cap_env, n_env + 2, sizeof(char *));
			env[n_env++] = optarg;
			env[n_env] = NULL;
			break;
		case 'v':
			spec.mounts = xreallocarray(spec.mounts, spec.n_mounts + 1,
						    sizeof(*spec.mounts));
			spec.mounts[spec.n_mounts] = (struct mount_spec){0};
			if (parse_volume(cli, optarg, &spec.mounts[spec.n_mounts], &err) < 0)
			{
				int q = cli_error(&err);
				error_clear(&err);
				return opts_fail(&spec, env, &ports, q);
			}
			spec.n_mounts++;
			break;
		case 'u':
			spec.user = optarg;
			break;
		case 'w':
			if (optarg[0] != '/')
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "--workdir %s: not an absolute path", optarg));
			spec.workdir = optarg;
			break;
		case OPT_NAME:
			spec.hostname = optarg;
			break;
		case OPT_NETWORK:
			if (streq(optarg, "private"))
				spec.net = NET_PRIVATE;
			else if (streq(optarg, "none"))
				spec.net = NET_NONE;
			else if (streq(optarg, "host"))
				spec.net = NET_HOST;
			else
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "--network %s: expected private, none or host",
						 optarg));
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &v) < 0 || v < (1u << 20))
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "--memory %s: expected a size of at least 1M",
						 optarg));
			spec.memory_bytes = v;
			break;
		case OPT_PIDS:
			if (parse_u64(optarg, &v) < 0 || v == 0)
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "--pids %s: expected a positive number", optarg));
			spec.pids_max = v;
			break;
		case OPT_CPUS: {
			char *end;
			double d = strtod(optarg, &end);
			if (*end || !(d > 0) || d > 1024)
				return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "--cpus %s: expected a number like 0.5", optarg));
			spec.cpu_millis = (uint64_t)(d * 1000 + 0.5);
			break;
		}
		default:
			r = cli_common_option(cli, &cmd_run, c, argv);
			if (r >= 0)
				return opts_fail(&spec, env, &ports, r);
		}
	}
	if (optind >= argc)
		return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "expected an IMAGE"));
	if (spec.n_ports && !detach)
		return opts_fail(&spec, env, &ports, cli_usage(&cmd_run, "-p needs -d (a monitor relays the port)"));
	const char *ref = argv[optind++];
	if (optind < argc && streq(argv[optind], "--"))
		optind++;

	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	struct image_manifest m = {0};
	struct tree t = {0};
	char id[DIGEST_STR_LEN];
	_cleanup_free_ char *checkout = NULL, *state_dir = NULL, *iid = NULL, *host = NULL;
	char **cmd = NULL, **envv = NULL;
	size_t n_cmd = 0, cap_cmd = 0, n_envv = 0, cap_envv = 0;
	r = EXIT_FAILURE;
	int64_t t0 = now_monotonic_ns();
	if (cli_open_image(cli, ref, true, &st, &store, id, &m, NULL, &err) < 0)
		goto out;
	for (size_t i = 0; i < spec.n_mounts; i++)
		if (spec.mounts[i].named && mkdir(spec.mounts[i].source, 0755) < 0 &&
		    errno != EEXIST) {
			error_set(&err, errno, "volume %s: %s", spec.mounts[i].source,
				  strerror(errno));
			goto out;
		}
	trace_phase("run: image loaded", t0);
	/* The command: CMD from the command line, else Entrypoint + Cmd. */
	json_t *cfg = m.config;
	n_cmd = json_strings(json_object_get(cfg, "Entrypoint"), &cmd, 0, &cap_cmd);
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			cmd = xgrow(cmd, &cap_cmd, n_cmd + 2, sizeof(char *));
			cmd[n_cmd++] = xstrdup(argv[i]);
			cmd[n_cmd] = NULL;
		}
	} else
		n_cmd = json_strings(json_object_get(cfg, "Cmd"), &cmd, n_cmd, &cap_cmd);
	if (n_cmd == 0) {
		error_set(&err, EINVAL, "image %.19s has no command; give one after --", id);
		goto out;
	}
	spec.argv = cmd;
	/* Environment: a default PATH and HOME, the image's, then -e. */
	static const char *const defaults[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
	for (size_t i = 0; i < ELEMENTSOF(defaults); i++) {
		envv = xgrow(envv, &cap_envv, n_envv + 2, sizeof(char *));
		envv[n_envv++] = xstrdup(defaults[i]);
		envv[n_envv] = NULL;
	}
	n_envv = json_strings(json_object_get(cfg, "Env"), &envv, n_envv, &cap_envv);
	for (size_t i = 0; i < n_env; i++) {
		envv = xgrow(envv, &cap_envv, n_envv + 2, sizeof(char *));
		envv[n_envv++] = xstrdup(env[i]);
		envv[n_envv] = NULL;
	}
	spec.env = envv;
	if (!spec.workdir)
		spec.workdir = json_string_value(json_object_get(cfg, "WorkingDir"));
	if (!spec.user)
		spec.user = json_string_value(json_object_get(cfg, "User"));

	/* The image's shared checkout, made once. */
	checkout = xasprintf("%s/checkouts/%s", cli->root, id + 7);
	if (access(checkout, F_OK) < 0) {
		struct digest d;
		if (digest_from_string(id, &d) < 0 || image_load(store, &d, NULL, &t, &err) < 0)
			goto out;
		/* Another run may make it at the same time: either one will do. */
		if (store_checkout(store, &t, checkout, true, &err) < 0 &&
		    access(checkout, F_OK) < 0)
			goto out;
		error_clear(&err);
	}
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		error_set(&err, EIO, "no randomness for an instance id");
		goto out;
	}
	iid = hex_encode(rnd, sizeof(rnd));
	state_dir = xasprintf("%s/instances/%s", cli->root, iid);
	if (mkdir(state_dir, 0700) < 0) {
		error_set(&err, errno, "%s: %s", state_dir, strerror(errno));
		goto out;
	}
	spec.lower = checkout;
	spec.state_dir = state_dir;
	/* A cgroup only when there is a limit to enforce: moving a process into
	 * a v1 cgroup waits for an RCU grace period, milliseconds at times. */
	if (spec.memory_bytes || spec.pids_max || spec.cpu_millis)
		spec.cgroup_name = iid;
	if (!spec.hostname) {
		host = xstrndup(iid, 12);
		spec.hostname = host;
	}
	if (detach) {
		r = run_detached(cli, &spec, &st, iid, id, ports.data ? ports.data : "", &err);
		if (r < 0) {
			/* Nothing started: no instance directory stays behind. */
			(void)rm_rf_at(AT_FDCWD, state_dir);
			r = EXIT_FAILURE;
		}
		goto out;
	}
	struct run_result res;
	spec.die_with_parent = true; /* a foreground instance ends with its cairn */
	int q = runtime_run(&spec, &res, &err);
	t0 = now_monotonic_ns();
	(void)rm_rf_at(AT_FDCWD, state_dir);
	trace_phase("run: instance dir removed", t0);
	if (q < 0)
		goto out;
	if (res.message[0])
		fprintf(stderr, "cairn: %s\n", res.message);
	if (res.oom_killed)
		fprintf(stderr, "cairn: the command was killed: out of memory (--memory)\n");
	r = res.exit_code;
out:
	if (r == EXIT_FAILURE && err.code)
		r = cli_error(&err);
	error_clear(&err);
	image_manifest_free(&m);
	tree_free(&t);
	for (size_t i = 0; i < n_cmd; i++)
		free(cmd[i]);
	free(cmd);
	for (size_t i = 0; i < n_envv; i++)
		free(envv[i]);
	free(envv);
	free(env);
	env_owned_free();
	for (size_t i = 0; i < spec.n_mounts; i++) {
		free(spec.mounts[i].source);
		free(spec.mounts[i].target);
	}
	free(spec.mounts);
	for (size_t i = 0; i < spec.n_ports; i++)
		safe_close(spec.ports[i].listen_fd);
	free(spec.ports);
	buf_free(&ports);
	return r;
}
