/* query.c — reading a core: positions, lines, high-water marks, stats; and the mark of the whole orders it holds (see atp/core.h). */
#include "atp/core.h"

#include "atp/limits.h"
#include "core_state.h"

const atp_position *atp_core_find(const atp_core *c, atp_str sku, atp_str location)
{
	if (!atp_str_valid(sku, ATP_SKU_MAX) || !atp_str_valid(location, ATP_LOC_MAX))
		return NULL;
	uint32_t id = atp_table_find(c->table, atp_position_hash(atp_sku_hash(sku), location), sku, location);
	return id == ATP_POS_NONE ? NULL : atp_table_get(c->table, id);
}

bool atp_core_read(const atp_core *c, atp_str sku, atp_str location, atp_position_view *out)
{
	if (!sku.len || sku.len > ATP_SKU_MAX || !location.len || location.len > ATP_LOC_MAX)
		return false;
	return atp_table_read(c->table, atp_position_hash(atp_sku_hash(sku), location), sku, location, out);
}

const atp_line *atp_core_find_line(const atp_core *c, atp_str ref, atp_str sku, atp_str location)
{
	if (!atp_str_valid(ref, ATP_REF_MAX) || !atp_str_valid(sku, ATP_SKU_MAX) ||
	    !atp_str_valid(location, ATP_LOC_MAX))
		return NULL;
	uint64_t pos_hash = atp_position_hash(atp_sku_hash(sku), location);
	uint32_t pos = atp_table_find(c->table, pos_hash, sku, location);
	if (pos == ATP_POS_NONE)
		return NULL;
	uint32_t id = atp_lines_find(c->lines, atp_line_hash(ref, pos_hash), ref, pos);
	return id == ATP_LINE_NONE ? NULL : atp_lines_get(c->lines, id);
}

uint64_t atp_core_hwm(const atp_core *c, atp_str source)
{
	if (!atp_str_valid(source, ATP_SOURCE_MAX))
		return 0;
	uint32_t id = atp_sources_find(c->sources, source);
	return id == ATP_SOURCE_NONE ? 0 : atp_sources_get(c->sources, id)->hwm;
}

uint64_t atp_core_now_ms(const atp_core *c)
{
	return c->now;
}

const atp_table *atp_core_table(const atp_core *c)
{
	return c->table;
}

const atp_lines *atp_core_lines(const atp_core *c)
{
	return c->lines;
}

const atp_sources *atp_core_sources(const atp_core *c)
{
	return c->sources;
}

const atp_inbound *atp_core_inbound(const atp_core *c)
{
	return c->inbound;
}

const atp_core_stats *atp_core_stats_get(const atp_core *c)
{
	return &c->stats;
}

void atp_core_stats_add(atp_core_stats *to, const atp_core_stats *from)
{
	/* Every field is a uint64_t counter. */
	_Static_assert(sizeof(atp_core_stats) % sizeof(uint64_t) == 0, "counters only");
	const uint64_t *f = (const uint64_t *)from;
	uint64_t *t = (uint64_t *)to;
	for (size_t k = 0; k < sizeof(*to) / sizeof(uint64_t); k++)
		t[k] += f[k];
}

bool atp_core_reserve_fits(const atp_core *c, const atp_event *lines, size_t n)
{
	if (atp_lines_capacity(c->lines) - atp_lines_count(c->lines) < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const atp_event *ev = &lines[i];
		const atp_position *p = atp_core_find(c, ev->sku, ev->location);  /* the writer's own: no seqlock read */
		if (!p || atp_core_find_line(c, ev->ref, ev->sku, ev->location))
			return false;
		if (atp_position_atp(p) >= ev->qty)
			continue;
		/* A line with a need-by day may be promised against supply instead (one line per position). */
		uint32_t pos = (uint32_t)(p - atp_table_get(c->table, 0));
		if (!ev->date || !atp_inbound_can_promise(c->inbound, pos, ev->qty, ev->date) ||
		    !atp_inbound_promise_room(c->inbound))
			return false;
	}
	return true;
}

uint64_t atp_core_order_hwm(const atp_core *c)
{
	return atp_core_hwm(c, atp_str_of(ATP_ORDER_SOURCE, sizeof(ATP_ORDER_SOURCE) - 1));
}

int atp_core_note_order(atp_core *c, uint64_t order)
{
	atp_str name = atp_str_of(ATP_ORDER_SOURCE, sizeof(ATP_ORDER_SOURCE) - 1);
	uint32_t id = atp_sources_find(c->sources, name);
	if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(c->sources, name)) == ATP_SOURCE_NONE)
		return ATP_E_SOURCES_FULL;
	atp_source *s = atp_sources_at(c->sources, id);
	if (order > s->hwm)
		s->hwm = order;
	return ATP_OK;
}
