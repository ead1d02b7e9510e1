/*
 * atp/table.h — the position table: (sku, location) -> buckets.
 *
 * Open addressing with linear probing over 32-byte slots (the 64-bit hash,
 * the position id, the key's lengths, and the key itself when sku and
 * location together fit in 16 bytes, else its offset in the key arena),
 * keys hashed from XXH3 of the SKU and interned once into a key arena
 * (NUL-terminated strings for every reader), positions stored densely by
 * id (0 .. count-1) in 64-byte, cache-line-aligned records. Everything
 * is allocated by atp_table_create(): capacity is fixed, lookups and
 * inserts never allocate, and a full table answers ATP_E_POSITIONS_FULL.
 * Positions are never deleted, so an id stays valid for the table's
 * lifetime and ids are dense. The positions of a
 * SKU are chained (a second, smaller index maps the SKU to its newest),
 * so every location of a SKU is found without a scan.
 *
 * Not thread-safe: one writer (the owning shard) at a time.
 */
#ifndef ATP_TABLE_H
#define ATP_TABLE_H

#include "atp/event.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_POS_NONE UINT32_MAX

typedef struct atp_position {
	int64_t on_hand;
	int64_t held;
	int64_t reserved;
	int64_t safety_stock;
	uint64_t version;     /* +1 on every change to a bucket */
	uint32_t key_off;     /* sku at key_off, NUL, location, NUL in the key arena */
	uint8_t sku_len;
	uint8_t loc_len;
	uint8_t pad[2];
	uint32_t seq;         /* sequence lock: odd while the writer changes the buckets */
	uint32_t next_loc;    /* the next position of the same SKU (newest first), ATP_POS_NONE: the last */
	uint64_t hash;        /* the position hash of (sku, location): what its slot holds */
} __attribute__((aligned(64))) atp_position;

typedef struct atp_table atp_table;

/* Keys of 2^25 positions at their longest still fit the 32-bit key offsets. */
#define ATP_TABLE_CAPACITY_MAX (1u << 25)

/* NULL when max_positions is 0, above ATP_TABLE_CAPACITY_MAX, or memory is short. */
atp_table *atp_table_create(uint32_t max_positions);
void atp_table_destroy(atp_table *t);

/* The 64-bit hash of a SKU: shard routing and the position hash start here. */
uint64_t atp_sku_hash(atp_str sku);

/* The hash of a position: pos_hash = atp_position_hash(atp_sku_hash(sku), loc). */
uint64_t atp_position_hash(uint64_t sku_hash, atp_str loc);

/* The position id of (sku, location), or ATP_POS_NONE. */
uint32_t atp_table_find(const atp_table *t, uint64_t pos_hash, atp_str sku, atp_str loc);
/*
 * The id of (sku, location), inserting a zeroed position when absent.
 * Returns ATP_POS_NONE when the table is full. Strings must already be
 * valid (atp_str_valid) and within ATP_SKU_MAX / ATP_LOC_MAX.
 */
uint32_t atp_table_intern(atp_table *t, uint64_t pos_hash, atp_str sku, atp_str loc);
/*
 * A lookup in two prefetch stages, for pipelines that know their keys
 * ahead: start fetching the slot pos_hash probes first; later, once that
 * slot is likely cached, start fetching the position and key it names.
 */
void atp_table_prefetch(const atp_table *t, uint64_t pos_hash);
void atp_table_prefetch_entry(const atp_table *t, uint64_t pos_hash);

uint32_t atp_table_count(const atp_table *t);
uint32_t atp_table_capacity(const atp_table *t);
atp_position *atp_table_at(atp_table *t, uint32_t id);
const atp_position *atp_table_get(const atp_table *t, uint32_t id);
/* NUL-terminated key strings of a position (any thread, for a published id). */
const char *atp_table_sku(const atp_table *t, uint32_t id);
const char *atp_table_location(const atp_table *t, uint32_t id);
/*
 * Concurrent readers. The table has one writer; other threads may read it
 * through the atp_table_read* functions only (and the key strings above),
 * without locks: a position becomes
 * visible to them whole (its slot is published last, with release order),
 * and atp_table_store() changes buckets under the position's sequence lock,
 * so atp_table_read() retries rather than return a torn position.
 */
typedef struct atp_position_view {
	int64_t on_hand;
	int64_t held;
	int64_t reserved;
	int64_t safety_stock;
	uint64_t version;
} atp_position_view;

/* Any thread: the positions published so far (ids 0 .. n-1; a position's key never changes). */
uint32_t atp_table_read_published(const atp_table *t);
/* Any thread: a consistent copy of position id (id < atp_table_read_published()). */
void atp_table_read_id(const atp_table *t, uint32_t id, atp_position_view *out);
/* Any thread: the newest position of sku, or ATP_POS_NONE; then the next of the same SKU. */
uint32_t atp_table_read_sku_first(const atp_table *t, atp_str sku);
uint32_t atp_table_read_sku_next(const atp_table *t, uint32_t id);

/* Writer: set a position's buckets and bump its version, under its sequence lock. */
void atp_table_store(atp_table *t, uint32_t id, int64_t on_hand, int64_t held, int64_t reserved,
		     int64_t safety_stock);
/* The same on the position itself (atp_table_at()), inlined into the writer's hot path. */
static inline void atp_position_store(atp_position *p, int64_t on_hand, int64_t held, int64_t reserved,
				      int64_t safety_stock)
{
	uint32_t seq = p->seq;
	__atomic_store_n(&p->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&p->on_hand, on_hand, __ATOMIC_RELAXED);
	__atomic_store_n(&p->held, held, __ATOMIC_RELAXED);
	__atomic_store_n(&p->reserved, reserved, __ATOMIC_RELAXED);
	__atomic_store_n(&p->safety_stock, safety_stock, __ATOMIC_RELAXED);
	__atomic_store_n(&p->version, p->version + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&p->seq, seq + 2, __ATOMIC_RELEASE);
}
/*
 * Any thread: a consistent copy of (sku, location); false when it does not
 * exist (yet). out NULL: whether it exists only, without touching the
 * position's cache line (the one its writer keeps changing).
 */
bool atp_table_read(const atp_table *t, uint64_t pos_hash, atp_str sku, atp_str loc, atp_position_view *out);

/* Bytes of memory the table holds (slots + positions + key arena). */
size_t atp_table_memory(const atp_table *t);

/* atp = max(0, on_hand - held - reserved - safety_stock); never overflows. */
static inline int64_t atp_position_atp(const atp_position *p)
{
	int64_t v = p->on_hand - p->held - p->reserved - p->safety_stock;
	return v > 0 ? v : 0;
}

#ifdef __cplusplus
}
#endif

#endif
