/*
 * atp/lines.h — reservation lines: (ref, position) -> what was reserved.
 *
 * A line is created by the first RESERVE of its (ref, position) and then
 * remembered, open or closed, so that a retried RESERVE answers its first
 * result (idempotency by reservation id). An open line with an expiry waits
 * in an O(1) queue when expiries arrive in order, else in an indexed
 * min-heap (either keeps the expiry time); a closed line sits in a FIFO by
 * the time it closed, and atp_lines_purge() forgets closed lines past
 * their retention so the store stays within its fixed capacity.
 *
 * All memory is allocated by atp_lines_create(); nothing allocates after.
 * Not thread-safe: one writer.
 */
#ifndef ATP_LINES_H
#define ATP_LINES_H

#include "atp/event.h"
#include "atp/limits.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_LINE_NONE UINT32_MAX

enum atp_line_state {
	ATP_LINE_OPEN = 1,     /* remaining > 0, counted in its position's reserved */
	ATP_LINE_CONSUMED,     /* picked to the end */
	ATP_LINE_RELEASED,     /* released by RELEASE */
	ATP_LINE_EXPIRED,      /* lapsed at expires_at */
	ATP_LINE_UNFILLED,     /* nothing was confirmed */
	ATP_LINE_PROMISED,     /* confirmed against inbound supply (atp/inbound.h): remaining 0, not
	                        * in reserved; opens when the supply is received */
	ATP_LINE_WITHDRAWN,    /* was PROMISED; a late or cancelled supply no longer covers it */
};

/* Whether a line is still live (open, or promised against supply): not in the closed FIFO. */
static inline bool atp_line_live(unsigned state)
{
	return state == ATP_LINE_OPEN || state == ATP_LINE_PROMISED;
}

/* Bytes of a ref kept in the line itself; a longer ref is kept whole beside the lines. */
#define ATP_LINE_REF_INLINE 20

/*
 * One cache line: what finding a line (its key), applying to it (its
 * state and quantities) and walking the queues read. A line's expiry is
 * kept by its entry in the expiry queue or heap, its closing time by the
 * closed FIFO, so that the RESERVE that reuses a line forgotten long ago,
 * the usual case, misses on one cache line, not two.
 */
typedef struct atp_line {
	uint32_t pos;
	uint32_t hash_lo;      /* low 32 bits of its hash */
	uint32_t queue_idx;    /* index of its entry in the in-order expiry queue, or ATP_LINE_NONE */
	uint32_t ref_next;     /* open releasable lines of the same ref bucket: a chain */
	uint8_t state;         /* enum atp_line_state */
	uint8_t releasable;    /* in its reservation's index while open (ATP_EVF_RELEASABLE) */
	uint8_t ref_len;
	uint8_t in_heap;       /* its expiry waits in the heap (out of order) */
	char ref[ATP_LINE_REF_INLINE];  /* the ref, or its first bytes (atp_lines_ref has it whole) */
	int64_t requested;
	int64_t confirmed;
	int64_t remaining;
} __attribute__((aligned(64))) atp_line;

/* What a snapshot keeps of a line beyond its key and position, and restores. */
typedef struct atp_line_values {
	uint8_t state;
	uint8_t releasable;
	int64_t requested;
	int64_t confirmed;
	int64_t remaining;
	uint64_t expires_at;   /* an open line's expiry, 0: never */
	uint64_t closed_at;    /* a closed line's closing time */
} atp_line_values;

typedef struct atp_lines atp_lines;

atp_lines *atp_lines_create(uint32_t max_lines);
void atp_lines_destroy(atp_lines *l);

/*
 * The hash of the line (ref, position): seeded by the position's hash, so
 * that it is known before the position's id is (see atp_lines_prefetch).
 */
uint64_t atp_line_hash(atp_str ref, uint64_t pos_hash);
/* The line (ref, pos) with h = atp_line_hash(ref, hash of pos), or ATP_LINE_NONE. */
uint32_t atp_lines_find(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos);
/* A new line, zeroed but for its key; ATP_LINE_NONE when full. The key must be absent. */
uint32_t atp_lines_add(atp_lines *l, uint64_t h, atp_str ref, uint32_t pos);
/*
 * The same pair without probing twice: on a miss, *where is the slot the
 * line would take, which atp_lines_add_where() fills as long as the store
 * has not changed in between (ATP_LINE_NONE there: probe again).
 */
uint32_t atp_lines_find_where(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos, uint32_t *where);
uint32_t atp_lines_add_where(atp_lines *l, uint32_t where, uint64_t h, atp_str ref, uint32_t pos);
/* Prefetch stages of a lookup, as atp_table_prefetch and atp_table_prefetch_entry. */
void atp_lines_prefetch(const atp_lines *l, uint64_t h);
void atp_lines_prefetch_entry(const atp_lines *l, uint64_t h);
atp_line *atp_lines_at(atp_lines *l, uint32_t id);
const atp_line *atp_lines_get(const atp_lines *l, uint32_t id);
/* The line's ref, whole (ref_len bytes, not NUL-terminated). */
const char *atp_lines_ref(const atp_lines *l, uint32_t id);
/* An open line's expiry (0: never); 0 for a closed line. */
uint64_t atp_lines_expires_at(const atp_lines *l, uint32_t id);
uint32_t atp_lines_count(const atp_lines *l);
uint32_t atp_lines_capacity(const atp_lines *l);
uint32_t atp_lines_open_count(const atp_lines *l);

/* Open the line (remaining > 0): state OPEN, and waiting for expires_at unless it is 0. */
void atp_lines_open(atp_lines *l, uint32_t id, uint64_t expires_at);
/*
 * A new line confirmed against inbound supply: state PROMISED (remaining
 * 0, no expiry), chained like an open line when releasable; and such a
 * line's supply received: it opens with remaining units and no expiry.
 */
void atp_lines_promise(atp_lines *l, uint32_t id);
void atp_lines_open_promised(atp_lines *l, uint32_t id, int64_t remaining);
/*
 * The live releasable lines (open or promised) of a reservation id: the first, and the one
 * after id (ATP_LINE_NONE at the end). Open lines marked releasable are
 * chained by their ref, so a RELEASE of a whole reservation finds them
 * without a scan; other lines pay nothing for it.
 */
uint32_t atp_lines_first_open(const atp_lines *l, atp_str ref);
uint32_t atp_lines_next_open(const atp_lines *l, uint32_t id);
/* Close an open, promised or new line (remaining must be 0) in state, at time now. */
void atp_lines_close(atp_lines *l, uint32_t id, enum atp_line_state state, uint64_t now_ms);
/* The open line that expires first if it expires at or before now, else ATP_LINE_NONE. */
uint32_t atp_lines_due(atp_lines *l, uint64_t now_ms);
/* The i-th closed line still remembered, oldest first (i < atp_lines_closed_count()). */
uint32_t atp_lines_closed_count(const atp_lines *l);
uint32_t atp_lines_closed_id(const atp_lines *l, uint32_t i);
/* When the i-th closed line closed. */
uint64_t atp_lines_closed_at(const atp_lines *l, uint32_t i);
/* Forget closed lines with closed_at < before (their state becomes 0); returns how many. */
uint32_t atp_lines_purge(atp_lines *l, uint64_t before);
size_t atp_lines_memory(const atp_lines *l);

#ifdef __cplusplus
}
#endif

#endif
