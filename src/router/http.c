/* HTTP/1.1 heads and body framing for the router and the API server (see
 * http.h). A head is read in two passes: a byte-at-a-time scan, resumable
 * across calls, that finds its end and refuses what may appear nowhere in a
 * head (control characters, a bare CR, a bare LF in a request, too many lines
 * or bytes); then, once the head is complete, a parse of its lines and of the
 * fields that decide framing. Both passes go strictly left to right and the
 * second only runs on a complete head, so the verdict is the same whether the
 * head came whole or a byte at a time. */
#include "http.h"

#include <assert.h>
#include <inttypes.h>

/* --- characters (RFC 9110 §5.6.2, RFC 3986) -------------------------------- */

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool is_tchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* Bytes of a field value, reason phrase or quoted-string escape: VCHAR,
 * obs-text, SP, HTAB. */
static bool is_field_char(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* unreserved / sub-delims: the bytes of a reg-name besides pct-encoded. */
static bool is_regname_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("-._~!$&'()*+,;=", c));
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

static bool mem_case_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

bool http_str_case_eq(struct http_str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && (n == 0 || mem_case_eq(s.p, lit, n));
}

static bool str_case_eq(struct http_str a, struct http_str b)
{
	return a.len == b.len && (a.len == 0 || mem_case_eq(a.p, b.p, a.len));
}

static bool str_eq(struct http_str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

static bool is_token(struct http_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_tchar((unsigned char)s.p[i]))
			return false;
	return true;
}

char *http_str_dup(struct http_str s)
{
	return s.p ? xstrndup(s.p, s.len) : xstrdup("");
}

/* The next element of a comma-separated list at *pos, OWS trimmed (it may be
 * empty: "a,,b" has three). Returns false once the list is exhausted. */
static bool list_next(struct http_str v, size_t *pos, struct http_str *ret)
{
	size_t i = *pos;
	if (i > v.len)
		return false;
	while (i < v.len && is_ows((unsigned char)v.p[i]))
		i++;
	size_t start = i;
	while (i < v.len && v.p[i] != ',')
		i++;
	size_t end = i;
	while (end > start && is_ows((unsigned char)v.p[end - 1]))
		end--;
	*ret = (struct http_str){v.p ? v.p + start : NULL, end - start};
	*pos = i + 1;
	return true;
}

static int fail(struct http_error *err, int status, const char *reason)
{
	if (err)
		*err = (struct http_error){status, reason};
	switch (status) {
	case 431:
		return -EMSGSIZE;
	case 501:
		return -EOPNOTSUPP;
	case 505:
		return -EPROTONOSUPPORT;
	default:
		return -EBADMSG;
	}
}

/* --- the scan ----------------------------------------------------------------- */

void http_parser_init(struct http_parser *p, size_t max_head)
{
	if (max_head == 0)
		max_head = HTTP_HEAD_MAX;
	if (max_head > HTTP_HEAD_MAX_LIMIT)
		max_head = HTTP_HEAD_MAX_LIMIT;
	*p = (struct http_parser){.max_head = max_head};
}

/* The line ending at data[i] (its LF) is complete; empty says it held nothing
 * but its terminator. Returns 1 with *ret_head_len when it was the empty line
 * that ends the head, 0 to go on, < 0 when the head is refused. */
static int end_line(struct http_parser *p, size_t i, bool empty, bool request, size_t *ret_head_len,
		    struct http_error *err)
{
	if (empty) {
		if (p->lines > 0) {
			*ret_head_len = i + 1;
			return 1;
		}
		if (!request)
			return fail(err, 400, "empty line before the status line");
		if (++p->empty_lines > HTTP_LEADING_EMPTY_LINES_MAX)
			return fail(err, 400, "too many empty lines before the request line");
	} else if (++p->lines > 1 + HTTP_HEADERS_MAX) {
		return fail(err, 431, "too many header fields");
	}
	p->line_start = i + 1;
	return 0;
}

/* Scan data[p->pos..len): returns 1 with *ret_head_len when the head ends
 * there, 0 when it does not yet, < 0 when the bytes can't be a head. A line
 * of a request ends in CRLF; a line of a response in CRLF or a bare LF (RFC
 * 9112 §2.2 lets a recipient take LF alone as the terminator: upstream
 * servers such as busybox httpd's CGI output send it, and nginx and curl
 * accept it), never a bare CR. Requests stay strict: there a bare LF is what
 * request smuggling feeds on. */
static int scan_head(struct http_parser *p, const char *data, size_t len, bool request,
		     size_t *ret_head_len, struct http_error *err)
{
	for (size_t i = p->pos; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		int r = 0;
		if (p->cr) {
			if (c != '\n')
				return fail(err, 400, "CR not followed by LF in the head");
			p->cr = false;
			r = end_line(p, i, i - 1 == p->line_start, request, ret_head_len, err);
		} else if (c == '\r') {
			p->cr = true;
		} else if (c == '\n') {
			if (request)
				return fail(err, 400, "LF without CR in the head");
			r = end_line(p, i, i == p->line_start, request, ret_head_len, err);
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return fail(err, 400, "control character in the head");
		}
		if (r != 0)
			return r;
		/* A head must end within max_head bytes: once that many are
		 * here without its end, no further byte can help. */
		if (i + 1 >= p->max_head)
			return fail(err, 431, "head larger than the limit");
	}
	p->pos = len;
	return 0;
}

/* --- the parse of a complete head --------------------------------------------- */

/* The line at *pos of a scanned head, without its terminator; *pos moves past
 * it. The scan let through no CR but one right before an LF, so a line ends
 * at the first LF, and a CR before it is the terminator's (every line of a
 * request ends in CRLF; one of a response may end in a bare LF). */
static struct http_str next_line(const char *data, size_t head_len, size_t *pos)
{
	const char *s = data + *pos;
	const char *lf = memchr(s, '\n', head_len - *pos);
	assert(lf && (size_t)(lf - data) < head_len);
	size_t n = (size_t)(lf - s);
	*pos += n + 1;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	return (struct http_str){s, n};
}

/* "HTTP/1.0" or "HTTP/1.1"; any other "HTTP/d.d" is a 505, the rest a 400. */
static int parse_version(const char *s, size_t n, int *ret_minor, struct http_error *err)
{
	if (n == 8 && memcmp(s, "HTTP/", 5) == 0 && is_digit((unsigned char)s[5]) && s[6] == '.' &&
	    is_digit((unsigned char)s[7])) {
		if (s[5] == '1' && (s[7] == '0' || s[7] == '1')) {
			*ret_minor = s[7] - '0';
			return 0;
		}
		return fail(err, 505, "HTTP version not supported");
	}
	return fail(err, 400, "malformed HTTP version");
}

/* host [":" port] (RFC 3986 §3.2.2-3): an IP-literal in brackets or a
 * reg-name (IPv4 included), then 1 to 5 digits of port up to 65535. No
 * userinfo. An empty s is valid only with allow_empty (a Host field may be
 * empty); a port is required with need_port. */
static bool valid_authority(struct http_str a, bool need_port, bool allow_empty)
{
	const char *s = a.p;
	size_t n = a.len, i = 0;
	if (n == 0)
		return allow_empty && !need_port;
	if (s[0] == '[') {
		i = 1;
		while (i < n && (hex_value((unsigned char)s[i]) >= 0 || s[i] == ':' || s[i] == '.'))
			i++;
		if (i == 1 || i >= n || s[i] != ']')
			return false;
		i++;
	} else {
		while (i < n && s[i] != ':') {
			if (s[i] == '%') {
				if (i + 2 >= n || hex_value((unsigned char)s[i + 1]) < 0 ||
				    hex_value((unsigned char)s[i + 2]) < 0)
					return false;
				i += 3;
			} else if (is_regname_char((unsigned char)s[i])) {
				i++;
			} else {
				return false;
			}
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':')
		return false;
	size_t digits = n - i - 1;
	if (digits == 0 || digits > 5)
		return false;
	unsigned port = 0;
	for (i++; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return false;
		port = port * 10 + (unsigned)(s[i] - '0');
	}
	return port <= 65535;
}

/* Which of the four forms the target is, given the method (RFC 9112 §3.2),
 * and the authority it names, if any. */
static int classify_target(struct http_message *m, struct http_error *err)
{
	struct http_str t = m->target;
	if (str_eq(m->method, "CONNECT")) {
		if (!valid_authority(t, true, false))
			return fail(err, 400, "CONNECT target is not host:port");
		m->target_form = HTTP_TARGET_AUTHORITY;
		m->host = t;
		return 0;
	}
	if (str_eq(t, "*")) {
		if (!str_eq(m->method, "OPTIONS"))
			return fail(err, 400,
				    "asterisk-form target on a method other than OPTIONS");
		m->target_form = HTTP_TARGET_ASTERISK;
		return 0;
	}
	if (t.p[0] == '/') {
		m->target_form = HTTP_TARGET_ORIGIN;
		return 0;
	}
	/* absolute-form: scheme "://" authority [path] ["?" query] */
	size_t i = 0;
	if (!is_alpha((unsigned char)t.p[0]))
		return fail(err, 400, "request-target is neither a path nor an absolute URI");
	while (i < t.len && (is_alpha((unsigned char)t.p[i]) || is_digit((unsigned char)t.p[i]) ||
			     t.p[i] == '+' || t.p[i] == '-' || t.p[i] == '.'))
		i++;
	if (t.len - i < 3 || memcmp(t.p + i, "://", 3) != 0)
		return fail(err, 400, "request-target is neither a path nor an absolute URI");
	size_t start = i + 3, end = start;
	while (end < t.len && t.p[end] != '/' && t.p[end] != '?')
		end++;
	struct http_str authority = {t.p + start, end - start};
	if (!valid_authority(authority, false, false))
		return fail(err, 400, "invalid authority in an absolute-form target");
	m->target_form = HTTP_TARGET_ABSOLUTE;
	m->host = authority;
	return 0;
}

static int parse_request_line(struct http_str line, struct http_message *m, struct http_error *err)
{
	const char *s = line.p;
	size_t n = line.len, i = 0;
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ' ')
		return fail(err, 400, "malformed method in the request line");
	m->method = (struct http_str){s, i};

	size_t start = ++i;
	for (; i < n && s[i] != ' '; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e)
			return fail(err, 400, "invalid character in the request-target");
		if (c == '#')
			return fail(err, 400, "fragment in the request-target");
	}
	if (i == start)
		return fail(err, 400, "empty request-target (or more than one space)");
	if (i == n)
		return fail(err, 400, "no HTTP version in the request line");
	m->target = (struct http_str){s + start, i - start};
	int r = classify_target(m, err);
	if (r < 0)
		return r;
	i++;
	return parse_version(s + i, n - i, &m->minor_version, err);
}

/* status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; "HTTP/1.1 200"
 * without the second space is accepted too (a common omission that changes
 * nothing). */
static int parse_status_line(struct http_str line, struct http_message *m, struct http_error *err)
{
	const char *s = line.p;
	size_t n = line.len;
	int r = parse_version(s, n < 8 ? n : 8, &m->minor_version, err);
	if (r < 0)
		return r;
	if (n < 12 || s[8] != ' ' || !is_digit((unsigned char)s[9]) ||
	    !is_digit((unsigned char)s[10]) || !is_digit((unsigned char)s[11]))
		return fail(err, 400, "malformed status code");
	m->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (m->status < 100 || m->status > 599)
		return fail(err, 400, "status code out of range");
	if (n == 12) {
		m->reason = (struct http_str){s + 12, 0};
		return 0;
	}
	if (s[12] != ' ')
		return fail(err, 400, "malformed status code");
	m->reason = (struct http_str){s + 13, n - 13};
	return 0;
}

static int parse_field_line(struct http_str line, struct http_header *ret, struct http_error *err)
{
	const char *s = line.p;
	size_t n = line.len, i = 0;
	if (is_ows((unsigned char)s[0]))
		return fail(err, 400, "line folding (obs-fold) or whitespace before a field name");
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == n)
		return fail(err, 400, "field line without a colon");
	if (s[i] != ':')
		return fail(err, 400,
			    is_ows((unsigned char)s[i]) ? "whitespace between field name and colon"
							: "invalid character in a field name");
	if (i == 0)
		return fail(err, 400, "empty field name");
	size_t v = i + 1, e = n;
	while (v < e && is_ows((unsigned char)s[v]))
		v++;
	while (e > v && is_ows((unsigned char)s[e - 1]))
		e--;
	/* The scan let through nothing but VCHAR, obs-text, SP and HTAB. */
	ret->name = (struct http_str){s, i};
	ret->value = (struct http_str){s + v, e - v};
	return 0;
}

/* What the fields that decide framing and the connection said. */
struct field_summary {
	bool have_cl;
	uint64_t cl;
	bool te;
	bool te_chunked;      /* chunked appears (once) */
	bool te_last_chunked; /* and is the final coding */
	bool te_other;	      /* a coding other than chunked */
	unsigned n_host;
	struct http_str host;
	bool conn_close, conn_keep_alive, conn_upgrade;
	bool upgrade_field;
	bool expect_continue;
};

/* Content-Length = 1*DIGIT; a list of identical values ("5, 5") or several
 * fields with identical values are taken as one (RFC 9110 §8.6). */
static int summarize_content_length(struct http_str v, struct field_summary *f,
				    struct http_error *err)
{
	struct http_str el;
	size_t pos = 0;
	while (list_next(v, &pos, &el)) {
		if (el.len == 0)
			return fail(err, 400, "Content-Length is not a number");
		uint64_t x = 0;
		for (size_t i = 0; i < el.len; i++) {
			unsigned char c = (unsigned char)el.p[i];
			if (!is_digit(c))
				return fail(err, 400, "Content-Length is not a number");
			unsigned d = c - '0';
			if (x > ((uint64_t)INT64_MAX - d) / 10)
				return fail(err, 400, "Content-Length too large");
			x = x * 10 + d;
		}
		if (f->have_cl && x != f->cl)
			return fail(err, 400, "Content-Length values differ");
		f->have_cl = true;
		f->cl = x;
	}
	return 0;
}

/* Transfer-Encoding = #transfer-coding, across all its fields in order. A
 * coding must be a bare token (parameters are refused), empty elements are
 * refused, chunked at most once. */
static int summarize_transfer_encoding(struct http_str v, struct field_summary *f,
				       struct http_error *err)
{
	struct http_str el;
	size_t pos = 0;
	f->te = true;
	while (list_next(v, &pos, &el)) {
		if (!is_token(el))
			return fail(err, 400, "malformed Transfer-Encoding");
		bool chunked = http_str_case_eq(el, "chunked");
		if (chunked && f->te_chunked)
			return fail(err, 400, "chunked applied more than once");
		f->te_chunked |= chunked;
		f->te_other |= !chunked;
		f->te_last_chunked = chunked;
	}
	return 0;
}

/* Connection = #connection-option; empty elements are ignored (RFC 9110
 * §5.6.1.2), anything but a token refused. */
static int summarize_connection(struct http_str v, struct field_summary *f, struct http_error *err)
{
	struct http_str el;
	size_t pos = 0;
	while (list_next(v, &pos, &el)) {
		if (el.len == 0)
			continue;
		if (!is_token(el))
			return fail(err, 400, "malformed Connection");
		if (http_str_case_eq(el, "close"))
			f->conn_close = true;
		else if (http_str_case_eq(el, "keep-alive"))
			f->conn_keep_alive = true;
		else if (http_str_case_eq(el, "upgrade"))
			f->conn_upgrade = true;
	}
	return 0;
}

static int summarize_fields(const struct http_message *m, struct field_summary *f,
			    struct http_error *err)
{
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct http_header *h = &m->headers[i];
		int r = 0;
		if (http_str_case_eq(h->name, "content-length")) {
			r = summarize_content_length(h->value, f, err);
		} else if (http_str_case_eq(h->name, "transfer-encoding")) {
			r = summarize_transfer_encoding(h->value, f, err);
		} else if (http_str_case_eq(h->name, "connection")) {
			r = summarize_connection(h->value, f, err);
		} else if (http_str_case_eq(h->name, "host")) {
			f->n_host++;
			f->host = h->value;
		} else if (http_str_case_eq(h->name, "upgrade")) {
			f->upgrade_field |= h->value.len > 0;
		} else if (http_str_case_eq(h->name, "expect")) {
			f->expect_continue |= http_str_case_eq(h->value, "100-continue");
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Framing rules shared by requests and responses (RFC 9112 §6.1, §6.3). */
static int check_framing(const struct http_message *m, const struct field_summary *f,
			 struct http_error *err)
{
	if (!f->te)
		return 0;
	if (m->minor_version == 0)
		return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 message");
	if (f->have_cl)
		return fail(err, 400, "both Transfer-Encoding and Content-Length");
	if (!m->response && !f->te_last_chunked)
		return fail(err, 400, "final transfer coding of a request is not chunked");
	if (f->te_other)
		return fail(err, 501, "transfer coding other than chunked");
	return 0;
}

static int parse_head(const char *data, size_t head_len, bool request, unsigned flags,
		      struct http_message *ret, struct http_error *err)
{
	/* Large (the field array); filled here, copied out only on success. */
	struct http_message m = {.response = !request, .head_len = head_len};
	size_t pos = 0;
	int r;

	while (request && data[pos] == '\r')
		pos += 2; /* leading empty lines, counted by the scan */
	struct http_str line = next_line(data, head_len, &pos);
	r = request ? parse_request_line(line, &m, err) : parse_status_line(line, &m, err);
	if (r < 0)
		return r;
	for (;;) {
		line = next_line(data, head_len, &pos);
		if (line.len == 0)
			break;
		assert(m.n_headers < HTTP_HEADERS_MAX); /* the scan counted lines */
		r = parse_field_line(line, &m.headers[m.n_headers], err);
		if (r < 0)
			return r;
		m.n_headers++;
	}
	assert(pos == head_len);

	struct field_summary f = {0};
	r = summarize_fields(&m, &f, err);
	if (r < 0)
		return r;
	r = check_framing(&m, &f, err);
	if (r < 0)
		return r;
	m.has_content_length = f.have_cl;
	m.content_length = f.have_cl ? f.cl : 0;
	m.chunked = f.te;
	bool persistent = m.minor_version == 1 ? !f.conn_close : f.conn_keep_alive && !f.conn_close;

	if (request) {
		if (f.n_host > 1)
			return fail(err, 400, "more than one Host field");
		if (f.n_host == 1 && !valid_authority(f.host, false, true))
			return fail(err, 400, "invalid Host");
		if (f.n_host == 0 && m.minor_version == 1)
			return fail(err, 400, "HTTP/1.1 request without Host");
		m.has_host = f.n_host == 1;
		if (!m.host.p && m.has_host)
			m.host = f.host;
		m.body = f.te ? HTTP_BODY_CHUNKED : f.have_cl ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
		m.keep_alive = persistent;
		/* HTTP/1.0: Upgrade and Expect are ignored (RFC 9110 §7.8, §10.1.1) */
		m.upgrade = m.minor_version == 1 && f.conn_upgrade && f.upgrade_field;
		m.expect_continue = m.minor_version == 1 && f.expect_continue;
	} else {
		bool tunnel = (flags & HTTP_RESPONSE_TO_CONNECT) && m.status / 100 == 2;
		if ((flags & HTTP_RESPONSE_TO_HEAD) || m.status / 100 == 1 || m.status == 204 ||
		    m.status == 304 || tunnel)
			m.body = HTTP_BODY_NONE;
		else if (f.te)
			m.body = HTTP_BODY_CHUNKED;
		else if (f.have_cl)
			m.body = HTTP_BODY_LENGTH;
		else
			m.body = HTTP_BODY_UNTIL_CLOSE;
		m.upgrade = m.status == 101 || tunnel;
		m.keep_alive = persistent && m.body != HTTP_BODY_UNTIL_CLOSE && !m.upgrade;
	}
	*ret = m;
	return 1;
}

static int parse_message(struct http_parser *p, const char *data, size_t len, bool request,
			 unsigned flags, struct http_message *ret, struct http_error *err)
{
	struct http_parser oneshot;
	if (!p) {
		http_parser_init(&oneshot, 0);
		p = &oneshot;
	}
	if (len < p->pos) /* the caller broke the contract; start over */
		http_parser_init(p, p->max_head);
	size_t head_len = 0;
	int r = scan_head(p, data, len, request, &head_len, err);
	if (r == 0)
		return 0;
	http_parser_init(p, p->max_head); /* the next call is for a new message */
	if (r < 0)
		return r;
	return parse_head(data, head_len, request, flags, ret, err);
}

int http_parse_request(struct http_parser *p, const char *data, size_t len,
		       struct http_message *ret, struct http_error *err)
{
	return parse_message(p, data, len, true, 0, ret, err);
}

int http_parse_response(struct http_parser *p, const char *data, size_t len, unsigned flags,
			struct http_message *ret, struct http_error *err)
{
	return parse_message(p, data, len, false, flags, ret, err);
}

unsigned http_response_flags(const struct http_message *req)
{
	if (str_eq(req->method, "HEAD"))
		return HTTP_RESPONSE_TO_HEAD;
	if (str_eq(req->method, "CONNECT"))
		return HTTP_RESPONSE_TO_CONNECT;
	return 0;
}

const struct http_header *http_header_next(const struct http_message *m, const char *name,
					   const struct http_header *prev)
{
	size_t i = prev ? (size_t)(prev - m->headers) + 1 : 0;
	for (; i < m->n_headers; i++)
		if (http_str_case_eq(m->headers[i].name, name))
			return &m->headers[i];
	return NULL;
}

const struct http_header *http_header_find(const struct http_message *m, const char *name)
{
	return http_header_next(m, name, NULL);
}

/* --- body framing ----------------------------------------------------------- */

enum chunk_state {
	CH_SIZE,	 /* hex digits */
	CH_BWS,		 /* whitespace after the size or a value: ';' must follow */
	CH_EXT_START,	 /* after ';': whitespace, then an extension name */
	CH_EXT_NAME,	 /* in the name */
	CH_EXT_NAME_BWS, /* whitespace after the name: '=' or ';' must follow */
	CH_EXT_EQ,	 /* after '=': whitespace, then a value */
	CH_EXT_TOKEN,	 /* in a token value */
	CH_EXT_QUOTED,	 /* in a quoted-string value */
	CH_EXT_ESCAPE,	 /* after a backslash in it */
	CH_EXT_QEND,	 /* after its closing quote */
	CH_LINE_LF,	 /* CR seen at the end of the size line */
	CH_DATA,	 /* chunk data */
	CH_DATA_CR,	 /* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER,	  /* at the start of a trailer line (or the final CRLF) */
	CH_TRAILER_NAME,  /* in a trailer field name */
	CH_TRAILER_VALUE, /* in its value */
	CH_TRAILER_LF,	  /* CR seen at the end of a trailer line */
	CH_END_LF,	  /* CR of the final CRLF seen */
};

void http_body_init_kind(struct http_body *b, enum http_body_kind kind, uint64_t length)
{
	*b = (struct http_body){.kind = kind, .state = CH_SIZE};
	if (kind == HTTP_BODY_LENGTH)
		b->remaining = length;
	b->done = kind == HTTP_BODY_NONE || (kind == HTTP_BODY_LENGTH && length == 0);
}

void http_body_init(struct http_body *b, const struct http_message *m)
{
	http_body_init_kind(b, m->body, m->content_length);
	b->response = m->response;
}

static int chunk_fail(struct http_error *err, const char *reason)
{
	return fail(err, 400, reason);
}

/* The chunk-size line (with its extensions) has ended. */
static void chunk_size_line_done(struct http_body *b)
{
	if (b->remaining > 0) {
		b->state = CH_DATA;
	} else {
		b->state = CH_TRAILER;
		b->line_len = 0;
	}
}

/* The line terminator after a chunk's data has ended: the next chunk. */
static void chunk_data_done(struct http_body *b)
{
	b->state = CH_SIZE;
	b->digits = 0;
	b->remaining = 0;
}

/* Append data[from..from + n) to out, if any (data may be NULL when n is 0). */
static void put_bytes(struct buf *out, const void *data, size_t from, size_t n)
{
	if (out && n > 0)
		buf_put(out, (const char *)data + from, n);
}

/* Run the chunked decoder over data[0..len); see http_body_feed. A bare LF
 * ends a line of the framing where a CRLF would, in a response only (as in
 * its head: see scan_head), and nowhere else than a CRLF could: the
 * whitespace, extension and trailer rules are those of a CRLF line. With out,
 * append the bytes consumed to it as they are to be forwarded: the same,
 * with each such bare LF written CRLF. */
static int feed_chunked(struct http_body *b, const unsigned char *data, size_t len, struct buf *out,
			size_t *ret_consumed, struct http_error *err)
{
	size_t i = 0;
	size_t seg = 0; /* the bytes not yet appended to out start here */
	while (i < len) {
		unsigned char c = data[i];
		if (b->state == CH_DATA) {
			uint64_t take = len - i < b->remaining ? len - i : b->remaining;
			b->remaining -= take;
			i += (size_t)take;
			if (b->remaining == 0)
				b->state = CH_DATA_CR;
			continue;
		}
		i++;
		if (b->state >= CH_BWS && b->state <= CH_EXT_QEND &&
		    ++b->line_len > HTTP_CHUNK_EXT_MAX)
			return chunk_fail(err, "chunk extensions too long");
		if (b->state >= CH_TRAILER_NAME && b->state <= CH_TRAILER_LF &&
		    ++b->line_len > HTTP_TRAILERS_MAX)
			return chunk_fail(err, "trailer section too large");
		/* a bare LF may end a line where a CR would start its end */
		bool bare_lf = c == '\n' && b->response;
		bool ended_by_lf = false; /* and it did */
		switch ((enum chunk_state)b->state) {
		case CH_SIZE: {
			int v = hex_value(c);
			if (v >= 0) {
				if (b->digits == 16)
					return chunk_fail(err,
							  "chunk size longer than 16 hex digits");
				b->remaining = b->remaining << 4 | (unsigned)v;
				b->digits++;
			} else if (b->digits == 0) {
				return chunk_fail(err, "chunk size is not a hex number");
			} else if (c == ';') {
				b->state = CH_EXT_START;
				b->line_len = 1;
			} else if (is_ows(c)) {
				b->state = CH_BWS;
				b->line_len = 1;
			} else if (c == '\r') {
				b->state = CH_LINE_LF;
			} else if (bare_lf) {
				chunk_size_line_done(b);
				ended_by_lf = true;
			} else {
				return chunk_fail(err, "chunk size is not a hex number");
			}
			break;
		}
		case CH_BWS:
			if (c == ';')
				b->state = CH_EXT_START;
			else if (!is_ows(c))
				return chunk_fail(err,
						  "whitespace not followed by ';' in a chunk line");
			break;
		case CH_EXT_START:
			if (is_tchar(c))
				b->state = CH_EXT_NAME;
			else if (!is_ows(c))
				return chunk_fail(err, "malformed chunk extension");
			break;
		case CH_EXT_NAME:
		case CH_EXT_TOKEN:
			if (is_tchar(c))
				break;
			if (c == '=' && b->state == CH_EXT_NAME) {
				b->state = CH_EXT_EQ;
			} else if (c == ';') {
				b->state = CH_EXT_START;
			} else if (c == '\r') {
				b->state = CH_LINE_LF;
			} else if (bare_lf) {
				chunk_size_line_done(b);
				ended_by_lf = true;
			} else if (is_ows(c)) {
				b->state = b->state == CH_EXT_NAME ? CH_EXT_NAME_BWS : CH_BWS;
			} else {
				return chunk_fail(err, "malformed chunk extension");
			}
			break;
		case CH_EXT_NAME_BWS:
			if (c == '=')
				b->state = CH_EXT_EQ;
			else if (c == ';')
				b->state = CH_EXT_START;
			else if (!is_ows(c))
				return chunk_fail(err, "malformed chunk extension");
			break;
		case CH_EXT_EQ:
			if (is_tchar(c))
				b->state = CH_EXT_TOKEN;
			else if (c == '"')
				b->state = CH_EXT_QUOTED;
			else if (!is_ows(c))
				return chunk_fail(err, "malformed chunk extension value");
			break;
		case CH_EXT_QUOTED:
			if (c == '"')
				b->state = CH_EXT_QEND;
			else if (c == '\\')
				b->state = CH_EXT_ESCAPE;
			else if (!is_field_char(c))
				return chunk_fail(err, "control character in a chunk extension");
			break;
		case CH_EXT_ESCAPE:
			if (!is_field_char(c))
				return chunk_fail(err, "control character in a chunk extension");
			b->state = CH_EXT_QUOTED;
			break;
		case CH_EXT_QEND:
			if (c == ';') {
				b->state = CH_EXT_START;
			} else if (c == '\r') {
				b->state = CH_LINE_LF;
			} else if (bare_lf) {
				chunk_size_line_done(b);
				ended_by_lf = true;
			} else if (is_ows(c)) {
				b->state = CH_BWS;
			} else {
				return chunk_fail(err, "malformed chunk extension value");
			}
			break;
		case CH_LINE_LF:
			if (c != '\n')
				return chunk_fail(err, "CR not followed by LF in a chunk line");
			chunk_size_line_done(b);
			break;
		case CH_DATA:
			assert(false);
			break;
		case CH_DATA_CR:
			if (c == '\r') {
				b->state = CH_DATA_LF;
			} else if (bare_lf) {
				chunk_data_done(b);
				ended_by_lf = true;
			} else {
				return chunk_fail(err, "chunk data not followed by CRLF");
			}
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return chunk_fail(err, "chunk data not followed by CRLF");
			chunk_data_done(b);
			break;
		case CH_TRAILER:
			if (c == '\r') {
				b->state = CH_END_LF;
			} else if (bare_lf) {
				b->done = true;
				ended_by_lf = true;
			} else if (is_tchar(c)) {
				b->state = CH_TRAILER_NAME;
				if (++b->line_len > HTTP_TRAILERS_MAX)
					return chunk_fail(err, "trailer section too large");
			} else if (is_ows(c)) {
				return chunk_fail(err,
						  "line folding or whitespace in the trailers");
			} else {
				return chunk_fail(err, "malformed trailer field");
			}
			break;
		case CH_TRAILER_NAME:
			if (c == ':')
				b->state = CH_TRAILER_VALUE;
			else if (!is_tchar(c))
				return chunk_fail(err, "malformed trailer field name");
			break;
		case CH_TRAILER_VALUE:
			if (c == '\r') {
				b->state = CH_TRAILER_LF;
			} else if (bare_lf) {
				b->state = CH_TRAILER;
				ended_by_lf = true;
			} else if (!is_field_char(c)) {
				return chunk_fail(err, "control character in a trailer field");
			}
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return chunk_fail(err, "CR not followed by LF in the trailers");
			b->state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (c != '\n')
				return chunk_fail(
				    err, "CR not followed by LF at the end of a chunked body");
			b->done = true;
			break;
		}
		if (ended_by_lf && out) {
			put_bytes(out, data, seg, i - 1 - seg);
			buf_put(out, "\r\n", 2);
			seg = i;
		}
		if (b->done)
			break;
	}
	put_bytes(out, data, seg, i - seg);
	*ret_consumed = i;
	return b->done;
}

/* http_body_feed, appending the bytes consumed to out (may be NULL) as
 * feed_chunked says; out is as it was on failure. */
static int body_feed(struct http_body *b, const void *data, size_t len, struct buf *out,
		     size_t *ret_consumed, struct http_error *err)
{
	size_t n = 0;
	int r = 0;
	if (b->done) {
		*ret_consumed = 0;
		return 1;
	}
	switch (b->kind) {
	case HTTP_BODY_NONE:
		assert(false); /* done from the start */
		break;
	case HTTP_BODY_LENGTH:
		n = len < b->remaining ? len : (size_t)b->remaining;
		b->remaining -= n;
		b->done = b->remaining == 0;
		r = b->done;
		break;
	case HTTP_BODY_CHUNKED: {
		/* A local state, committed only on success (the error leaves b
		 * as it was, broken for good anyway). */
		struct http_body tmp = *b;
		size_t out_len = out ? out->len : 0;
		r = feed_chunked(&tmp, data, len, out, &n, err);
		if (r < 0) {
			if (out && out->data) {
				out->len = out_len;
				out->data[out_len] = 0;
			}
			return r;
		}
		*b = tmp;
		break;
	}
	case HTTP_BODY_UNTIL_CLOSE:
		n = len;
		break;
	}
	if (b->kind != HTTP_BODY_CHUNKED)
		put_bytes(out, data, 0, n);
	b->consumed += n;
	*ret_consumed = n;
	return r;
}

int http_body_feed(struct http_body *b, const void *data, size_t len, size_t *ret_consumed,
		   struct http_error *err)
{
	return body_feed(b, data, len, NULL, ret_consumed, err);
}

int http_body_forward(struct http_body *b, const void *data, size_t len, size_t *ret_consumed,
		      struct buf *out, struct http_error *err)
{
	return body_feed(b, data, len, out, ret_consumed, err);
}

int http_body_eof(const struct http_body *b, struct http_error *err)
{
	if (b->done || b->kind == HTTP_BODY_UNTIL_CLOSE)
		return 0;
	fail(err, 400, "connection closed before the end of the body");
	return -EPIPE;
}

/* --- forwarding ------------------------------------------------------------- */

static void put_str(struct buf *out, struct http_str s)
{
	if (s.len > 0)
		buf_put(out, s.p, s.len);
}

static void put_field(struct buf *out, struct http_str name, struct http_str value)
{
	put_str(out, name);
	buf_put(out, ": ", 2);
	put_str(out, value);
	buf_put(out, "\r\n", 2);
}

/* Does a Connection field of m name the field name? */
static bool named_in_connection(const struct http_message *m, struct http_str name)
{
	for (const struct http_header *h = http_header_find(m, "connection"); h;
	     h = http_header_next(m, "connection", h)) {
		struct http_str el;
		size_t pos = 0;
		while (list_next(h->value, &pos, &el))
			if (str_case_eq(el, name))
				return true;
	}
	return false;
}

static bool is_hop_by_hop(struct http_str name)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
					  "te",		"trailer",    "upgrade"};
	for (size_t i = 0; i < ELEMENTSOF(hop); i++)
		if (http_str_case_eq(name, hop[i]))
			return true;
	return false;
}

/* Whether a received field is passed on as it is: not a hop-by-hop field
 * (Upgrade passes when keep_upgrade), not named in Connection, not one of
 * those the proxy writes itself (framing; for requests Host and the
 * X-Forwarded ones), for responses not named Close, and for requests no name
 * with an underscore and no Expect from HTTP/1.0. */
static bool field_passes(const struct http_message *m, const struct http_header *h,
			 bool keep_upgrade)
{
	struct http_str name = h->name;
	if (http_str_case_eq(name, "content-length") || http_str_case_eq(name, "transfer-encoding"))
		return false;
	if (!m->response &&
	    (http_str_case_eq(name, "host") || http_str_case_eq(name, "x-forwarded-for") ||
	     http_str_case_eq(name, "x-forwarded-proto")))
		return false;
	/* CGI-style servers read "Transfer_Encoding" or "X_Forwarded_For" as
	 * the field with dashes: the proxy would not see what they see. */
	if (!m->response && memchr(name.p, '_', name.len))
		return false;
	/* HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1), and the
	 * request goes upstream as HTTP/1.1, where they would not be. */
	if (!m->response && m->minor_version == 0 && http_str_case_eq(name, "expect"))
		return false;
	/* "Close" is a reserved field name (RFC 9110 §7.6.1); passed on, it
	 * would be named by the "Connection: close" the proxy may write. */
	if (m->response && http_str_case_eq(name, "close"))
		return false;
	if (http_str_case_eq(name, "upgrade"))
		return keep_upgrade;
	return !is_hop_by_hop(name) && !named_in_connection(m, name);
}

static void put_framing(struct buf *out, const struct http_message *m)
{
	if (m->chunked)
		buf_puts(out, "Transfer-Encoding: chunked\r\n");
	else if (m->has_content_length)
		buf_printf(out, "Content-Length: %" PRIu64 "\r\n", m->content_length);
}

void http_forward_request_head(struct buf *out, const struct http_message *req,
			       const char *client_addr, const char *proto, bool pass_upgrade)
{
	assert(!req->response);
	bool upgrade = pass_upgrade && req->upgrade;

	put_str(out, req->method);
	buf_putc(out, ' ');
	put_str(out, req->target);
	buf_puts(out, " HTTP/1.1\r\nHost: ");
	put_str(out, req->host);
	buf_puts(out, "\r\n");

	for (size_t i = 0; i < req->n_headers; i++)
		if (field_passes(req, &req->headers[i], upgrade))
			put_field(out, req->headers[i].name, req->headers[i].value);

	/* X-Forwarded-For: the received values (unless the client named the
	 * field in Connection), then the client's address. */
	bool any = false;
	if (!named_in_connection(req, (struct http_str){"X-Forwarded-For", 15})) {
		for (const struct http_header *h = http_header_find(req, "x-forwarded-for"); h;
		     h = http_header_next(req, "x-forwarded-for", h)) {
			if (h->value.len == 0)
				continue;
			buf_puts(out, any ? ", " : "X-Forwarded-For: ");
			put_str(out, h->value);
			any = true;
		}
	}
	if (client_addr && *client_addr) {
		buf_puts(out, any ? ", " : "X-Forwarded-For: ");
		buf_puts(out, client_addr);
		any = true;
	}
	if (any)
		buf_puts(out, "\r\n");
	if (proto && *proto)
		buf_printf(out, "X-Forwarded-Proto: %s\r\n", proto);

	if (req->body != HTTP_BODY_NONE)
		put_framing(out, req);
	buf_puts(out, upgrade ? "Connection: upgrade\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
}

bool http_forward_response_head(struct buf *out, const struct http_message *resp, bool keep_alive)
{
	assert(resp->response);
	bool interim = resp->status / 100 == 1 && resp->status != 101;

	buf_printf(out, "HTTP/1.1 %d ", resp->status);
	if (resp->reason.len > 0)
		put_str(out, resp->reason);
	else
		buf_puts(out, http_status_reason(resp->status));
	buf_puts(out, "\r\n");

	for (size_t i = 0; i < resp->n_headers; i++)
		if (field_passes(resp, &resp->headers[i], resp->status == 101))
			put_field(out, resp->headers[i].name, resp->headers[i].value);

	/* No framing where there is no body by status (a 1xx, a 204, a 2xx
	 * to CONNECT); a HEAD or 304 keeps its Content-Length, which tells the
	 * length the body would have had. */
	if (resp->status / 100 != 1 && resp->status != 204 && !resp->upgrade)
		put_framing(out, resp);

	bool keep = false;
	if (interim) {
		keep = true;
	} else if (resp->status == 101) {
		buf_puts(out, "Connection: upgrade\r\n");
	} else if (!resp->upgrade) {
		keep = keep_alive && resp->body != HTTP_BODY_UNTIL_CLOSE;
		buf_puts(out, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
	}
	buf_puts(out, "\r\n");
	return keep;
}

const char *http_status_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	    {100, "Continue"},
	    {101, "Switching Protocols"},
	    {103, "Early Hints"},
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {206, "Partial Content"},
	    {301, "Moved Permanently"},
	    {302, "Found"},
	    {303, "See Other"},
	    {304, "Not Modified"},
	    {307, "Temporary Redirect"},
	    {308, "Permanent Redirect"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {409, "Conflict"},
	    {411, "Length Required"},
	    {412, "Precondition Failed"},
	    {413, "Content Too Large"},
	    {414, "URI Too Long"},
	    {415, "Unsupported Media Type"},
	    {417, "Expectation Failed"},
	    {421, "Misdirected Request"},
	    {426, "Upgrade Required"},
	    {429, "Too Many Requests"},
	    {431, "Request Header Fields Too Large"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	    {505, "HTTP Version Not Supported"},
	};
	for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	switch (status / 100) {
	case 1:
		return "Informational";
	case 2:
		return "Success";
	case 3:
		return "Redirection";
	case 4:
		return "Client Error";
	default:
		return "Server Error";
	}
}

void http_write_error(struct buf *out, int status)
{
	/* Error statuses only: a 1xx, 204 or 304 has no body to carry. */
	if (status < 400 || status > 599)
		status = 500;
	const char *reason = http_status_reason(status);
	/* "NNN " + reason + "\n" */
	size_t body_len = 4 + strlen(reason) + 1;
	buf_printf(out,
		   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n%d %s\n",
		   status, reason, body_len, status, reason);
}
