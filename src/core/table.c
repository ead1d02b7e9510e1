/* table.c — the position table (see atp/table.h). */
#include "atp/table.h"

#include "atp/bytes.h"
#include "atp/limits.h"
#include "keyhash.h"
#include "memory.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Keys of at most this many bytes (sku and location together) sit in their slot. */
#define SLOT_KEY 16

/*
 * A slot: the full hash, the position id + 1 (0 = empty), the key's
 * lengths and the key itself: sku then location, back to back, when they
 * fit in SLOT_KEY bytes, else its offset in the key arena. A lookup of a
 * short key then reads one cache line before it knows its position: in a
 * table far larger than the cache, each line a lookup touches is a miss.
 * 32 bytes, two to a cache line.
 */
typedef struct slot {
	uint64_t hash;
	uint32_t id1;
	uint8_t sku_len;
	uint8_t loc_len;
	uint8_t pad[2];
	union {
		char bytes[SLOT_KEY];
		uint32_t off;  /* a longer key: sku at off, NUL, location, NUL in the key arena */
	} key;
} slot;

_Static_assert(sizeof(slot) == 32, "two slots to a cache line");

static inline bool key_inline(uint32_t sku_len, uint32_t loc_len)
{
	return sku_len + loc_len <= SLOT_KEY;
}

/* The SKU index: the high half of the SKU's hash (the low half places it) and its newest position id + 1 (0 = empty). */
typedef struct sku_slot {
	uint32_t tag;
	uint32_t head1;
} sku_slot;

struct atp_table {
	slot *slots;
	sku_slot *skus;         /* as many slots as position slots: SKUs are at most positions */
	uint64_t mask;          /* slot count - 1; slot count = power of two >= 2 x capacity */
	atp_position *pos;
	char *keys;
	uint32_t keys_used;
	uint32_t count;
	uint32_t capacity;
};

_Static_assert(sizeof(atp_position) == 64, "a position is one cache line");

#define KEY_BYTES (ATP_SKU_MAX + ATP_LOC_MAX + 2) /* the key arena's room per position */

atp_table *atp_table_create(uint32_t max_positions)
{
	if (max_positions == 0 || max_positions > ATP_TABLE_CAPACITY_MAX)
		return NULL;
	atp_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint64_t nslots = 16;
	while (nslots < 2ull * max_positions)
		nslots <<= 1;
	t->mask = nslots - 1;
	t->capacity = max_positions;
	t->slots = atp_map_zeroed(nslots * sizeof(slot));
	t->skus = atp_map_zeroed(nslots * sizeof(sku_slot));
	t->pos = atp_map_zeroed((size_t)max_positions * sizeof(atp_position));
	t->keys = atp_map_zeroed((size_t)max_positions * KEY_BYTES);
	if (!t->slots || !t->skus || !t->pos || !t->keys) {
		atp_table_destroy(t);
		return NULL;
	}
	atp_random_access_memory(t->slots, nslots * sizeof(slot));
	atp_random_access_memory(t->skus, nslots * sizeof(sku_slot));
	atp_hugepage_hint(t->pos, (size_t)max_positions * sizeof(atp_position));
	return t;
}

void atp_table_destroy(atp_table *t)
{
	if (!t)
		return;
	atp_unmap(t->slots, (t->mask + 1) * sizeof(slot));
	atp_unmap(t->skus, (t->mask + 1) * sizeof(sku_slot));
	atp_unmap(t->pos, (size_t)t->capacity * sizeof(atp_position));
	atp_unmap(t->keys, (size_t)t->capacity * KEY_BYTES);
	free(t);
}

uint64_t atp_sku_hash(atp_str sku)
{
	return XXH3_64bits(sku.ptr, sku.len);
}

uint64_t atp_position_hash(uint64_t sku_hash, atp_str loc)
{
	return atp_key_hash(loc.ptr, loc.len, sku_hash);
}

static inline bool key_equals(const atp_table *t, const slot *s, atp_str sku, atp_str loc)
{
	if (s->sku_len != sku.len || s->loc_len != loc.len)
		return false;
	bool in_slot = key_inline(sku.len, loc.len);
	const char *k = in_slot ? s->key.bytes : t->keys + s->key.off;
	return atp_bytes_equal(k, sku.ptr, sku.len) && atp_bytes_equal(k + sku.len + !in_slot, loc.ptr, loc.len);
}

/* The slot holding (sku, loc), or the empty slot where it would go. */
static slot *probe(const atp_table *t, uint64_t h, atp_str sku, atp_str loc)
{
	for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
		slot *s = &t->slots[i];
		if (s->id1 == 0 || (s->hash == h && key_equals(t, s, sku, loc)))
			return s;
	}
}

void atp_table_prefetch(const atp_table *t, uint64_t pos_hash)
{
	__builtin_prefetch(&t->slots[pos_hash & t->mask]);
}

void atp_table_prefetch_entry(const atp_table *t, uint64_t pos_hash)
{
	const slot *s = &t->slots[pos_hash & t->mask];
	if (s->id1 == 0)
		return;
	__builtin_prefetch(&t->pos[s->id1 - 1]);
	/* A key in the arena is fetched too; a key in the slot is there already (no branch: the slot again). */
	__builtin_prefetch(key_inline(s->sku_len, s->loc_len) ? (const char *)s : t->keys + s->key.off);
}

/* The SKU slot of sku (hash sh), or the empty slot where it would go; readers may probe concurrently. */
static sku_slot *sku_probe(const atp_table *t, uint64_t sh, atp_str sku)
{
	for (uint64_t i = sh & t->mask;; i = (i + 1) & t->mask) {
		sku_slot *k = &t->skus[i];
		uint32_t head1 = __atomic_load_n(&k->head1, __ATOMIC_ACQUIRE);
		if (head1 == 0)
			return k;
		const atp_position *p = &t->pos[head1 - 1];
		if (k->tag == (uint32_t)(sh >> 32) && p->sku_len == sku.len && atp_bytes_equal(t->keys + p->key_off, sku.ptr, sku.len))
			return k;
	}
}

uint32_t atp_table_find(const atp_table *t, uint64_t h, atp_str sku, atp_str loc)
{
	const slot *s = probe(t, h, sku, loc);
	return s->id1 ? s->id1 - 1 : ATP_POS_NONE;
}

uint32_t atp_table_intern(atp_table *t, uint64_t h, atp_str sku, atp_str loc)
{
	assert(sku.len > 0 && sku.len <= ATP_SKU_MAX && loc.len > 0 && loc.len <= ATP_LOC_MAX);
	slot *s = probe(t, h, sku, loc);
	if (s->id1)
		return s->id1 - 1;
	if (t->count == t->capacity)
		return ATP_POS_NONE;

	uint32_t id = t->count;
	atp_position *p = &t->pos[id];
	memset(p, 0, sizeof(*p));
	uint32_t klen = sku.len + loc.len + 2;
	/*
	 * A key that lives in the arena (too long for its slot) but short
	 * enough for one cache line never straddles two: it starts on the next
	 * line (a lookup's prefetch fetches the line a key starts on). At most
	 * 31 bytes are skipped for a key of at most 32, within the arena's
	 * ATP_SKU_MAX + ATP_LOC_MAX + 2 bytes per position.
	 */
	bool in_slot = key_inline(sku.len, loc.len);
	if (!in_slot && klen <= 32 && (t->keys_used & 63) + klen > 64)
		t->keys_used = (t->keys_used + 63) & ~63u;
	p->key_off = t->keys_used;
	p->sku_len = (uint8_t)sku.len;
	p->loc_len = (uint8_t)loc.len;
	p->hash = h;
	char *k = t->keys + t->keys_used;
	memcpy(k, sku.ptr, sku.len);
	k[sku.len] = '\0';
	memcpy(k + sku.len + 1, loc.ptr, loc.len);
	k[sku.len + 1 + loc.len] = '\0';
	t->keys_used += klen;
	s->hash = h;
	s->sku_len = (uint8_t)sku.len;
	s->loc_len = (uint8_t)loc.len;
	if (in_slot) {
		memcpy(s->key.bytes, sku.ptr, sku.len);
		memcpy(s->key.bytes + sku.len, loc.ptr, loc.len);
	} else {
		s->key.off = p->key_off;
	}
	uint64_t sh = atp_sku_hash(sku);
	sku_slot *ks = sku_probe(t, sh, sku);
	p->next_loc = ks->head1 ? ks->head1 - 1 : ATP_POS_NONE;
	if (!ks->head1)
		ks->tag = (uint32_t)(sh >> 32);  /* a new SKU; an existing slot is never written but for its head */
	/* Published last: a reader that sees id1, head1 or count sees the key and the zeroed position. */
	__atomic_store_n(&s->id1, id + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&ks->head1, id + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&t->count, id + 1, __ATOMIC_RELEASE);
	return id;
}

void atp_table_store(atp_table *t, uint32_t id, int64_t on_hand, int64_t held, int64_t reserved,
		     int64_t safety_stock)
{
	atp_position_store(atp_table_at(t, id), on_hand, held, reserved, safety_stock);
}

bool atp_table_read(const atp_table *t, uint64_t h, atp_str sku, atp_str loc, atp_position_view *out)
{
	uint32_t id1 = 0;
	for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const slot *s = &t->slots[i];
		id1 = __atomic_load_n(&s->id1, __ATOMIC_ACQUIRE);
		if (id1 == 0)
			return false;
		if (s->hash == h && key_equals(t, s, sku, loc))
			break;
	}
	if (out)
		atp_table_read_id(t, id1 - 1, out);
	return true;
}

uint32_t atp_table_read_published(const atp_table *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_ACQUIRE);
}

uint32_t atp_table_read_sku_first(const atp_table *t, atp_str sku)
{
	if (sku.len == 0 || sku.len > ATP_SKU_MAX)
		return ATP_POS_NONE;
	uint32_t head1 = __atomic_load_n(&sku_probe(t, atp_sku_hash(sku), sku)->head1, __ATOMIC_ACQUIRE);
	return head1 ? head1 - 1 : ATP_POS_NONE;
}

uint32_t atp_table_read_sku_next(const atp_table *t, uint32_t id)
{
	return t->pos[id].next_loc;
}

void atp_table_read_id(const atp_table *t, uint32_t id, atp_position_view *out)
{
	const atp_position *p = &t->pos[id];
	for (;;) {
		uint32_t s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
#if defined(__x86_64__)
			__builtin_ia32_pause();
#endif
			continue;
		}
		out->on_hand = __atomic_load_n(&p->on_hand, __ATOMIC_RELAXED);
		out->held = __atomic_load_n(&p->held, __ATOMIC_RELAXED);
		out->reserved = __atomic_load_n(&p->reserved, __ATOMIC_RELAXED);
		out->safety_stock = __atomic_load_n(&p->safety_stock, __ATOMIC_RELAXED);
		out->version = __atomic_load_n(&p->version, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s1)
			return;
	}
}

uint32_t atp_table_count(const atp_table *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

uint32_t atp_table_capacity(const atp_table *t)
{
	return t->capacity;
}

atp_position *atp_table_at(atp_table *t, uint32_t id)
{
	assert(id < t->count);
	return &t->pos[id];
}

const atp_position *atp_table_get(const atp_table *t, uint32_t id)
{
	assert(id < __atomic_load_n(&t->count, __ATOMIC_RELAXED));
	return &t->pos[id];
}

const char *atp_table_sku(const atp_table *t, uint32_t id)
{
	assert(id < atp_table_read_published(t));
	return t->keys + t->pos[id].key_off;
}

const char *atp_table_location(const atp_table *t, uint32_t id)
{
	assert(id < atp_table_read_published(t));
	const atp_position *p = &t->pos[id];
	return t->keys + p->key_off + p->sku_len + 1;
}

size_t atp_table_memory(const atp_table *t)
{
	return (t->mask + 1) * (sizeof(slot) + sizeof(sku_slot)) + (size_t)t->count * sizeof(atp_position) + t->keys_used;
}
