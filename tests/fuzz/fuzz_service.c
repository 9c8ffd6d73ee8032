/* libFuzzer target for the cairn.yml parser (src/daemon/service.c): any input
 * either fails with a one-line message, or parses into a file whose every
 * environment resolves, and whose resolved config survives a round trip
 * through its canonical JSON (and the JSON text) with the same digest. */
#include "../../src/daemon/service.h"

#include <stdio.h>

/* Debian 12's libfyaml 0.7.12 leaks a scalar buffer on some syntax-error paths
 * (e.g. a long '' -escaped scalar before a flow-mapping error; fixed upstream
 * since). Leaks allocated inside libfyaml are not ours: our allocations never
 * pass through its frames, so LeakSanitizer still reports every leak of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfyaml.so\n";
}

static void check_one_line(const struct cairn_error *err)
{
	if (!err->msg || !*err->msg || strchr(err->msg, '\n'))
		abort(); /* a failure says why, on one line */
}

static void check_config(const struct service_config *c)
{
	char d1[72], d2[72], d3[72];
	struct cairn_error err = {0};
	service_config_digest(c, d1);

	json_t *j = service_config_json(c);
	struct service_config *back = NULL;
	if (service_config_from_json(j, &back, &err) < 0) {
		fprintf(stderr, "from_json: %s\n", err.msg);
		abort();
	}
	service_config_digest(back, d2);
	json_t *j2 = service_config_json(back);
	if (!streq(d1, d2) || !json_equal(j, j2))
		abort();
	service_config_free(back);
	json_decref(j2);

	/* and through the text the daemon stores */
	char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_t *loaded = text ? json_loads(text, 0, NULL) : NULL;
	if (!loaded || service_config_from_json(loaded, &back, &err) < 0)
		abort();
	service_config_digest(back, d3);
	if (!streq(d1, d3))
		abort();
	service_config_free(back);
	json_decref(loaded);
	free(text);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct service_file *f = NULL;
	struct cairn_error err = {0};
	if (service_parse("cairn.yml", (const char *)data, size, &f, &err) < 0) {
		check_one_line(&err);
		if (f)
			abort();
		error_clear(&err);
		return 0;
	}
	if (!f->service || f->n_envs == 0)
		abort();
	for (size_t i = 0; i < f->n_envs; i++) {
		struct service_config *c = NULL;
		if (service_env(f, f->envs[i], &c, &err) < 0) {
			fprintf(stderr, "env %s: %s\n", f->envs[i], err.msg);
			abort(); /* service_parse checked every env */
		}
		if (!streq(c->environment, f->envs[i]) || !streq(c->service, f->service) ||
		    c->run.port == 0 || c->listen.port == 0 || (!c->image && !c->build))
			abort();
		check_config(c);
		service_config_free(c);
	}
	struct service_config *none = NULL;
	if (service_env(f, "no-such-env-", &none, &err) != -ENOENT || none)
		abort();
	check_one_line(&err);
	error_clear(&err);
	service_file_free(f);
	return 0;
}
