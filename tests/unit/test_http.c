/* Unit tests of src/router/http.c: request and status lines, header syntax,
 * limits, body framing rules and the request-smuggling classics, incremental
 * parsing, pipelining, the chunked and length trackers, and the heads a
 * proxy forwards. */
#include "unit.h"

#include "../../src/router/http.h"

/* --- helpers ------------------------------------------------------------ */

static bool str_is(struct http_str s, const char *lit)
{
	return s.len == strlen(lit) && (s.len == 0 || memcmp(s.p, lit, s.len) == 0);
}

#define assert_str(s, lit)                                                                         \
	do {                                                                                       \
		struct http_str s_ = (s);                                                          \
		if (!str_is(s_, lit))                                                              \
			fail_msg("\"%.*s\" != \"%s\"", (int)s_.len, s_.p ? s_.p : "", lit);        \
	} while (0)

static ptrdiff_t off(const char *p, const char *base)
{
	return p ? p - base : -1;
}

static void assert_same_str(struct http_str a, const char *abase, struct http_str b,
			    const char *bbase)
{
	assert_int_equal(a.len, b.len);
	assert_int_equal(off(a.p, abase), off(b.p, bbase));
}

/* Two parses of the same bytes (at different addresses) agree. */
static void assert_same_message(const struct http_message *a, const char *abase,
				const struct http_message *b, const char *bbase)
{
	assert_int_equal(a->response, b->response);
	assert_same_str(a->method, abase, b->method, bbase);
	assert_same_str(a->target, abase, b->target, bbase);
	assert_same_str(a->reason, abase, b->reason, bbase);
	assert_same_str(a->host, abase, b->host, bbase);
	assert_int_equal(a->target_form, b->target_form);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->n_headers, b->n_headers);
	for (size_t i = 0; i < a->n_headers; i++) {
		assert_same_str(a->headers[i].name, abase, b->headers[i].name, bbase);
		assert_same_str(a->headers[i].value, abase, b->headers[i].value, bbase);
	}
	assert_int_equal(a->head_len, b->head_len);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->has_content_length, b->has_content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->upgrade, b->upgrade);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->has_host, b->has_host);
}

static int parse(bool request, unsigned flags, struct http_parser *p, const char *data, size_t len,
		 struct http_message *m, struct http_error *e)
{
	return request ? http_parse_request(p, data, len, m, e)
		       : http_parse_response(p, data, len, flags, m, e);
}

/* Parse data[0..len) one-shot, then again one byte at a time, each prefix in
 * a buffer of its own exact size (so the buffer moves between calls and ASan
 * sees any read past the end); both must agree. Returns the one-shot result;
 * *m is filled on success and points into data. */
static int parse_both(bool request, unsigned flags, const char *data, size_t len,
		      struct http_message *m, struct http_error *e)
{
	struct http_message *inc = xmalloc(sizeof(*inc));
	struct http_error e2 = {0};
	int r = parse(request, flags, NULL, data, len, m, e);

	struct http_parser p;
	http_parser_init(&p, 0);
	int r2 = 0;
	char *copy = NULL;
	for (size_t n = 0; n <= len; n++) {
		free(copy);
		copy = xmalloc(n ? n : 1);
		memcpy(copy, data, n);
		r2 = parse(request, flags, &p, copy, n, inc, &e2);
		if (r2 != 0)
			break;
	}
	assert_int_equal(r, r2);
	if (r < 0) {
		assert_int_equal(e->status, e2.status);
		assert_string_equal(e->reason, e2.reason);
	} else if (r == 1) {
		assert_same_message(m, data, inc, copy);
	}
	free(copy);
	free(inc);
	return r;
}

static struct http_message *req_ok(const char *text)
{
	struct http_message *m = xmalloc(sizeof(*m));
	struct http_error e = {0};
	int r = parse_both(true, 0, text, strlen(text), m, &e);
	if (r != 1)
		fail_msg("request refused (%d %s): %s", e.status,
			 e.reason ? e.reason : "incomplete", text);
	assert_int_equal(m->head_len, strlen(text));
	return m;
}

static void req_fails_len(const char *text, size_t len, int status)
{
	struct http_message *m = xmalloc(sizeof(*m));
	struct http_error e = {0};
	int r = parse_both(true, 0, text, len, m, &e);
	if (r >= 0)
		fail_msg("request accepted or incomplete (%d), expected %d: %.*s", r, status,
			 (int)len, text);
	if (e.status != status)
		fail_msg("status %d (%s), expected %d: %.*s", e.status, e.reason, status, (int)len,
			 text);
	switch (status) {
	case 431:
		assert_int_equal(r, -EMSGSIZE);
		break;
	case 501:
		assert_int_equal(r, -EOPNOTSUPP);
		break;
	case 505:
		assert_int_equal(r, -EPROTONOSUPPORT);
		break;
	default:
		assert_int_equal(r, -EBADMSG);
	}
	free(m);
}

static void req_fails(const char *text, int status)
{
	req_fails_len(text, strlen(text), status);
}

static struct http_message *resp_ok(const char *text, unsigned flags)
{
	struct http_message *m = xmalloc(sizeof(*m));
	struct http_error e = {0};
	int r = parse_both(false, flags, text, strlen(text), m, &e);
	if (r != 1)
		fail_msg("response refused (%d %s): %s", e.status,
			 e.reason ? e.reason : "incomplete", text);
	assert_true(m->response);
	return m;
}

static void resp_fails(const char *text, unsigned flags, int status)
{
	struct http_message *m = xmalloc(sizeof(*m));
	struct http_error e = {0};
	int r = parse_both(false, flags, text, strlen(text), m, &e);
	if (r >= 0)
		fail_msg("response accepted or incomplete (%d), expected %d: %s", r, status, text);
	if (e.status != status)
		fail_msg("status %d (%s), expected %d: %s", e.status, e.reason, status, text);
	free(m);
}

/* A fresh tracker of the given kind, for a response's body or a request's. */
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

/* Feed data to a fresh tracker one-shot and byte by byte, and through
 * http_body_forward one-shot and byte by byte: all must agree, and the
 * forwarded bytes must be the same both ways (nothing on failure). Returns the
 * result; *ret_consumed is set when >= 0, and ret_out (may be NULL) gets the
 * bytes forwarded. */
static int body_both_out(enum http_body_kind kind, uint64_t length, bool response, const char *data,
			 size_t len, size_t *ret_consumed, struct buf *ret_out)
{
	struct http_body b;
	struct http_error e = {0};
	size_t n = 0;
	body_init(&b, kind, length, response);
	int r = http_body_feed(&b, data, len, &n, &e);

	struct http_body b2;
	struct http_error e2 = {0};
	size_t total = 0;
	int r2 = 0;
	body_init(&b2, kind, length, response);
	for (size_t i = 0; i < len; i++) {
		char *one = xmalloc(1);
		one[0] = data[i];
		size_t k = 12345;
		r2 = http_body_feed(&b2, one, 1, &k, &e2);
		free(one);
		if (r2 < 0) {
			assert_int_equal(k, 12345); /* untouched on failure */
			break;
		}
		total += k;
		if (r2 == 1)
			break;
	}
	if (len == 0)
		r2 = http_body_feed(&b2, data, 0, &total, &e2);
	assert_int_equal(r, r2);

	/* forwarded, one-shot and byte by byte, after bytes already there */
	struct http_body b3, b4;
	struct http_error e3 = {0}, e4 = {0};
	struct buf out = {0}, out2 = {0};
	size_t n3 = 0, total4 = 0;
	buf_puts(&out, "before");
	buf_puts(&out2, "before");
	body_init(&b3, kind, length, response);
	int r3 = http_body_forward(&b3, data, len, &n3, &out, &e3);
	assert_int_equal(r, r3);
	body_init(&b4, kind, length, response);
	int r4 = 0;
	for (size_t i = 0; i < len; i++) {
		size_t k = 12345, was = out2.len;
		r4 = http_body_forward(&b4, data + i, 1, &k, &out2, &e4);
		if (r4 < 0) {
			assert_int_equal(k, 12345);
			assert_int_equal(out2.len, was); /* nothing appended on failure */
			break;
		}
		total4 += k;
		if (r4 == 1)
			break;
	}
	if (len == 0)
		r4 = http_body_forward(&b4, data, 0, &total4, &out2, &e4);
	assert_int_equal(r, r4);
	assert_memory_equal(out.data, "before", 6);

	if (r < 0) {
		assert_int_equal(e.status, 400);
		assert_string_equal(e.reason, e2.reason);
		assert_string_equal(e.reason, e3.reason);
		assert_string_equal(e.reason, e4.reason);
		assert_int_equal(out.len, 6);
		buf_free(&out);
		buf_free(&out2);
		return r;
	}
	assert_int_equal(n, total);
	assert_int_equal(n, n3);
	assert_int_equal(n, total4);
	assert_int_equal(b.done, r == 1);
	assert_int_equal(b.consumed, n);
	assert_int_equal(b3.consumed, n);
	assert_int_equal(out.len, out2.len);
	assert_memory_equal(out.data, out2.data, out.len);
	/* a request's bytes go on as they came */
	if (!response) {
		assert_int_equal(out.len, 6 + n);
		assert_memory_equal(out.data + 6, data, n);
	}
	if (ret_out) {
		ret_out->len = 0;
		buf_put(ret_out, out.data + 6, out.len - 6);
	}
	buf_free(&out);
	buf_free(&out2);
	*ret_consumed = n;
	return r;
}

static int body_both(enum http_body_kind kind, uint64_t length, const char *data, size_t len,
		     size_t *ret_consumed)
{
	return body_both_out(kind, length, false, data, len, ret_consumed, NULL);
}

/* A complete chunked body of expect_len bytes at the start of body (0: all of it). */
static void chunked_ok(const char *body, size_t expect_len)
{
	if (expect_len == 0)
		expect_len = strlen(body);
	size_t n = 0;
	int r = body_both(HTTP_BODY_CHUNKED, 0, body, strlen(body), &n);
	if (r != 1)
		fail_msg("chunked body not complete (%d): %s", r, body);
	assert_int_equal(n, expect_len);
}

static void chunked_fails(const char *body)
{
	size_t n = 0;
	if (body_both(HTTP_BODY_CHUNKED, 0, body, strlen(body), &n) != -EBADMSG)
		fail_msg("chunked body accepted: %s", body);
}

static void chunked_incomplete(const char *body)
{
	size_t n = 0;
	assert_int_equal(body_both(HTTP_BODY_CHUNKED, 0, body, strlen(body), &n), 0);
	assert_int_equal(n, strlen(body));
}

static char *forward_request(const struct http_message *m, const char *addr, const char *proto,
			     bool pass_upgrade)
{
	struct buf b = {0};
	http_forward_request_head(&b, m, addr, proto, pass_upgrade);
	return buf_steal(&b);
}

/* --- request line ------------------------------------------------------- */

static void test_request_basic(void **state)
{
	const char *text = "GET /index.html?q=1 HTTP/1.1\r\n"
			   "Host: example.com\r\n"
			   "User-Agent:  curl/8 \t\r\n"
			   "Accept:\r\n"
			   "\r\n";
	struct http_message *m = req_ok(text);
	assert_false(m->response);
	assert_str(m->method, "GET");
	assert_str(m->target, "/index.html?q=1");
	assert_int_equal(m->target_form, HTTP_TARGET_ORIGIN);
	assert_int_equal(m->minor_version, 1);
	assert_int_equal(m->n_headers, 3);
	assert_str(m->headers[0].name, "Host");
	assert_str(m->headers[1].value, "curl/8");
	assert_str(m->headers[2].value, "");
	assert_true(m->has_host);
	assert_str(m->host, "example.com");
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_false(m->has_content_length);
	assert_true(m->keep_alive);
	assert_false(m->upgrade);
	assert_false(m->expect_continue);
	/* pointers into the buffer */
	assert_ptr_equal(m->method.p, text);
	free(m);

	m = req_ok("GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(m->minor_version, 0);
	assert_false(m->has_host);
	assert_null(m->host.p);
	assert_false(m->keep_alive);
	free(m);

	/* methods are tokens, case-sensitive, any of them */
	m = req_ok("M-SEARCH /x HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_str(m->method, "M-SEARCH");
	free(m);
	req_fails("GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

static void test_request_line_errors(void **state)
{
	req_fails("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
	req_fails("GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET /\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / http/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400);
	req_fails("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
	req_fails("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
	req_fails("GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505);
	req_fails("GET / HTTP/3.0\r\n\r\n", 505);
	req_fails("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	req_fails("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	/* a TLS handshake on the plain port: refused on its first byte */
	struct http_message m;
	struct http_error e;
	assert_int_equal(http_parse_request(NULL, "\x16\x03\x01", 1, &m, &e), -EBADMSG);
	assert_int_equal(e.status, 400);
}

static void test_request_target_forms(void **state)
{
	struct http_message *m = req_ok("GET http://Example.com:8080/a?b HTTP/1.1\r\n"
					"Host: other.example\r\n\r\n");
	assert_int_equal(m->target_form, HTTP_TARGET_ABSOLUTE);
	assert_str(m->host, "Example.com:8080"); /* the target wins over Host */
	free(m);
	m = req_ok("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(m->target_form, HTTP_TARGET_ABSOLUTE);
	assert_str(m->host, "h");
	free(m);
	m = req_ok("GET http://[::1]:80?x HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_str(m->host, "[::1]:80");
	free(m);
	m = req_ok("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
	assert_int_equal(m->target_form, HTTP_TARGET_AUTHORITY);
	assert_str(m->host, "example.com:443");
	assert_int_equal(http_response_flags(m), HTTP_RESPONSE_TO_CONNECT);
	free(m);
	m = req_ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(m->target_form, HTTP_TARGET_ASTERISK);
	assert_int_equal(http_response_flags(m), 0);
	free(m);
	m = req_ok("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(http_response_flags(m), HTTP_RESPONSE_TO_HEAD);
	free(m);
	m = req_ok("GET //double/slash HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(m->target_form, HTTP_TARGET_ORIGIN);
	free(m);

	req_fails("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("CONNECT example.com:99999 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("CONNECT http://example.com:80/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET http:/a HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET http://h:/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("GET a HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

static void test_leading_empty_lines(void **state)
{
	struct http_message *m = req_ok("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_str(m->method, "GET");
	free(m);
	free(req_ok("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"));
	req_fails("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	req_fails("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	resp_fails("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 400);
}

/* --- fields ------------------------------------------------------------- */

static void test_field_syntax(void **state)
{
	struct http_message *m = req_ok("GET / HTTP/1.1\r\nHost:h\r\nX-A:\tb c\t \r\n"
					"X-Utf8: caf\xc3\xa9\r\nX-Empty:\r\n\r\n");
	assert_str(m->host, "h");
	assert_str(m->headers[1].value, "b c");
	assert_str(m->headers[2].value, "caf\xc3\xa9");
	assert_str(m->headers[3].value, "");
	free(m);

	req_fails("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x1b[0m\r\n\r\n", 400);
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
	req_fails_len(nul, sizeof(nul) - 1, 400);
	/* line endings: CRLF only */
	req_fails("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400);
	/* refused as soon as seen, without waiting for the end of the head */
	struct http_message mm;
	struct http_error e;
	const char *early = "GET / HTTP/1.1\r\nHost: h\n";
	assert_int_equal(http_parse_request(NULL, early, strlen(early), &mm, &e), -EBADMSG);
}

static void test_header_find(void **state)
{
	struct http_message *m = req_ok("GET / HTTP/1.1\r\nHost: h\r\nX-Multi: 1\r\n"
					"Other: z\r\nx-multi: 2\r\n\r\n");
	const struct http_header *h = http_header_find(m, "X-MULTI");
	assert_non_null(h);
	assert_str(h->value, "1");
	h = http_header_next(m, "x-multi", h);
	assert_non_null(h);
	assert_str(h->value, "2");
	assert_null(http_header_next(m, "x-multi", h));
	assert_null(http_header_find(m, "missing"));
	assert_null(http_header_find(m, "x-mult"));
	assert_true(http_str_case_eq(m->headers[0].name, "HOST"));
	char *s = http_str_dup(m->headers[2].value);
	assert_string_equal(s, "z");
	free(s);
	s = http_str_dup((struct http_str){0});
	assert_string_equal(s, "");
	free(s);
	free(m);
}

/* --- limits --------------------------------------------------------------- */

/* A request whose head is exactly len bytes (len >= 64). */
static char *request_of_size(size_t len)
{
	const char *start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	size_t pad = len - strlen(start) - 4;
	char *s = xmalloc(len + 1);
	size_t n = strlen(start);
	memcpy(s, start, n);
	for (size_t i = 0; i < pad; i++) /* (memset trips a false -Warray-bounds) */
		s[n + i] = 'a';
	memcpy(s + n + pad, "\r\n\r\n", 5);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_limits(void **state)
{
	char *s = request_of_size(HTTP_HEAD_MAX);
	free(req_ok(s));
	free(s);
	s = request_of_size(HTTP_HEAD_MAX + 1);
	req_fails(s, 431);

	/* incomplete and already at the limit: refused without more bytes */
	struct http_message m;
	struct http_error e;
	struct http_parser p;
	http_parser_init(&p, 0);
	assert_int_equal(http_parse_request(&p, s, HTTP_HEAD_MAX - 1, &m, &e), 0);
	assert_int_equal(http_parse_request(&p, s, HTTP_HEAD_MAX, &m, &e), -EMSGSIZE);
	assert_int_equal(e.status, 431);
	free(s);

	/* a configured limit */
	http_parser_init(&p, 64);
	s = request_of_size(64);
	assert_int_equal(http_parse_request(&p, s, 64, &m, &e), 1);
	free(s);
	s = request_of_size(65);
	assert_int_equal(http_parse_request(&p, s, 65, &m, &e), -EMSGSIZE);
	free(s);

	/* 100 fields, then 101 */
	struct buf b = {0};
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < HTTP_HEADERS_MAX; i++)
		buf_printf(&b, "X-%d: %d\r\n", i, i);
	size_t before_end = b.len;
	buf_puts(&b, "\r\n");
	struct http_message *mm = req_ok(b.data);
	assert_int_equal(mm->n_headers, HTTP_HEADERS_MAX);
	free(mm);
	b.len = before_end;
	buf_puts(&b, "X-One-Too-Many: 1\r\n");
	/* refused at the end of the 101st field line, before the head ends */
	assert_int_equal(http_parse_request(NULL, b.data, b.len, &m, &e), -EMSGSIZE);
	buf_puts(&b, "\r\n");
	req_fails(b.data, 431);
	buf_free(&b);
}

/* --- framing ---------------------------------------------------------------- */

static void test_content_length(void **state)
{
	struct http_message *m = req_ok("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
	assert_int_equal(m->body, HTTP_BODY_LENGTH);
	assert_int_equal(m->content_length, 5);
	assert_true(m->has_content_length);
	free(m);
	m = req_ok("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(m->body, HTTP_BODY_LENGTH);
	assert_int_equal(m->content_length, 0);
	free(m);
	m = req_ok("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n"
		   "content-length:7\r\n\r\n");
	assert_int_equal(m->content_length, 7);
	free(m);
	m = req_ok("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n");
	assert_int_equal(m->content_length, INT64_MAX);
	free(m);
	m = req_ok("POST /x HTTP/1.0\r\nContent-Length: 3\r\n\r\n");
	assert_int_equal(m->content_length, 3);
	free(m);

	const char *bad[] = {"+5",
			     "-1",
			     "5 5",
			     "5, 6",
			     "",
			     "0x10",
			     "5,",
			     ",5",
			     "1_000",
			     "5;",
			     "5.0",
			     "9223372036854775808",
			     "18446744073709551616",
			     "99999999999999999999999999"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		char *t =
		    xasprintf("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n", bad[i]);
		req_fails(t, 400);
		free(t);
	}
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		  400);
}

static void test_transfer_encoding(void **state)
{
	struct http_message *m =
	    req_ok("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(m->body, HTTP_BODY_CHUNKED);
	assert_true(m->chunked);
	free(m);
	m = req_ok("POST /x HTTP/1.1\r\nHost: h\r\ntransfer-encoding:\tChunked \r\n\r\n");
	assert_int_equal(m->body, HTTP_BODY_CHUNKED);
	free(m);

	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		  501);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	req_fails("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		  400);
}

/* The request-smuggling classics, each refused with the status given. */
static void test_smuggling_classics(void **state)
{
	static const struct {
		const char *fields;
		int status;
	} cases[] = {
	    /* CL.TE and TE.CL */
	    {"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", 400},
	    {"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", 400},
	    {"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", 400},
	    /* obfuscated Transfer-Encoding */
	    {"Transfer-Encoding : chunked\r\n", 400},
	    {"Transfer-Encoding:\r\n chunked\r\n", 400},
	    {"Transfer-Encoding: x\r\n\tchunked\r\n", 400},
	    {" Transfer-Encoding: chunked\r\n", 400},
	    {"Transfer-Encoding: xchunked\r\n", 400},
	    {"Transfer-Encoding: chunkedx\r\n", 400},
	    {"Transfer-Encoding: \"chunked\"\r\n", 400},
	    {"Transfer-Encoding: chunked, identity\r\n", 400},
	    {"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400},
	    {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400},
	    {"Transfer-Encoding: chunked, chunked\r\n", 400},
	    {"Transfer-Encoding: identity, chunked\r\n", 501},
	    {"Transfer-Encoding: chunked\x0b\r\n", 400},
	    {"Transfer-Encoding: chunked\rX: y\r\n", 400},
	    /* Content-Length */
	    {"Content-Length: 5\r\nContent-Length: 6\r\n", 400},
	    {"Content-Length: 5, 6\r\n", 400},
	    {"Content-Length: +5\r\n", 400},
	    {"Content-Length: -5\r\n", 400},
	    {"Content-Length: 5 0\r\n", 400},
	    {"Content-Length : 5\r\n", 400},
	    {"Content-Length:\r\n 5\r\n", 400},
	    {"Content-Length: 0x5\r\n", 400},
	    {"Content-Length: 1e3\r\n", 400},
	    /* a second Host */
	    {"Host: other\r\n", 400},
	    {"Host: a b\r\n", 400},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct buf b = {0};
		buf_puts(&b, "POST /x HTTP/1.1\r\nHost: h\r\n");
		buf_puts(&b, cases[i].fields);
		buf_puts(&b, "\r\n0\r\n\r\n");
		req_fails_len(b.data, b.len, cases[i].status);
		buf_free(&b);
	}
	/* a NUL in a field name */
	static const char nul[] =
	    "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\0: chunked\r\n\r\n";
	req_fails_len(nul, sizeof(nul) - 1, 400);
	/* an underscore variant is another field: no body here, and it is not
	 * passed on (a CGI-style server would read it as Transfer-Encoding) */
	struct http_message *m =
	    req_ok("POST /x HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n");
	assert_int_equal(m->body, HTTP_BODY_NONE);
	char *out = forward_request(m, NULL, NULL, false);
	assert_null(strstr(out, "ransfer"));
	free(out);
	free(m);
}

static void test_host_rules(void **state)
{
	req_fails("GET / HTTP/1.1\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
	req_fails("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	const char *bad[] = {"a/b",  "u@h",  "h:99999", "h:",	":80", "[::1",
			     "[zz]", "h:8a", "a%2",	"a%zz", "h h", "h\t:80"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		char *t = xasprintf("GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		req_fails(t, 400);
		free(t);
	}
	const char *good[] = {"example.com",	   "EXAMPLE.com:8080", "[::1]:80",
			      "[2001:db8::1]",	   "192.0.2.1:65535",  "a%41b",
			      "a-b_c~d!$&'()*+,;="};
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		char *t = xasprintf("GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
		struct http_message *m = req_ok(t);
		assert_str(m->host, good[i]);
		free(m);
		free(t);
	}
	/* empty Host: valid (RFC 9112 §3.2) */
	struct http_message *m = req_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n");
	assert_true(m->has_host);
	assert_non_null(m->host.p);
	assert_int_equal(m->host.len, 0);
	free(m);
}

/* --- connection ------------------------------------------------------------ */

static void test_connection(void **state)
{
	static const struct {
		const char *text;
		bool keep_alive;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a, Close\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n"
	     "Connection: close\r\n\r\n",
	     false},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true},
	    {"GET / HTTP/1.0\r\n\r\n", false},
	    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
	    {"GET / HTTP/1.0\r\nConnection: , ,keep-alive,\r\n\r\n", true},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct http_message *m = req_ok(cases[i].text);
		if (m->keep_alive != cases[i].keep_alive)
			fail_msg("keep_alive %d: %s", m->keep_alive, cases[i].text);
		free(m);
	}
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nConnection: clo se\r\n\r\n", 400);
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nConnection: \"close\"\r\n\r\n", 400);
}

static void test_upgrade_expect(void **state)
{
	struct http_message *m = req_ok("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
					"Upgrade: websocket\r\n\r\n");
	assert_true(m->upgrade);
	free(m);
	m = req_ok("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
	assert_false(m->upgrade);
	free(m);
	m = req_ok("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
	assert_false(m->upgrade);
	free(m);
	m = req_ok("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
	assert_false(m->upgrade);
	free(m);

	m = req_ok("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
		   "Content-Length: 3\r\n\r\n");
	assert_true(m->expect_continue);
	free(m);
	m = req_ok("PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
	assert_false(m->expect_continue);
	free(m);
	m = req_ok("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n");
	assert_false(m->expect_continue);
	free(m);
}

/* --- responses ------------------------------------------------------------- */

static void test_response(void **state)
{
	struct http_message *m =
	    resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\n", 0);
	assert_int_equal(m->status, 200);
	assert_str(m->reason, "OK");
	assert_int_equal(m->body, HTTP_BODY_LENGTH);
	assert_int_equal(m->content_length, 12);
	assert_true(m->keep_alive);
	free(m);

	m = resp_ok("HTTP/1.1 404 Not  Found\t!\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
	assert_str(m->reason, "Not  Found\t!");
	assert_int_equal(m->body, HTTP_BODY_CHUNKED);
	free(m);

	m = resp_ok("HTTP/1.1 200 OK\r\n\r\n", 0);
	assert_int_equal(m->body, HTTP_BODY_UNTIL_CLOSE);
	assert_false(m->keep_alive);
	free(m);

	m = resp_ok("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 0);
	assert_false(m->keep_alive);
	free(m);
	m = resp_ok("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", 0);
	assert_true(m->keep_alive);
	free(m);
	m = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", 0);
	assert_false(m->keep_alive);
	free(m);

	/* no body: HEAD, 1xx, 204, 304, 2xx to CONNECT */
	m = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HTTP_RESPONSE_TO_HEAD);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_true(m->has_content_length);
	assert_int_equal(m->content_length, 100);
	assert_true(m->keep_alive);
	free(m);
	m = resp_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_RESPONSE_TO_HEAD);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	free(m);
	m = resp_ok("HTTP/1.1 204 No Content\r\n\r\n", 0);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_true(m->keep_alive);
	free(m);
	m = resp_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 0);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	free(m);
	m = resp_ok("HTTP/1.1 100 Continue\r\n\r\n", 0);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_false(m->upgrade);
	free(m);
	m = resp_ok("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
		    "Upgrade: websocket\r\n\r\n",
		    0);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_true(m->upgrade);
	assert_false(m->keep_alive);
	free(m);
	m = resp_ok("HTTP/1.1 200 Connection established\r\n\r\n", HTTP_RESPONSE_TO_CONNECT);
	assert_int_equal(m->body, HTTP_BODY_NONE);
	assert_true(m->upgrade);
	free(m);
	m = resp_ok("HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", HTTP_RESPONSE_TO_CONNECT);
	assert_int_equal(m->body, HTTP_BODY_LENGTH);
	assert_false(m->upgrade);
	free(m);

	/* status line */
	m = resp_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(m->reason.len, 0);
	free(m);
	m = resp_ok("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(m->reason.len, 0);
	free(m);
	resp_fails("HTTP/1.1 20 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 2000 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 099 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 600 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1  200 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 2x0 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/2 200 OK\r\n\r\n", 0, 400);
	resp_fails("http/1.1 200 OK\r\n\r\n", 0, 400);
	resp_fails("HTTP/2.0 200 OK\r\n\r\n", 0, 505);
	resp_fails("HTTP/1.1 200 O\x01K\r\n\r\n", 0, 400);
	/* same strictness on fields */
	resp_fails("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
		   400);
	resp_fails("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 501);
	resp_fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 501);
	resp_fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\rX: a\r\n\r\n", 0, 400); /* bare LF: test_response_bare_lf */
	/* validated even where ignored */
	resp_fails("HTTP/1.1 204 OK\r\nContent-Length: -1\r\n\r\n", 0, 400);
}

/* --- bare LF: accepted in responses, refused in requests -------------------- */

static size_t count_crlf(const char *text)
{
	size_t n = 0;
	for (const char *p = strstr(text, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		n++;
	return n;
}

/* text with the CRLFs picked by mask (bit k: the k-th one) written as bare LFs. */
static char *with_bare_lf(const char *text, unsigned mask)
{
	struct buf b = {0};
	unsigned k = 0;
	for (const char *p = text; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (mask & (1u << k++)))
			continue;
		buf_putc(&b, *p);
	}
	return buf_steal(&b);
}

static void assert_same_bytes(struct http_str a, struct http_str b)
{
	assert_int_equal(a.p == NULL, b.p == NULL);
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.p, b.p, a.len);
}

/* Two heads say the same thing (their bytes may differ in line ends). */
static void assert_equivalent(const struct http_message *a, const struct http_message *b)
{
	assert_int_equal(a->response, b->response);
	assert_same_bytes(a->method, b->method);
	assert_same_bytes(a->target, b->target);
	assert_same_bytes(a->reason, b->reason);
	assert_same_bytes(a->host, b->host);
	assert_int_equal(a->target_form, b->target_form);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->n_headers, b->n_headers);
	for (size_t i = 0; i < a->n_headers; i++) {
		assert_same_bytes(a->headers[i].name, b->headers[i].name);
		assert_same_bytes(a->headers[i].value, b->headers[i].value);
	}
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->has_content_length, b->has_content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->upgrade, b->upgrade);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->has_host, b->has_host);
}

/* No LF in s[0..len) without a CR before it. */
static void assert_crlf_only(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			fail_msg("bare LF at %zu: %.*s", i, (int)len, s);
}

static void test_response_bare_lf(void **state)
{
	/* each place a line ends (status line, field lines, the empty line),
	 * alone and in every mix with CRLF: the same message, one-shot and a
	 * byte at a time (resp_ok), and the same head forwarded, in CRLF */
	static const struct {
		const char *text;
		unsigned flags;
	} heads[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
	     "Server: busybox\r\n\r\n",
	     0},
	    {"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n"
	     "X-Tab:\t a \t\r\n\r\n",
	     0},
	    {"HTTP/1.0 200\r\nContent-Type: text/plain\r\n\r\n", 0},
	    {"HTTP/1.1 200 \r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nContent-Length: 1\r\n\r\n",
	     0},
	    {"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
	     "Upgrade: websocket\r\n\r\n",
	     0},
	    {"HTTP/1.1 100 Continue\r\n\r\n", 0},
	    {"HTTP/1.1 204 No Content\r\n\r\n", 0},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HTTP_RESPONSE_TO_HEAD},
	    {"HTTP/1.1 200 Connection established\r\n\r\n", HTTP_RESPONSE_TO_CONNECT},
	};
	for (size_t i = 0; i < ELEMENTSOF(heads); i++) {
		struct http_message *crlf = resp_ok(heads[i].text, heads[i].flags);
		assert_int_equal(crlf->head_len, strlen(heads[i].text));
		struct buf want = {0}, got = {0};
		bool keep = http_forward_response_head(&want, crlf, true);
		size_t n = count_crlf(heads[i].text);
		for (unsigned mask = 1; mask < 1u << n; mask++) {
			char *text = with_bare_lf(heads[i].text, mask);
			struct http_message *m = resp_ok(text, heads[i].flags);
			assert_int_equal(m->head_len, strlen(text));
			assert_equivalent(crlf, m);
			got.len = 0;
			assert_int_equal(http_forward_response_head(&got, m, true), keep);
			assert_string_equal(got.data, want.data);
			free(m);
			free(text);
		}
		assert_crlf_only(want.data, want.len);
		buf_free(&want);
		buf_free(&got);
		free(crlf);
	}

	/* all LF: the fields and where the body starts */
	const char *text = "HTTP/1.1 200 OK\nContent-Length: 2\nServer: busybox\n\nhi";
	struct http_message *m = resp_ok(text, 0);
	assert_int_equal(m->status, 200);
	assert_str(m->reason, "OK");
	assert_int_equal(m->n_headers, 2);
	assert_str(m->headers[1].name, "Server");
	assert_str(m->headers[1].value, "busybox");
	assert_int_equal(m->body, HTTP_BODY_LENGTH);
	assert_int_equal(m->content_length, 2);
	assert_int_equal(m->head_len, strlen(text) - 2);
	free(m);
	/* the head ends at the first empty line; the next LF is the body's */
	m = resp_ok("HTTP/1.1 200 OK\n\n\n", 0);
	assert_int_equal(m->head_len, 17);
	assert_int_equal(m->body, HTTP_BODY_UNTIL_CLOSE);
	free(m);
	/* a CR at the end of the prefix: more bytes needed */
	struct http_message mm;
	struct http_error e;
	assert_int_equal(http_parse_response(NULL, "HTTP/1.1 200 OK\n\r", 17, 0, &mm, &e), 0);

	/* the rest stays as strict as with CRLF */
	resp_fails("\nHTTP/1.1 200 OK\n\n", 0, 400);
	resp_fails("\r\nHTTP/1.1 200 OK\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\rX: a\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nX: a\r\r\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\n\r\r\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nX: a\n b\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nX: a\n\tb\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\n X: a\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nX : a\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nNoColon\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nX: a\x0b\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 O\x01K\n\n", 0, 400);
	resp_fails("HTTP/1.1 20 OK\n\n", 0, 400);
	resp_fails("HTTP/2.0 200 OK\n\n", 0, 505);
	resp_fails("HTTP/1.1 200 OK\nContent-Length: 1\nTransfer-Encoding: chunked\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\r\nContent-Length: 1\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nContent-Length: 1\nContent-Length: 2\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nContent-Length: -1\n\n", 0, 400);
	resp_fails("HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n", 0, 501);
	resp_fails("HTTP/1.1 200 OK\nTransfer-Encoding: chunked, chunked\n\n", 0, 400);
	resp_fails("HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n", 0, 400);
	/* refused as soon as seen */
	const char *early = "HTTP/1.1 200 OK\nX: \x01";
	assert_int_equal(http_parse_response(NULL, early, strlen(early), 0, &mm, &e), -EBADMSG);

	/* the same limits: 100 fields, then 101; the head size */
	struct buf b = {0};
	buf_puts(&b, "HTTP/1.1 200 OK\n");
	for (int i = 0; i < HTTP_HEADERS_MAX; i++)
		buf_printf(&b, "X-%d: %d\n", i, i);
	size_t before_end = b.len;
	buf_puts(&b, "\n");
	m = resp_ok(b.data, 0);
	assert_int_equal(m->n_headers, HTTP_HEADERS_MAX);
	free(m);
	b.len = before_end;
	buf_puts(&b, "X-One-Too-Many: 1\n");
	assert_int_equal(http_parse_response(NULL, b.data, b.len, 0, &mm, &e), -EMSGSIZE);
	b.len = 0;
	buf_puts(&b, "HTTP/1.1 200 OK\nX-Pad: ");
	while (b.len < HTTP_HEAD_MAX - 2)
		buf_putc(&b, 'a');
	buf_puts(&b, "\n\n");
	assert_int_equal(b.len, HTTP_HEAD_MAX);
	free(resp_ok(b.data, 0));
	b.len -= 2;
	buf_puts(&b, "a\n\n");
	resp_fails(b.data, 0, 431);
	buf_free(&b);
}

static void test_request_bare_lf(void **state)
{
	/* a request's lines end in CRLF, each one: a bare LF anywhere is a 400 */
	static const char *const reqs[] = {
	    "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n",
	    "\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
	    "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
		free(req_ok(reqs[i]));
		size_t n = count_crlf(reqs[i]);
		for (unsigned mask = 1; mask < 1u << n; mask++) {
			char *text = with_bare_lf(reqs[i], mask);
			req_fails(text, 400);
			free(text);
		}
	}
	struct http_message m;
	struct http_error e;
	const char *text = "GET / HTTP/1.1\nHost: h\r\n\r\n";
	assert_int_equal(http_parse_request(NULL, text, strlen(text), &m, &e), -EBADMSG);
	assert_string_equal(e.reason, "LF without CR in the head");
	/* the classic: a field hidden behind a bare LF */
	req_fails("POST / HTTP/1.1\r\nHost: h\r\nX: y\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 3\r\n\r\n",
		  400);

	/* and a request's chunked body: its lines too */
	struct http_message *req =
	    req_ok("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
	const char *body = "5;a=b\r\nhello\r\n0\r\nX-T: v\r\n\r\n";
	size_t n = count_crlf(body);
	for (unsigned mask = 0; mask < 1u << n; mask++) {
		char *t = with_bare_lf(body, mask);
		struct http_body b;
		size_t used = 0;
		http_body_init(&b, req);
		int r = http_body_feed(&b, t, strlen(t), &used, &e);
		assert_int_equal(r, mask ? -EBADMSG : 1);
		free(t);
	}
	free(req);
}

/* --- incremental parsing, pipelining ------------------------------------------- */

static void test_incremental(void **state)
{
	/* every proper prefix of a valid head needs more bytes */
	const char *text = "\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
			   "X-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\nabc";
	size_t head = strlen(text) - 3;
	struct http_parser p;
	struct http_message m;
	struct http_error e;
	http_parser_init(&p, 0);
	for (size_t n = 0; n < head; n++)
		assert_int_equal(http_parse_request(&p, text, n, &m, &e), 0);
	assert_int_equal(http_parse_request(&p, text, head, &m, &e), 1);
	assert_int_equal(m.head_len, head);
	/* the parser starts over by itself: the same bytes again, in 3 pieces */
	assert_int_equal(http_parse_request(&p, text, 5, &m, &e), 0);
	assert_int_equal(http_parse_request(&p, text, 40, &m, &e), 0);
	assert_int_equal(http_parse_request(&p, text, strlen(text), &m, &e), 1);
	assert_int_equal(m.head_len, head);
	/* and after an error too */
	assert_int_equal(http_parse_request(&p, "GET /\n", 6, &m, &e), -EBADMSG);
	assert_int_equal(http_parse_request(&p, text, strlen(text), &m, &e), 1);

	/* byte-by-byte equals one-shot (parse_both) for a mix of heads */
	free(req_ok("GET http://h/x HTTP/1.1\r\nHost: h\r\nConnection: close, upgrade\r\n"
		    "Upgrade: h2c\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"));
	free(resp_ok("HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n", 0));
	req_fails("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\nX: \x02\r\n\r\n", 400);
}

static void test_pipelined(void **state)
{
	const char *text = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
			   "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "3\r\nabc\r\n0\r\n\r\n"
			   "\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n"
			   "GET /d HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t len = strlen(text), pos = 0;
	const char *targets[] = {"/a", "/b", "/c", "/d"};
	const size_t bodies[] = {5, 13, 0, 0};
	struct http_parser p;
	http_parser_init(&p, 0);
	for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
		struct http_message m;
		struct http_error e;
		assert_int_equal(http_parse_request(&p, text + pos, len - pos, &m, &e), 1);
		assert_str(m.target, targets[i]);
		pos += m.head_len;
		struct http_body b;
		http_body_init(&b, &m);
		size_t n = 99;
		assert_int_equal(http_body_feed(&b, text + pos, len - pos, &n, &e), 1);
		assert_int_equal(n, bodies[i]);
		assert_true(b.done);
		pos += n;
	}
	assert_int_equal(pos, len);
}

/* --- body trackers ------------------------------------------------------------ */

static void test_chunked(void **state)
{
	chunked_ok("5\r\nhello\r\n0\r\n\r\n", 0);
	chunked_ok("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 15);
	chunked_ok("0\r\n\r\n", 0);
	chunked_ok("000\r\n\r\n", 0);
	chunked_ok("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", 0);
	chunked_ok("0000000000000005\r\nhello\r\n0\r\n\r\n", 0);
	chunked_ok("5;ext\r\nhello\r\n0;a=b;c=\"d \\\" e\"\r\n\r\n", 0);
	chunked_ok("5 ;a = b ; c\t=\t\"x\" ;d\r\nhello\r\n0\r\n\r\n", 0);
	chunked_ok("0\r\nX-Sum: abc\r\nY:\r\n\r\n", 0);
	chunked_ok("1\r\n\r\r\n0\r\n\r\n", 0); /* CR as data */

	chunked_incomplete("");
	chunked_incomplete("5\r\nhel");
	chunked_incomplete("5\r\nhello\r\n0\r\n");
	chunked_incomplete("0\r\nX: y\r\n");
	chunked_incomplete("FFFFFFFFFFFFFFFF\r\nabc"); /* 16 digits: the most */

	const char *bad[] = {
	    "0x10\r\n",
	    "-1\r\n",
	    " 5\r\nhello\r\n0\r\n\r\n",
	    "+5\r\n",
	    "\r\n",
	    "g\r\n",
	    "5 \r\nhello\r\n",
	    "5\t\r\nhello\r\n",
	    "5\nhello\r\n0\r\n\r\n",
	    "5\rhello",
	    "5\r\nhelloX\r\n",
	    "5\r\nhello\n0\r\n\r\n",
	    "5\r\nhello\r\r\n",
	    ";a\r\n",
	    "5;\r\nhello\r\n",
	    "5;a=\r\n",
	    "5;a b\r\n",
	    "5;=b\r\n",
	    "5;a=b c\r\n",
	    "5;a=\"b\r\n",
	    "5;a=\"b\"c\r\n",
	    "5;a=\"\x01\"\r\n",
	    "5;a=@\r\n",
	    "10000000000000000\r\n",
	    "00000000000000000\r\n",
	    "0\r\n X: y\r\n\r\n",
	    "0\r\nX y\r\n\r\n",
	    "0\r\nX\r\n\r\n",
	    "0\r\nX: y\n\r\n",
	    "0\r\nX: \x7f\r\n\r\n",
	    "0\r\n: y\r\n\r\n",
	    "0\r\n\rx",
	    "0\r\n\n",
	    "0\r\r\n\r\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		chunked_fails(bad[i]);

	/* bounded extensions and trailers */
	struct buf b = {0};
	buf_puts(&b, "1;x=");
	for (size_t i = 0; i < HTTP_CHUNK_EXT_MAX; i++)
		buf_putc(&b, 'a');
	buf_puts(&b, "\r\nz\r\n0\r\n\r\n");
	chunked_fails(b.data);
	b.len = 0;
	buf_puts(&b, "1;x=");
	for (size_t i = 0; i < HTTP_CHUNK_EXT_MAX - 4; i++)
		buf_putc(&b, 'a');
	buf_puts(&b, "\r\nz\r\n0\r\n\r\n");
	chunked_ok(b.data, b.len);
	b.len = 0;
	buf_puts(&b, "0\r\n");
	while (b.len < HTTP_TRAILERS_MAX + 100)
		buf_puts(&b, "X-Trailer: abcdefghijklmnopqrstuvwxyz\r\n");
	buf_puts(&b, "\r\n");
	chunked_fails(b.data);
	buf_free(&b);

	/* a failure leaves the tracker as it was, and done means done */
	struct http_body t;
	struct http_error e;
	size_t n = 7;
	http_body_init_kind(&t, HTTP_BODY_CHUNKED, 0);
	assert_int_equal(http_body_feed(&t, "5\r\nhel", 6, &n, &e), 0);
	assert_int_equal(n, 6);
	assert_int_equal(t.remaining, 2);
	assert_int_equal(http_body_feed(&t, "lo!", 3, &n, &e), -EBADMSG);
	assert_int_equal(e.status, 400);
	assert_int_equal(n, 6);
	assert_int_equal(t.consumed, 6);
	assert_int_equal(http_body_feed(&t, "lo\r\n0\r\n\r\nrest", 13, &n, &e), 1);
	assert_int_equal(n, 9);
	assert_int_equal(t.consumed, 15);
	assert_int_equal(http_body_feed(&t, "more", 4, &n, &e), 1);
	assert_int_equal(n, 0);
	assert_int_equal(http_body_eof(&t, &e), 0);
}

static void chunked_resp_ok(const char *body, size_t expect_len, const char *forwarded)
{
	if (expect_len == 0)
		expect_len = strlen(body);
	size_t n = 0;
	struct buf out = {0};
	int r = body_both_out(HTTP_BODY_CHUNKED, 0, true, body, strlen(body), &n, &out);
	if (r != 1)
		fail_msg("chunked response body not complete (%d): %s", r, body);
	assert_int_equal(n, expect_len);
	assert_int_equal(out.len, strlen(forwarded));
	assert_memory_equal(out.data, forwarded, out.len);
	buf_free(&out);
}

static void chunked_resp_fails(const char *body)
{
	size_t n = 0;
	if (body_both_out(HTTP_BODY_CHUNKED, 0, true, body, strlen(body), &n, NULL) != -EBADMSG)
		fail_msg("chunked response body accepted: %s", body);
}

static void chunked_resp_incomplete(const char *body)
{
	size_t n = 0;
	assert_int_equal(body_both_out(HTTP_BODY_CHUNKED, 0, true, body, strlen(body), &n, NULL),
			 0);
	assert_int_equal(n, strlen(body));
}

static void test_chunked_bare_lf(void **state)
{
	/* a bare LF ends each line of a response's chunked framing (size line,
	 * after the data, trailer lines, the last empty line), alone and in
	 * every mix with CRLF, whole and a byte at a time (body_both_out): the
	 * same end, and forwarded as the CRLF body exactly */
	static const char *const bodies[] = {
	    "5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: v\r\nY:\r\n\r\n",
	    "5;q=\"x y\"\r\nhello\r\n0;z\r\n\r\n",
	    "0\r\n\r\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
		size_t n = count_crlf(bodies[i]);
		for (unsigned mask = 0; mask < 1u << n; mask++) {
			char *t = with_bare_lf(bodies[i], mask);
			chunked_resp_ok(t, 0, bodies[i]);
			/* followed by the next response */
			char *next = xasprintf("%sHTTP/1.1 200 OK\n\n", t);
			chunked_resp_ok(next, strlen(t), bodies[i]);
			free(next);
			/* and a request's body takes CRLF only */
			if (mask)
				chunked_fails(t);
			free(t);
		}
	}
	chunked_resp_ok("5\nhello\n0\n\n", 0, "5\r\nhello\r\n0\r\n\r\n");
	/* CR and LF in the data are data */
	chunked_resp_ok("3\na\nb\n0\n\n", 0, "3\r\na\nb\r\n0\r\n\r\n");
	chunked_resp_ok("1\n\r\n0\n\n", 0, "1\r\n\r\r\n0\r\n\r\n");
	chunked_resp_ok("2\r\n\n\n\n0\n\n", 0, "2\r\n\n\n\r\n0\r\n\r\n");

	chunked_resp_incomplete("5\nhel");
	chunked_resp_incomplete("5\nhello");
	chunked_resp_incomplete("5\nhello\n0\n");
	chunked_resp_incomplete("5\nhello\n0\nX: y\n");
	chunked_resp_incomplete("5\nhello\n0\n\r");

	/* nothing else loosened */
	const char *bad[] = {
	    "\n",
	    "\n5\nhello\n0\n\n",
	    "x\n",
	    " 5\nhello\n0\n\n",
	    "5 \nhello\n0\n\n",
	    "5\t\nhello\n0\n\n",
	    "5\rhello",
	    "5\r\r\nhello",
	    "5\nhelloX\n",
	    "5\nhello\r\r\n",
	    "5\nhello\rX",
	    "5;\nhello\n",
	    "5;a \nhello\n",
	    "5;a=\nhello\n",
	    "5;a=\"b\nhello\n",
	    "5;a=\"b\\\n\"\nhello\n",
	    "10000000000000000\n",
	    "0\n X: y\n\n",
	    "0\n\tX: y\n\n",
	    "0\nX y\n\n",
	    "0\nX\n\n",
	    "0\n: y\n\n",
	    "0\nX: \x7f\n\n",
	    "0\nX: y\r\r\n\n",
	    "0\n\rx",
	    "0\n\r\r",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		chunked_resp_fails(bad[i]);
}

static void test_length_and_close(void **state)
{
	struct http_body b;
	struct http_error e;
	size_t n;
	http_body_init_kind(&b, HTTP_BODY_LENGTH, 10);
	assert_false(b.done);
	assert_int_equal(http_body_feed(&b, "0123", 4, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_int_equal(b.remaining, 6);
	assert_int_equal(http_body_eof(&b, &e), -EPIPE);
	assert_int_equal(e.status, 400);
	assert_int_equal(http_body_feed(&b, "456789NEXT", 10, &n, &e), 1);
	assert_int_equal(n, 6);
	assert_true(b.done);
	assert_int_equal(http_body_eof(&b, &e), 0);

	http_body_init_kind(&b, HTTP_BODY_LENGTH, 0);
	assert_true(b.done);
	http_body_init_kind(&b, HTTP_BODY_NONE, 0);
	assert_true(b.done);
	assert_int_equal(http_body_feed(&b, "x", 1, &n, &e), 1);
	assert_int_equal(n, 0);

	http_body_init_kind(&b, HTTP_BODY_UNTIL_CLOSE, 0);
	assert_int_equal(http_body_feed(&b, "abc", 3, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_false(b.done);
	assert_int_equal(http_body_eof(&b, &e), 0);

	http_body_init_kind(&b, HTTP_BODY_CHUNKED, 0);
	assert_int_equal(http_body_eof(&b, &e), -EPIPE);

	/* from a parsed head */
	struct http_message *m = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 0);
	http_body_init(&b, m);
	assert_int_equal(b.kind, HTTP_BODY_LENGTH);
	assert_int_equal(b.remaining, 3);
	free(m);
	m = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", HTTP_RESPONSE_TO_HEAD);
	http_body_init(&b, m);
	assert_true(b.done);
	free(m);
}

/* --- forwarding ------------------------------------------------------------------ */

static void test_forward_request(void **state)
{
	struct http_message *m = req_ok("POST /api?x=1 HTTP/1.1\r\n"
					"User-Agent: t\r\n"
					"Host: app.example\r\n"
					"Connection: keep-alive, X-Secret, TE\r\n"
					"Keep-Alive: timeout=5\r\n"
					"X-Secret: s\r\n"
					"TE: trailers\r\n"
					"Trailer: X-Sum\r\n"
					"Proxy-Connection: keep-alive\r\n"
					"Upgrade: h2c\r\n"
					"X-Forwarded-For: 10.0.0.1\r\n"
					"X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
					"X-Forwarded-Proto: ftp\r\n"
					"Content-Length: 4, 4\r\n"
					"Accept: */*\r\n"
					"X_Forwarded_For: 6.6.6.6\r\n"
					"\r\n");
	char *out = forward_request(m, "192.0.2.7", "https", true);
	assert_string_equal(out, "POST /api?x=1 HTTP/1.1\r\n"
				 "Host: app.example\r\n"
				 "User-Agent: t\r\n"
				 "Accept: */*\r\n"
				 "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n"
				 "X-Forwarded-Proto: https\r\n"
				 "Content-Length: 4\r\n"
				 "Connection: keep-alive\r\n"
				 "\r\n");
	/* it parses again, with the same framing */
	struct http_message *again = req_ok(out);
	assert_int_equal(again->body, HTTP_BODY_LENGTH);
	assert_int_equal(again->content_length, 4);
	assert_true(again->keep_alive);
	free(again);
	free(out);
	free(m);

	/* an upgrade passed on, or not */
	m = req_ok("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
		   "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n");
	out = forward_request(m, "::1", "http", true);
	assert_string_equal(out, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
				 "Sec-WebSocket-Key: k\r\nX-Forwarded-For: ::1\r\n"
				 "X-Forwarded-Proto: http\r\nConnection: upgrade\r\n\r\n");
	again = req_ok(out);
	assert_true(again->upgrade);
	free(again);
	free(out);
	out = forward_request(m, NULL, NULL, false);
	assert_string_equal(out, "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n"
				 "Connection: keep-alive\r\n\r\n");
	free(out);
	free(m);

	/* absolute-form: Host from the target; chunked stays chunked */
	m = req_ok("PUT http://real.example/x HTTP/1.1\r\nHost: fake.example\r\n"
		   "Transfer-Encoding: chunked\r\n\r\n");
	out = forward_request(m, "192.0.2.1", "http", false);
	assert_string_equal(out, "PUT http://real.example/x HTTP/1.1\r\nHost: real.example\r\n"
				 "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
				 "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
	free(out);
	free(m);

	/* HTTP/1.0 without Host: an empty Host, version 1.1; framing fields
	 * and Host can't be removed by naming them in Connection */
	m = req_ok("POST / HTTP/1.0\r\nConnection: Content-Length, Host, X-Forwarded-For\r\n"
		   "X-Forwarded-For: 1.1.1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
	out = forward_request(m, "192.0.2.1", "http", false);
	assert_string_equal(out, "POST / HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 192.0.2.1\r\n"
				 "X-Forwarded-Proto: http\r\nContent-Length: 2\r\n"
				 "Connection: keep-alive\r\n\r\n");
	free(req_ok(out));
	free(out);
	free(m);
}

static void test_forward_response(void **state)
{
	struct buf b = {0};
	struct http_message *m =
	    resp_ok("HTTP/1.1 200 OK\r\nServer: s\r\nConnection: close, X-Hop\r\n"
		    "X-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
		    "Content-Length: 2\r\nX-Forwarded-For: kept\r\n\r\n",
		    0);
	assert_true(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nServer: s\r\nX-Forwarded-For: kept\r\n"
				    "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n");
	b.len = 0;
	assert_false(http_forward_response_head(&b, m, false));
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nServer: s\r\nX-Forwarded-For: kept\r\n"
				    "Content-Length: 2\r\nConnection: close\r\n\r\n");
	free(m);

	/* a field named Close (reserved) is not passed on: the proxy's own
	 * Connection: close would name it */
	b.len = 0;
	m = resp_ok("HTTP/1.1 200 OK\r\nClose: 1\r\nContent-Length: 0\r\n\r\n", 0);
	assert_false(http_forward_response_head(&b, m, false));
	assert_string_equal(b.data,
			    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	free(m);

	/* read until close: can't be kept */
	b.len = 0;
	m = resp_ok("HTTP/1.0 200 OK\r\nServer: s\r\n\r\n", 0);
	assert_false(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nServer: s\r\nConnection: close\r\n\r\n");
	free(m);

	/* chunked stays chunked */
	b.len = 0;
	m = resp_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nTrailer: X\r\n\r\n", 0);
	assert_true(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
				    "Connection: keep-alive\r\n\r\n");
	free(m);

	/* HEAD and 304 keep their Content-Length; 204 and 1xx have none */
	b.len = 0;
	m = resp_ok("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", HTTP_RESPONSE_TO_HEAD);
	assert_true(http_forward_response_head(&b, m, true));
	assert_string_equal(
	    b.data, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: keep-alive\r\n\r\n");
	free(m);
	b.len = 0;
	m = resp_ok("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0);
	assert_true(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
	free(m);
	b.len = 0;
	m = resp_ok("HTTP/1.1 100 Continue\r\n\r\n", 0);
	assert_true(http_forward_response_head(&b, m, false));
	assert_string_equal(b.data, "HTTP/1.1 100 Continue\r\n\r\n");
	free(m);

	/* 101: Upgrade kept, Connection: upgrade, the connection becomes a tunnel */
	b.len = 0;
	m = resp_ok("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
		    "Upgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n",
		    0);
	assert_false(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				    "Sec-WebSocket-Accept: a\r\nConnection: upgrade\r\n\r\n");
	free(m);

	/* an empty reason gets the standard one; an HTTP/1.0 server's
	 * keep-alive does not matter downstream */
	b.len = 0;
	m = resp_ok("HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n", 0);
	assert_true(http_forward_response_head(&b, m, true));
	assert_string_equal(b.data, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
				    "Connection: keep-alive\r\n\r\n");
	free(resp_ok(b.data, 0));
	free(m);
	buf_free(&b);
}

/* What the router writes for a response in bare LFs: all CRLF. The response
 * arrives a byte at a time; the head is parsed and forwarded, then the body
 * forwarded as it comes, as process_response() does. */
static void test_forward_bare_lf(void **state)
{
	const char *in = "HTTP/1.1 100 Continue\n\n"
			 "HTTP/1.1 200 OK\nServer: busybox\nTransfer-Encoding: chunked\n\n"
			 "5\nhello\n6;x\n\nworld\n0\nX-Sum: 1\n\n"
			 "HTTP/1.1 200 OK\n";
	const char *want = "HTTP/1.1 100 Continue\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nServer: busybox\r\nTransfer-Encoding: chunked\r\n"
			   "Connection: keep-alive\r\n\r\n"
			   "5\r\nhello\r\n6;x\r\n\nworld\r\n0\r\nX-Sum: 1\r\n\r\n";
	size_t len = strlen(in), pos = 0, k = 0;
	struct buf out = {0};
	struct http_parser p;
	struct http_message m;
	struct http_body b;
	struct http_error e;
	bool in_body = false;
	http_parser_init(&p, 0);
	for (k = 1; k <= len; k++) {
		char *copy = xmalloc(k); /* each prefix in a buffer of its own size */
		memcpy(copy, in, k);
		if (!in_body) {
			int r = http_parse_response(&p, copy + pos, k - pos, 0, &m, &e);
			assert_true(r >= 0);
			if (r == 1) {
				http_forward_response_head(&out, &m, true);
				pos += m.head_len;
				if (m.status >= 200) {
					http_body_init(&b, &m);
					in_body = true;
				}
			}
		} else {
			size_t used = 0;
			int r = http_body_forward(&b, copy + pos, k - pos, &used, &out, &e);
			assert_true(r >= 0);
			pos += used;
		}
		free(copy);
		if (in_body && b.done)
			break;
	}
	assert_true(in_body && b.done);
	assert_string_equal(in + pos, "HTTP/1.1 200 OK\n");
	assert_string_equal(out.data, want);
	buf_free(&out);
}

static void test_error_response(void **state)
{
	struct buf b = {0};
	http_write_error(&b, 400);
	assert_string_equal(b.data, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
				    "Content-Length: 16\r\nConnection: close\r\n\r\n"
				    "400 Bad Request\n");
	int statuses[] = {400, 408, 413, 431, 500, 501, 502, 503, 505, 599, 299, 204, 101, 0, 1000};
	for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
		b.len = 0;
		http_write_error(&b, statuses[i]);
		struct http_message *m = resp_ok(b.data, 0);
		int want = statuses[i] >= 400 && statuses[i] <= 599 ? statuses[i] : 500;
		assert_int_equal(m->status, want);
		assert_int_equal(m->body, HTTP_BODY_LENGTH);
		assert_int_equal(m->head_len + m->content_length, b.len);
		assert_false(m->keep_alive);
		free(m);
	}
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_reason(299), "Success");
	assert_string_equal(http_status_reason(599), "Server Error");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_basic),
	    cmocka_unit_test(test_request_line_errors),
	    cmocka_unit_test(test_request_target_forms),
	    cmocka_unit_test(test_leading_empty_lines),
	    cmocka_unit_test(test_field_syntax),
	    cmocka_unit_test(test_header_find),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_content_length),
	    cmocka_unit_test(test_transfer_encoding),
	    cmocka_unit_test(test_smuggling_classics),
	    cmocka_unit_test(test_host_rules),
	    cmocka_unit_test(test_connection),
	    cmocka_unit_test(test_upgrade_expect),
	    cmocka_unit_test(test_response),
	    cmocka_unit_test(test_response_bare_lf),
	    cmocka_unit_test(test_request_bare_lf),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_chunked),
	    cmocka_unit_test(test_chunked_bare_lf),
	    cmocka_unit_test(test_length_and_close),
	    cmocka_unit_test(test_forward_request),
	    cmocka_unit_test(test_forward_response),
	    cmocka_unit_test(test_forward_bare_lf),
	    cmocka_unit_test(test_error_response),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
