/*
 * core_expiry.c — reservation lines that lapse (see atp/core.h): a line
 * whose TTL has passed gives its remaining units back to the position's
 * ATP, as of the core's clock, which only moves forward. The deltas of a
 * batch's expiries go to the expiry sink, before the event at whose time
 * they fell due; atp_core_expire() hands them to its caller.
 */
#include "atp/core.h"

#include "core_state.h"

/* Line id lapses: closed as expired, its units back in its position's ATP; a delta into out when the ATP moved. */
static void expire_line(atp_core *c, uint32_t id, atp_delta *out, size_t *n_deltas)
{
	atp_line *ln = atp_lines_at(c->lines, id);
	uint32_t pos = ln->pos;
	int64_t remaining = ln->remaining;
	c->stats.lines_expired++;
	c->stats.units_expired += (uint64_t)remaining;
	ln->remaining = 0;
	atp_lines_close(c->lines, id, ATP_LINE_EXPIRED, c->now);
	if (!remaining)
		return;
	atp_position *p = atp_table_at(c->table, pos);
	int64_t old_atp = atp_position_atp(p);
	atp_position_store(p, p->on_hand, p->held, p->reserved - remaining, p->safety_stock);
	atp_result r = { .n_deltas = 0 };
	core_emit_change(c, pos, old_atp, atp_position_atp(p), ATP_SOURCE_NONE, 0, &r);
	if (r.n_deltas)
		out[(*n_deltas)++] = r.deltas[0];
}

size_t atp_core_expire(atp_core *c, uint64_t now, atp_delta *out, size_t max_lines, size_t *n_deltas)
{
	size_t n = 0;
	*n_deltas = 0;
	if (now > c->now)
		c->now = now;
	for (; n < max_lines; n++) {
		uint32_t id = atp_lines_due(c->lines, c->now);
		if (id == ATP_LINE_NONE)
			break;
		expire_line(c, id, out, n_deltas);
	}
	if (c->now > c->retention)
		c->stats.lines_purged += atp_lines_purge(c->lines, c->now - c->retention);
	return n;
}

bool atp_core_due(atp_core *c, uint64_t now)
{
	return atp_lines_due(c->lines, now) != ATP_LINE_NONE;
}

void core_expire_until(atp_core *c, uint64_t now, size_t index)
{
	atp_delta d[64];
	size_t nd, n;
	do {
		n = atp_core_expire(c, now, d, 64, &nd);
		if (nd && c->expiry_sink)
			c->expiry_sink(c->expiry_ctx, index, d, nd);
	} while (n == 64);
}

void atp_core_set_expiry_sink(atp_core *c, atp_expiry_sink fn, void *ctx)
{
	c->expiry_sink = fn;
	c->expiry_ctx = ctx;
}
