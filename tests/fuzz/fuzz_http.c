/* libFuzzer target for the HTTP/1.1 parser (src/router/http.c). The input is
 * read as a pipeline of requests and as one of responses: whole, a byte at a
 * time, and in pieces copied to buffers of their exact size (so ASan sees a
 * read past the end), all three giving the same verdict and fields; each body
 * is tracked whole and in pieces to the same end, and forwarded
 * (http_body_forward) whole and in pieces to the same bytes; a head that
 * parses is forwarded, and the forwarded head parses again with the same
 * method, target and framing, and forwards again to the same bytes. A bare LF
 * is a line end in a response only: a request head that parses has none, a
 * response with its bare LFs written CRLF gets the same verdict and message,
 * and what is forwarded of a response's chunked body reads as a request's
 * (CRLF only) to the same end. The input is also run through the chunked
 * tracker on its own, as a request's body and as a response's. */
#include "../../src/router/http.h"

#include <stdio.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A small deterministic generator for split points. */
static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static int parse(bool request, unsigned flags, struct http_parser *p, const char *d, size_t n,
		 struct http_message *m, struct http_error *e)
{
	return request ? http_parse_request(p, d, n, m, e)
		       : http_parse_response(p, d, n, flags, m, e);
}

static bool str_same(struct http_str a, const char *abase, struct http_str b, const char *bbase)
{
	if (a.len != b.len || !a.p != !b.p)
		return false;
	return !a.p || a.p - abase == b.p - bbase;
}

static bool bytes_eq(struct http_str a, struct http_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* d[0..n) with a CR written before every LF that has none. */
static void put_crlf(struct buf *out, const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
			buf_putc(out, '\r');
		buf_putc(out, d[i]);
	}
}

static size_t count_bare_lf(const char *d, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += d[i] == '\n' && (i == 0 || d[i - 1] != '\r');
	return k;
}

/* A fresh body tracker, for a response's body or a request's. */
static void body_init(struct http_body *b, enum http_body_kind kind, uint64_t length, bool response)
{
	if (!response) {
		http_body_init_kind(b, kind, length);
		return;
	}
	struct http_message *m = xcalloc(1, sizeof(*m));
	m->response = true;
	m->body = kind;
	m->content_length = length;
	http_body_init(b, m);
	free(m);
}

static void check_same(const struct http_message *a, const char *abase,
		       const struct http_message *b, const char *bbase)
{
	CHECK(a->response == b->response);
	CHECK(str_same(a->method, abase, b->method, bbase));
	CHECK(str_same(a->target, abase, b->target, bbase));
	CHECK(str_same(a->reason, abase, b->reason, bbase));
	CHECK(str_same(a->host, abase, b->host, bbase));
	CHECK(a->target_form == b->target_form);
	CHECK(a->status == b->status);
	CHECK(a->minor_version == b->minor_version);
	CHECK(a->n_headers == b->n_headers);
	for (size_t i = 0; i < a->n_headers; i++) {
		CHECK(str_same(a->headers[i].name, abase, b->headers[i].name, bbase));
		CHECK(str_same(a->headers[i].value, abase, b->headers[i].value, bbase));
	}
	CHECK(a->head_len == b->head_len);
	CHECK(a->body == b->body);
	CHECK(a->content_length == b->content_length);
	CHECK(a->has_content_length == b->has_content_length);
	CHECK(a->chunked == b->chunked);
	CHECK(a->keep_alive == b->keep_alive);
	CHECK(a->upgrade == b->upgrade);
	CHECK(a->expect_continue == b->expect_continue);
	CHECK(a->has_host == b->has_host);
}

/* Two heads say the same (their bytes may differ in line ends). */
static void check_equivalent(const struct http_message *a, const struct http_message *b)
{
	CHECK(a->response == b->response);
	CHECK(bytes_eq(a->method, b->method) && !a->method.p == !b->method.p);
	CHECK(bytes_eq(a->target, b->target) && !a->target.p == !b->target.p);
	CHECK(bytes_eq(a->reason, b->reason) && !a->reason.p == !b->reason.p);
	CHECK(bytes_eq(a->host, b->host) && !a->host.p == !b->host.p);
	CHECK(a->target_form == b->target_form);
	CHECK(a->status == b->status);
	CHECK(a->minor_version == b->minor_version);
	CHECK(a->n_headers == b->n_headers);
	for (size_t i = 0; i < a->n_headers; i++) {
		CHECK(bytes_eq(a->headers[i].name, b->headers[i].name));
		CHECK(bytes_eq(a->headers[i].value, b->headers[i].value));
	}
	CHECK(a->body == b->body);
	CHECK(a->content_length == b->content_length);
	CHECK(a->has_content_length == b->has_content_length);
	CHECK(a->chunked == b->chunked);
	CHECK(a->keep_alive == b->keep_alive);
	CHECK(a->upgrade == b->upgrade);
	CHECK(a->expect_continue == b->expect_continue);
	CHECK(a->has_host == b->has_host);
}

static void check_error(int r, const struct http_error *e)
{
	CHECK(e->reason != NULL);
	switch (e->status) {
	case 400:
		CHECK(r == -EBADMSG);
		break;
	case 431:
		CHECK(r == -EMSGSIZE);
		break;
	case 501:
		CHECK(r == -EOPNOTSUPP);
		break;
	case 505:
		CHECK(r == -EPROTONOSUPPORT);
		break;
	default:
		CHECK(!"unexpected status");
	}
}

/* Parse d[0..n) one-shot, byte by byte, and in pieces (exact-size copies):
 * the same result. Returns it; m filled (pointing into d) on 1. */
static int parse_three_ways(bool request, unsigned flags, const char *d, size_t n,
			    struct http_message *m, uint64_t *rng)
{
	struct http_error e1 = {0}, e2 = {0}, e3 = {0};
	struct http_message *m2 = xmalloc(sizeof(*m2));
	int r1 = parse(request, flags, NULL, d, n, m, &e1);
	if (r1 < 0)
		check_error(r1, &e1);
	if (r1 == 1 && request) {
		CHECK(m->head_len >= 4 && m->head_len <= n && m->head_len <= HTTP_HEAD_MAX);
		CHECK(memcmp(d + m->head_len - 4, "\r\n\r\n", 4) == 0);
	} else if (r1 == 1) {
		/* "\n\n", "\n\r\n" */
		size_t h = m->head_len;
		CHECK(h >= 2 && h <= n && h <= HTTP_HEAD_MAX);
		CHECK(d[h - 1] == '\n' &&
		      (d[h - 2] == '\n' || (d[h - 2] == '\r' && h >= 3 && d[h - 3] == '\n')));
	}

	/* byte by byte, in place */
	struct http_parser p;
	http_parser_init(&p, 0);
	int r2 = 0;
	for (size_t k = 0; k <= n; k++) {
		r2 = parse(request, flags, &p, d, k, m2, &e2);
		if (r2 != 0)
			break;
	}
	CHECK(r1 == r2);
	if (r1 < 0) {
		CHECK(e1.status == e2.status && streq(e1.reason, e2.reason));
	} else if (r1 == 1) {
		check_same(m, d, m2, d);
	}

	/* in pieces, each prefix in a buffer of its own exact size */
	http_parser_init(&p, 0);
	int r3 = 0;
	char *copy = NULL;
	size_t k = 0;
	for (;;) {
		size_t step = 1 + rng_next(rng) % (n / 4 + 2);
		k = k + step > n ? n : k + step;
		free(copy);
		copy = xmalloc(k ? k : 1);
		memcpy(copy, d, k);
		r3 = parse(request, flags, &p, copy, k, m2, &e3);
		if (r3 != 0 || k == n)
			break;
	}
	CHECK(r1 == r3);
	if (r1 < 0) {
		CHECK(e1.status == e3.status && streq(e1.reason, e3.reason));
	} else if (r1 == 1) {
		check_same(m, d, m2, copy);
	}
	free(copy);
	free(m2);
	return r1;
}

static void check_fields(const struct http_message *m)
{
	CHECK(m->n_headers <= HTTP_HEADERS_MAX);
	CHECK(m->minor_version == 0 || m->minor_version == 1);
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct http_header *h = &m->headers[i];
		CHECK(h->name.len > 0);
		CHECK(!memchr(h->name.p, ':', h->name.len));
		CHECK(!memchr(h->value.p, '\r', h->value.len));
		CHECK(!memchr(h->value.p, '\n', h->value.len));
		if (h->value.len > 0) {
			CHECK(h->value.p[0] != ' ' && h->value.p[0] != '\t');
			CHECK(h->value.p[h->value.len - 1] != ' ' &&
			      h->value.p[h->value.len - 1] != '\t');
		}
		char *name = http_str_dup(h->name);
		const struct http_header *f = http_header_find(m, name);
		CHECK(f && f <= h);
		free(name);
	}
	switch (m->body) {
	case HTTP_BODY_LENGTH:
		CHECK(m->has_content_length && !m->chunked);
		CHECK(m->content_length <= INT64_MAX);
		break;
	case HTTP_BODY_CHUNKED:
		CHECK(m->chunked && !m->has_content_length && m->minor_version == 1);
		break;
	case HTTP_BODY_UNTIL_CLOSE:
		CHECK(m->response && !m->keep_alive);
		break;
	case HTTP_BODY_NONE:
		break;
	}
	CHECK(!(m->chunked && m->has_content_length));
	if (m->response) {
		CHECK(m->status >= 100 && m->status <= 599);
	} else {
		CHECK(m->method.len > 0 && m->target.len > 0);
		CHECK(m->body != HTTP_BODY_UNTIL_CLOSE);
		CHECK(m->minor_version == 0 || m->has_host);
		CHECK(!m->upgrade || m->minor_version == 1);
	}
}

/* Fields in a forwarded head: its lines but the start line and the end. */
static size_t count_fields(const struct buf *b)
{
	size_t n = 0;
	for (size_t i = 0; i + 1 < b->len; i++)
		if (b->data[i] == '\r' && b->data[i + 1] == '\n')
			n++;
	return n - 2;
}

static void check_forward_request(const struct http_message *m, bool pass_upgrade)
{
	struct buf out = {0};
	http_forward_request_head(&out, m, "192.0.2.1", "https", pass_upgrade);
	struct http_message *again = xmalloc(sizeof(*again));
	struct http_parser p;
	struct http_error e = {0};
	http_parser_init(&p, HTTP_HEAD_MAX_LIMIT);
	int r = http_parse_request(&p, out.data, out.len, again, &e);
	if (count_fields(&out) > HTTP_HEADERS_MAX) {
		CHECK(r == -EMSGSIZE);
		goto done;
	}
	if (r != 1)
		fprintf(stderr, "fuzz_http: forwarded request refused: %d %s\n%s", e.status,
			e.reason, out.data);
	CHECK(r == 1);
	CHECK(again->head_len == out.len);
	CHECK(bytes_eq(again->method, m->method));
	CHECK(bytes_eq(again->target, m->target));
	CHECK(again->target_form == m->target_form);
	CHECK(again->minor_version == 1);
	CHECK(again->body == m->body);
	CHECK(again->content_length == m->content_length || m->body != HTTP_BODY_LENGTH);
	CHECK(again->upgrade == (pass_upgrade && m->upgrade));
	CHECK(again->keep_alive);
	CHECK(again->expect_continue == m->expect_continue);
	CHECK(again->has_host);
	CHECK(bytes_eq(again->host, m->host));
	const struct http_header *xff = http_header_find(again, "x-forwarded-for");
	CHECK(xff && xff->value.len >= 9 &&
	      memcmp(xff->value.p + xff->value.len - 9, "192.0.2.1", 9) == 0);
	CHECK(http_header_next(again, "x-forwarded-for", xff) == NULL);
	check_fields(again);

	/* forwarding is idempotent */
	struct buf out2 = {0};
	http_forward_request_head(&out2, again, NULL, "https", pass_upgrade);
	if (out2.len != out.len || memcmp(out2.data, out.data, out.len) != 0) {
		fprintf(stderr, "fuzz_http: forwarded twice differs:\n%s---\n%s", out.data,
			out2.data);
		abort();
	}
	buf_free(&out2);
done:
	free(again);
	buf_free(&out);
}

static void check_forward_response(const struct http_message *m, unsigned flags, bool keep_alive)
{
	struct buf out = {0};
	bool keep = http_forward_response_head(&out, m, keep_alive);
	if (m->body == HTTP_BODY_UNTIL_CLOSE || m->upgrade)
		CHECK(!keep);
	struct http_message *again = xmalloc(sizeof(*again));
	struct http_parser p;
	struct http_error e = {0};
	http_parser_init(&p, HTTP_HEAD_MAX_LIMIT);
	int r = http_parse_response(&p, out.data, out.len, flags, again, &e);
	if (count_fields(&out) > HTTP_HEADERS_MAX) {
		CHECK(r == -EMSGSIZE);
		goto done;
	}
	if (r != 1)
		fprintf(stderr, "fuzz_http: forwarded response refused: %d %s\n%s", e.status,
			e.reason, out.data);
	CHECK(r == 1);
	CHECK(again->head_len == out.len);
	CHECK(again->status == m->status);
	CHECK(again->minor_version == 1);
	CHECK(again->body == m->body);
	CHECK(again->content_length == m->content_length || m->body != HTTP_BODY_LENGTH);
	CHECK(again->upgrade == m->upgrade);
	CHECK(again->keep_alive == keep);
	check_fields(again);

	struct buf out2 = {0};
	CHECK(http_forward_response_head(&out2, again, keep_alive) == keep);
	CHECK(out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
	buf_free(&out2);
done:
	free(again);
	buf_free(&out);
}

/* Forward the body in d[0..n) whole and in pieces (exact-size copies): the
 * same verdict r1 and end c1 as http_body_feed, the same bytes out (nothing
 * on failure). A request's bytes, and bodies that are not chunked, go out as
 * they came; a response's chunked body goes out in CRLF, which reads as a
 * request's to the same end, and as it came when it was CRLF already. */
static void check_forward_body(const struct http_body *init, const char *d, size_t n, int r1,
			       size_t c1, uint64_t *rng)
{
	struct http_body b3 = *init, b4 = *init;
	struct http_error e3 = {0}, e4 = {0};
	struct buf o3 = {0}, o4 = {0};
	size_t c3 = 0;
	int r3 = http_body_forward(&b3, d, n, &c3, &o3, &e3);
	CHECK(r3 == r1);
	if (r1 < 0) {
		CHECK(o3.len == 0);
	} else {
		CHECK(c3 == c1 && b3.done == (r1 == 1) && b3.consumed == init->consumed + c1);
	}

	size_t pos = 0;
	int r4 = 0;
	do {
		size_t step = 1 + rng_next(rng) % (n / 3 + 2);
		if (step > n - pos)
			step = n - pos;
		char *piece = xmalloc(step ? step : 1);
		memcpy(piece, d + pos, step);
		size_t c = 0, was = o4.len;
		r4 = http_body_forward(&b4, piece, step, &c, &o4, &e4);
		free(piece);
		if (r4 < 0) {
			CHECK(o4.len == was);
			break;
		}
		CHECK(c <= step);
		pos += step;
		if (r4 == 1)
			break;
	} while (pos < n);
	CHECK(r4 == r1);
	if (r1 < 0)
		goto done;
	CHECK(o3.len == o4.len && (o3.len == 0 || memcmp(o3.data, o4.data, o3.len) == 0));
	CHECK(o3.len >= c1);
	bool verbatim = o3.len == c1 && (c1 == 0 || memcmp(o3.data, d, c1) == 0);
	if (!init->response || init->kind != HTTP_BODY_CHUNKED) {
		CHECK(verbatim);
		goto done;
	}
	if (init->consumed != 0)
		goto done; /* the checks below start from the first chunk */
	/* what is fine for a request is read the same for a response */
	struct http_body s;
	struct http_error es;
	size_t cs = 0;
	http_body_init_kind(&s, HTTP_BODY_CHUNKED, 0);
	int rs = http_body_feed(&s, d, n, &cs, &es);
	if (rs >= 0)
		CHECK(rs == r1 && cs == c1 && verbatim);
	/* and what is forwarded is fine for a request, to the same end */
	http_body_init_kind(&s, HTTP_BODY_CHUNKED, 0);
	rs = http_body_feed(&s, o3.data, o3.len, &cs, &es);
	if (rs != r1 || cs != o3.len)
		fprintf(stderr, "fuzz_http: forwarded chunked body reads %d (%s) at %zu of %zu\n",
			rs, rs < 0 ? es.reason : "", cs, o3.len);
	CHECK(rs == r1 && cs == o3.len);
done:
	buf_free(&o3);
	buf_free(&o4);
}

/* Track the body in d[0..n) whole and in pieces (exact-size copies): the same
 * end. Returns the result, *ret_consumed on >= 0. */
static int track_body(const struct http_body *init, const char *d, size_t n, size_t *ret_consumed,
		      uint64_t *rng)
{
	struct http_body b1 = *init, b2 = *init;
	struct http_error e1 = {0}, e2 = {0};
	size_t c1 = 0;
	int r1 = http_body_feed(&b1, d, n, &c1, &e1);
	if (r1 < 0) {
		CHECK(r1 == -EBADMSG && e1.status == 400 && e1.reason);
	} else {
		CHECK(c1 <= n);
		CHECK(r1 == 1 || c1 == n);
		CHECK(b1.done == (r1 == 1));
		CHECK(b1.consumed == init->consumed + c1);
	}

	size_t pos = 0, total = 0;
	int r2 = 0;
	do {
		size_t step = 1 + rng_next(rng) % (n / 3 + 2);
		if (step > n - pos)
			step = n - pos;
		char *piece = xmalloc(step ? step : 1);
		memcpy(piece, d + pos, step);
		size_t c = 0;
		r2 = http_body_feed(&b2, piece, step, &c, &e2);
		free(piece);
		if (r2 < 0)
			break;
		CHECK(c <= step);
		total += c;
		pos += step;
		if (r2 == 1)
			break;
	} while (pos < n);
	CHECK(r1 == r2);
	if (r1 < 0) {
		CHECK(streq(e1.reason, e2.reason));
		return r1;
	}
	CHECK(total == c1);
	CHECK(b1.done == b2.done && b1.consumed == b2.consumed);
	if (r1 == 1) {
		/* done means done */
		size_t c = 7;
		CHECK(http_body_feed(&b1, d, n, &c, &e1) == 1 && c == 0);
		CHECK(http_body_eof(&b1, &e1) == 0);
	}
	check_forward_body(init, d, n, r1, c1, rng);
	*ret_consumed = c1;
	return r1;
}

/* The response head m parsed from d, with its bare LFs written CRLF: the
 * same message. */
static void check_head_in_crlf(const struct http_message *m, const char *d, unsigned flags)
{
	struct buf nb = {0};
	put_crlf(&nb, d, m->head_len);
	struct http_message *again = xmalloc(sizeof(*again));
	struct http_parser p;
	struct http_error e = {0};
	http_parser_init(&p, HTTP_HEAD_MAX_LIMIT);
	CHECK(http_parse_response(&p, nb.data, nb.len, flags, again, &e) == 1);
	CHECK(again->head_len == nb.len);
	CHECK(nb.len == m->head_len + count_bare_lf(d, m->head_len));
	check_equivalent(m, again);
	free(again);
	buf_free(&nb);
}

/* The whole input as a response, and with its bare LFs written CRLF: the
 * same verdict (a limit on the head size that neither can reach). */
static void check_response_in_crlf(const char *in, size_t size, unsigned flags)
{
	struct buf nb = {0};
	put_crlf(&nb, in, size);
	struct http_message *m1 = xmalloc(sizeof(*m1)), *m2 = xmalloc(sizeof(*m2));
	struct http_parser p1, p2;
	struct http_error e1 = {0}, e2 = {0};
	http_parser_init(&p1, HTTP_HEAD_MAX_LIMIT);
	http_parser_init(&p2, HTTP_HEAD_MAX_LIMIT);
	int r1 = http_parse_response(&p1, in, size, flags, m1, &e1);
	int r2 = http_parse_response(&p2, nb.data, nb.len, flags, m2, &e2);
	CHECK(r1 == r2);
	if (r1 < 0)
		CHECK(e1.status == e2.status && streq(e1.reason, e2.reason));
	if (r1 == 1) {
		check_equivalent(m1, m2);
		CHECK(m2->head_len == m1->head_len + count_bare_lf(in, m1->head_len));
	}
	free(m1);
	free(m2);
	buf_free(&nb);
}

/* Up to four pipelined messages. */
static void check_pipeline(const char *in, size_t size, bool request, unsigned flags, uint64_t *rng)
{
	struct http_message *m = xmalloc(sizeof(*m));
	size_t pos = 0;
	for (int k = 0; k < 4; k++) {
		const char *d = in + pos;
		size_t n = size - pos;
		if (parse_three_ways(request, flags, d, n, m, rng) != 1)
			break;
		check_fields(m);
		if (request)
			CHECK(count_bare_lf(d, m->head_len) == 0);
		else
			check_head_in_crlf(m, d, flags);
		if (request) {
			check_forward_request(m, true);
			check_forward_request(m, false);
			CHECK(http_response_flags(m) <= HTTP_RESPONSE_TO_CONNECT);
		} else {
			check_forward_response(m, flags, true);
			check_forward_response(m, flags, false);
		}
		struct http_body b;
		http_body_init(&b, m);
		CHECK(b.kind == m->body);
		size_t consumed = 0;
		if (track_body(&b, d + m->head_len, n - m->head_len, &consumed, rng) != 1)
			break;
		pos += m->head_len + consumed;
		if (m->upgrade)
			break;
	}
	free(m);
}

static void check_chunked_alone(const char *in, size_t size, bool response, uint64_t *rng)
{
	struct http_body b;
	body_init(&b, HTTP_BODY_CHUNKED, 0, response);
	size_t c = 0;
	int r = track_body(&b, in, size, &c, rng);
	if (r == 1) {
		/* the end is where it is whatever follows */
		struct http_body b2;
		struct http_error e;
		size_t c2 = 0;
		body_init(&b2, HTTP_BODY_CHUNKED, 0, response);
		CHECK(http_body_feed(&b2, in, c - 1, &c2, &e) == 0 && c2 == c - 1);
		CHECK(http_body_eof(&b2, &e) == -EPIPE);
		CHECK(http_body_feed(&b2, in + c - 1, 1, &c2, &e) == 1 && c2 == 1);
	}
}

static void check_error_response(int status)
{
	struct buf b = {0};
	http_write_error(&b, status);
	struct http_message *m = xmalloc(sizeof(*m));
	struct http_error e;
	CHECK(http_parse_response(NULL, b.data, b.len, 0, m, &e) == 1);
	CHECK(m->status == (status >= 400 && status <= 599 ? status : 500));
	CHECK(m->body == HTTP_BODY_LENGTH && m->head_len + m->content_length == b.len);
	CHECK(!m->keep_alive);
	free(m);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (64u << 10))
		return 0;
	const char *in = (const char *)data;
	uint64_t rng = size * 0x9e3779b97f4a7c15ull + (size ? data[0] : 0);

	check_pipeline(in, size, true, 0, &rng);
	unsigned flags = size % 3 == 1	 ? HTTP_RESPONSE_TO_HEAD
			 : size % 3 == 2 ? HTTP_RESPONSE_TO_CONNECT
					 : 0;
	check_pipeline(in, size, false, flags, &rng);
	check_response_in_crlf(in, size, flags);
	check_chunked_alone(in, size, false, &rng);
	check_chunked_alone(in, size, true, &rng);
	if (size >= 2)
		check_error_response(data[0] << 8 | data[1]);
	return 0;
}
