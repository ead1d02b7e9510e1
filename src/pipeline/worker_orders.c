/*
 * worker_orders.c — a shard worker's part of a whole order (see
 * atp_engine_submit_order in atp/engine.h and order_slot in
 * engine_internal.h): gather this worker's frames of the order, judge its
 * parts, meet the other workers in the order's slot, then log and apply
 * each part whole or denied, every part in one write of its shard. The
 * worker's thread only (under the simulator, the router's).
 */
#define _GNU_SOURCE
#include "engine_internal.h"

#include "atp/crc32c.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Bring s to time now (a logged tick first, as the router's would be, so that replay repeats the expiries). */
static void advance_time(worker *w, shard *s, uint64_t now)
{
	if (now <= atp_core_now_ms(s->core))
		return;
	uint8_t tick[16];
	size_t n = atp_record_encode_tick(now, tick);
	if (w->deltas) {
		worker_tick_logged(w, s, tick, n, atp_crc32c(0, tick, n), now);
		return;
	}
	worker_append(w, s, tick, n, atp_crc32c(0, tick, n));
	atp_record rec = { .kind = ATP_REC_TICK, .now = now };
	atp_engine_apply_record(s->core, &rec, NULL, NULL, NULL);
}

/* The frames of this worker's parts of one order, as the router wrote them: per part a mark, then its lines. */
typedef struct order_frames {
	uint32_t n;            /* frames */
	uint32_t lines;
	size_t bytes;
	frame_header h[ATP_ORDER_LINES_MAX + ATP_ORDER_PARTS_MAX];
	const uint8_t *p[ATP_ORDER_LINES_MAX + ATP_ORDER_PARTS_MAX];
	atp_record rec[ATP_ORDER_LINES_MAX + ATP_ORDER_PARTS_MAX];
} order_frames;

/* Gather them from buf (the mark of the first part first); false while some are not in the ring yet. */
static bool order_gather(worker *w, const uint8_t *buf, size_t have, order_frames *f)
{
	size_t off = 0;
	uint32_t parts = 0, mine = 0, want = 0;
	f->n = f->lines = 0;
	do {
		if (have - off < sizeof(frame_header))
			return false;
		frame_header *h = &f->h[f->n];
		memcpy(h, buf + off, sizeof(*h));
		if (have - off < sizeof(*h) + h->len)
			return false;
		const uint8_t *p = buf + off + sizeof(*h);
		atp_record *rec = &f->rec[f->n];
		int decoded = atp_record_decode(p, h->len, rec);
		/* The router wrote them, in this shape (engine.c): anything else is memory gone wrong, not input. */
		assert(decoded == 0 && worker_shard(w, h->shard));
		(void)decoded;
		if (want == 0) {
			assert(rec->kind == ATP_REC_ORDER && (f->n == 0 || rec->order.order == f->rec[0].order.order));
			if (f->n == 0)
				for (uint32_t i = 0; i < rec->order.n_parts; i++)
					mine += worker_shard(w, rec->order.parts[i]) != NULL;
			want = rec->order.n_lines;
			parts++;
		} else {
			assert(rec->kind == ATP_REC_EVENT && rec->ev.type == ATP_EV_RESERVE);
			want--;
			f->lines++;
		}
		f->p[f->n++] = p;
		off += sizeof(*h) + h->len;
	} while (want || parts < mine);
	f->bytes = off;
	return true;
}

/* Every part of f judged against its shard now: whether all its lines fit. */
static bool order_judge(worker *w, const order_frames *f)
{
	bool fits = true;
	for (uint32_t i = 0; i < f->n && !worker_failed(w); i += 1 + f->rec[i].order.n_lines) {
		shard *s = worker_shard(w, f->h[i].shard);
		advance_time(w, s, f->rec[i].now);
		atp_event lines[ATP_ORDER_LINES_MAX];
		uint32_t n = f->rec[i].order.n_lines;
		for (uint32_t k = 0; k < n; k++)
			lines[k] = f->rec[i + 1 + k].ev;
		fits = fits && atp_core_reserve_fits(s->core, lines, n);
	}
	return fits;
}

/* Each part of f logged and applied, its lines confirmed in full (whole) or denied. */
static void order_apply(worker *w, order_frames *f, bool whole)
{
	for (uint32_t i = 0; i < f->n && !worker_failed(w); i++) {
		shard *s = worker_shard(w, f->h[i].shard);
		completion c = { .rsrc = f->h[i].rsrc, .status = ATP_OK };
		if (f->rec[i].kind == ATP_REC_ORDER) {
			/*
			 * The mark counts the lines logged after it: a resend's lines
			 * this shard already applied are duplicates, not logged (the
			 * mark still says the shard holds its part: recovery asks).
			 */
			atp_order_mark *m = &f->rec[i].order;
			uint16_t logged = 0;
			for (uint32_t k = 1; k <= m->n_lines; k++)
				logged += f->rec[i + k].ev.seq > atp_core_hwm(s->core, f->rec[i + k].ev.source);
			uint8_t mark[ATP_RECORD_MAX];
			const uint8_t *p = f->p[i];
			uint32_t crc = f->h[i].crc;
			if (logged != m->n_lines) {
				m->n_lines = logged;
				size_t len = atp_record_encode_order(m, f->rec[i].now, mark);
				assert(len == f->h[i].len);
				p = mark;
				crc = atp_crc32c(0, mark, len);
			}
			worker_append(w, s, p, f->h[i].len, crc);
			assert(atp_core_now_ms(s->core) >= f->rec[i].now);  /* order_judge() brought it there: nothing lapses */
			c.status = atp_engine_apply_record(s->core, &f->rec[i], NULL, NULL, NULL);
			if (c.status != ATP_OK)
				worker_fail(w, -ENOSPC, "shard %u: no room for the order mark's source", s->index);
			w->pending[w->n_pending++] = c;
			continue;
		}
		const uint8_t *p = f->p[i];
		uint32_t crc = f->h[i].crc;
		uint8_t denied[ATP_RECORD_MAX];
		atp_event *ev = &f->rec[i].ev;
		if (!whole) {
			memcpy(denied, p, f->h[i].len);
			denied[2] |= ATP_EVF_DENY;  /* the flags byte (record.c) */
			p = denied;
			crc = atp_crc32c(0, denied, f->h[i].len);
			ev->flags |= ATP_EVF_DENY;
		}
		atp_result res;
		atp_core_apply_batch_hashed_at(s->core, ev, &f->h[i].hash, &f->rec[i].now, 1, &res);
		/*
		 * Judged with nothing applied since: a whole order's new lines fit.
		 * (A resend the shard already applied is a duplicate, here as
		 * everywhere: then every shard of the order has it.)
		 */
		assert(res.status == ATP_DUPLICATE || (res.status == ATP_OK && (!whole || res.confirmed == ev->qty)));
		c.seq = ev->seq;
		c.status = res.status;
		c.flags = res.flags;
		c.qty = res.confirmed;
		c.date = res.promised_date;
		worker_settle(w, s, p, f->h[i].len, crc, c, f->rec[i].now, false, &res);
	}
}

/*
 * The order whose first frame starts buf: the bytes of its frames once its
 * parts here are applied, or 0 while it cannot be yet (frames still
 * coming, no room in this group, other workers still judging). Judging
 * happens once; the order then stays at the head of the ring, so nothing
 * after it is applied before it.
 */
size_t worker_take_order(worker *w, const uint8_t *buf, size_t have)
{
	static _Thread_local order_frames f;
	if (!order_gather(w, buf, have, &f))
		return 0;
	const atp_order_mark *m = &f.rec[0].order;
	uint32_t mine = 0;
	for (uint32_t i = 0; i < f.n; i++)
		mine += f.rec[i].kind == ATP_REC_ORDER;
	order_slot *slot = mine < m->n_parts ? &w->orders[m->order % ORDER_SLOTS] : NULL;
	assert(!slot || slot->order == m->order);  /* the router filled it before the frames went out */
	if (w->n_pending + f.n > GROUP_MAX || (slot && w->n_pending_orders == GROUP_ORDERS) ||
	    (w->deltas && atp_spsc_ring_stage_room(w->deltas) < f.lines))
		return 0;  /* after the group in flight */
	if (w->judged != m->order) {
		w->judged = m->order;
		w->judged_fits = order_judge(w, &f);
		if (slot) {
			if (!w->judged_fits)
				atomic_fetch_add(&slot->refused, 1);
			atomic_fetch_add(&slot->arrived, 1);
		}
		worker_order_step(w, ORDER_JUDGED);
	}
	if (slot && atomic_load(&slot->arrived) < slot->workers)
		return 0;
	bool whole = slot ? atomic_load(&slot->refused) == 0 : w->judged_fits;
	/* Each part in one write of its shard, so that a group holds all of it (see gate_open). */
	size_t lens[ATP_ORDER_LINES_MAX + ATP_ORDER_PARTS_MAX];
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fits = true;
		for (uint32_t i = 0; i < f.n; i += 1 + f.rec[i].order.n_lines) {
			for (uint32_t k = 0; k <= f.rec[i].order.n_lines; k++)
				lens[k] = f.h[i + k].len;
			fits = fits && atp_wal_fits(worker_shard(w, f.h[i].shard)->wal, lens, 1 + f.rec[i].order.n_lines);
		}
		if (fits)
			break;
		if (attempt) {
			worker_fail(w, -EMSGSIZE, "order %" PRIu64 ": a part does not fit in one WAL write (wal buffer too small)", m->order);
			return 0;
		}
		worker_drain(w);
		if (worker_failed(w))
			return 0;
	}
	order_apply(w, &f, whole);
	if (slot)
		w->pending_orders[w->n_pending_orders++] = slot;
	w->judged = 0;
	worker_order_step(w, ORDER_APPLIED);
	return f.bytes;
}
