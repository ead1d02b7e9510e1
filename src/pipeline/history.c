/*
 * history.c — the history of a SKU's positions from a data directory's
 * files (see atp/history.h): its shard replayed from the earliest moment
 * retained (atp/replay.h), a CSV row per event of the SKU (refused ones
 * too), per lapse of a reservation, and per RELEASE of a whole
 * reservation that changed one of its positions, each with the position
 * right after.
 */
#include "atp/history.h"

#include "atp/engine.h"
#include "atp/replay.h"
#include "atp/status.h"
#include "atp/table.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct history {
	FILE *out;
	atp_str sku, location;      /* location.len 0: every location */
	uint64_t since_ms;          /* rows before are not printed; the SKU's positions as of then come first */
	bool since_shown;
	uint64_t rows;
	/* Before a RELEASE of a whole reservation: the versions of the SKU's positions, to see which it changed. */
	uint32_t n_before;
	uint32_t before_id[1024];
	uint64_t before_version[1024];
} history;

static void csv_field(FILE *o, atp_str s)
{
	putc(',', o);
	if (s.len == 0)
		return;
	bool quote = memchr(s.ptr, ',', s.len) || memchr(s.ptr, '"', s.len);
	if (!quote) {
		fwrite(s.ptr, 1, s.len, o);
		return;
	}
	putc('"', o);
	for (uint32_t i = 0; i < s.len; i++) {
		if (s.ptr[i] == '"')
			putc('"', o);
		putc(s.ptr[i], o);
	}
	putc('"', o);
}

static bool str_is(atp_str a, atp_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void state_rows(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_core *c);

/* One row: when, what, and the position (sku, loc) as it is now in c (empty buckets when it does not exist). */
static void row(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_event *ev, const char *status,
		atp_str loc, const atp_core *c)
{
	if (now < h->since_ms || (h->location.len && !str_is(loc, h->location)))
		return;
	if (!h->since_shown) {
		h->since_shown = true;
		if (h->since_ms)
			state_rows(h, h->since_ms, lsn - 1, "since", c);
	}
	char when[40];
	atp_format_time_ms(now, when, sizeof(when));
	fprintf(h->out, "%s,%" PRIu64 ",%s", when, lsn, kind);
	if (ev) {
		csv_field(h->out, ev->source);
		fprintf(h->out, ",%" PRIu64, ev->seq);
		if (ev->event_key.len)
			csv_field(h->out, ev->event_key);
		else
			fprintf(h->out, ",%" PRIu64, ev->event_id);
		const char *type = atp_event_type_name(ev->type);
		fprintf(h->out, ",%s", type ? type : "?");
	} else {
		fputs(",,,,", h->out);
	}
	csv_field(h->out, loc);
	if (ev) {
		fprintf(h->out, ",%" PRId64, ev->qty);
		csv_field(h->out, ev->ref);
		csv_field(h->out, ev->to_location);
		csv_field(h->out, ev->reason);
	} else {
		fputs(",,,,", h->out);
	}
	fprintf(h->out, ",%s", status);
	const atp_position *p = atp_core_find(c, h->sku, loc);
	if (p)
		fprintf(h->out, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 "\n", p->on_hand, p->held,
		       p->reserved, p->safety_stock, atp_position_atp(p), p->version);
	else
		fputs(",,,,,,\n", h->out);
	h->rows++;
}

static atp_str loc_of(const atp_table *t, uint32_t id)
{
	const atp_position *p = atp_table_get(t, id);
	return atp_str_of(atp_table_location(t, id), p->loc_len);
}

/*
 * The SKU's positions as they stand in c: at the start of the replay
 * (kind snapshot), or, under --since, before the first row printed (kind
 * since: the state then, lsn the last record before it).
 */
static void state_rows(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_core *c)
{
	const atp_table *t = atp_core_table(c);
	uint64_t since = h->since_ms;
	h->since_ms = 0; /* these rows are of that moment */
	for (uint32_t id = atp_table_read_sku_first(t, h->sku); id != ATP_POS_NONE; id = atp_table_read_sku_next(t, id))
		row(h, now, lsn, kind, NULL, "", loc_of(t, id), c);
	h->since_ms = since;
}

static void history_start(void *ctx, uint64_t lsn, const atp_core *c)
{
	history *h = ctx;
	if (lsn && !h->since_ms) {
		h->since_shown = true;
		state_rows(h, atp_core_now_ms(c), lsn, "snapshot", c);
	}
}

static void history_before(void *ctx, uint64_t lsn, const atp_record *rec, const atp_core *c)
{
	history *h = ctx;
	(void)lsn;
	h->n_before = 0;
	if (rec->kind != ATP_REC_EVENT || !atp_event_releases_all(&rec->ev))
		return;
	const atp_table *t = atp_core_table(c);
	for (uint32_t id = atp_table_read_sku_first(t, h->sku); id != ATP_POS_NONE && h->n_before < 1024;
	     id = atp_table_read_sku_next(t, id)) {
		h->before_id[h->n_before] = id;
		h->before_version[h->n_before++] = atp_table_get(t, id)->version;
	}
}

static void history_expiry(void *ctx, uint64_t lsn, const atp_record *rec, const atp_delta *d, size_t n,
			   const atp_core *c)
{
	history *h = ctx;
	for (size_t i = 0; i < n; i++)
		if (str_is(d[i].sku, h->sku))
			row(h, rec->now, lsn, "lapse", NULL, "", d[i].location, c);
}

static void history_record(void *ctx, uint64_t lsn, const atp_record *rec, const atp_result *r, const atp_core *c)
{
	history *h = ctx;
	const atp_event *ev = &rec->ev;
	if (rec->kind != ATP_REC_EVENT)
		return;
	const char *status = r->status == ATP_OK ? "OK" : atp_status_name(r->status);
	if (str_is(ev->sku, h->sku)) {
		row(h, rec->now, lsn, "event", ev, status, ev->location, c);
		if (ev->type == ATP_EV_TRANSFER)
			row(h, rec->now, lsn, "event", ev, status, ev->to_location, c);
		return;
	}
	const atp_table *t = atp_core_table(c);
	for (uint32_t i = 0; i < h->n_before; i++) /* a RELEASE of a whole reservation: the positions it changed */
		if (atp_table_get(t, h->before_id[i])->version != h->before_version[i])
			row(h, rec->now, lsn, "event", ev, status, loc_of(t, h->before_id[i]), c);
}

int atp_history_write(const atp_history_query *q, FILE *out, atp_history_info *info, char *err, size_t errlen)
{
	history *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "no memory");
		return -1;
	}
	*h = (history){ .out = out, .sku = q->sku, .location = q->location, .since_ms = q->since_ms };
	uint32_t shard = (uint32_t)(atp_sku_hash(q->sku) % q->shards);
	fputs(ATP_HISTORY_HEADER "\n", out);
	atp_replay r = { .dir = q->dir, .shard = shard, .core = q->core, .until_ms = UINT64_MAX, .until_lsn = UINT64_MAX,
			 .earliest = true, .on_start = history_start, .on_before = history_before,
			 .on_record = history_record, .on_expiry = history_expiry, .ctx = h };
	int rc = atp_replay_run(&r, err, errlen);
	if (rc == 0) {
		*info = (atp_history_info){ .rows = h->rows, .shard = shard, .start_lsn = r.start_lsn, .last_lsn = r.last_lsn };
		atp_core_destroy(r.c);
	}
	free(h);
	return rc;
}
