/*
 * engine.c — the router side of the engine (see atp/engine.h): opening
 * and closing (the data directory is engine_dir.c's, recovery
 * engine_recovery.c's), per-source sequencing, staging records into the
 * workers' rings, turning completions into durable seqs, and the reads.
 */
#define _GNU_SOURCE
#include "engine_router.h"
#include "atp/log.h"
#include "atp/crc32c.h"
#include "atp/snapshot.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Seqs of one source that may be accepted but not yet durable. */
#define WINDOW (1u << 20)
#define STAGE_BYTES (64u << 10)
#define STAGE_PUSH (16u << 10)
#define SOURCES_EVERY_NS 200000000u

atp_engine_config atp_engine_config_default(void)
{
	atp_core_config core = atp_core_config_default();
	core.sparse_seq = true;
	return (atp_engine_config){
		.shards = 1,
		.workers = 1,
		.first_cpu = 1,
		.router_cpu = 0,
		.core = core,
		.wal = atp_wal_config_default(),
		.snapshot_wal_bytes = 256u << 20,
		.ring_bytes = 4u << 20,
		.router_commit_gap_ns = 2000000,
		.notify_fd = -1,
	};
}

/* ---- open and close ---- */

static void destroy(atp_engine *e)
{
	for (uint32_t i = 0; e->workers && i < e->n_workers; i++) {
		worker *w = &e->workers[i];
		worker_join(w);
		atp_spsc_ring_destroy(w->in);
		atp_spsc_ring_destroy(w->out);
		atp_spsc_ring_destroy(w->deltas);
		free(w->shards);
		free(w->pending);
		free(w->flight);
		pthread_mutex_destroy(&w->stats_lock);
	}
	for (uint32_t i = 0; e->shards && i < e->n_shards; i++) {
		atp_wal_close(e->shards[i].wal);
		atp_core_destroy(e->shards[i].core);
	}
	for (uint32_t i = 0; e->stages && i < e->n_workers; i++)
		free(e->stages[i].buf);
	for (uint32_t i = 0; e->rs && e->sources && i < atp_sources_capacity(e->sources); i++)
		free(e->rs[i].done);
	free(e->rs);
	atp_sources_destroy(e->sources);
	free(e->stages);
	free(e->shard_now);
	free(e->workers);
	free(e->shards);
	free(e->orders);
	pipe_dir_unlock(e);
	free(e);
}

static int start_workers(atp_engine *e, char *err, size_t errlen)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	for (uint32_t i = 0; i < e->n_workers; i++) {
		worker *w = &e->workers[i];
		w->engine = e;
		w->index = i;
		w->cpu = e->cfg.first_cpu < 0 ? -1 : (int)((e->cfg.first_cpu + i) % (cpus > 0 ? cpus : 1));
		w->snapshot_bound = e->cfg.snapshot_wal_bytes;
		w->wal_retention_ms = e->cfg.wal_retention_ms;
		w->notify_fd = e->cfg.notify_fd;
		w->shards_total = e->n_shards;
		w->workers_total = e->n_workers;
		w->peers = e->workers;
		w->io = e->cfg.io;
		w->orders = e->orders;
		pthread_mutex_init(&w->stats_lock, NULL);
		w->in = atp_spsc_ring_create_mirrored(e->cfg.ring_bytes, 1);
		w->out = atp_spsc_ring_create(GROUP_MAX * 2, sizeof(completion));
		if (e->cfg.on_delta && !(w->deltas = atp_spsc_ring_create(DELTA_RING, sizeof(atp_engine_delta)))) {
			atp_errf(err, errlen, "out of memory for worker %u's deltas", i);
			return -1;
		}
		w->shards = calloc(e->n_shards, sizeof(shard *));
		w->pending = malloc(GROUP_MAX * sizeof(completion));
		w->flight = malloc(GROUP_MAX * sizeof(completion));
		e->stages[i].buf = malloc(STAGE_BYTES);
		if (!w->in || !w->out || !w->shards || !w->pending || !w->flight || !e->stages[i].buf) {
			atp_errf(err, errlen, "out of memory for worker %u", i);
			return -1;
		}
		for (uint32_t s = i; s < e->n_shards; s += e->n_workers)
			w->shards[w->n_shards++] = &e->shards[s];
		int rc = worker_start(w);
		if (rc < 0) {
			atp_errf(err, errlen, "worker %u: %s", i, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

atp_engine *atp_engine_open(const char *dir, const atp_engine_config *cfg, char *err, size_t errlen)
{
	if (cfg->shards < 1 || cfg->shards > ATP_ENGINE_SHARDS_MAX || cfg->workers < 1 ||
	    cfg->workers > ATP_ENGINE_WORKERS_MAX || cfg->ring_bytes < (64u << 10) ||
	    (cfg->ring_bytes & (cfg->ring_bytes - 1))) {
		atp_errf(err, errlen, "bad engine configuration");
		return NULL;
	}
	atp_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	e->lock_fd = -1;
	e->last_source = ATP_SOURCE_NONE;
	e->cfg = *cfg;
	e->cfg.core.sparse_seq = true;
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	uint64_t t0 = pipe_mono_ns();
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST)) {
		atp_errf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (pipe_dir_lock(e, err, errlen) < 0 || pipe_dir_shards(dir, cfg->shards, &e->n_shards, err, errlen) < 0 ||
	    pipe_dir_identity(dir, e->identity, err, errlen) < 0)
		goto fail;
	e->n_workers = cfg->workers < e->n_shards ? cfg->workers : e->n_shards;
	e->shards = calloc(e->n_shards, sizeof(shard));
	e->workers = aligned_alloc(alignof(worker), e->n_workers * sizeof(worker));  /* the doorbells on their lines */
	if (e->workers) {
		memset(e->workers, 0, e->n_workers * sizeof(worker));
		for (uint32_t i = 0; i < e->n_workers; i++)
			e->workers[i].bell_fd = -1;
	}
	e->stages = calloc(e->n_workers, sizeof(stage));
	e->shard_now = calloc(e->n_shards, sizeof(uint64_t));
	e->sources = atp_sources_create(cfg->core.max_sources);
	e->rs = calloc(cfg->core.max_sources, sizeof(rsource));
	e->orders = aligned_alloc(alignof(order_slot), ORDER_SLOTS * sizeof(order_slot));
	if (e->orders)
		memset(e->orders, 0, ORDER_SLOTS * sizeof(order_slot));
	if (!e->shards || !e->workers || !e->stages || !e->shard_now || !e->sources || !e->rs || !e->orders) {
		atp_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (pipe_dir_read_sources(e, err, errlen) < 0)
		goto fail;
	if (pipe_recover(e, err, errlen) < 0 || pipe_resume_internal_sources(e, err, errlen) < 0)
		goto fail;
	for (uint32_t i = 0; i < e->n_shards; i++) {
		uint64_t hwm = atp_core_order_hwm(e->shards[i].core);
		e->order_next = hwm >= e->order_next ? hwm + 1 : e->order_next;
	}
	if (!e->order_next)
		e->order_next = 1;
	e->recovery.recovery_seconds = (pipe_mono_ns() - t0) / 1e9;
	if (start_workers(e, err, errlen) < 0)
		goto fail;
	if (cfg->router_cpu >= 0)
		pipe_pin_thread(cfg->router_cpu, "the router");
	atp_log(ATP_LOG_INFO, "%s open: %u shards on %u workers, recovered in %.3f s", dir, e->n_shards,
		e->n_workers, e->recovery.recovery_seconds);
	return e;
fail:
	destroy(e);
	return NULL;
}

/* ---- routing ---- */

static int engine_failed(atp_engine *e)
{
	if (e->failed)
		return e->failed;
	for (uint32_t i = 0; i < e->n_workers; i++)
		if (atomic_load(&e->workers[i].failed)) {
			snprintf(e->error, sizeof(e->error), "%s", e->workers[i].error);
			return e->failed = ATP_E_IO;
		}
	return 0;
}

static void complete(atp_engine *e, const completion *c)
{
	e->completed++;
	if (c->rsrc == DONE_TICK)
		return;
	if (c->rsrc == DONE_SNAPSHOT) {
		e->snap_acks++;
		return;
	}
	rsource *r = &e->rs[c->rsrc];
	if (c->seq > r->durable)
		r->done[c->seq % WINDOW / 64] |= 1ull << (c->seq % 64);
	while (r->done[(r->durable + 1) % WINDOW / 64] & (1ull << ((r->durable + 1) % 64))) {
		r->durable++;
		r->done[r->durable % WINDOW / 64] &= ~(1ull << (r->durable % 64));
	}
	e->sources_dirty = true;
	if (e->cfg.on_done) {
		atp_engine_done d = { atp_sources_get(e->sources, c->rsrc)->name, c->seq, c->status, c->flags, c->qty,
				      c->date };
		e->cfg.on_done(e->cfg.ctx, &d);
	}
}

/* A worker's published deltas to on_delta, where they lie in the ring (taken before its completions, which they precede). */
static void collect_deltas(atp_engine *e, worker *w)
{
	const void *d;
	uint32_t k;
	while ((k = atp_spsc_ring_peek(w->deltas, &d)) > 0) {
		k = k < DELTA_CHUNK ? k : DELTA_CHUNK;
		e->cfg.on_delta(e->cfg.delta_ctx, d, k);
		atp_spsc_ring_consume(w->deltas, k);
	}
}

size_t pipe_collect(atp_engine *e)
{
	completion c[256];
	size_t total = 0;
	for (uint32_t i = 0; i < e->n_workers; i++) {
		uint32_t k;
		if (e->workers[i].deltas)
			collect_deltas(e, &e->workers[i]);
		while ((k = atp_spsc_ring_pop(e->workers[i].out, c, 256)) > 0) {
			/* The deltas published before these completions are visible now: they go first. */
			if (e->workers[i].deltas)
				collect_deltas(e, &e->workers[i]);
			for (uint32_t j = 0; j < k; j++)
				complete(e, &c[j]);
			total += k;
		}
	}
	if (e->sources_dirty && pipe_router_ns(e) - e->sources_written_ns > SOURCES_EVERY_NS)
		pipe_dir_write_sources(e);
	return total;
}

/* The router waits for a worker: in the simulator, by turning them. */
static void wait_workers(atp_engine *e, unsigned *round)
{
	if (e->cfg.io)
		atp_engine_turn(e);
	else
		pipe_backoff(round);
}

bool atp_engine_turn(atp_engine *e)
{
	assert(e->cfg.io);
	bool progress = false;
	for (uint32_t i = 0; i < e->n_workers; i++)
		progress |= worker_turn(&e->workers[i]);
	return progress;
}

void atp_engine_io_done(atp_engine *e, uint32_t w, uint32_t slot, int write_res, int fsync_res)
{
	assert(w < e->n_workers);
	worker_io_done(&e->workers[w], slot, write_res, fsync_res);
}

/* Push worker i's staged frames into its ring, collecting completions while it is full. */
static int push_stage(atp_engine *e, uint32_t i)
{
	stage *st = &e->stages[i];
	unsigned round = 0;
	if (!st->len)
		return 0;
	while (!atp_spsc_ring_push_all(e->workers[i].in, st->buf, st->len)) {
		if (engine_failed(e))
			return ATP_E_IO;
		e->router_waits += round == 0;
		worker_ring(&e->workers[i]);
		/*
		 * Worker i may be waiting for another at a whole order whose frames
		 * for that other are still staged here: they go first.
		 */
		for (uint32_t k = 0; k < e->n_workers; k++)
			if (k != i && e->stages[k].len &&
			    atp_spsc_ring_push_all(e->workers[k].in, e->stages[k].buf, e->stages[k].len)) {
				worker_ring(&e->workers[k]);
				e->stages[k].len = 0;
			}
		if (!pipe_collect(e))
			wait_workers(e, &round);
	}
	worker_ring(&e->workers[i]);
	st->len = 0;
	return 0;
}

/* Where the next record for to_shard goes, in its worker's stage, with room for the largest; NULL on failure. */
static uint8_t *stage_reserve(atp_engine *e, uint32_t to_shard)
{
	uint32_t w = to_shard % e->n_workers;
	stage *st = &e->stages[w];
	if (st->len + sizeof(frame_header) + ATP_RECORD_MAX > STAGE_BYTES && push_stage(e, w) < 0)
		return NULL;
	return st->buf + st->len + sizeof(frame_header);
}

/*
 * The len bytes written at stage_reserve()'s pointer become a frame (records
 * are encoded in place: no copy), with what the worker would otherwise
 * compute on its own thread: the record's checksum and the event's hashes.
 */
static int stage_commit(atp_engine *e, uint32_t to_shard, uint32_t rsrc, size_t len, const atp_event_hash *hash)
{
	uint32_t w = to_shard % e->n_workers;
	stage *st = &e->stages[w];
	const uint8_t *rec = st->buf + st->len + sizeof(frame_header);
	frame_header h = { .len = (uint16_t)len, .shard = (uint8_t)to_shard, .rsrc = rsrc, .crc = atp_crc32c(0, rec, len) };
	if (hash)
		h.hash = *hash;
	memcpy(st->buf + st->len, &h, sizeof(h));
	st->len += (uint32_t)(sizeof(h) + len);
	e->submitted++;
	if (st->len >= STAGE_PUSH)
		return push_stage(e, w);
	return 0;
}

/* Frames a router commit takes at most: a few events, not a batch (the loop waits for its fdatasync). */
#define LEND_BYTES 2048u

/*
 * Push worker i's staged frames; if they are few, the worker sleeps and
 * its last group was released router_commit_gap_ns ago or more (a
 * trickle), apply and commit them here instead of ringing it
 * (worker_turn_lent). One event then costs no doorbell and no wake-up of
 * this thread by the worker's eventfd: on a 2-vCPU VM those two wake-ups
 * were most of its CPU. The caller waits for the fdatasync meanwhile,
 * which the gap bounds to a fraction of its time.
 */
static int push_or_commit(atp_engine *e, uint32_t i)
{
	stage *st = &e->stages[i];
	worker *w = &e->workers[i];
	uint32_t len = st->len;
	unsigned asleep = WORKER_ASLEEP;
	if (!e->cfg.router_commit_gap_ns || e->cfg.io || !len || len > LEND_BYTES ||
	    atomic_load_explicit(&w->asleep, memory_order_relaxed) != WORKER_ASLEEP ||
	    !atp_spsc_ring_push_all(w->in, st->buf, len))
		return push_stage(e, i);
	st->len = 0;
	bool ring = true;
	if (atomic_compare_exchange_strong_explicit(&w->asleep, &asleep, WORKER_LENT, memory_order_acquire,
						    memory_order_relaxed)) {
		bool done = worker_turn_lent(w, len, e->cfg.router_commit_gap_ns);
		e->router_commits += done;
		ring = !done || w->snap_owed || w->held;  /* read while it is the router's */
		atomic_store_explicit(&w->asleep, WORKER_ASLEEP, memory_order_release);
	}
	if (ring || atp_spsc_ring_count(w->in))
		worker_ring(w);
	return 0;
}

static int flush_stages(atp_engine *e)
{
	for (uint32_t i = 0; i < e->n_workers; i++)
		if (push_stage(e, i) < 0)
			return ATP_E_IO;
	return 0;
}

bool atp_engine_can_take(const atp_engine *e, uint32_t events)
{
	uint64_t need = (uint64_t)events * (sizeof(frame_header) + ATP_RECORD_MAX);
	for (uint32_t i = 0; i < e->n_workers; i++) {
		const atp_spsc_ring *in = e->workers[i].in;
		if ((uint64_t)atp_spsc_ring_capacity(in) - atp_spsc_ring_count(in) < e->stages[i].len + need)
			return false;
	}
	return true;
}

uint32_t atp_engine_shard_of(const atp_engine *e, atp_str sku)
{
	return (uint32_t)(atp_sku_hash(sku) % e->n_shards);
}

static int submit(atp_engine *e, const atp_event *ev, uint32_t s, const atp_event_hash *hash, uint64_t *expected);

int atp_engine_submit(atp_engine *e, const atp_event *ev, uint64_t *expected)
{
	if (atp_event_releases_all(ev))
		return ATP_E_SKU;  /* it belongs to every shard: atp_engine_submit_to() each */
	atp_event_hash hash;
	atp_core_hash_event(ev, &hash);  /* its SKU's hash picks the shard (as atp_engine_shard_of) */
	return submit(e, ev, (uint32_t)(hash.sku % e->n_shards), &hash, expected);
}

int atp_engine_submit_to(atp_engine *e, const atp_event *ev, uint32_t to, uint64_t *expected)
{
	if (to >= e->n_shards || (!atp_event_releases_all(ev) && to != atp_engine_shard_of(e, ev->sku)))
		return ATP_E_INVAL;
	atp_event_hash hash;
	atp_core_hash_event(ev, &hash);
	return submit(e, ev, to, &hash, expected);
}

/*
 * The router's side of seq for source (interned): its id and checks. ATP_OK with *id (the seq is next), or
 * ATP_DUPLICATE, ATP_E_GAP, ATP_E_SOURCES_FULL, ATP_E_NOMEM, ATP_E_IO; *expected as atp_engine_submit says.
 */
static int take_seq(atp_engine *e, atp_str source, uint64_t seq, uint32_t *out, uint64_t *expected)
{
	uint32_t id = e->last_source;
	const atp_source *last = id == ATP_SOURCE_NONE ? NULL : atp_sources_get(e->sources, id);
	if (!last || last->name_len != source.len || memcmp(last->name, source.ptr, source.len) != 0) {
		id = atp_sources_find(e->sources, source);
		if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(e->sources, source)) == ATP_SOURCE_NONE)
			return ATP_E_SOURCES_FULL;
		e->last_source = id; /* events mostly come in runs of one source: skip the hash next time */
	}
	atp_source *src = atp_sources_at(e->sources, id);
	rsource *r = &e->rs[id];
	r->seen = e->now ? e->now : 1;
	if (expected)
		*expected = src->hwm + 1;
	if (seq <= src->hwm) {
		e->duplicates++;
		return ATP_DUPLICATE;
	}
	if (seq > src->hwm + 1) {
		e->gaps++;
		return ATP_E_GAP;
	}
	if (!r->done && !(r->done = calloc(WINDOW / 64, sizeof(uint64_t))))
		return ATP_E_NOMEM;
	for (unsigned round = 0; seq - r->durable >= WINDOW;) {
		if (flush_stages(e) < 0)
			return ATP_E_IO;
		if (!pipe_collect(e))
			wait_workers(e, &round);
	}
	*out = id;
	return ATP_OK;
}

static int submit(atp_engine *e, const atp_event *ev, uint32_t s, const atp_event_hash *hash, uint64_t *expected)
{
	if (engine_failed(e))
		return ATP_E_IO;
	int rc = atp_event_validate(ev);
	uint32_t id;
	if (rc || (rc = take_seq(e, ev->source, ev->seq, &id, expected)))
		return rc;
	uint8_t *rec = stage_reserve(e, s);
	if (!rec)
		return ATP_E_IO;
	if ((rc = stage_commit(e, s, id, atp_record_encode_event(ev, e->now, rec), hash)) < 0)
		return rc;
	e->shard_now[s] = e->now;
	atp_sources_at(e->sources, id)->hwm = ev->seq;
	if (expected)
		*expected = ev->seq + 1;
	return ATP_OK;
}

/* Whether the n lines are one whole order's (see atp_engine_submit_order); their shards into to[]. */
static int order_check(const atp_engine *e, const atp_event *lines, uint32_t n, uint32_t *to)
{
	if (n == 0 || n > ATP_ORDER_LINES_MAX)
		return ATP_E_INVAL;
	for (uint32_t i = 0; i < n; i++) {
		const atp_event *ev = &lines[i];
		int rc = atp_event_validate(ev);
		if (rc)
			return rc;
		if (ev->type != ATP_EV_RESERVE || (ev->flags & (ATP_EVF_PARTIAL | ATP_EVF_DENY)) ||
		    ev->seq != lines[0].seq + i || atp_str_cmp(ev->source, lines[0].source) ||
		    atp_str_cmp(ev->ref, lines[0].ref))
			return ATP_E_INVAL;
		for (uint32_t k = 0; k < i; k++)
			if (!atp_str_cmp(ev->sku, lines[k].sku) && !atp_str_cmp(ev->location, lines[k].location))
				return ATP_E_INVAL;
		to[i] = atp_engine_shard_of(e, ev->sku);
	}
	/* A part goes to disk in one write of its shard (worker.c): far below the smallest WAL buffer that makes sense. */
	if ((uint64_t)n * (16 + ATP_RECORD_MAX) + 1024 > e->cfg.wal.buffer_bytes)
		return ATP_E_INVAL;
	return ATP_OK;
}

int atp_engine_submit_order(atp_engine *e, const atp_event *lines, uint32_t n, uint64_t *expected)
{
	if (engine_failed(e))
		return ATP_E_IO;
	uint32_t to[ATP_ORDER_LINES_MAX];
	int rc = order_check(e, lines, n, to);
	if (rc)
		return rc;
	/*
	 * A sender resuming inside an order (its durable seq fell between two
	 * lines): the lines up to the high-water mark are duplicates here, and
	 * the order is whole in its shards, so the rest are duplicates there.
	 */
	uint32_t known = atp_sources_find(e->sources, lines[0].source), skip = 0;
	uint64_t hwm = known == ATP_SOURCE_NONE ? 0 : atp_sources_get(e->sources, known)->hwm;
	while (skip < n && lines[skip].seq <= hwm)
		skip++;
	if (skip == n) {
		e->duplicates++;
		if (expected)
			*expected = hwm + 1;
		return ATP_DUPLICATE;
	}
	e->duplicates += skip;
	lines += skip;
	n -= skip;
	memmove(to, to + skip, n * sizeof(*to));
	/* The seqs, in the lines' order (a duplicate or gap is the first line's, with nothing queued). */
	uint32_t id = ATP_SOURCE_NONE;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = take_seq(e, lines[i].source, lines[i].seq, &id, expected)) != ATP_OK) {
			if (i)
				atp_sources_at(e->sources, id)->hwm = lines[0].seq - 1;
			return rc;
		}
		atp_sources_at(e->sources, id)->hwm = lines[i].seq;
	}
	/* The parts: the shards, ascending, and the workers they span. */
	atp_order_mark m = { .order = e->order_next };
	uint64_t workers[ATP_ENGINE_WORKERS_MAX / 64 + 1] = { 0 };
	uint32_t n_workers = 0;
	for (uint32_t s = 0; s < e->n_shards && m.n_parts < n; s++) {
		bool here = false;
		for (uint32_t i = 0; i < n && !here; i++)
			here = to[i] == s;
		if (!here)
			continue;
		m.parts[m.n_parts++] = (uint16_t)s;
		uint32_t w = s % e->n_workers;
		if (!(workers[w / 64] & (1ull << (w % 64)))) {
			workers[w / 64] |= 1ull << (w % 64);
			n_workers++;
		}
	}
	if (n_workers > 1) {
		order_slot *slot = &e->orders[m.order % ORDER_SLOTS];
		for (unsigned round = 0; atomic_load(&slot->left) != 0;) {
			if (flush_stages(e) < 0)
				return ATP_E_IO;  /* (the order that holds the slot may still be staged) */
			if (!pipe_collect(e))
				wait_workers(e, &round);
		}
		atomic_store(&slot->arrived, 0);
		atomic_store(&slot->refused, 0);
		atomic_store(&slot->durable, 0);
		atomic_store(&slot->left, n_workers);
		slot->workers = n_workers;
		slot->order = m.order;
	}
	for (uint32_t p = 0; p < m.n_parts; p++) {
		uint32_t s = m.parts[p];
		m.n_lines = 0;
		for (uint32_t i = 0; i < n; i++)
			m.n_lines += to[i] == s;
		uint8_t *rec = stage_reserve(e, s);
		if (!rec || stage_commit(e, s, DONE_TICK, atp_record_encode_order(&m, e->now, rec), NULL) < 0)
			return ATP_E_IO;
		for (uint32_t i = 0; i < n; i++) {
			if (to[i] != s)
				continue;
			atp_event_hash hash;
			atp_core_hash_event(&lines[i], &hash);
			if (!(rec = stage_reserve(e, s)) ||
			    stage_commit(e, s, id, atp_record_encode_event(&lines[i], e->now, rec), &hash) < 0)
				return ATP_E_IO;
		}
		e->shard_now[s] = e->now;
	}
	e->order_next++;
	if (expected)
		*expected = lines[n - 1].seq + 1;
	/* Out at once: a worker that reaches the order waits for every other one's part (a staged one could wait for the next turn). */
	for (uint32_t w = 0; w < e->n_workers; w++)
		if ((workers[w / 64] & (1ull << (w % 64))) && push_stage(e, w) < 0)
			return ATP_E_IO;
	return ATP_OK;
}

int atp_engine_skip(atp_engine *e, atp_str source, uint64_t seq, int code, uint64_t *expected)
{
	if (engine_failed(e))
		return ATP_E_IO;
	uint32_t id;
	int rc = take_seq(e, source, seq, &id, expected);
	if (rc)
		return rc;
	atp_sources_at(e->sources, id)->hwm = seq;
	if (expected)
		*expected = seq + 1;
	e->submitted++; /* complete() counts it as a completion */
	complete(e, &(completion){ .rsrc = id, .seq = seq, .status = code });
	return ATP_OK;
}

uint64_t atp_engine_now_ms(const atp_engine *e)
{
	return e->now;
}

void atp_engine_set_time(atp_engine *e, uint64_t now)
{
	if (now > e->now)
		e->now = now;
}

/* Bring every shard's time up to the engine's: a TICK to each shard no event has carried it to. */
static int send_time(atp_engine *e)
{
	for (uint32_t s = 0; s < e->n_shards; s++) {
		if (e->shard_now[s] >= e->now)
			continue;
		uint8_t *rec = stage_reserve(e, s);
		if (!rec || stage_commit(e, s, DONE_TICK, atp_record_encode_tick(e->now, rec), NULL) < 0)
			return ATP_E_IO;
		e->shard_now[s] = e->now;
	}
	return 0;
}

int atp_engine_advance(atp_engine *e)
{
	if (engine_failed(e) || send_time(e) < 0 || flush_stages(e) < 0)
		return ATP_E_IO;
	return 0;
}

void atp_engine_set_on_done(atp_engine *e, atp_engine_done_fn fn, void *ctx)
{
	e->cfg.on_done = fn;
	e->cfg.ctx = ctx;
}

size_t atp_engine_poll(atp_engine *e)
{
	if (engine_failed(e))
		return 0;
	for (uint32_t i = 0; i < e->n_workers; i++)
		if (push_or_commit(e, i) < 0)
			return 0;
	return pipe_collect(e);
}

int atp_engine_sync(atp_engine *e)
{
	if (send_time(e) < 0 || flush_stages(e) < 0)
		return ATP_E_IO;
	for (unsigned round = 0; e->completed < e->submitted;) {
		if (engine_failed(e))
			return ATP_E_IO;
		if (!pipe_collect(e))
			wait_workers(e, &round);
	}
	return engine_failed(e);
}

int atp_engine_snapshot(atp_engine *e)
{
	for (uint32_t s = 0; s < e->n_shards; s++) {
		uint8_t *rec = stage_reserve(e, s);
		if (!rec || stage_commit(e, s, DONE_SNAPSHOT, atp_record_encode_snapshot(rec), NULL) < 0)
			return ATP_E_IO;
	}
	int rc = atp_engine_sync(e);
	if (rc == 0 && pipe_dir_write_sources(e) < 0) {
		snprintf(e->error, sizeof(e->error), "%s/sources: cannot write: %s", e->dir, strerror(errno));
		rc = e->failed = ATP_E_IO;
	}
	return rc;
}

int atp_engine_close(atp_engine *e)
{
	int rc = atp_engine_snapshot(e);
	if (rc)
		atp_log(ATP_LOG_ERROR, "%s closed after a failure: %s", e->dir, e->error);
	else
		atp_log(ATP_LOG_INFO, "%s closed cleanly", e->dir);
	destroy(e);
	return rc;
}

void atp_engine_abandon(atp_engine *e)
{
	destroy(e);
}

uint64_t atp_engine_frames(const atp_engine *e)
{
	return e->submitted;
}

uint64_t atp_engine_expected_seq(const atp_engine *e, atp_str source)
{
	uint32_t id = atp_sources_find(e->sources, source);
	return id == ATP_SOURCE_NONE ? 1 : atp_sources_get(e->sources, id)->hwm + 1;
}

uint64_t atp_engine_durable_seq(const atp_engine *e, const char *source)
{
	uint32_t id = atp_sources_find(e->sources, atp_str_of(source, strlen(source)));
	return id == ATP_SOURCE_NONE ? 0 : e->rs[id].durable;
}

uint32_t atp_engine_source_count(const atp_engine *e)
{
	return atp_sources_count(e->sources);
}

const char *atp_engine_source_at(const atp_engine *e, uint32_t id, uint64_t *durable, uint64_t *seen)
{
	assert(id < atp_sources_count(e->sources));
	*durable = e->rs[id].durable;
	*seen = e->rs[id].seen;
	return atp_sources_get(e->sources, id)->name;
}

const char *atp_engine_error(const atp_engine *e)
{
	return e->failed ? e->error : NULL;
}

void atp_engine_identity(const atp_engine *e, uint8_t out[32])
{
	memcpy(out, e->identity, 32);
}

uint32_t atp_engine_shards(const atp_engine *e)
{
	return e->n_shards;
}

bool atp_engine_read(const atp_engine *e, atp_str sku, atp_str location, atp_position_view *out)
{
	if (!sku.len || sku.len > ATP_SKU_MAX)
		return false;
	return atp_core_read(e->shards[atp_engine_shard_of(e, sku)].core, sku, location, out);
}

static void key_of(const atp_table *t, uint32_t id, atp_str *sku, atp_str *location)
{
	const atp_position *p = atp_table_get(t, id);
	*sku = atp_str_of(atp_table_sku(t, id), p->sku_len);
	*location = atp_str_of(atp_table_location(t, id), p->loc_len);
}

static void position_of(const atp_table *t, uint32_t id, atp_engine_position *out)
{
	key_of(t, id, &out->sku, &out->location);
	atp_table_read_id(t, id, &out->v);
}

void atp_engine_key(const atp_engine *e, uint32_t index, uint32_t id, atp_str *sku, atp_str *location)
{
	key_of(atp_core_table(e->shards[index].core), id, sku, location);
}

size_t atp_engine_read_sku(const atp_engine *e, atp_str sku, atp_engine_position *out, size_t max)
{
	return atp_engine_read_sku_inbound(e, sku, out, NULL, max);
}

size_t atp_engine_read_sku_inbound(const atp_engine *e, atp_str sku, atp_engine_position *out,
				   atp_inbound_curve *curves, size_t max)
{
	if (!sku.len || sku.len > ATP_SKU_MAX)
		return 0;
	const atp_core *core = e->shards[atp_engine_shard_of(e, sku)].core;
	const atp_table *t = atp_core_table(core);
	size_t n = 0;
	for (uint32_t id = atp_table_read_sku_first(t, sku); id != ATP_POS_NONE; id = atp_table_read_sku_next(t, id), n++) {
		if (n >= max)
			continue;
		/* Insert in location order (a SKU has a handful of locations). */
		atp_engine_position p;
		atp_inbound_curve cv;
		position_of(t, id, &p);
		if (curves)
			atp_inbound_read(atp_core_inbound(core), id, &cv);
		size_t j = n;
		for (; j > 0 && atp_str_cmp(out[j - 1].location, p.location) > 0; j--) {
			out[j] = out[j - 1];
			if (curves)
				curves[j] = curves[j - 1];
		}
		out[j] = p;
		if (curves)
			curves[j] = cv;
	}
	return n;
}

uint32_t atp_engine_positions(const atp_engine *e, uint32_t index)
{
	return atp_table_read_published(atp_core_table(e->shards[index].core));
}

void atp_engine_read_id(const atp_engine *e, uint32_t index, uint32_t id, atp_engine_position *out)
{
	position_of(atp_core_table(e->shards[index].core), id, out);
}

const atp_core *atp_engine_core(const atp_engine *e, uint32_t index)
{
	return e->shards[index].core;
}

void atp_engine_stats_get(const atp_engine *e, atp_engine_stats *out)
{
	*out = e->recovery;
	out->positions_capacity = (uint64_t)e->n_shards * e->cfg.core.max_positions;
	out->router_waits = e->router_waits;
	out->router_commits = e->router_commits;
	out->duplicates = e->duplicates;
	out->gaps = e->gaps;
	for (uint32_t i = 0; i < e->n_workers; i++) {
		out->ring_bytes += atp_spsc_ring_count(e->workers[i].in);
		out->ring_capacity += atp_spsc_ring_capacity(e->workers[i].in);
	}
	for (uint32_t i = 0; i < e->n_workers; i++) {
		worker *w = &e->workers[i];
		pthread_mutex_lock(&w->stats_lock);
		const atp_engine_stats *s = &w->stats;
		out->events += s->events;
		out->wal_records += s->wal_records;
		out->wal_bytes += s->wal_bytes;
		out->fsyncs += s->fsyncs;
		out->snapshots += s->snapshots;
		if (s->snapshot_ns_max > out->snapshot_ns_max)
			out->snapshot_ns_max = s->snapshot_ns_max;
		if (s->snapshot_unix_ms > out->snapshot_unix_ms)
			out->snapshot_unix_ms = s->snapshot_unix_ms;
		for (int b = 0; b < 40; b++)
			out->fsync_ns_hist[b] += s->fsync_ns_hist[b];
		for (int b = 0; b < 20; b++)
			out->group_hist[b] += s->group_hist[b];
		out->fsync_ns_sum += s->fsync_ns_sum;
		atp_core_stats_add(&out->core, &s->core);
		out->lines_used += s->lines_used;
		out->lines_open += s->lines_open;
		out->lines_capacity += s->lines_capacity;
		out->wal_segments += s->wal_segments;
		pthread_mutex_unlock(&w->stats_lock);
	}
}

uint64_t atp_engine_stats_fsync_quantile(const atp_engine_stats *s, double q)
{
	uint64_t n = 0, seen = 0;
	for (int b = 0; b < 40; b++)
		n += s->fsync_ns_hist[b];
	for (int b = 0; b < 40; b++) {
		seen += s->fsync_ns_hist[b];
		if (n && seen >= q * n)
			return 2ull << b;
	}
	return 0;
}
