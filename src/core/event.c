/* event.c — event type names and the stateless validation of an event. */
#include "atp/event.h"

#include "atp/limits.h"
#include "atp/status.h"

#include <string.h>
#include <strings.h>

static const char *const type_names[ATP_EV_TYPE_COUNT] = {
	[ATP_EV_RECEIPT] = "RECEIPT", [ATP_EV_PICK] = "PICK",
	[ATP_EV_ADJUST] = "ADJUST",   [ATP_EV_COUNT] = "COUNT",
	[ATP_EV_HOLD] = "HOLD",       [ATP_EV_UNHOLD] = "UNHOLD",
	[ATP_EV_TRANSFER] = "TRANSFER", [ATP_EV_SAFETY] = "SAFETY",
	[ATP_EV_RESERVE] = "RESERVE", [ATP_EV_RELEASE] = "RELEASE",
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

bool atp_str_valid(atp_str s, uint32_t max)
{
	if (s.len == 0 || s.len > max || s.ptr == NULL)
		return false;
	for (uint32_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* An optional string is valid when absent or valid. */
static bool optional_valid(atp_str s, uint32_t max)
{
	return s.len == 0 || atp_str_valid(s, max);
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
		return q >= 0 ? ATP_OK : ATP_E_QTY;
	case ATP_EV_RELEASE:
		return ATP_OK; /* a release gives back whatever remains */
	default:
		return q > 0 ? ATP_OK : ATP_E_QTY;
	}
}

int atp_event_validate(const atp_event *ev)
{
	if (ev->event_id == 0)
		return ATP_E_EVENT_ID;
	if (!atp_str_valid(ev->source, ATP_SOURCE_MAX))
		return ATP_E_SOURCE;
	if (ev->seq == 0)
		return ATP_E_SEQ;
	if (atp_event_type_name(ev->type) == NULL)
		return ATP_E_TYPE;
	if (!atp_str_valid(ev->sku, ATP_SKU_MAX))
		return ATP_E_SKU;
	if (!atp_str_valid(ev->location, ATP_LOC_MAX))
		return ATP_E_LOCATION;

	int rc = validate_qty(ev);
	if (rc)
		return rc;

	bool ref_required = ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE;
	if (ref_required ? !atp_str_valid(ev->ref, ATP_REF_MAX) : !optional_valid(ev->ref, ATP_REF_MAX))
		return ATP_E_REF;

	if (ev->type == ATP_EV_TRANSFER) {
		if (!atp_str_valid(ev->to_location, ATP_LOC_MAX))
			return ATP_E_TO_LOCATION;
		if (ev->to_location.len == ev->location.len &&
		    memcmp(ev->to_location.ptr, ev->location.ptr, ev->location.len) == 0)
			return ATP_E_TO_LOCATION;
	} else if (!optional_valid(ev->to_location, ATP_LOC_MAX)) {
		return ATP_E_TO_LOCATION;
	}

	bool reason_required = ev->type == ATP_EV_ADJUST;
	if (reason_required ? !atp_str_valid(ev->reason, ATP_REASON_MAX)
			    : !optional_valid(ev->reason, ATP_REASON_MAX))
		return ATP_E_REASON;
	return ATP_OK;
}
