/*
 * atp/status.h — result codes shared by every module.
 *
 * Errors are negative (kernel style), 0 is success, positive codes are
 * outcomes that are not errors (a duplicate is acknowledged, not refused).
 * Each code has a stable name and a one-line human message.
 */
#ifndef ATP_STATUS_H
#define ATP_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum atp_status {
	ATP_OK = 0,
	ATP_DUPLICATE = 1,        /* seq at or below the source's high-water mark */

	ATP_E_GAP = -1,           /* seq beyond hwm + 1: resend from the expected seq */
	ATP_E_TYPE = -2,          /* unknown event type */
	ATP_E_QTY = -3,           /* qty out of the range its type allows */
	ATP_E_SKU = -4,           /* SKU missing, too long or with control bytes */
	ATP_E_LOCATION = -5,      /* location missing, too long or with control bytes */
	ATP_E_SOURCE = -6,        /* source missing, too long or with control bytes */
	ATP_E_REF = -7,           /* reservation ref missing where required, or bad */
	ATP_E_TO_LOCATION = -8,   /* TRANSFER target missing, bad, or equal to location */
	ATP_E_REASON = -9,        /* ADJUST reason missing or bad */
	ATP_E_SEQ = -10,          /* seq is 0 */
	ATP_E_EVENT_ID = -11,     /* no event id (0 and no key), both, or a bad key */
	ATP_E_OVERFLOW = -12,     /* a bucket would leave [-ATP_BUCKET_MAX, ATP_BUCKET_MAX] */
	ATP_E_POSITIONS_FULL = -13,
	ATP_E_LINES_FULL = -14,   /* reservation line capacity reached */
	ATP_E_SOURCES_FULL = -15,
	ATP_E_NOMEM = -16,
	ATP_E_INVAL = -17,        /* bad argument to an API (not an event) */
	ATP_E_IO = -18,           /* the engine's storage failed: nothing more is accepted */
	ATP_E_PROTOCOL = -19,     /* a frame failed verification or came out of order */
	ATP_E_LIMIT = -20,        /* a frame, batch or connection count beyond a configured limit */
	ATP_E_SUPERSEDED = -21,   /* a newer connection claimed this source */
	ATP_E_TIMEOUT = -22,      /* a connection idle, or not reading, for too long */
	ATP_E_SHUTDOWN = -23,     /* the server is stopping */
	ATP_E_UNAUTHENTICATED = -24, /* no or bad credentials (atp/auth.h) */
	ATP_E_FORBIDDEN = -25,    /* a known identity not allowed to do this (send as this source) */
	ATP_E_DATE = -26,         /* a date missing where required, set where not allowed, or with partial */
	ATP_E_SUPPLY_FULL = -27,  /* inbound supply capacity reached (atp/inbound.h) */
	ATP_E_NO_POSITION = -28,  /* a RESERVE with ATP_EVF_KNOWN of a position that does not exist */

	ATP_E_LAST = -28,
};

/* "ATP_E_GAP" etc.; "ATP_E_UNKNOWN" for a code outside the enum. */
const char *atp_status_name(int status);
/* A one-line explanation, e.g. "sequence gap: resend from the expected seq". */
const char *atp_status_message(int status);

/* printf into a caller's message buffer (the err, errlen pair of the storage and engine APIs). */
void atp_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
