/*
 * atp/auth.h — who may do what: the authorization file (setting
 * authz_file), read at start and again on SIGHUP.
 *
 * An identity is a name: a client certificate's subject CN or one of its
 * subjectAltName DNS or URI entries (atp/tls.h), or the name of a bearer
 * token. The file grants each identity what it may do; whatever it does
 * not grant is refused (default deny). Lines, `#` starting a comment:
 *
 *   token NAME sha256:HEX        a bearer token whose SHA-256 is HEX is NAME
 *                                (`printf %s TOKEN | sha256sum`; only the hash is stored)
 *   allow NAME call METHOD...    gRPC methods: GetAtp GetAtpBatch Scan Reserve
 *                                Release Subscribe Snapshot Redrive Purge
 *                                DeadLetters History, or the groups read
 *                                (GetAtp GetAtpBatch Scan), write (Reserve
 *                                Release), admin (Snapshot Redrive Purge
 *                                DeadLetters History), or * (every one)
 *   allow NAME source PATTERN... event sources it may send as over the
 *                                stream (shell patterns: site1-*); never a
 *                                reserved '@' source, whatever the pattern
 *   allow NAME channel CHANNEL... channels it may Subscribe to (* every
 *                                one); implies the Subscribe call
 *
 * grpc.health.v1.Health/Check is open to every client (it tells nothing).
 * Errors name the file and line. Immutable once loaded: a reload builds a
 * new one and the servers switch to it between two turns of the loop.
 */
#ifndef ATP_AUTH_H
#define ATP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a call may be: bits of an identity's grant. */
enum {
	ATP_AUTH_GET_ATP = 1u << 0,
	ATP_AUTH_GET_ATP_BATCH = 1u << 1,
	ATP_AUTH_SCAN = 1u << 2,
	ATP_AUTH_RESERVE = 1u << 3,
	ATP_AUTH_RELEASE = 1u << 4,
	ATP_AUTH_SUBSCRIBE = 1u << 5,
	ATP_AUTH_SNAPSHOT = 1u << 6,
	ATP_AUTH_REDRIVE = 1u << 7,
	ATP_AUTH_PURGE = 1u << 8,
	ATP_AUTH_DEAD_LETTERS = 1u << 9,
	ATP_AUTH_HISTORY = 1u << 10,
	ATP_AUTH_GET_ATP_PROFILE = 1u << 11,
};

#define ATP_AUTH_NONE (-1)

typedef struct atp_auth atp_auth;

/* The file at path: NULL with err ("path:line: why"). */
atp_auth *atp_auth_load(const char *path, char *err, size_t errlen);
void atp_auth_free(atp_auth *a);
/* Identities and tokens it holds. */
unsigned atp_auth_identities(const atp_auth *a);
unsigned atp_auth_tokens(const atp_auth *a);

/* The identity granted to any of a certificate's names, or ATP_AUTH_NONE. */
int atp_auth_find(const atp_auth *a, const char *const *names, unsigned n);
/* The identity of a bearer token, or ATP_AUTH_NONE. */
int atp_auth_token(const atp_auth *a, const uint8_t *token, size_t len);
const char *atp_auth_name(const atp_auth *a, int id);

bool atp_auth_may_call(const atp_auth *a, int id, uint32_t call);
bool atp_auth_may_send(const atp_auth *a, int id, const char *source, size_t len);
bool atp_auth_may_subscribe(const atp_auth *a, int id, const char *channel, size_t len);

/*
 * A refusal: counted, and logged as a warning naming the identity (or the
 * peer's missing credentials), the operation and why, in one format, so
 * atp_log's limit (20 lines a second per format) bounds a flood of them.
 * unauthenticated: no or bad credentials; else a known identity not allowed.
 */
void atp_auth_refused(bool unauthenticated, const char *who, const char *op, const char *why);
typedef struct atp_auth_stats {
	uint64_t unauthenticated, denied;
} atp_auth_stats;
/* The refusals so far (the loop's thread writes them; metrics read them). */
atp_auth_stats atp_auth_refusals(void);

#ifdef __cplusplus
}
#endif

#endif
