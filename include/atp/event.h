/*
 * atp/event.h — the events that change ATP, and their validation.
 *
 * An event is a plain struct whose strings point into the caller's buffer
 * (a CSV row, later a verified FlatBuffer): the core never copies an event,
 * only the keys it interns. atp_event_validate() is pure: it proves that an
 * event is well formed for its type (lengths, required fields, qty range)
 * without looking at any state, so that the core can refuse a bad event
 * before touching anything.
 */
#ifndef ATP_EVENT_H
#define ATP_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A byte string that is not NUL-terminated. len 0 means absent. */
typedef struct atp_str {
	const char *ptr;
	uint32_t len;
} atp_str;

static inline atp_str atp_str_of(const char *s, size_t len)
{
	return (atp_str){ .ptr = s, .len = (uint32_t)len };
}

enum atp_event_type {
	ATP_EV_NONE = 0,
	ATP_EV_RECEIPT,   /* on_hand += qty                          qty > 0 */
	ATP_EV_PICK,      /* on_hand -= qty, consumes ref's line     qty > 0 */
	ATP_EV_ADJUST,    /* on_hand += qty, with a reason           qty != 0 */
	ATP_EV_COUNT,     /* on_hand = qty, variance recorded        qty >= 0 */
	ATP_EV_HOLD,      /* held += min(qty, free)                  qty > 0 */
	ATP_EV_UNHOLD,    /* held -= min(qty, held)                  qty > 0 */
	ATP_EV_TRANSFER,  /* on_hand moves location -> to_location   qty > 0 */
	ATP_EV_SAFETY,    /* safety_stock = qty                      qty >= 0 */
	ATP_EV_RESERVE,   /* line (ref, sku, location) from ATP      qty > 0 */
	ATP_EV_RELEASE,   /* line's remaining goes back              qty ignored;
	                   * without sku and location: every open line of ref reserved
	                   * with ATP_EVF_RELEASABLE (see atp/core.h) */
	ATP_EV_SUPPLY,    /* supply ref (a PO, a transfer) expects qty on day date; qty >= 0,
	                   * 0: cancelled (atp/inbound.h). A RECEIPT naming ref receives it */
	ATP_EV_TYPE_COUNT
};

/* Flags of an event. */
#define ATP_EVF_PARTIAL 0x1u /* RESERVE: confirm min(qty, atp) instead of all or nothing */
/*
 * RESERVE: the line joins its reservation's index, so that a RELEASE of the
 * whole reservation (atp_event_releases_all) finds it. The gRPC Reserve
 * sets it; lines reserved by plain events are released by their own RELEASE
 * rows, and keep the apply path free of the index's cost.
 */
#define ATP_EVF_RELEASABLE 0x2u
/*
 * RESERVE: confirm nothing, whatever ATP holds: a line of a whole order
 * (atp/engine.h, atp_engine_submit_order) that another line of the order
 * could not get. Set by the shard worker, never taken from outside; in the
 * WAL so that replay repeats the refusal.
 */
#define ATP_EVF_DENY 0x4u
/*
 * RESERVE: the position must exist; refused with ATP_E_NO_POSITION (the
 * source's seq not taken, nothing created) when it does not, instead of
 * creating it. Set by the gRPC Reserve, whose one-line calls leave this
 * check to the shard (it looks the position up anyway); in the WAL, so
 * that replay repeats the refusal.
 */
#define ATP_EVF_KNOWN 0x8u

typedef struct atp_event {
	/*
	 * The sender's id of the event, carried for tracing (never for
	 * dedup: that is (source, seq)): a number != 0 in event_id, or, when
	 * the sender's ids are not numbers, its bytes in event_key
	 * (1..ATP_EVENT_KEY_MAX, no control byte) with event_id 0. Exactly
	 * one of the two.
	 */
	uint64_t event_id;
	atp_str event_key;
	uint64_t seq;         /* per source, contiguous from 1 */
	atp_str source;
	atp_str sku;
	atp_str location;
	atp_str ref;          /* reservation id (RESERVE, RELEASE, optional on PICK) */
	atp_str to_location;  /* TRANSFER target */
	atp_str reason;       /* ADJUST reason code */
	int64_t qty;
	uint64_t expires_at;  /* RESERVE: the caller's time at which the line lapses; 0 = never */
	/*
	 * A day (since 1970-01-01, atp/inbound.h): SUPPLY's ETA (required
	 * with qty > 0); RESERVE's need-by day (optional: confirmed now, or
	 * against supply due by then; not with ATP_EVF_PARTIAL); 0 elsewhere.
	 */
	uint32_t date;
	uint8_t type;         /* enum atp_event_type */
	uint8_t flags;        /* ATP_EVF_* */
} atp_event;

/* Byte order of two strings (a shorter prefix first), as memcmp. */
static inline int atp_str_cmp(atp_str a, atp_str b)
{
	uint32_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* A RELEASE of a whole reservation: no sku, no location, only the ref. */
static inline bool atp_event_releases_all(const atp_event *ev)
{
	return ev->type == ATP_EV_RELEASE && ev->sku.len == 0 && ev->location.len == 0;
}

/* "RECEIPT", ... ; NULL for an unknown type. */
const char *atp_event_type_name(unsigned type);
/* Parse a type name, case-insensitively; ATP_EV_NONE when unknown. */
enum atp_event_type atp_event_type_parse(const char *s, size_t len);

/*
 * 0 when the event is well formed for its type, else the ATP_E_* code of
 * the first problem found (fields are checked in declaration order).
 */
int atp_event_validate(const atp_event *ev);

/*
 * The same checks but for the bytes of source, sku, location, to_location
 * and ref, which only need checking once per key: the core checks them
 * when a lookup misses, before it interns a key, so a lookup with unchecked
 * bytes can only ever match a key that passed. Same codes as
 * atp_event_validate().
 */
int atp_event_validate_shape(const atp_event *ev);

/* True when s is 1..max bytes with no control byte (< 0x20 or 0x7f). */
bool atp_str_valid(atp_str s, uint32_t max);

#ifdef __cplusplus
}
#endif

#endif
