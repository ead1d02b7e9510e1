/*
 * test_tls.c — atp/tls.h in one process: a server session of ours and an
 * OpenSSL client over memory BIOs. The handshake, the client's identity
 * (CN, SAN DNS and URI), a client certificate of another CA (no identity,
 * the reason given), records both ways, and no allocation per message
 * beyond OpenSSL's own: a server session of bare OpenSSL over memory BIOs
 * exchanging the same messages is the floor (OpenSSL 3.0's record layer
 * allocates per record itself; atp_tls must add nothing to that). malloc,
 * calloc and realloc are counted in the test's thread. Certificates made with the openssl
 * command in a temporary directory.
 */
#include "atp/tls.h"

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long allocations;

/*
 * Every malloc, calloc and realloc of this thread while counting is on (the
 * process's own, glibc's underneath). Not under AddressSanitizer, which
 * owns malloc itself: there the count is not taken.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_COUNT 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NO_COUNT 1
#endif
static _Thread_local bool counting;  /* on around the server session's calls only */
static bool measuring;
#ifndef NO_COUNT
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n)
{
	allocations += counting;
	return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
	allocations += counting;
	return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
	allocations += counting;
	return __libc_realloc(p, n);
}
#endif

static char dir[64];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char full[2300];
	snprintf(full, sizeof(full), "cd %s && %s >/dev/null 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s", cmd);
}

static void make_pki(void)
{
	snprintf(dir, sizeof(dir), "/tmp/atp-tls-XXXXXX");
	cr_assert(mkdtemp(dir));
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
	sh("openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=ca", ec);
	sh("openssl req -x509 %s -keyout other.key -out other.pem -days 2 -subj /CN=other", ec);
	sh("openssl req %s -keyout srv.key -out srv.csr -subj /CN=srv", ec);
	sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2");
	sh("openssl req %s -keyout cli.key -out cli.csr -subj /CN=wms-site1", ec);
	sh("printf 'subjectAltName=DNS:wms.example,URI:spiffe://site/wms\\n' > cli.ext && openssl x509 -req -in cli.csr "
	   "-CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 -extfile cli.ext");
	sh("openssl x509 -req -in cli.csr -CA other.pem -CAkey other.key -CAcreateserial -out rogue.pem -days 2");
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

typedef struct pair {
	atp_tls *srv;
	SSL *cli;
	BIO *cin, *cout;  /* the client's ciphertext in and out */
	uint8_t got[1 << 16];
	size_t got_len;
} pair;

static bool collect(void *ctx, const uint8_t *p, size_t n)
{
	pair *q = ctx;
	cr_assert_leq(q->got_len + n, sizeof(q->got));
	memcpy(q->got + q->got_len, p, n);
	q->got_len += n;
	return true;
}

/* Move ciphertext both ways until neither side has more to say. */
static void shuttle(pair *q)
{
	static uint8_t buf[1 << 17];
	for (int round = 0; round < 16; round++) {
		size_t n = (size_t)BIO_ctrl_pending(q->cout);
		bool moved = false;
		if (n) {
			cr_assert_leq(n, sizeof(buf));
			cr_assert_eq(BIO_read(q->cout, buf, (int)n), (int)n);
			counting = measuring;
			int r = atp_tls_feed(q->srv, buf, n, collect, q);
			counting = false;
			cr_assert_geq(r, 0, "%s", atp_tls_error(q->srv));
			moved = true;
		}
		size_t m;
		for (;;) {
			counting = measuring;
			m = atp_tls_take(q->srv, buf, sizeof(buf));
			counting = false;
			if (!m)
				break;
			BIO_write(q->cin, buf, (int)m);
			moved = true;
		}
		if (!SSL_is_init_finished(q->cli))
			SSL_do_handshake(q->cli);
		if (!moved && !BIO_ctrl_pending(q->cout))
			return;
	}
}

static void connect_pair(pair *q, atp_tls_ctx *x, const char *cert, const char *key)
{
	static SSL_CTX *cctx;
	char path[128];
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	SSL_CTX_load_verify_locations(c, path, NULL);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (cert) {
		snprintf(path, sizeof(path), "%s/%s", dir, cert);
		cr_assert_eq(SSL_CTX_use_certificate_file(c, path, SSL_FILETYPE_PEM), 1);
		snprintf(path, sizeof(path), "%s/%s", dir, key);
		cr_assert_eq(SSL_CTX_use_PrivateKey_file(c, path, SSL_FILETYPE_PEM), 1);
	}
	cctx = c;
	memset(q, 0, sizeof(*q));
	q->srv = atp_tls_new(x);
	q->cli = SSL_new(cctx);
	q->cin = BIO_new(BIO_s_mem());
	q->cout = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(q->cin, -1);
	SSL_set_bio(q->cli, q->cin, q->cout);
	SSL_set_connect_state(q->cli);
	SSL_do_handshake(q->cli);
	shuttle(q);
	SSL_CTX_free(cctx);
}

static void free_pair(pair *q)
{
	SSL_free(q->cli);
	atp_tls_free(q->srv);
}

/*
 * The floor: a bare OpenSSL server session over memory BIOs exchanging
 * rounds messages of n bytes with a client, after 100 rounds of warm-up;
 * the allocations of its side counted.
 */
static long bare_openssl_allocations(const uint8_t *msg, size_t n, int rounds)
{
	char cert[128], key[128], ca[128];
	snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
	cr_assert_eq(SSL_CTX_use_certificate_file(sc, cert, SSL_FILETYPE_PEM), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(sc, key, SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION);
	SSL_CTX_set_num_tickets(sc, 0);
	SSL_CTX_load_verify_locations(cc, ca, NULL);
	SSL *s = SSL_new(sc), *c = SSL_new(cc);
	BIO *sr = BIO_new(BIO_s_mem()), *sw = BIO_new(BIO_s_mem()), *cr = BIO_new(BIO_s_mem()), *cw = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(sr, -1);
	BIO_set_mem_eof_return(cr, -1);
	SSL_set_bio(s, sr, sw);
	SSL_set_bio(c, cr, cw);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	static uint8_t buf[1 << 17];
	int k;
	for (int i = 0; i < 8; i++) {
		SSL_do_handshake(c);
		while ((k = BIO_read(cw, buf, sizeof(buf))) > 0)
			BIO_write(sr, buf, k);
		SSL_do_handshake(s);
		while ((k = BIO_read(sw, buf, sizeof(buf))) > 0)
			BIO_write(cr, buf, k);
	}
	cr_assert(SSL_is_init_finished(s) && SSL_is_init_finished(c));
	long before = 0;
	for (int i = 0; i < 100 + rounds; i++) {
		if (i == 100)
			before = allocations;
		cr_assert_eq(SSL_write(c, msg, (int)n), (int)n);
		k = BIO_read(cw, buf, sizeof(buf));
		counting = true;
		BIO_write(sr, buf, k);
		int r = SSL_read(s, buf, sizeof(buf));
		SSL_write(s, msg, (int)n);
		k = BIO_read(sw, buf, sizeof(buf));
		counting = false;
		cr_assert_eq(r, (int)n);
		BIO_write(cr, buf, k);
		cr_assert_eq(SSL_read(c, buf, sizeof(buf)), (int)n);
	}
	long floor = allocations - before;
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sc);
	SSL_CTX_free(cc);
	return floor;
}

static atp_tls_ctx *server(void)
{
	atp_tls_config cfg = { .min_version = 1 };
	snprintf(cfg.cert, sizeof(cfg.cert), "%s/srv.pem", dir);
	snprintf(cfg.key, sizeof(cfg.key), "%s/srv.key", dir);
	snprintf(cfg.client_ca, sizeof(cfg.client_ca), "%s/ca.pem", dir);
	char err[256];
	atp_tls_ctx *x = atp_tls_ctx_new(&cfg, false, err, sizeof(err));
	cr_assert(x, "%s", err);
	return x;
}

Test(tls, handshake_identity_records_and_no_allocation_beyond_openssls, .init = make_pki, .fini = cleanup)
{
	counting = true;
	atp_tls_ctx *x = server();
	counting = false;
#ifndef NO_COUNT
	cr_assert_gt(allocations, 0, "the counting works");
#endif
	cr_assert(atp_tls_ctx_asks_clients(x));
	cr_assert_gt(atp_tls_ctx_not_after(x), 0);
	pair q;
	connect_pair(&q, x, "cli.pem", "cli.key");
	cr_assert(atp_tls_ready(q.srv));
	cr_assert(SSL_is_init_finished(q.cli));
	const char *const *names;
	const char *why;
	cr_assert_eq(atp_tls_peer_names(q.srv, &names, &why), 3);
	cr_assert_str_eq(names[0], "wms-site1");
	cr_assert_str_eq(names[1], "wms.example");
	cr_assert_str_eq(names[2], "spiffe://site/wms");

	static uint8_t msg[4096], back[4096];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	long before = 0;
	for (int i = 0; i < 1000; i++) {
		if (i == 100) {
			measuring = true;  /* the buffers have their size by now */
			before = allocations;
		}
		cr_assert_eq(SSL_write(q.cli, msg, sizeof(msg)), (int)sizeof(msg));
		q.got_len = 0;
		shuttle(&q);
		cr_assert_eq(q.got_len, sizeof(msg));
		cr_assert_eq(memcmp(q.got, msg, sizeof(msg)), 0);
		counting = measuring;
		int w = atp_tls_write(q.srv, msg, sizeof(msg));
		counting = false;
		cr_assert_eq(w, 0);
		shuttle(&q);
		cr_assert_eq(SSL_read(q.cli, back, sizeof(back)), (int)sizeof(back));
		cr_assert_eq(memcmp(back, msg, sizeof(msg)), 0);
	}
	measuring = false;
	long ours = allocations - before, floor = bare_openssl_allocations(msg, sizeof(msg), 900);
	cr_assert_leq(ours, floor, "%ld allocations in 900 round trips through atp_tls, %ld through bare OpenSSL", ours,
		      floor);

	/* close_notify: the end of the stream */
	SSL_shutdown(q.cli);
	static uint8_t buf[4096];
	size_t n = (size_t)BIO_read(q.cout, buf, sizeof(buf));
	cr_assert_eq(atp_tls_feed(q.srv, buf, n, collect, &q), 1);
	free_pair(&q);
	atp_tls_ctx_free(x);
}

Test(tls, a_certificate_of_another_ca_gives_no_identity, .init = make_pki, .fini = cleanup)
{
	atp_tls_ctx *x = server();
	pair q;
	connect_pair(&q, x, "rogue.pem", "cli.key");
	cr_assert(atp_tls_ready(q.srv), "the handshake completes: the refusal comes as a status");
	const char *const *names;
	const char *why;
	cr_assert_eq(atp_tls_peer_names(q.srv, &names, &why), 0);
	cr_assert(strstr(why, "client certificate refused"), "%s", why);
	free_pair(&q);
	connect_pair(&q, x, NULL, NULL);
	cr_assert_eq(atp_tls_peer_names(q.srv, &names, &why), 0);
	cr_assert_str_eq(why, "no client certificate");
	cr_assert_eq(atp_tls_write(q.srv, (const uint8_t *)"x", 1), 0);
	free_pair(&q);
	atp_tls_ctx_free(x);
}

Test(tls, garbage_fails_the_session_with_a_reason, .init = make_pki, .fini = cleanup)
{
	atp_tls_ctx *x = server();
	atp_tls *t = atp_tls_new(x);
	cr_assert_eq(atp_tls_write(t, (const uint8_t *)"x", 1), -EAGAIN, "nothing goes before the handshake");
	static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	pair q = { 0 };
	cr_assert_eq(atp_tls_feed(t, junk, sizeof(junk) - 1, collect, &q), -EPROTO);
	cr_assert(strstr(atp_tls_error(t), "TLS handshake"), "%s", atp_tls_error(t));
	cr_assert_eq(q.got_len, 0);
	atp_tls_free(t);
	char err[256];
	atp_tls_config bad = { .min_version = 1 };
	snprintf(bad.cert, sizeof(bad.cert), "%s/srv.pem", dir);
	snprintf(bad.key, sizeof(bad.key), "%s/cli.key", dir);
	cr_assert_null(atp_tls_ctx_new(&bad, false, err, sizeof(err)));
	cr_assert(strstr(err, "tls_key"), "%s", err);
	cr_assert_eq(atp_tls_ctx_reload(x, err, sizeof(err)), 0, "%s", err);
	atp_tls_ctx_free(x);
}
