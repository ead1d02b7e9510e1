/* tls.c — TLS sessions over memory BIOs for the io_uring loop (see atp/tls.h). */
#include "atp/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct atp_tls_ctx {
	atp_tls_config cfg;
	bool h2;
	SSL_CTX *ssl;
	int64_t not_after;
	char subject[256];
};

struct atp_tls {
	SSL *ssl;
	BIO *rbio, *wbio;            /* ciphertext in, ciphertext out (owned by ssl) */
	bool ready, asks;
	unsigned n_names;
	const char *name_ptr[ATP_TLS_NAMES_MAX];
	char names[ATP_TLS_NAMES_MAX][ATP_TLS_NAME_MAX];
	char why[160];
};

/* OpenSSL's newest error, one line (the queue cleared). */
static void ssl_error(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	char buf[200];
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "failed");
	ERR_clear_error();
}

/* A failed client verification does not break the handshake: the connection is left without identity (atp/tls.h). */
static int verify_any(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		     unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char h2[] = "\x02h2";
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, h2, sizeof(h2) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;  /* gRPC is HTTP/2 only */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

/* A context from the files of cfg: NULL with err. */
static SSL_CTX *build(const atp_tls_config *cfg, bool h2, char *err, size_t errlen)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c) {
		ssl_error("SSL_CTX_new", err, errlen);
		return NULL;
	}
	char what[ATP_TLS_PATH_MAX + 32];
	SSL_CTX_set_min_proto_version(c, cfg->min_version ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(c, 0);  /* no resumption: nothing is sent after the handshake unasked */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(c, cfg->cert) != 1) {
		snprintf(what, sizeof(what), "tls_cert %s", cfg->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c, cfg->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(c) != 1) {
		snprintf(what, sizeof(what), "tls_key %s", cfg->key);
		goto fail;
	}
	if (cfg->ciphers[0] && SSL_CTX_set_cipher_list(c, cfg->ciphers) != 1) {
		snprintf(what, sizeof(what), "tls_ciphers %s", cfg->ciphers);
		goto fail;
	}
	if (cfg->ciphersuites[0] && SSL_CTX_set_ciphersuites(c, cfg->ciphersuites) != 1) {
		snprintf(what, sizeof(what), "tls_ciphersuites %s", cfg->ciphersuites);
		goto fail;
	}
	if (cfg->groups[0] && SSL_CTX_set1_groups_list(c, cfg->groups) != 1) {
		snprintf(what, sizeof(what), "tls_groups %s", cfg->groups);
		goto fail;
	}
	if (cfg->client_ca[0]) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
		if (!names || SSL_CTX_load_verify_locations(c, cfg->client_ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			snprintf(what, sizeof(what), "tls_client_ca %s", cfg->client_ca);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(c, names);
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verify_any);
	}
	if (h2)
		SSL_CTX_set_alpn_select_cb(c, select_h2, NULL);
	return c;
fail:
	ssl_error(what, err, errlen);
	SSL_CTX_free(c);
	return NULL;
}

static void describe(atp_tls_ctx *x)
{
	X509 *cert = SSL_CTX_get0_certificate(x->ssl);
	struct tm tm;
	x->not_after = 0;
	x->subject[0] = 0;
	if (!cert)
		return;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		x->not_after = (int64_t)timegm(&tm);
	X509_NAME_oneline(X509_get_subject_name(cert), x->subject, sizeof(x->subject));
}

atp_tls_ctx *atp_tls_ctx_new(const atp_tls_config *cfg, bool h2, char *err, size_t errlen)
{
	atp_tls_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->cfg = *cfg;
	x->h2 = h2;
	if (!(x->ssl = build(cfg, h2, err, errlen))) {
		free(x);
		return NULL;
	}
	describe(x);
	return x;
}

int atp_tls_ctx_reload(atp_tls_ctx *x, char *err, size_t errlen)
{
	SSL_CTX *c = build(&x->cfg, x->h2, err, errlen);
	if (!c)
		return -1;
	SSL_CTX_free(x->ssl);  /* sessions of established connections hold their own reference */
	x->ssl = c;
	describe(x);
	return 0;
}

void atp_tls_ctx_free(atp_tls_ctx *x)
{
	if (!x)
		return;
	SSL_CTX_free(x->ssl);
	free(x);
}

int64_t atp_tls_ctx_not_after(const atp_tls_ctx *x)
{
	return x->not_after;
}

const char *atp_tls_ctx_subject(const atp_tls_ctx *x)
{
	return x->subject;
}

bool atp_tls_ctx_asks_clients(const atp_tls_ctx *x)
{
	return x->cfg.client_ca[0] != 0;
}

atp_tls *atp_tls_new(atp_tls_ctx *x)
{
	atp_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->asks = atp_tls_ctx_asks_clients(x);
	t->ssl = SSL_new(x->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		SSL_free(t->ssl);
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		free(t);
		ERR_clear_error();
		return NULL;
	}
	BIO_set_mem_eof_return(t->rbio, -1);  /* empty: "retry", not end of file */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_accept_state(t->ssl);
	return t;
}

void atp_tls_free(atp_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* One ASN1 string as a name, when it is printable and fits. */
static void add_name(atp_tls *t, const unsigned char *p, int len)
{
	if (t->n_names == ATP_TLS_NAMES_MAX || len <= 0 || len >= ATP_TLS_NAME_MAX)
		return;
	for (int i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] == 0x7f)
			return;  /* control bytes, spaces or an embedded NUL: not a name we match */
	memcpy(t->names[t->n_names], p, (size_t)len);
	t->names[t->n_names][len] = 0;
	t->name_ptr[t->n_names] = t->names[t->n_names];
	t->n_names++;
}

/* The handshake is done: the client's names, or why it has none. */
static void identify(atp_tls *t)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert) {
		snprintf(t->why, sizeof(t->why), "%s", t->asks ? "no client certificate" : "client certificates not asked");
		return;
	}
	long v = SSL_get_verify_result(t->ssl);
	if (v != X509_V_OK) {
		snprintf(t->why, sizeof(t->why), "client certificate refused: %s", X509_verify_cert_error_string(v));
		return;
	}
	X509_NAME *subject = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (i >= 0) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
		add_name(t, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
	}
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int k = 0; sans && k < sk_GENERAL_NAME_num(sans); k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
		if (g->type == GEN_DNS || g->type == GEN_URI)
			add_name(t, ASN1_STRING_get0_data(g->d.ia5), ASN1_STRING_length(g->d.ia5));
	}
	GENERAL_NAMES_free(sans);
	if (!t->n_names)
		snprintf(t->why, sizeof(t->why), "client certificate without a usable CN or subjectAltName");
}

static int fail(atp_tls *t, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160];
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(t->why, sizeof(t->why), "%s: %s", what, e ? buf : "protocol error");
	ERR_clear_error();
	return -EPROTO;
}

int atp_tls_feed(atp_tls *t, const uint8_t *p, size_t n, atp_tls_plain_fn fn, void *ctx)
{
	static _Thread_local uint8_t plain[16384];
	if (n && BIO_write(t->rbio, p, (int)n) != (int)n)
		return -ENOMEM;
	if (!t->ready) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			return fail(t, "TLS handshake");
		}
		t->ready = true;
		identify(t);
	}
	for (;;) {
		int r = SSL_read(t->ssl, plain, sizeof(plain));
		if (r > 0) {
			if (!fn(ctx, plain, (size_t)r))
				return 0;
			continue;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN)
			return 1;
		return fail(t, "TLS record");
	}
}

int atp_tls_write(atp_tls *t, const uint8_t *p, size_t n)
{
	if (!t->ready)
		return -EAGAIN;
	while (n) {
		int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
		int r = SSL_write(t->ssl, p, chunk);  /* into the memory BIO: whole, unless memory runs out */
		if (r <= 0) {
			ERR_clear_error();
			return -ENOMEM;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

size_t atp_tls_take(atp_tls *t, uint8_t *buf, size_t cap)
{
	size_t pending = BIO_ctrl_pending(t->wbio);
	int r = BIO_read(t->wbio, buf, (int)(pending < cap ? pending : cap));
	return r > 0 ? (size_t)r : 0;
}

bool atp_tls_has_output(const atp_tls *t)
{
	return BIO_ctrl_pending(t->wbio) > 0;
}

bool atp_tls_ready(const atp_tls *t)
{
	return t->ready;
}

const char *atp_tls_error(const atp_tls *t)
{
	return t->why;
}

unsigned atp_tls_peer_names(const atp_tls *t, const char *const **names, const char **why)
{
	*names = t->name_ptr;
	if (why)
		*why = t->why;
	return t->n_names;
}
