/*
 * grpc_methods.c — what each gRPC method does (atp/grpc_server.h): verify
 * and check the request (a bad field is INVALID_ARGUMENT naming it), read
 * or submit to the engine, build the reply.
 *
 * Reserve and Release are events of the internal source "@grpc", one seq
 * each: a Reserve line is a RESERVE in its SKU's shard, a Release one
 * RELEASE of the whole reservation per shard (again, while the shard says
 * open lines remain). pending[seq % PENDING_MAX] ties a seq to its call
 * and line; the reply is built when the last completion came back, that
 * is once every line is durable.
 */
#define _GNU_SOURCE
#include "grpc_internal.h"

#include "atp/inbound.h"
#include "atp/limits.h"
#include "atp/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_MAX_MS (30ull * 24 * 3600 * 1000)
#define RELEASE_FOUND 0x10000u   /* line_done.flags of a Release shard: some line was open */
#define RELEASE_AGAIN 0x20000u   /* ... and it must be released again */

static const char *bad_string = "missing, too long or with control bytes";

/* Answer with an error and leave the function. */
#define FAIL(...)                     \
	do {                          \
		grpc_call_respond(__VA_ARGS__); \
		return;               \
	} while (0)

/* ---- GetAtp and GetAtpBatch ---- */

/*
 * The AtpReply of query q into b. strict: an unknown SKU is NOT_FOUND
 * (else an empty reply). G_OK, or a status with why filled.
 */
static int atp_reply(atp_grpc_server *g, atp_fb_builder *b, const uint8_t *q, const char *where, bool strict,
		     atp_fb_ref *out, char *why, size_t whylen)
{
	atp_str sku = atp_v1_atp_query_sku(q);
	if (!atp_str_valid(sku, ATP_SKU_MAX)) {
		snprintf(why, whylen, "%ssku: %s", where, bad_string);
		return G_INVALID_ARGUMENT;
	}
	uint32_t n_loc = atp_v1_atp_query_locations_count(q);
	for (uint32_t i = 0; i < n_loc; i++) {
		if (!atp_str_valid(atp_v1_atp_query_location(q, i), ATP_LOC_MAX)) {
			snprintf(why, whylen, "%slocations[%u]: %s", where, i, bad_string);
			return G_INVALID_ARGUMENT;
		}
	}
	atp_engine_position *pos = g->positions;
	size_t n = atp_engine_read_sku(g->e, sku, pos, n_loc ? 0 : ATP_V1_LIST_MAX);
	if (n == 0 && strict) {
		snprintf(why, whylen, "%.*s: no such SKU", (int)sku.len, sku.ptr);
		return G_NOT_FOUND;
	}
	if (n > ATP_V1_LIST_MAX)
		n = ATP_V1_LIST_MAX;
	if (n_loc) {
		n = n_loc;
		for (uint32_t i = 0; i < n_loc; i++) {
			pos[i].sku = sku;
			pos[i].location = atp_v1_atp_query_location(q, i);
			if (!atp_engine_read(g->e, sku, pos[i].location, &pos[i].v))
				pos[i].v = (atp_position_view){ 0 };
		}
	}
	atp_fb_ref refs[ATP_V1_LIST_MAX];
	int64_t network = 0;
	for (size_t i = 0; i < n; i++) {
		const atp_position_view *v = &pos[i].v;
		int64_t a = v->on_hand - v->held - v->reserved - v->safety_stock;
		atp_v1_position p = { .sku = pos[i].sku, .location = pos[i].location, .on_hand = v->on_hand,
				      .held = v->held, .reserved = v->reserved, .safety_stock = v->safety_stock,
				      .atp = a > 0 ? a : 0, .version = v->version };
		network += p.atp;
		refs[i] = atp_v1_build_position_atp(b, &p);
	}
	*out = atp_v1_build_atp_reply(b, refs, (uint32_t)n, network);
	return G_OK;
}

/* Finish b with root and answer c with it. */
static void reply_with(atp_grpc_server *g, call *c, atp_fb_builder *b, atp_fb_ref root)
{
	size_t size;
	const uint8_t *msg = atp_fb_finish(b, root, NULL, &size);
	if (!msg) {
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "the reply would exceed %u bytes", (unsigned)SCRATCH_BYTES);
		return;
	}
	if (!grpc_call_append(c, msg, (uint32_t)size)) {
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	grpc_call_respond(g, c, G_OK, "%s", "");
}

static const uint8_t *verify(atp_grpc_server *g, call *c, const atp_fb_table_rule *rule, const char *what)
{
	int rc;
	char where[96];
	const uint8_t *root = atp_v1_verify_at(c->msg, c->msg_len, rule, &rc, where, sizeof(where));
	if (!root)
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "not a valid %s: %s%s%s", what, where, where[0] ? ": " : "",
			  atp_fb_error_message(rc));
	return root;
}

const uint8_t *grpc_method_verify(atp_grpc_server *g, call *c, const atp_fb_table_rule *rule, const char *what)
{
	return verify(g, c, rule, what);
}

void grpc_method_reply(atp_grpc_server *g, call *c, atp_fb_builder *b, atp_fb_ref root)
{
	reply_with(g, c, b, root);
}

static void get_atp(atp_grpc_server *g, call *c)
{
	const uint8_t *q = verify(g, c, &atp_v1_atp_query_rule, "atp.v1.AtpQuery");
	if (!q)
		return;
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	atp_fb_ref root;
	char why[160];
	int st = atp_reply(g, &b, q, "", true, &root, why, sizeof(why));
	if (st != G_OK)
		grpc_call_respond(g, c, st, "%s", why);
	else
		reply_with(g, c, &b, root);
}

static void get_atp_batch(atp_grpc_server *g, call *c)
{
	const uint8_t *bq = verify(g, c, &atp_v1_atp_batch_query_rule, "atp.v1.AtpBatchQuery");
	if (!bq)
		return;
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	uint32_t n = atp_v1_atp_batch_query_queries_count(bq);
	static atp_fb_ref refs[ATP_V1_LIST_MAX];
	for (uint32_t i = 0; i < n; i++) {
		char where[32], why[160];
		snprintf(where, sizeof(where), "queries[%u].", i);
		int st = atp_reply(g, &b, atp_v1_atp_batch_query_queries(bq, i), where, false, &refs[i], why, sizeof(why));
		if (st != G_OK) {
			grpc_call_respond(g, c, st, "%s", why);
			return;
		}
	}
	reply_with(g, c, &b, atp_v1_build_atp_batch_reply(&b, refs, n));
}

/* ---- grpc.health.v1.Health/Check ---- */

/* A protobuf varint at *p (advanced); false when it runs past end or beyond 64 bits. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* HealthCheckRequest { string service = 1; }: the service, or false when the bytes are not one. */
static bool health_request(const uint8_t *p, uint32_t n, atp_str *service)
{
	*service = (atp_str){ "", 0 };
	if (n == 0)
		return true;  /* every field at its default (and no buffer at all) */
	const uint8_t *end = p + n;
	while (p < end) {
		uint64_t key, len;
		if (!varint(&p, end, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!varint(&p, end, &len))
				return false;
			break;
		case 1:
		case 5: {
			size_t w = (key & 7) == 1 ? 8 : 4;
			if ((size_t)(end - p) < w)
				return false;
			p += w;
			break;
		}
		case 2:
			if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
				return false;
			if (key >> 3 == 1)
				*service = atp_str_of((const char *)p, len);
			p += len;
			break;
		default:
			return false;
		}
	}
	return true;
}

static void health(atp_grpc_server *g, call *c)
{
	atp_str service;
	if (!health_request(c->msg, c->msg_len, &service)) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "not a grpc.health.v1.HealthCheckRequest");
		return;
	}
	if (service.len && !(service.len == 10 && memcmp(service.ptr, "atp.v1.Atp", 10) == 0)) {
		grpc_call_respond(g, c, G_NOT_FOUND, "unknown service");
		return;
	}
	/* HealthCheckResponse { ServingStatus status = 1; }: SERVING = 1, NOT_SERVING = 2 */
	uint8_t reply[2] = { 0x08, g->draining || atp_engine_error(g->e) ? 2 : 1 };
	if (!grpc_call_append(c, reply, sizeof(reply)))
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
	else
		grpc_call_respond(g, c, G_OK, "%s", "");
}

/* ---- Reserve and Release: events of the API source ---- */

static bool lines_room(call *c, uint32_t n)
{
	if (n <= c->lines_cap)
		return true;
	line_done *l = realloc(c->lines, n * sizeof(line_done));
	if (!l)
		return false;
	c->lines = l;
	c->lines_cap = n;
	return true;
}

/* Whether seqs next_seq .. next_seq + n - 1 have free pending slots (they free as completions come). */
static bool seqs_free(const atp_grpc_server *g, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (g->pending[(g->next_seq + i) % PENDING_MAX].seq)
			return false;
	return true;
}

/* The next seq of the API's source is c's entry index: its completion finds the call. */
static void pending_add(atp_grpc_server *g, call *c, uint32_t index)
{
	g->pending[g->next_seq % PENDING_MAX] = (pending){ g->next_seq, grpc_call_index(g, c), c->gen, index };
	g->next_seq++;
}

/* Submit ev (seq and event_id set here) for c's entry index, to shard to (UINT32_MAX: its SKU's). */
static int submit(atp_grpc_server *g, call *c, atp_event *ev, uint32_t index, uint32_t to)
{
	ev->seq = ev->event_id = g->next_seq;
	ev->source = atp_str_of(API_SOURCE, strlen(API_SOURCE));
	int rc = to == UINT32_MAX ? atp_engine_submit(g->e, ev, NULL) : atp_engine_submit_to(g->e, ev, to, NULL);
	if (rc != ATP_OK)
		return rc;
	pending_add(g, c, index);
	return ATP_OK;
}

static void submit_failed(atp_grpc_server *g, call *c, int rc)
{
	grpc_call_respond(g, c, rc == ATP_E_IO ? G_UNAVAILABLE : G_INTERNAL, "the engine refused: %s", atp_status_name(rc));
}

static void start_waiting(atp_grpc_server *g, call *c)
{
	c->state = CALL_WAIT;
	g->waiting++;
}

/* A line's need-by day (checked by reserve()), 0: none. */
static uint32_t need_by_day(const uint8_t *line)
{
	uint32_t ymd = atp_v1_reserve_line_need_by(line);
	return ymd ? atp_day_of_ymd(ymd) : 0;
}

/* The request's policy: ATP_V1_* (checked by reserve()). */
static uint8_t policy_of(const uint8_t *rr)
{
	uint8_t p = atp_v1_reserve_request_policy(rr);
	return p == ATP_V1_PER_LINE && atp_v1_reserve_request_allow_partial(rr) ? ATP_V1_PARTIAL : p;
}

/* A whole order: every line in full or none (atp_engine_submit_order), each line a pending seq of its own. */
static bool order_submit(atp_grpc_server *g, call *c, atp_event ev)
{
	const uint8_t *rr = atp_fb_root(c->msg);
	atp_event lines[ATP_ORDER_LINES_MAX];
	ev.source = atp_str_of(API_SOURCE, strlen(API_SOURCE));
	for (uint32_t i = 0; i < c->n_lines; i++) {
		const uint8_t *l = atp_v1_reserve_request_lines(rr, i);
		lines[i] = ev;
		lines[i].seq = lines[i].event_id = g->next_seq + i;
		lines[i].sku = atp_v1_reserve_line_sku(l);
		lines[i].location = atp_v1_reserve_line_location(l);
		lines[i].qty = atp_v1_reserve_line_qty(l);
		lines[i].date = need_by_day(l);
	}
	int rc = atp_engine_submit_order(g->e, lines, c->n_lines, NULL);
	if (rc != ATP_OK) {
		submit_failed(g, c, rc);
		return true;
	}
	for (uint32_t i = 0; i < c->n_lines; i++)
		pending_add(g, c, i);
	g->stats.reserve_lines += c->n_lines;
	start_waiting(g, c);
	return true;
}

static bool reserve_submit(atp_grpc_server *g, call *c)
{
	const uint8_t *rr = atp_fb_root(c->msg);
	uint8_t policy = policy_of(rr);
	/* A whole order's part per shard comes behind a mark: room for twice its lines. */
	uint32_t frames = policy == ATP_V1_ALL_OR_NOTHING ? 2 * c->n_lines : c->n_lines;
	if (!atp_engine_can_take(g->e, frames) || !seqs_free(g, c->n_lines))
		return false;
	uint64_t ttl = atp_v1_reserve_request_ttl_ms(rr);
	atp_event ev = { .type = ATP_EV_RESERVE, .ref = atp_v1_reserve_request_reservation_id(rr),
			 .expires_at = ttl ? atp_engine_now_ms(g->e) + ttl : 0,
			 .flags = (uint8_t)(ATP_EVF_RELEASABLE | ATP_EVF_KNOWN | (policy == ATP_V1_PARTIAL ? ATP_EVF_PARTIAL : 0)) };
	if (policy == ATP_V1_ALL_OR_NOTHING)
		return order_submit(g, c, ev);
	for (uint32_t i = 0; i < c->n_lines; i++) {
		const uint8_t *l = atp_v1_reserve_request_lines(rr, i);
		ev.sku = atp_v1_reserve_line_sku(l);
		ev.location = atp_v1_reserve_line_location(l);
		ev.qty = atp_v1_reserve_line_qty(l);
		ev.date = need_by_day(l);
		int rc = submit(g, c, &ev, i, UINT32_MAX);
		if (rc != ATP_OK) {
			submit_failed(g, c, rc);
			return true;
		}
	}
	g->stats.reserve_lines += c->n_lines;
	start_waiting(g, c);
	return true;
}

/* NOT_FOUND for request line i (line), which names no position. */
static void line_not_found(atp_grpc_server *g, call *c, uint32_t i, const uint8_t *line)
{
	atp_str sku = atp_v1_reserve_line_sku(line), loc = atp_v1_reserve_line_location(line);
	grpc_call_respond(g, c, G_NOT_FOUND, "lines[%u]: no position %.*s at %.*s", i, (int)sku.len, sku.ptr,
			  (int)loc.len, loc.ptr);
}

static void reserve(atp_grpc_server *g, call *c)
{
	const uint8_t *rr = verify(g, c, &atp_v1_reserve_request_rule, "atp.v1.ReserveRequest");
	if (!rr)
		return;
	atp_str id = atp_v1_reserve_request_reservation_id(rr);
	uint32_t n = atp_v1_reserve_request_lines_count(rr);
	if (!atp_str_valid(id, ATP_REF_MAX))
		FAIL(g, c, G_INVALID_ARGUMENT, "reservation_id: %s", bad_string);
	if (n == 0 || n > g->cfg.max_reserve_lines)
		FAIL(g, c, G_INVALID_ARGUMENT, "lines: %u of them; 1 to %u allowed", n, g->cfg.max_reserve_lines);
	if (atp_v1_reserve_request_ttl_ms(rr) > TTL_MAX_MS)
		FAIL(g, c, G_INVALID_ARGUMENT, "ttl_ms: at most %llu", (unsigned long long)TTL_MAX_MS);
	uint8_t policy = atp_v1_reserve_request_policy(rr);
	if (policy > ATP_V1_PARTIAL)
		FAIL(g, c, G_INVALID_ARGUMENT, "policy: %u is none of PER_LINE (0), ALL_OR_NOTHING (1), PARTIAL (2)", policy);
	if (policy == ATP_V1_ALL_OR_NOTHING && atp_v1_reserve_request_allow_partial(rr))
		FAIL(g, c, G_INVALID_ARGUMENT, "allow_partial contradicts policy ALL_OR_NOTHING");
	if (policy == ATP_V1_ALL_OR_NOTHING && n > ATP_ORDER_LINES_MAX)
		FAIL(g, c, G_INVALID_ARGUMENT, "lines: %u of them; an ALL_OR_NOTHING order holds at most %u", n,
		     ATP_ORDER_LINES_MAX);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *l = atp_v1_reserve_request_lines(rr, i);
		atp_str sku = atp_v1_reserve_line_sku(l), loc = atp_v1_reserve_line_location(l);
		int64_t qty = atp_v1_reserve_line_qty(l);
		if (!atp_str_valid(sku, ATP_SKU_MAX))
			FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u].sku: %s", i, bad_string);
		if (!atp_str_valid(loc, ATP_LOC_MAX))
			FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u].location: %s", i, bad_string);
		if (qty <= 0 || qty > ATP_QTY_MAX)
			FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u].qty: must be 1 to %lld", i, (long long)ATP_QTY_MAX);
		uint32_t need_by = atp_v1_reserve_line_need_by(l);
		if (need_by && !atp_day_of_ymd(need_by))
			FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u].need_by: %u is not a date (YYYYMMDD)", i, need_by);
		if (need_by && policy_of(rr) == ATP_V1_PARTIAL)
			FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u].need_by: a line with a need-by day is whole; not with PARTIAL", i);
		for (uint32_t j = 0; j < i; j++) {
			const uint8_t *o = atp_v1_reserve_request_lines(rr, j);
			if (atp_str_cmp(sku, atp_v1_reserve_line_sku(o)) == 0 &&
			    atp_str_cmp(loc, atp_v1_reserve_line_location(o)) == 0)
				FAIL(g, c, G_INVALID_ARGUMENT, "lines[%u]: the same sku and location as lines[%u]", i, j);
		}
		/*
		 * A line naming no position is NOT_FOUND with nothing applied: here,
		 * before any line goes, when there are several (or a whole order);
		 * a lone line's shard refuses it (ATP_EVF_KNOWN), saving the loop
		 * this lookup of a position the shard looks up anyway.
		 */
		if ((n > 1 || policy == ATP_V1_ALL_OR_NOTHING) && !atp_engine_read(g->e, sku, loc, NULL)) {
			line_not_found(g, c, i, l);
			return;
		}
	}
	if (!lines_room(c, n))
		FAIL(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
	c->n_lines = c->lines_pending = n;
	memset(c->lines, 0, n * sizeof(line_done));
	if (!reserve_submit(g, c))
		grpc_call_enqueue(g, c);
}

static bool capacity_status(int st)
{
	return st == ATP_E_LINES_FULL || st == ATP_E_POSITIONS_FULL || st == ATP_E_SOURCES_FULL;
}

static void reserve_reply(atp_grpc_server *g, call *c)
{
	const uint8_t *rr = atp_fb_root(c->msg);
	bool duplicate = true;
	for (uint32_t i = 0; i < c->n_lines; i++) {
		int st = c->lines[i].status;
		if (st == ATP_E_NO_POSITION) {
			line_not_found(g, c, i, atp_v1_reserve_request_lines(rr, i));
			return;
		}
		if (st != ATP_OK)
			FAIL(g, c, capacity_status(st) ? G_RESOURCE_EXHAUSTED : G_INTERNAL,
					 "lines[%u]: %s (the other lines were applied; retry under the same id)", i,
					 atp_status_name(st));
		duplicate &= (c->lines[i].flags & ATP_RF_REPLAYED) != 0;
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	static atp_fb_ref refs[ATP_V1_LIST_MAX];
	for (uint32_t i = 0; i < c->n_lines; i++) {
		const uint8_t *l = atp_v1_reserve_request_lines(rr, i);
		const line_done *d = &c->lines[i];
		refs[i] = atp_v1_build_line_result_dated(&b, atp_v1_reserve_line_sku(l), atp_v1_reserve_line_location(l),
							 atp_v1_reserve_line_qty(l), d->qty, d->date ? atp_ymd_of_day(d->date) : 0,
							 (d->flags & ATP_RF_WITHDRAWN) != 0);
	}
	reply_with(g, c, &b,
		   atp_v1_build_reserve_reply(&b, atp_v1_reserve_request_reservation_id(rr), refs, c->n_lines, duplicate));
}

/* One RELEASE of the whole reservation into shard s. */
static int release_one(atp_grpc_server *g, call *c, uint32_t s)
{
	atp_event ev = { .type = ATP_EV_RELEASE, .ref = atp_v1_release_request_reservation_id(atp_fb_root(c->msg)) };
	return submit(g, c, &ev, s, s);
}

static bool release_submit(atp_grpc_server *g, call *c)
{
	if (!atp_engine_can_take(g->e, c->n_lines) || !seqs_free(g, c->n_lines))
		return false;
	for (uint32_t s = 0; s < c->n_lines; s++) {
		int rc = release_one(g, c, s);
		if (rc != ATP_OK) {
			submit_failed(g, c, rc);
			return true;
		}
	}
	start_waiting(g, c);
	return true;
}

static void release(atp_grpc_server *g, call *c)
{
	const uint8_t *rr = verify(g, c, &atp_v1_release_request_rule, "atp.v1.ReleaseRequest");
	if (!rr)
		return;
	if (!atp_str_valid(atp_v1_release_request_reservation_id(rr), ATP_REF_MAX))
		FAIL(g, c, G_INVALID_ARGUMENT, "reservation_id: %s", bad_string);
	uint32_t shards = atp_engine_shards(g->e);
	if (!lines_room(c, shards))
		FAIL(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
	c->n_lines = c->lines_pending = shards;
	memset(c->lines, 0, shards * sizeof(line_done));
	if (!release_submit(g, c))
		grpc_call_enqueue(g, c);
}

static void release_reply(atp_grpc_server *g, call *c)
{
	int64_t released = 0;
	bool found = false;
	for (uint32_t s = 0; s < c->n_lines; s++) {
		if (c->lines[s].status != ATP_OK)
			FAIL(g, c, G_INTERNAL, "shard %u: %s", s, atp_status_name(c->lines[s].status));
		released += c->lines[s].qty;
		found |= (c->lines[s].flags & RELEASE_FOUND) != 0;
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	reply_with(g, c, &b, atp_v1_build_release_reply(&b, released, found));
}

void grpc_method_on_done(atp_grpc_server *g, const atp_engine_done *d)
{
	pending *p = &g->pending[d->seq % PENDING_MAX];
	if (p->seq != d->seq)
		return;
	call *c = &g->calls[p->call];
	uint32_t i = p->index;
	bool live = c->gen == p->gen && c->state == CALL_WAIT;
	p->seq = 0;
	if (!live)
		return;  /* its call went (deadline, cancel, closed connection) */
	line_done *l = &c->lines[i];
	if (c->method == M_RELEASE) {
		l->status = d->status;
		l->qty += d->qty;
		if (d->status == ATP_OK && !(d->flags & ATP_RF_NO_LINE))
			l->flags |= RELEASE_FOUND;
		if (d->status == ATP_OK && (d->flags & ATP_RF_MORE)) {
			l->flags |= RELEASE_AGAIN;
			g->release_again = true;
			return;
		}
	} else {
		*l = (line_done){ .qty = d->qty, .status = d->status, .flags = d->flags, .date = d->date };
	}
	if (--c->lines_pending)
		return;
	if (c->method == M_RELEASE)
		release_reply(g, c);
	else
		reserve_reply(g, c);
}

void grpc_method_after_turn(atp_grpc_server *g)
{
	grpc_history_poll(g, false);
	if (!g->release_again)
		return;
	g->release_again = false;
	for (uint32_t k = 0; k < g->n_calls_total; k++) {
		call *c = &g->calls[k];
		if (c->state != CALL_WAIT || c->method != M_RELEASE)
			continue;
		for (uint32_t s = 0; s < c->n_lines; s++) {
			if (!(c->lines[s].flags & RELEASE_AGAIN))
				continue;
			if (!atp_engine_can_take(g->e, 1) || !seqs_free(g, 1)) {
				g->release_again = true;  /* next turn */
				continue;
			}
			int rc = release_one(g, c, s);
			if (rc != ATP_OK) {
				submit_failed(g, c, rc);
				break;
			}
			c->lines[s].flags &= ~RELEASE_AGAIN;
		}
	}
}

bool grpc_method_retry(atp_grpc_server *g, call *c)
{
	c->state = CALL_RECV;  /* not yet waiting: as before it was queued */
	bool done = c->method == M_RESERVE ? reserve_submit(g, c) : release_submit(g, c);
	if (!done)
		c->state = CALL_QUEUED;
	return done;
}

/* ---- Scan ---- */

static int scan_cmp(const void *a, const void *b)
{
	const scan_ref *x = a, *y = b;
	int k = atp_str_cmp(x->sku, y->sku);
	return k ? k : atp_str_cmp(x->location, y->location);
}

static void scan(atp_grpc_server *g, call *c)
{
	const uint8_t *sr = verify(g, c, &atp_v1_scan_request_rule, "atp.v1.ScanRequest");
	if (!sr)
		return;
	atp_str after = atp_v1_scan_request_after_sku(sr);
	if (after.len > ATP_SKU_MAX)
		FAIL(g, c, G_INVALID_ARGUMENT, "after_sku: longer than %d bytes", ATP_SKU_MAX);
	if (g->scans >= g->cfg.max_scans)
		FAIL(g, c, G_RESOURCE_EXHAUSTED, "%u scans already streaming", g->scans);
	uint64_t total = 0;
	uint32_t shards = atp_engine_shards(g->e), count[ATP_ENGINE_SHARDS_MAX];
	for (uint32_t s = 0; s < shards; s++)
		total += count[s] = atp_engine_positions(g->e, s);
	c->scan = malloc((total ? total : 1) * sizeof(scan_ref));
	if (!c->scan)
		FAIL(g, c, G_RESOURCE_EXHAUSTED, "out of memory for a scan of %llu positions",
				 (unsigned long long)total);
	g->scans++;
	uint32_t n = 0;
	for (uint32_t s = 0; s < shards; s++) {
		for (uint32_t id = 0; id < count[s]; id++) {
			scan_ref *r = &c->scan[n];
			atp_engine_key(g->e, s, id, &r->sku, &r->location);
			if (atp_str_cmp(r->sku, after) > 0) {
				r->shard = s;
				r->id = id;
				n++;
			}
		}
	}
	qsort(c->scan, n, sizeof(scan_ref), scan_cmp);
	uint32_t limit = atp_v1_scan_request_limit(sr);
	c->scan_n = limit && limit < n ? limit : n;
	c->scan_next = 0;
	grpc_call_respond(g, c, G_OK, "%s", "");  /* the data provider pulls the positions (grpc_method_scan_more) */
}

bool grpc_method_scan_more(atp_grpc_server *g, call *c, uint32_t want)
{
	while (c->out_len < want && c->scan_next < c->scan_n) {
		const scan_ref *r = &c->scan[c->scan_next++];
		atp_engine_position p;
		atp_engine_read_id(g->e, r->shard, r->id, &p);
		int64_t a = p.v.on_hand - p.v.held - p.v.reserved - p.v.safety_stock;
		atp_v1_position v = { .sku = p.sku, .location = p.location, .on_hand = p.v.on_hand, .held = p.v.held,
				      .reserved = p.v.reserved, .safety_stock = p.v.safety_stock, .atp = a > 0 ? a : 0,
				      .version = p.v.version };
		uint8_t mem[512] __attribute__((aligned(8)));
		atp_fb_builder b;
		atp_fb_builder_init(&b, mem, sizeof(mem));
		size_t size;
		const uint8_t *msg = atp_fb_finish(&b, atp_v1_build_position_atp(&b, &v), NULL, &size);
		if (!msg || !grpc_call_append(c, msg, (uint32_t)size))
			break;
	}
	return c->scan_next < c->scan_n;
}

/* ---- Admin/Snapshot ---- */

static void snapshot(atp_grpc_server *g, call *c)
{
	const uint8_t *q = verify(g, c, &atp_v1_snapshot_request_rule, "atp.v1.SnapshotRequest");
	if (!q)
		return;
	if (!g->cfg.ask_snapshot)
		FAIL(g, c, G_UNIMPLEMENTED, "this server writes no snapshot on request");
	atp_str why = atp_v1_snapshot_request_reason(q);
	atp_log(ATP_LOG_INFO, "Admin/Snapshot: a snapshot asked for%s%.*s", why.len ? ": " : "", (int)why.len,
		why.ptr ? why.ptr : "");
	start_waiting(g, c);
	g->cfg.ask_snapshot(g->cfg.admin_ctx);
}

void atp_grpc_server_snapshot_done(atp_grpc_server *g, int rc, uint64_t millis)
{
	for (uint32_t k = 0; k < g->n_calls_total; k++) {
		call *c = &g->calls[k];
		if (c->state != CALL_WAIT || c->method != M_SNAPSHOT)
			continue;
		if (rc < 0) {
			const char *why = atp_engine_error(g->e);
			grpc_call_respond(g, c, G_INTERNAL, "the snapshot failed: %s", why ? why : "see atpd's log");
			continue;
		}
		atp_fb_builder b;
		atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
		reply_with(g, c, &b, atp_v1_build_snapshot_reply(&b, atp_engine_shards(g->e), millis));
	}
}

/* ---- dispatch ---- */

void grpc_method_dispatch(atp_grpc_server *g, call *c)
{
	switch (c->method) {
	case M_GET_ATP:
		get_atp(g, c);
		break;
	case M_GET_ATP_BATCH:
		get_atp_batch(g, c);
		break;
	case M_RESERVE:
		reserve(g, c);
		break;
	case M_RELEASE:
		release(g, c);
		break;
	case M_SCAN:
		scan(g, c);
		break;
	case M_HEALTH:
		health(g, c);
		break;
	case M_SUBSCRIBE:
		grpc_method_subscribe(g, c);
		break;
	case M_SNAPSHOT:
		snapshot(g, c);
		break;
	case M_REDRIVE:
		grpc_method_redrive(g, c);
		break;
	case M_PURGE:
		grpc_method_purge(g, c);
		break;
	case M_DEAD_LETTERS:
		grpc_method_dead_letters(g, c);
		break;
	case M_HISTORY:
		grpc_method_history(g, c);
		break;
	case M_GET_ATP_PROFILE:
		grpc_method_profile(g, c);
		break;
	default:
		grpc_call_respond(g, c, G_UNIMPLEMENTED, "no such method");
		break;
	}
}

void grpc_method_release(atp_grpc_server *g, call *c)
{
	grpc_method_subscribe_release(g, c);
	if (c->scan) {
		free(c->scan);
		c->scan = NULL;
		g->scans--;
	}
}
