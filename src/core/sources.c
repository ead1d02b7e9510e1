/* sources.c — the source table (see atp/sources.h). */
#include "atp/sources.h"

#include "atp/bytes.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct atp_sources {
	uint32_t *slots;  /* id + 1; 0 = empty */
	uint32_t mask;
	uint32_t count;
	uint32_t capacity;
	atp_source *src;
};

atp_sources *atp_sources_create(uint32_t max_sources)
{
	if (max_sources == 0 || max_sources > (1u << 20))
		return NULL;
	atp_sources *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	uint32_t nslots = 16;
	while (nslots < 2 * max_sources)
		nslots <<= 1;
	s->mask = nslots - 1;
	s->capacity = max_sources;
	s->slots = calloc(nslots, sizeof(uint32_t));
	s->src = calloc(max_sources, sizeof(atp_source));
	if (!s->slots || !s->src) {
		atp_sources_destroy(s);
		return NULL;
	}
	return s;
}

void atp_sources_destroy(atp_sources *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->src);
	free(s);
}

static uint32_t *probe(const atp_sources *s, uint64_t h, atp_str name)
{
	for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
		uint32_t *slot = &s->slots[i];
		if (*slot == 0)
			return slot;
		const atp_source *src = &s->src[*slot - 1];
		if (src->hash == h && src->name_len == name.len && atp_bytes_equal(src->name, name.ptr, name.len))
			return slot;
	}
}

uint32_t atp_sources_find(const atp_sources *s, atp_str name)
{
	uint32_t *slot = probe(s, XXH3_64bits(name.ptr, name.len), name);
	return *slot ? *slot - 1 : ATP_SOURCE_NONE;
}

uint32_t atp_sources_intern(atp_sources *s, atp_str name)
{
	assert(name.len > 0 && name.len <= ATP_SOURCE_MAX);
	uint64_t h = XXH3_64bits(name.ptr, name.len);
	uint32_t *slot = probe(s, h, name);
	if (*slot)
		return *slot - 1;
	if (s->count == s->capacity)
		return ATP_SOURCE_NONE;
	uint32_t id = s->count++;
	atp_source *src = &s->src[id];
	src->hash = h;
	src->hwm = 0;
	src->name_len = (uint8_t)name.len;
	memcpy(src->name, name.ptr, name.len);
	src->name[name.len] = '\0';
	*slot = id + 1;
	return id;
}

atp_source *atp_sources_at(atp_sources *s, uint32_t id)
{
	assert(id < s->count);
	return &s->src[id];
}

const atp_source *atp_sources_get(const atp_sources *s, uint32_t id)
{
	assert(id < s->count);
	return &s->src[id];
}

uint32_t atp_sources_count(const atp_sources *s)
{
	return s->count;
}

uint32_t atp_sources_capacity(const atp_sources *s)
{
	return s->capacity;
}
