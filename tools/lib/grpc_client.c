/* grpc_client.c — a small gRPC client over nghttp2 (see grpc_client.h). */
#define _GNU_SOURCE
#include "grpc_client.h"
#include "tls_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct stream {
	uint8_t *req;              /* prefix + request message */
	uint32_t req_len, req_sent;
	uint8_t prefix[5];
	uint32_t prefix_len;
	uint8_t *msg;              /* the response message being received */
	uint32_t msg_len, msg_cap, msg_want;
	int status;                /* from the trailers; -1 until then */
	char message[256];
	atp_grpc_msg_fn on_msg;
	atp_grpc_done_fn on_done;
	void *ctx;
	struct stream *prev, *next;  /* the calls in flight */
} stream;

struct atp_grpc_client {
	int fd;
	nghttp2_session *session;
	char authority[160];
	uint32_t in_flight;
	stream *streams;
	int completed;             /* during one pump */
	bool broken;
	uint8_t *out;              /* frames serialized, not yet taken by the socket: one send() for many */
	size_t out_len, out_cap;
};

const char *atp_grpc_status_name(int status)
{
	static const char *const names[] = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
					     "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
					     "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
					     "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" };
	return status >= 0 && status <= 16 ? names[status] : "BROKEN";
}

/* Hand the socket what is buffered; 0 (all taken, or it would block), or -1. */
static int drain_out(atp_grpc_client *c)
{
	if (!c->out_len)
		return 0;  /* and c->out may still be NULL */
	size_t off = 0;
	while (off < c->out_len) {
		ssize_t n = tls_send(c->fd, c->out + off, c->out_len - off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	return 0;
}

/*
 * Serialize every frame nghttp2 has queued into one buffer and send it
 * with as few send() calls as the socket allows (nghttp2_session_send
 * would make one per frame: two per call). 0, or -1.
 */
static int send_all(atp_grpc_client *c)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->session, &data);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (c->out_len + (size_t)n > c->out_cap) {
			size_t cap = c->out_cap ? c->out_cap : 64u << 10;
			while (cap < c->out_len + (size_t)n)
				cap *= 2;
			uint8_t *grown = realloc(c->out, cap);
			if (!grown)
				return -1;
			c->out = grown, c->out_cap = cap;
		}
		memcpy(c->out + c->out_len, data, (size_t)n);
		c->out_len += (size_t)n;
		if (c->out_len >= 64u << 10 && drain_out(c) < 0)
			return -1;
	}
	return drain_out(c);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	(void)flags;
	(void)user_data;
	stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!s)
		return 0;
	if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		s->status = 0;
		for (size_t i = 0; i < valuelen; i++)
			s->status = s->status * 10 + (value[i] - '0');
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		/* percent-decoded */
		size_t o = 0;
		for (size_t i = 0; i < valuelen && o + 1 < sizeof(s->message); i++) {
			if (value[i] == '%' && i + 2 < valuelen) {
				char hex[3] = { (char)value[i + 1], (char)value[i + 2], 0 };
				s->message[o++] = (char)strtol(hex, NULL, 16);
				i += 2;
			} else {
				s->message[o++] = (char)value[i];
			}
		}
		s->message[o] = 0;
	} else if (namelen == 7 && memcmp(name, ":status", 7) == 0 && !(valuelen == 3 && memcmp(value, "200", 3) == 0)) {
		snprintf(s->message, sizeof(s->message), "HTTP status %.*s", (int)valuelen, value);
	}
	return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
		   void *user_data)
{
	(void)flags;
	(void)user_data;
	stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!s)
		return 0;
	while (len) {
		if (s->prefix_len < 5) {
			s->prefix[s->prefix_len++] = *data++;
			len--;
			if (s->prefix_len == 5) {
				s->msg_want = (uint32_t)s->prefix[1] << 24 | (uint32_t)s->prefix[2] << 16 |
					      (uint32_t)s->prefix[3] << 8 | s->prefix[4];
				s->msg_len = 0;
				if (s->msg_want > s->msg_cap) {
					free(s->msg);
					s->msg = aligned_alloc(8, (s->msg_want + 7) & ~7u);
					s->msg_cap = s->msg ? s->msg_want : 0;
					if (!s->msg)
						return NGHTTP2_ERR_CALLBACK_FAILURE;
				}
			} else {
				continue;
			}
		}
		uint32_t take = s->msg_want - s->msg_len;
		if (take > len)
			take = (uint32_t)len;
		memcpy(s->msg + s->msg_len, data, take);
		s->msg_len += take;
		data += take;
		len -= take;
		if (s->msg_len == s->msg_want) {
			if (s->on_msg)
				s->on_msg(s->ctx, s->msg, s->msg_len);
			s->prefix_len = 0;
		}
	}
	return 0;
}

/* The call of s is over: tell its owner, forget it. */
static void finish(atp_grpc_client *c, stream *s, uint32_t error_code)
{
	if (s->status < 0 && !s->message[0])
		snprintf(s->message, sizeof(s->message), "stream closed without a status (HTTP/2 error %u)", error_code);
	if (s->on_done)
		s->on_done(s->ctx, s->status, s->message);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s->req);
	free(s->msg);
	free(s);
	c->in_flight--;
	c->completed++;
}

static int on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s) {
		nghttp2_session_set_stream_user_data(session, stream_id, NULL);
		finish(user_data, s, error_code);
	}
	return 0;
}

static ssize_t read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)user_data;
	stream *s = source->ptr;
	size_t n = s->req_len - s->req_sent;
	if (n > length)
		n = length;
	memcpy(buf, s->req + s->req_sent, n);
	s->req_sent += (uint32_t)n;
	if (s->req_sent == s->req_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int dial(const char *hostport, char *err, size_t errlen)
{
	char host[128];
	snprintf(host, sizeof(host), "%s", hostport);
	char *colon = strrchr(host, ':');
	if (!colon) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", hostport);
		return -1;
	}
	*colon = 0;
	const char *name = host;
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = 0;
		name = host + 1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int rc = getaddrinfo(name, colon + 1, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "%s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls_client_on() && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 || tls_attach(fd, name, true, err, errlen) < 0)) {
		tls_close(fd);
		return -1;
	}
	return fd;
}

atp_grpc_client *atp_grpc_client_connect(const char *hostport, char *err, size_t errlen)
{
	atp_grpc_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(c->authority, sizeof(c->authority), "%s", hostport);
	if ((c->fd = dial(hostport, err, errlen)) < 0) {
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks *cbs;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	int rc = nghttp2_session_client_new(&c->session, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (rc) {
		snprintf(err, errlen, "nghttp2: %s", nghttp2_strerror(rc));
		tls_close(c->fd);
		free(c);
		return NULL;
	}
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4u << 20 } };
	nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1);
	nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 64 << 20);
	return c;
}

void atp_grpc_client_close(atp_grpc_client *c)
{
	if (!c)
		return;
	while (c->streams) {
		c->streams->on_done = NULL;
		finish(c, c->streams, NGHTTP2_CANCEL);
	}
	nghttp2_session_del(c->session);
	tls_close(c->fd);
	free(c->out);
	free(c);
}

#define NV(name, value) \
	{ (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), NGHTTP2_NV_FLAG_NO_COPY_NAME }

int atp_grpc_client_start(atp_grpc_client *c, const char *path, const uint8_t *msg, uint32_t len, uint32_t timeout_ms,
			  atp_grpc_msg_fn on_msg, atp_grpc_done_fn on_done, void *ctx)
{
	if (c->broken)
		return -1;
	stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->req = malloc(5 + (size_t)len))) {
		free(s);
		return -1;
	}
	s->req[0] = 0;
	s->req[1] = (uint8_t)(len >> 24);
	s->req[2] = (uint8_t)(len >> 16);
	s->req[3] = (uint8_t)(len >> 8);
	s->req[4] = (uint8_t)len;
	memcpy(s->req + 5, msg, len);
	s->req_len = 5 + len;
	s->status = -1;
	s->on_msg = on_msg;
	s->on_done = on_done;
	s->ctx = ctx;
	char timeout[16], bearer[512];
	snprintf(timeout, sizeof(timeout), "%um", timeout_ms);
	nghttp2_nv nv[8] = {
		NV(":method", "POST"), NV(":scheme", tls_client_on() ? "https" : "http"), NV(":path", path),
		NV(":authority", c->authority), NV("content-type", "application/grpc"), NV("te", "trailers"),
	};
	size_t n_nv = 6;
	if (timeout_ms)
		nv[n_nv++] = (nghttp2_nv)NV("grpc-timeout", timeout);
	if (tls_client_opts()->token) {
		snprintf(bearer, sizeof(bearer), "Bearer %s", tls_client_opts()->token);
		nv[n_nv++] = (nghttp2_nv)NV("authorization", bearer);
	}
	nghttp2_data_provider prd = { .source.ptr = s, .read_callback = read_request };
	int32_t id = nghttp2_submit_request(c->session, NULL, nv, n_nv, &prd, s);
	if (id < 0) {
		free(s->req);
		free(s);
		return -1;
	}
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	c->in_flight++;
	return 0;
}

uint32_t atp_grpc_client_in_flight(const atp_grpc_client *c)
{
	return c->in_flight;
}

int atp_grpc_client_fd(const atp_grpc_client *c)
{
	return c->fd;
}

int atp_grpc_client_flush(atp_grpc_client *c)
{
	if (c->broken || send_all(c) == 0)
		return c->broken ? -1 : 0;
	c->broken = true;
	while (c->streams)
		finish(c, c->streams, NGHTTP2_CANCEL);
	return -1;
}

int atp_grpc_client_pump(atp_grpc_client *c, int timeout_ms)
{
	c->completed = 0;
	if (c->broken)
		return -1;
	if (send_all(c) != 0)
		goto broken;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	if (c->out_len || nghttp2_session_want_write(c->session))
		pfd.events |= POLLOUT;
	bool pending = tls_pending(c->fd);  /* decrypted already: poll would not say */
	int rc = poll(&pfd, 1, pending ? 0 : timeout_ms);
	if (rc < 0 && errno != EINTR)
		goto broken;
	if (pending || (rc > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))) {
		uint8_t buf[64 << 10];
		for (;;) {
			ssize_t n = tls_recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0)
				goto broken;
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				goto broken;
			}
			if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0)
				goto broken;
			if ((size_t)n < sizeof(buf) && !tls_client_on())
				break;  /* under TLS a read gives one record: read on until the socket would block */
		}
	}
	if (send_all(c) != 0)
		goto broken;
	return c->completed;
broken:
	if (!c->broken && tls_error(c->fd))
		fprintf(stderr, "grpc: %s: %s\n", c->authority, tls_error(c->fd));
	c->broken = true;
	while (c->streams)  /* every call still open ends broken */
		finish(c, c->streams, NGHTTP2_CANCEL);
	return -1;
}

typedef struct unary {
	uint8_t *reply;
	uint32_t len;
	int status;
	bool done;
	char *message;
	size_t msglen;
} unary;

static void unary_msg(void *ctx, const uint8_t *msg, uint32_t len)
{
	unary *u = ctx;
	free(u->reply);
	u->reply = malloc(len ? len : 1);
	if (u->reply)
		memcpy(u->reply, msg, len);
	u->len = len;
}

static void unary_done(void *ctx, int status, const char *message)
{
	unary *u = ctx;
	u->status = status;
	u->done = true;
	if (u->message)
		snprintf(u->message, u->msglen, "%s", message);
}

int atp_grpc_client_unary(atp_grpc_client *c, const char *path, const uint8_t *msg, uint32_t len,
			  uint32_t timeout_ms, uint8_t **reply, uint32_t *reply_len, char *message, size_t msglen)
{
	unary u = { .status = -1, .message = message, .msglen = msglen };
	if (message && msglen)
		message[0] = 0;
	if (atp_grpc_client_start(c, path, msg, len, timeout_ms, unary_msg, unary_done, &u) < 0)
		return -1;
	while (!u.done)
		if (atp_grpc_client_pump(c, 1000) < 0 && !u.done)
			break;
	*reply = u.reply;
	*reply_len = u.len;
	return u.done ? u.status : -1;
}
