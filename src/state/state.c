/* SQLite state: schema, migrations, and the queries for images, tags, tag
 * history and events. WAL with synchronous=FULL: a committed transaction
 * survives a power cut. */
#include "state.h"

#include <sqlite3.h>
#include <stdio.h>
#include <time.h>

struct state {
	sqlite3 *db;
	char *path;
};

static const char *const schema_v1 =
	"CREATE TABLE images ("
	"  id TEXT PRIMARY KEY,"
	"  tree TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  entries INTEGER NOT NULL,"
	"  source TEXT NOT NULL);"
	"CREATE TABLE tags ("
	"  name TEXT NOT NULL,"
	"  tag TEXT NOT NULL,"
	"  image TEXT NOT NULL REFERENCES images(id),"
	"  updated INTEGER NOT NULL,"
	"  PRIMARY KEY (name, tag));"
	"CREATE INDEX tags_image ON tags(image);"
	"CREATE TABLE tag_history ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  tag TEXT NOT NULL,"
	"  image TEXT,"
	"  previous TEXT,"
	"  why TEXT NOT NULL);"
	"CREATE INDEX tag_history_name ON tag_history(name, tag, seq);"
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  detail TEXT NOT NULL);";

/* Each migration takes the schema from version i to i + 1. */
static const char *const schema_migrations[] = {
	NULL, /* 0 -> 1: schema_v1 */
	"CREATE TABLE instances ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  image TEXT NOT NULL,"
	"  command TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  started INTEGER,"
	"  finished INTEGER,"
	"  state TEXT NOT NULL,"
	"  exit_code INTEGER,"
	"  oom INTEGER NOT NULL DEFAULT 0,"
	"  pid INTEGER,"
	"  pid_start INTEGER,"
	"  monitor_pid INTEGER,"
	"  ports TEXT NOT NULL DEFAULT '',"
	"  tainted INTEGER NOT NULL DEFAULT 0,"
	"  tainted_why TEXT);",
	/* 2 -> 3: builds */
	"CREATE TABLE build_cache ("
	"  key TEXT PRIMARY KEY,"
	"  tree TEXT NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE builds ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  image TEXT,"
	"  started INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL,"
	"  outcome TEXT NOT NULL,"
	"  provenance TEXT NOT NULL);"
	"CREATE INDEX builds_image ON builds(image);",
	/* 3 -> 4: releases */
	"CREATE TABLE releases ("
	"  env TEXT NOT NULL,"
	"  number INTEGER NOT NULL,"
	"  service TEXT NOT NULL,"
	"  image TEXT NOT NULL,"
	"  config TEXT NOT NULL,"
	"  config_digest TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  finished INTEGER,"
	"  state TEXT NOT NULL,"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  trigger TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (env, number));"
	"CREATE TABLE release_instances ("
	"  instance TEXT PRIMARY KEY,"
	"  env TEXT NOT NULL,"
	"  number INTEGER NOT NULL);"
	"CREATE INDEX release_instances_release ON release_instances(env, number);",
};
#define SCHEMA_VERSION ((int)ELEMENTSOF(schema_migrations))

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int db_error(struct state *st, struct cairn_error *err, const char *what)
{
	int code = sqlite3_errcode(st->db);
	int e = code == SQLITE_BUSY ? EBUSY : code == SQLITE_FULL ? ENOSPC : EIO;
	return error_set(err, e, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static int exec(struct state *st, const char *sql, struct cairn_error *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = error_set(err, EIO, "%s: %s", st->path, msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static void finalizep(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

static int prepare(struct state *st, const char *sql, sqlite3_stmt **ret, struct cairn_error *err)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, ret, NULL) != SQLITE_OK)
		return db_error(st, err, "preparing a query");
	return 0;
}

int state_open(const char *root, struct state **ret, struct cairn_error *err)
{
	struct state *st = xcalloc(1, sizeof(*st));
	st->path = xasprintf("%s/cairn.db", root);
	int r;
	if (sqlite3_open_v2(st->path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = error_set(err, EIO, "cannot open %s: %s", st->path,
			      st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 30000);
	r = exec(st,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
		 err);
	if (r < 0)
		goto fail;
	int version = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s = NULL;
		r = prepare(st, "PRAGMA user_version", &s, err);
		if (r < 0)
			goto fail;
		if (sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
	}
	if (version > SCHEMA_VERSION) {
		r = error_set(err, EPROTO, "%s was written by a newer cairn (schema %d)", st->path,
			      version);
		goto fail;
	}
	if (version < SCHEMA_VERSION) {
		r = exec(st, "BEGIN IMMEDIATE", err);
		if (r < 0)
			goto fail;
		/* Another process may have migrated it while we waited. */
		_cleanup_stmt_ sqlite3_stmt *s = NULL;
		r = prepare(st, "PRAGMA user_version", &s, err);
		if (r == 0 && sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
		for (; r == 0 && version < SCHEMA_VERSION; version++) {
			r = exec(st, version == 0 ? schema_v1 : schema_migrations[version], err);
			if (r == 0) {
				char sql[64];
				snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", version + 1);
				r = exec(st, sql, err);
			}
		}
		if (r < 0) {
			(void)exec(st, "ROLLBACK", NULL);
			goto fail;
		}
		r = exec(st, "COMMIT", err);
		if (r < 0)
			goto fail;
	}
	*ret = st;
	return 0;
fail:
	state_close(st);
	return r;
}

struct state *state_close(struct state *st)
{
	if (st) {
		sqlite3_close_v2(st->db);
		free(st->path);
		free(st);
	}
	return NULL;
}

int state_begin(struct state *st, struct cairn_error *err)
{
	return exec(st, "BEGIN IMMEDIATE", err);
}

int state_commit(struct state *st, struct cairn_error *err)
{
	int r = exec(st, "COMMIT", err);
	if (r < 0)
		state_rollback(st);
	return r;
}

void state_rollback(struct state *st)
{
	if (!sqlite3_get_autocommit(st->db))
		(void)exec(st, "ROLLBACK", NULL);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : "";
}

static void copy_id(char out[DIGEST_STR_LEN], const char *in)
{
	snprintf(out, DIGEST_STR_LEN, "%s", in ? in : "");
}

void state_image_free(struct state_image *im)
{
	free(im->source);
	im->source = NULL;
}

void state_images_free(struct state_image *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		state_image_free(&v[i]);
	free(v);
}

int state_image_add(struct state *st, const struct state_image *im, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"INSERT OR IGNORE INTO images(id, tree, created, size, entries, source) "
			"VALUES (?, ?, ?, ?, ?, ?)",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, im->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, im->tree, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, im->created_ns);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)im->size);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)im->entries);
	sqlite3_bind_text(s, 6, im->source ? im->source : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording an image");
	return 0;
}

static void image_from_row(sqlite3_stmt *s, struct state_image *im)
{
	copy_id(im->id, col_text(s, 0));
	copy_id(im->tree, col_text(s, 1));
	im->created_ns = sqlite3_column_int64(s, 2);
	im->size = (uint64_t)sqlite3_column_int64(s, 3);
	im->entries = (uint64_t)sqlite3_column_int64(s, 4);
	im->source = xstrdup(col_text(s, 5));
}

int state_image_get(struct state *st, const char *id, struct state_image *ret,
		    struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"SELECT id, tree, created, size, entries, source FROM images WHERE id = ?",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "reading an image");
	image_from_row(s, ret);
	return 0;
}

int state_image_list(struct state *st, struct state_image **ret, size_t *ret_n,
		     struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"SELECT id, tree, created, size, entries, source FROM images "
			"ORDER BY created DESC, id",
			&s, err);
	if (r < 0)
		return r;
	struct state_image *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		image_from_row(s, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		state_images_free(v, n);
		return db_error(st, err, "listing images");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int history_add(struct state *st, int64_t at, const char *name, const char *tag,
		       const char *id, const char *previous, const char *why,
		       struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"INSERT INTO tag_history(at, name, tag, image, previous, why) "
			"VALUES (?, ?, ?, ?, ?, ?)",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, at);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, tag, -1, SQLITE_STATIC);
	if (id)
		sqlite3_bind_text(s, 4, id, -1, SQLITE_STATIC);
	if (previous)
		sqlite3_bind_text(s, 5, previous, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, why, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording tag history");
	return 0;
}

int state_image_remove(struct state *st, const char *id, struct cairn_error *err)
{
	struct state_tag *tags;
	size_t n;
	int r = state_tag_list(st, id, &tags, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = state_tag_remove(st, tags[i].name, tags[i].tag, err);
	state_tags_free(tags, n);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	r = prepare(st, "DELETE FROM images WHERE id = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "removing an image");
	return 0;
}

void state_tags_free(struct state_tag *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].tag);
	}
	free(v);
}

int state_tag_get(struct state *st, const char *name, const char *tag,
		  char ret_id[DIGEST_STR_LEN], struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT image FROM tags WHERE name = ? AND tag = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "reading a tag");
	copy_id(ret_id, col_text(s, 0));
	return 0;
}

int state_tag_set(struct state *st, const char *name, const char *tag, const char *id,
		  const char *why, struct cairn_error *err)
{
	char previous[DIGEST_STR_LEN];
	int r = state_tag_get(st, name, tag, previous, err);
	if (r < 0 && r != -ENOENT)
		return r;
	bool existed = r == 0;
	if (existed && streq(previous, id))
		return 0;
	int64_t now = now_ns();
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	r = prepare(st,
		    "INSERT INTO tags(name, tag, image, updated) VALUES (?, ?, ?, ?) "
		    "ON CONFLICT(name, tag) DO UPDATE SET image = excluded.image, "
		    "updated = excluded.updated",
		    &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "setting a tag");
	return history_add(st, now, name, tag, id, existed ? previous : NULL, why, err);
}

int state_tag_remove(struct state *st, const char *name, const char *tag,
		     struct cairn_error *err)
{
	char previous[DIGEST_STR_LEN];
	int r = state_tag_get(st, name, tag, previous, err);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	r = prepare(st, "DELETE FROM tags WHERE name = ? AND tag = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "removing a tag");
	return history_add(st, now_ns(), name, tag, NULL, previous, "rm", err);
}

int state_tag_list(struct state *st, const char *id, struct state_tag **ret, size_t *ret_n,
		   struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			id ? "SELECT name, tag, image, updated FROM tags WHERE image = ? "
			     "ORDER BY name, tag"
			   : "SELECT name, tag, image, updated FROM tags ORDER BY name, tag",
			&s, err);
	if (r < 0)
		return r;
	if (id)
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	struct state_tag *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		v[n].name = xstrdup(col_text(s, 0));
		v[n].tag = xstrdup(col_text(s, 1));
		copy_id(v[n].id, col_text(s, 2));
		v[n].updated_ns = sqlite3_column_int64(s, 3);
		n++;
	}
	if (rc != SQLITE_DONE) {
		state_tags_free(v, n);
		return db_error(st, err, "listing tags");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void state_tag_events_free(struct state_tag_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].tag);
		free(v[i].why);
	}
	free(v);
}

int state_tag_history(struct state *st, const char *name, const char *tag,
		      struct state_tag_event **ret, size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			tag ? "SELECT at, name, tag, image, previous, why FROM tag_history "
			      "WHERE name = ? AND tag = ? ORDER BY seq"
			    : "SELECT at, name, tag, image, previous, why FROM tag_history "
			      "WHERE name = ? ORDER BY seq",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if (tag)
		sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
	struct state_tag_event *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		v[n].at_ns = sqlite3_column_int64(s, 0);
		v[n].name = xstrdup(col_text(s, 1));
		v[n].tag = xstrdup(col_text(s, 2));
		copy_id(v[n].id, col_text(s, 3));
		copy_id(v[n].previous, col_text(s, 4));
		v[n].why = xstrdup(col_text(s, 5));
		n++;
	}
	if (rc != SQLITE_DONE) {
		state_tag_events_free(v, n);
		return db_error(st, err, "reading tag history");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_image_find_prefix(struct state *st, const char *hex_prefix,
			    char ret_id[DIGEST_STR_LEN], struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT id FROM images WHERE substr(id, 1, ?) = ? LIMIT 2", &s, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *full = xasprintf("sha256:%s", hex_prefix);
	sqlite3_bind_int(s, 1, (int)strlen(full));
	sqlite3_bind_text(s, 2, full, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "finding an image");
	copy_id(ret_id, col_text(s, 0));
	if (sqlite3_step(s) == SQLITE_ROW)
		return error_set(err, ENOTUNIQ,
				 "image id prefix %s matches several images; give more digits",
				 hex_prefix);
	return 0;
}

void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Every row's first column of a prepared statement, as strings. */
static int query_strings(struct state *st, sqlite3_stmt *s, const char *what, char ***ret,
			 size_t *ret_n, struct cairn_error *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		v[n++] = xstrdup(col_text(s, 0));
	}
	if (rc != SQLITE_DONE) {
		strv_free_n(v, n);
		return db_error(st, err, what);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_gc_roots(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err)
{
	/* One query per kind of root; releases join this list later. */
	static const char *const roots[] = {"SELECT DISTINCT image FROM tags",
					    "SELECT DISTINCT image FROM instances",
					    "SELECT DISTINCT image FROM releases"};
	char **v = NULL;
	size_t n = 0, cap = 0;
	for (size_t q = 0; q < ELEMENTSOF(roots); q++) {
		_cleanup_stmt_ sqlite3_stmt *s = NULL;
		int r = prepare(st, roots[q], &s, err);
		if (r < 0) {
			strv_free_n(v, n);
			return r;
		}
		int rc;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			v = xgrow(v, &cap, n + 1, sizeof(*v));
			v[n++] = xstrdup(col_text(s, 0));
		}
		if (rc != SQLITE_DONE) {
			strv_free_n(v, n);
			return db_error(st, err, "listing gc roots");
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_forget_unreferenced(struct state *st, uint64_t *ret_n, struct cairn_error *err)
{
	int r = exec(st,
		     "DELETE FROM images WHERE id NOT IN (SELECT image FROM tags) AND "
		     "id NOT IN (SELECT image FROM instances) AND "
		     "id NOT IN (SELECT image FROM releases)",
		     err);
	if (r < 0)
		return r;
	if (ret_n)
		*ret_n = (uint64_t)sqlite3_changes(st->db);
	return 0;
}

int state_event(struct state *st, const char *kind, const char *subject, const char *detail,
		struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "INSERT INTO events(at, kind, subject, detail) VALUES (?, ?, ?, ?)", &s,
			err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, now_ns());
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, detail ? detail : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording an event");
	return 0;
}

/* --- instances ------------------------------------------------------------ */

void state_instance_free(struct state_instance *in)
{
	free(in->name);
	free(in->command);
	free(in->state);
	free(in->ports);
	free(in->tainted_why);
	in->name = in->command = in->state = in->ports = in->tainted_why = NULL;
}

void state_instances_free(struct state_instance *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		state_instance_free(&v[i]);
	free(v);
}

#define INSTANCE_COLUMNS                                                                           \
	"id, name, image, command, created, started, finished, state, exit_code, oom, pid, "      \
	"pid_start, monitor_pid, ports, tainted, tainted_why"

static void instance_from_row(sqlite3_stmt *s, struct state_instance *in)
{
	snprintf(in->id, sizeof(in->id), "%s", col_text(s, 0));
	in->name = xstrdup(col_text(s, 1));
	copy_id(in->image, col_text(s, 2));
	in->command = xstrdup(col_text(s, 3));
	in->created_ns = sqlite3_column_int64(s, 4);
	in->started_ns = sqlite3_column_int64(s, 5);
	in->finished_ns = sqlite3_column_int64(s, 6);
	in->state = xstrdup(col_text(s, 7));
	in->exit_code = sqlite3_column_int(s, 8);
	in->oom = sqlite3_column_int(s, 9) != 0;
	in->pid = sqlite3_column_int(s, 10);
	in->pid_start = (uint64_t)sqlite3_column_int64(s, 11);
	in->monitor_pid = sqlite3_column_int(s, 12);
	in->ports = xstrdup(col_text(s, 13));
	in->tainted = sqlite3_column_int(s, 14) != 0;
	in->tainted_why = xstrdup(col_text(s, 15));
}

int state_instance_add(struct state *st, const struct state_instance *in,
		       struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"INSERT INTO instances(id, name, image, command, created, state, ports) "
			"VALUES (?, ?, ?, ?, ?, 'created', ?)",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, in->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, in->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, in->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, in->command ? in->command : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, in->created_ns ? in->created_ns : now_ns());
	sqlite3_bind_text(s, 6, in->ports ? in->ports : "", -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		return error_set(err, EEXIST, "an instance named %s exists already", in->name);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "recording an instance");
	return 0;
}

static int instance_update(struct state *st, const char *sql, const char *id,
			   const int64_t *vals, size_t n, const char *text,
			   struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, sql, &s, err);
	if (r < 0)
		return r;
	size_t k = 1;
	for (size_t i = 0; i < n; i++)
		sqlite3_bind_int64(s, (int)k++, vals[i]);
	if (text)
		sqlite3_bind_text(s, (int)k++, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, (int)k, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "updating an instance");
	return sqlite3_changes(st->db) ? 0 : -ENOENT;
}

int state_instance_set_running(struct state *st, const char *id, int pid, uint64_t pid_start,
			       int monitor_pid, struct cairn_error *err)
{
	int64_t v[] = {pid, (int64_t)pid_start, monitor_pid, now_ns()};
	return instance_update(st,
			       "UPDATE instances SET state = 'running', pid = ?, pid_start = ?, "
			       "monitor_pid = ?, started = ? WHERE id = ?",
			       id, v, ELEMENTSOF(v), NULL, err);
}

int state_instance_set_exited(struct state *st, const char *id, int exit_code, bool oom,
			      struct cairn_error *err)
{
	int64_t v[] = {exit_code, oom, now_ns()};
	return instance_update(st,
			       "UPDATE instances SET state = 'exited', exit_code = ?, oom = ?, "
			       "finished = ? WHERE id = ? AND state != 'exited'",
			       id, v, ELEMENTSOF(v), NULL, err);
}

int state_instance_taint(struct state *st, const char *id, const char *why,
			 struct cairn_error *err)
{
	return instance_update(st, "UPDATE instances SET tainted = 1, tainted_why = ? WHERE id = ?",
			       id, NULL, 0, why, err);
}

int state_instance_remove(struct state *st, const char *id, struct cairn_error *err)
{
	return instance_update(st, "DELETE FROM instances WHERE id = ?", id, NULL, 0, NULL, err);
}

int state_instance_find(struct state *st, const char *ref, struct state_instance *ret,
			struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"SELECT " INSTANCE_COLUMNS " FROM instances WHERE id = ?1 OR name = ?1 "
			"OR (length(?1) >= 4 AND substr(id, 1, length(?1)) = ?1) "
			"ORDER BY id = ?1 DESC, name = ?1 DESC LIMIT 2",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, ref, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "finding an instance");
	instance_from_row(s, ret);
	if (!streq(ret->id, ref) && !streq(ret->name, ref) && sqlite3_step(s) == SQLITE_ROW) {
		state_instance_free(ret);
		return error_set(err, ENOTUNIQ, "%s matches several instances; give more digits",
				 ref);
	}
	return 0;
}

int state_instance_list(struct state *st, bool all, struct state_instance **ret, size_t *ret_n,
			struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			all ? "SELECT " INSTANCE_COLUMNS " FROM instances ORDER BY created DESC"
			    : "SELECT " INSTANCE_COLUMNS " FROM instances WHERE state != 'exited' "
			      "ORDER BY created DESC",
			&s, err);
	if (r < 0)
		return r;
	struct state_instance *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		memset(&v[n], 0, sizeof(v[n]));
		instance_from_row(s, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		state_instances_free(v, n);
		return db_error(st, err, "listing instances");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* --- builds ----------------------------------------------------------------- */

int state_cache_get(struct state *st, const char *key, char ret_tree[DIGEST_STR_LEN],
		    struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT tree FROM build_cache WHERE key = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "reading the build cache");
	snprintf(ret_tree, DIGEST_STR_LEN, "%s", col_text(s, 0));
	return 0;
}

int state_cache_put(struct state *st, const char *key, const char *tree, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"INSERT OR REPLACE INTO build_cache(key, tree, created) VALUES (?, ?, ?)",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, tree, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_ns());
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording a build step");
	return 0;
}

int state_cache_forget(struct state *st, const char *key, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "DELETE FROM build_cache WHERE key = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "forgetting a build step");
	return 0;
}

int state_cache_trees(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT DISTINCT tree FROM build_cache", &s, err);
	if (r < 0)
		return r;
	return query_strings(st, s, "listing the build cache", ret, ret_n, err);
}

int state_cache_clear(struct state *st, uint64_t *ret_n, struct cairn_error *err)
{
	int r = exec(st, "DELETE FROM build_cache", err);
	if (r < 0)
		return r;
	if (ret_n)
		*ret_n = (uint64_t)sqlite3_changes(st->db);
	return 0;
}

int state_build_add(struct state *st, const char *image, int64_t started_ns,
		    int64_t finished_ns, const char *outcome, const char *provenance,
		    struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"INSERT INTO builds(image, started, finished, outcome, provenance) "
			"VALUES (?, ?, ?, ?, ?)",
			&s, err);
	if (r < 0)
		return r;
	if (image)
		sqlite3_bind_text(s, 1, image, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_int64(s, 2, started_ns);
	sqlite3_bind_int64(s, 3, finished_ns);
	sqlite3_bind_text(s, 4, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, provenance, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording the build");
	return 0;
}

int state_build_latest(struct state *st, const char *image, char **ret_provenance,
		       struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st,
			"SELECT provenance FROM builds WHERE image = ? AND outcome = 'built' "
			"ORDER BY seq DESC LIMIT 1",
			&s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, image, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "reading the build record");
	*ret_provenance = xstrdup(col_text(s, 0));
	return 0;
}

/* --- releases ------------------------------------------------------------------- */

void state_release_free(struct state_release *r)
{
	free(r->env);
	free(r->service);
	free(r->config);
	free(r->state);
	free(r->reason);
	free(r->trigger);
	*r = (struct state_release){0};
}

void state_releases_free(struct state_release *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		state_release_free(&v[i]);
	free(v);
}

#define RELEASE_COLS                                                                               \
	"env, number, service, image, config, config_digest, created, finished, state, reason, "   \
	"trigger"

static void release_from_row(sqlite3_stmt *s, struct state_release *r)
{
	r->env = xstrdup(col_text(s, 0));
	r->number = (unsigned)sqlite3_column_int64(s, 1);
	r->service = xstrdup(col_text(s, 2));
	snprintf(r->image, sizeof(r->image), "%s", col_text(s, 3));
	r->config = xstrdup(col_text(s, 4));
	snprintf(r->config_digest, sizeof(r->config_digest), "%s", col_text(s, 5));
	r->created_ns = sqlite3_column_int64(s, 6);
	r->finished_ns = sqlite3_column_int64(s, 7);
	r->state = xstrdup(col_text(s, 8));
	r->reason = xstrdup(col_text(s, 9));
	r->trigger = xstrdup(col_text(s, 10));
}

int state_release_create(struct state *st, struct state_release *r, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int rc = prepare(st, "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE env = ?", &q,
			 err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(q, 1, r->env, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_ROW)
		return db_error(st, err, "numbering the release");
	r->number = (unsigned)sqlite3_column_int64(q, 0);
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	rc = prepare(st,
		     "INSERT INTO releases(" RELEASE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
		     &s, err);
	if (rc < 0)
		return rc;
	r->created_ns = now_ns();
	sqlite3_bind_text(s, 1, r->env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, r->number);
	sqlite3_bind_text(s, 3, r->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, r->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->config, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, r->config_digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, r->created_ns);
	sqlite3_bind_text(s, 8, r->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, r->reason ? r->reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 10, r->trigger ? r->trigger : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording the release");
	return 0;
}

int state_release_set_state(struct state *st, const char *env, unsigned number,
			    const char *state, const char *reason, bool finished,
			    struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st,
			 "UPDATE releases SET state = ?, reason = COALESCE(?, reason), "
			 "finished = CASE WHEN ? THEN COALESCE(finished, ?) ELSE finished END "
			 "WHERE env = ? AND number = ?",
			 &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC);
	if (reason)
		sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int(s, 3, finished);
	sqlite3_bind_int64(s, 4, now_ns());
	sqlite3_bind_text(s, 5, env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, number);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "updating the release");
	return 0;
}

static int release_query(struct state *st, const char *sql, const char *env, int64_t number,
			 struct state_release **ret, size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st, sql, &s, err);
	if (rc < 0)
		return rc;
	if (env)
		sqlite3_bind_text(s, 1, env, -1, SQLITE_STATIC);
	if (number >= 0)
		sqlite3_bind_int64(s, 2, number);
	struct state_release *v = NULL;
	size_t n = 0, cap = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		memset(&v[n], 0, sizeof(v[n]));
		release_from_row(s, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		state_releases_free(v, n);
		return db_error(st, err, "reading releases");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_release_get(struct state *st, const char *env, unsigned number,
		      struct state_release *ret, struct cairn_error *err)
{
	struct state_release *v = NULL;
	size_t n = 0;
	int r = release_query(st,
			      "SELECT " RELEASE_COLS " FROM releases WHERE env = ?1 AND number = ?2",
			      env, number, &v, &n, err);
	if (r < 0)
		return r;
	if (!n) {
		free(v);
		return -ENOENT;
	}
	*ret = v[0];
	free(v);
	return 0;
}

int state_release_list(struct state *st, const char *env, struct state_release **ret,
		       size_t *ret_n, struct cairn_error *err)
{
	if (env)
		return release_query(st,
				     "SELECT " RELEASE_COLS
				     " FROM releases WHERE env = ?1 ORDER BY number DESC",
				     env, -1, ret, ret_n, err);
	return release_query(st, "SELECT " RELEASE_COLS " FROM releases ORDER BY env, number DESC",
			     NULL, -1, ret, ret_n, err);
}

int state_release_with_state(struct state *st, const char *env, const char *state,
			     struct state_release *ret, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st,
			 "SELECT " RELEASE_COLS " FROM releases WHERE env = ? AND state = ? "
			 "ORDER BY number DESC LIMIT 1",
			 &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, env, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "reading releases");
	release_from_row(s, ret);
	return 0;
}

int state_release_add_instance(struct state *st, const char *env, unsigned number,
			       const char *instance, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st,
			 "INSERT OR REPLACE INTO release_instances(instance, env, number) "
			 "VALUES (?, ?, ?)",
			 &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, number);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "recording a release's instance");
	return 0;
}

int state_release_remove_instance(struct state *st, const char *instance,
				  struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st, "DELETE FROM release_instances WHERE instance = ?", &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, instance, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "forgetting a release's instance");
	return 0;
}

int state_release_move_instances(struct state *st, const char *env, unsigned from, unsigned to,
				 struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st, "UPDATE release_instances SET number = ? WHERE env = ? AND number = ?",
			 &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, to);
	sqlite3_bind_text(s, 2, env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, from);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "moving instances between releases");
	return 0;
}

int state_release_instances(struct state *st, const char *env, unsigned number, char ***ret,
			    size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st,
			 "SELECT instance FROM release_instances WHERE env = ? AND number = ? "
			 "ORDER BY instance",
			 &s, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, number);
	return query_strings(st, s, "reading a release's instances", ret, ret_n, err);
}

int state_envs(struct state *st, char ***ret, size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st, "SELECT DISTINCT env FROM releases ORDER BY env", &s, err);
	if (rc < 0)
		return rc;
	return query_strings(st, s, "listing environments", ret, ret_n, err);
}

int state_event_list(struct state *st, const char *subject_prefix, size_t limit,
		     struct state_event **ret, size_t *ret_n, struct cairn_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = prepare(st,
			 "SELECT at, kind, subject, detail FROM (SELECT seq, at, kind, subject, "
			 "detail FROM events WHERE ?1 IS NULL OR subject = ?1 OR subject LIKE ?1 || "
			 "'/%' ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
			 &s, err);
	if (rc < 0)
		return rc;
	if (subject_prefix)
		sqlite3_bind_text(s, 1, subject_prefix, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_int64(s, 2, (int64_t)limit);
	struct state_event *v = NULL;
	size_t n = 0, cap = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		v[n].at_ns = sqlite3_column_int64(s, 0);
		v[n].kind = xstrdup(col_text(s, 1));
		v[n].subject = xstrdup(col_text(s, 2));
		v[n].detail = xstrdup(col_text(s, 3));
		n++;
	}
	if (rc != SQLITE_DONE) {
		state_events_free(v, n);
		return db_error(st, err, "reading events");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void state_events_free(struct state_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].kind);
		free(v[i].subject);
		free(v[i].detail);
	}
	free(v);
}
