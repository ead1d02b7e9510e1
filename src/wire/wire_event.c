/* wire_event.c — fbs/event.fbs: verify, decode, build (see atp/wire_event.h). */
#include "atp/wire_event.h"

#include "atp/inbound.h"

#include <assert.h>

_Static_assert(sizeof(atp_wire_refusal) == 16, "Refusal is { ulong seq; int code; } padded to 16");

static atp_str get_string(const uint8_t *t, unsigned id)
{
	uint32_t len;
	const char *p = atp_fb_get_string(t, id, &len);
	return (atp_str){ p, len };
}


static int verify_event(atp_fb_verifier *v, const uint8_t *t)
{
	static const struct {
		unsigned id;
		uint32_t max;
	} strings[] = {
		{ ATP_WIRE_EVENT_SOURCE, ATP_SOURCE_MAX }, { ATP_WIRE_EVENT_SKU, ATP_SKU_MAX },
		{ ATP_WIRE_EVENT_LOCATION, ATP_LOC_MAX },  { ATP_WIRE_EVENT_REF, ATP_REF_MAX },
		{ ATP_WIRE_EVENT_TO_LOCATION, ATP_LOC_MAX }, { ATP_WIRE_EVENT_REASON, ATP_REASON_MAX },
		{ ATP_WIRE_EVENT_KEY, ATP_EVENT_KEY_MAX },
	};
	static const struct {
		unsigned id;
		uint32_t size;
	} scalars[] = {
		{ ATP_WIRE_EVENT_ID, 8 },	   { ATP_WIRE_EVENT_SEQ, 8 },	 { ATP_WIRE_EVENT_TYPE, 1 },
		{ ATP_WIRE_EVENT_QTY, 8 },	   { ATP_WIRE_EVENT_OCCURRED_AT, 8 }, { ATP_WIRE_EVENT_TTL_MS, 8 },
		{ ATP_WIRE_EVENT_ALLOW_PARTIAL, 1 }, { ATP_WIRE_EVENT_DATE, 4 },
	};
	int rc = atp_fb_verify_table_enter(v, t);
	for (size_t i = 0; !rc && i < sizeof(strings) / sizeof(*strings); i++)
		rc = atp_fb_verify_string(v, t, strings[i].id, strings[i].max, false);
	for (size_t i = 0; !rc && i < sizeof(scalars) / sizeof(*scalars); i++)
		rc = atp_fb_verify_scalar(v, t, scalars[i].id, scalars[i].size);
	atp_fb_verify_table_leave(v);
	return rc;
}

static void decode_event(const uint8_t *t, atp_event *ev, atp_wire_event_time *time)
{
	uint64_t occurred_at = atp_fb_get_u64(t, ATP_WIRE_EVENT_OCCURRED_AT), ttl = atp_fb_get_u64(t, ATP_WIRE_EVENT_TTL_MS);
	*ev = (atp_event){
		.event_id = atp_fb_get_u64(t, ATP_WIRE_EVENT_ID),
		.event_key = get_string(t, ATP_WIRE_EVENT_KEY),
		.seq = atp_fb_get_u64(t, ATP_WIRE_EVENT_SEQ),
		.source = get_string(t, ATP_WIRE_EVENT_SOURCE),
		.sku = get_string(t, ATP_WIRE_EVENT_SKU),
		.location = get_string(t, ATP_WIRE_EVENT_LOCATION),
		.ref = get_string(t, ATP_WIRE_EVENT_REF),
		.to_location = get_string(t, ATP_WIRE_EVENT_TO_LOCATION),
		.reason = get_string(t, ATP_WIRE_EVENT_REASON),
		.qty = (int64_t)atp_fb_get_u64(t, ATP_WIRE_EVENT_QTY),
		/* A lapse beyond the clock's range is no lapse at all. */
		.expires_at = ttl ? (occurred_at > UINT64_MAX - ttl ? UINT64_MAX : occurred_at + ttl) : 0,
		.type = atp_fb_get_u8(t, ATP_WIRE_EVENT_TYPE),
		.flags = atp_fb_get_u8(t, ATP_WIRE_EVENT_ALLOW_PARTIAL) ? ATP_EVF_PARTIAL : 0,
	};
	/* YYYYMMDD on the wire; one that is no date becomes a day past the last, which validation refuses (ATP_E_DATE). */
	uint32_t ymd = atp_fb_get_u32(t, ATP_WIRE_EVENT_DATE);
	ev->date = ymd ? atp_day_of_ymd(ymd) : 0;
	if (ymd && !ev->date)
		ev->date = ATP_DAY_LAST + 1;
	if (time)
		*time = (atp_wire_event_time){ occurred_at, ttl };
}

int atp_wire_decode_event_batch(const void *buf, size_t len, atp_event *out, atp_wire_event_time *times,
				uint32_t cap)
{
	atp_fb_verifier v;
	const uint8_t *root, *elems;
	uint32_t n;
	uint32_t max_events = cap < ATP_WIRE_BATCH_MAX ? cap : ATP_WIRE_BATCH_MAX;
	int rc = atp_fb_verify_begin(&v, buf, len, ATP_WIRE_MESSAGE_MAX, ATP_WIRE_DEPTH_MAX, max_events + 1, &root);
	if (rc || (rc = atp_fb_verify_table_enter(&v, root)))
		return rc;
	if ((rc = atp_fb_verify_vector(&v, root, 0, 4, 4, max_events, &elems, &n)))
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t;
		if ((rc = atp_fb_verify_offset_to_table(&v, elems + 4 * i, &t)) || (rc = verify_event(&v, t)))
			return rc;
	}
	/* Verified: now read. */
	for (uint32_t i = 0; i < n; i++)
		decode_event(atp_fb_deref(elems + 4 * i), &out[i], times ? &times[i] : NULL);
	return (int)n;
}

static atp_fb_ref string_or_none(atp_fb_builder *b, atp_str s)
{
	return atp_fb_create_string_or_none(b, s.ptr, s.len);
}

atp_fb_ref atp_wire_build_event(atp_fb_builder *b, const atp_event *ev, atp_wire_event_time t)
{
	atp_fb_ref source = string_or_none(b, ev->source), sku = string_or_none(b, ev->sku),
		   location = string_or_none(b, ev->location), ref = string_or_none(b, ev->ref),
		   to = string_or_none(b, ev->to_location), reason = string_or_none(b, ev->reason),
		   key = string_or_none(b, ev->event_key);
	atp_fb_start_table(b);
	/* Eight-byte fields first, then offsets, then bytes: the tightest inline layout. */
	atp_fb_add_u64(b, ATP_WIRE_EVENT_ID, ev->event_id, 0);
	atp_fb_add_u64(b, ATP_WIRE_EVENT_SEQ, ev->seq, 0);
	atp_fb_add_i64(b, ATP_WIRE_EVENT_QTY, ev->qty, 0);
	atp_fb_add_u64(b, ATP_WIRE_EVENT_OCCURRED_AT, t.occurred_at, 0);
	atp_fb_add_u64(b, ATP_WIRE_EVENT_TTL_MS, t.ttl_ms, 0);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_SOURCE, source);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_SKU, sku);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_LOCATION, location);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_REF, ref);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_TO_LOCATION, to);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_REASON, reason);
	atp_fb_add_offset(b, ATP_WIRE_EVENT_KEY, key);
	atp_fb_add_u32(b, ATP_WIRE_EVENT_DATE, ev->date ? atp_ymd_of_day(ev->date) : 0, 0);
	atp_fb_add_u8(b, ATP_WIRE_EVENT_TYPE, ev->type, 0);
	atp_fb_add_u8(b, ATP_WIRE_EVENT_ALLOW_PARTIAL, (ev->flags & ATP_EVF_PARTIAL) ? 1 : 0, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_wire_build_event_batch(atp_fb_builder *b, const atp_fb_ref *events, uint32_t n)
{
	atp_fb_ref vec = atp_fb_create_offset_vector(b, events, n);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, vec);
	return atp_fb_end_table(b);
}

/* ---- Ack ---- */

enum { ACK_SOURCE, ACK_DURABLE_SEQ, ACK_REFUSED, ACK_NEXT_SEQ, ACK_ERROR, ACK_REASON };

atp_fb_ref atp_wire_build_ack(atp_fb_builder *b, const atp_wire_ack *a)
{
	atp_fb_ref src = string_or_none(b, a->source);
	atp_fb_ref reason = string_or_none(b, a->reason);
	atp_fb_ref vec = a->n_refused || a->refused ? atp_fb_create_vector(b, a->refused, a->n_refused, 16, 8) : 0;
	atp_fb_start_table(b);
	atp_fb_add_u64(b, ACK_DURABLE_SEQ, a->durable_seq, 0);
	atp_fb_add_u64(b, ACK_NEXT_SEQ, a->next_seq, 0);
	atp_fb_add_offset(b, ACK_SOURCE, src);
	atp_fb_add_offset(b, ACK_REFUSED, vec);
	atp_fb_add_offset(b, ACK_REASON, reason);
	atp_fb_add_u32(b, ACK_ERROR, (uint32_t)a->error, 0);
	return atp_fb_end_table(b);
}

/* Verify a one-table message: begin, enter the root. */
static int verify_root(atp_fb_verifier *v, const void *buf, size_t len, const uint8_t **root)
{
	int rc = atp_fb_verify_begin(v, buf, len, ATP_WIRE_MESSAGE_MAX, ATP_WIRE_DEPTH_MAX, 1, root);
	return rc ? rc : atp_fb_verify_table_enter(v, *root);
}

int atp_wire_decode_ack(const void *buf, size_t len, atp_wire_ack *out)
{
	atp_fb_verifier v;
	const uint8_t *t, *elems;
	uint32_t n;
	int rc = verify_root(&v, buf, len, &t);
	if (rc || (rc = atp_fb_verify_string(&v, t, ACK_SOURCE, ATP_SOURCE_MAX, false)) ||
	    (rc = atp_fb_verify_scalar(&v, t, ACK_DURABLE_SEQ, 8)) ||
	    (rc = atp_fb_verify_vector(&v, t, ACK_REFUSED, 16, 8, ATP_WIRE_REFUSED_MAX, &elems, &n)) ||
	    (rc = atp_fb_verify_scalar(&v, t, ACK_NEXT_SEQ, 8)) || (rc = atp_fb_verify_scalar(&v, t, ACK_ERROR, 4)) ||
	    (rc = atp_fb_verify_string(&v, t, ACK_REASON, ATP_WIRE_REASON_MAX, false)))
		return rc;
	*out = (atp_wire_ack){ .source = get_string(t, ACK_SOURCE),
			       .durable_seq = atp_fb_get_u64(t, ACK_DURABLE_SEQ),
			       .next_seq = atp_fb_get_u64(t, ACK_NEXT_SEQ),
			       .refused = (const atp_wire_refusal *)(const void *)elems,
			       .n_refused = n,
			       .error = (int32_t)atp_fb_get_u32(t, ACK_ERROR),
			       .reason = get_string(t, ACK_REASON) };
	return ATP_FB_OK;
}

atp_wire_refusal atp_wire_ack_refusal(const atp_wire_ack *a, uint32_t i)
{
	atp_wire_refusal r;
	assert(i < a->n_refused);
	memcpy(&r, (const uint8_t *)a->refused + 16 * (size_t)i, sizeof(r));
	return r;
}

/* ---- Hello, Welcome ---- */

atp_fb_ref atp_wire_build_hello(atp_fb_builder *b, atp_str source)
{
	atp_fb_ref src = string_or_none(b, source);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, src);
	return atp_fb_end_table(b);
}

int atp_wire_decode_hello(const void *buf, size_t len, atp_str *source)
{
	atp_fb_verifier v;
	const uint8_t *t;
	int rc = verify_root(&v, buf, len, &t);
	if (rc || (rc = atp_fb_verify_string(&v, t, 0, ATP_SOURCE_MAX, true)))
		return rc;
	*source = get_string(t, 0);
	return ATP_FB_OK;
}

enum { WELCOME_DURABLE_SEQ, WELCOME_ERROR, WELCOME_REASON };

atp_fb_ref atp_wire_build_welcome(atp_fb_builder *b, const atp_wire_welcome *w)
{
	atp_fb_ref reason = string_or_none(b, w->reason);
	atp_fb_start_table(b);
	atp_fb_add_u64(b, WELCOME_DURABLE_SEQ, w->durable_seq, 0);
	atp_fb_add_offset(b, WELCOME_REASON, reason);
	atp_fb_add_u32(b, WELCOME_ERROR, (uint32_t)w->error, 0);
	return atp_fb_end_table(b);
}

int atp_wire_decode_welcome(const void *buf, size_t len, atp_wire_welcome *out)
{
	atp_fb_verifier v;
	const uint8_t *t;
	int rc = verify_root(&v, buf, len, &t);
	if (rc || (rc = atp_fb_verify_scalar(&v, t, WELCOME_DURABLE_SEQ, 8)) ||
	    (rc = atp_fb_verify_scalar(&v, t, WELCOME_ERROR, 4)) ||
	    (rc = atp_fb_verify_string(&v, t, WELCOME_REASON, ATP_WIRE_REASON_MAX, false)))
		return rc;
	*out = (atp_wire_welcome){ .durable_seq = atp_fb_get_u64(t, WELCOME_DURABLE_SEQ),
				   .error = (int32_t)atp_fb_get_u32(t, WELCOME_ERROR),
				   .reason = get_string(t, WELCOME_REASON) };
	return ATP_FB_OK;
}
