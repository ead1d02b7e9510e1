/* helpers.h — building events and cores tersely in tests. */
#ifndef ATP_TEST_HELPERS_H
#define ATP_TEST_HELPERS_H

#include "atp/core.h"

#include <string.h>

#define S(lit) atp_str_of((lit), strlen(lit))

static inline atp_core *small_core(uint32_t positions, uint32_t lines, uint32_t sources)
{
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = positions;
	cfg.max_lines = lines;
	cfg.max_sources = sources;
	cfg.line_retention = 1000;
	return atp_core_create(&cfg);
}

/* An event of source "wms" with the next seq the caller tracks. */
static inline atp_event ev_of(uint8_t type, uint64_t seq, const char *sku, const char *loc, int64_t qty)
{
	return (atp_event){ .event_id = seq, .seq = seq, .type = type, .qty = qty, .source = S("wms"),
			    .sku = S(sku), .location = S(loc), .reason = type == ATP_EV_ADJUST ? S("DAMAGE") : (atp_str){ 0 } };
}

static inline atp_event ev_ref(uint8_t type, uint64_t seq, const char *sku, const char *loc, int64_t qty,
			       const char *ref)
{
	atp_event ev = ev_of(type, seq, sku, loc, qty);
	ev.ref = S(ref);
	return ev;
}

static inline const atp_position *pos_of(const atp_core *c, const char *sku, const char *loc)
{
	return atp_core_find(c, S(sku), S(loc));
}

#endif
