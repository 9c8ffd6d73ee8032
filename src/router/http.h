/* HTTP/1.1 message syntax (RFC 9112) for the router (a reverse proxy) and the
 * daemon's API server: a zero-copy, incremental parser of request and response
 * heads that refuses every ambiguity request smuggling feeds on, a body framing
 * tracker for bytes forwarded verbatim, and the heads a proxy sends on. */
#pragma once

#include "../base/buf.h"

/* Default and largest sensible size of a head (start line, header fields, the
 * empty line, and the empty lines allowed before a request line). */
#define HTTP_HEAD_MAX (16u << 10)
#define HTTP_HEAD_MAX_LIMIT (1u << 20)
/* Header fields in one head; one more is a 431. */
#define HTTP_HEADERS_MAX 100
/* Empty lines (CRLF) ignored before a request line (RFC 9112 §2.2); one more
 * is a 400. None are accepted before a status line. */
#define HTTP_LEADING_EMPTY_LINES_MAX 4
/* Bytes of chunk extensions on one chunk-size line, and of the trailer section
 * of a chunked body (the final CRLF excluded). */
#define HTTP_CHUNK_EXT_MAX 4096
#define HTTP_TRAILERS_MAX (8u << 10)

/* A piece of the parsed buffer: not NUL-terminated, valid as long as the
 * buffer is. p is NULL (and len 0) when absent. */
struct http_str {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_str name;  /* a token, as spelled in the message */
	struct http_str value; /* without leading and trailing SP/HTAB; may be empty */
};

/* How the body of a message is delimited (RFC 9112 §6.3). */
enum http_body_kind {
	HTTP_BODY_NONE,	       /* no body: the next message starts right after the head */
	HTTP_BODY_LENGTH,      /* content_length bytes (possibly 0) */
	HTTP_BODY_CHUNKED,     /* the chunked transfer coding, ended by its last chunk */
	HTTP_BODY_UNTIL_CLOSE, /* responses only: everything until the server closes */
};

enum http_target_form {
	HTTP_TARGET_ORIGIN,    /* "/path?query" */
	HTTP_TARGET_ABSOLUTE,  /* "http://host:port/path" */
	HTTP_TARGET_AUTHORITY, /* "host:port", CONNECT only */
	HTTP_TARGET_ASTERISK,  /* "*", OPTIONS only */
};

/* Why a message was refused. status is the answer a server gives the client:
 * 400, 431 (head or header count too large), 501 (a transfer coding other than
 * chunked), 505 (an HTTP version other than 1.0 and 1.1). For a response
 * (from an upstream server) the same classification is used, and a proxy
 * answers its own client 502 whatever it is. reason is a static string naming
 * the rule broken, for logs (never send it to the client). */
struct http_error {
	int status;
	const char *reason;
};

/* A parsed head (about 3.3 KiB, with the field array: no allocation). Every
 * http_str points into the buffer given to the parser. */
struct http_message {
	bool response;
	/* request line (requests only) */
	struct http_str method; /* a token, case-sensitive */
	struct http_str target;
	enum http_target_form target_form;
	/* status line (responses only) */
	int status;		/* 100..599 */
	struct http_str reason; /* may be empty */

	int minor_version; /* HTTP/1.<minor_version>: 0 or 1 */
	struct http_header headers[HTTP_HEADERS_MAX];
	size_t n_headers;
	/* Bytes of the head from the start of the buffer: leading empty lines,
	 * start line, fields and the final empty line. The body (or the next
	 * message) starts here. */
	size_t head_len;

	/* body framing */
	enum http_body_kind body;
	uint64_t content_length; /* HTTP_BODY_LENGTH: the length; else the
				  * Content-Length value if present (a response
				  * to HEAD, a 304), else 0 */
	bool has_content_length; /* a (valid) Content-Length field was present */
	bool chunked;		 /* Transfer-Encoding: chunked was present */

	/* connection */
	bool keep_alive; /* the connection may carry another message after this
			  * one: HTTP/1.1 without "Connection: close", HTTP/1.0
			  * with "Connection: keep-alive"; never for a response
			  * read until close, a 101 or a 2xx to CONNECT */
	bool upgrade;	 /* request: HTTP/1.1 with "Connection: upgrade" and a
			  * non-empty Upgrade field; response: a 101, or a 2xx
			  * to CONNECT: after the head the connection carries
			  * raw bytes both ways */
	/* requests only */
	bool expect_continue; /* HTTP/1.1 with "Expect: 100-continue" */
	bool has_host;	      /* a Host field was present (exactly one) */
	struct http_str host; /* the authority to route on: the authority of
			       * an absolute-form or authority-form target,
			       * else the Host value (may be empty); p is NULL
			       * for an HTTP/1.0 request without either */
};

/* State kept between calls while a head arrives in pieces, so each byte is
 * examined once however the head is split. */
struct http_parser {
	size_t max_head; /* limit on head_len */
	/* private */
	size_t pos;	   /* bytes already scanned */
	size_t line_start; /* offset of the line being scanned */
	unsigned lines;	   /* non-empty lines seen */
	unsigned empty_lines;
	bool cr; /* the last byte scanned was a CR */
};

/* Prepare p for a new head with the given limit on its size (0: HTTP_HEAD_MAX;
 * larger than HTTP_HEAD_MAX_LIMIT: HTTP_HEAD_MAX_LIMIT). */
void http_parser_init(struct http_parser *p, size_t max_head);

/* Parse the request head at the start of data[0..len). Call again with the
 * same p each time more bytes have been appended to the buffer (the buffer
 * may move; its first len bytes must not change); p starts over by itself
 * after a head was completed or refused, so the next call may be for the next
 * message. p may be NULL for a one-shot parse with HTTP_HEAD_MAX.
 * The bytes are checked as they come: a control character, a bare CR or LF,
 * or a head that cannot complete within max_head bytes is refused as soon as
 * it is seen (a head that is not complete when len reaches max_head is a 431
 * at once). Returns 1 when the head is complete and valid (ret filled; the
 * body framing, if any, starts at ret->head_len), 0 when more bytes are
 * needed, or on a refused message a negative errno with err (may be NULL)
 * filled: -EBADMSG (400), -EMSGSIZE (431), -EOPNOTSUPP (501),
 * -EPROTONOSUPPORT (505). ret is written only when 1 is returned. */
int http_parse_request(struct http_parser *p, const char *data, size_t len,
		       struct http_message *ret, struct http_error *err);

/* What the response parser must know about the request it answers. */
#define HTTP_RESPONSE_TO_HEAD (1u << 0)	   /* a HEAD: no body, whatever the fields say */
#define HTTP_RESPONSE_TO_CONNECT (1u << 1) /* a CONNECT: a 2xx starts a tunnel */

/* The flags above for the response to req. */
unsigned http_response_flags(const struct http_message *req);

/* Parse a response head (from an upstream server), as http_parse_request
 * does, with flags from http_response_flags() for the request it answers,
 * except that a line may end in a bare LF as well as in CRLF (RFC 9112 §2.2,
 * as nginx and curl read them: some servers, busybox httpd's CGI output for
 * one, send them); a bare CR is still refused, and so is an empty line before
 * the status line.
 * Responses to HEAD, 1xx, 204 and 304 (and 2xx to CONNECT) have no body;
 * then Transfer-Encoding: chunked, then Content-Length; otherwise the body
 * runs until the server closes. A 1xx other than 101 is an interim response:
 * the final response follows it on the same connection. */
int http_parse_response(struct http_parser *p, const char *data, size_t len, unsigned flags,
			struct http_message *ret, struct http_error *err);

/* True when s equals the NUL-terminated lit, ASCII case-insensitively. */
bool http_str_case_eq(struct http_str s, const char *lit);

/* A NUL-terminated copy of s (xmalloc: aborts on OOM); "" for an absent s. */
char *http_str_dup(struct http_str s);

/* The first header field named name (case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_message *m, const char *name);

/* The next field named name after the field prev (a pointer into m->headers,
 * or NULL to start from the beginning), or NULL. */
const struct http_header *http_header_next(const struct http_message *m, const char *name,
					   const struct http_header *prev);

/* --- body framing -------------------------------------------------------- */

/* Where the body of one message ends, for bytes forwarded as they are. */
struct http_body {
	enum http_body_kind kind;
	bool done;	    /* the message has ended */
	uint64_t remaining; /* LENGTH: body bytes still to come; CHUNKED: bytes
			     * left in the current chunk's data */
	uint64_t consumed;  /* bytes of the body seen so far */
	/* private: the chunked decoder */
	bool response; /* a response's body: a bare LF ends a line of the
			* framing, as in its head */
	int state;
	unsigned digits;
	size_t line_len;
};

/* Start tracking the body of the message m (request or response). */
void http_body_init(struct http_body *b, const struct http_message *m);

/* Start tracking a body of the given kind (length for HTTP_BODY_LENGTH), read
 * as a request's (no bare LF in a chunked body). */
void http_body_init_kind(struct http_body *b, enum http_body_kind kind, uint64_t length);

/* Feed the next len bytes that follow the head (or the bytes fed before).
 * Sets *ret_consumed to how many of them belong to this message and returns
 * 1 when the message ended there (the next message starts at
 * data + *ret_consumed), 0 when all len bytes belong to it and more are
 * needed. Once done it consumes nothing and returns 1. A chunked body is
 * checked strictly: chunk sizes are 1 to 16 hex digits, extensions follow
 * RFC 9112 §7.1.1 within HTTP_CHUNK_EXT_MAX bytes, chunk data is followed by
 * CRLF, trailer fields are well-formed within HTTP_TRAILERS_MAX bytes, no
 * bare CR, and no bare LF but, in a response's body, one that ends a line
 * (a chunk-size line, the end of a chunk's data, a trailer line, the final
 * empty line) where a CRLF would; anything else returns -EBADMSG with err
 * (400) filled and *ret_consumed untouched: the connection can't be used any
 * more. */
int http_body_feed(struct http_body *b, const void *data, size_t len, size_t *ret_consumed,
		   struct http_error *err);

/* http_body_feed, appending to out the bytes consumed as a proxy forwards
 * them: the same bytes, except that each bare LF that ended a line of a
 * chunked response's framing is written CRLF, so what goes downstream is
 * well-formed. Nothing is appended on failure. */
int http_body_forward(struct http_body *b, const void *data, size_t len, size_t *ret_consumed,
		      struct buf *out, struct http_error *err);

/* The connection was closed by the sender after the bytes fed so far.
 * Returns 0 when that ends the message properly (it was done, or its body
 * runs until close), -EPIPE with err (400) filled when the message was cut
 * short. */
int http_body_eof(const struct http_body *b, struct http_error *err);

/* --- forwarding (reverse proxy) ------------------------------------------- */

/* Append to out the head to send upstream for the request req:
 * - the same request line, with version HTTP/1.1;
 * - "Host:" first: the authority of an absolute-form target, else the
 *   received Host value (empty for an HTTP/1.0 request without one);
 * - the other fields in their order, except the hop-by-hop ones (Connection,
 *   Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade unless an upgrade is
 *   passed on, every field named in Connection), the ones written below, and
 *   every field whose name holds an underscore (CGI-style servers read
 *   "Transfer_Encoding" as Transfer-Encoding, which the proxy did not see),
 *   and Expect from an HTTP/1.0 client (to be ignored: RFC 9110 §10.1.1);
 * - X-Forwarded-For: the received values joined with ", ", then client_addr
 *   (NULL: not added; the received values are dropped if the client named
 *   the field in Connection);
 * - X-Forwarded-Proto: proto, replacing any received one (NULL: none);
 * - the framing as one canonical field, "Content-Length: N" or
 *   "Transfer-Encoding: chunked", so no other reading of the length can reach
 *   the upstream server (naming it in Connection does not remove it);
 * - "Connection: upgrade" when pass_upgrade and req->upgrade (the Upgrade
 *   field is kept then), else "Connection: keep-alive".
 * The body follows as received. */
void http_forward_request_head(struct buf *out, const struct http_message *req,
			       const char *client_addr, const char *proto, bool pass_upgrade);

/* Append to out the head to send downstream for the response resp, written
 * anew in CRLF whatever line ends the upstream server used: status line
 * "HTTP/1.1 <status> <reason>", the fields except the hop-by-hop ones (as
 * above; Upgrade is kept on a 101), the framing as it was (one canonical
 * Content-Length or Transfer-Encoding: chunked; none on a 1xx, a 204 or a 2xx
 * to CONNECT, which have no body), then "Connection: keep-alive" when
 * keep_alive, else "Connection: close" (a 101 gets "Connection: upgrade", a
 * 1xx other than 101 no Connection field). A response whose body runs until
 * the upstream server closes can't be delimited for a kept connection: it
 * gets "Connection: close" whatever keep_alive says. Returns true when the
 * client connection may carry another request after this response (keep_alive
 * and the body is delimited, or an interim 1xx), false when the proxy must
 * close it after the body (or, after a 101, tunnel). To an HTTP/1.0 client
 * the proxy must send no 1xx and no chunked response (it can't read them):
 * that is the caller's decision (drop the 1xx; decode, or refuse with 502). */
bool http_forward_response_head(struct buf *out, const struct http_message *resp, bool keep_alive);

/* The reason phrase for status ("Bad Request"), or a generic one for its
 * class ("Client Error") when unknown. */
const char *http_status_reason(int status);

/* Append a complete minimal error response for status (400..599; anything
 * else becomes 500) to out: "HTTP/1.1 400 Bad Request", Content-Type:
 * text/plain, Content-Length, Connection: close, and a one-line body
 * "400 Bad Request\n". */
void http_write_error(struct buf *out, int status);
