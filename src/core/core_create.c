/*
 * core_create.c — making and unmaking an atp_core (see atp/core.h): the
 * default limits, the table, reservation lines, sources and inbound supply
 * sized from them, all or nothing.
 */
#include "atp/core.h"

#include "core_state.h"

#include <stdlib.h>

atp_core_config atp_core_config_default(void)
{
	return (atp_core_config){
		.max_positions = 1u << 20,
		.max_lines = 1u << 22,
		.max_sources = 1024,
		.line_retention = 24ull * 3600 * 1000,
		.max_inbound = 1u << 16,
		.max_promises = 1u << 18,
	};
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

atp_core *atp_core_create(const atp_core_config *cfg)
{
	atp_core *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->table = atp_table_create(cfg->max_positions);
	c->lines = atp_lines_create(cfg->max_lines);
	c->sources = atp_sources_create(cfg->max_sources);
	/* No more positions with supply than positions, no more promises than lines. */
	c->inbound = atp_inbound_create(cfg->max_positions, min_u32(cfg->max_inbound, cfg->max_positions),
					min_u32(cfg->max_promises, cfg->max_lines));
	c->retention = cfg->line_retention;
	c->sparse_seq = cfg->sparse_seq;
	c->recent_sources[0] = c->recent_sources[1] = (known_source){ ATP_SOURCE_NONE, NULL };
	if (!c->table || !c->lines || !c->sources || !c->inbound) {
		atp_core_destroy(c);
		return NULL;
	}
	return c;
}

void atp_core_destroy(atp_core *c)
{
	if (!c)
		return;
	atp_table_destroy(c->table);
	atp_lines_destroy(c->lines);
	atp_sources_destroy(c->sources);
	atp_inbound_destroy(c->inbound);
	free(c);
}
