/* lines.c — reservation lines, their expiry heap and closed FIFO (see atp/lines.h). */
#include "atp/lines.h"

#include "atp/bytes.h"
#include "keyhash.h"
#include "memory.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/*
 * How far ahead the purge fetches the lines and slots it is about to
 * touch: each would be a random miss otherwise, and they come in bursts.
 */
#define WALK_AHEAD 8

/*
 * How many entries ahead of their tails the rings (expiry queue, closed
 * lines) are fetched for writing: a ring's tail runs through memory last
 * touched a whole turn ago, and a store there would wait for it. 4 entries
 * per cache line.
 */
#define TAIL_AHEAD 32

/* A full store, an expiry out of order: the rare ways, laid out off the straight path. */
#define RARE(x) __builtin_expect(!!(x), 0)
/* The work of the rare ways: out of line, so that the common ones save and restore few registers. */
#define RARE_PATH __attribute__((noinline, cold))

/* A slot: the hash's low 32 bits (its home index and a tag in one) and the line id + 1 (0 = empty). */
typedef struct slot {
	uint32_t hash_lo;
	uint32_t id1;
} slot;

/* A closed line waiting for its retention to pass; carries what purging needs. */
typedef struct closed_entry {
	uint64_t closed_at;
	uint32_t id;
	uint32_t hash_lo;
} closed_entry;

/*
 * An open line's expiry in the in-order queue. Closing a line marks its
 * entry (id ATP_LINE_NONE) through the line's queue_idx: a line closes soon
 * after it opened, while its entry is still in cache, and the walk past
 * closed entries at the head then reads the queue alone, never the lines.
 */
typedef struct queued_expiry {
	uint64_t expires_at;
	uint32_t id;
	uint32_t pad;
} queued_expiry;

/*
 * Head and length of a ring of mask + 1 entries, a power of two at least
 * the lines' capacity (an index wraps with one and).
 */
typedef struct ring {
	uint32_t head;
	uint32_t len;
	uint32_t mask;
} ring;

static inline uint32_t ring_index(const ring *r, uint32_t i)
{
	return (r->head + i) & r->mask;
}

/* The index TAIL_AHEAD entries past the tail (a prefetch: wrapping onto live entries is harmless). */
static inline uint32_t ring_ahead(const ring *r)
{
	return ring_index(r, r->len + TAIL_AHEAD);
}

static inline void ring_pop(ring *r)
{
	r->head = (r->head + 1) & r->mask;
	r->len--;
}

/*
 * What a few lines need beyond their cache line, kept apart so that the
 * others never touch it: the whole ref when it is longer than the line
 * holds, the heap index of an expiry out of order.
 */
typedef struct line_ext {
	uint32_t heap_idx;     /* index in the expiry heap, while in_heap */
	char ref[ATP_REF_MAX];
} line_ext;

/* The key sits in the entry so that sifting touches only the heap array. */
typedef struct heap_entry {
	uint64_t expires_at;
	uint32_t id;
} heap_entry;

struct atp_lines {
	slot *slots;
	uint64_t mask;
	atp_line *line;
	line_ext *ext;       /* by line id; its pages are touched only by the lines that need it */
	uint32_t *free_ids;  /* stack of unused ids */
	uint32_t n_free;
	uint32_t capacity;
	/*
	 * Open lines with an expiry: those that arrive in expiry order (the
	 * usual case: now + a fixed TTL) join a queue in O(1); the others go
	 * into a min-heap, from which closing removes them exactly.
	 */
	queued_expiry *queue;
	ring queue_ring;
	heap_entry *heap;
	uint32_t heap_len;
	closed_entry *closed;  /* closed lines in closing order */
	ring closed_ring;
	uint32_t open;
	uint32_t *ref_heads;   /* bucket of XXH3(ref) -> first open line + 1, 0: none */
	uint64_t ref_mask;
};

_Static_assert(sizeof(atp_line) == 64, "a line is one cache line");

atp_lines *atp_lines_create(uint32_t max_lines)
{
	if (max_lines == 0 || max_lines > (1u << 30)) /* slots stay below 2^31: hash_lo covers the index */
		return NULL;
	atp_lines *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	uint64_t nslots = 16;
	while (nslots < 2ull * max_lines)
		nslots <<= 1;
	l->mask = nslots - 1;
	l->capacity = max_lines;
	uint32_t ring_size = 1;
	while (ring_size < max_lines)
		ring_size <<= 1;
	l->queue_ring.mask = l->closed_ring.mask = ring_size - 1;
	uint64_t nheads = 16;  /* only releasable lines are chained: a quarter of the lines' count is room enough */
	while (nheads < max_lines / 4)
		nheads <<= 1;
	l->ref_mask = nheads - 1;
	/* Mapped (memory.h), so page-aligned: a line is one cache line. */
	l->slots = atp_map_zeroed(nslots * sizeof(slot));
	l->line = atp_map_zeroed((size_t)max_lines * sizeof(atp_line));
	l->ext = atp_map_zeroed((size_t)max_lines * sizeof(line_ext));
	l->free_ids = atp_map_zeroed((size_t)max_lines * sizeof(uint32_t));
	l->heap = atp_map_zeroed((size_t)max_lines * sizeof(heap_entry));
	l->queue = atp_map_zeroed((size_t)ring_size * sizeof(queued_expiry));
	l->closed = atp_map_zeroed((size_t)ring_size * sizeof(closed_entry));
	l->ref_heads = atp_map_zeroed(nheads * sizeof(uint32_t));
	if (!l->slots || !l->line || !l->ext || !l->free_ids || !l->heap || !l->queue || !l->closed || !l->ref_heads) {
		atp_lines_destroy(l);
		return NULL;
	}
	atp_random_access_memory(l->slots, nslots * sizeof(slot));
	atp_random_access_memory(l->ref_heads, nheads * sizeof(uint32_t));
	atp_hugepage_hint(l->line, (size_t)max_lines * sizeof(atp_line));
	/* Hand out low ids first so that a small workload touches few pages. */
	for (uint32_t i = 0; i < max_lines; i++)
		l->free_ids[i] = max_lines - 1 - i;
	l->n_free = max_lines;
	return l;
}

void atp_lines_destroy(atp_lines *l)
{
	if (!l)
		return;
	size_t lines = l->capacity, ring_n = (size_t)l->queue_ring.mask + 1;
	atp_unmap(l->slots, (l->mask + 1) * sizeof(slot));
	atp_unmap(l->line, lines * sizeof(atp_line));
	atp_unmap(l->ext, lines * sizeof(line_ext));
	atp_unmap(l->free_ids, lines * sizeof(uint32_t));
	atp_unmap(l->heap, lines * sizeof(heap_entry));
	atp_unmap(l->queue, ring_n * sizeof(queued_expiry));
	atp_unmap(l->closed, ring_n * sizeof(closed_entry));
	atp_unmap(l->ref_heads, (l->ref_mask + 1) * sizeof(uint32_t));
	free(l);
}

uint64_t atp_line_hash(atp_str ref, uint64_t pos_hash)
{
	return atp_key_hash(ref.ptr, ref.len, pos_hash);
}

void atp_lines_prefetch(const atp_lines *l, uint64_t h)
{
	__builtin_prefetch(&l->slots[h & l->mask]);
}

void atp_lines_prefetch_entry(const atp_lines *l, uint64_t h)
{
	const slot *s = &l->slots[h & l->mask];
	/* An empty slot (a new line) fetches line 0: cheaper than a branch that guesses which. */
	uint32_t id1 = s->id1;
	__builtin_prefetch(&l->line[id1 - (id1 != 0)]);
}

const char *atp_lines_ref(const atp_lines *l, uint32_t id)
{
	const atp_line *ln = &l->line[id];
	return ln->ref_len <= ATP_LINE_REF_INLINE ? ln->ref : l->ext[id].ref;
}

/*
 * A ref longer than a line holds: compared in the line, then whole.
 * Out of line, so that the lookups it sits in stay small enough to inline.
 */
static __attribute__((noinline)) bool long_ref_equal(const atp_lines *l, uint32_t id, const char *ref, uint32_t len)
{
	return atp_bytes_equal(l->line[id].ref, ref, ATP_LINE_REF_INLINE) && atp_bytes_equal(l->ext[id].ref, ref, len);
}

static __attribute__((noinline)) void long_ref_copy(atp_lines *l, uint32_t id, const char *ref, uint32_t len)
{
	memcpy(l->line[id].ref, ref, ATP_LINE_REF_INLINE);
	memcpy(l->ext[id].ref, ref, len);
}

/* Whether line id's ref (ref_len bytes, as ln says) is ref. */
static inline bool ref_equal(const atp_lines *l, uint32_t id, const atp_line *ln, const char *ref, uint32_t len)
{
	if (ln->ref_len != len)
		return false;
	if (RARE(len > ATP_LINE_REF_INLINE))
		return long_ref_equal(l, id, ref, len);
	return atp_bytes_equal(ln->ref, ref, len);
}

static slot *probe(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos)
{
	for (uint64_t i = h & l->mask;; i = (i + 1) & l->mask) {
		slot *s = &l->slots[i];
		if (s->id1 == 0)
			return s;
		const atp_line *ln = &l->line[s->id1 - 1];
		if (s->hash_lo == (uint32_t)h && ln->pos == pos && ref_equal(l, s->id1 - 1, ln, ref.ptr, ref.len))
			return s;
	}
}

uint32_t atp_lines_find(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos)
{
	uint32_t where;
	return atp_lines_find_where(l, h, ref, pos, &where);
}

uint32_t atp_lines_find_where(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos, uint32_t *where)
{
	const slot *s = probe(l, h, ref, pos);
	*where = (uint32_t)(s - l->slots);
	return s->id1 ? s->id1 - 1 : ATP_LINE_NONE;
}

/* The slot a line would take, found by a probe: out of line, for adds that were not told it by a find. */
static RARE_PATH slot *free_slot(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos)
{
	return probe(l, h, ref, pos);
}

uint32_t atp_lines_add(atp_lines *l, uint64_t h, atp_str ref, uint32_t pos)
{
	return atp_lines_add_where(l, ATP_LINE_NONE, h, ref, pos);
}

uint32_t atp_lines_add_where(atp_lines *l, uint32_t where, uint64_t h, atp_str ref, uint32_t pos)
{
	assert(ref.len > 0 && ref.len <= ATP_REF_MAX);
	if (RARE(l->n_free == 0))
		return ATP_LINE_NONE;
	slot *s = RARE(where == ATP_LINE_NONE) ? free_slot(l, h, ref, pos) : &l->slots[where];
	assert(s->id1 == 0);
	uint32_t id = l->free_ids[--l->n_free];
	atp_line *ln = &l->line[id];
	memset(ln, 0, offsetof(atp_line, ref));
	memset(&ln->requested, 0, sizeof(*ln) - offsetof(atp_line, requested));
	ln->queue_idx = ATP_LINE_NONE;
	ln->pos = pos;
	ln->hash_lo = (uint32_t)h;
	ln->ref_len = (uint8_t)ref.len;
	if (RARE(ref.len > ATP_LINE_REF_INLINE))
		long_ref_copy(l, id, ref.ptr, ref.len);
	else
		atp_bytes_copy(ln->ref, ref.ptr, ref.len);
	s->hash_lo = (uint32_t)h;
	s->id1 = id + 1;
	return id;
}

atp_line *atp_lines_at(atp_lines *l, uint32_t id)
{
	assert(id < l->capacity);
	return &l->line[id];
}

const atp_line *atp_lines_get(const atp_lines *l, uint32_t id)
{
	assert(id < l->capacity);
	return &l->line[id];
}

uint32_t atp_lines_count(const atp_lines *l)
{
	return l->capacity - l->n_free;
}

uint32_t atp_lines_capacity(const atp_lines *l)
{
	return l->capacity;
}

uint32_t atp_lines_open_count(const atp_lines *l)
{
	return l->open;
}

/* ---- expiry heap ---- */

static inline void heap_set(atp_lines *l, uint32_t i, heap_entry e)
{
	l->heap[i] = e;
	l->ext[e.id].heap_idx = i;
}

static void heap_up(atp_lines *l, uint32_t i)
{
	heap_entry e = l->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (l->heap[parent].expires_at <= e.expires_at)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, e);
}

static void heap_down(atp_lines *l, uint32_t i)
{
	heap_entry e = l->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1].expires_at < l->heap[c].expires_at)
			c++;
		if (e.expires_at <= l->heap[c].expires_at)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, e);
}

static RARE_PATH void heap_remove(atp_lines *l, uint32_t id)
{
	uint32_t i = l->ext[id].heap_idx;
	assert(l->line[id].in_heap && i < l->heap_len && l->heap[i].id == id);
	l->line[id].in_heap = 0;
	heap_entry last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	heap_up(l, i);
	heap_down(l, l->ext[last.id].heap_idx);
}

/* An expiry out of order. */
static RARE_PATH void heap_insert(atp_lines *l, uint32_t id, uint64_t expires_at)
{
	assert(l->heap_len < l->capacity);
	l->line[id].in_heap = 1;
	heap_set(l, l->heap_len++, (heap_entry){ expires_at, id });
	heap_up(l, l->heap_len - 1);
}

/* ---- open lines by ref ---- */

static uint32_t *ref_head(const atp_lines *l, const char *ref, size_t len)
{
	return &l->ref_heads[XXH3_64bits(ref, len) & l->ref_mask];
}

static RARE_PATH void ref_link(atp_lines *l, uint32_t id)
{
	atp_line *ln = &l->line[id];
	uint32_t *head = ref_head(l, atp_lines_ref(l, id), ln->ref_len);
	ln->ref_next = *head ? *head - 1 : ATP_LINE_NONE;
	*head = id + 1;
}

/* Singly linked (a line stays one cache line): the chain is walked to the line, a few lines at most. */
static RARE_PATH void ref_unlink(atp_lines *l, uint32_t id)
{
	atp_line *ln = &l->line[id];
	uint32_t *head = ref_head(l, atp_lines_ref(l, id), ln->ref_len), next = ln->ref_next;
	if (*head == id + 1) {
		*head = next == ATP_LINE_NONE ? 0 : next + 1;
		return;
	}
	for (uint32_t k = *head ? *head - 1 : ATP_LINE_NONE; k != ATP_LINE_NONE; k = l->line[k].ref_next) {
		if (l->line[k].ref_next == id) {
			l->line[k].ref_next = next;
			return;
		}
	}
	assert(!"an open releasable line is in its chain");
}

/* The first line from id on (id included) in its chain that is of ref. */
static uint32_t ref_match(const atp_lines *l, uint32_t id, const char *ref, size_t len)
{
	for (; id != ATP_LINE_NONE; id = l->line[id].ref_next) {
		if (ref_equal(l, id, &l->line[id], ref, (uint32_t)len))
			return id;
	}
	return ATP_LINE_NONE;
}

uint32_t atp_lines_first_open(const atp_lines *l, atp_str ref)
{
	if (ref.len == 0 || ref.len > ATP_REF_MAX)
		return ATP_LINE_NONE;
	uint32_t head = *ref_head(l, ref.ptr, ref.len);
	return head ? ref_match(l, head - 1, ref.ptr, ref.len) : ATP_LINE_NONE;
}

uint32_t atp_lines_next_open(const atp_lines *l, uint32_t id)
{
	const atp_line *ln = &l->line[id];
	return ref_match(l, ln->ref_next, atp_lines_ref(l, id), ln->ref_len);
}

void atp_lines_open(atp_lines *l, uint32_t id, uint64_t expires_at)
{
	atp_line *ln = &l->line[id];
	assert(ln->state == 0 && ln->remaining > 0);
	ln->state = ATP_LINE_OPEN;
	l->open++;
	if (ln->releasable)
		ref_link(l, id);
	if (!expires_at)
		return;
	ring *q = &l->queue_ring;
	const queued_expiry *tail = q->len ? &l->queue[ring_index(q, q->len - 1)] : NULL;
	if (__builtin_expect(q->len < l->capacity && (!tail || tail->expires_at <= expires_at), 1)) {
		__builtin_prefetch(&l->queue[ring_ahead(q)], 1);
		ln->queue_idx = ring_index(q, q->len++);
		l->queue[ln->queue_idx] = (queued_expiry){ .expires_at = expires_at, .id = id };
		return;
	}
	heap_insert(l, id, expires_at);
}

void atp_lines_promise(atp_lines *l, uint32_t id)
{
	atp_line *ln = &l->line[id];
	assert(ln->state == 0 && ln->remaining == 0 && ln->confirmed > 0);
	ln->state = ATP_LINE_PROMISED;
	if (ln->releasable)
		ref_link(l, id);
}

void atp_lines_open_promised(atp_lines *l, uint32_t id, int64_t remaining)
{
	atp_line *ln = &l->line[id];
	assert(ln->state == ATP_LINE_PROMISED && ln->remaining == 0 && remaining > 0);
	ln->state = ATP_LINE_OPEN;
	ln->remaining = remaining;
	l->open++;
}

uint64_t atp_lines_expires_at(const atp_lines *l, uint32_t id)
{
	const atp_line *ln = &l->line[id];
	if (ln->state != ATP_LINE_OPEN)
		return 0;
	if (ln->queue_idx != ATP_LINE_NONE)
		return l->queue[ln->queue_idx].expires_at;
	return ln->in_heap ? l->heap[l->ext[id].heap_idx].expires_at : 0;
}

void atp_lines_close(atp_lines *l, uint32_t id, enum atp_line_state state, uint64_t now)
{
	atp_line *ln = &l->line[id];
	assert(ln->remaining == 0 && state != ATP_LINE_OPEN);
	assert(ln->state == 0 || atp_line_live(ln->state));
	if (RARE(ln->state == ATP_LINE_PROMISED)) {
		if (ln->releasable)
			ref_unlink(l, id);
	} else if (ln->state == ATP_LINE_OPEN) {
		l->open--;
		if (ln->releasable)
			ref_unlink(l, id);
		if (ln->queue_idx != ATP_LINE_NONE) {
			l->queue[ln->queue_idx].id = ATP_LINE_NONE;
			ln->queue_idx = ATP_LINE_NONE;
		}
		if (RARE(ln->in_heap))
			heap_remove(l, id);
	}
	ln->state = (uint8_t)state;
	ring *c = &l->closed_ring;
	assert(c->len < l->capacity);
	__builtin_prefetch(&l->closed[ring_ahead(c)], 1);
	l->closed[ring_index(c, c->len++)] =
		(closed_entry){ .closed_at = now, .id = id, .hash_lo = ln->hash_lo };
}

uint32_t atp_lines_due(atp_lines *l, uint64_t now)
{
	ring *q = &l->queue_ring;
	while (q->len && l->queue[q->head].id == ATP_LINE_NONE)
		ring_pop(q);
	const queued_expiry *first = q->len ? &l->queue[q->head] : NULL;
	const heap_entry *top = l->heap_len ? &l->heap[0] : NULL;
	if (first && (!top || first->expires_at <= top->expires_at))
		return first->expires_at <= now ? first->id : ATP_LINE_NONE;
	return top && top->expires_at <= now ? top->id : ATP_LINE_NONE;
}

/* Linear-probing delete: shift later entries of the cluster back into the hole. */
static void slot_delete(atp_lines *l, const closed_entry *e)
{
	uint64_t i = e->hash_lo & l->mask;
	while (l->slots[i].id1 != e->id + 1)
		i = (i + 1) & l->mask;
	for (uint64_t j = (i + 1) & l->mask;; j = (j + 1) & l->mask) {
		slot *s = &l->slots[j];
		if (s->id1 == 0)
			break;
		uint64_t home = s->hash_lo & l->mask;
		/* Move s into the hole at i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			l->slots[i] = *s;
			i = j;
		}
	}
	l->slots[i] = (slot){ 0, 0 };
}

uint32_t atp_lines_purge(atp_lines *l, uint64_t before)
{
	uint32_t n = 0;
	ring *c = &l->closed_ring;
	while (c->len > 0) {
		const closed_entry *e = &l->closed[c->head];
		if (e->closed_at >= before)
			break;
		if (c->len > WALK_AHEAD) {
			const closed_entry *a = &l->closed[ring_index(c, WALK_AHEAD)];
			__builtin_prefetch(&l->slots[a->hash_lo & l->mask]);
			/* For writing: the id goes on the free stack, and the next RESERVE rewrites the whole line. */
			__builtin_prefetch(&l->line[a->id], 1);
		}
		slot_delete(l, e);
		l->line[e->id].state = 0;
		l->free_ids[l->n_free++] = e->id;
		ring_pop(c);
		n++;
	}
	return n;
}

uint32_t atp_lines_closed_count(const atp_lines *l)
{
	return l->closed_ring.len;
}

static const closed_entry *closed_entry_at(const atp_lines *l, uint32_t i)
{
	assert(i < l->closed_ring.len);
	return &l->closed[ring_index(&l->closed_ring, i)];
}

uint32_t atp_lines_closed_id(const atp_lines *l, uint32_t i)
{
	return closed_entry_at(l, i)->id;
}

uint64_t atp_lines_closed_at(const atp_lines *l, uint32_t i)
{
	return closed_entry_at(l, i)->closed_at;
}

size_t atp_lines_memory(const atp_lines *l)
{
	size_t per_line = sizeof(atp_line) + sizeof(line_ext) + sizeof(uint32_t) + sizeof(heap_entry);
	size_t per_ring_entry = sizeof(queued_expiry) + sizeof(closed_entry);
	return (l->mask + 1) * sizeof(slot) + (l->ref_mask + 1) * sizeof(uint32_t) + (size_t)l->capacity * per_line +
	       ((size_t)l->queue_ring.mask + 1) * per_ring_entry;
}
