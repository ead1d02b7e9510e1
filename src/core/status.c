/* status.c — names and messages of the ATP_* result codes. */
#include "atp/status.h"

#include <stdarg.h>
#include <stdio.h>

struct status_text {
	const char *name;
	const char *message;
};

/* Indexed by -code for errors; 0 and 1 handled apart. */
static const struct status_text errors[] = {
	[-ATP_E_GAP] = { "ATP_E_GAP", "sequence gap: resend from the expected seq" },
	[-ATP_E_TYPE] = { "ATP_E_TYPE", "unknown event type" },
	[-ATP_E_QTY] = { "ATP_E_QTY", "qty out of the range this event type allows" },
	[-ATP_E_SKU] = { "ATP_E_SKU", "sku missing, longer than 64 bytes or with control bytes" },
	[-ATP_E_LOCATION] = { "ATP_E_LOCATION", "location missing, longer than 32 bytes or with control bytes" },
	[-ATP_E_SOURCE] = { "ATP_E_SOURCE", "source missing, longer than 64 bytes or with control bytes" },
	[-ATP_E_REF] = { "ATP_E_REF", "ref missing where required, longer than 64 bytes or with control bytes" },
	[-ATP_E_TO_LOCATION] = { "ATP_E_TO_LOCATION", "to_location missing, bad, or equal to location" },
	[-ATP_E_REASON] = { "ATP_E_REASON", "reason missing, longer than 32 bytes or with control bytes" },
	[-ATP_E_SEQ] = { "ATP_E_SEQ", "seq must be at least 1" },
	[-ATP_E_EVENT_ID] = { "ATP_E_EVENT_ID", "event_id: a number >= 1, or a key of 1..64 bytes without control bytes (not both)" },
	[-ATP_E_OVERFLOW] = { "ATP_E_OVERFLOW", "a bucket would exceed its bound of 2^60 units" },
	[-ATP_E_POSITIONS_FULL] = { "ATP_E_POSITIONS_FULL", "position capacity reached" },
	[-ATP_E_LINES_FULL] = { "ATP_E_LINES_FULL", "reservation line capacity reached" },
	[-ATP_E_SOURCES_FULL] = { "ATP_E_SOURCES_FULL", "source capacity reached" },
	[-ATP_E_NOMEM] = { "ATP_E_NOMEM", "out of memory" },
	[-ATP_E_INVAL] = { "ATP_E_INVAL", "invalid argument" },
	[-ATP_E_IO] = { "ATP_E_IO", "storage failed: the engine stopped" },
	[-ATP_E_PROTOCOL] = { "ATP_E_PROTOCOL", "a frame failed verification or came out of order" },
	[-ATP_E_LIMIT] = { "ATP_E_LIMIT", "beyond a configured limit" },
	[-ATP_E_SUPERSEDED] = { "ATP_E_SUPERSEDED", "a newer connection claimed this source" },
	[-ATP_E_TIMEOUT] = { "ATP_E_TIMEOUT", "idle or not reading acks for too long" },
	[-ATP_E_SHUTDOWN] = { "ATP_E_SHUTDOWN", "the server is stopping" },
	[-ATP_E_UNAUTHENTICATED] = { "ATP_E_UNAUTHENTICATED", "no valid client certificate" },
	[-ATP_E_FORBIDDEN] = { "ATP_E_FORBIDDEN", "this identity may not send as this source" },
	[-ATP_E_DATE] = { "ATP_E_DATE", "date missing, not allowed for this type, or with partial" },
	[-ATP_E_SUPPLY_FULL] = { "ATP_E_SUPPLY_FULL", "inbound supply capacity reached" },
	[-ATP_E_NO_POSITION] = { "ATP_E_NO_POSITION", "no such position (a reservation never creates one)" },
};

static const struct status_text *lookup(int status)
{
	static const struct status_text ok = { "ATP_OK", "ok" };
	static const struct status_text dup = { "ATP_DUPLICATE", "duplicate: already applied" };
	static const struct status_text unknown = { "ATP_E_UNKNOWN", "unknown status" };

	if (status == ATP_OK)
		return &ok;
	if (status == ATP_DUPLICATE)
		return &dup;
	if (status < 0 && status >= ATP_E_LAST)
		return &errors[-status];
	return &unknown;
}

const char *atp_status_name(int status)
{
	return lookup(status)->name;
}

const char *atp_status_message(int status)
{
	return lookup(status)->message;
}

void atp_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
