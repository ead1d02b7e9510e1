/*
 * grpc_deadletters.c — Admin/Redrive and Admin/Purge: the dead-letter
 * store's operator calls (atp/deadletter.h, fbs/atp.fbs).
 *
 * DeadLetters lists the store's entries, a page at a time (after an id,
 * filtered by source, code and arrival). Redrive, per entry: its event (or the corrected copy given in its
 * place), with source ATP_DLQ_SOURCE and that source's next seq, is
 * checked as any event; then the store records durably which seq and
 * shard it goes as (every entry of the call, one fdatasync), and only then
 * the events are submitted. So a redrive happens once: an entry already
 * redriven answers ATP_DUPLICATE, and after a crash atpd's start unmarks
 * the entries whose shard never applied their seq. A shard that refuses a
 * redriven event (capacity: the cause not fixed yet) unmarks its entry, so
 * that it can be redriven again. The reply comes once the events are
 * submitted (durable within a group commit); what the shards then say is
 * in the log and in the entry's mark. Purge syncs the store and rewrites
 * it without the entries chosen.
 */
#include "grpc_internal.h"

#include "atp/log.h"
#include "atp/wire_event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAIL(...)                               \
	do {                                    \
		grpc_call_respond(__VA_ARGS__); \
		return;                         \
	} while (0)

void grpc_deadletters_on_done(atp_grpc_server *g, const atp_engine_done *d)
{
	atp_dlq *q = g->cfg.dlq;
	grpc_redrive *slot = &g->redriving[d->seq % REDRIVING_MAX];
	uint64_t id = slot->seq == d->seq ? slot->id : 0;
	slot->seq = 0;
	if (!q || !id || d->status >= 0)
		return;
	atp_log(ATP_LOG_WARN, "Admin/Redrive: dead letter %" PRIu64 " (seq %" PRIu64 " of %s) refused by its shard: %s; "
		"it is held again", id, d->seq, ATP_DLQ_SOURCE, atp_status_name(d->status));
	if (atp_dlq_unmark(q, id) < 0 || atp_dlq_sync(q) < 0)
		atp_log(ATP_LOG_ERROR, "Admin/Redrive: the dead-letter store cannot record it (%s)", "a write failed");
}

/* The request verified, on a server with a dead-letter store; NULL after answering the call. */
static const uint8_t *store_request(atp_grpc_server *g, call *c, const atp_fb_table_rule *rule, const char *what)
{
	const uint8_t *r = grpc_method_verify(g, c, rule, what);
	if (r && !g->cfg.dlq) {
		grpc_call_respond(g, c, G_FAILED_PRECONDITION, "no dead-letter store: no source has on_invalid = deadletter");
		return NULL;
	}
	return r;
}

typedef struct todo {
	uint64_t id;
	atp_event ev;
} todo;

void grpc_method_redrive(atp_grpc_server *g, call *c)
{
	atp_dlq *q = g->cfg.dlq;
	const uint8_t *r = store_request(g, c, &atp_v1_redrive_request_rule, "atp.v1.RedriveRequest");
	if (!r)
		return;
	uint32_t n, fix_len;
	const uint64_t *ids = atp_v1_redrive_request_ids(r, &n);
	const uint8_t *fix = atp_v1_redrive_request_corrected(r, &fix_len);
	if (n == 0)
		FAIL(g, c, G_INVALID_ARGUMENT, "ids: none given");
	todo *t = calloc(n, sizeof(*t));
	atp_event *fixed = fix ? calloc(n, sizeof(*fixed)) : NULL;
	atp_wire_event_time *times = fix ? calloc(n, sizeof(*times)) : NULL;
	atp_v1_redrive_result *res = calloc(n, sizeof(*res));
	if (!t || !res || (fix && (!fixed || !times))) {
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
		goto free_lists;
	}
	if (fix) {
		int k = atp_wire_decode_event_batch(fix, fix_len, fixed, times, n);
		if (k < 0 || (uint32_t)k != n) {
			grpc_call_respond(g, c, G_INVALID_ARGUMENT, "corrected: not an EventBatch of one event per id (%s)",
					  k < 0 ? atp_fb_error_message(k) : "a count that differs");
			goto free_lists;
		}
	}
	atp_str source = atp_str_of(ATP_DLQ_SOURCE, strlen(ATP_DLQ_SOURCE));
	uint64_t seq = atp_engine_expected_seq(g->e, source);
	uint32_t n_todo = 0;
	for (uint32_t i = 0; i < n; i++) {
		const atp_dlq_entry *e = atp_dlq_get(q, ids[i]);
		atp_event ev;
		atp_wire_event_time tm;
		res[i] = (atp_v1_redrive_result){ .id = ids[i] };
		if (!e) {
			res[i].code = ATP_E_INVAL;
			continue;
		}
		if (e->redrive_seq) {
			res[i].code = ATP_DUPLICATE;
			continue;
		}
		for (uint32_t k = 0; k < n_todo; k++)
			if (t[k].id == ids[i])
				res[i].code = ATP_DUPLICATE; /* named twice in one call */
		if (res[i].code)
			continue;
		if (fixed)
			ev = fixed[i];
		else if (atp_wire_decode_event_batch(e->event, e->event_len, &ev, &tm, 1) != 1) {
			res[i].code = ATP_E_PROTOCOL;
			continue;
		}
		ev.source = source;
		ev.seq = seq + n_todo;
		res[i].code = atp_event_validate(&ev);
		if (!res[i].code && atp_event_releases_all(&ev))
			res[i].code = ATP_E_SKU; /* it belongs to every shard: redrive it as RELEASE rows per SKU */
		if (res[i].code)
			continue;
		uint32_t shard = atp_engine_shard_of(g->e, ev.sku);
		int rc = g->redriving[ev.seq % REDRIVING_MAX].seq ? -EBUSY : atp_dlq_mark_redrive(q, ids[i], ev.seq, shard);
		if (rc < 0) {
			res[i].code = rc == -EBUSY ? ATP_E_LIMIT : ATP_E_IO;
			continue;
		}
		t[n_todo++] = (todo){ ids[i], ev };
	}
	if (n_todo && atp_dlq_sync(q) < 0) {
		grpc_call_respond(g, c, G_UNAVAILABLE, "the dead-letter store cannot be written: nothing redriven");
		goto free_lists;
	}
	for (uint32_t k = 0; k < n_todo; k++) {
		int rc = atp_engine_submit(g->e, &t[k].ev, NULL);
		if (rc != ATP_OK) { /* the engine failed (ATP_E_IO): the mark is undone at the next start */
			grpc_call_respond(g, c, G_UNAVAILABLE, "the engine refused: %s", atp_status_name(rc));
			goto free_lists;
		}
		g->redriving[t[k].ev.seq % REDRIVING_MAX] = (grpc_redrive){ t[k].ev.seq, t[k].id };
		atp_log(ATP_LOG_INFO, "Admin/Redrive: dead letter %" PRIu64 " redriven as seq %" PRIu64 " of %s", t[k].id,
			t[k].ev.seq, ATP_DLQ_SOURCE);
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	grpc_method_reply(g, c, &b, atp_v1_build_redrive_reply(&b, res, n));
free_lists:
	free(t);
	free(fixed);
	free(times);
	free(res);
}

typedef struct purge_ctx {
	const uint64_t *ids;
	uint32_t n;
	uint64_t before_ms;
	bool redriven_only;
} purge_ctx;

static bool chosen(void *ctx, const atp_dlq_entry *e)
{
	const purge_ctx *p = ctx;
	if (p->redriven_only && !e->redrive_seq)
		return false;
	if (!p->n)
		return e->arrival_ms < p->before_ms;
	for (uint32_t i = 0; i < p->n; i++)
		if (p->ids[i] == e->id)
			return true;
	return false;
}

void grpc_method_purge(atp_grpc_server *g, call *c)
{
	atp_dlq *q = g->cfg.dlq;
	const uint8_t *r = store_request(g, c, &atp_v1_purge_request_rule, "atp.v1.PurgeRequest");
	if (!r)
		return;
	purge_ctx p = { .before_ms = atp_v1_purge_request_before_ms(r),
			.redriven_only = atp_v1_purge_request_redriven_only(r) };
	p.ids = atp_v1_purge_request_ids(r, &p.n);
	if (!p.n && !p.before_ms)
		FAIL(g, c, G_INVALID_ARGUMENT, "ids or before_ms: say which entries");
	char err[512];
	int dropped = atp_dlq_sync(q);
	if (dropped == 0)
		dropped = atp_dlq_purge(q, chosen, &p, err, sizeof(err));
	if (dropped < 0)
		FAIL(g, c, G_UNAVAILABLE, "the dead-letter store: %s", strerror(-dropped));
	atp_log(ATP_LOG_INFO, "Admin/Purge: %d dead letters purged, %u kept", dropped, atp_dlq_count(q));
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	grpc_method_reply(g, c, &b, atp_v1_build_purge_reply(&b, (uint32_t)dropped, atp_dlq_count(q)));
}

void grpc_method_dead_letters(atp_grpc_server *g, call *c)
{
	atp_dlq *q = g->cfg.dlq;
	const uint8_t *r = store_request(g, c, &atp_v1_dead_letters_request_rule, "atp.v1.DeadLettersRequest");
	if (!r)
		return;
	uint64_t after = atp_v1_dead_letters_request_after_id(r), since = atp_v1_dead_letters_request_since_ms(r);
	uint32_t limit = atp_v1_dead_letters_request_limit(r);
	int32_t code = atp_v1_dead_letters_request_code(r);
	atp_str source = atp_v1_dead_letters_request_source(r);
	if (limit == 0 || limit > ATP_V1_DEAD_LETTERS_MAX)
		limit = ATP_V1_DEAD_LETTERS_MAX;
	static atp_fb_ref refs[ATP_V1_DEAD_LETTERS_MAX];
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	uint32_t n = 0;
	bool more = false;
	for (uint32_t i = 0; i < atp_dlq_count(q); i++) {
		const atp_dlq_entry *e = atp_dlq_at(q, i);
		if (e->id <= after || e->arrival_ms < since || (code && e->code != code) ||
		    (source.len && (e->source.len != source.len || memcmp(e->source.ptr, source.ptr, source.len) != 0)))
			continue;
		if (n == limit) {
			more = true;
			break;
		}
		atp_v1_dead_letter d = { .id = e->id, .arrival_ms = e->arrival_ms, .seq = e->seq, .redrive_seq = e->redrive_seq,
					 .code = e->code, .source = e->source, .event_id = e->event_id, .event = e->event,
					 .event_len = e->event_len };
		refs[n++] = atp_v1_build_dead_letter(&b, &d);
	}
	grpc_method_reply(g, c, &b, atp_v1_build_dead_letters_reply(&b, refs, n, more));
}
