/* The stat cache: like git's index, it remembers for every regular file of a
 * source directory the (dev, ino, size, mtime, ctime) it had when hashed, with
 * its digest and xattrs, so an unchanged re-import reads no file content.
 * ctime changes on every write, chmod, chown and xattr change, so a matching
 * ctime means nothing the image records has changed. Entries whose ctime is
 * too recent to be trusted (the file might change again within the same clock
 * tick) are left out, as git does with "racily clean" entries. The cache is
 * tied to the store's gc generation: a gc may remove objects it vouches for. */
#include "internal.h"

#include "../base/buf.h"
#include "../base/fs.h"

#include <stdio.h>

#define SC_MAGIC "CAIRNSC1"

struct sc_header {
	char magic[8];
	uint64_t generation;
	uint64_t count;
};

struct sc_record {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint8_t digest[DIGEST_LEN];
	uint32_t path_len;
	uint32_t xattr_len; /* bytes of encoded xattrs after the path */
};

struct statcache {
	char *data;
	size_t len;
	uint64_t n; /* records */
	const struct sc_record **slots; /* hash table on path */
	size_t cap;
};

static uint64_t hash_path(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return h;
}

static const char *rec_path(const struct sc_record *r)
{
	return (const char *)(r + 1);
}

static char *cache_name(const char *source)
{
	struct digest d;
	digest_buffer(source, strlen(source), &d);
	char hex[DIGEST_HEX_LEN + 1];
	digest_to_hex(&d, hex);
	return xasprintf("stat-%.16s", hex);
}

struct statcache *statcache_load(int cache_dirfd, const char *source, uint64_t gc_generation)
{
	struct statcache *c = xcalloc(1, sizeof(*c));
	_cleanup_free_ char *name = cache_name(source);
	if (read_file_at(cache_dirfd, name, &c->data, &c->len, 1u << 30) < 0)
		return c;
	struct sc_header h;
	if (c->len < sizeof(h))
		goto bad;
	memcpy(&h, c->data, sizeof(h));
	if (memcmp(h.magic, SC_MAGIC, 8) != 0 || h.generation != gc_generation ||
	    h.count > c->len / sizeof(struct sc_record))
		goto bad;
	c->cap = 16;
	while (c->cap < h.count * 2)
		c->cap *= 2;
	c->slots = xcalloc(c->cap, sizeof(*c->slots));
	size_t off = sizeof(h);
	for (uint64_t i = 0; i < h.count; i++) {
		off = (off + 7) & ~(size_t)7;
		if (off + sizeof(struct sc_record) > c->len)
			goto bad;
		const struct sc_record *r = (const struct sc_record *)(c->data + off);
		size_t need = sizeof(*r) + (size_t)r->path_len + 1 + r->xattr_len;
		if (need > c->len - off || rec_path(r)[r->path_len] != 0)
			goto bad;
		size_t k = hash_path(rec_path(r), r->path_len) & (c->cap - 1);
		while (c->slots[k])
			k = (k + 1) & (c->cap - 1);
		c->slots[k] = r;
		off += need;
	}
	c->n = h.count;
	return c;
bad:
	free(c->slots);
	free(c->data);
	*c = (struct statcache){0};
	return c;
}

struct statcache *statcache_free(struct statcache *c)
{
	if (c) {
		free(c->slots);
		free(c->data);
		free(c);
	}
	return NULL;
}

static bool decode_xattrs(const uint8_t *p, size_t len, struct tree_entry *e)
{
	size_t off = 0;
	while (off < len) {
		uint32_t nl, vl;
		if (len - off < 8)
			return false;
		memcpy(&nl, p + off, 4);
		memcpy(&vl, p + off + 4, 4);
		off += 8;
		if (nl == 0 || (uint64_t)nl + vl > len - off)
			return false;
		e->xattrs = xreallocarray(e->xattrs, e->n_xattrs + 1, sizeof(*e->xattrs));
		struct xattr *x = &e->xattrs[e->n_xattrs++];
		x->name = xstrndup((const char *)p + off, nl);
		x->value = xmalloc(vl ? vl : 1);
		memcpy(x->value, p + off + nl, vl);
		x->len = vl;
		off += nl + vl;
	}
	return true;
}

bool statcache_lookup(struct statcache *c, struct tree_entry *e, const struct scan_stat *st)
{
	if (!c->slots)
		return false;
	size_t plen = strlen(e->path);
	size_t k = hash_path(e->path, plen) & (c->cap - 1);
	for (; c->slots[k]; k = (k + 1) & (c->cap - 1)) {
		const struct sc_record *r = c->slots[k];
		if (r->path_len != plen || memcmp(rec_path(r), e->path, plen) != 0)
			continue;
		if (r->dev != st->dev || r->ino != st->ino || r->size != e->size ||
		    r->mtime_ns != st->mtime_ns || r->ctime_ns != st->ctime_ns)
			return false;
		const uint8_t *xp = (const uint8_t *)rec_path(r) + plen + 1;
		if (!decode_xattrs(xp, r->xattr_len, e)) {
			for (size_t i = 0; i < e->n_xattrs; i++) {
				free(e->xattrs[i].name);
				free(e->xattrs[i].value);
			}
			free(e->xattrs);
			e->xattrs = NULL;
			e->n_xattrs = 0;
			return false;
		}
		memcpy(e->digest.b, r->digest, DIGEST_LEN);
		return true;
	}
	return false;
}

void statcache_build(uint64_t gc_generation, const struct tree *t, const struct scan_stat *stats,
		     int64_t not_after_ns, struct buf *ret, uint64_t *ret_count)
{
	struct buf b = {0};
	struct sc_header h = {.generation = gc_generation};
	memcpy(h.magic, SC_MAGIC, 8);
	buf_put(&b, &h, sizeof(h));
	uint64_t count = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *e = &t->entries[i];
		if (e->type != ENTRY_FILE || stats[i].ctime_ns >= not_after_ns ||
		    stats[i].mtime_ns >= not_after_ns)
			continue;
		while (b.len % 8)
			buf_putc(&b, 0);
		struct buf xb = {0};
		for (size_t k = 0; k < e->n_xattrs; k++) {
			uint32_t nl = (uint32_t)strlen(e->xattrs[k].name), vl = (uint32_t)e->xattrs[k].len;
			buf_put(&xb, &nl, 4);
			buf_put(&xb, &vl, 4);
			buf_put(&xb, e->xattrs[k].name, nl);
			buf_put(&xb, e->xattrs[k].value, vl);
		}
		struct sc_record r = {
			.dev = stats[i].dev,
			.ino = stats[i].ino,
			.size = e->size,
			.mtime_ns = stats[i].mtime_ns,
			.ctime_ns = stats[i].ctime_ns,
			.path_len = (uint32_t)strlen(e->path),
			.xattr_len = (uint32_t)xb.len,
		};
		memcpy(r.digest, e->digest.b, DIGEST_LEN);
		buf_put(&b, &r, sizeof(r));
		buf_put(&b, e->path, r.path_len + 1);
		if (xb.len)
			buf_put(&b, xb.data, xb.len);
		buf_free(&xb);
		count++;
	}
	h.count = count;
	memcpy(b.data, &h, sizeof(h));
	*ret = b;
	*ret_count = count;
}

uint64_t statcache_count(const struct statcache *c)
{
	return c->n;
}

void statcache_write(int cache_dirfd, const char *source, const struct buf *b)
{
	_cleanup_free_ char *name = cache_name(source);
	(void)write_file_atomic_at(cache_dirfd, name, b->data, b->len, 0600, false);
}
