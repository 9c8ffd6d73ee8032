/* cairn logs [-f] [--tail N] INSTANCE: what an instance wrote on stdout and
 * stderr, from the log its monitor keeps ($ROOT/instances/<id>/log, log.1). */
#include "cli.h"

#include "../base/buf.h"
#include "../base/fs.h"
#include "../runtime/runtime.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_logs = {
	.name = "logs",
	.args = "[-f] [--tail N] INSTANCE",
	.summary = "Print an instance's output (stdout and stderr)",
	.help = "Options:\n"
		"  -f, --follow   keep printing new output until the instance ends\n"
		"  -n, --tail N   only the last N lines\n",
	.run = run,
};

static void append_file(int dirfd, const char *name, struct buf *b)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (read_file_at(dirfd, name, &data, &len, 64u << 20) == 0)
		buf_put(b, data, len);
}

static int run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS,
					     {"follow", no_argument, NULL, 'f'},
					     {"tail", required_argument, NULL, 'n'}, {0}};
	bool follow = false;
	uint64_t tail = UINT64_MAX;
	int c;
	while ((c = getopt_long(argc, argv, "+:hfn:", opts, NULL)) != -1) {
		if (c == 'f') {
			follow = true;
			continue;
		}
		if (c == 'n') {
			if (parse_u64(optarg, &tail) < 0)
				return cli_usage(&cmd_logs, "--tail %s: expected a number", optarg);
			continue;
		}
		int r = cli_common_option(cli, &cmd_logs, c, argv);
		if (r >= 0)
			return r;
	}
	if (argc - optind != 1)
		return cli_usage(&cmd_logs, "expected one INSTANCE");
	struct cairn_error err = {0};
	_cleanup_(state_closep) struct state *st = NULL;
	struct state_instance in = {0};
	int r = cli_open_state(cli, &st, &err);
	if (r == 0) {
		r = state_instance_find(st, argv[optind], &in, &err);
		if (r == -ENOENT)
			r = error_set(&err, ENOENT, "no instance %s (see 'cairn ps -a')", argv[optind]);
	}
	if (r < 0) {
		r = cli_error(&err);
		error_clear(&err);
		return r;
	}
	_cleanup_free_ char *dir = xasprintf("%s/instances/%s", cli->root, in.id);
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		state_instance_free(&in);
		return cli_fail("%s: %s", dir, strerror(errno));
	}
	/* Watch before reading, so nothing written in between is missed. */
	_cleanup_close_ int ino = follow ? inotify_init1(IN_CLOEXEC) : -1;
	if (ino >= 0)
		(void)inotify_add_watch(ino, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
	struct buf b = {0};
	append_file(dirfd, "log.1", &b);
	append_file(dirfd, "log", &b);
	size_t start = 0;
	if (tail != UINT64_MAX) {
		/* After the tail-th newline from the end (a last newline ends the
		 * last line, it does not start an empty one). */
		size_t end = b.len && b.data[b.len - 1] == '\n' ? b.len - 1 : b.len;
		uint64_t seen = 0;
		start = end;
		while (start > 0 && !(b.data[start - 1] == '\n' && ++seen == tail))
			start--;
		if (tail == 0)
			start = b.len;
	}
	if (b.len > start)
		(void)write_all(STDOUT_FILENO, b.data + start, b.len - start);
	struct stat st_log;
	off_t offset = fstatat(dirfd, "log", &st_log, 0) == 0 ? st_log.st_size : 0;
	ino_t inode = fstatat(dirfd, "log", &st_log, 0) == 0 ? st_log.st_ino : 0;
	buf_free(&b);
	while (follow) {
		bool running = streq(instance_true_state(&in), "running");
		int fd = openat(dirfd, "log", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		struct stat now;
		if (fstat(fd, &now) == 0 && now.st_ino != inode) {
			inode = now.st_ino; /* rotated: the new file from its start */
			offset = 0;
		}
		char buf[65536];
		ssize_t n;
		while ((n = pread(fd, buf, sizeof(buf), offset)) > 0) {
			(void)write_all(STDOUT_FILENO, buf, (size_t)n);
			offset += n;
		}
		close(fd);
		if (!running)
			break; /* what it wrote before it ended is out */
		/* New output or a rotation wakes us; the timeout only re-checks
		 * whether the instance still runs. */
		struct pollfd p = {.fd = ino, .events = POLLIN};
		if (poll(&p, 1, 500) > 0) {
			char evbuf[4096];
			(void)!read(ino, evbuf, sizeof(evbuf));
		}
		struct state_instance fresh = {0};
		if (state_instance_find(st, in.id, &fresh, NULL) == 0) {
			state_instance_free(&in);
			in = fresh;
		}
	}
	state_instance_free(&in);
	return EXIT_SUCCESS;
}
