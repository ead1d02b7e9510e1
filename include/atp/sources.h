/*
 * atp/sources.h — event sources and their applied high-water marks.
 *
 * A source (a WMS, an order-capture node) numbers its events 1, 2, 3, ...;
 * the high-water mark (hwm) is the highest seq applied. Sources are
 * interned to dense ids in a fixed-capacity table and never forgotten:
 * the hwm is what makes application exactly-once, so it is part of the state.
 */
#ifndef ATP_SOURCES_H
#define ATP_SOURCES_H

#include "atp/event.h"
#include "atp/limits.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_SOURCE_NONE UINT32_MAX

typedef struct atp_source {
	uint64_t hash;
	uint64_t hwm;
	uint8_t name_len;
	char name[ATP_SOURCE_MAX + 1];
} atp_source;

typedef struct atp_sources atp_sources;

atp_sources *atp_sources_create(uint32_t max_sources);
void atp_sources_destroy(atp_sources *s);
uint32_t atp_sources_find(const atp_sources *s, atp_str name);
/* The id of name, added with hwm 0 when absent; ATP_SOURCE_NONE when full. */
uint32_t atp_sources_intern(atp_sources *s, atp_str name);
atp_source *atp_sources_at(atp_sources *s, uint32_t id);
const atp_source *atp_sources_get(const atp_sources *s, uint32_t id);
uint32_t atp_sources_count(const atp_sources *s);
uint32_t atp_sources_capacity(const atp_sources *s);

#ifdef __cplusplus
}
#endif

#endif
