/*
 * restore.c — loading a snapshot into a fresh core (see atp/core.h): every
 * value checked against the limits an applied event keeps, before it is
 * taken.
 */
#include "atp/core.h"

#include "atp/limits.h"
#include "core_state.h"

static bool bucket_ok(int64_t v, int64_t min)
{
	return v >= min && v <= ATP_BUCKET_MAX;
}

int atp_core_restore_source(atp_core *c, atp_str name, uint64_t hwm)
{
	if (!atp_str_valid(name, ATP_SOURCE_MAX))
		return ATP_E_SOURCE;
	if (atp_sources_find(c->sources, name) != ATP_SOURCE_NONE)
		return ATP_E_INVAL;
	uint32_t id = atp_sources_intern(c->sources, name);
	if (id == ATP_SOURCE_NONE)
		return ATP_E_SOURCES_FULL;
	atp_sources_at(c->sources, id)->hwm = hwm;
	return ATP_OK;
}

int atp_core_restore_position(atp_core *c, atp_str sku, atp_str location, const atp_position *v)
{
	if (!atp_str_valid(sku, ATP_SKU_MAX))
		return ATP_E_SKU;
	if (!atp_str_valid(location, ATP_LOC_MAX))
		return ATP_E_LOCATION;
	if (!bucket_ok(v->on_hand, -ATP_BUCKET_MAX) || !bucket_ok(v->held, 0) || !bucket_ok(v->reserved, 0) ||
	    !bucket_ok(v->safety_stock, 0))
		return ATP_E_OVERFLOW;
	uint64_t h = atp_position_hash(atp_sku_hash(sku), location);
	if (atp_table_find(c->table, h, sku, location) != ATP_POS_NONE)
		return ATP_E_INVAL;
	uint32_t id = atp_table_intern(c->table, h, sku, location);
	if (id == ATP_POS_NONE)
		return ATP_E_POSITIONS_FULL;
	atp_position *p = atp_table_at(c->table, id);
	p->on_hand = v->on_hand;
	p->held = v->held;
	p->reserved = v->reserved;
	p->safety_stock = v->safety_stock;
	p->version = v->version;
	return ATP_OK;
}

/* A new line (ref, pos) of a restored position, its id in *id: ATP_OK, or ATP_E_INVAL (no such position, a line twice), ATP_E_LINES_FULL. */
static int add_line(atp_core *c, atp_str ref, uint32_t pos, uint32_t *id)
{
	if (pos >= atp_table_count(c->table))
		return ATP_E_INVAL;
	uint64_t h = atp_line_hash(ref, atp_table_get(c->table, pos)->hash);
	uint32_t where;
	if (atp_lines_find_where(c->lines, h, ref, pos, &where) != ATP_LINE_NONE)
		return ATP_E_INVAL;
	*id = atp_lines_add_where(c->lines, where, h, ref, pos);
	return *id == ATP_LINE_NONE ? ATP_E_LINES_FULL : ATP_OK;
}

int atp_core_restore_line(atp_core *c, atp_str ref, uint32_t pos, const atp_line_values *v)
{
	if (!atp_str_valid(ref, ATP_REF_MAX))
		return ATP_E_REF;
	bool open = v->state == ATP_LINE_OPEN;
	if (v->state < ATP_LINE_OPEN || v->state > ATP_LINE_WITHDRAWN || v->state == ATP_LINE_PROMISED || v->requested <= 0 ||
	    v->requested > ATP_QTY_MAX || v->confirmed < 0 || v->confirmed > v->requested || v->remaining < 0 ||
	    v->remaining > v->confirmed || open != (v->remaining > 0))
		return ATP_E_INVAL;
	uint32_t id;
	int rc = add_line(c, ref, pos, &id);
	if (rc)
		return rc;
	atp_line *ln = atp_lines_at(c->lines, id);
	ln->requested = v->requested;
	ln->confirmed = v->confirmed;
	ln->remaining = v->remaining;
	ln->releasable = v->releasable;
	if (open)
		atp_lines_open(c->lines, id, v->expires_at);
	else
		atp_lines_close(c->lines, id, (enum atp_line_state)v->state, v->closed_at);
	return ATP_OK;
}

int atp_core_restore_inbound(atp_core *c, uint32_t pos, int64_t pool)
{
	if (pos >= atp_table_count(c->table))
		return ATP_E_INVAL;
	return atp_inbound_restore(c->inbound, pos, pool);
}

int atp_core_restore_supply(atp_core *c, uint32_t pos, atp_str ref, int64_t expected, uint32_t eta)
{
	return atp_inbound_restore_supply(c->inbound, pos, ref, expected, eta);
}

int atp_core_restore_promise(atp_core *c, uint32_t pos, atp_str ref, int64_t requested, bool releasable,
			     const atp_promise_view *p)
{
	if (!atp_str_valid(ref, ATP_REF_MAX))
		return ATP_E_REF;
	if (requested <= 0 || requested > ATP_QTY_MAX || p->qty != requested || p->date == 0)
		return ATP_E_INVAL;
	uint32_t id;
	int rc = add_line(c, ref, pos, &id);
	if (rc)
		return rc;
	atp_line *ln = atp_lines_at(c->lines, id);
	ln->requested = ln->confirmed = requested;
	ln->releasable = releasable;
	atp_lines_promise(c->lines, id);
	atp_promise_view v = *p;
	v.line = id;
	return atp_inbound_restore_promise(c->inbound, pos, &v);
}

void atp_core_restore_now(atp_core *c, uint64_t now)
{
	c->now = now;
}
