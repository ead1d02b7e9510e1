/*
 * atp/wire_event.h — fbs/event.fbs in C: EventBatch, Event, Ack, Hello, Welcome.
 *
 * Decoding verifies first (atp/fb.h) and reads nothing before the verifier
 * passed; decoded events point into the buffer (no copy) and are valid as
 * long as it is. Limits on message size, events per batch and every
 * string's length are enforced while verifying, each with its own code.
 * Builders write into an atp_fb_builder (caller memory, no malloc).
 */
#ifndef ATP_WIRE_EVENT_H
#define ATP_WIRE_EVENT_H

#include "atp/event.h"
#include "atp/fb.h"
#include "atp/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_WIRE_MESSAGE_MAX (4u << 20)   /* bytes of one frame */
#define ATP_WIRE_BATCH_MAX 8192u          /* events of one EventBatch */
#define ATP_WIRE_DEPTH_MAX 8u
#define ATP_WIRE_REFUSED_MAX 8192u        /* refusals in one Ack */
#define ATP_WIRE_REASON_MAX 256u          /* bytes of an Ack's or Welcome's reason */

/* Field ids, in schema order. */
enum atp_wire_event_field {
	ATP_WIRE_EVENT_ID, ATP_WIRE_EVENT_SOURCE, ATP_WIRE_EVENT_SEQ, ATP_WIRE_EVENT_TYPE,
	ATP_WIRE_EVENT_SKU, ATP_WIRE_EVENT_LOCATION, ATP_WIRE_EVENT_QTY, ATP_WIRE_EVENT_REF,
	ATP_WIRE_EVENT_TO_LOCATION, ATP_WIRE_EVENT_REASON, ATP_WIRE_EVENT_OCCURRED_AT,
	ATP_WIRE_EVENT_TTL_MS, ATP_WIRE_EVENT_ALLOW_PARTIAL, ATP_WIRE_EVENT_KEY, ATP_WIRE_EVENT_DATE,
};

/* An event's fields that the core's atp_event does not carry. */
typedef struct atp_wire_event_time {
	uint64_t occurred_at;
	uint64_t ttl_ms;
} atp_wire_event_time;

/*
 * Verify buf as an EventBatch and decode up to cap events into out (and
 * their times into times, if not NULL). Returns the event count, or a
 * negative ATP_FB_E_* code with nothing decoded. Strings are checked for
 * length here; their bytes and every event rule are atp_event_validate's.
 */
int atp_wire_decode_event_batch(const void *buf, size_t len, atp_event *out, atp_wire_event_time *times,
				uint32_t cap);

/* An Event table from ev; occurred_at and ttl_ms go on the wire as given. */
atp_fb_ref atp_wire_build_event(atp_fb_builder *b, const atp_event *ev, atp_wire_event_time t);
/* An EventBatch from Event refs. */
atp_fb_ref atp_wire_build_event_batch(atp_fb_builder *b, const atp_fb_ref *events, uint32_t n);

/* ---- Ack, Hello, Welcome ---- */

typedef struct atp_wire_refusal {
	uint64_t seq;
	int32_t code;
	int32_t pad;  /* the struct's tail padding, zero */
} atp_wire_refusal;

/*
 * An Ack. Building: refused is an array of n_refused refusals. Decoding:
 * refused points into the buffer (read it with atp_wire_ack_refusal()).
 * error != 0 marks the server's last frame on the connection, reason why.
 */
typedef struct atp_wire_ack {
	atp_str source;
	uint64_t durable_seq;
	uint64_t next_seq;
	const atp_wire_refusal *refused;
	uint32_t n_refused;
	int32_t error;
	atp_str reason;
} atp_wire_ack;

atp_fb_ref atp_wire_build_ack(atp_fb_builder *b, const atp_wire_ack *a);
int atp_wire_decode_ack(const void *buf, size_t len, atp_wire_ack *out);
/* The i-th refusal of a decoded Ack. */
atp_wire_refusal atp_wire_ack_refusal(const atp_wire_ack *a, uint32_t i);

atp_fb_ref atp_wire_build_hello(atp_fb_builder *b, atp_str source);
int atp_wire_decode_hello(const void *buf, size_t len, atp_str *source);

/* A Welcome: the resume point, or (error != 0) why the Hello was refused. */
typedef struct atp_wire_welcome {
	uint64_t durable_seq;
	int32_t error;
	atp_str reason;
} atp_wire_welcome;

atp_fb_ref atp_wire_build_welcome(atp_fb_builder *b, const atp_wire_welcome *w);
int atp_wire_decode_welcome(const void *buf, size_t len, atp_wire_welcome *out);

#ifdef __cplusplus
}
#endif

#endif
