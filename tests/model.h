/*
 * model.h — the reference model of the core, written straight from the
 * spec (DESIGN.md): positions of SKUs x locations by index, reservation
 * lines by ref, per-source seqs, time and line retention. Shared by the
 * differential test (the core against it, event by event) and the
 * simulator (tests/sim: one model per shard, whose seqs are sparse as a
 * shard's are, against the engine across crashes).
 */
#ifndef ATP_TEST_MODEL_H
#define ATP_TEST_MODEL_H

#include "atp/core.h"

#include <stdbool.h>
#include <stdint.h>

#define M_SKUS 16
#define M_LOCS 3
#define M_SOURCES 4
#define M_MAX_LINES 8192
#define M_RETENTION 1000  /* ms a closed line is remembered (the core's line_retention in these tests) */

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
	mpos pos[M_SKUS][M_LOCS];
	mline line[M_MAX_LINES];
	int n_lines;
	uint64_t hwm[M_SOURCES];
	uint64_t now;
	bool sparse;  /* a shard's seqs: any seq above the source's last is next (the router checked contiguity) */
	bool deny;    /* a new RESERVE line confirms nothing (ATP_EVF_DENY: a line of a whole order that failed) */
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

static inline int64_t m_atp(const mpos *p)
{
	int64_t v = p->on_hand - p->held - p->reserved - p->safety;
	return v > 0 ? v : 0;
}

static inline mline *m_find_line(model *m, int ref, int sku, int loc)
{
	for (int i = 0; i < m->n_lines; i++) {
		mline *l = &m->line[i];
		if (l->exists && l->ref == ref && l->sku == sku && l->loc == loc)
			return l;
	}
	return NULL;
}

static inline bool m_qty_ok(int type, int64_t q)
{
	switch (type) {
	case ATP_EV_ADJUST: return q != 0;
	case ATP_EV_COUNT:
	case ATP_EV_SAFETY: return q >= 0;
	case ATP_EV_RELEASE: return true;
	default: return q > 0;
	}
}

static inline void m_close(model *m, mline *l, int state)
{
	l->state = state;
	l->closed_at = m->now;
}

static inline mresult m_apply(model *m, int type, int src, uint64_t seq, int sku, int loc, int to, int64_t qty,
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
	if (seq > m->hwm[src] + 1 && !m->sparse) {
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
		r.confirmed = m->deny ? 0 : atp >= qty ? qty : partial ? atp : 0;
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

/*
 * A whole order (atp_engine_submit_order): n RESERVE lines of src from seq,
 * one ref, distinct positions; every new line in full if every line is new
 * and its position's ATP covers it, else every new line nothing (a line
 * that exists answers its first result either way). Results into r[].
 */
static inline void m_order(model *m, int src, uint64_t seq, int n, const int *sku, const int *loc, const int64_t *qty,
			   int ref, uint64_t expires_at, mresult *r)
{
	bool whole = true;
	for (int i = 0; i < n; i++)
		whole = whole && !m_find_line(m, ref, sku[i], loc[i]) && m_atp(&m->pos[sku[i]][loc[i]]) >= qty[i] &&
			m->pos[sku[i]][loc[i]].exists;
	m->deny = !whole;
	for (int i = 0; i < n; i++)
		r[i] = m_apply(m, ATP_EV_RESERVE, src, seq + (uint64_t)i, sku[i], loc[i], -1, qty[i], ref, false, expires_at);
	m->deny = false;
}

static inline void m_expire(model *m, uint64_t now)
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
		if (l->exists && l->state != ATP_LINE_OPEN && m->now > M_RETENTION && l->closed_at < m->now - M_RETENTION)
			l->exists = false;
	}
}

#endif
