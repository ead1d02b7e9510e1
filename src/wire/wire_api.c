/* wire_api.c — fbs/atp.fbs and fbs/delta.fbs: rules and builders (see atp/wire_api.h). */
#include "atp/wire_api.h"

#include <string.h>

#define COUNT(a) (uint32_t)(sizeof(a) / sizeof(*(a)))
#define RULE(name, ...)                                                          \
	static const atp_fb_field_rule name##_fields[] = { __VA_ARGS__ };        \
	const atp_fb_table_rule atp_v1_##name##_rule = { name##_fields, COUNT(name##_fields) }

#define STRING(field, max_len) { .id = field, .kind = ATP_FB_STRING, .max = max_len }
#define SCALAR(field, bytes) { .id = field, .kind = ATP_FB_SCALAR, .size = bytes }
#define TABLES(field, rule) { .id = field, .kind = ATP_FB_TABLES, .max = ATP_V1_LIST_MAX, .sub = &rule }
/* Fields of requests carry their names, so a refusal says which one is at fault. */
#define NAMED_STRING(field, max_len, nm) { .id = field, .kind = ATP_FB_STRING, .max = max_len, .name = nm }
#define NAMED_SCALAR(field, bytes, nm) { .id = field, .kind = ATP_FB_SCALAR, .size = bytes, .name = nm }
#define NAMED_TABLES(field, rule, nm) \
	{ .id = field, .kind = ATP_FB_TABLES, .max = ATP_V1_LIST_MAX, .sub = &rule, .name = nm }

RULE(atp_query, NAMED_STRING(0, ATP_SKU_MAX, "sku"),
     { .id = 1, .kind = ATP_FB_STRINGS, .max = ATP_V1_LIST_MAX, .size = ATP_LOC_MAX, .name = "locations" });
RULE(position_atp, STRING(0, ATP_SKU_MAX), STRING(1, ATP_LOC_MAX), SCALAR(2, 8), SCALAR(3, 8), SCALAR(4, 8),
     SCALAR(5, 8), SCALAR(6, 8), SCALAR(7, 8));
RULE(atp_reply, TABLES(0, atp_v1_position_atp_rule), SCALAR(1, 8));
RULE(atp_batch_query, NAMED_TABLES(0, atp_v1_atp_query_rule, "queries"));
RULE(atp_batch_reply, TABLES(0, atp_v1_atp_reply_rule));
RULE(reserve_line, NAMED_STRING(0, ATP_SKU_MAX, "sku"), NAMED_STRING(1, ATP_LOC_MAX, "location"),
     NAMED_SCALAR(2, 8, "qty"), NAMED_SCALAR(3, 4, "need_by"));
RULE(reserve_request, NAMED_STRING(0, ATP_REF_MAX, "reservation_id"),
     NAMED_TABLES(1, atp_v1_reserve_line_rule, "lines"), NAMED_SCALAR(2, 8, "ttl_ms"),
     NAMED_SCALAR(3, 1, "allow_partial"), NAMED_SCALAR(4, 1, "policy"));
RULE(line_result, STRING(0, ATP_SKU_MAX), STRING(1, ATP_LOC_MAX), SCALAR(2, 8), SCALAR(3, 8), SCALAR(4, 4),
     SCALAR(5, 1));
RULE(atp_profile_query, NAMED_STRING(0, ATP_SKU_MAX, "sku"),
     { .id = 1, .kind = ATP_FB_STRINGS, .max = ATP_V1_LIST_MAX, .size = ATP_LOC_MAX, .name = "locations" },
     NAMED_SCALAR(2, 4, "horizon_days"));
RULE(profile_day, SCALAR(0, 4), SCALAR(1, 8), SCALAR(2, 8), SCALAR(3, 8));
RULE(atp_profile, STRING(0, ATP_SKU_MAX), TABLES(1, atp_v1_profile_day_rule));
RULE(reserve_reply, STRING(0, ATP_REF_MAX), TABLES(1, atp_v1_line_result_rule), SCALAR(2, 1));
RULE(release_request, NAMED_STRING(0, ATP_REF_MAX, "reservation_id"));
RULE(release_reply, SCALAR(0, 8), SCALAR(1, 1));
RULE(snapshot_request, NAMED_STRING(0, ATP_V1_REASON_MAX, "reason"));
RULE(snapshot_reply, SCALAR(0, 4), SCALAR(1, 8));
RULE(scan_request, NAMED_STRING(0, ATP_SKU_MAX, "after_sku"), NAMED_SCALAR(1, 4, "limit"));
#define BYTES(field, max_n, nm) \
	{ .id = field, .kind = ATP_FB_STRUCTS, .size = 1, .align = 1, .max = max_n, .name = nm }
RULE(subscribe_request, NAMED_STRING(0, ATP_V1_CHANNEL_MAX, "channel"), SCALAR(1, 8),
     BYTES(2, ATP_V1_TOKEN_MAX, "resume_token"));
#define U64S(field, nm) { .id = field, .kind = ATP_FB_STRUCTS, .size = 8, .align = 8, .max = ATP_V1_LIST_MAX, .name = nm }
RULE(redrive_request, U64S(0, "ids"), BYTES(1, ATP_V1_MESSAGE_MAX, "corrected"));
RULE(redrive_reply, { .id = 0, .kind = ATP_FB_STRUCTS, .size = 16, .align = 8, .max = ATP_V1_LIST_MAX });
RULE(dead_letters_request, NAMED_SCALAR(0, 8, "after_id"), NAMED_SCALAR(1, 4, "limit"),
     NAMED_STRING(2, ATP_SOURCE_MAX, "source"), NAMED_SCALAR(3, 4, "code"), NAMED_SCALAR(4, 8, "since_ms"));
RULE(dead_letter, SCALAR(0, 8), SCALAR(1, 8), STRING(2, ATP_SOURCE_MAX), SCALAR(3, 8), STRING(4, ATP_EVENT_KEY_MAX),
     SCALAR(5, 4), BYTES(6, ATP_V1_DEAD_LETTER_EVENT_MAX, "event"), SCALAR(7, 8));
RULE(dead_letters_reply, TABLES(0, atp_v1_dead_letter_rule), SCALAR(1, 1));
RULE(history_request, NAMED_STRING(0, ATP_SKU_MAX, "sku"), NAMED_STRING(1, ATP_LOC_MAX, "location"),
     NAMED_SCALAR(2, 8, "since_ms"));
RULE(history_reply, BYTES(0, ATP_V1_MESSAGE_MAX, "csv"), SCALAR(1, 1));
RULE(purge_request, U64S(0, "ids"), NAMED_SCALAR(1, 8, "before_ms"), NAMED_SCALAR(2, 1, "redriven_only"));
RULE(purge_reply, SCALAR(0, 4), SCALAR(1, 4));
RULE(delta, STRING(0, ATP_V1_CHANNEL_MAX), SCALAR(1, 8), STRING(2, ATP_SKU_MAX), STRING(3, ATP_LOC_MAX),
     SCALAR(4, 8), SCALAR(5, 8), SCALAR(6, 8), SCALAR(7, 1), SCALAR(8, 4), SCALAR(9, 4), SCALAR(10, 8),
     BYTES(11, ATP_V1_TOKEN_MAX, "token"));

static atp_fb_ref str(atp_fb_builder *b, atp_str s)
{
	return atp_fb_create_string_or_none(b, s.ptr, s.len);
}

/* A table of one vector of tables and nothing else. */
static atp_fb_ref table_of_tables(atp_fb_builder *b, const atp_fb_ref *refs, uint32_t n)
{
	atp_fb_ref vec = atp_fb_create_offset_vector(b, refs, n);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, vec);
	return atp_fb_end_table(b);
}

/* AtpQuery and AtpProfileQuery: sku (field 0) and locations (1); horizon_days (2) the profile's only (0: absent). */
static atp_fb_ref build_query(atp_fb_builder *b, atp_str sku, const atp_str *locations, uint32_t n, uint32_t horizon_days)
{
	atp_fb_ref loc[ATP_V1_LIST_MAX];
	if (n > ATP_V1_LIST_MAX) {
		b->overflow = true;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		loc[i] = atp_fb_create_string(b, locations[i].ptr, locations[i].len);
	atp_fb_ref s = str(b, sku), vec = locations ? atp_fb_create_offset_vector(b, loc, n) : 0;
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_offset(b, 1, vec);
	atp_fb_add_u32(b, 2, horizon_days, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_atp_query(atp_fb_builder *b, atp_str sku, const atp_str *locations, uint32_t n)
{
	return build_query(b, sku, locations, n, 0);
}

atp_fb_ref atp_v1_build_position_atp(atp_fb_builder *b, const atp_v1_position *p)
{
	atp_fb_ref sku = str(b, p->sku), loc = str(b, p->location);
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 2, p->on_hand, 0);
	atp_fb_add_i64(b, 3, p->held, 0);
	atp_fb_add_i64(b, 4, p->reserved, 0);
	atp_fb_add_i64(b, 5, p->safety_stock, 0);
	atp_fb_add_i64(b, 6, p->atp, 0);
	atp_fb_add_u64(b, 7, p->version, 0);
	atp_fb_add_offset(b, 0, sku);
	atp_fb_add_offset(b, 1, loc);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_atp_reply(atp_fb_builder *b, const atp_fb_ref *positions, uint32_t n, int64_t network_atp)
{
	atp_fb_ref vec = positions ? atp_fb_create_offset_vector(b, positions, n) : 0;
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 1, network_atp, 0);
	atp_fb_add_offset(b, 0, vec);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_atp_batch_query(atp_fb_builder *b, const atp_fb_ref *queries, uint32_t n)
{
	return table_of_tables(b, queries, n);
}

atp_fb_ref atp_v1_build_atp_batch_reply(atp_fb_builder *b, const atp_fb_ref *replies, uint32_t n)
{
	return table_of_tables(b, replies, n);
}

atp_fb_ref atp_v1_build_reserve_line(atp_fb_builder *b, atp_str sku, atp_str location, int64_t qty)
{
	return atp_v1_build_reserve_line_by(b, sku, location, qty, 0);
}

atp_fb_ref atp_v1_build_reserve_line_by(atp_fb_builder *b, atp_str sku, atp_str location, int64_t qty, uint32_t need_by)
{
	atp_fb_ref s = str(b, sku), l = str(b, location);
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 2, qty, 0);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_offset(b, 1, l);
	atp_fb_add_u32(b, 3, need_by, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_reserve_request(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
					uint32_t n, uint64_t ttl_ms, bool allow_partial)
{
	return atp_v1_build_reserve_request_policy(b, reservation_id, lines, n, ttl_ms,
						   allow_partial ? ATP_V1_PARTIAL : ATP_V1_PER_LINE);
}

atp_fb_ref atp_v1_build_reserve_request_policy(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
					       uint32_t n, uint64_t ttl_ms, uint8_t policy)
{
	atp_fb_ref id = str(b, reservation_id), vec = lines ? atp_fb_create_offset_vector(b, lines, n) : 0;
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 2, ttl_ms, 0);
	atp_fb_add_offset(b, 0, id);
	atp_fb_add_offset(b, 1, vec);
	atp_fb_add_u8(b, 3, policy == ATP_V1_PARTIAL, 0);  /* what a server older than the policy reads */
	atp_fb_add_u8(b, 4, policy, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_line_result(atp_fb_builder *b, atp_str sku, atp_str location, int64_t requested,
				    int64_t confirmed)
{
	return atp_v1_build_line_result_dated(b, sku, location, requested, confirmed, 0, false);
}

atp_fb_ref atp_v1_build_line_result_dated(atp_fb_builder *b, atp_str sku, atp_str location, int64_t requested,
					  int64_t confirmed, uint32_t promised_date, bool withdrawn)
{
	atp_fb_ref s = str(b, sku), l = str(b, location);
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 2, requested, 0);
	atp_fb_add_i64(b, 3, confirmed, 0);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_offset(b, 1, l);
	atp_fb_add_u32(b, 4, promised_date, 0);
	atp_fb_add_u8(b, 5, withdrawn, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_atp_profile_query(atp_fb_builder *b, atp_str sku, const atp_str *locations, uint32_t n,
					  uint32_t horizon_days)
{
	return build_query(b, sku, locations, n, horizon_days);
}

atp_fb_ref atp_v1_build_profile_day(atp_fb_builder *b, uint32_t date, int64_t atp, int64_t inbound)
{
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 1, atp, 0);
	atp_fb_add_i64(b, 2, inbound, 0);
	atp_fb_add_i64(b, 3, atp + inbound, 0);
	atp_fb_add_u32(b, 0, date, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_atp_profile(atp_fb_builder *b, atp_str sku, const atp_fb_ref *days, uint32_t n)
{
	atp_fb_ref s = str(b, sku), vec = atp_fb_create_offset_vector(b, days, n);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_offset(b, 1, vec);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_reserve_reply(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
				      uint32_t n, bool duplicate)
{
	atp_fb_ref id = str(b, reservation_id), vec = lines ? atp_fb_create_offset_vector(b, lines, n) : 0;
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, id);
	atp_fb_add_offset(b, 1, vec);
	atp_fb_add_u8(b, 2, duplicate, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_release_request(atp_fb_builder *b, atp_str reservation_id)
{
	atp_fb_ref id = str(b, reservation_id);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, id);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_release_reply(atp_fb_builder *b, int64_t released, bool found)
{
	atp_fb_start_table(b);
	atp_fb_add_i64(b, 0, released, 0);
	atp_fb_add_u8(b, 1, found, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_snapshot_request(atp_fb_builder *b, atp_str reason)
{
	atp_fb_ref r = str(b, reason);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, r);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_snapshot_reply(atp_fb_builder *b, uint32_t shards, uint64_t millis)
{
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 1, millis, 0);
	atp_fb_add_u32(b, 0, shards, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_scan_request(atp_fb_builder *b, atp_str after_sku, uint32_t limit)
{
	atp_fb_ref s = str(b, after_sku);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_u32(b, 1, limit, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_subscribe_request(atp_fb_builder *b, atp_str channel, const uint8_t *token, uint32_t len)
{
	atp_fb_ref t = len ? atp_fb_create_vector(b, token, len, 1, 1) : 0;
	atp_fb_ref c = str(b, channel);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, c);
	atp_fb_add_offset(b, 2, t);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_delta(atp_fb_builder *b, const atp_v1_delta *d, atp_v1_delta_refs *refs)
{
	atp_fb_ref t = d->token_len ? atp_fb_create_vector(b, d->token, d->token_len, 1, 1) : 0;
	atp_fb_ref c = str(b, d->channel), s = str(b, d->sku), l = str(b, d->location);
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 1, d->seq, 0);
	atp_fb_add_i64(b, 4, d->atp, 0);
	atp_fb_add_i64(b, 5, d->previous_atp, 0);
	atp_fb_add_u64(b, 6, d->version, 0);
	atp_fb_add_i64(b, 10, d->sku_atp, 0);
	atp_fb_add_offset(b, 0, c);
	atp_fb_add_offset(b, 2, s);
	atp_fb_add_offset(b, 3, l);
	atp_fb_add_offset(b, 11, t);
	atp_fb_add_u32(b, 8, d->shard, 0);
	atp_fb_add_u32(b, 9, d->index, 0);
	atp_fb_add_u8(b, 7, d->kind, (uint8_t)~d->kind);  /* always written: a subscriber's copy may change it */
	atp_fb_ref root = atp_fb_end_table(b);
	if (refs)
		*refs = (atp_v1_delta_refs){ .kind_ref = b->field_at[7], .token_ref = t };
	return root;
}

/*
 * The fixed layout: root offset; vtable (12 fields); the table (soffset,
 * pad, five 8-byte scalars, six 4-byte ones, the kind); then each string
 * (length, bytes, NUL) and the token vector, each 4-aligned.
 */
enum {
	D_VT = 4, D_T = 32,
	D_SEQ = 8, D_ATP = 16, D_PREV = 24, D_VERSION = 32, D_SKU_ATP = 40,
	D_CHANNEL = 48, D_SKU = 52, D_LOC = 56, D_TOKEN = 60, D_SHARD = 64, D_INDEX = 68, D_KIND = 72,
	D_TSIZE = 76,
};

static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* A string or byte vector at *at (4-aligned): its offset from the field at field, or 0 when absent. */
static void put_bytes(uint8_t *out, size_t *at, uint32_t field, const void *p, uint32_t n, bool nul)
{
	if (!n) {
		put32(out + field, 0);
		return;
	}
	put32(out + field, (uint32_t)(*at - field));
	put32(out + *at, n);
	memcpy(out + *at + 4, p, n);
	size_t end = *at + 4 + n;
	if (nul)
		out[end++] = 0;
	while (end % 4)
		out[end++] = 0;
	*at = end;
}

size_t atp_v1_encode_delta(const atp_v1_delta *d, uint8_t *out, size_t cap, uint32_t *kind_off, uint32_t *token_off)
{
	size_t need = D_T + D_TSIZE + 4 + 4 * 8 + d->channel.len + d->sku.len + d->location.len + d->token_len + 8;
	if (need > cap)
		return 0;
	static const uint16_t vt[14] = { 28, D_TSIZE, D_CHANNEL, D_SEQ, D_SKU, D_LOC, D_ATP, D_PREV, D_VERSION, D_KIND,
					 D_SHARD, D_INDEX, D_SKU_ATP, D_TOKEN };
	put32(out, D_T);
	memcpy(out + D_VT, vt, sizeof(vt));
	uint8_t *t = out + D_T;
	put32(t, D_T - D_VT);
	put32(t + 4, 0);
	put64(t + D_SEQ, d->seq);
	put64(t + D_ATP, (uint64_t)d->atp);
	put64(t + D_PREV, (uint64_t)d->previous_atp);
	put64(t + D_VERSION, d->version);
	put64(t + D_SKU_ATP, (uint64_t)d->sku_atp);
	put32(t + D_SHARD, d->shard);
	put32(t + D_INDEX, d->index);
	put32(t + D_KIND, d->kind);  /* the kind byte and three of padding */
	size_t at = D_T + D_TSIZE;
	uint16_t vt_fields[14];
	memcpy(vt_fields, vt, sizeof(vt));
	put_bytes(out, &at, D_T + D_CHANNEL, d->channel.ptr, d->channel.len, true);
	put_bytes(out, &at, D_T + D_SKU, d->sku.ptr, d->sku.len, true);
	put_bytes(out, &at, D_T + D_LOC, d->location.ptr, d->location.len, true);
	*token_off = (uint32_t)at + 4;
	put_bytes(out, &at, D_T + D_TOKEN, d->token, d->token_len, false);
	/* An absent string or token: its vtable entry says so (its slot stays, unused). */
	if (!d->channel.len)
		vt_fields[2] = 0;
	if (!d->sku.len)
		vt_fields[4] = 0;
	if (!d->location.len)
		vt_fields[5] = 0;
	if (!d->token_len)
		vt_fields[13] = 0;
	memcpy(out + D_VT, vt_fields, sizeof(vt_fields));
	while (at % 8)
		out[at++] = 0;
	*kind_off = D_T + D_KIND;
	return at;
}

/* A vector of n u64 as a struct vector (8-aligned). */
static atp_fb_ref u64_vector(atp_fb_builder *b, const uint64_t *v, uint32_t n)
{
	return v ? atp_fb_create_vector(b, v, n, 8, 8) : 0;
}

atp_fb_ref atp_v1_build_redrive_request(atp_fb_builder *b, const uint64_t *ids, uint32_t n, const uint8_t *corrected,
					uint32_t corrected_len)
{
	atp_fb_ref vec = u64_vector(b, ids, n), fix = corrected ? atp_fb_create_vector(b, corrected, corrected_len, 1, 1) : 0;
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, vec);
	atp_fb_add_offset(b, 1, fix);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_redrive_reply(atp_fb_builder *b, const atp_v1_redrive_result *r, uint32_t n)
{
	atp_fb_ref vec = atp_fb_create_vector(b, r, n, sizeof(*r), 8);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, vec);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_purge_request(atp_fb_builder *b, const uint64_t *ids, uint32_t n, uint64_t before_ms,
				      bool redriven_only)
{
	atp_fb_ref vec = u64_vector(b, ids, n);
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 1, before_ms, 0);
	atp_fb_add_offset(b, 0, vec);
	atp_fb_add_u8(b, 2, redriven_only ? 1 : 0, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_purge_reply(atp_fb_builder *b, uint32_t purged, uint32_t kept)
{
	atp_fb_start_table(b);
	atp_fb_add_u32(b, 0, purged, 0);
	atp_fb_add_u32(b, 1, kept, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_dead_letters_request(atp_fb_builder *b, const atp_v1_dead_letters_query *q)
{
	atp_fb_ref src = str(b, q->source);
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 0, q->after_id, 0);
	atp_fb_add_u64(b, 4, q->since_ms, 0);
	atp_fb_add_offset(b, 2, src);
	atp_fb_add_u32(b, 1, q->limit, 0);
	atp_fb_add_u32(b, 3, (uint32_t)q->code, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_dead_letter(atp_fb_builder *b, const atp_v1_dead_letter *d)
{
	atp_fb_ref src = str(b, d->source), id = str(b, d->event_id),
		   ev = d->event_len ? atp_fb_create_vector(b, d->event, d->event_len, 1, 1) : 0;
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 0, d->id, 0);
	atp_fb_add_u64(b, 1, d->arrival_ms, 0);
	atp_fb_add_u64(b, 3, d->seq, 0);
	atp_fb_add_u64(b, 7, d->redrive_seq, 0);
	atp_fb_add_offset(b, 2, src);
	atp_fb_add_offset(b, 4, id);
	atp_fb_add_offset(b, 6, ev);
	atp_fb_add_u32(b, 5, (uint32_t)d->code, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_dead_letters_reply(atp_fb_builder *b, const atp_fb_ref *entries, uint32_t n, bool more)
{
	atp_fb_ref vec = atp_fb_create_offset_vector(b, entries, n);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, vec);
	atp_fb_add_u8(b, 1, more ? 1 : 0, 0);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_history_request(atp_fb_builder *b, atp_str sku, atp_str location, uint64_t since_ms)
{
	atp_fb_ref s = str(b, sku), l = str(b, location);
	atp_fb_start_table(b);
	atp_fb_add_u64(b, 2, since_ms, 0);
	atp_fb_add_offset(b, 0, s);
	atp_fb_add_offset(b, 1, l);
	return atp_fb_end_table(b);
}

atp_fb_ref atp_v1_build_history_reply(atp_fb_builder *b, const uint8_t *csv, uint32_t len, bool truncated)
{
	atp_fb_ref v = atp_fb_create_vector(b, csv, len, 1, 1);
	atp_fb_start_table(b);
	atp_fb_add_offset(b, 0, v);
	atp_fb_add_u8(b, 1, truncated ? 1 : 0, 0);
	return atp_fb_end_table(b);
}
