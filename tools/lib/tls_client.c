/* tls_client.c — the tools' TLS sockets and credentials (see tls_client.h). */
#define _GNU_SOURCE
#include "tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FDS_MAX 65536

/* A socket's session and why it last failed. */
typedef struct session {
	SSL *ssl;
	char why[160];
} session;

static tls_client_options opts;
static SSL_CTX *ctx;
static session *session_of[FDS_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static session *of(int fd)
{
	return fd >= 0 && fd < FDS_MAX ? session_of[fd] : NULL;
}

const char tls_client_usage[] =
	"TLS and credentials, for every command that connects (or ATP_TLS_CA, ATP_TLS_CERT, ATP_TLS_KEY, ATP_TOKEN):\n"
	"  --tls-ca FILE     speak TLS, verifying the server against these CAs\n"
	"  --tls-cert FILE   --tls-key FILE   a client certificate and its key (mutual TLS)\n"
	"  --token TOKEN     a bearer token for gRPC calls (authorization: Bearer TOKEN)\n";

void tls_client_args(int *argc, char **argv)
{
	opts = (tls_client_options){ getenv("ATP_TLS_CA"), getenv("ATP_TLS_CERT"), getenv("ATP_TLS_KEY"), getenv("ATP_TOKEN") };
	static const char *const names[] = { "--tls-ca", "--tls-cert", "--tls-key", "--token" };
	const char **fields[] = { &opts.ca, &opts.cert, &opts.key, &opts.token };
	int w = 1;
	for (int i = 1; i < *argc; i++) {
		int k = 0;
		while (k < 4 && strcmp(argv[i], names[k]) != 0)
			k++;
		if (k == 4) {
			argv[w++] = argv[i];
			continue;
		}
		if (i + 1 >= *argc) {
			fprintf(stderr, "%s wants a value\n", names[k]);
			exit(2);
		}
		*fields[k] = argv[++i];
	}
	argv[w] = NULL;
	*argc = w;
	if (opts.ca && !*opts.ca)
		opts.ca = NULL;
	if (opts.token && !*opts.token)
		opts.token = NULL;
}

const tls_client_options *tls_client_opts(void)
{
	return &opts;
}

bool tls_client_on(void)
{
	return opts.ca != NULL;
}

static void ssl_error(char *err, size_t errlen, const char *what)
{
	char buf[200];
	ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

/* The one context, made at the first attach (under lock). */
static SSL_CTX *context(char *err, size_t errlen)
{
	if (ctx)
		return ctx;
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (!c) {
		ssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(c, opts.ca, NULL) != 1) {
		ssl_error(err, errlen, opts.ca);
		goto fail;
	}
	if ((opts.cert || opts.key) &&
	    (SSL_CTX_use_certificate_chain_file(c, opts.cert ? opts.cert : opts.key) != 1 ||
	     SSL_CTX_use_PrivateKey_file(c, opts.key ? opts.key : opts.cert, SSL_FILETYPE_PEM) != 1)) {
		ssl_error(err, errlen, "--tls-cert/--tls-key");
		goto fail;
	}
	return ctx = c;
fail:
	SSL_CTX_free(c);
	return NULL;
}

int tls_attach(int fd, const char *host, bool h2, char *err, size_t errlen)
{
	if (!tls_client_on())
		return 0;
	if (fd < 0 || fd >= FDS_MAX) {
		snprintf(err, errlen, "descriptor %d out of range", fd);
		return -1;
	}
	pthread_mutex_lock(&lock);
	SSL_CTX *c = context(err, errlen);
	session *se = c ? calloc(1, sizeof(*se)) : NULL;
	SSL *s = se ? SSL_new(c) : NULL;
	if (c && !s) {
		ssl_error(err, errlen, "SSL_new");
		free(se);
	}
	if (s) {
		struct in6_addr a6;
		struct in_addr a4;
		X509_VERIFY_PARAM *vp = SSL_get0_param(s);
		if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(vp, host);
		} else {
			X509_VERIFY_PARAM_set1_host(vp, host, 0);
			SSL_set_tlsext_host_name(s, host);
		}
		if (h2)
			SSL_set_alpn_protos(s, (const unsigned char *)"\x02h2", 3);
		SSL_set_fd(s, fd);
		SSL_set_connect_state(s);
		se->ssl = s;
		session_of[fd] = se;
	}
	pthread_mutex_unlock(&lock);
	return s ? 0 : -1;
}

/* An SSL_* result as send/recv would give it (errno EAGAIN when the socket would block). */
static ssize_t result(session *se, int r)
{
	if (r > 0)
		return r;
	switch (SSL_get_error(se->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (!errno)
			errno = ECONNRESET;
		return errno == ECONNRESET || errno == EPIPE ? 0 : -1;
	default: {
		long v = SSL_get_verify_result(se->ssl);
		if (v != X509_V_OK)
			snprintf(se->why, sizeof(se->why), "server certificate: %s", X509_verify_cert_error_string(v));
		else
			ssl_error(se->why, sizeof(se->why), "TLS");
		errno = EPROTO;
		return -1;
	}
	}
}

ssize_t tls_send(int fd, const void *p, size_t n)
{
	session *se = of(fd);
	if (!se)
		return send(fd, p, n, MSG_NOSIGNAL);
	errno = 0;
	return result(se, SSL_write(se->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n));
}

ssize_t tls_recv(int fd, void *p, size_t n, int flags)
{
	session *se = of(fd);
	if (!se)
		return recv(fd, p, n, flags);
	errno = 0;
	return result(se, SSL_read(se->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n));
}

bool tls_pending(int fd)
{
	session *se = of(fd);
	return se && SSL_pending(se->ssl) > 0;
}

const char *tls_error(int fd)
{
	session *se = of(fd);
	return se && se->why[0] ? se->why : NULL;
}

int tls_close(int fd)
{
	session *se = of(fd);
	if (se) {
		pthread_mutex_lock(&lock);
		SSL_free(se->ssl);
		free(se);
		session_of[fd] = NULL;
		pthread_mutex_unlock(&lock);
	}
	return close(fd);
}
