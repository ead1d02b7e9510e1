/*
 * atp/tls.h — TLS for the listeners (the event stream and gRPC), with
 * OpenSSL 3 driven through memory BIOs from the io_uring loop: the loop
 * receives ciphertext into its provided buffers and feeds it here; what a
 * session produces (handshake records, encrypted replies) is taken from
 * here and sent by the loop. No thread, no socket I/O in this module.
 *
 * Why memory BIOs and not kTLS: the handshake must run on the loop's
 * multishot receives, whose buffers may already hold the client's first
 * records after its Finished; handing the socket to the kernel then needs
 * the record sequence numbers and any bytes read past the handshake put
 * back, which OpenSSL does not expose with memory BIOs; and the tls
 * module is not loaded on every host (containers cannot load it). The
 * cost of userspace records is measured in bench/README ("TLS").
 *
 * Client certificates: when client_ca is set, a client may present one; it
 * is verified against client_ca, but a failed verification does not break
 * the handshake: the connection gets no identity, and every call or Hello
 * on it is refused UNAUTHENTICATED naming why (unknown CA, expired...), so
 * the client learns it from a status rather than from a reset. A
 * session's identity names are the certificate's subject CN and each of
 * its subjectAltName DNS and URI entries.
 *
 * A context is replaced by atp_tls_ctx_reload (SIGHUP): new connections
 * get the new certificate, established ones keep theirs (OpenSSL counts
 * the references). One thread: the loop's.
 */
#ifndef ATP_TLS_H
#define ATP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_TLS_PATH_MAX 256
#define ATP_TLS_NAMES_MAX 8
#define ATP_TLS_NAME_MAX 128

typedef struct atp_tls_config {
	char cert[ATP_TLS_PATH_MAX];      /* PEM chain; "": no TLS */
	char key[ATP_TLS_PATH_MAX];       /* PEM private key */
	char client_ca[ATP_TLS_PATH_MAX]; /* PEM CAs that sign client certificates; "": none asked */
	int min_version;                  /* 0: TLS 1.2, 1: TLS 1.3 */
	char ciphers[256];                /* TLS 1.2 cipher list (OpenSSL syntax); "": OpenSSL's default */
	char ciphersuites[256];           /* TLS 1.3 suites; "": OpenSSL's default */
	char groups[128];                 /* key exchange groups, e.g. "X25519:P-256"; "": default */
} atp_tls_config;

typedef struct atp_tls_ctx atp_tls_ctx;
typedef struct atp_tls atp_tls;

/* A server context from cfg (cfg->cert set); h2: ALPN "h2" is selected (gRPC). NULL with err. */
atp_tls_ctx *atp_tls_ctx_new(const atp_tls_config *cfg, bool h2, char *err, size_t errlen);
/* Read the files again: 0, or -1 with err (the context keeps what it had). */
int atp_tls_ctx_reload(atp_tls_ctx *x, char *err, size_t errlen);
void atp_tls_ctx_free(atp_tls_ctx *x);
/* The server certificate's notAfter (Unix seconds) and its subject, one line. */
int64_t atp_tls_ctx_not_after(const atp_tls_ctx *x);
const char *atp_tls_ctx_subject(const atp_tls_ctx *x);
/* Whether client certificates are asked for (client_ca set). */
bool atp_tls_ctx_asks_clients(const atp_tls_ctx *x);

/* A server session of an accepted connection; NULL when out of memory. */
atp_tls *atp_tls_new(atp_tls_ctx *x);
void atp_tls_free(atp_tls *t);

/* What atp_tls_feed hands over: plaintext bytes; false stops the feed (the connection is closing). */
typedef bool (*atp_tls_plain_fn)(void *ctx, const uint8_t *p, size_t n);
/*
 * Ciphertext received: the handshake goes on, and the plaintext it
 * carries goes to fn. 0; 1 once the peer sent close_notify; -EPROTO when
 * the session failed (a bad record, a handshake failure: why in
 * atp_tls_error; an alert for the peer may wait in atp_tls_take);
 * -ENOMEM.
 */
int atp_tls_feed(atp_tls *t, const uint8_t *p, size_t n, atp_tls_plain_fn fn, void *ctx);
/* Plaintext to send: encrypted into records, taken with atp_tls_take. 0 or -ENOMEM (-EAGAIN before the handshake is done). */
int atp_tls_write(atp_tls *t, const uint8_t *p, size_t n);
/*
 * Up to cap bytes of the ciphertext the session produced, moved into buf
 * (the caller's, so that a send in flight never reads memory freed with
 * the session): how many.
 */
size_t atp_tls_take(atp_tls *t, uint8_t *buf, size_t cap);
/* Whether ciphertext waits to be taken. */
bool atp_tls_has_output(const atp_tls *t);
/* The handshake is done: application data flows. */
bool atp_tls_ready(const atp_tls *t);
/* Why the session failed, one line. */
const char *atp_tls_error(const atp_tls *t);

/*
 * The client's identity once ready: its certificate's names (CN first,
 * then SAN DNS and URI entries) when it presented one that verified;
 * else 0 names and why in *why ("no client certificate", "certificate
 * has expired", ...).
 */
unsigned atp_tls_peer_names(const atp_tls *t, const char *const **names, const char **why);

#ifdef __cplusplus
}
#endif

#endif
