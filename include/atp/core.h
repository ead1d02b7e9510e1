/*
 * atp/core.h — the ATP core: events in, positions, reservations and deltas out.
 *
 * Pure: no threads, no I/O, no clock. Time enters only through
 * atp_core_expire(now_ms) and the _at calls, in milliseconds (since the
 * epoch under atpd's clock = wall): every now_ms, expires_at and retention
 * is in them. Guarantees, for every call of atp_core_apply():
 *   - exactly once: per source, seq is contiguous from 1; a seq at or below
 *     the source's high-water mark answers ATP_DUPLICATE and changes nothing,
 *     a seq beyond hwm + 1 answers ATP_E_GAP with the expected seq;
 *   - all or nothing: an event that is refused (any negative status) leaves
 *     the whole state untouched, the source's hwm included; an event that is
 *     applied advances its source's hwm, whatever its business outcome
 *     (a reserve confirmed 0, a release that found no line);
 *   - no oversell through reservations: a RESERVE confirms only from ATP;
 *   - a delta for every position whose ATP changed, with the position's new
 *     version and the (source, seq) that caused it.
 * Capacity is fixed by the config; nothing allocates after atp_core_create().
 */
#ifndef ATP_CORE_H
#define ATP_CORE_H

#include "atp/event.h"
#include "atp/inbound.h"
#include "atp/lines.h"
#include "atp/sources.h"
#include "atp/status.h"
#include "atp/table.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_core_config {
	uint32_t max_positions;
	uint32_t max_lines;       /* reservation lines, open and remembered */
	uint32_t max_sources;
	uint64_t line_retention;  /* how long a closed line is remembered, in the caller's time unit */
	/*
	 * false: per source, seq is contiguous from 1 (the single-core contract).
	 * true: seq need only increase. A shard sees a subset of each source's
	 * events, whose contiguity the engine's router has already checked.
	 */
	bool sparse_seq;
	uint32_t max_inbound;     /* positions with inbound supply at once (atp/inbound.h) */
	uint32_t max_promises;    /* reservation lines promised against supply at once */
} atp_core_config;

/* 1M positions, 4M lines, 1024 sources, 24 h of retention in milliseconds, 64K positions with supply, 256K promises. */
atp_core_config atp_core_config_default(void);

/* A change of a position's ATP. sku and location point into the table and live as long as it. */
typedef struct atp_delta {
	atp_str sku;
	atp_str location;
	int64_t old_atp;
	int64_t new_atp;
	uint64_t version;
	uint64_t seq;     /* cause: the event's seq, 0 for an expiry */
	uint32_t pos;
	uint32_t source;  /* cause: the event's source id, ATP_SOURCE_NONE for an expiry */
} atp_delta;

/* Outcome flags of an applied event. */
#define ATP_RF_NEGATIVE 0x01u  /* on_hand went below zero: an oversell exception of the floor */
#define ATP_RF_SHORT 0x02u     /* reserved now exceeds on_hand - held */
#define ATP_RF_CLAMPED 0x04u   /* HOLD/UNHOLD moved less than qty */
#define ATP_RF_REPLAYED 0x08u  /* RESERVE answered from the line's first result */
#define ATP_RF_MISMATCH 0x10u  /* ... and the retry asked a different qty */
#define ATP_RF_NO_LINE 0x20u   /* RELEASE / PICK ref found no open line */
#define ATP_RF_PARTIAL 0x40u   /* RESERVE confirmed less than requested, more than 0 */
#define ATP_RF_MORE 0x80u      /* RELEASE of a whole reservation: open lines remain; release again */
#define ATP_RF_PROMISED 0x100u /* RESERVE with a date: confirmed against inbound supply (promised_date) */
#define ATP_RF_LATE 0x200u     /* a supply change moved promises past their need-by day (n_late) */
#define ATP_RF_WITHDRAWN 0x400u /* a supply change left promises uncovered: their lines WITHDRAWN (n_withdrawn);
                                 * on a RESERVE's retry: this line was withdrawn */

/* Lines one RELEASE of a whole reservation (atp_event_releases_all) closes at most. */
#define ATP_RELEASE_ALL_LINES 2

typedef struct atp_result {
	int status;             /* ATP_OK, ATP_DUPLICATE or an ATP_E_* */
	uint32_t flags;         /* ATP_RF_* */
	uint64_t expected_seq;  /* hwm + 1 of the source (set for OK, DUPLICATE and GAP) */
	int64_t requested;      /* RESERVE */
	int64_t confirmed;      /* RESERVE: the line's first result when replayed */
	int64_t moved;          /* HOLD/UNHOLD: units moved; PICK: reservation consumed; RELEASE: released */
	int64_t variance;       /* COUNT: qty - on_hand before */
	uint32_t promised_date; /* RESERVE confirmed against supply: the day (an ETA) it is promised for */
	uint16_t n_late;        /* SUPPLY, RECEIPT of a supply, RELEASE: promises now late (ATP_RF_LATE) */
	uint16_t n_withdrawn;   /* ... and withdrawn (ATP_RF_WITHDRAWN); both saturate at 65535 */
	uint32_t n_deltas;
	atp_delta deltas[2];
} atp_result;

typedef struct atp_core_stats {
	uint64_t applied[ATP_EV_TYPE_COUNT];
	uint64_t duplicates;
	uint64_t gaps;
	uint64_t refused;          /* every other negative status */
	uint64_t negative_events;  /* ATP_RF_NEGATIVE */
	uint64_t short_events;     /* ATP_RF_SHORT */
	uint64_t reserve_units_requested;
	uint64_t reserve_units_confirmed;
	uint64_t reserve_full;     /* lines confirmed whole */
	uint64_t reserve_partial;
	uint64_t reserve_unfilled;
	uint64_t reserve_replayed;
	uint64_t units_consumed;   /* reservation consumed by picks */
	uint64_t units_released;
	uint64_t lines_expired;
	uint64_t units_expired;
	uint64_t lines_purged;
	uint64_t count_variance_abs;
	uint64_t deltas;
	uint64_t promises_made;       /* RESERVE lines confirmed against inbound supply */
	uint64_t promises_opened;     /* ... whose supply was received: open lines now */
	uint64_t promises_late;       /* ... moved past their need-by day by a supply change */
	uint64_t promises_withdrawn;  /* ... no supply covers any more */
} atp_core_stats;

typedef struct atp_core atp_core;

atp_core *atp_core_create(const atp_core_config *cfg);
void atp_core_destroy(atp_core *c);

/* Apply one event; fills *r and returns r->status. */
int atp_core_apply(atp_core *c, const atp_event *ev, atp_result *r);
/* Apply n events in order (same effect as n calls), overlapping their table lookups. */
void atp_core_apply_batch(atp_core *c, const atp_event *ev, size_t n, atp_result *r);
/*
 * The same, event i at time now[i]: exactly as, for each i in order,
 * atp_core_expire() to now[i] (until nothing more is due; its deltas
 * dropped) and then atp_core_apply(). For a log applied or replayed in
 * groups, where each event carries the time it was routed at.
 */
void atp_core_apply_batch_at(atp_core *c, const atp_event *ev, const uint64_t *now, size_t n, atp_result *r);

/*
 * The hashes the core finds an event's position and reservation line by: a
 * pure function of the event's bytes, so that whoever already holds the
 * event (the engine's router, which shards by the SKU's hash) can compute
 * them off the applying thread.
 */
typedef struct atp_event_hash {
	uint64_t sku;
	uint64_t pos;   /* of (sku, location) */
	uint64_t line;  /* of (ref, position), when the event names a line; else 0 */
} atp_event_hash;

void atp_core_hash_event(const atp_event *ev, atp_event_hash *h);

/* Deltas on (the default) or off: off, results and expiries carry none (stats still count them); for replay. */
void atp_core_set_deltas(atp_core *c, bool on);
/*
 * atp_core_apply_batch_at() for events that already passed
 * atp_event_validate(), with h[i] = atp_core_hash_event(&ev[i]) given: the
 * engine's shard worker, whose router validated and hashed them. Neither is
 * checked again (a wrong hash finds the wrong keys).
 */
void atp_core_apply_batch_hashed_at(atp_core *c, const atp_event *ev, const atp_event_hash *h, const uint64_t *now,
				    size_t n, atp_result *r);

/*
 * Where the batch calls (atp_core_apply_batch_at and _hashed_at) send the
 * deltas of the reservations that expire before event `index` of the batch
 * (several calls for one index when many lines expire; in the order
 * atp_core_expire() would give them). Without a sink (the default) they are
 * dropped. Only while deltas are on (atp_core_set_deltas).
 */
typedef void (*atp_expiry_sink)(void *ctx, size_t index, const atp_delta *d, size_t n);
void atp_core_set_expiry_sink(atp_core *c, atp_expiry_sink fn, void *ctx);

/*
 * Advance the core's time to now (an earlier now is ignored), release up
 * to max_lines open lines whose expiry is at or before it, writing one
 * delta per ATP change into out (room for max_lines), and forget closed
 * lines older than the retention. Returns how many lines expired: when it
 * returns max_lines, more may be due; call again. *n_deltas gets the count.
 */
size_t atp_core_expire(atp_core *c, uint64_t now_ms, atp_delta *out, size_t max_lines, size_t *n_deltas);

/* Whether an open line expires at or before now (atp_core_expire(now) would release one). */
bool atp_core_due(atp_core *c, uint64_t now_ms);

/* The position of (sku, location), or NULL if never touched. */
const atp_position *atp_core_find(const atp_core *c, atp_str sku, atp_str location);
/*
 * A consistent copy of (sku, location) for a thread other than the core's
 * writer, without locks (see atp_table_read); false when it does not exist.
 * out NULL: whether it exists only.
 */
bool atp_core_read(const atp_core *c, atp_str sku, atp_str location, atp_position_view *out);
/* The line of (ref, sku, location), or NULL. */
const atp_line *atp_core_find_line(const atp_core *c, atp_str ref, atp_str sku, atp_str location);
/*
 * Whether every one of the n RESERVE lines would be confirmed in full now:
 * none of them exists yet (a retry answers its first result instead), the
 * lines table has room for all, and each position's ATP covers its qty
 * (the lines name n distinct positions). Changes nothing.
 */
bool atp_core_reserve_fits(const atp_core *c, const atp_event *lines, size_t n);
/*
 * Whole orders (atp_engine_submit_order): the highest order number whose
 * lines this core holds, kept as the hwm of the internal source ATP_ORDER_SOURCE
 * (so a snapshot carries it), and raising it.
 */
#define ATP_ORDER_SOURCE "@order"
uint64_t atp_core_order_hwm(const atp_core *c);
int atp_core_note_order(atp_core *c, uint64_t order);
/* The applied high-water mark of a source (0 when unknown). */
uint64_t atp_core_hwm(const atp_core *c, atp_str source);
uint64_t atp_core_now_ms(const atp_core *c);

const atp_table *atp_core_table(const atp_core *c);
const atp_lines *atp_core_lines(const atp_core *c);
const atp_sources *atp_core_sources(const atp_core *c);
/* Inbound supply and promises (atp/inbound.h); atp_inbound_read() serves other threads. */
const atp_inbound *atp_core_inbound(const atp_core *c);
const atp_core_stats *atp_core_stats_get(const atp_core *c);
/* to += from, counter by counter (summing shards). */
void atp_core_stats_add(atp_core_stats *to, const atp_core_stats *from);

/*
 * Restoring a snapshot into a fresh core, before any event is applied.
 * Each returns ATP_OK or the ATP_E_* of the first problem (a bad string,
 * a value out of range, a full table, a key restored twice); the core is
 * then unusable and must be destroyed.
 */
int atp_core_restore_source(atp_core *c, atp_str name, uint64_t hwm);
int atp_core_restore_position(atp_core *c, atp_str sku, atp_str location, const atp_position *values);
/*
 * The line's state, requested, confirmed, remaining, expires_at (of an
 * open line) and closed_at (of a closed one) are taken from values; pos
 * is the id of its position, which must have been restored (ids follow
 * restore order from 0).
 * Closed lines must come in the order atp_lines_closed_id() gives them.
 */
int atp_core_restore_line(atp_core *c, atp_str ref, uint32_t pos, const atp_line_values *values);
void atp_core_restore_now(atp_core *c, uint64_t now_ms);
/*
 * Inbound supply, after positions and lines: an entry of position pos with
 * its pool, then its supplies, then its promises in the order they were
 * made, each with the line it promises (ref at pos, created here PROMISED
 * with requested and confirmed qty; releasable as given).
 */
int atp_core_restore_inbound(atp_core *c, uint32_t pos, int64_t pool);
int atp_core_restore_supply(atp_core *c, uint32_t pos, atp_str ref, int64_t expected, uint32_t eta);
int atp_core_restore_promise(atp_core *c, uint32_t pos, atp_str ref, int64_t requested, bool releasable,
			     const atp_promise_view *p);

#ifdef __cplusplus
}
#endif

#endif
