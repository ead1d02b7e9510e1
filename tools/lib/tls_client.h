/*
 * tls_client.h — TLS and credentials for the tools' connections (atpctl,
 * atp-loadgen, atp-subload, atp-bridge): the options --tls-ca FILE,
 * --tls-cert FILE, --tls-key FILE and --token TOKEN (or the environment's
 * ATP_TLS_CA, ATP_TLS_CERT, ATP_TLS_KEY, ATP_TOKEN), taken out of a
 * command line wherever they stand, and a socket layer that speaks TLS on
 * the sockets attached to it and plaintext on the others.
 *
 * TLS is on when a CA is given (the server's certificate is verified
 * against it and against the host name or address connected to); a
 * certificate and key make it mutual. The token goes in every gRPC call's
 * `authorization: Bearer` header. Sockets may be non-blocking:
 * tls_send/tls_recv then fail with EAGAIN as send/recv do, and
 * tls_pending says when decrypted bytes wait that poll() would not show.
 * A socket is used by one thread at a time; attaching and closing take a
 * lock.
 */
#ifndef ATP_TLS_CLIENT_H
#define ATP_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_client_options {
	const char *ca, *cert, *key, *token;
} tls_client_options;

/* Remove the TLS options from argv (argc updated), over the environment's; exits 2 on a missing value. */
void tls_client_args(int *argc, char **argv);
/* The options in force (after tls_client_args), and whether TLS is on. */
const tls_client_options *tls_client_opts(void);
bool tls_client_on(void);
/* Usage lines for --help. */
extern const char tls_client_usage[];

/*
 * A connected (or connecting) socket speaks TLS from now on when TLS is
 * on: host is what the certificate must name; h2 offers ALPN "h2". 0, or
 * -1 with err (a bad CA, certificate or key file).
 */
int tls_attach(int fd, const char *host, bool h2, char *err, size_t errlen);
ssize_t tls_send(int fd, const void *p, size_t n);
/* flags: recv()'s, for a plaintext socket (a TLS one reads as its O_NONBLOCK says). */
ssize_t tls_recv(int fd, void *p, size_t n, int flags);
/* Decrypted bytes wait (read them before polling). */
bool tls_pending(int fd);
/* Why the last TLS failure on fd happened (certificate refused, ...), or NULL. */
const char *tls_error(int fd);
/* close(fd), its TLS session first. */
int tls_close(int fd);

#endif
