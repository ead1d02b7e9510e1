/*
 * security.h — atpd's TLS contexts, authorization file and user, as the
 * settings say (settings.h: tls_*, authz_file, user): made at start, given
 * to the listeners, reloaded on SIGHUP, and the server certificate's expiry
 * watched (a warning a day, and a metric, within 14 days of it). Main
 * thread (the loop's).
 */
#ifndef ATPD_SECURITY_H
#define ATPD_SECURITY_H

#include "atp/auth.h"
#include "atp/grpc_server.h"
#include "atp/stream_server.h"
#include "atp/tls.h"
#include "settings.h"

#include <stddef.h>
#include <stdint.h>

#define SECURITY_EXPIRY_WARN_S (14 * 86400)

typedef struct atpd_security {
	atp_tls_ctx *stream_tls, *grpc_tls;  /* NULL: plaintext */
	atp_auth *auth;                      /* NULL: no authorization file */
	uint64_t next_expiry_check_ms;
} atpd_security;

/*
 * Started as root with `user` set: become that user, its group and
 * supplementary groups, with no way back (no_new_privs). As root without
 * it: a warning. 0, or -1 with err.
 */
int security_drop_privileges(const settings *s, char *err, size_t errlen);
/* The contexts and the authorization file of s: 0, or -1 with err (nothing held). */
int security_open(atpd_security *sec, const settings *s, char *err, size_t errlen);
/* Hand them to the listeners (either may be NULL). */
void security_apply(const atpd_security *sec, atp_stream_server *srv, atp_grpc_server *api);
/*
 * SIGHUP: the certificates and keys read again (established connections
 * keep theirs) and the authorization file (fresh's path) read again; what
 * fails to load keeps what was, with an error line. Applied to the
 * listeners.
 */
void security_reload(atpd_security *sec, const settings *fresh, atp_stream_server *srv, atp_grpc_server *api);
/* Once in a while (now: the monotonic ms): the expiry warning. */
void security_tick(atpd_security *sec, uint64_t now_ms);
/* The server certificate's notAfter (Unix seconds), 0 without TLS. */
int64_t security_not_after(const atpd_security *sec);
void security_close(atpd_security *sec);

#endif
