/* lines.c — reservation lines, their expiry heap and closed FIFO (see atp/lines.h). */
#include "atp/lines.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct slot {
	uint32_t tag;
	uint32_t id1;  /* line id + 1; 0 = empty */
} slot;

struct atp_lines {
	slot *slots;
	uint64_t mask;
	atp_line *line;
	uint32_t *free_ids;  /* stack of unused ids */
	uint32_t n_free;
	uint32_t capacity;
	uint32_t *heap;      /* open lines with an expiry, min-heap by expires_at */
	uint32_t heap_len;
	uint32_t *fifo;      /* closed lines in closing order (ring) */
	uint32_t fifo_head;
	uint32_t fifo_len;
	uint32_t open;
};

atp_lines *atp_lines_create(uint32_t max_lines)
{
	if (max_lines == 0 || max_lines > (1u << 30))
		return NULL;
	atp_lines *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	uint64_t nslots = 16;
	while (nslots < 2ull * max_lines)
		nslots <<= 1;
	l->mask = nslots - 1;
	l->capacity = max_lines;
	l->slots = calloc(nslots, sizeof(slot));
	l->line = malloc((size_t)max_lines * sizeof(atp_line));
	l->free_ids = malloc((size_t)max_lines * sizeof(uint32_t));
	l->heap = malloc((size_t)max_lines * sizeof(uint32_t));
	l->fifo = malloc((size_t)max_lines * sizeof(uint32_t));
	if (!l->slots || !l->line || !l->free_ids || !l->heap || !l->fifo) {
		atp_lines_destroy(l);
		return NULL;
	}
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
	free(l->slots);
	free(l->line);
	free(l->free_ids);
	free(l->heap);
	free(l->fifo);
	free(l);
}

static inline uint64_t line_hash(atp_str ref, uint32_t pos)
{
	return XXH3_64bits_withSeed(ref.ptr, ref.len, 0x9e3779b97f4a7c15ull * (pos + 1ull));
}

static slot *probe(const atp_lines *l, uint64_t h, atp_str ref, uint32_t pos)
{
	uint32_t tag = (uint32_t)(h >> 32);
	for (uint64_t i = h & l->mask;; i = (i + 1) & l->mask) {
		slot *s = &l->slots[i];
		if (s->id1 == 0)
			return s;
		const atp_line *ln = &l->line[s->id1 - 1];
		if (s->tag == tag && ln->pos == pos && ln->ref_len == ref.len &&
		    memcmp(ln->ref, ref.ptr, ref.len) == 0)
			return s;
	}
}

uint32_t atp_lines_find(const atp_lines *l, atp_str ref, uint32_t pos)
{
	const slot *s = probe(l, line_hash(ref, pos), ref, pos);
	return s->id1 ? s->id1 - 1 : ATP_LINE_NONE;
}

uint32_t atp_lines_add(atp_lines *l, atp_str ref, uint32_t pos)
{
	assert(ref.len > 0 && ref.len <= ATP_REF_MAX);
	if (l->n_free == 0)
		return ATP_LINE_NONE;
	uint64_t h = line_hash(ref, pos);
	slot *s = probe(l, h, ref, pos);
	assert(s->id1 == 0);
	uint32_t id = l->free_ids[--l->n_free];
	atp_line *ln = &l->line[id];
	memset(ln, 0, offsetof(atp_line, ref));
	ln->hash = h;
	ln->pos = pos;
	ln->heap_idx = ATP_LINE_NONE;
	ln->ref_len = (uint8_t)ref.len;
	memcpy(ln->ref, ref.ptr, ref.len);
	s->tag = (uint32_t)(h >> 32);
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

static inline uint64_t heap_key(const atp_lines *l, uint32_t i)
{
	return l->line[l->heap[i]].expires_at;
}

static inline void heap_set(atp_lines *l, uint32_t i, uint32_t id)
{
	l->heap[i] = id;
	l->line[id].heap_idx = i;
}

static void heap_up(atp_lines *l, uint32_t i)
{
	uint32_t id = l->heap[i];
	uint64_t k = l->line[id].expires_at;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (heap_key(l, parent) <= k)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, id);
}

static void heap_down(atp_lines *l, uint32_t i)
{
	uint32_t id = l->heap[i];
	uint64_t k = l->line[id].expires_at;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && heap_key(l, c + 1) < heap_key(l, c))
			c++;
		if (k <= heap_key(l, c))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, id);
}

static void heap_remove(atp_lines *l, uint32_t id)
{
	uint32_t i = l->line[id].heap_idx;
	assert(i < l->heap_len && l->heap[i] == id);
	l->line[id].heap_idx = ATP_LINE_NONE;
	uint32_t last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	heap_up(l, i);
	heap_down(l, l->line[last].heap_idx);
}

void atp_lines_open(atp_lines *l, uint32_t id)
{
	atp_line *ln = &l->line[id];
	assert(ln->state == 0 && ln->remaining > 0);
	ln->state = ATP_LINE_OPEN;
	l->open++;
	if (ln->expires_at) {
		assert(l->heap_len < l->capacity);
		heap_set(l, l->heap_len++, id);
		heap_up(l, l->heap_len - 1);
	}
}

void atp_lines_close(atp_lines *l, uint32_t id, enum atp_line_state state, uint64_t now)
{
	atp_line *ln = &l->line[id];
	assert(ln->remaining == 0 && state != ATP_LINE_OPEN);
	assert(ln->state == 0 || ln->state == ATP_LINE_OPEN);
	if (ln->state == ATP_LINE_OPEN) {
		l->open--;
		if (ln->heap_idx != ATP_LINE_NONE)
			heap_remove(l, id);
	}
	ln->state = (uint8_t)state;
	ln->closed_at = now;
	assert(l->fifo_len < l->capacity);
	l->fifo[(l->fifo_head + l->fifo_len++) % l->capacity] = id;
}

uint32_t atp_lines_due(const atp_lines *l, uint64_t now)
{
	if (l->heap_len == 0 || heap_key(l, 0) > now)
		return ATP_LINE_NONE;
	return l->heap[0];
}

/* Linear-probing delete: shift later entries of the cluster back into the hole. */
static void slot_delete(atp_lines *l, uint32_t id)
{
	uint64_t i = l->line[id].hash & l->mask;
	while (l->slots[i].id1 != id + 1)
		i = (i + 1) & l->mask;
	for (uint64_t j = (i + 1) & l->mask;; j = (j + 1) & l->mask) {
		slot *s = &l->slots[j];
		if (s->id1 == 0)
			break;
		uint64_t home = l->line[s->id1 - 1].hash & l->mask;
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
	while (l->fifo_len > 0) {
		uint32_t id = l->fifo[l->fifo_head];
		if (l->line[id].closed_at >= before)
			break;
		l->fifo_head = (l->fifo_head + 1) % l->capacity;
		l->fifo_len--;
		slot_delete(l, id);
		l->line[id].state = 0;
		l->free_ids[l->n_free++] = id;
		n++;
	}
	return n;
}

size_t atp_lines_memory(const atp_lines *l)
{
	return (l->mask + 1) * sizeof(slot) + (size_t)l->capacity * (sizeof(atp_line) + 3 * sizeof(uint32_t));
}
