/*
 * sim_workload.c — the simulator's senders: three sources' events over
 * the world of sim.h (every type, in a mix; order capture sometimes sends
 * a whole order of RESERVE lines), kept in each source's history to send
 * again after a crash. Each event the router takes is logged for its
 * shard with the model's result, so that sim.c can check the completions,
 * the shards and every recovery against it. Sometimes an old seq (a
 * duplicate) or a seq past the next (a gap) is sent instead.
 */
#include "sim.h"

#include "atp/status.h"

#include <stdlib.h>

static const uint8_t type_mix[] = { ATP_EV_RECEIPT, ATP_EV_RECEIPT, ATP_EV_RECEIPT, ATP_EV_PICK, ATP_EV_PICK, ATP_EV_PICK,
				    ATP_EV_ADJUST, ATP_EV_COUNT, ATP_EV_HOLD, ATP_EV_UNHOLD, ATP_EV_TRANSFER,
				    ATP_EV_SAFETY, ATP_EV_RESERVE, ATP_EV_RESERVE, ATP_EV_RESERVE, ATP_EV_RESERVE,
				    ATP_EV_RELEASE, ATP_EV_RELEASE };

static gev generate(int src, uint64_t seq)
{
	gev g = { .src = src, .sku = (int)below(SKUS), .loc = (int)below(LOCS), .to = -1, .ref = -1 };
	atp_event *ev = &g.ev;
	ev->type = type_mix[below(sizeof(type_mix))];
	ev->event_id = seq;
	ev->seq = seq;
	do
		ev->qty = atp_prng_range(&S.g, -3, 12) * (ev->type == ATP_EV_RECEIPT ? 4 : 1);
	while (!m_qty_ok(ev->type, ev->qty));
	ev->source = STR(src_names[src]);
	ev->sku = STR(sku_names[g.sku]);
	ev->location = STR(loc_names[g.loc]);
	if (ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE || (ev->type == ATP_EV_PICK && below(3))) {
		g.ref = (int)below(REFS);
		ev->ref = STR(ref_names[g.ref]);
	}
	if (ev->type == ATP_EV_TRANSFER) {
		g.to = (int)((g.loc + 1 + below(LOCS - 1)) % LOCS);
		ev->to_location = STR(loc_names[g.to]);
	}
	if (ev->type == ATP_EV_ADJUST)
		ev->reason = STR("DAMAGE");
	if (ev->type == ATP_EV_RESERVE) {
		ev->flags = below(2) ? ATP_EVF_PARTIAL : 0;
		ev->expires_at = below(4) ? S.now + 1 + below(400) : 0;
	}
	return g;
}

/* A whole order of n RESERVE lines into src's history from seq: one ref, distinct positions, one expiry. */
static void generate_order(int src, uint64_t seq, int n)
{
	int ref = (int)below(REFS);
	uint64_t expires = below(4) ? S.now + 1 + below(400) : 0;
	for (int i = 0; i < n; i++) {
		gev g;
		bool again;
		do {
			g = generate(src, seq + (uint64_t)i);
			again = false;
			for (int j = 0; j < i; j++)
				again |= S.hist[src][seq - 1 + (uint64_t)j].sku == g.sku && S.hist[src][seq - 1 + (uint64_t)j].loc == g.loc;
		} while (again);
		g.ev.type = ATP_EV_RESERVE;
		g.ev.flags = 0;
		g.ev.expires_at = expires;
		g.ev.to_location = g.ev.reason = (atp_str){ 0 };
		g.to = -1;
		g.ev.qty = 1 + (int64_t)below(12);
		g.ref = ref;
		g.ev.ref = STR(ref_names[ref]);
		g.order = i ? -1 : n;
		S.hist[src][seq - 1 + (uint64_t)i] = g;
	}
}

/*
 * The whole order holding seq of src, from its first line (a resend may
 * resume inside one): the router takes all of it or none. Each shard of it
 * gets its mark (a move of time, for the model), then its lines, each
 * denied unless every shard's model says its part fits now.
 */
static int submit_order(int src, uint64_t seq)
{
	while (S.hist[src][seq - 1].order < 0)
		seq--;
	int n = S.hist[src][seq - 1].order;
	uint64_t last = seq + (uint64_t)n - 1;
	atp_event lines[8];
	for (int i = 0; i < n; i++)
		lines[i] = S.hist[src][seq - 1 + (uint64_t)i].ev;
	/* The router answers the lines it holds (up to the durable seq the sender resumed after) and sends the rest. */
	uint64_t from = S.accepted[src] + 1 > seq ? S.accepted[src] + 1 : seq;
	uint64_t expected;
	int rc = atp_engine_submit_order(S.e, lines, (uint32_t)n, &expected);
	if (rc == ATP_DUPLICATE) {
		S.accepted[src] = last;  /* every line was applied: the order is whole */
		S.resent_dups += (uint64_t)n;
		return ATP_OK;
	}
	if (rc != ATP_OK)
		return rc;
	S.accepted[src] = last;
	S.sent += last + 1 - from;
	uint64_t now = atp_engine_now_ms(S.e);
	sent_order *o = &S.orders[S.n_orders++ % 256];
	*o = (sent_order){ .seq = seq };
	bool whole = true;
	for (int k = 0; k < SHARDS; k++) {
		model *m = S.m[k];
		int here = 0;
		for (int i = (int)(from - seq); i < n; i++) {
			const gev *g = &S.hist[src][seq - 1 + (uint64_t)i];
			if ((int)atp_engine_shard_of(S.e, g->ev.sku) != k)
				continue;
			if (!here++) {
				model_time(m, now);
				o->shard[o->n_parts] = k;
				o->mark[o->n_parts] = S.n_log[k];
				log_rec(k, (rec){ .src = -1, .now = now });
			}
			whole = whole && !m_find_line(m, g->ref, g->sku, g->loc) && m->pos[g->sku][g->loc].exists &&
				m_atp(&m->pos[g->sku][g->loc]) >= g->ev.qty;
		}
		if (here)
			o->lines[o->n_parts++] = here;
	}
	for (int p = 0; p < o->n_parts; p++)
		for (int i = (int)(from - seq); i < n; i++) {
			const gev *g = &S.hist[src][seq - 1 + (uint64_t)i];
			int k = o->shard[p];
			if ((int)atp_engine_shard_of(S.e, g->ev.sku) != k)
				continue;
			rec r = { .src = src, .seq = g->ev.seq, .now = now, .deny = !whole };
			r.want = rec_apply(S.m[k], &r);
			o->applied[p] += r.want.status == ATP_OK;
			log_rec(k, r);
		}
	S.orders_whole += whole;
	S.orders_denied += !whole;
	say("%s seq %" PRIu64 "..%" PRIu64 ": a whole order over %d shards at %" PRIu64 ": %s", src_names[src], seq,
	    seq + (uint64_t)n - 1, o->n_parts, now, whole ? "whole" : "denied");
	return ATP_OK;
}

/* Submit a source's next event (kept in its history); once the router takes it, log it for its shard with the model's result. */
int sim_submit_next(int src)
{
	uint64_t next = S.accepted[src] + 1, expected;
	const gev *g = &S.hist[src][next - 1];
	if (g->order)
		return submit_order(src, next);
	int rc = atp_engine_submit(S.e, &g->ev, &expected);
	if (rc != ATP_OK)
		return rc;
	S.accepted[src] = next;
	S.sent++;
	int k = (int)atp_engine_shard_of(S.e, g->ev.sku);
	uint64_t now = atp_engine_now_ms(S.e);
	rec r = { .src = src, .seq = next, .now = now, .want = model_apply(S.m[k], g, now) };
	S.resent_dups += r.want.status == ATP_DUPLICATE;
	say("%s seq %" PRIu64 ": %s %s/%s %lld%s%s at %" PRIu64 " to shard %d: %s, %lld", src_names[src], next,
	    atp_event_type_name(g->ev.type), sku_names[g->sku], loc_names[g->loc], (long long)g->ev.qty, g->ref >= 0 ? " ref " : "",
	    g->ref >= 0 ? ref_names[g->ref] : "", now, k, atp_status_name(r.want.status),
	    (long long)(g->ev.type == ATP_EV_RESERVE ? r.want.confirmed : r.want.moved));
	log_rec(k, r);
	return ATP_OK;
}

/* One send of a source: mostly its next event (new, or a resend after a restart); sometimes an old seq or a gap. */
void sim_send(void)
{
	int src = (int)below(SOURCES);
	uint64_t next = S.accepted[src] + 1, expected = 0;
	uint64_t u = below(100);
	if (u < 5 && next > 1) {
		const gev *g = &S.hist[src][below(next - 1)];
		int rc = atp_engine_submit(S.e, &g->ev, &expected);
		if (rc != ATP_DUPLICATE && !(rc == ATP_E_IO && engine_down()))
			fail("%s seq %" PRIu64 " again: %s, not a duplicate", src_names[src], g->ev.seq, atp_status_name(rc));
		return;
	}
	if (u < 8) {
		gev g = generate(src, next + 1 + below(3));
		int rc = atp_engine_submit(S.e, &g.ev, &expected);
		if (!(rc == ATP_E_GAP && expected == next) && !(rc == ATP_E_IO && engine_down()))
			fail("%s seq %" PRIu64 " past %" PRIu64 ": %s, expected %" PRIu64, src_names[src], g.ev.seq, next,
			     atp_status_name(rc), expected);
		return;
	}
	if (next == S.next[src]) {
		int n = src == 2 && below(4) == 0 ? 1 + (int)below(4) : 0;  /* order capture: sometimes a whole order */
		if (S.next[src] + (uint64_t)n > S.cap[src]) {
			S.cap[src] = S.cap[src] ? 2 * S.cap[src] : 1024;
			S.hist[src] = realloc(S.hist[src], S.cap[src] * sizeof(gev));
			if (!S.hist[src])
				fail("out of memory");
		}
		if (n)
			generate_order(src, next, n);
		else
			S.hist[src][next - 1] = generate(src, next);
		S.next[src] += n ? (uint64_t)n : 1;
	}
	int rc = sim_submit_next(src);
	if (rc != ATP_OK && !(rc == ATP_E_IO && engine_down()))
		fail("%s seq %" PRIu64 ": %s", src_names[src], next, atp_status_name(rc));
}
