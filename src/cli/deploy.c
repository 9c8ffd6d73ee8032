/* cairn deploy ENV: build (when cairn.yml says so) or resolve the image,
 * then ask the daemon for a new release of ENV and follow it. */
#include "api.h"

#include "../build/build.h"
#include "../daemon/service.h"
#include "../image/image.h"

#include <libgen.h>

static int run(struct cli *cli, int argc, char **argv);

const struct command cmd_deploy = {
	.name = "deploy",
	.args = "[OPTIONS] ENV",
	.summary = "Deploy a new release of ENV (builds first when cairn.yml says build)",
	.help = "Creates release vN of ENV and carries it out: starts the new instances, waits\n"
		"until each is healthy, switches the router's traffic at once, drains and\n"
		"retires the old instances (or keeps them warm for an instant rollback).\n"
		"Exit 0 only when vN is live; on any failure the live release keeps all\n"
		"traffic and vN is recorded as failed with the reason.\n"
		"\n"
		"Options:\n"
		"  -f, --file FILE       the service file (default ./cairn.yml)\n"
		"  --image NAME:TAG|ID   deploy this image instead of building or the file's image\n"
		"  --strategy S          override deploy.strategy (blue-green, rolling or canary)\n",
	.run = run,
};

static const struct build_progress quiet_progress = {0};

static int resolve_cb(const char *ref, char ret_id[DIGEST_STR_LEN], void *u,
		      struct cairn_error *err)
{
	return cli_resolve(u, ref, ret_id, err);
}

/* The image to deploy: --image, else build (cairn.yml build:), else the
 * file's image. */
static int pick_image(struct cli *cli, const char *file, struct service_config *c,
		      const char *image_opt, char ret_id[DIGEST_STR_LEN], struct cairn_error *err)
{
	_cleanup_(state_closep) struct state *st = NULL;
	_cleanup_(store_closep) struct store *store = NULL;
	int r = cli_open_store(cli, true, &store, err);
	if (r == 0)
		r = store_lock(store, false, err);
	if (r == 0)
		r = cli_open_state(cli, &st, err);
	if (r < 0)
		return r;
	if (image_opt)
		return cli_resolve(st, image_opt, ret_id, err);
	if (!c->build) {
		if (!c->image)
			return error_set(err, EINVAL, "%s: no image and no build for %s", file,
					 c->environment);
		return cli_resolve(st, c->image, ret_id, err);
	}
	_cleanup_free_ char *copy = xstrdup(file);
	const char *dir = dirname(copy);
	_cleanup_free_ char *ctx = xasprintf("%s/%s", dir, c->build_context ? c->build_context : ".");
	_cleanup_free_ char *df =
		c->build_dockerfile ? xasprintf("%s/%s", dir, c->build_dockerfile) : NULL;
	_cleanup_free_ char *tag = c->image ? xstrdup(c->image) : xasprintf("%s:latest", c->service);
	char *tags[] = {tag};
	struct build_opts o = {
		.context = ctx,
		.dockerfile = df,
		.tags = tags,
		.n_tags = 1,
		.net = NET_PRIVATE,
		.resolve = resolve_cb,
		.resolve_userdata = st,
		.progress = &quiet_progress,
	};
	struct build_result res = {0};
	int64_t t0 = now_monotonic_ns();
	r = build_run(store, st, &o, &res, err);
	if (r < 0) {
		if (res.failed_output && *res.failed_output)
			fprintf(stderr, "%s", res.failed_output);
		build_result_free(&res);
		return error_wrap(err, "building %s", ctx);
	}
	digest_to_string(&res.id, ret_id);
	if (!cli->json)
		fprintf(stderr, "built %s (%.12s) in %.2fs: %u steps, %u cached\n", tag, ret_id + 7,
			(double)(now_monotonic_ns() - t0) / 1e9, res.steps, res.cached);
	build_result_free(&res);
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	enum { OPT_IMAGE = OPT_COMMON_END, OPT_STRATEGY };
	static const struct option opts[] = {
		COMMON_LONG_OPTIONS,
		{"file", required_argument, NULL, 'f'},
		{"image", required_argument, NULL, OPT_IMAGE},
		{"strategy", required_argument, NULL, OPT_STRATEGY},
		{0},
	};
	const char *file = "cairn.yml", *image = NULL, *strategy = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+:hf:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case OPT_IMAGE:
			image = optarg;
			break;
		case OPT_STRATEGY:
			strategy = optarg;
			break;
		default: {
			int r = cli_common_option(cli, &cmd_deploy, c, argv);
			if (r >= 0)
				return r;
		}
		}
	}
	if (argc - optind != 1)
		return cli_usage(&cmd_deploy, "expected ENV");
	const char *env = argv[optind];
	struct cairn_error err = {0};
	_cleanup_(service_file_freep) struct service_file *f = NULL;
	_cleanup_(service_config_freep) struct service_config *cfg = NULL;
	if (service_load(file, &f, &err) < 0 || service_env(f, env, &cfg, &err) < 0)
		return cli_error_clear(&err);
	if (strategy) {
		if (streq(strategy, "blue-green"))
			cfg->deploy.strategy = SERVICE_STRATEGY_BLUE_GREEN;
		else if (streq(strategy, "rolling"))
			cfg->deploy.strategy = SERVICE_STRATEGY_ROLLING;
		else if (streq(strategy, "canary"))
			cfg->deploy.strategy = SERVICE_STRATEGY_CANARY;
		else
			return cli_usage(&cmd_deploy,
					 "--strategy: expected blue-green, rolling or canary");
	}
	/* the daemon must be there before anything is built */
	json_t *ping = NULL;
	if (api_call(cli, "GET", "/v1/ping", NULL, NULL, NULL, &ping, &err) < 0)
		return cli_error_clear(&err);
	json_decref(ping);
	char id[DIGEST_STR_LEN];
	if (pick_image(cli, file, cfg, image, id, &err) < 0)
		return cli_error_clear(&err);
	json_t *body = json_pack("{s:s, s:s, s:o, s:s}", "env", env, "image", id, "config",
				 service_config_json(cfg), "trigger", "deploy");
	json_t *done = NULL;
	int r = api_call(cli, "POST", "/v1/deploy", body, api_print_progress, cli, &done, &err);
	json_decref(body);
	if (r < 0)
		return cli_error_clear(&err);
	r = api_finish(cli, done);
	json_decref(done);
	return r;
}
