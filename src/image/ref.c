/* Image references: NAME[:TAG] validation with messages that say which part is
 * wrong, and recognising ids and id prefixes. */
#include "image.h"

#include <ctype.h>

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (is_lower_alnum(s[i]))
			continue;
		if (s[i] == '.' || s[i] == '-') {
			if (s[i] == '.' && !is_lower_alnum(s[i + 1]))
				return false;
			continue;
		}
		if (s[i] == '_') {
			if (s[i + 1] == '_')
				i++;
			if (!is_lower_alnum(s[i + 1]))
				return false;
			continue;
		}
		return false;
	}
	return true;
}

/* A registry host: [A-Za-z0-9.-]+ with an optional :port. */
static bool host_valid(const char *s, size_t n)
{
	size_t i = 0;
	for (; i < n && s[i] != ':'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	if (i == 0)
		return false;
	if (i < n) {
		if (i + 1 == n)
			return false;
		for (size_t k = i + 1; k < n; k++)
			if (!isdigit((unsigned char)s[k]))
				return false;
	}
	return true;
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return false;
	if (!isalnum((unsigned char)t[0]) && t[0] != '_')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

int image_ref_parse(const char *ref, char **ret_name, char **ret_tag, struct cairn_error *err)
{
	if (!*ref)
		return error_set(err, EINVAL, "invalid image name \"\": empty");
	if (strchr(ref, '@'))
		return error_set(err, EINVAL,
				 "invalid image name \"%s\": digests (@sha256:…) are not tags; "
				 "use the id directly",
				 ref);
	size_t len = strlen(ref);
	/* The tag is after the last ':' that comes after the last '/'. */
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	size_t name_len = colon ? (size_t)(colon - ref) : len;
	if (name_len > 255)
		return error_set(err, EINVAL, "invalid image name \"%.40s…\": longer than 255",
				 ref);
	_cleanup_free_ char *name = xstrndup(ref, name_len);
	const char *tag = colon ? colon + 1 : "latest";
	if (!tag_valid(tag))
		return error_set(err, EINVAL,
				 "invalid tag \"%s\" in \"%s\": use letters, digits, '_', '.', "
				 "'-' (up to 128, not starting with '.' or '-')",
				 tag, ref);
	const char *p = name;
	bool first = true;
	for (;;) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		bool ok = component_valid(p, n);
		/* The first of several components may be a registry host. */
		if (!ok && first && s && (memchr(p, '.', n) || memchr(p, ':', n) ||
					  (n == 9 && strncmp(p, "localhost", 9) == 0)))
			ok = host_valid(p, n);
		if (!ok)
			return error_set(err, EINVAL,
					 "invalid image name \"%s\": component \"%.*s\" must be "
					 "lowercase letters and digits, separated by '.', '_' or '-'",
					 ref, (int)n, p);
		if (!s)
			break;
		p = s + 1;
		first = false;
	}
	*ret_name = TAKE_PTR(name);
	*ret_tag = xstrdup(tag);
	return 0;
}

bool image_ref_is_id(const char *s)
{
	if (startswith(s, DIGEST_PREFIX))
		s += sizeof(DIGEST_PREFIX) - 1;
	size_t n = strlen(s);
	if (n < 4 || n > DIGEST_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}
