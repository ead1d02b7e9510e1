/* event.c — event type names and the stateless validation of an event. */
#include "atp/event.h"

#include "atp/bytes.h"
#include "atp/limits.h"
#include "atp/status.h"
#include "strcheck.h"

#include <string.h>
#include <strings.h>

static const char *const type_names[ATP_EV_TYPE_COUNT] = {
	[ATP_EV_RECEIPT] = "RECEIPT", [ATP_EV_PICK] = "PICK",
	[ATP_EV_ADJUST] = "ADJUST",   [ATP_EV_COUNT] = "COUNT",
	[ATP_EV_HOLD] = "HOLD",       [ATP_EV_UNHOLD] = "UNHOLD",
	[ATP_EV_TRANSFER] = "TRANSFER", [ATP_EV_SAFETY] = "SAFETY",
	[ATP_EV_RESERVE] = "RESERVE", [ATP_EV_RELEASE] = "RELEASE",
	[ATP_EV_SUPPLY] = "SUPPLY",
};

const char *atp_event_type_name(unsigned type)
{
	if (type == ATP_EV_NONE || type >= ATP_EV_TYPE_COUNT)
		return NULL;
	return type_names[type];
}

enum atp_event_type atp_event_type_parse(const char *s, size_t len)
{
	for (unsigned t = 1; t < ATP_EV_TYPE_COUNT; t++) {
		if (strlen(type_names[t]) == len && strncasecmp(type_names[t], s, len) == 0)
			return (enum atp_event_type)t;
	}
	return ATP_EV_NONE;
}

static inline __attribute__((always_inline)) bool str_valid(atp_str s, uint32_t max)
{
	return atp_str_check(s, max);
}

bool atp_str_valid(atp_str s, uint32_t max)
{
	return str_valid(s, max);
}

/* An optional string is valid when absent or valid. */
static bool optional_valid(atp_str s, uint32_t max)
{
	return s.len == 0 || str_valid(s, max);
}

static int validate_qty(const atp_event *ev)
{
	int64_t q = ev->qty;

	if (q > ATP_QTY_MAX || q < -ATP_QTY_MAX)
		return ATP_E_QTY;
	switch (ev->type) {
	case ATP_EV_ADJUST:
		return q != 0 ? ATP_OK : ATP_E_QTY;
	case ATP_EV_COUNT:
	case ATP_EV_SAFETY:
	case ATP_EV_SUPPLY:
		return q >= 0 ? ATP_OK : ATP_E_QTY;
	case ATP_EV_RELEASE:
		return ATP_OK; /* a release gives back whatever remains */
	default:
		return q > 0 ? ATP_OK : ATP_E_QTY;
	}
}

/* SUPPLY needs a day when it expects units; RESERVE may name one (not with partial); no other type. */
static int validate_date(const atp_event *ev)
{
	if (ev->date > ATP_DAY_LAST)
		return ATP_E_DATE;
	switch (ev->type) {
	case ATP_EV_SUPPLY:
		return ev->qty == 0 || ev->date ? ATP_OK : ATP_E_DATE;
	case ATP_EV_RESERVE:
		return ev->date && (ev->flags & ATP_EVF_PARTIAL) ? ATP_E_DATE : ATP_OK;
	default:
		return ev->date ? ATP_E_DATE : ATP_OK;
	}
}

/* A key whose bytes are checked later, when it is interned: its length only. */
static inline bool length_valid(atp_str s, uint32_t max)
{
	return s.len > 0 && s.len <= max && s.ptr != NULL;
}

/*
 * The smallest qty each type takes on the fast path, INT64_MIN: the type
 * always takes the ordered path (TRANSFER and ADJUST, whose extra fields it
 * checks; the unknown types).
 */
static const int64_t fast_qty_min[ATP_EV_TYPE_COUNT] = {
	[ATP_EV_NONE] = INT64_MIN,   [ATP_EV_RECEIPT] = 1, [ATP_EV_PICK] = 1,        [ATP_EV_ADJUST] = INT64_MIN,
	[ATP_EV_COUNT] = 0,          [ATP_EV_HOLD] = 1,    [ATP_EV_UNHOLD] = 1,      [ATP_EV_TRANSFER] = INT64_MIN,
	[ATP_EV_SAFETY] = 0,         [ATP_EV_RESERVE] = 1, [ATP_EV_RELEASE] = -ATP_QTY_MAX,
	[ATP_EV_SUPPLY] = INT64_MIN,
};

/*
 * True only when validate() would answer ATP_OK: the common events (not
 * TRANSFER, ADJUST or a release of a whole reservation, no to_location, no
 * reason) checked in one pass. Anything else, good or bad, goes the
 * ordered way, which finds the first problem.
 */
static inline bool fast_ok(const atp_event *ev, bool key_bytes)
{
	unsigned type = ev->type;
	if (type >= ATP_EV_TYPE_COUNT || fast_qty_min[type] == INT64_MIN)
		return false;
	bool ref_needed = ev->ref.len || type == ATP_EV_RESERVE || type == ATP_EV_RELEASE;
	bool ok = ev->event_id != 0 && ev->event_key.len == 0 && ev->seq != 0 && ev->date == 0 && ev->qty >= fast_qty_min[type] && ev->qty <= ATP_QTY_MAX &&
		  (ev->to_location.len | ev->reason.len) == 0 && length_valid(ev->source, ATP_SOURCE_MAX) &&
		  length_valid(ev->sku, ATP_SKU_MAX) && length_valid(ev->location, ATP_LOC_MAX) &&
		  (!ref_needed || length_valid(ev->ref, ATP_REF_MAX));
	if (!ok || !key_bytes)
		return ok;
	return str_valid(ev->source, ATP_SOURCE_MAX) && str_valid(ev->sku, ATP_SKU_MAX) &&
	       str_valid(ev->location, ATP_LOC_MAX) && (!ref_needed || str_valid(ev->ref, ATP_REF_MAX));
}

/* Every check in order: the first problem's code (or ATP_OK). */
static __attribute__((noinline, cold)) int validate_ordered(const atp_event *ev, bool key_bytes)
{
	if ((ev->event_id != 0) == (ev->event_key.len != 0) ||
	    (ev->event_key.len && !str_valid(ev->event_key, ATP_EVENT_KEY_MAX)))
		return ATP_E_EVENT_ID;
	if (!(key_bytes ? str_valid(ev->source, ATP_SOURCE_MAX) : length_valid(ev->source, ATP_SOURCE_MAX)))
		return ATP_E_SOURCE;
	if (ev->seq == 0)
		return ATP_E_SEQ;
	if (atp_event_type_name(ev->type) == NULL)
		return ATP_E_TYPE;
	bool keyless = atp_event_releases_all(ev);
	if (!keyless && !(key_bytes ? str_valid(ev->sku, ATP_SKU_MAX) : length_valid(ev->sku, ATP_SKU_MAX)))
		return ATP_E_SKU;
	if (!keyless && !(key_bytes ? str_valid(ev->location, ATP_LOC_MAX) : length_valid(ev->location, ATP_LOC_MAX)))
		return ATP_E_LOCATION;

	int rc = validate_qty(ev);
	if (rc)
		return rc;

	bool ref_required = ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE || ev->type == ATP_EV_SUPPLY;
	if (ev->ref.len || ref_required) {
		if (!(key_bytes ? str_valid(ev->ref, ATP_REF_MAX) : length_valid(ev->ref, ATP_REF_MAX)))
			return ATP_E_REF;
	}

	if (ev->type == ATP_EV_TRANSFER) {
		if (!(key_bytes ? str_valid(ev->to_location, ATP_LOC_MAX) : length_valid(ev->to_location, ATP_LOC_MAX)))
			return ATP_E_TO_LOCATION;
		if (ev->to_location.len == ev->location.len &&
		    atp_bytes_equal(ev->to_location.ptr, ev->location.ptr, ev->location.len))
			return ATP_E_TO_LOCATION;
	} else if (!optional_valid(ev->to_location, ATP_LOC_MAX)) {
		return ATP_E_TO_LOCATION;
	}

	bool reason_required = ev->type == ATP_EV_ADJUST;
	if (reason_required ? !str_valid(ev->reason, ATP_REASON_MAX)
			    : !optional_valid(ev->reason, ATP_REASON_MAX))
		return ATP_E_REASON;
	return validate_date(ev);
}

static inline __attribute__((always_inline)) int validate(const atp_event *ev, bool key_bytes)
{
	if (__builtin_expect(fast_ok(ev, key_bytes), 1))
		return ATP_OK;
	return validate_ordered(ev, key_bytes);
}

int atp_event_validate(const atp_event *ev)
{
	return validate(ev, true);
}

int atp_event_validate_shape(const atp_event *ev)
{
	return validate(ev, false);
}
