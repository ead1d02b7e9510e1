/*
 * atp/wire_api.h — fbs/atp.fbs and fbs/delta.fbs in C (namespace atp.v1).
 *
 * Verify first: atp_v1_verify(buf, len, &atp_v1_<table>_rule, &rc) proves a
 * message safe against its schema and the limits below and returns its root
 * table; only then read it with the zero-copy accessors, which give the
 * schema's defaults for absent fields. Builders write into an
 * atp_fb_builder (caller memory, no malloc); build children first.
 */
#ifndef ATP_WIRE_API_H
#define ATP_WIRE_API_H

#include "atp/event.h"
#include "atp/fb.h"
#include "atp/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_V1_MESSAGE_MAX (4u << 20)  /* bytes of one message */
#define ATP_V1_LIST_MAX 4096u          /* elements of any list: locations, lines, queries, positions */
#define ATP_V1_TABLES_MAX 65536u       /* tables visited while verifying one message */
#define ATP_V1_CHANNEL_MAX 64u         /* bytes of a channel name */
#define ATP_V1_REASON_MAX 200u         /* bytes of an operator's reason (Admin calls) */

extern const atp_fb_table_rule atp_v1_atp_query_rule, atp_v1_position_atp_rule, atp_v1_atp_reply_rule,
	atp_v1_atp_batch_query_rule, atp_v1_atp_batch_reply_rule, atp_v1_reserve_request_rule,
	atp_v1_reserve_reply_rule, atp_v1_release_request_rule, atp_v1_release_reply_rule,
	atp_v1_scan_request_rule, atp_v1_subscribe_request_rule, atp_v1_delta_rule, atp_v1_snapshot_request_rule,
	atp_v1_snapshot_reply_rule, atp_v1_redrive_request_rule, atp_v1_redrive_reply_rule, atp_v1_purge_request_rule,
	atp_v1_purge_reply_rule, atp_v1_dead_letters_request_rule, atp_v1_dead_letter_rule,
	atp_v1_dead_letters_reply_rule, atp_v1_history_request_rule, atp_v1_history_reply_rule,
	atp_v1_atp_profile_query_rule, atp_v1_atp_profile_rule;

/* The root table of msg verified by rule, or NULL with *rc an ATP_FB_E_* code. */
static inline const uint8_t *atp_v1_verify(const void *msg, size_t msg_len, const atp_fb_table_rule *rule, int *rc)
{
	return atp_fb_verify_message(msg, msg_len, ATP_V1_MESSAGE_MAX, ATP_V1_TABLES_MAX, rule, rc);
}

/* The same, naming the field at fault in where ("lines[2].location"; empty when none is named). */
static inline const uint8_t *atp_v1_verify_at(const void *msg, size_t msg_len, const atp_fb_table_rule *rule, int *rc,
					      char *where, size_t where_len)
{
	return atp_fb_verify_message_at(msg, msg_len, ATP_V1_MESSAGE_MAX, ATP_V1_TABLES_MAX, rule, rc, where, where_len);
}

/* ---- accessors: atp_v1_<table>_<field>(table) ---- */

static inline atp_str atp_v1_str(const uint8_t *t, unsigned id)
{
	uint32_t n;
	const char *p = atp_fb_get_string(t, id, &n);
	return (atp_str){ p, n };
}

#define ATP_V1_STRING(name, id) \
	static inline atp_str atp_v1_##name(const uint8_t *t) { return atp_v1_str(t, id); }
#define ATP_V1_I64(name, id) \
	static inline int64_t atp_v1_##name(const uint8_t *t) { return atp_fb_get_i64(t, id); }
#define ATP_V1_U64(name, id) \
	static inline uint64_t atp_v1_##name(const uint8_t *t) { return atp_fb_get_u64(t, id); }
#define ATP_V1_BOOL(name, id) \
	static inline bool atp_v1_##name(const uint8_t *t) { return atp_fb_get_u8(t, id) != 0; }
/* A vector of tables: its length, and its i-th table. */
#define ATP_V1_TABLES(name, id) \
	static inline uint32_t atp_v1_##name##_count(const uint8_t *t) \
	{ uint32_t n; atp_fb_get_vector(t, id, &n); return n; } \
	static inline const uint8_t *atp_v1_##name(const uint8_t *t, uint32_t i) \
	{ uint32_t n; return atp_fb_vector_table(atp_fb_get_vector(t, id, &n), i); }

ATP_V1_STRING(atp_query_sku, 0)
static inline uint32_t atp_v1_atp_query_locations_count(const uint8_t *t)
{
	uint32_t n;
	atp_fb_get_vector(t, 1, &n);
	return n;
}
static inline atp_str atp_v1_atp_query_location(const uint8_t *t, uint32_t i)
{
	uint32_t n, slen;
	const char *p = atp_fb_vector_string(atp_fb_get_vector(t, 1, &n), i, &slen);
	return (atp_str){ p, slen };
}

ATP_V1_STRING(position_atp_sku, 0)
ATP_V1_STRING(position_atp_location, 1)
ATP_V1_I64(position_atp_on_hand, 2)
ATP_V1_I64(position_atp_held, 3)
ATP_V1_I64(position_atp_reserved, 4)
ATP_V1_I64(position_atp_safety_stock, 5)
ATP_V1_I64(position_atp_atp, 6)
ATP_V1_U64(position_atp_version, 7)

ATP_V1_TABLES(atp_reply_positions, 0)
ATP_V1_I64(atp_reply_network_atp, 1)
ATP_V1_TABLES(atp_batch_query_queries, 0)
ATP_V1_TABLES(atp_batch_reply_replies, 0)

ATP_V1_STRING(reserve_line_sku, 0)
ATP_V1_STRING(reserve_line_location, 1)
ATP_V1_I64(reserve_line_qty, 2)
static inline uint32_t atp_v1_reserve_line_need_by(const uint8_t *t) { return atp_fb_get_u32(t, 3); }
ATP_V1_STRING(reserve_request_reservation_id, 0)
ATP_V1_TABLES(reserve_request_lines, 1)
ATP_V1_U64(reserve_request_ttl_ms, 2)
ATP_V1_BOOL(reserve_request_allow_partial, 3)
enum atp_v1_reserve_policy { ATP_V1_PER_LINE = 0, ATP_V1_ALL_OR_NOTHING = 1, ATP_V1_PARTIAL = 2 };
static inline uint8_t atp_v1_reserve_request_policy(const uint8_t *t)
{
	return atp_fb_get_u8(t, 4);
}

ATP_V1_STRING(line_result_sku, 0)
ATP_V1_STRING(line_result_location, 1)
ATP_V1_I64(line_result_requested, 2)
ATP_V1_I64(line_result_confirmed, 3)
static inline uint32_t atp_v1_line_result_promised_date(const uint8_t *t) { return atp_fb_get_u32(t, 4); }
ATP_V1_BOOL(line_result_withdrawn, 5)

/* AtpProfileQuery: sku, locations as AtpQuery's; horizon_days. AtpProfile: sku, days. */
#define ATP_V1_HORIZON_MAX 366u
#define ATP_V1_HORIZON_DEFAULT 30u
ATP_V1_STRING(atp_profile_query_sku, 0)
static inline uint32_t atp_v1_atp_profile_query_horizon_days(const uint8_t *t) { return atp_fb_get_u32(t, 2); }
ATP_V1_STRING(atp_profile_sku, 0)
ATP_V1_TABLES(atp_profile_days, 1)
static inline uint32_t atp_v1_profile_day_date(const uint8_t *t) { return atp_fb_get_u32(t, 0); }
ATP_V1_I64(profile_day_atp, 1)
ATP_V1_I64(profile_day_inbound, 2)
ATP_V1_I64(profile_day_available, 3)
ATP_V1_STRING(reserve_reply_reservation_id, 0)
ATP_V1_TABLES(reserve_reply_lines, 1)
ATP_V1_BOOL(reserve_reply_duplicate, 2)

ATP_V1_STRING(release_request_reservation_id, 0)
ATP_V1_I64(release_reply_released, 0)
ATP_V1_BOOL(release_reply_found, 1)
ATP_V1_STRING(snapshot_request_reason, 0)
ATP_V1_U64(snapshot_reply_millis, 1)
static inline uint32_t atp_v1_snapshot_reply_shards(const uint8_t *t) { return atp_fb_get_u32(t, 0); }

ATP_V1_STRING(scan_request_after_sku, 0)
static inline uint32_t atp_v1_scan_request_limit(const uint8_t *t)
{
	return atp_fb_get_u32(t, 1);
}
#define ATP_V1_TOKEN_MAX 4096u       /* bytes of a resume token */
ATP_V1_STRING(subscribe_request_channel, 0)
static inline const uint8_t *atp_v1_subscribe_request_resume_token(const uint8_t *t, uint32_t *n)
{
	return atp_fb_get_vector(t, 2, n);
}

/* RedriveRequest, RedriveReply, PurgeRequest, PurgeReply (the dead-letter store's Admin calls). */
typedef struct atp_v1_redrive_result {
	uint64_t id;
	int32_t code;   /* 0 redriven now, ATP_DUPLICATE redriven before, else an ATP_E_* */
	int32_t pad;
} atp_v1_redrive_result;
static inline const uint64_t *atp_v1_redrive_request_ids(const uint8_t *t, uint32_t *n)
{
	return (const uint64_t *)(const void *)atp_fb_get_vector(t, 0, n);
}
static inline const uint8_t *atp_v1_redrive_request_corrected(const uint8_t *t, uint32_t *n)
{
	return atp_fb_get_vector(t, 1, n);
}
static inline const atp_v1_redrive_result *atp_v1_redrive_reply_results(const uint8_t *t, uint32_t *n)
{
	return (const atp_v1_redrive_result *)(const void *)atp_fb_get_vector(t, 0, n);
}
static inline const uint64_t *atp_v1_purge_request_ids(const uint8_t *t, uint32_t *n)
{
	return (const uint64_t *)(const void *)atp_fb_get_vector(t, 0, n);
}
ATP_V1_U64(purge_request_before_ms, 1)
ATP_V1_BOOL(purge_request_redriven_only, 2)
static inline uint32_t atp_v1_purge_reply_purged(const uint8_t *t) { return atp_fb_get_u32(t, 0); }
static inline uint32_t atp_v1_purge_reply_kept(const uint8_t *t) { return atp_fb_get_u32(t, 1); }

#define ATP_V1_DEAD_LETTERS_MAX 500u         /* entries of one DeadLettersReply */
#define ATP_V1_DEAD_LETTER_EVENT_MAX 4096u   /* bytes of a dead letter's event (ATP_DLQ_EVENT_MAX) */
typedef struct atp_v1_dead_letters_query {
	uint64_t after_id, since_ms;
	uint32_t limit;
	int32_t code;
	atp_str source;
} atp_v1_dead_letters_query;
typedef struct atp_v1_dead_letter {
	uint64_t id, arrival_ms, seq, redrive_seq;
	int32_t code;
	atp_str source, event_id;
	const uint8_t *event;
	uint32_t event_len;
} atp_v1_dead_letter;
ATP_V1_U64(dead_letters_request_after_id, 0)
static inline uint32_t atp_v1_dead_letters_request_limit(const uint8_t *t) { return atp_fb_get_u32(t, 1); }
ATP_V1_STRING(dead_letters_request_source, 2)
static inline int32_t atp_v1_dead_letters_request_code(const uint8_t *t) { return (int32_t)atp_fb_get_u32(t, 3); }
ATP_V1_U64(dead_letters_request_since_ms, 4)
ATP_V1_TABLES(dead_letters_reply_entries, 0)
ATP_V1_BOOL(dead_letters_reply_more, 1)
/* A DeadLetter table read whole (strings and the event point into the message). */
static inline atp_v1_dead_letter atp_v1_dead_letter_of(const uint8_t *t)
{
	atp_v1_dead_letter d = { .id = atp_fb_get_u64(t, 0), .arrival_ms = atp_fb_get_u64(t, 1), .seq = atp_fb_get_u64(t, 3),
				 .redrive_seq = atp_fb_get_u64(t, 7), .code = (int32_t)atp_fb_get_u32(t, 5),
				 .source = atp_v1_str(t, 2), .event_id = atp_v1_str(t, 4) };
	d.event = atp_fb_get_vector(t, 6, &d.event_len);
	return d;
}

ATP_V1_STRING(history_request_sku, 0)
ATP_V1_STRING(history_request_location, 1)
ATP_V1_U64(history_request_since_ms, 2)
static inline const uint8_t *atp_v1_history_reply_csv(const uint8_t *t, uint32_t *n)
{
	return atp_fb_get_vector(t, 0, n);
}
ATP_V1_BOOL(history_reply_truncated, 1)

enum atp_v1_delta_kind {
	ATP_V1_DELTA_UPDATE = 0,
	ATP_V1_DELTA_SNAPSHOT = 1,
	ATP_V1_DELTA_RESYNC = 2,
	ATP_V1_DELTA_LIVE = 3,
	ATP_V1_DELTA_HEARTBEAT = 4,
	ATP_V1_DELTA_CONFLATED = 5,
};
ATP_V1_STRING(delta_channel, 0)
ATP_V1_U64(delta_seq, 1)
ATP_V1_STRING(delta_sku, 2)
ATP_V1_STRING(delta_location, 3)
ATP_V1_I64(delta_atp, 4)
ATP_V1_I64(delta_previous_atp, 5)
ATP_V1_U64(delta_version, 6)
static inline uint8_t atp_v1_delta_kind(const uint8_t *t)
{
	return atp_fb_get_u8(t, 7);
}
static inline uint32_t atp_v1_delta_shard(const uint8_t *t)
{
	return atp_fb_get_u32(t, 8);
}
static inline uint32_t atp_v1_delta_index(const uint8_t *t)
{
	return atp_fb_get_u32(t, 9);
}
ATP_V1_I64(delta_sku_atp, 10)
static inline const uint8_t *atp_v1_delta_token(const uint8_t *t, uint32_t *n)
{
	return atp_fb_get_vector(t, 11, n);
}

/* ---- builders ---- */

typedef struct atp_v1_position {
	atp_str sku, location;
	int64_t on_hand, held, reserved, safety_stock, atp;
	uint64_t version;
} atp_v1_position;

typedef struct atp_v1_delta {
	atp_str channel, sku, location;
	uint64_t seq, version;
	int64_t atp, previous_atp, sku_atp;
	uint32_t shard, index;
	uint8_t kind;
	const uint8_t *token;   /* token_len bytes (none when 0) */
	uint32_t token_len;
} atp_v1_delta;

/*
 * Where a built Delta's kind (always written, even UPDATE) and token bytes
 * lie, as refs of the builder: once finished into size bytes, at
 * size - kind_ref and size - token_ref + 4 of the message. The channel
 * stream builds a message once and patches both per subscriber.
 */
typedef struct atp_v1_delta_refs {
	atp_fb_ref kind_ref, token_ref;
} atp_v1_delta_refs;

atp_fb_ref atp_v1_build_atp_query(atp_fb_builder *b, atp_str sku, const atp_str *locations, uint32_t n);
atp_fb_ref atp_v1_build_position_atp(atp_fb_builder *b, const atp_v1_position *p);
atp_fb_ref atp_v1_build_atp_reply(atp_fb_builder *b, const atp_fb_ref *positions, uint32_t n, int64_t network_atp);
atp_fb_ref atp_v1_build_atp_batch_query(atp_fb_builder *b, const atp_fb_ref *queries, uint32_t n);
atp_fb_ref atp_v1_build_atp_batch_reply(atp_fb_builder *b, const atp_fb_ref *replies, uint32_t n);
atp_fb_ref atp_v1_build_reserve_line(atp_fb_builder *b, atp_str sku, atp_str location, int64_t qty);
atp_fb_ref atp_v1_build_reserve_request(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
					uint32_t n, uint64_t ttl_ms, bool allow_partial);
/* The same with a policy (enum atp_v1_reserve_policy); allow_partial is written too, for older servers. */
atp_fb_ref atp_v1_build_reserve_request_policy(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
					       uint32_t n, uint64_t ttl_ms, uint8_t policy);
atp_fb_ref atp_v1_build_line_result(atp_fb_builder *b, atp_str sku, atp_str location, int64_t requested,
				    int64_t confirmed);
/* With a need-by day (YYYYMMDD, 0: none). */
atp_fb_ref atp_v1_build_reserve_line_by(atp_fb_builder *b, atp_str sku, atp_str location, int64_t qty, uint32_t need_by);
/* A line's result with its promised date (YYYYMMDD, 0: now or not) and whether it was withdrawn. */
atp_fb_ref atp_v1_build_line_result_dated(atp_fb_builder *b, atp_str sku, atp_str location, int64_t requested,
					  int64_t confirmed, uint32_t promised_date, bool withdrawn);
atp_fb_ref atp_v1_build_atp_profile_query(atp_fb_builder *b, atp_str sku, const atp_str *locations, uint32_t n,
					  uint32_t horizon_days);
atp_fb_ref atp_v1_build_profile_day(atp_fb_builder *b, uint32_t date, int64_t atp, int64_t inbound);
atp_fb_ref atp_v1_build_atp_profile(atp_fb_builder *b, atp_str sku, const atp_fb_ref *days, uint32_t n);
atp_fb_ref atp_v1_build_reserve_reply(atp_fb_builder *b, atp_str reservation_id, const atp_fb_ref *lines,
				      uint32_t n, bool duplicate);
atp_fb_ref atp_v1_build_release_request(atp_fb_builder *b, atp_str reservation_id);
atp_fb_ref atp_v1_build_release_reply(atp_fb_builder *b, int64_t released, bool found);
atp_fb_ref atp_v1_build_snapshot_request(atp_fb_builder *b, atp_str reason);
atp_fb_ref atp_v1_build_snapshot_reply(atp_fb_builder *b, uint32_t shards, uint64_t millis);
atp_fb_ref atp_v1_build_scan_request(atp_fb_builder *b, atp_str after_sku, uint32_t limit);
atp_fb_ref atp_v1_build_subscribe_request(atp_fb_builder *b, atp_str channel, const uint8_t *token, uint32_t len);
atp_fb_ref atp_v1_build_redrive_request(atp_fb_builder *b, const uint64_t *ids, uint32_t n, const uint8_t *corrected,
					uint32_t corrected_len);
atp_fb_ref atp_v1_build_redrive_reply(atp_fb_builder *b, const atp_v1_redrive_result *r, uint32_t n);
atp_fb_ref atp_v1_build_purge_request(atp_fb_builder *b, const uint64_t *ids, uint32_t n, uint64_t before_ms,
				      bool redriven_only);
atp_fb_ref atp_v1_build_purge_reply(atp_fb_builder *b, uint32_t purged, uint32_t kept);
atp_fb_ref atp_v1_build_dead_letters_request(atp_fb_builder *b, const atp_v1_dead_letters_query *q);
atp_fb_ref atp_v1_build_dead_letter(atp_fb_builder *b, const atp_v1_dead_letter *d);
atp_fb_ref atp_v1_build_history_request(atp_fb_builder *b, atp_str sku, atp_str location, uint64_t since_ms);
atp_fb_ref atp_v1_build_history_reply(atp_fb_builder *b, const uint8_t *csv, uint32_t len, bool truncated);
atp_fb_ref atp_v1_build_dead_letters_reply(atp_fb_builder *b, const atp_fb_ref *entries, uint32_t n, bool more);
/* refs may be NULL. */
atp_fb_ref atp_v1_build_delta(atp_fb_builder *b, const atp_v1_delta *d, atp_v1_delta_refs *refs);

/*
 * The same Delta written front to back in one pass, in a fixed layout
 * (the vtable first, every scalar present, then the strings and the
 * token), for the channel stream's hot path: the bytes read as the
 * builder's do. out must be 8-aligned; returns the size, or 0 when cap is
 * too small (ATP_V1_DELTA_MAX always suffices). *kind_off and *token_off
 * get where the kind byte and the token's bytes lie.
 */
#define ATP_V1_DELTA_MAX (160u + ATP_V1_CHANNEL_MAX + ATP_SKU_MAX + ATP_LOC_MAX + ATP_V1_TOKEN_MAX)
size_t atp_v1_encode_delta(const atp_v1_delta *d, uint8_t *out, size_t cap, uint32_t *kind_off,
			   uint32_t *token_off);

#ifdef __cplusplus
}
#endif

#endif
