/* record.c — the compact record encoding (see atp/record.h). */
#include "atp/record.h"

#include "atp/limits.h"

#include <string.h>

/*
 * EVENT: kind, type, flags, six string lengths (source, sku, location, ref,
 * to_location, reason), then event_id, seq, qty, expires_at, now
 * (little-endian u64), then the strings back to back. An event with an
 * event_key is kind EVENT_KEYED on disk: the same with a seventh length
 * (the key's) after the six and the key's bytes last, so that the records
 * of numeric ids keep the layout of every WAL written before keys existed.
 * An event with a date (atp_event.date) is kind EVENT_DATED or
 * EVENT_KEYED_DATED: the same with the date (u32) after now; the rest
 * keep their layout.
 * TICK: kind, now. SNAPSHOT: kind. ORDER: kind, now, order (u64), n_lines,
 * n_parts (u16), the parts (u16 each).
 */
#define EVENT_KEYED 4
#define EVENT_DATED 6
#define EVENT_KEYED_DATED 7
#define EV_FIXED(nstr) ((size_t)(3 + (nstr) + 40))
#define EV_FIXED_AT(nstr, dated) (EV_FIXED(nstr) + ((dated) ? 4u : 0u))

static const uint8_t str_max[7] = { ATP_SOURCE_MAX, ATP_SKU_MAX, ATP_LOC_MAX, ATP_REF_MAX, ATP_LOC_MAX,
				    ATP_REASON_MAX, ATP_EVENT_KEY_MAX };

_Static_assert(EV_FIXED_AT(7, 1) + ATP_SOURCE_MAX + ATP_SKU_MAX + 2 * ATP_LOC_MAX + ATP_REF_MAX + ATP_REASON_MAX +
			       ATP_EVENT_KEY_MAX <=
		       ATP_RECORD_MAX,
	       "ATP_RECORD_MAX holds the longest event");

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* little-endian hosts only: see meson.build */
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

size_t atp_record_encode_event(const atp_event *ev, uint64_t now, uint8_t *out)
{
	const atp_str s[7] = { ev->source, ev->sku, ev->location, ev->ref, ev->to_location, ev->reason, ev->event_key };
	size_t nstr = ev->event_key.len ? 7 : 6;
	bool dated = ev->date != 0;
	uint8_t *f = out + 3 + nstr;
	out[0] = dated ? (nstr == 7 ? EVENT_KEYED_DATED : EVENT_DATED) : nstr == 7 ? EVENT_KEYED : ATP_REC_EVENT;
	out[1] = ev->type;
	out[2] = ev->flags;
	put64(f, ev->event_id);
	put64(f + 8, ev->seq);
	put64(f + 16, (uint64_t)ev->qty);
	put64(f + 24, ev->expires_at);
	put64(f + 32, now);
	if (dated)
		memcpy(f + 40, &ev->date, 4);
	size_t n = EV_FIXED_AT(nstr, dated);
	for (size_t i = 0; i < nstr; i++) {
		if (s[i].len > str_max[i])
			return 0;
		out[3 + i] = (uint8_t)s[i].len;
		if (s[i].len)
			memcpy(out + n, s[i].ptr, s[i].len);
		n += s[i].len;
	}
	return n;
}

size_t atp_record_encode_tick(uint64_t now, uint8_t *out)
{
	out[0] = ATP_REC_TICK;
	put64(out + 1, now);
	return 9;
}

size_t atp_record_encode_snapshot(uint8_t *out)
{
	out[0] = ATP_REC_SNAPSHOT;
	return 1;
}

static bool order_ok(const atp_order_mark *m)
{
	if (m->order == 0 || m->n_lines > ATP_ORDER_LINES_MAX || m->n_parts == 0 ||
	    m->n_parts > ATP_ORDER_PARTS_MAX)
		return false;
	for (uint16_t i = 1; i < m->n_parts; i++)
		if (m->parts[i] <= m->parts[i - 1])
			return false;
	return true;
}

#define ORDER_FIXED 21

size_t atp_record_encode_order(const atp_order_mark *m, uint64_t now, uint8_t *out)
{
	if (!order_ok(m))
		return 0;
	out[0] = ATP_REC_ORDER;
	put64(out + 1, now);
	put64(out + 9, m->order);
	memcpy(out + 17, &m->n_lines, 2);
	memcpy(out + 19, &m->n_parts, 2);
	memcpy(out + ORDER_FIXED, m->parts, 2u * m->n_parts);
	return ORDER_FIXED + 2u * m->n_parts;
}

_Static_assert(ORDER_FIXED + 2 * ATP_ORDER_PARTS_MAX <= ATP_RECORD_MAX, "ATP_RECORD_MAX holds an order mark");

int atp_record_decode(const uint8_t *buf, size_t len, atp_record *rec)
{
	if (len == 0)
		return -1;
	rec->kind = buf[0];
	switch (buf[0]) {
	case ATP_REC_TICK:
		if (len != 9)
			return -1;
		rec->now = get64(buf + 1);
		return 0;
	case ATP_REC_SNAPSHOT:
		return len == 1 ? 0 : -1;
	case ATP_REC_ORDER: {
		atp_order_mark *m = &rec->order;
		if (len < ORDER_FIXED)
			return -1;
		rec->now = get64(buf + 1);
		m->order = get64(buf + 9);
		memcpy(&m->n_lines, buf + 17, 2);
		memcpy(&m->n_parts, buf + 19, 2);
		if (m->n_parts > ATP_ORDER_PARTS_MAX || len != ORDER_FIXED + 2u * m->n_parts)
			return -1;
		memcpy(m->parts, buf + ORDER_FIXED, 2u * m->n_parts);
		return order_ok(m) ? 0 : -1;
	}
	case ATP_REC_EVENT:
	case EVENT_KEYED:
	case EVENT_DATED:
	case EVENT_KEYED_DATED:
		break;
	default:
		return -1;
	}
	size_t nstr = buf[0] == EVENT_KEYED || buf[0] == EVENT_KEYED_DATED ? 7 : 6;
	bool dated = buf[0] == EVENT_DATED || buf[0] == EVENT_KEYED_DATED;
	const uint8_t *f = buf + 3 + nstr;
	rec->kind = ATP_REC_EVENT;
	if (len < EV_FIXED_AT(nstr, dated))
		return -1;
	atp_event *ev = &rec->ev;
	ev->event_key = (atp_str){ 0 };
	ev->date = 0;
	if (dated) {
		memcpy(&ev->date, f + 40, 4);
		if (ev->date == 0)
			return -1;
	}
	atp_str *s[7] = { &ev->source, &ev->sku, &ev->location, &ev->ref, &ev->to_location, &ev->reason, &ev->event_key };
	size_t n = EV_FIXED_AT(nstr, dated);
	for (size_t i = 0; i < nstr; i++) {
		uint8_t l = buf[3 + i];
		if (l > str_max[i] || n + l > len)
			return -1;
		*s[i] = (atp_str){ .ptr = l ? (const char *)buf + n : NULL, .len = l };
		n += l;
	}
	if (n != len || (nstr == 7 && ev->event_key.len == 0))
		return -1;
	ev->type = buf[1];
	ev->flags = buf[2];
	ev->event_id = get64(f);
	ev->seq = get64(f + 8);
	ev->qty = (int64_t)get64(f + 16);
	ev->expires_at = get64(f + 24);
	rec->now = get64(f + 32);
	return 0;
}
