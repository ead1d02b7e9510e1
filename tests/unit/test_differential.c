/*
 * Differential test: long random event sequences, with duplicates, gaps,
 * retries, bad input and expiry, applied to the core and to a small model
 * written straight from the spec; every result and every position compared.
 * A failure names the seed, which replays the same sequence.
 */
#include "../../tools/lib/prng.h"
#include "helpers.h"
#include "../model.h"

#include <criterion/criterion.h>
#include <stdio.h>

enum { SKUS = 4, LOCS = 3, REFS = 12, SOURCES = 2 };
static const char *const sku_names[SKUS] = { "A", "B", "C", "D" };
static const char *const loc_names[LOCS] = { "DC1", "DC2", "ST3" };
static const char *const src_names[SOURCES] = { "wms", "oms" };
static const char *const ref_names[REFS] = { "R0", "R1", "R2", "R3", "R4", "R5",
					     "R6", "R7", "R8", "R9", "R10", "R11" };

static void compare_positions(const atp_core *c, const model *m, uint64_t seed, int step)
{
	for (int s = 0; s < SKUS; s++) {
		for (int l = 0; l < LOCS; l++) {
			const atp_position *p = pos_of(c, sku_names[s], loc_names[l]);
			const mpos *q = &m->pos[s][l];
			cr_assert_eq(p != NULL, q->exists, "seed %llu step %d: %s/%s existence",
				     (unsigned long long)seed, step, sku_names[s], loc_names[l]);
			if (!p)
				continue;
			cr_assert(p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved &&
					  p->safety_stock == q->safety,
				  "seed %llu step %d: %s/%s core (%lld,%lld,%lld,%lld) model (%lld,%lld,%lld,%lld)",
				  (unsigned long long)seed, step, sku_names[s], loc_names[l], (long long)p->on_hand,
				  (long long)p->held, (long long)p->reserved, (long long)p->safety_stock,
				  (long long)q->on_hand, (long long)q->held, (long long)q->reserved,
				  (long long)q->safety);
		}
	}
}

static const uint8_t type_mix[] = { ATP_EV_RECEIPT, ATP_EV_RECEIPT, ATP_EV_PICK, ATP_EV_PICK, ATP_EV_PICK,
				    ATP_EV_ADJUST, ATP_EV_COUNT, ATP_EV_HOLD, ATP_EV_UNHOLD, ATP_EV_TRANSFER,
				    ATP_EV_SAFETY, ATP_EV_RESERVE, ATP_EV_RESERVE, ATP_EV_RESERVE,
				    ATP_EV_RESERVE, ATP_EV_RELEASE, ATP_EV_RELEASE };

typedef struct gen_event {
	atp_event ev;
	int src, sku, loc, to, ref;
} gen_event;

static gen_event generate(atp_prng *g, uint64_t next_seq[SOURCES], uint64_t now, uint64_t *event_id)
{
	gen_event e = { .src = (int)atp_prng_below(g, SOURCES), .sku = (int)atp_prng_below(g, SKUS),
			.loc = (int)atp_prng_below(g, LOCS), .to = -1, .ref = -1 };
	atp_event *ev = &e.ev;
	ev->type = type_mix[atp_prng_below(g, sizeof(type_mix))];
	ev->event_id = ++*event_id;
	/* Mostly the next seq; sometimes a resend of an old one, sometimes a gap. */
	uint64_t u = atp_prng_below(g, 100);
	uint64_t next = next_seq[e.src];
	ev->seq = u < 8 && next > 1 ? 1 + atp_prng_below(g, next - 1) : u < 11 ? next + 1 + atp_prng_below(g, 3) : next;
	ev->qty = atp_prng_range(g, -1, 12);
	if (ev->type == ATP_EV_RECEIPT)
		ev->qty *= 3;
	ev->source = S(src_names[e.src]);
	ev->sku = S(sku_names[e.sku]);
	ev->location = S(loc_names[e.loc]);
	bool wants_ref = ev->type == ATP_EV_RESERVE || ev->type == ATP_EV_RELEASE ||
			 (ev->type == ATP_EV_PICK && atp_prng_below(g, 3));
	if (wants_ref && atp_prng_below(g, 50)) {
		e.ref = (int)atp_prng_below(g, REFS);
		ev->ref = S(ref_names[e.ref]);
	}
	if (ev->type == ATP_EV_TRANSFER) {
		e.to = (int)atp_prng_below(g, LOCS);
		ev->to_location = S(loc_names[e.to]);
	}
	if (ev->type == ATP_EV_ADJUST)
		ev->reason = S("DAMAGE");
	if (ev->type == ATP_EV_RESERVE) {
		ev->flags = atp_prng_below(g, 2) ? ATP_EVF_PARTIAL : 0;
		ev->expires_at = atp_prng_below(g, 4) ? now + 1 + atp_prng_below(g, 400) : 0;
	}
	return e;
}

static void run(uint64_t seed, int steps, bool batched)
{
	atp_core *c = small_core(SKUS * LOCS, M_MAX_LINES, SOURCES);
	model *m = calloc(1, sizeof(*m));
	atp_prng g;
	atp_prng_seed(&g, seed);
	uint64_t next_seq[SOURCES] = { 1, 1 }, event_id = 0, now = 0;
	enum { BATCH = 16 };
	gen_event batch[BATCH];
	mresult want[BATCH];
	atp_event evs[BATCH];
	atp_result res[BATCH];
	atp_delta deltas[8];
	size_t nd;

	for (int step = 0; step < steps; step += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			batch[i] = generate(&g, next_seq, now, &event_id);
			evs[i] = batch[i].ev;
			/* The generator learns the next seq from the model, as a sender from its acks. */
			gen_event *e = &batch[i];
			want[i] = m_apply(m, e->ev.type, e->src, e->ev.seq, e->sku, e->loc, e->to, e->ev.qty,
					     e->ref, e->ev.flags & ATP_EVF_PARTIAL, e->ev.expires_at);
			if (!batched)
				atp_core_apply(c, &evs[i], &res[i]);
			next_seq[e->src] = m->hwm[e->src] + 1;
		}
		if (batched)
			atp_core_apply_batch(c, evs, BATCH, res);
		for (int i = 0; i < BATCH; i++) {
			cr_assert_eq(res[i].status, want[i].status, "seed %llu step %d: %s status %s, model %s",
				     (unsigned long long)seed, step + i, atp_event_type_name(evs[i].type),
				     atp_status_name(res[i].status), atp_status_name(want[i].status));
			if (res[i].status == ATP_DUPLICATE || res[i].status == ATP_E_GAP)
				cr_assert_eq(res[i].expected_seq, want[i].expected_seq, "seed %llu step %d: expected seq",
					     (unsigned long long)seed, step + i);
			if (res[i].status != ATP_OK)
				continue;
			cr_assert_eq(res[i].expected_seq, want[i].expected_seq, "seed %llu step %d: expected seq",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].requested, want[i].requested, "seed %llu step %d: requested",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].confirmed, want[i].confirmed, "seed %llu step %d: confirmed", (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].moved, want[i].moved, "seed %llu step %d: moved",
				     (unsigned long long)seed, step + i);
			cr_assert_eq(res[i].flags & M_FLAGS, want[i].exceptions | want[i].outcome,
				     "seed %llu step %d: %s flags %#x, model %#x", (unsigned long long)seed, step + i,
				     atp_event_type_name(evs[i].type), res[i].flags, want[i].exceptions | want[i].outcome);
			cr_assert_eq(res[i].n_deltas, (uint32_t)want[i].n_changed_atp, "seed %llu step %d: deltas",
				     (unsigned long long)seed, step + i);
			const atp_delta *d = &res[i].deltas[0];
			if (res[i].n_deltas && want[i].old_atp != want[i].new_atp) { /* the event's own position first */
				cr_assert(d->old_atp == want[i].old_atp && d->new_atp == want[i].new_atp && d->seq == evs[i].seq &&
						  atp_str_cmp(d->sku, evs[i].sku) == 0 && atp_str_cmp(d->location, evs[i].location) == 0,
					  "seed %llu step %d: delta %lld -> %lld, model %lld -> %lld", (unsigned long long)seed,
					  step + i, (long long)d->old_atp, (long long)d->new_atp, (long long)want[i].old_atp,
					  (long long)want[i].new_atp);
			}
		}
		compare_positions(c, m, seed, step);
		now += atp_prng_below(&g, 60);
		while (atp_core_expire(c, now, deltas, 8, &nd) == 8)
			;
		m_expire(m, now);
		compare_positions(c, m, seed, step);
	}
	free(m);
	atp_core_destroy(c);
}

Test(differential, core_matches_the_model_one_by_one)
{
	for (uint64_t seed = 1; seed <= 400; seed++)
		run(seed, 3000, false);
}

Test(differential, core_matches_the_model_in_batches)
{
	for (uint64_t seed = 1001; seed <= 1400; seed++)
		run(seed, 3000, true);
}
