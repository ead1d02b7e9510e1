/*
 * model_inbound.h — the reference model of ATP over time (atp/inbound.h),
 * written from the spec in the plainest way: quantities per day in arrays,
 * every feasibility check a full recomputation over every day of a short
 * window, lines in a flat array searched linearly. The core keeps step
 * functions over ETAs and chained promises; the two must agree event by
 * event (tests/unit/test_inbound.c).
 *
 * Scope: a few positions (no held or safety stock: those are the core's
 * model.h), receipts with or without a supply, picks, supplies set and
 * cancelled, reservations now or with a need-by day, releases.
 */
#ifndef ATP_TEST_MODEL_INBOUND_H
#define ATP_TEST_MODEL_INBOUND_H

#include "atp/core.h"

#include <stdbool.h>
#include <stdint.h>

#define MI_POS 4
#define MI_SUP 4     /* supplies per position, by index (ref "PO<i>") */
#define MI_DAYS 16   /* days 1 .. MI_DAYS - 1 */
#define MI_LINES 4096

typedef struct mi_supply {
	bool open;
	int eta;
	int64_t expected;
} mi_supply;

typedef struct mi_line {
	int ref, pos, state;
	int64_t qty, remaining;
	int date, need_by;  /* PROMISED */
} mi_line;

typedef struct mi_pos {
	int64_t on_hand, reserved, pool;
	mi_supply sup[MI_SUP];
} mi_pos;

typedef struct mi_model {
	mi_pos pos[MI_POS];
	mi_line line[MI_LINES];  /* in the order they were made: promises' priority */
	int n_lines;
} mi_model;

typedef struct mi_result {
	int64_t confirmed, moved;
	int date;              /* RESERVE promised against supply */
	int late, withdrawn;
	bool no_line, replayed;
} mi_result;

static inline int64_t mi_atp(const mi_pos *p)
{
	return p->on_hand - p->reserved > 0 ? p->on_hand - p->reserved : 0;
}

static inline mi_line *mi_find(mi_model *m, int pos, int ref)
{
	for (int i = 0; i < m->n_lines; i++)
		if (m->line[i].pos == pos && m->line[i].ref == ref)
			return &m->line[i];
	return NULL;
}

/* F(d) for every day: pool + supply due by d - promises dated by d (skip: a line left out). */
static inline void mi_f(const mi_model *m, int pos, const mi_line *skip, int64_t f[MI_DAYS])
{
	const mi_pos *p = &m->pos[pos];
	for (int d = 0; d < MI_DAYS; d++) {
		f[d] = p->pool;
		for (int s = 0; s < MI_SUP; s++)
			if (p->sup[s].open && p->sup[s].eta <= d)
				f[d] += p->sup[s].expected;
		for (int i = 0; i < m->n_lines; i++) {
			const mi_line *l = &m->line[i];
			if (l != skip && l->pos == pos && l->state == ATP_LINE_PROMISED && l->date <= d)
				f[d] -= l->qty;
		}
	}
}

static inline bool mi_is_eta(const mi_pos *p, int d)
{
	for (int s = 0; s < MI_SUP; s++)
		if (p->sup[s].open && p->sup[s].eta == d)
			return true;
	return false;
}

/* The earliest ETA t <= need_by where q more, promised from t, keeps F >= 0 on every day from t; 0: none. */
static inline int mi_earliest(const mi_model *m, int pos, int64_t q, int need_by, const int64_t f[MI_DAYS])
{
	for (int t = 1; t <= need_by && t < MI_DAYS; t++) {
		if (!mi_is_eta(&m->pos[pos], t))
			continue;
		bool ok = true;
		for (int d = t; d < MI_DAYS; d++)
			ok = ok && f[d] - q >= 0;
		if (ok)
			return t;
	}
	return 0;
}

/* What can be promised for day d: min over d' >= d of F(d'), at least 0. */
static inline int64_t mi_inbound(const mi_model *m, int pos, int d)
{
	int64_t f[MI_DAYS], low = INT64_MAX;
	mi_f(m, pos, NULL, f);
	for (int k = d; k < MI_DAYS; k++)
		low = f[k] < low ? f[k] : low;
	return low > 0 ? low : 0;
}

static inline void mi_replan(mi_model *m, int pos, mi_result *r)
{
	mi_pos *p = &m->pos[pos];
	/* Received units open promised lines: earliest date first, then oldest, each whole, until one does not fit. */
	for (;;) {
		mi_line *best = NULL;
		for (int i = 0; i < m->n_lines; i++) {
			mi_line *l = &m->line[i];
			if (l->pos == pos && l->state == ATP_LINE_PROMISED && (!best || l->date < best->date))
				best = l;
		}
		if (!best || best->qty > p->pool || p->pool == 0)
			break;
		p->pool -= best->qty;
		best->state = ATP_LINE_OPEN;
		best->remaining = best->qty;
	}
	/* Every waiting promise again, oldest first: each placed in turn, later ones left out until placed. */
	for (int i = 0; i < m->n_lines; i++)
		if (m->line[i].pos == pos && m->line[i].state == ATP_LINE_PROMISED)
			m->line[i].state = -ATP_LINE_PROMISED;  /* not yet placed */
	for (int i = 0; i < m->n_lines; i++) {
		mi_line *l = &m->line[i];
		if (l->pos != pos || l->state != -ATP_LINE_PROMISED)
			continue;
		int64_t f[MI_DAYS];
		mi_f(m, pos, NULL, f);
		int t = mi_earliest(m, pos, l->qty, MI_DAYS - 1, f);
		if (!t) {
			l->state = ATP_LINE_WITHDRAWN;
			r->withdrawn++;
			continue;
		}
		if (t > l->need_by && l->date <= l->need_by)
			r->late++;
		l->date = t;
		l->state = ATP_LINE_PROMISED;
	}
	/* The pool keeps only what the promises need. */
	int64_t f[MI_DAYS], need = 0;
	mi_f(m, pos, NULL, f);
	for (int d = 0; d < MI_DAYS; d++)
		need = p->pool - f[d] > need ? p->pool - f[d] : need;
	if (need < p->pool) {
		p->reserved -= p->pool - need;
		p->pool = need;
	}
}

static inline mi_result mi_receipt(mi_model *m, int pos, int64_t q, int sup)
{
	mi_result r = { 0 };
	mi_pos *p = &m->pos[pos];
	p->on_hand += q;
	if (sup >= 0 && p->sup[sup].open) {
		r.moved = q < p->sup[sup].expected ? q : p->sup[sup].expected;
		p->sup[sup].expected -= r.moved;
		p->sup[sup].open = p->sup[sup].expected > 0;
		p->pool += r.moved;
		p->reserved += r.moved;
		mi_replan(m, pos, &r);
	}
	return r;
}

static inline mi_result mi_pick(mi_model *m, int pos, int64_t q, int ref)
{
	mi_result r = { 0 };
	mi_pos *p = &m->pos[pos];
	mi_line *l = mi_find(m, pos, ref);
	if (l && l->state == ATP_LINE_OPEN) {
		r.moved = q < l->remaining ? q : l->remaining;
		l->remaining -= r.moved;
		p->reserved -= r.moved;
		if (!l->remaining)
			l->state = ATP_LINE_CONSUMED;
	} else {
		r.no_line = true;
	}
	p->on_hand -= q;
	return r;
}

static inline mi_result mi_supply_set(mi_model *m, int pos, int sup, int64_t q, int eta)
{
	mi_result r = { 0 };
	mi_supply *s = &m->pos[pos].sup[sup];
	if (q == 0 && !s->open) {
		r.no_line = true;
		return r;
	}
	*s = (mi_supply){ .open = q > 0, .eta = eta, .expected = q };
	mi_replan(m, pos, &r);
	return r;
}

static inline mi_result mi_reserve(mi_model *m, int pos, int ref, int64_t q, int need_by)
{
	mi_result r = { 0 };
	mi_pos *p = &m->pos[pos];
	mi_line *l = mi_find(m, pos, ref);
	if (l) {
		r.replayed = true;
		r.confirmed = l->state == ATP_LINE_UNFILLED ? 0 : l->qty;
		r.date = l->state == ATP_LINE_PROMISED ? l->date : 0;
		return r;
	}
	l = &m->line[m->n_lines++];
	*l = (mi_line){ .ref = ref, .pos = pos, .qty = q, .need_by = need_by };
	int64_t f[MI_DAYS];
	mi_f(m, pos, NULL, f);
	if (mi_atp(p) >= q) {
		l->state = ATP_LINE_OPEN;
		l->remaining = q;
		p->reserved += q;
		r.confirmed = q;
	} else if (need_by && (r.date = mi_earliest(m, pos, q, need_by, f))) {
		l->state = ATP_LINE_PROMISED;
		l->date = r.date;
		r.confirmed = q;
	} else {
		l->state = ATP_LINE_UNFILLED;
		l->qty = q;
	}
	return r;
}

static inline mi_result mi_release(mi_model *m, int pos, int ref)
{
	mi_result r = { 0 };
	mi_line *l = mi_find(m, pos, ref);
	if (l && l->state == ATP_LINE_OPEN) {
		r.moved = l->remaining;
		m->pos[pos].reserved -= l->remaining;
		l->remaining = 0;
		l->state = ATP_LINE_RELEASED;
	} else if (l && l->state == ATP_LINE_PROMISED) {
		l->state = ATP_LINE_RELEASED;
		mi_replan(m, pos, &r);
	} else {
		r.no_line = true;
	}
	return r;
}

#endif
