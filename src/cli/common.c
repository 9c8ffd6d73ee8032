/* Helpers shared by the commands: errors, opening store and state, resolving
 * image references, formatting. */
#include "cli.h"

#include "../base/fs.h"
#include "../image/image.h"

#include <stdarg.h>
#include <time.h>

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cairn: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_FAILURE;
}

int cli_usage(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cairn: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nUsage: cairn %s %s (see 'cairn %s --help')\n", cmd->name,
			cmd->args, cmd->name);
	else
		fputs("\nSee 'cairn --help'.\n", stderr);
	return EXIT_USAGE;
}

int cli_error(const struct cairn_error *err)
{
	return cli_fail("%s", error_message(err));
}

int cli_error_clear(struct cairn_error *err)
{
	int r = cli_error(err);
	error_clear(err);
	return r;
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cairn: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void cli_command_help(const struct command *cmd, FILE *f)
{
	fprintf(f, "Usage: cairn %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
	if (cmd->help && *cmd->help)
		fprintf(f, "\n%s", cmd->help);
	fputs("\nCommon options:\n"
	      "  --root DIR   the store (default $CAIRN_ROOT or /var/lib/cairn)\n"
	      "  --json       machine-readable output\n"
	      "  -h, --help   this help\n",
	      f);
}

void cli_getopt_reset(void)
{
	optind = 0; /* GNU: full re-initialisation */
	opterr = 0;
}

int cli_common_option(struct cli *cli, const struct command *cmd, int opt, char **argv)
{
	switch (opt) {
	case OPT_HELP:
		cli_command_help(cmd, stdout);
		return EXIT_SUCCESS;
	case OPT_JSON:
		cli->json = true;
		return -1;
	case OPT_ROOT:
		cli->root = optarg;
		return -1;
	case '?':
		if (optopt && optopt < 0x100)
			return cli_usage(cmd, "unknown option -%c", optopt);
		return cli_usage(cmd, "unknown option %s", argv[optind - 1]);
	case ':':
		return cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
	}
	return cli_usage(cmd, "unexpected option %s", argv[optind - 1]);
}

int cli_open_store(struct cli *cli, bool create, struct store **ret, struct cairn_error *err)
{
	return store_open(cli->root, create, ret, err);
}

int cli_open_state(struct cli *cli, struct state **ret, struct cairn_error *err)
{
	return state_open(cli->root, ret, err);
}

int cli_open_image(struct cli *cli, const char *ref, bool lock, struct state **ret_state,
		   struct store **ret_store, char ret_id[DIGEST_STR_LEN],
		   struct image_manifest *ret_manifest, struct tree *ret_tree,
		   struct cairn_error *err)
{
	struct digest d;
	int64_t t0 = now_monotonic_ns();
	int r = cli_open_state(cli, ret_state, err);
	trace_phase("image: state opened", t0);
	if (r == 0)
		r = cli_resolve(*ret_state, ref, ret_id, err);
	trace_phase("image: resolved", t0);
	if (r == 0)
		r = cli_open_store(cli, false, ret_store, err);
	trace_phase("image: store opened", t0);
	if (r == 0 && lock)
		r = store_lock(*ret_store, false, err);
	trace_phase("image: locked", t0);
	if (r == 0 && digest_from_string(ret_id, &d) < 0)
		r = error_set(err, EINVAL, "bad image id %s", ret_id);
	if (r == 0)
		r = image_load(*ret_store, &d, ret_manifest, ret_tree, err);
	trace_phase("image: loaded", t0);
	return r;
}

int cli_resolve(struct state *st, const char *ref, char ret_id[DIGEST_STR_LEN],
		struct cairn_error *err)
{
	if (image_ref_is_id(ref)) {
		const char *hex = startswith(ref, DIGEST_PREFIX) ? ref + 7 : ref;
		int r = state_image_find_prefix(st, hex, ret_id, err);
		if (r != -ENOENT)
			return r;
		if (startswith(ref, DIGEST_PREFIX))
			return error_set(err, ENOENT, "no image %s in this store", ref);
	}
	_cleanup_free_ char *name = NULL, *tag = NULL;
	int r = image_ref_parse(ref, &name, &tag, err);
	if (r < 0)
		return r;
	r = state_tag_get(st, name, tag, ret_id, err);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "no image %s:%s in this store (see 'cairn images')",
				 name, tag);
	return r;
}

void format_size(uint64_t bytes, char *out, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ELEMENTSOF(units)) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

void format_time(int64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void format_time_iso(int64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	char base[32];
	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%09lldZ", base, (long long)(ns % 1000000000LL));
}

void format_short_id(const char *id, char out[13])
{
	const char *hex = startswith(id, DIGEST_PREFIX) ? id + 7 : id;
	snprintf(out, 13, "%s", hex);
}

int parse_u64(const char *s, uint64_t *ret)
{
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1ull << 10;
			break;
		case 'm':
		case 'M':
			mul = 1ull << 20;
			break;
		case 'g':
		case 'G':
			mul = 1ull << 30;
			break;
		case 't':
		case 'T':
			mul = 1ull << 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	uint64_t r;
	if (__builtin_mul_overflow((uint64_t)v, mul, &r))
		return -ERANGE;
	*ret = r;
	return 0;
}

void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s)
		oom();
	puts(s);
	free(s);
	json_decref(v);
}

int cli_parse_simple(struct cli *cli, const struct command *cmd, int argc, char **argv,
		     int min_args, int max_args)
{
	static const struct option opts[] = {COMMON_LONG_OPTIONS, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		int r = cli_common_option(cli, cmd, c, argv);
		if (r >= 0)
			return r;
	}
	int n = argc - optind;
	if (n < min_args || (max_args >= 0 && n > max_args))
		return cli_usage(cmd, "expected %s", cmd->args);
	return -1;
}
