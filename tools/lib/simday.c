/* simday.c — the simulated warehouse day (see simday.h). */
#include "simday.h"

#include "atp/core.h"
#include "csv_events.h"
#include "prng.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE 60000ull
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define RESERVE_TTL (30 * MINUTE)
#define RESEND_DEPTH 8
/*
 * Dates: the simulated day is day 1 after the epoch of its clock (its
 * events' times count from 0), so that every date is a real day >= 1.
 * Purchase orders are due from that day to a week later; a share of order
 * lines (not partial ones) carries a need-by day three days on, and is
 * promised against them when stock on hand does not cover it.
 */
#define DAY_ONE 1u
#define NEED_BY_DAYS 3u
#define PO_MAX 65536

enum task_kind { T_ORDER, T_PICK, T_CANCEL, T_UNHOLD, T_WAVE, T_FLOOR, T_PO_RECEIVE, T_PO_CHANGE };
enum floor_kind { F_ADJUST, F_COUNT, F_HOLD, F_TRANSFER, F_SAFETY };

/* Something that happens at time t; ordered by (t, id) so the day is deterministic. */
typedef struct task {
	uint64_t t;
	uint64_t id;
	uint32_t sku;
	uint16_t loc;
	uint8_t kind;
	uint8_t sub;     /* floor kind, or lines left in an order */
	uint32_t order;
	int64_t qty;
	uint32_t po;     /* T_PO_*: the purchase order */
} task;

/* A purchase order the day announced: expected at (sku, loc) on day eta. */
typedef struct purchase {
	uint32_t sku;
	uint16_t loc;
	int64_t qty;
	uint32_t eta;
} purchase;

typedef struct sim {
	const atp_simday_params *p;
	FILE *out;
	atp_simday_summary *sum;
	atp_prng rng;
	atp_zipf zipf;
	atp_core *core;
	task *heap;
	size_t heap_len, heap_cap;
	uint64_t next_task_id;
	uint64_t event_id;
	uint64_t seq[2];                    /* per source */
	char recent[2][RESEND_DEPTH][320];  /* last rows per source, for resends */
	uint32_t n_recent[2];
	char names[2][ATP_SOURCE_MAX + 1];  /* the sources' names, prefixed */
	uint64_t now;
	purchase *pos_list;                 /* purchase orders, PO-<index + 1> */
	uint32_t n_pos;
} sim;

static const char *const source_name[2] = { "wms", "oms" };
enum { WMS, OMS };

static bool task_before(const task *a, const task *b)
{
	return a->t < b->t || (a->t == b->t && a->id < b->id);
}

static void push(sim *s, task t)
{
	if (s->heap_len == s->heap_cap) {
		s->heap_cap *= 2;
		task *h = realloc(s->heap, s->heap_cap * sizeof(task));
		if (!h)
			abort(); /* a generator, not the engine: out of memory ends it */
		s->heap = h;
	}
	t.id = s->next_task_id++;
	size_t i = s->heap_len++;
	while (i > 0 && task_before(&t, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = t;
}

static task pop(sim *s)
{
	task top = s->heap[0], last = s->heap[--s->heap_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_len)
			break;
		if (c + 1 < s->heap_len && task_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!task_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	s->heap[i] = last;
	return top;
}

#define SKU_NAME 48

static void sku_name(const sim *s, char *buf, uint32_t sku)
{
	snprintf(buf, SKU_NAME, "%sSKU-%06" PRIu32, s->p->prefix, sku);
}

static void loc_name(char *buf, uint32_t loc)
{
	snprintf(buf, 16, "%s%02" PRIu32, loc < 2 ? "DC" : "ST", loc + 1);
}

typedef struct row {
	uint8_t source;
	uint8_t type;
	uint32_t sku;
	uint16_t loc;
	int32_t to_loc;   /* -1: none */
	int64_t qty;
	const char *ref;
	const char *reason;
	uint64_t ttl;
	bool partial;
	uint32_t date;    /* SUPPLY: ETA; RESERVE: need-by day */
} row;

/* Write one event, apply it to the generator's own core, and return its result. */
static atp_result emit(sim *s, const row *rw)
{
	char sku[SKU_NAME], loc[16], to[16] = "", line[320];
	uint8_t src = s->p->one_source ? WMS : rw->source;

	sku_name(s, sku, rw->sku);
	loc_name(loc, rw->loc);
	if (rw->to_loc >= 0)
		loc_name(to, (uint32_t)rw->to_loc);
	uint64_t id = ++s->event_id, seq = ++s->seq[src];
	int n = snprintf(line, sizeof(line), "%" PRIu64 ",%s,%" PRIu64 ",%s,%s,%s,%" PRId64 ",%s,%s,%s,%" PRIu64 ",",
			 id, s->names[src], seq, atp_event_type_name(rw->type), sku, loc, rw->qty,
			 rw->ref ? rw->ref : "", to, rw->reason ? rw->reason : "", s->now);
	if (rw->ttl)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%" PRIu64, rw->ttl);
	char date[ATP_CSV_DATE_MAX];
	snprintf(line + n, sizeof(line) - (size_t)n, ",%s,%s\n", rw->partial ? "1" : "", atp_csv_date(rw->date, date));
	fputs(line, s->out);
	s->sum->rows++;
	s->sum->by_type[rw->type]++;
	memcpy(s->recent[src][s->n_recent[src]++ % RESEND_DEPTH], line, sizeof(line));

	atp_event ev = {
		.event_id = id, .seq = seq, .type = rw->type, .qty = rw->qty,
		.source = atp_str_of(s->names[src], strlen(s->names[src])),
		.sku = atp_str_of(sku, strlen(sku)), .location = atp_str_of(loc, strlen(loc)),
		.ref = atp_str_of(rw->ref ? rw->ref : "", rw->ref ? strlen(rw->ref) : 0),
		.to_location = atp_str_of(to, strlen(to)),
		.reason = atp_str_of(rw->reason ? rw->reason : "", rw->reason ? strlen(rw->reason) : 0),
		.expires_at = rw->ttl ? s->now + rw->ttl : 0,
		.flags = rw->partial ? ATP_EVF_PARTIAL : 0,
		.date = rw->date,
	};
	atp_result r;
	if (atp_core_apply(s->core, &ev, &r) != ATP_OK) {
		fprintf(stderr, "simday: generated event %" PRIu64 " refused: %s\n", id, atp_status_message(r.status));
		abort();
	}
	/* At-least-once delivery: now and then a sender reconnects and resends its last rows. */
	if (atp_prng_below(&s->rng, 1000) < 2) {
		uint32_t have = s->n_recent[src] < RESEND_DEPTH ? s->n_recent[src] : RESEND_DEPTH;
		uint32_t k = (uint32_t)atp_prng_range(&s->rng, 1, have);
		for (uint32_t i = s->n_recent[src] - k; i < s->n_recent[src]; i++) {
			fputs(s->recent[src][i % RESEND_DEPTH], s->out);
			s->sum->rows++;
			s->sum->resent++;
		}
	}
	return r;
}

static const atp_position *position(sim *s, uint32_t sku, uint32_t loc)
{
	char k[SKU_NAME], l[16];
	sku_name(s, k, sku);
	loc_name(l, loc);
	return atp_core_find(s->core, atp_str_of(k, strlen(k)), atp_str_of(l, strlen(l)));
}

/* Expected units of one position over a whole day. */
static double day_demand(const sim *s, uint32_t sku)
{
	return s->p->order_lines * atp_zipf_p(&s->zipf, sku) * 1.7 / s->p->locations;
}

static void advance(sim *s, uint64_t t)
{
	atp_delta d[256];
	size_t nd;
	s->now = t;
	while (atp_core_expire(s->core, t, d, 256, &nd) == 256)
		;
}

static void order_line(sim *s, const task *t)
{
	char ref[24];
	snprintf(ref, sizeof(ref), "SO-%07" PRIu32, t->order);
	bool partial = t->order % 5 == 0, dated = t->order % 5 == 3;
	row rw = { .source = OMS, .type = ATP_EV_RESERVE, .sku = t->sku, .loc = t->loc, .to_loc = -1,
		   .qty = t->qty, .ref = ref, .ttl = RESERVE_TTL, .partial = partial,
		   .date = dated ? DAY_ONE + NEED_BY_DAYS : 0 };
	atp_result r = emit(s, &rw);
	if (atp_prng_below(&s->rng, 100) == 0) { /* a client retry after a lost answer */
		emit(s, &rw);
		s->sum->retried++;
	}
	if (r.confirmed == 0)
		return;
	if (r.flags & ATP_RF_PROMISED) {
		/*
		 * It waits for its purchase order. Now and then the customer
		 * cancels; else, at the day's end, it is picked if the order came
		 * (its line opened), or waits on for a later day.
		 */
		s->sum->promised++;
		bool cancel = atp_prng_below(&s->rng, 10) == 0;
		push(s, (task){ .t = cancel ? s->now + (uint64_t)atp_prng_range(&s->rng, 1, 60) * MINUTE : DAY - MINUTE,
				.kind = cancel ? T_CANCEL : T_PICK, .sku = t->sku, .loc = t->loc, .order = t->order,
				.qty = r.confirmed });
		return;
	}
	task next = { .sku = t->sku, .loc = t->loc, .order = t->order, .qty = r.confirmed };
	uint64_t u = atp_prng_below(&s->rng, 100);
	if (u < 86) {
		next.kind = T_PICK;
		next.t = s->now + (uint64_t)atp_prng_range(&s->rng, 2, 25) * MINUTE;
	} else if (u < 95) {
		next.kind = T_CANCEL;
		next.t = s->now + (uint64_t)atp_prng_range(&s->rng, 1, 20) * MINUTE;
	} else if (u < 97) { /* a late pick, after the reservation lapsed */
		next.kind = T_PICK;
		next.t = s->now + (uint64_t)atp_prng_range(&s->rng, 31, 60) * MINUTE;
	} else {
		return; /* abandoned: the line lapses */
	}
	push(s, next);
}

static void pick_or_cancel(sim *s, const task *t)
{
	char ref[24];
	snprintf(ref, sizeof(ref), "SO-%07" PRIu32, t->order);
	row rw = { .source = t->kind == T_PICK ? WMS : OMS, .sku = t->sku, .loc = t->loc, .to_loc = -1,
		   .qty = t->qty, .ref = ref };
	rw.type = t->kind == T_PICK ? ATP_EV_PICK : ATP_EV_RELEASE;
	if (t->kind == T_PICK) {
		/* A pick after the line lapsed happens only if the stock was not promised since. */
		char sku[SKU_NAME], loc[16];
		sku_name(s, sku, t->sku);
		loc_name(loc, t->loc);
		const atp_line *ln = atp_core_find_line(s->core, atp_str_of(ref, strlen(ref)),
							atp_str_of(sku, strlen(sku)), atp_str_of(loc, strlen(loc)));
		const atp_position *p = position(s, t->sku, t->loc);
		if (!(ln && ln->state == ATP_LINE_OPEN) && (atp_position_atp(p) < t->qty || (ln && ln->state == ATP_LINE_PROMISED)))
			return;
	}
	emit(s, &rw);
}

static void replenish(sim *s, bool opening)
{
	char po[24];
	for (uint32_t sku = 0; sku < s->p->skus; sku++) {
		int64_t target = (int64_t)(day_demand(s, sku) * 0.45) + 3;
		for (uint32_t loc = 0; loc < s->p->locations; loc++) {
			const atp_position *p = opening ? NULL : position(s, sku, loc);
			int64_t free_units = p ? p->on_hand - p->held : 0;
			if (free_units >= target / 2 && !opening)
				continue;
			snprintf(po, sizeof(po), "PO-%" PRIu64, s->event_id + 1);
			row rw = { .source = WMS, .type = ATP_EV_RECEIPT, .sku = sku, .loc = (uint16_t)loc,
				   .to_loc = -1, .qty = target - (free_units > 0 ? free_units : 0), .ref = po };
			emit(s, &rw);
		}
	}
}

static void po_name(char *buf, uint32_t i)
{
	snprintf(buf, 24, "PO-%06" PRIu32, i + 1);
}

/*
 * The day's purchase orders, announced at its start: one for about every
 * 40th position, the fastest movers first, due on day one (received
 * during the day) up to a week later.
 */
static void announce_pos(sim *s)
{
	uint32_t n = s->p->skus * s->p->locations / 40;
	n = n < PO_MAX ? n : PO_MAX;
	s->pos_list = calloc(n ? n : 1, sizeof(purchase));
	if (!s->pos_list)
		abort();
	char name[24];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t sku = atp_zipf_sample(&s->zipf, &s->rng), loc = (uint32_t)atp_prng_below(&s->rng, s->p->locations);
		const atp_position *p = position(s, sku, loc);
		atp_inbound_view v = { 0 };
		if (p)
			atp_inbound_get(atp_core_inbound(s->core), (uint32_t)(p - atp_table_get(atp_core_table(s->core), 0)), &v);
		if (v.n_supplies >= ATP_SUPPLY_PER_POSITION / 2)
			continue; /* a hot SKU has a few orders open, not dozens */
		purchase *o = &s->pos_list[s->n_pos];
		*o = (purchase){ .sku = sku, .loc = (uint16_t)loc, .qty = (int64_t)(day_demand(s, sku) * 0.6) + 5,
			   .eta = DAY_ONE + (uint32_t)atp_prng_below(&s->rng, 8) };
		po_name(name, s->n_pos);
		row rw = { .source = WMS, .type = ATP_EV_SUPPLY, .sku = sku, .loc = o->loc, .to_loc = -1,
			   .qty = o->qty, .ref = name, .date = o->eta };
		emit(s, &rw);
		if (o->eta == DAY_ONE) /* received today, in one go or two */
			push(s, (task){ .t = 7 * HOUR + atp_prng_below(&s->rng, 14 * HOUR), .kind = T_PO_RECEIVE,
					.po = s->n_pos });
		else if (atp_prng_below(&s->rng, 10) == 0) /* the supplier writes: late, or cancelled */
			push(s, (task){ .t = 8 * HOUR + atp_prng_below(&s->rng, 12 * HOUR), .kind = T_PO_CHANGE,
					.po = s->n_pos });
		s->n_pos++;
	}
}

static void po_event(sim *s, const task *t)
{
	purchase *o = &s->pos_list[t->po];
	char name[24];
	po_name(name, t->po);
	row rw = { .source = WMS, .sku = o->sku, .loc = o->loc, .to_loc = -1, .ref = name };
	if (t->kind == T_PO_RECEIVE) {
		int64_t part = atp_prng_below(&s->rng, 3) == 0 ? o->qty / 2 + 1 : o->qty;
		rw.type = ATP_EV_RECEIPT;
		rw.qty = part;
		o->qty -= part;
		if (o->qty > 0)
			push(s, (task){ .t = s->now + HOUR, .kind = T_PO_RECEIVE, .po = t->po });
	} else if (atp_prng_below(&s->rng, 2) == 0) {
		rw.type = ATP_EV_SUPPLY;
		rw.qty = o->qty;
		rw.date = o->eta += 4;
	} else {
		rw.type = ATP_EV_SUPPLY;
		rw.qty = 0;
		o->qty = 0;
	}
	if (rw.qty > 0 || rw.type == ATP_EV_SUPPLY)
		emit(s, &rw);
}

static void floor_event(sim *s, const task *t)
{
	const atp_position *p = position(s, t->sku, t->loc);
	int64_t on_hand = p ? p->on_hand : 0;
	row rw = { .source = WMS, .sku = t->sku, .loc = t->loc, .to_loc = -1 };

	switch (t->sub) {
	case F_ADJUST:
		rw.type = ATP_EV_ADJUST;
		rw.qty = atp_prng_range(&s->rng, 1, 3);
		if (atp_prng_below(&s->rng, 10) < 7) {
			rw.qty = -rw.qty;
			rw.reason = "DAMAGE";
		} else {
			rw.reason = "FOUND";
		}
		break;
	case F_COUNT:
		rw.type = ATP_EV_COUNT;
		rw.qty = on_hand + atp_prng_range(&s->rng, -1, 1);
		if (rw.qty < 0)
			rw.qty = 0;
		break;
	case F_HOLD:
		rw.type = ATP_EV_HOLD;
		rw.qty = atp_prng_range(&s->rng, 1, 5);
		rw.reason = "QC";
		if (atp_prng_below(&s->rng, 10) < 7)
			push(s, (task){ .t = s->now + 4 * HOUR, .kind = T_UNHOLD, .sku = t->sku, .loc = t->loc,
					.qty = rw.qty });
		break;
	case F_TRANSFER:
		if (on_hand < 8 || s->p->locations < 2)
			return;
		rw.type = ATP_EV_TRANSFER;
		rw.qty = atp_prng_range(&s->rng, 1, on_hand / 4);
		rw.to_loc = (int32_t)((t->loc + 1 + atp_prng_below(&s->rng, s->p->locations - 1)) % s->p->locations);
		break;
	default:
		rw.type = ATP_EV_SAFETY;
		rw.qty = atp_prng_range(&s->rng, 0, 5);
		break;
	}
	emit(s, &rw);
}

/* Minute of the day for an order line: the hourly curve, or the promotion burst. */
static uint64_t order_time(sim *s)
{
	static const double hour_weight[24] = { 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 2.2, 2.3,
						2.2, 2.0, 1.9, 1.9, 2.0, 2.2, 2.5, 2.8, 3.0, 2.5, 1.5, 0.6 };
	const atp_simday_params *p = s->p;
	double burst_share = p->peak_minutes ? (double)p->peak_factor * p->peak_minutes / 1440.0 : 0;
	if (atp_prng_unit(&s->rng) < burst_share)
		return p->peak_start_min * MINUTE + atp_prng_below(&s->rng, p->peak_minutes * MINUTE);
	double total = 0, u;
	for (int h = 0; h < 24; h++)
		total += hour_weight[h];
	u = atp_prng_unit(&s->rng) * total;
	int h = 0;
	while (h < 23 && u >= hour_weight[h])
		u -= hour_weight[h++];
	return (uint64_t)h * HOUR + atp_prng_below(&s->rng, HOUR);
}

static bool repeats_earlier_line(const task *line, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (line[j].sku == line[i].sku && line[j].loc == line[i].loc)
			return true;
	return false;
}

static void plan_day(sim *s)
{
	const atp_simday_params *p = s->p;
	uint32_t lines = 0, order = 0;
	while (lines < p->order_lines) {
		uint32_t n = (uint32_t)atp_prng_range(&s->rng, 1, 3);
		uint64_t t = order_time(s);
		order++;
		task line[3];
		for (uint32_t i = 0; i < n && lines < p->order_lines; i++, lines++) {
			uint64_t q = atp_prng_below(&s->rng, 100);
			line[i] = (task){ .t = t, .kind = T_ORDER, .order = order,
					  .qty = q < 60 ? 1 : q < 85 ? 2 : atp_prng_range(&s->rng, 3, 5) };
			/* One line per (sku, location) in an order, as order capture merges them. */
			do {
				line[i].sku = atp_zipf_sample(&s->zipf, &s->rng);
				line[i].loc = (uint16_t)atp_prng_below(&s->rng, p->locations);
			} while (repeats_earlier_line(line, i));
			push(s, line[i]);
		}
	}
	/* Floor events: per 1,000 order lines 20 adjusts, 20 counts, 10 holds, 5 transfers, 2 safety. */
	static const uint32_t per_mille[] = { [F_ADJUST] = 20, [F_COUNT] = 20, [F_HOLD] = 10,
					      [F_TRANSFER] = 5, [F_SAFETY] = 2 };
	for (uint8_t k = 0; k < 5; k++)
		for (uint64_t i = 0; i < (uint64_t)p->order_lines * per_mille[k] / 1000; i++)
			push(s, (task){ .t = 5 * HOUR + atp_prng_below(&s->rng, 18 * HOUR), .kind = T_FLOOR,
					.sub = k, .sku = atp_zipf_sample(&s->zipf, &s->rng),
					.loc = (uint16_t)atp_prng_below(&s->rng, p->locations) });
	for (uint64_t h = 6; h < 24; h += 8)
		push(s, (task){ .t = h * HOUR, .kind = T_WAVE });
}

atp_simday_params atp_simday_default(void)
{
	return (atp_simday_params){ .seed = 1, .skus = 20000, .locations = 4, .order_lines = 250000,
				    .peak_factor = 50, .peak_minutes = 2, .peak_start_min = 12 * 60 };
}

int atp_simday_write(const atp_simday_params *p, FILE *out, atp_simday_summary *sum)
{
	if (p->skus == 0 || p->locations == 0 || p->locations > 99 || p->skus > 1000000 ||
	    p->peak_start_min + p->peak_minutes > 1440 || p->peak_minutes * (uint64_t)p->peak_factor > 1440)
		return -EINVAL;
	sim s = { .p = p, .out = out, .sum = sum, .heap_cap = 1024 };
	for (int i = 0; i < 2; i++)
		snprintf(s.names[i], sizeof(s.names[i]), "%s%s", p->prefix, source_name[i]);
	memset(sum, 0, sizeof(*sum));
	atp_prng_seed(&s.rng, p->seed);
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = p->skus * p->locations;
	cfg.max_lines = p->order_lines * 2 + 1024;
	cfg.max_sources = 2;
	s.core = atp_core_create(&cfg);
	s.heap = malloc(s.heap_cap * sizeof(task));
	int rc = 0;
	if (!s.core || !s.heap || atp_zipf_init(&s.zipf, p->skus, 1.0) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	fprintf(out, "%s\n", atp_csv_header);
	replenish(&s, true);
	announce_pos(&s);
	plan_day(&s);
	while (s.heap_len > 0) {
		task t = pop(&s);
		advance(&s, t.t);
		switch (t.kind) {
		case T_ORDER:
			order_line(&s, &t);
			break;
		case T_PICK:
		case T_CANCEL:
			pick_or_cancel(&s, &t);
			break;
		case T_UNHOLD:
			emit(&s, &(row){ .source = WMS, .type = ATP_EV_UNHOLD, .sku = t.sku, .loc = t.loc,
					 .to_loc = -1, .qty = t.qty, .reason = "QC" });
			break;
		case T_WAVE:
			replenish(&s, false);
			break;
		case T_PO_RECEIVE:
		case T_PO_CHANGE:
			po_event(&s, &t);
			break;
		default:
			floor_event(&s, &t);
			break;
		}
	}
	if (fflush(out) != 0 || ferror(out))
		rc = -EIO;
out:
	atp_zipf_free(&s.zipf);
	free(s.heap);
	free(s.pos_list);
	atp_core_destroy(s.core);
	return rc;
}
