/*
 * inbound.c — inbound supply and the promises made against it (see atp/inbound.h).
 *
 * A position with supply, a pool or promises has an entry (65,536 of them
 * per shard by default, taken from a bump allocator and a free list);
 * position ids map to entries through an array sized by the table. The
 * arrays are mapped, not allocated: pages nobody used are never touched, so
 * a store sized for the worst case costs what is used (an allocator may
 * zero a reused block of that size by hand at every start). Promises are records in one store, each
 * position's chained in the order they were made. Every change ends in
 * publish(), which rewrites the position's curve under its sequence lock.
 * Positions hold few supplies (at most ATP_SUPPLY_PER_POSITION) and few
 * waiting promises, so a replan is a few small loops over them; it runs only
 * on supply events and promised lines' releases, never on the day's picks
 * and reservations.
 */
#include "atp/inbound.h"

#include "atp/limits.h"
#include "atp/status.h"
#include "memory.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

typedef struct supply {
	uint32_t eta;
	uint8_t ref_len;
	char ref[ATP_REF_MAX];
	int64_t expected;
} supply;

typedef struct entry {
	uint32_t seq;    /* sequence lock of the curve: odd while the writer changes it */
	uint32_t pos;    /* the position, NONE while free */
	uint32_t first;  /* promises in the order they were made (NONE: none); the free list's link */
	uint32_t last;
	uint32_t n_promises;
	uint32_t n_supply;
	int64_t pool;
	uint32_t n_curve;
	atp_inbound_step curve[ATP_SUPPLY_PER_POSITION + 1];
	supply supply[ATP_SUPPLY_PER_POSITION];
} entry;

typedef struct promise {
	uint32_t line;
	uint32_t next;  /* of the same position, or the free list's link */
	uint32_t date;
	uint32_t need_by;
	int64_t qty;
} promise;

struct atp_inbound {
	uint32_t max_positions;
	uint32_t max_entries;
	uint32_t max_promises;
	uint32_t *entry_of;  /* position id -> entry index + 1, 0: none */
	entry *entries;
	uint32_t fresh_entry, free_entry, used_entries;
	promise *promises;
	uint32_t fresh_promise, free_promise, used_promises;
};

atp_inbound *atp_inbound_create(uint32_t max_positions, uint32_t max_entries, uint32_t max_promises)
{
	atp_inbound *ib = calloc(1, sizeof(*ib));
	if (!ib)
		return NULL;
	ib->max_positions = max_positions;
	ib->max_entries = max_entries;
	ib->max_promises = max_promises;
	ib->free_entry = ib->free_promise = NONE;
	ib->entry_of = atp_map_zeroed((size_t)max_positions * sizeof(uint32_t));
	ib->entries = atp_map_zeroed((size_t)max_entries * sizeof(entry));
	ib->promises = atp_map_zeroed((size_t)max_promises * sizeof(promise));
	if (!ib->entry_of || !ib->entries || !ib->promises) {
		atp_inbound_destroy(ib);
		return NULL;
	}
	return ib;
}

void atp_inbound_destroy(atp_inbound *ib)
{
	if (!ib)
		return;
	atp_unmap(ib->entry_of, (size_t)ib->max_positions * sizeof(uint32_t));
	atp_unmap(ib->entries, (size_t)ib->max_entries * sizeof(entry));
	atp_unmap(ib->promises, (size_t)ib->max_promises * sizeof(promise));
	free(ib);
}

size_t atp_inbound_memory(const atp_inbound *ib)
{
	return sizeof(*ib) + (size_t)ib->max_positions * sizeof(uint32_t) + (size_t)ib->max_entries * sizeof(entry) +
	       (size_t)ib->max_promises * sizeof(promise);
}

static entry *entry_find(const atp_inbound *ib, uint32_t pos)
{
	if (pos >= ib->max_positions || !ib->entry_of[pos])
		return NULL;
	return &ib->entries[ib->entry_of[pos] - 1];
}

static bool entry_room(const atp_inbound *ib)
{
	return ib->free_entry != NONE || ib->fresh_entry < ib->max_entries;
}

static entry *entry_get(atp_inbound *ib, uint32_t pos)
{
	entry *e = entry_find(ib, pos);
	if (e)
		return e;
	assert(pos < ib->max_positions && entry_room(ib));
	uint32_t i = ib->free_entry != NONE ? ib->free_entry : ib->fresh_entry++;
	e = &ib->entries[i];
	if (i == ib->free_entry)
		ib->free_entry = e->first;
	/* What readers load (pos, the curve) changes under the sequence lock, with atomic stores; the rest is the writer's. */
	uint32_t seq = e->seq;
	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&e->pos, pos, __ATOMIC_RELAXED);
	__atomic_store_n(&e->n_curve, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
	e->first = e->last = NONE;
	e->n_promises = e->n_supply = 0;
	e->pool = 0;
	ib->used_entries++;
	__atomic_store_n(&ib->entry_of[pos], i + 1, __ATOMIC_RELEASE);
	return e;
}

/* An entry with nothing left goes back to the free list. */
static void entry_put(atp_inbound *ib, entry *e)
{
	if (e->n_supply || e->n_promises || e->pool)
		return;
	uint32_t i = (uint32_t)(e - ib->entries);
	__atomic_store_n(&ib->entry_of[e->pos], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&e->pos, NONE, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELEASE);
	e->first = ib->free_entry;
	ib->free_entry = i;
	ib->used_entries--;
}

static int supply_find(const entry *e, atp_str ref)
{
	for (uint32_t i = 0; i < e->n_supply; i++)
		if (e->supply[i].ref_len == ref.len && memcmp(e->supply[i].ref, ref.ptr, ref.len) == 0)
			return (int)i;
	return -1;
}

static void supply_remove(entry *e, int i)
{
	e->supply[i] = e->supply[--e->n_supply];
}

/* The distinct ETAs of e's supplies, ascending, with the units expected by each (cumulative). */
static uint32_t etas(const entry *e, uint32_t *day, int64_t *sup)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < e->n_supply; i++) {
		uint32_t d = e->supply[i].eta, j = k;
		bool seen = false;
		for (uint32_t m = 0; m < k; m++)
			seen |= day[m] == d;
		if (seen)
			continue;
		while (j > 0 && day[j - 1] > d) {
			day[j] = day[j - 1];
			j--;
		}
		day[j] = d;
		k++;
	}
	for (uint32_t m = 0; m < k; m++) {
		sup[m] = 0;
		for (uint32_t i = 0; i < e->n_supply; i++)
			if (e->supply[i].eta <= day[m])
				sup[m] += e->supply[i].expected;
	}
	return k;
}

/* Rewrite e's curve from its supplies, pool and promises, under its sequence lock. */
static void publish(const atp_inbound *ib, entry *e)
{
	uint32_t day[ATP_SUPPLY_PER_POSITION];
	int64_t f[ATP_SUPPLY_PER_POSITION], before = e->pool;
	uint32_t k = etas(e, day, f);
	for (uint32_t m = 0; m < k; m++)
		f[m] += e->pool;
	for (uint32_t p = e->first; p != NONE; p = ib->promises[p].next) {
		const promise *pr = &ib->promises[p];
		for (uint32_t m = 0; m < k; m++)
			if (pr->date <= day[m])
				f[m] -= pr->qty;
		if (k == 0 || pr->date < day[0])
			before -= pr->qty;
	}
	atp_inbound_step c[ATP_SUPPLY_PER_POSITION + 1];
	int64_t low = INT64_MAX;
	for (uint32_t m = k; m-- > 0;) {
		low = f[m] < low ? f[m] : low;
		c[m + 1] = (atp_inbound_step){ .day = day[m], .units = low > 0 ? low : 0 };
	}
	low = before < low ? before : low;
	c[0] = (atp_inbound_step){ .day = 0, .units = low > 0 ? low : 0 };

	uint32_t seq = e->seq;
	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (uint32_t m = 0; m <= k; m++) {
		__atomic_store_n(&e->curve[m].day, c[m].day, __ATOMIC_RELAXED);
		__atomic_store_n(&e->curve[m].units, c[m].units, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&e->n_curve, k + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Unlink promise p (prev: the one before it, or NONE) from e and free it. */
static void promise_drop(atp_inbound *ib, entry *e, uint32_t prev, uint32_t p)
{
	uint32_t next = ib->promises[p].next;
	if (prev == NONE)
		e->first = next;
	else
		ib->promises[prev].next = next;
	if (e->last == p)
		e->last = prev;
	ib->promises[p].next = ib->free_promise;
	ib->free_promise = p;
	ib->used_promises--;
	e->n_promises--;
}

/* Received units open promised lines from the pool: earliest date first (then oldest), each whole, until one does not fit. */
static void open_from_pool(atp_inbound *ib, entry *e, atp_lines *lines, atp_inbound_outcome *out)
{
	while (e->pool > 0 && e->first != NONE) {
		uint32_t best = NONE, best_prev = NONE;
		for (uint32_t prev = NONE, p = e->first; p != NONE; prev = p, p = ib->promises[p].next)
			if (best == NONE || ib->promises[p].date < ib->promises[best].date) {
				best = p;
				best_prev = prev;
			}
		const promise *pr = &ib->promises[best];
		if (pr->qty > e->pool)
			return;
		e->pool -= pr->qty;
		atp_lines_open_promised(lines, pr->line, pr->qty);
		out->opened++;
		promise_drop(ib, e, best_prev, best);
	}
}

/* Every waiting promise, oldest first, gets the earliest ETA that covers it; withdrawn when none does. */
static void schedule(atp_inbound *ib, entry *e, atp_lines *lines, uint64_t now_ms, atp_inbound_outcome *out)
{
	uint32_t day[ATP_SUPPLY_PER_POSITION];
	int64_t sup[ATP_SUPPLY_PER_POSITION], used[ATP_SUPPLY_PER_POSITION] = { 0 };
	uint32_t k = etas(e, day, sup);
	for (uint32_t prev = NONE, p = e->first; p != NONE;) {
		promise *pr = &ib->promises[p];
		uint32_t next = pr->next;
		int64_t low = INT64_MAX, room[ATP_SUPPLY_PER_POSITION];
		for (uint32_t m = k; m-- > 0;) {
			int64_t free_units = e->pool + sup[m] - used[m];
			low = free_units < low ? free_units : low;
			room[m] = low;
		}
		uint32_t at = 0;
		while (at < k && room[at] < pr->qty)
			at++;
		if (at == k) {
			atp_lines_close(lines, pr->line, ATP_LINE_WITHDRAWN, now_ms);
			out->withdrawn++;
			promise_drop(ib, e, prev, p);
			p = next;
			continue;
		}
		for (uint32_t m = at; m < k; m++)
			used[m] += pr->qty;
		if (day[at] > pr->need_by && pr->date <= pr->need_by)
			out->late++;
		pr->date = day[at];
		prev = p;
		p = next;
	}
	/* The pool keeps what the schedule needs of it: -min(Sup - P), at least 0. */
	int64_t need = 0;
	for (uint32_t m = 0; m < k; m++)
		need = used[m] - sup[m] > need ? used[m] - sup[m] : need;
	if (need < e->pool) {
		out->reserved -= e->pool - need;
		e->pool = need;
	}
	/* What the store keeps: every day's promises covered by what arrived or arrives by then. */
	for (uint32_t m = 0; m < k; m++)
		assert(e->pool + sup[m] - used[m] >= 0);
}

static void replan(atp_inbound *ib, entry *e, atp_lines *lines, uint64_t now_ms, atp_inbound_outcome *out)
{
	open_from_pool(ib, e, lines, out);
	schedule(ib, e, lines, now_ms, out);
	publish(ib, e);
	entry_put(ib, e);
}

int atp_inbound_supply_room(const atp_inbound *ib, uint32_t pos, atp_str ref)
{
	const entry *e = entry_find(ib, pos);
	if (!e)
		return entry_room(ib) && pos < ib->max_positions ? ATP_OK : ATP_E_SUPPLY_FULL;
	return supply_find(e, ref) >= 0 || e->n_supply < ATP_SUPPLY_PER_POSITION ? ATP_OK : ATP_E_SUPPLY_FULL;
}

bool atp_inbound_supply(atp_inbound *ib, atp_lines *lines, uint32_t pos, atp_str ref, int64_t qty, uint32_t eta,
			uint64_t now_ms, atp_inbound_outcome *out)
{
	*out = (atp_inbound_outcome){ 0 };
	entry *e = entry_find(ib, pos);
	int i = e ? supply_find(e, ref) : -1;
	if (qty == 0) {
		if (i < 0)
			return false;
		supply_remove(e, i);
	} else {
		e = entry_get(ib, pos);
		if (i < 0) {
			assert(e->n_supply < ATP_SUPPLY_PER_POSITION && ref.len <= ATP_REF_MAX);
			i = (int)e->n_supply++;
			e->supply[i].ref_len = (uint8_t)ref.len;
			memcpy(e->supply[i].ref, ref.ptr, ref.len);
		}
		e->supply[i].expected = qty;
		e->supply[i].eta = eta;
	}
	replan(ib, e, lines, now_ms, out);
	return true;
}

int64_t atp_inbound_receive(atp_inbound *ib, atp_lines *lines, uint32_t pos, atp_str ref, int64_t x,
			    uint64_t now_ms, atp_inbound_outcome *out)
{
	*out = (atp_inbound_outcome){ 0 };
	entry *e = entry_find(ib, pos);
	int i = e ? supply_find(e, ref) : -1;
	if (i < 0)
		return 0;
	supply *s = &e->supply[i];
	int64_t used = x < s->expected ? x : s->expected;
	s->expected -= used;
	if (s->expected == 0)
		supply_remove(e, i);
	e->pool += used;
	out->reserved += used;
	replan(ib, e, lines, now_ms, out);
	return used;
}

uint32_t atp_inbound_can_promise(const atp_inbound *ib, uint32_t pos, int64_t qty, uint32_t need_by)
{
	const entry *e = entry_find(ib, pos);
	if (!e)
		return 0;
	for (uint32_t m = 1; m < e->n_curve && e->curve[m].day <= need_by; m++)
		if (e->curve[m].units >= qty)
			return e->curve[m].day;
	return 0;
}

bool atp_inbound_promise_room(const atp_inbound *ib)
{
	return ib->free_promise != NONE || ib->fresh_promise < ib->max_promises;
}

static void promise_append(atp_inbound *ib, entry *e, const atp_promise_view *v)
{
	assert(atp_inbound_promise_room(ib));
	uint32_t p = ib->free_promise != NONE ? ib->free_promise : ib->fresh_promise++;
	if (p == ib->free_promise)
		ib->free_promise = ib->promises[p].next;
	ib->promises[p] = (promise){ .line = v->line, .next = NONE, .date = v->date, .need_by = v->need_by, .qty = v->qty };
	if (e->last == NONE)
		e->first = p;
	else
		ib->promises[e->last].next = p;
	e->last = p;
	e->n_promises++;
	ib->used_promises++;
}

void atp_inbound_promise(atp_inbound *ib, uint32_t pos, uint32_t line, int64_t qty, uint32_t date, uint32_t need_by)
{
	entry *e = entry_find(ib, pos);
	assert(e && date && date <= need_by);
	promise_append(ib, e, &(atp_promise_view){ .line = line, .date = date, .need_by = need_by, .qty = qty });
	publish(ib, e);
}

void atp_inbound_release(atp_inbound *ib, atp_lines *lines, uint32_t pos, uint32_t line, uint64_t now_ms,
			 atp_inbound_outcome *out)
{
	*out = (atp_inbound_outcome){ 0 };
	entry *e = entry_find(ib, pos);
	assert(e);
	for (uint32_t prev = NONE, p = e->first; p != NONE; prev = p, p = ib->promises[p].next) {
		if (ib->promises[p].line == line) {
			promise_drop(ib, e, prev, p);
			replan(ib, e, lines, now_ms, out);
			return;
		}
	}
	assert(!"a promised line has its promise");
}

uint32_t atp_inbound_promised_date(const atp_inbound *ib, uint32_t pos, uint32_t line)
{
	const entry *e = entry_find(ib, pos);
	for (uint32_t p = e ? e->first : NONE; p != NONE; p = ib->promises[p].next)
		if (ib->promises[p].line == line)
			return ib->promises[p].date;
	return 0;
}

bool atp_inbound_read(const atp_inbound *ib, uint32_t pos, atp_inbound_curve *out)
{
	out->n = 0;
	if (pos >= ib->max_positions)
		return false;
	for (;;) {
		uint32_t i = __atomic_load_n(&ib->entry_of[pos], __ATOMIC_ACQUIRE);
		if (!i)
			return false;
		const entry *e = &ib->entries[i - 1];
		uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		uint32_t who = __atomic_load_n(&e->pos, __ATOMIC_RELAXED);
		uint32_t n = __atomic_load_n(&e->n_curve, __ATOMIC_RELAXED);
		n = n <= ATP_SUPPLY_PER_POSITION + 1 ? n : 0;
		for (uint32_t m = 0; m < n; m++) {
			out->step[m].day = __atomic_load_n(&e->curve[m].day, __ATOMIC_RELAXED);
			out->step[m].units = __atomic_load_n(&e->curve[m].units, __ATOMIC_RELAXED);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != s1)
			continue;
		if (who != pos)
			return false;
		out->n = n;
		return n > 0;
	}
}

int64_t atp_inbound_units(const atp_inbound_curve *c, uint32_t day)
{
	int64_t units = 0;
	for (uint32_t m = 0; m < c->n && c->step[m].day <= day; m++)
		units = c->step[m].units;
	return units;
}

bool atp_inbound_get(const atp_inbound *ib, uint32_t pos, atp_inbound_view *out)
{
	const entry *e = entry_find(ib, pos);
	if (!e)
		return false;
	*out = (atp_inbound_view){ .pool = e->pool, .n_supplies = e->n_supply, .n_promises = e->n_promises };
	return true;
}

void atp_inbound_used(const atp_inbound *ib, uint32_t *entries, uint32_t *promises)
{
	*entries = ib->used_entries;
	*promises = ib->used_promises;
}

void atp_inbound_supply_at(const atp_inbound *ib, uint32_t pos, uint32_t i, atp_str *ref, int64_t *expected,
			   uint32_t *eta)
{
	const entry *e = entry_find(ib, pos);
	assert(e && i < e->n_supply);
	*ref = atp_str_of(e->supply[i].ref, e->supply[i].ref_len);
	*expected = e->supply[i].expected;
	*eta = e->supply[i].eta;
}

bool atp_inbound_promise_next(const atp_inbound *ib, uint32_t pos, uint32_t *cursor, atp_promise_view *out)
{
	const entry *e = entry_find(ib, pos);
	uint32_t p = *cursor == 0 ? (e ? e->first : NONE) : ib->promises[*cursor - 1].next;
	if (p == NONE)
		return false;
	const promise *pr = &ib->promises[p];
	*out = (atp_promise_view){ .line = pr->line, .date = pr->date, .need_by = pr->need_by, .qty = pr->qty };
	*cursor = p + 1;
	return true;
}

int atp_inbound_restore(atp_inbound *ib, uint32_t pos, int64_t pool)
{
	if (pos >= ib->max_positions || pool < 0 || pool > ATP_BUCKET_MAX || entry_find(ib, pos))
		return ATP_E_INVAL;
	if (!entry_room(ib))
		return ATP_E_SUPPLY_FULL;
	entry *e = entry_get(ib, pos);
	e->pool = pool;
	publish(ib, e);
	return ATP_OK;
}

int atp_inbound_restore_supply(atp_inbound *ib, uint32_t pos, atp_str ref, int64_t expected, uint32_t eta)
{
	entry *e = entry_find(ib, pos);
	if (!e || !atp_str_valid(ref, ATP_REF_MAX) || expected <= 0 || expected > ATP_QTY_MAX || eta == 0 ||
	    supply_find(e, ref) >= 0)
		return ATP_E_INVAL;
	if (e->n_supply == ATP_SUPPLY_PER_POSITION)
		return ATP_E_SUPPLY_FULL;
	supply *s = &e->supply[e->n_supply++];
	s->ref_len = (uint8_t)ref.len;
	memcpy(s->ref, ref.ptr, ref.len);
	s->expected = expected;
	s->eta = eta;
	publish(ib, e);
	return ATP_OK;
}

int atp_inbound_restore_promise(atp_inbound *ib, uint32_t pos, const atp_promise_view *p)
{
	entry *e = entry_find(ib, pos);
	if (!e || p->qty <= 0 || p->qty > ATP_QTY_MAX || p->date == 0)
		return ATP_E_INVAL;
	if (!atp_inbound_promise_room(ib))
		return ATP_E_SUPPLY_FULL;
	promise_append(ib, e, p);
	publish(ib, e);
	return ATP_OK;
}

/* Civil dates (proleptic Gregorian), after Howard Hinnant's days_from_civil and civil_from_days. */
uint32_t atp_day_of_ymd(uint32_t ymd)
{
	int64_t y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
	static const uint8_t mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (m == 2 && d == 29 && !leap)
		return 0;
	y -= m <= 2;
	int64_t era = y / 400, yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	return days > 0 ? (uint32_t)days : 0;
}

uint32_t atp_ymd_of_day(uint32_t day)
{
	int64_t z = (int64_t)day + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9), y = yoe + era * 400 + (m <= 2);
	return (uint32_t)(y * 10000 + m * 100 + d);
}
