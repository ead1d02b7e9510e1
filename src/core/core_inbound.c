/*
 * core_inbound.c — the inbound side of applying an event (see core_state.h
 * and atp/inbound.h): SUPPLY, a RECEIPT of a supply, a RESERVE promised
 * against supply, a RELEASE of a promised line. Off the day's hot path:
 * core.c calls here only for these, after the position is written, and
 * writes back the change of reserved that the replan returns.
 */
#include "core_state.h"

#include <assert.h>

/* What a replan did goes into the result and the stats; the change of reserved back to the caller. */
static int64_t take_outcome(atp_core *c, const atp_inbound_outcome *o, atp_result *r)
{
	r->n_late = (uint16_t)(o->late < UINT16_MAX ? o->late : UINT16_MAX);
	r->n_withdrawn = (uint16_t)(o->withdrawn < UINT16_MAX ? o->withdrawn : UINT16_MAX);
	r->flags |= (o->late ? ATP_RF_LATE : 0) | (o->withdrawn ? ATP_RF_WITHDRAWN : 0);
	c->stats.promises_opened += o->opened;
	c->stats.promises_late += o->late;
	c->stats.promises_withdrawn += o->withdrawn;
	return o->reserved;
}

int64_t core_release_promised(atp_core *c, uint32_t pos, uint32_t line, atp_result *r)
{
	atp_inbound_outcome o;
	atp_inbound_release(c->inbound, c->lines, pos, line, c->now, &o);
	atp_lines_close(c->lines, line, ATP_LINE_RELEASED, c->now);
	return take_outcome(c, &o, r);
}

/* A new line confirmed in full against supply: PROMISED, its promise recorded. */
static void promise_line(atp_core *c, const atp_event *ev, uint32_t pos, const core_line_slot *slot)
{
	uint32_t id = atp_lines_add_where(c->lines, slot->where, slot->hash, ev->ref, pos);
	assert(id != ATP_LINE_NONE);
	atp_line *ln = atp_lines_at(c->lines, id);
	ln->requested = ln->confirmed = ev->qty;
	ln->releasable = (ev->flags & ATP_EVF_RELEASABLE) != 0;
	atp_lines_promise(c->lines, id);
	atp_inbound_promise(c->inbound, pos, id, ev->qty, slot->promise, ev->date);
	c->stats.promises_made++;
}

int64_t core_commit_inbound(atp_core *c, const atp_event *ev, unsigned type, uint32_t pos, const core_line_slot *slot,
			    atp_result *r)
{
	atp_inbound_outcome o;
	switch (type) {
	case ATP_EV_SUPPLY:
		if (!atp_inbound_supply(c->inbound, c->lines, pos, ev->ref, ev->qty, ev->date, c->now, &o))
			r->flags |= ATP_RF_NO_LINE;
		return take_outcome(c, &o, r);
	case ATP_EV_RECEIPT:
		r->moved = atp_inbound_receive(c->inbound, c->lines, pos, ev->ref, ev->qty, c->now, &o);
		return take_outcome(c, &o, r);
	case ATP_EV_RELEASE:
		return core_release_promised(c, pos, slot->id, r);
	default:
		assert(type == ATP_EV_RESERVE && slot->promise);
		promise_line(c, ev, pos, slot);
		return 0;
	}
}
