/*
 * worker.c — a shard worker: reads records where they lie in its ring,
 * applies them to its shards' cores (validated and hashed by the router),
 * appends them to their WALs (checksums started by the router) and commits
 * in groups (worker_commit.c: write + fdatasync per shard with pending
 * bytes). While a group is in flight the next one builds; a group's
 * completions go back to the router only once all its fsyncs have
 * succeeded. A failed write or fsync stops the worker with a message; it
 * is never retried.
 *
 * A snapshot is written by a forked child from the copy-on-write image of
 * the shard at a point where everything applied is durable: the worker
 * stalls only for the fork (the page tables), then goes on while the child
 * writes, fsyncs and renames; once the child has exited 0 the worker
 * deletes the WAL segments the snapshots cover.
 *
 * A whole order's part (worker_orders.c) waits for the other workers that
 * hold parts of it; a group holding a part is released only once every part
 * is durable (gate_open).
 *
 * Under the deterministic simulator (atp_engine_io) the same code runs in
 * the router's thread, a worker_turn() at a time: a group's write and
 * fdatasync go to the simulator instead of the io_uring, it answers them
 * through worker_io_done(), and snapshots are written in the turn.
 */
#define _GNU_SOURCE
#include "engine_internal.h"
#include "atp/log.h"

#include "atp/crc32c.h"
#include "atp/faultio.h"
#include "atp/snapshot.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * An idle worker spins up to this many rounds (16 pauses each: about 20 us
 * on a 2026 EPYC; under load the next frame comes sooner), then sleeps in
 * the kernel until its doorbell or a CQE wakes it, DOZE_MS at most. The
 * spin adapts: work found while spinning restores the whole budget, a
 * spin that ended asleep halves it, so a trickle (a frame every few
 * milliseconds) sleeps at once instead of spinning for nothing each time.
 */
#define IDLE_SPINS 64
#define SPIN_WORTH_NS 50000

void (*pipe_order_hook)(uint32_t worker, int step);

void atp_engine_test_order_hook(void (*fn)(uint32_t worker, int step))
{
	pipe_order_hook = fn;
}

void worker_order_step(const worker *w, int step)
{
	if (pipe_order_hook)
		pipe_order_hook(w->index, step);
}

void worker_ring(worker *w)
{
	atomic_thread_fence(memory_order_seq_cst);  /* the push before the look: pairs with doze()'s fence */
	unsigned asleep = WORKER_ASLEEP;
	if (atomic_load_explicit(&w->asleep, memory_order_relaxed) == WORKER_ASLEEP &&
	    atomic_compare_exchange_strong_explicit(&w->asleep, &asleep, WORKER_AWAKE, memory_order_relaxed,
						    memory_order_relaxed)) {
		uint64_t one = 1;
		if (write(w->bell_fd, &one, sizeof(one)) < 0)  /* EAGAIN only at 2^64 - 1 rings: awake anyway */
			assert(errno == EAGAIN);
	}
}

/* A short busy wait: a few dozen nanoseconds, without starving the core's sibling. */
static void spin(void)
{
#if defined(__x86_64__)
	for (int i = 0; i < 16; i++)
		__builtin_ia32_pause();
#else
	sched_yield();
#endif
}

void pipe_backoff(unsigned *round)
{
	if ((*round)++ < 2048) {
		spin();
		return;
	}
	struct timespec ts = { 0, 20000 };
	nanosleep(&ts, NULL);
}

uint64_t pipe_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Wait for the router to take from a ring it consumes: in a lent turn the
 * router is this thread, so it collects here.
 */
void worker_wait_router(worker *w, unsigned *round)
{
	if (w->lent)
		pipe_collect(w->engine);
	else
		pipe_backoff(round);
}

/* Wake the router's event loop, if it gave an eventfd: one write per group, not per event (none in a lent turn: it is the router). */
void worker_notify(const worker *w)
{
	if (w->lent)
		return;
	int fd = w->notify_fd;
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		atp_log(ATP_LOG_ERROR, "worker %u: notify: %s", w->index, strerror(errno));
}

void worker_fail(worker *w, int rc, const char *fmt, ...)
{
	if (atomic_load(&w->failed))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
	atp_log(ATP_LOG_ERROR, "worker %u: %s", w->index, w->error);
	atomic_store(&w->failed, rc < 0 ? rc : -EIO);
	worker_notify(w);
}

bool worker_failed(const worker *w)
{
	return atomic_load_explicit(&w->failed, memory_order_relaxed) != 0;
}

/*
 * A worker that waits for others (at a whole order, or for their parts to
 * be durable) stops too once one of them has failed: its part will never
 * come, and the engine is failed anyway.
 */
static bool peer_failed(worker *w)
{
	for (uint32_t j = 0; j < w->workers_total; j++)
		if (&w->peers[j] != w && worker_failed(&w->peers[j])) {
			worker_fail(w, -EIO, "worker %u failed while this one waited for it at a whole order; stopping", j);
			return true;
		}
	return false;
}

/* The worker's figures and its shards' cores, for atp_engine_stats_get() in another thread. */
void worker_publish_stats(worker *w)
{
	atp_engine_stats *l = &w->local;
	memset(&l->core, 0, sizeof(l->core));
	l->lines_used = l->lines_open = l->lines_capacity = l->wal_segments = 0;
	for (uint32_t i = 0; i < w->n_shards; i++) {
		const atp_core *core = w->shards[i]->core;
		atp_core_stats_add(&l->core, atp_core_stats_get(core));
		const atp_lines *lines = atp_core_lines(core);
		l->lines_used += atp_lines_count(lines);
		l->lines_open += atp_lines_open_count(lines);
		l->lines_capacity += atp_lines_capacity(lines);
		l->wal_segments += w->shards[i]->wal ? atp_wal_segments(w->shards[i]->wal) : 0;
	}
	pthread_mutex_lock(&w->stats_lock);
	w->stats = w->local;
	pthread_mutex_unlock(&w->stats_lock);
}

/* Wait until nothing is in flight and nothing pending: every applied record durable. */
void worker_drain(worker *w)
{
	unsigned round = 0;
	while (!worker_failed(w) && (w->flight_ops || w->n_pending || w->held)) {
		if (w->held) {
			if (worker_gate_open(w))
				worker_group_release(w);
			else if (peer_failed(w))
				return;
			else if (w->io) {  /* one thread: the others apply their parts, and write them, only when turned */
				for (uint32_t j = 0; j < w->workers_total; j++) {
					if (&w->peers[j] != w) {
						worker_turn(&w->peers[j]);
						w->io->poll(w->io->ctx, j, true);
					}
				}
			} else
				pipe_backoff(&round);
			continue;
		}
		w->hold_want = 0;  /* a drain waits for no caller (worker_commit.c's commit delay) */
		worker_start_group(w);
		worker_reap(w, w->flight_ops != 0);
	}
}

/* Append a record whose checksum (atp_crc32c(0, rec, len)) is known. */
void worker_append(worker *w, shard *s, const uint8_t *rec, size_t len, uint32_t crc)
{
	for (;;) {
		int rc = atp_wal_append_crc(s->wal, rec, len, crc);
		if (rc == 0)
			break;
		if (rc != ATP_WAL_FLUSH_FIRST) {
			worker_fail(w, rc, "shard %u: cannot extend the WAL: %s; stopping", s->index, strerror(-rc));
			return;
		}
		worker_drain(w);
		if (worker_failed(w))
			return;
	}
	s->wal_bytes += len;
	w->local.wal_records++;
	if (w->snapshot_bound && s->wal_bytes >= w->snapshot_bound)
		s->snap_due = true;
}

/* The snapshot of s is on disk: account for it, trim the WAL, acknowledge a command. */
static void snapshot_done(worker *w, shard *s)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	uint64_t retention = w->wal_retention_ms;
	atp_wal_trim(s->wal, atp_snapshot_prune(s->dir, now_ms > retention ? now_ms - retention : 0));
	w->local.snapshots++;
	w->local.snapshot_unix_ms = now_ms;
	if (s->snap_command) {
		s->snap_command = false;
		completion c = { .rsrc = DONE_SNAPSHOT, .seq = s->index };
		worker_release(w, &c, 1);
	}
	worker_publish_stats(w);
}

/* Reap a finished snapshot child of s (waiting for it when asked); false while it runs. */
static bool reap_child(worker *w, shard *s, bool wait)
{
	int status;
	pid_t pid = waitpid(s->snap_child, &status, wait ? 0 : WNOHANG);
	if (pid == 0 || (pid < 0 && errno == EINTR))
		return false;
	s->snap_child = 0;
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		worker_fail(w, -EIO, "shard %u: the snapshot writer failed (%s); stopping", s->index,
		     pid < 0 ? strerror(errno) : "see its message above");
		return true;
	}
	snapshot_done(w, s);
	return true;
}

static void reap_children(worker *w, bool wait)
{
	for (uint32_t i = 0; i < w->n_shards; i++)
		if (w->shards[i]->snap_child)
			reap_child(w, w->shards[i], wait);
}

/* Everything applied to s is durable: snapshot it from a child process (synchronously if fork fails). */
static void snapshot(worker *w, shard *s)
{
	if (s->snap_child && !(s->snap_command && reap_child(w, s, true)))
		return; /* one writer at a time; a size trigger waits for the next chance */
	char err[512];
	uint64_t lsn = atp_wal_last_lsn(s->wal), t0 = pipe_mono_ns();
	/* Under a test's fault plan or the simulator every write is the process's own, in order: no child. */
	pid_t pid = atp_fault_armed() || w->io ? -1 : fork();
	if (pid == 0) {
		/* The child of a threaded process: no malloc, no stdio. Die with the worker (an orphan would hold the lock). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		int rc = atp_snapshot_write(s->dir, s->core, lsn, err, sizeof(err) - 1);
		if (rc < 0) {
			size_t n = strlen(err);
			err[n] = '\n';
			if (write(2, err, n + 1) < 0)
				_exit(2);
		}
		_exit(rc < 0 ? 1 : 0);
	}
	uint64_t ns = pipe_mono_ns() - t0;
	if (ns > w->local.snapshot_ns_max)
		w->local.snapshot_ns_max = ns;
	s->wal_bytes = 0;
	s->snap_due = false;
	if (pid > 0) {
		s->snap_child = pid;
		return;
	}
	int rc = atp_snapshot_write(s->dir, s->core, lsn, err, sizeof(err));
	if (rc < 0) {
		worker_fail(w, rc, "shard %u: %s", s->index, err);
		return;
	}
	snapshot_done(w, s);
}

int atp_engine_apply_record(atp_core *core, const atp_record *rec, atp_result *r, atp_engine_expiry_fn fn, void *ctx)
{
	if (rec->now > atp_core_now_ms(core)) {
		atp_delta d[64];
		size_t nd, n;
		do {
			n = atp_core_expire(core, rec->now, d, 64, &nd);
			if (nd && fn)
				fn(ctx, d, nd);
		} while (n == 64);
	}
	if (rec->kind == ATP_REC_ORDER)
		return atp_core_note_order(core, rec->order.order);
	if (rec->kind != ATP_REC_EVENT)
		return ATP_OK;
	return atp_core_apply(core, &rec->ev, r);
}

atp_engine_delta pipe_engine_delta(const atp_delta *d, uint32_t shard_index, uint32_t shards, uint64_t lsn, uint32_t index)
{
	return (atp_engine_delta){ .sku = d->sku.ptr, .location = d->location.ptr, .lsn = lsn, .index = index,
				   .pos = d->pos, .shard = (uint16_t)shard_index, .shards = (uint16_t)shards, .sku_len = (uint8_t)d->sku.len,
				   .loc_len = (uint8_t)d->location.len, .kind = ATP_DELTA_CHANGE,
				   .old_atp = d->old_atp, .new_atp = d->new_atp, .version = d->version };
}

/* ---- deltas ---- */

/*
 * Stage the deltas of the record at lsn (the shard's last appended): they
 * are published with the group that makes the record durable. A full ring
 * is waited out: what is staged is made durable and published, and the
 * router takes it (it collects deltas whenever it collects completions).
 */
static void stage_deltas(worker *w, const shard *s, uint64_t lsn, uint32_t *index, const atp_delta *d, size_t n)
{
	assert(lsn == atp_wal_last_lsn(s->wal));  /* a delta leaves with the record that caused it */
	for (size_t i = 0; i < n; i++) {
		atp_engine_delta *slot;
		for (unsigned round = 0; !(slot = atp_spsc_ring_stage_slot(w->deltas));) {
			if (worker_failed(w))
				return;
			worker_start_group(w);
			worker_reap(w, false);
			worker_wait_router(w, &round);
		}
		*slot = pipe_engine_delta(&d[i], s->index, w->shards_total, lsn, (*index)++);
		atp_spsc_ring_stage_one(w->deltas);
	}
}

typedef struct expiry_stage {
	worker *w;
	const shard *s;
	uint64_t lsn;
	uint32_t index;
} expiry_stage;

static void stage_expiries(void *ctx, const atp_delta *d, size_t n)
{
	expiry_stage *x = ctx;
	stage_deltas(x->w, x->s, x->lsn, &x->index, d, n);
}

/*
 * A tick record (its bytes and checksum given) logged first, then the
 * shard's time moved to now: the lines that lapse are released with their
 * deltas staged under the tick's LSN, however many (the record is in the
 * WAL, so a full ring can be made durable and drained meanwhile).
 */
void worker_tick_logged(worker *w, shard *s, const uint8_t *tick, size_t len, uint32_t crc, uint64_t now)
{
	worker_append(w, s, tick, len, crc);
	if (worker_failed(w))
		return;
	expiry_stage x = { w, s, atp_wal_last_lsn(s->wal), 0 };
	atp_record rec = { .kind = ATP_REC_TICK, .now = now };
	atp_engine_apply_record(s->core, &rec, NULL, stage_expiries, &x);
}

shard *worker_shard(worker *w, uint32_t index)
{
	for (uint32_t i = 0; i < w->n_shards; i++)
		if (w->shards[i]->index == index)
			return w->shards[i];
	return NULL;
}

/* Frame bytes applied per turn of the loop at most. */
#define TURN_BYTES (256u << 10)

/* Up to this many consecutive events of one shard are applied together (the core's batch pipeline). */
#define RUN_MAX 128

typedef struct run {
	shard *s;
	uint32_t n;
	const uint8_t *bytes[RUN_MAX];  /* each record, in the ring's buffer, to append as it is */
	uint16_t len[RUN_MAX];
	uint32_t rsrc[RUN_MAX];
	uint32_t crc[RUN_MAX];
	atp_event_hash hash[RUN_MAX];
	atp_event ev[RUN_MAX];
	uint64_t now[RUN_MAX];
} run;

/*
 * Log and complete what the core did with one record: an applied record goes
 * to the WAL; a refused one only if its time expired reservations (as a tick
 * of that time), so that replay repeats every expiry.
 */
void worker_settle(worker *w, shard *s, const uint8_t *p, uint16_t len, uint32_t crc, completion c, uint64_t now,
		   bool moved, const atp_result *res)
{
	/* Appending may drain the pending group first: queue the completion after it. */
	if (c.status == ATP_OK) {
		worker_append(w, s, p, len, crc);
		uint32_t index = 0;
		if (w->deltas && res && res->n_deltas && !worker_failed(w))
			stage_deltas(w, s, atp_wal_last_lsn(s->wal), &index, res->deltas, res->n_deltas);
	} else if (moved) {
		uint8_t tick[16];
		size_t n = atp_record_encode_tick(now, tick);
		worker_append(w, s, tick, n, atp_crc32c(0, tick, n));
	}
	w->pending[w->n_pending++] = c;
}

static completion completion_of(const run *r, uint32_t i, const atp_result *res)
{
	return (completion){ .rsrc = r->rsrc[i], .seq = r->ev[i].seq, .status = res->status, .flags = res->flags,
			     .qty = r->ev[i].type == ATP_EV_RESERVE ? res->confirmed : res->moved,
			     .date = res->promised_date };
}

/*
 * Whether a line may lapse while the run is applied: one due by its last
 * time, or one its own RESERVEs open with an expiry by then. Times in a
 * run never go back (the router stamps the engine's time, which only moves
 * forward).
 */
static bool expiry_due(const run *r)
{
	uint64_t last = r->now[r->n - 1];
	if (last <= atp_core_now_ms(r->s->core))
		return false;  /* time stands still: nothing lapses */
	if (atp_core_due(r->s->core, last))
		return true;
	for (uint32_t i = 0; i < r->n; i++)
		if (r->ev[i].type == ATP_EV_RESERVE && r->ev[i].expires_at && r->ev[i].expires_at <= last)
			return true;
	return false;
}

/*
 * With deltas kept, a run in which lines lapse goes event by event: each
 * move of time is a tick record first, whose LSN the lapses' deltas carry
 * (replay repeats it: the tick expires, the event after it finds its time
 * already reached).
 */
static void apply_stepwise(worker *w, run *r)
{
	for (uint32_t i = 0; i < r->n && !worker_failed(w); i++) {
		if (r->now[i] > atp_core_now_ms(r->s->core)) {
			uint8_t tick[16];
			size_t n = atp_record_encode_tick(r->now[i], tick);
			worker_tick_logged(w, r->s, tick, n, atp_crc32c(0, tick, n), r->now[i]);
		}
		atp_result res;
		atp_core_apply_batch_hashed_at(r->s->core, &r->ev[i], &r->hash[i], &r->now[i], 1, &res);
		worker_settle(w, r->s, r->bytes[i], r->len[i], r->crc[i], completion_of(r, i, &res), r->now[i], false, &res);
	}
	r->n = 0;
}

static void apply_run(worker *w, run *r)
{
	if (w->deltas && expiry_due(r)) {
		apply_stepwise(w, r);
		return;
	}
	atp_result res[RUN_MAX];
	const atp_core_stats *st = atp_core_stats_get(r->s->core);
	uint64_t t = atp_core_now_ms(r->s->core), lapsed = st->lines_expired;
	atp_core_apply_batch_hashed_at(r->s->core, r->ev, r->hash, r->now, r->n, res);
	assert(!w->deltas || st->lines_expired == lapsed);  /* expiry_due() said none would lapse */
	for (uint32_t i = 0; i < r->n; i++) {
		worker_settle(w, r->s, r->bytes[i], r->len[i], r->crc[i], completion_of(r, i, &res[i]), r->now[i], r->now[i] > t,
		       &res[i]);
		t = r->now[i] > t ? r->now[i] : t;
	}
	r->n = 0;
}

/*
 * Apply the whole frames in buf, starting none past limit (a bounded bite,
 * whose last order may reach beyond it); returns the bytes consumed. Consecutive
 * events of one shard go through the core together; a tick, a snapshot
 * command or another shard ends the run. Stops early when the group is full
 * or a shard must snapshot first (checked after each run, whose records are
 * all in the WAL by then, so a snapshot never holds an event its LSN does
 * not cover).
 */
static size_t process(worker *w, const uint8_t *buf, size_t have, size_t limit, bool *snap)
{
	size_t off = 0;
	run r;  /* 26 KiB: only r.n set, the rest written as it fills (not zeroed per bite) */
	r.n = 0;
	while (off < limit && have - off >= sizeof(frame_header) && w->n_pending + r.n < GROUP_MAX && !worker_failed(w)) {
		frame_header h;
		memcpy(&h, buf + off, sizeof(h));
		if (have - off < sizeof(h) + h.len)
			break;
		const uint8_t *p = buf + off + sizeof(h);
		atp_record rec;
		shard *s = worker_shard(w, h.shard);
		/* The router encoded it into this ring (engine.c): anything else is memory gone wrong, not input. */
		int decoded = s ? atp_record_decode(p, h.len, &rec) : -1;
		assert(s && decoded == 0);
		(void)decoded;
		if (r.n && (s != r.s || rec.kind != ATP_REC_EVENT || r.n == RUN_MAX)) {
			apply_run(w, &r);
			if (r.s->snap_due && !r.s->snap_child) {
				*snap = true;
				break;
			}
		}
		if (rec.kind == ATP_REC_ORDER) {
			size_t used = worker_take_order(w, buf + off, have - off);
			if (!used)
				break;
			off += used;
			for (uint32_t i = 0; i < w->n_shards; i++)
				*snap |= w->shards[i]->snap_due && !w->shards[i]->snap_child;
			if (*snap)
				break;
			continue;
		}
		off += sizeof(h) + h.len;
		if (rec.kind == ATP_REC_EVENT) {
			r.s = s;
			r.bytes[r.n] = p;
			r.len[r.n] = h.len;
			r.rsrc[r.n] = h.rsrc;
			r.crc[r.n] = h.crc;
			r.hash[r.n] = h.hash;
			r.ev[r.n] = rec.ev;
			r.now[r.n++] = rec.now;
		} else if (rec.kind == ATP_REC_TICK && w->deltas) {
			completion c = { .rsrc = h.rsrc, .status = ATP_OK };
			worker_tick_logged(w, s, p, h.len, h.crc, rec.now);
			w->pending[w->n_pending++] = c;
			if (s->snap_due && !s->snap_child) {
				*snap = true;
				break;
			}
		} else if (rec.kind == ATP_REC_TICK) {
			atp_result res;
			uint64_t before = atp_core_now_ms(s->core);
			completion c = { .rsrc = h.rsrc };
			c.status = atp_engine_apply_record(s->core, &rec, &res, NULL, NULL);
			worker_settle(w, s, p, h.len, h.crc, c, rec.now, atp_core_now_ms(s->core) != before, NULL);
			if (s->snap_due && !s->snap_child) {
				*snap = true;
				break;
			}
		} else {
			s->snap_command = true;
			*snap = true;
			break;
		}
	}
	if (r.n) {
		apply_run(w, &r);
		if (r.s->snap_due && !r.s->snap_child)
			*snap = true;
	}
	return off;
}

static void snapshots(worker *w)
{
	worker_drain(w);
	for (uint32_t i = 0; i < w->n_shards && !worker_failed(w); i++)
		if (w->shards[i]->snap_due || w->shards[i]->snap_command)
			snapshot(w, w->shards[i]);
}

void pipe_pin_thread(int cpu, const char *who)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc)
		atp_log(ATP_LOG_WARN, "cannot pin %s to CPU %d: %s", who, cpu, strerror(rc));
}

bool worker_turn(worker *w)
{
	bool progress = false, snap = w->snap_owed;
	if (worker_failed(w))
		return false;
	w->snap_owed = false;
	if (w->held && worker_gate_open(w))
		worker_group_release(w);
	if ((w->held || w->judged) && peer_failed(w))
		return false;
	/* The frames are applied and logged where they lie in the ring (mirrored: always contiguous). */
	const void *frames;
	uint32_t k = w->n_pending < GROUP_MAX ? atp_spsc_ring_peek(w->in, &frames) : 0;
	if (k) {
		/* A bounded bite, so that an idle WAL gets its next group soon. */
		size_t used = process(w, frames, k, TURN_BYTES, &snap);
		atp_spsc_ring_consume(w->in, (uint32_t)used);
		progress = used > 0;
	}
	if (snap) {
		snapshots(w);
		return true;
	}
	worker_start_group(w);
	worker_reap(w, false);
	return progress;
}

bool worker_turn_lent(worker *w, uint32_t bytes, uint64_t gap_ns)
{
	assert(atomic_load(&w->asleep) == WORKER_LENT && !w->io);
	if (worker_failed(w) || w->flight_ops || w->n_pending || w->held || w->judged || w->n_pending_orders ||
	    w->snap_owed || atp_spsc_ring_count(w->in) != bytes || pipe_mono_ns() - w->released_ns < gap_ns)
		return false;
	const void *frames;
	uint32_t k = atp_spsc_ring_peek(w->in, &frames);
	bool snap = false;
	w->lent = true;
	w->hold_want = 0;  /* a trickle: no caller to wait for */
	size_t used = process(w, frames, k, k, &snap);
	atp_spsc_ring_consume(w->in, (uint32_t)used);
	worker_start_group(w);  /* made here (w->lent): released before it returns, unless an order holds it */
	w->snap_owed = snap;
	w->lent = false;
	return true;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	unsigned idle = 0, spins = IDLE_SPINS;
	if (w->cpu >= 0) {
		pipe_pin_thread(w->cpu, "a worker");
		/*
		 * The io_uring workers that run the WAL's write + fdatasync (the
		 * kernel punts a buffered write and an fsync to them) stay on this
		 * core too: while they run, this worker waits for them or builds
		 * the next group, and the router's core stays the router's. A
		 * thread has io_uring workers once it has submitted (before, the
		 * kernel refuses with EINVAL): the doorbell's read goes first.
		 */
		worker_arm_bell(w);
		int rc = io_uring_submit(&w->uring);
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (rc >= 0)
			rc = io_uring_register_iowq_aff(&w->uring, sizeof(set), &set);
		if (rc < 0)
			atp_log(ATP_LOG_WARN, "worker %u: io_uring workers not pinned: %s", w->index, strerror(-rc));
	}
	prctl(PR_SET_TIMERSLACK, 1000UL);  /* reap's and backoff's short waits: not 50 us slack on top */
	worker_publish_stats(w);  /* what recovery left in its cores */
	for (unsigned loops = 0; !worker_failed(w); loops++) {
		if ((loops & 63) == 0)
			reap_children(w, false);
		if (worker_turn(w)) {
			if (idle)
				spins = IDLE_SPINS;  /* the spin found work */
			idle = 0;
			continue;
		}
		if (atomic_load_explicit(&w->stop, memory_order_acquire) && atp_spsc_ring_count(w->in) == 0 &&
		    !w->flight_ops && !w->n_pending && !w->held)
			break;
		if (w->held || w->judged) {
			sched_yield();  /* waiting for another worker: on a shared core, let it run */
		} else if (idle++ < spins) {
			spin();
		} else {
			/* Nothing came in: sleep until something does or the group in flight is durable. */
			uint64_t t = pipe_mono_ns();
			worker_doze(w);
			/* Woken soon after: a longer spin would have caught it. */
			spins = pipe_mono_ns() - t < SPIN_WORTH_NS ? IDLE_SPINS : spins / 2;
			reap_children(w, false);
			idle = 0;
		}
	}
	reap_children(w, true);
	worker_publish_stats(w);
	return NULL;
}

int worker_start(worker *w)
{
	if (w->io) {
		worker_publish_stats(w);
		return 0;  /* the simulator's thread turns it */
	}
	w->bell_fd = eventfd(0, EFD_CLOEXEC);
	if (w->bell_fd < 0)
		return -errno;
	int rc = io_uring_queue_init(2 * w->n_shards + 8, &w->uring, 0);
	if (rc < 0)
		return rc;
	w->uring_ready = true;
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

void worker_join(worker *w)
{
	if (w->started) {
		atomic_store_explicit(&w->stop, true, memory_order_release);
		worker_ring(w);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	if (w->uring_ready) {
		io_uring_queue_exit(&w->uring);  /* cancels the doorbell's read */
		w->uring_ready = false;
	}
	if (w->bell_fd >= 0) {
		close(w->bell_fd);
		w->bell_fd = -1;
	}
}
