/*
 * Differential test: long random event sequences, with duplicates, gaps,
 * retries, bad input and expiry, applied to the core and to a small model
 * written straight from the spec; every result and every position compared.
 * A failure names the seed, which replays the same sequence.
 */
#include "../../tools/lib/prng.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>

enum { SKUS = 4, LOCS = 3, REFS = 12, SOURCES = 2, MAX_LINES = 8192, RETENTION = 1000 };
static const char *const sku_names[SKUS] = { "A", "B", "C", "D" };
static const char *const loc_names[LOCS] = { "DC1", "DC2", "ST3" };
static const char *const src_names[SOURCES] = { "wms", "oms" };
static const char *const ref_names[REFS] = { "R0", "R1", "R2", "R3", "R4", "R5",
					     "R6", "R7", "R8", "R9", "R10", "R11" };

typedef struct mpos {
	bool exists;
	int64_t on_hand, held, reserved, safety;
} mpos;

typedef struct mline {
	bool exists;
	int ref, sku, loc, state;
	int64_t requested, confirmed, remaining;
	uint64_t expires_at, closed_at;
} mline;

typedef struct model {
	mpos pos[SKUS][LOCS];
	mline line[MAX_LINES];
	int n_lines;
	uint64_t hwm[SOURCES];
	uint64_t now;
} model;

typedef struct mresult {
	int status;
	int64_t confirmed, moved;
	int n_changed_atp;
	uint32_t exceptions;  /* ATP_RF_NEGATIVE, ATP_RF_SHORT of the event's own position */
	uint32_t outcome;     /* ATP_RF_PARTIAL, _REPLAYED, _MISMATCH, _NO_LINE, _CLAMPED */
	uint64_t expected_seq;
	int64_t requested;
	int64_t old_atp, new_atp;  /* of the event's own position */
} mresult;

/* The result flags the model decides. */
#define M_FLAGS \
	(ATP_RF_NEGATIVE | ATP_RF_SHORT | ATP_RF_PARTIAL | ATP_RF_REPLAYED | ATP_RF_MISMATCH | ATP_RF_NO_LINE | ATP_RF_CLAMPED)

static int64_t m_atp(const mpos *p)
{
	int64_t v = p->on_hand - p->held - p->reserved - p->safety;
	return v > 0 ? v : 0;
}

static mline *m_find_line(model *m, int ref, int sku, int loc)
{
	for (int i = 0; i < m->n_lines; i++) {
		mline *l = &m->line[i];
		if (l->exists && l->ref == ref && l->sku == sku && l->loc == loc)
			return l;
	}
	return NULL;
}

static bool m_qty_ok(int type, int64_t q)
{
	switch (type) {
	case ATP_EV_ADJUST: return q != 0;
	case ATP_EV_COUNT:
	case ATP_EV_SAFETY: return q >= 0;
	case ATP_EV_RELEASE: return true;
	default: return q > 0;
	}
}

static void m_close(model *m, mline *l, int state)
{
	l->state = state;
	l->closed_at = m->now;
}

static mresult m_apply(model *m, int type, int src, uint64_t seq, int sku, int loc, int to, int64_t qty,
		       int ref, bool partial, uint64_t expires_at)
{
	mresult r = { 0 };
	bool needs_ref = type == ATP_EV_RESERVE || type == ATP_EV_RELEASE;
	if (!m_qty_ok(type, qty)) {
		r.status = ATP_E_QTY;
		return r;
	}
	if (needs_ref && ref < 0) {
		r.status = ATP_E_REF;
		return r;
	}
	if (type == ATP_EV_TRANSFER && to == loc) {
		r.status = ATP_E_TO_LOCATION;
		return r;
	}
	r.expected_seq = m->hwm[src] + 1;
	if (seq <= m->hwm[src]) {
		r.status = ATP_DUPLICATE;
		return r;
	}
	if (seq > m->hwm[src] + 1) {
		r.status = ATP_E_GAP;
		return r;
	}
	m->hwm[src] = seq;
	r.expected_seq = seq + 1;
	mpos *p = &m->pos[sku][loc];
	if (type == ATP_EV_RELEASE && !p->exists) {
		r.outcome = ATP_RF_NO_LINE;
		return r;
	}
	mpos before = *p, before_to = m->pos[sku][to < 0 ? 0 : to];
	p->exists = true;
	mline *l = ref >= 0 ? m_find_line(m, ref, sku, loc) : NULL;
	switch (type) {
	case ATP_EV_RECEIPT: p->on_hand += qty; break;
	case ATP_EV_ADJUST: p->on_hand += qty; break;
	case ATP_EV_COUNT: p->on_hand = qty; break;
	case ATP_EV_SAFETY: p->safety = qty; break;
	case ATP_EV_HOLD: {
		int64_t free_units = p->on_hand - p->held > 0 ? p->on_hand - p->held : 0;
		r.moved = qty < free_units ? qty : free_units;
		p->held += r.moved;
		r.outcome = r.moved < qty ? ATP_RF_CLAMPED : 0;
		break;
	}
	case ATP_EV_UNHOLD:
		r.moved = qty < p->held ? qty : p->held;
		p->held -= r.moved;
		r.outcome = r.moved < qty ? ATP_RF_CLAMPED : 0;
		break;
	case ATP_EV_PICK:
		if (l && l->state == ATP_LINE_OPEN) {
			r.moved = qty < l->remaining ? qty : l->remaining;
			l->remaining -= r.moved;
			p->reserved -= r.moved;
			if (l->remaining == 0)
				m_close(m, l, ATP_LINE_CONSUMED);
		} else if (ref >= 0) {
			r.outcome = ATP_RF_NO_LINE;
		}
		p->on_hand -= qty;
		break;
	case ATP_EV_TRANSFER:
		p->on_hand -= qty;
		m->pos[sku][to].exists = true;
		m->pos[sku][to].on_hand += qty;
		break;
	case ATP_EV_RESERVE:
		r.requested = qty;
		if (l) {
			r.confirmed = l->confirmed;
			r.outcome = ATP_RF_REPLAYED | (l->requested != qty ? ATP_RF_MISMATCH : 0);
			break;
		}
		int64_t atp = m_atp(p);
		r.confirmed = atp >= qty ? qty : partial ? atp : 0;
		r.outcome = r.confirmed > 0 && r.confirmed < qty ? ATP_RF_PARTIAL : 0;
		p->reserved += r.confirmed;
		l = &m->line[m->n_lines++];
		*l = (mline){ .exists = true, .ref = ref, .sku = sku, .loc = loc, .requested = qty,
			      .confirmed = r.confirmed, .remaining = r.confirmed, .expires_at = expires_at,
			      .state = ATP_LINE_OPEN };
		if (r.confirmed == 0)
			m_close(m, l, ATP_LINE_UNFILLED);
		break;
	case ATP_EV_RELEASE:
		if (l && l->state == ATP_LINE_OPEN) {
			r.moved = l->remaining;
			p->reserved -= l->remaining;
			l->remaining = 0;
			m_close(m, l, ATP_LINE_RELEASED);
		} else {
			r.outcome = ATP_RF_NO_LINE;
		}
		break;
	}
	bool changed = p->on_hand != before.on_hand || p->held != before.held || p->reserved != before.reserved ||
		       p->safety != before.safety;
	if (changed && p->on_hand < 0 && p->on_hand < before.on_hand)
		r.exceptions |= ATP_RF_NEGATIVE; /* an oversell */
	if (changed && p->reserved > p->on_hand - p->held)
		r.exceptions |= ATP_RF_SHORT;    /* promised more than is free */
	r.old_atp = m_atp(&before);
	r.new_atp = m_atp(p);
	r.n_changed_atp = (m_atp(&before) != m_atp(p)) +
			  (type == ATP_EV_TRANSFER && m_atp(&before_to) != m_atp(&m->pos[sku][to]));
	return r;
}

static void m_expire(model *m, uint64_t now)
{
	if (now > m->now)
		m->now = now;
	/* Due lines lapse; the order among them does not change the state. */
	for (int i = 0; i < m->n_lines; i++) {
		mline *l = &m->line[i];
		if (l->exists && l->state == ATP_LINE_OPEN && l->expires_at && l->expires_at <= m->now) {
			m->pos[l->sku][l->loc].reserved -= l->remaining;
			l->remaining = 0;
			m_close(m, l, ATP_LINE_EXPIRED);
		}
	}
	for (int i = 0; i < m->n_lines; i++) {
		mline *l = &m->line[i];
		if (l->exists && l->state != ATP_LINE_OPEN && m->now > RETENTION && l->closed_at < m->now - RETENTION)
			l->exists = false;
	}
}

static void compare_positions(const atp_core *c, const model *m, uint64_t seed, int step)
{
	for (int s = 0; s < SKUS; s++) {
		for (int l = 0; l < LOCS; l++) {
			const atp_position *p = pos_of(c, sku_names[s], loc_names[l]);
			const mpos *q = &m->pos[s][l];
			cr_assert_eq(p != NULL, q->exists, "seed %llu step %d: %s/%s existence",
				     (unsigned long long)seed, step, sku_names[s], loc_names[l]);
			if (!p)
				continue;
			cr_assert(p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved &&
					  p->safety_stock == q->safety,
				  "seed %llu step %d: %s/%s core (%lld,%lld,%lld,%lld) model (%lld,%lld,%lld,%lld)",
				  (unsigned long long)seed, step, sku_names[s], loc_names[l], (long long)p->on_hand,
				  (long long)p->held, (long long)p->reserved, (long long)p->safety_stock,
				  (long long)q->on_hand, (long long)q->held, (long long)q->reserved,
				  (long long)q->safety);
		}
	}
}

static const uint8_t type_mix[] = { ATP_EV_RECEIPT, ATP_EV_RECEIPT, ATP_EV_PICK, ATP_EV_PICK, ATP_EV_PICK,
				    ATP_EV_ADJUST, ATP_EV_COUNT, ATP_EV_HOLD, ATP_EV_UNHOLD, ATP_EV_TRANSFER,
				    ATP_EV_SAFETY, ATP_EV_RESERVE, ATP_EV_RESERVE, ATP_EV_RESERVE,
				    ATP_EV_RESERVE, ATP_EV_RELEASE, ATP_EV_RELEASE };

typedef struct gen_event {
	atp_event ev;
	int src, sku, loc, to, ref;
} gen_event;

static gen_event generate(atp_prng *g, uint64_t next_seq[SOURCES], uint64_t now, uint64_t *event_id)
{
	gen_event e = { .src = (int)atp_prng_below(g, SOURCES), .sku = (int)atp_prng_below(g, SKUS),
			.loc = (int)atp_prng_below(g, LOCS), .to = -1, .ref = -1 };
	atp_event *ev = &e.ev;
	ev->type = type_mix[atp_prng_below(g, sizeof(type_mix))];
	ev->event_id = ++*event_id;
	/* Mostly the next seq; sometimes a resend of an old one, sometimes a gap. */
	uint64_t u = atp_prng_below(g, 100);
	uint64_t next = next_seq[e.src];
	ev->seq = u < 8 && next > 1 ? 1 + atp_prng_below(g, next - 1) : u < 11 ? next + 1 + atp_prng_below(g, 3) : next;
	ev->qty = atp_prng_range(g, -1, 12);
	if (ev->type == ATP_EV_RECEIPT)
		ev->qty *= 3;
	ev->source = S(src_names[e.src]);
	ev->sku = S(sku_names[e.sku]);
	ev->location = S(loc_names[e.loc]);
	bool wants_ref = ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE ||
			 (ev->type == ATP_EV_PICK && atp_prng_below(g, 3));
	if (wants_ref && atp_prng_below(g, 50)) {
		e.ref = (int)atp_prng_below(g, REFS);
		ev->ref = S(ref_names[e.ref]);
	}
	if (ev->type == ATP_EV_TRANSFER) {
		e.to = (int)atp_prng_below(g, LOCS);
		ev->to_location = S(loc_names[e.to]);
	}
	if (ev->type == ATP_EV_ADJUST)
		ev->reason = S("DAMAGE");
	if (ev->type == ATP_EV_RESERVE) {
		ev->flags = atp_prng_below(g, 2) ? ATP_EVF_PARTIAL : 0;
		ev->expires_at = atp_prng_below(g, 4) ? now + 1 + atp_prng_below(g, 400) : 0;
	}
	return e;
}

static void run(uint64_t seed, int steps, bool batched)
{
	atp_core *c = small_core(SKUS * LOCS, MAX_LINES, SOURCES);
	model *m = calloc(1, sizeof(*m));
	atp_prng g;
	atp_prng_seed(&g, seed);
	uint64_t next_seq[SOURCES] = { 1, 1 }, event_id = 0, now = 0;
	enum { BATCH = 16 };
	gen_event batch[BATCH];
	mresult want[BATCH];
	atp_event evs[BATCH];
	atp_result res[BATCH];
	atp_delta deltas[8];
	size_t nd;

	for (int step = 0; step < steps; step += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			batch[i] = generate(&g, next_seq, now, &event_id);
			evs[i] = batch[i].ev;
			/* The generator learns the next seq from the model, as a sender from its acks. */
			gen_event *e = &batch[i];
			want[i] = m_apply(m, e->ev.type, e->src, e->ev.seq, e->sku, e->loc, e->to, e->ev.qty,
					     e->ref, e->ev.flags & ATP_EVF_PARTIAL, e->ev.expires_at);
			if (!batched)
				atp_core_apply(c, &evs[i], &res[i]);
			next_seq[e->src] = m->hwm[e->src] + 1;
		}
		if (batched)
			atp_core_apply_batch(c, evs, BATCH, res);
		for (int i = 0; i < BATCH; i++) {
			cr_assert_eq(res[i].status, want[i].status, "seed %llu step %d: %s status %s, model %s",
				     (unsigned long long)seed, step + i, atp_event_type_name(evs[i].type),
				     atp_status_name(res[i].status), atp_status_name(want[i].status));
			if (res[i].status == ATP_DUPLICATE || res[i].status == ATP_E_GAP)
				cr_assert_eq(res[i].expected_seq, want[i].expected_seq, "seed %llu step %d: expected seq",
					     (unsigned long long)seed, step + i);
			if (res[i].status != ATP_OK)
				continue;
			cr_assert_eq(res[i].expected_seq, want[i].expected_seq, "seed %llu step %d: expected seq",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].requested, want[i].requested, "seed %llu step %d: requested",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].confirmed, want[i].confirmed, "seed %llu step %d: confirmed", (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].moved, want[i].moved, "seed %llu step %d: moved",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].flags & M_FLAGS, want[i].exceptions | want[i].outcome,
				     "seed %llu step %d: %s flags %#x, model %#x", (unsigned long long)seed, step + i,
				     atp_event_type_name(evs[i].type), res[i].flags, want[i].exceptions | want[i].outcome);
			cr_assert_eq(res[i].n_deltas, (uint32_t)want[i].n_changed_atp, "seed %llu step %d: deltas",
				     (unsigned long long)seed, step + i);
			const atp_delta *d = &res[i].deltas[0];
			if (res[i].n_deltas && want[i].old_atp != want[i].new_atp) { /* the event's own position first */
				cr_assert(d->old_atp == want[i].old_atp && d->new_atp == want[i].new_atp && d->seq == evs[i].seq &&
						  atp_str_cmp(d->sku, evs[i].sku) == 0 && atp_str_cmp(d->location, evs[i].location) == 0,
					  "seed %llu step %d: delta %lld -> %lld, model %lld -> %lld", (unsigned long long)seed,
					  step + i, (long long)d->old_atp, (long long)d->new_atp, (long long)want[i].old_atp,
					  (long long)want[i].new_atp);
			}
		}
		compare_positions(c, m, seed, step);
		now += atp_prng_below(&g, 60);
		while (atp_core_expire(c, now, deltas, 8, &nd) == 8)
			;
		m_expire(m, now);
		compare_positions(c, m, seed, step);
	}
	free(m);
	atp_core_destroy(c);
}

Test(differential, core_matches_the_model_one_by_one)
{
	for (uint64_t seed = 1; seed <= 400; seed++)
		run(seed, 3000, false);
}

Test(differential, core_matches_the_model_in_batches)
{
	for (uint64_t seed = 1001; seed <= 1400; seed++)
		run(seed, 3000, true);
}
