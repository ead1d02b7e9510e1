/*
 * atp/inbound.h — ATP over time: inbound supply, and the promises made against it.
 *
 * Per position (one SKU at one location) the store keeps:
 *   - supplies: a purchase order or transfer expected there, by its id (a
 *     ref), with the units still expected and its ETA (a day);
 *   - a pool: units of those supplies already received and kept, inside the
 *     position's reserved, for promises still waiting;
 *   - promises: reservation lines confirmed against supply (atp/lines.h,
 *     state PROMISED), in the order they were made, each with the day it is
 *     promised for (an ETA) and the day its reservation needs it by.
 *
 * The arithmetic. With Sup(d) the units expected by day d and P(d) the units
 * promised for days up to d, F(d) = pool + Sup(d) - P(d), and the store keeps
 * F(d) >= 0 for every d: what arrives by each day covers what was promised
 * by then. What can still be promised for day d is
 *     inbound(d) = min over d' >= d of F(d')
 * (a step function, non-decreasing, one step per ETA). A new promise of q
 * needed by day D takes the earliest ETA t <= D with inbound(t) >= q.
 *
 * Replan, after a supply changes (updated, received, cancelled) or a
 * promise goes: received units open promised lines from the pool, earliest
 * date first, each whole (its units move from the pool to the line: the
 * position's reserved does not change); then every waiting promise, in the
 * order they were made, gets the earliest ETA that covers it (with supply
 * unchanged, each keeps the date it had); a promise no ETA covers any more
 * is withdrawn (its line closes WITHDRAWN), one now dated after its need-by
 * day is late; the pool keeps only what waiting promises need, the rest goes
 * back to ATP. The outcome reports all of it.
 *
 * Days count from 1970-01-01 (UTC). Capacity is fixed (positions with
 * supply, promises); nothing allocates after atp_inbound_create(). One writer
 * (the owning core); atp_inbound_read() serves other threads without locks
 * (a sequence lock per position).
 */
#ifndef ATP_INBOUND_H
#define ATP_INBOUND_H

#include "atp/event.h"
#include "atp/lines.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Supplies open at one position at once. */
#define ATP_SUPPLY_PER_POSITION 8

#define ATP_DAY_MS 86400000ull

/* What a replan did: reported with the event that caused it. */
typedef struct atp_inbound_outcome {
	int64_t reserved;    /* change of the position's reserved (the pool) */
	uint32_t opened;     /* promised lines opened by received units */
	uint32_t late;       /* promises moved past their need-by day */
	uint32_t withdrawn;  /* promises no supply covers any more (lines WITHDRAWN) */
} atp_inbound_outcome;

/* inbound(d) = units for every day d from day on, until the next step. */
typedef struct atp_inbound_step {
	uint32_t day;
	int64_t units;
} atp_inbound_step;

typedef struct atp_inbound_curve {
	uint32_t n;  /* steps[0].day is 0: before the first ETA */
	atp_inbound_step step[ATP_SUPPLY_PER_POSITION + 1];
} atp_inbound_curve;

typedef struct atp_inbound atp_inbound;

/* NULL when memory is short. max_positions: the core's table capacity. */
atp_inbound *atp_inbound_create(uint32_t max_positions, uint32_t max_entries, uint32_t max_promises);
void atp_inbound_destroy(atp_inbound *ib);
size_t atp_inbound_memory(const atp_inbound *ib);

/* Whether supply ref can be set at pos: 0 or ATP_E_SUPPLY_FULL. */
int atp_inbound_supply_room(const atp_inbound *ib, uint32_t pos, atp_str ref);
/*
 * Supply ref at pos now expects qty units on day eta (qty 0: cancelled),
 * then replan. Returns false when qty is 0 and no such supply was open.
 */
bool atp_inbound_supply(atp_inbound *ib, atp_lines *lines, uint32_t pos, atp_str ref, int64_t qty, uint32_t eta,
			uint64_t now_ms, atp_inbound_outcome *out);
/*
 * x units of supply ref were received at pos: the supply expects
 * min(x, expected) fewer, which join the pool (out->reserved), then replan.
 * Returns the units taken from the supply (0: no such supply; nothing changed).
 */
int64_t atp_inbound_receive(atp_inbound *ib, atp_lines *lines, uint32_t pos, atp_str ref, int64_t x,
			    uint64_t now_ms, atp_inbound_outcome *out);

/* The ETA day a new promise of qty needed by day need_by would get, or 0 when none covers it. */
uint32_t atp_inbound_can_promise(const atp_inbound *ib, uint32_t pos, int64_t qty, uint32_t need_by);
/* Whether one more promise fits the store. */
bool atp_inbound_promise_room(const atp_inbound *ib);
/* Record line's promise (its line is PROMISED), date from atp_inbound_can_promise(). */
void atp_inbound_promise(atp_inbound *ib, uint32_t pos, uint32_t line, int64_t qty, uint32_t date,
			 uint32_t need_by);
/* A promised line goes (released): forget its promise, then replan. */
void atp_inbound_release(atp_inbound *ib, atp_lines *lines, uint32_t pos, uint32_t line, uint64_t now_ms,
			 atp_inbound_outcome *out);
/* The day a promised line is promised for, or 0. */
uint32_t atp_inbound_promised_date(const atp_inbound *ib, uint32_t pos, uint32_t line);

/* Any thread: position pos's curve; false (and n 0) when it has no supply. */
bool atp_inbound_read(const atp_inbound *ib, uint32_t pos, atp_inbound_curve *out);
/* The units of inbound(day) on a curve. */
int64_t atp_inbound_units(const atp_inbound_curve *c, uint32_t day);

/* Writer, for snapshots: what pos holds. Supplies and promises by index (i < the counts). */
typedef struct atp_inbound_view {
	int64_t pool;
	uint32_t n_supplies;
	uint32_t n_promises;
} atp_inbound_view;
typedef struct atp_promise_view {
	uint32_t line;
	uint32_t date;
	uint32_t need_by;
	int64_t qty;
} atp_promise_view;
bool atp_inbound_get(const atp_inbound *ib, uint32_t pos, atp_inbound_view *out);
/* Positions with an entry, and promises, held now. */
void atp_inbound_used(const atp_inbound *ib, uint32_t *entries, uint32_t *promises);
void atp_inbound_supply_at(const atp_inbound *ib, uint32_t pos, uint32_t i, atp_str *ref, int64_t *expected,
			   uint32_t *eta);
/* Promises in the order they were made: the first, then the one after (cursor 0 starts; false at the end). */
bool atp_inbound_promise_next(const atp_inbound *ib, uint32_t pos, uint32_t *cursor, atp_promise_view *out);
/* Restoring, into an empty store: ATP_OK or an ATP_E_* (full, bad value). */
int atp_inbound_restore(atp_inbound *ib, uint32_t pos, int64_t pool);
int atp_inbound_restore_supply(atp_inbound *ib, uint32_t pos, atp_str ref, int64_t expected, uint32_t eta);
int atp_inbound_restore_promise(atp_inbound *ib, uint32_t pos, const atp_promise_view *p);

/* Days: YYYYMMDD <-> days since 1970-01-01; 0 for a date that does not exist (or before 1970-01-02). */
uint32_t atp_day_of_ymd(uint32_t ymd);
uint32_t atp_ymd_of_day(uint32_t day);

#ifdef __cplusplus
}
#endif

#endif
