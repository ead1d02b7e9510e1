/*
 * worker_commit.c — a shard worker's group commit: the pending bytes of its
 * shards written and fdatasynced as one group (through its io_uring, or by
 * the worker itself for a small group; a small group may first wait a
 * little for the callers of the last one), the group's deltas and completions
 * handed to the router once every fsync of it (and every part of its whole
 * orders) is durable, and the worker's sleep until the router rings or the
 * group completes. A failed write or fsync stops the worker; it is never
 * retried. The worker's thread only (or the simulator's, through
 * atp_engine_io).
 */
#define _GNU_SOURCE
#include "engine_internal.h"
#include "atp/log.h"

#include "atp/faultio.h"

#include <assert.h>
#include <errno.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define DOZE_MS 100

/*
 * A commit delay for calls in a closed loop. The callers of a released
 * group come back with their next call one round trip later; a group
 * started before they do holds only the calls that came during the last
 * fdatasync, and the callers split into cohorts that alternate, each
 * waiting out the other's flush (16 callers with one call each: 2 groups
 * of 8 per cycle). So a group that holds fewer calls than were pending
 * (applied) and released when the last one completed waits for the rest,
 * HOLD_NS at most, as long as they are few: while the worker has not seen
 * more than HOLD_MAX pending and released at a release lately (calls, not
 * a stream or many callers, whose groups are big without waiting). A
 * trickle waits for nothing: its one caller is back (or not) long after
 * HOLD_NS, which bounds what the delay adds to a call's latency and covers
 * a loopback round trip on a loaded 2-vCPU VM (100-200 us). Never under
 * the simulator, whose time is not the clock's.
 *
 * Where the worker synced the group itself (sync_here), the calls that
 * came during its fdatasync are still in the ring at the release, not
 * pending: the delay then waits only for a group as large as the last,
 * and the two cohorts stay, one answered and refilled by the event loop
 * while the other's fdatasync runs. Counting those calls too, so that the
 * cohorts merge, measured slower on a 2-vCPU AMD VM (bench/README.md).
 */
#define HOLD_NS 200000u
#define HOLD_MAX 64u
#define BELL UINT64_MAX  /* user_data of the doorbell's read; a shard's ops carry (index << 1 | op) */

static void group_done(worker *w);

/* Hand completions to the router, waiting while its ring is full. */
void worker_release(worker *w, const completion *c, uint32_t n)
{
	unsigned round = 0;
	while (n) {
		uint32_t k = atp_spsc_ring_push(w->out, c, n);
		c += k;
		n -= k;
		if (k)
			worker_notify(w);
		else if (w->io)
			assert(!"the simulator's router collects after every turn: a turn never fills the ring");
		else
			worker_wait_router(w, &round);
	}
}

/*
 * Whether the worker writes and syncs the group itself instead of through
 * its io_uring: when nothing waits to be applied (the fsync would have
 * nothing to overlap), the group is small (calls and a trickle, not a
 * stream's megabytes), one shard has bytes and no whole order is in it.
 * Such a group then costs one thread's sleep in fdatasync instead of the
 * hand-off to an io_uring worker thread and back (two wake-ups); frames
 * that arrive meanwhile wait for this fsync, as they would have waited for
 * the group in flight, but are applied only after it.
 */
#define SYNC_HERE_BYTES (64u << 10)
static bool sync_here(const worker *w)
{
	if (w->io || w->n_pending_orders || atp_spsc_ring_count(w->in))
		return false;
	uint32_t with_bytes = 0, bytes = 0;
	for (uint32_t i = 0; i < w->n_shards; i++) {
		uint32_t b = atp_wal_pending(w->shards[i]->wal);
		with_bytes += b > 0;
		bytes += b;
	}
	return with_bytes == 1 && bytes <= SYNC_HERE_BYTES;
}

/*
 * The group's write and fdatasync made here, with the io_uring path's
 * fault plan (len, sync: what atp_fault_at answered) and its link: a write
 * that failed or came short cancels the fdatasync.
 */
static void write_and_sync(shard *s, const atp_wal_write *wr, ssize_t len, ssize_t sync)
{
	ssize_t want = len < 0 || sync < 0 ? 0 : len, res = 0;
	while (res < want) {
		ssize_t k = pwrite(wr->fd, (const uint8_t *)wr->buf + res, (size_t)(want - res), (off_t)wr->offset + res);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			res = k < 0 ? -errno : res;
			break;
		}
		res += k;
	}
	int fres = -ECANCELED;
	if (res >= 0) {
		atp_fault_written(wr->fd);
		if (res == want)
			fres = sync < 0 ? 0 : fdatasync(wr->fd) < 0 ? -errno : 0;
	}
	if (fres == 0 && !s->fault_fsync)
		atp_fault_synced(wr->fd);
	s->fsync_res = s->fault_fsync ? s->fault_fsync : fres;
	s->write_res = s->fault_write ? s->fault_write : (int)res;
}

/* Submit a write + fdatasync for every shard with pending bytes; with none, release the group at once. */
void worker_start_group(worker *w)
{
	if (w->flight_ops || w->held || worker_failed(w))
		return;
	if (w->n_pending < w->hold_want && !w->n_pending_orders && pipe_mono_ns() < w->hold_until)
		return;
	w->hold_want = 0;
	uint64_t t0 = pipe_mono_ns();
	bool here = w->lent || sync_here(w);
	uint32_t ops = 0;
	for (uint32_t i = 0; i < w->n_shards; i++) {
		atp_wal_write wr;
		if (!atp_wal_flush_begin(w->shards[i]->wal, &wr))
			continue;
		shard *s = w->shards[i];
		ops += 2;
		w->local.wal_bytes += wr.len;
		if (w->io) {
			w->io->submit(w->io->ctx, w->index, i, wr.fd, wr.buf, wr.len, wr.offset);
			continue;
		}
		/*
		 * A test's fault plan may crash here, shorten the write, or fail
		 * either call. A failed call is not made; a failed fsync also
		 * unmakes its write, which then says it succeeded: a kernel drops
		 * the pages whose writeback failed.
		 */
		ssize_t len = atp_fault_at(ATP_IO_WRITE, wr.fd, wr.buf, wr.len, (off_t)wr.offset);
		ssize_t sync = atp_fault_at(ATP_IO_FSYNC, wr.fd, NULL, 0, 1);
		s->fault_write = len < 0 ? (int)len : sync < 0 ? (int)wr.len : 0;
		s->fault_fsync = sync < 0 ? (int)sync : 0;
		s->flight_fd = wr.fd;
		if (here) {
			write_and_sync(s, &wr, len, sync);
			continue;
		}
		struct io_uring_sqe *sqe = io_uring_get_sqe(&w->uring);
		io_uring_prep_write(sqe, wr.fd, wr.buf, len < 0 || sync < 0 ? 0 : (unsigned)len, wr.offset);
		sqe->flags |= IOSQE_IO_LINK;
		sqe->user_data = (uint64_t)i << 1;
		sqe = io_uring_get_sqe(&w->uring);
		if (sync < 0)
			io_uring_prep_nop(sqe);
		else
			io_uring_prep_fsync(sqe, wr.fd, IORING_FSYNC_DATASYNC);
		sqe->user_data = (uint64_t)i << 1 | 1;
	}
	if (!ops) {
		/* Nothing waits to be written: everything logged is durable. */
		assert(w->n_pending_orders == 0);  /* an order's part is records in its shards' logs */
		if (w->deltas)
			atp_spsc_ring_publish(w->deltas, atp_spsc_ring_staged(w->deltas));
		worker_release(w, w->pending, w->n_pending);
		w->n_pending = 0;
		return;
	}
	int rc = w->io || here ? 0 : io_uring_submit(&w->uring);
	if (rc < 0) {
		worker_fail(w, rc, "io_uring_submit: %s", strerror(-rc));
		return;
	}
	if (w->deltas)
		w->flight_mark = atp_spsc_ring_staged(w->deltas);  /* every delta staged so far is of a record in this group */
	completion *t = w->flight;
	w->flight = w->pending;
	w->pending = t;
	w->n_flight = w->n_pending;
	w->n_pending = 0;
	memcpy(w->flight_orders, w->pending_orders, w->n_pending_orders * sizeof(order_slot *));
	w->n_flight_orders = w->n_pending_orders;
	w->n_pending_orders = 0;
	w->flight_ops = ops;
	w->flight_t0 = t0;
	if (here) {
		w->flight_ops = 0;
		group_done(w);
	}
}

/* Whether every worker's part of the group's orders is durable (always, without orders). */
bool worker_gate_open(const worker *w)
{
	for (uint32_t i = 0; i < w->n_flight_orders; i++)
		if (atomic_load(&w->flight_orders[i]->durable) < w->flight_orders[i]->workers)
			return false;
	return true;
}

/* The group in flight is durable, and so is every part of its orders: hand its deltas and completions out. */
void worker_group_release(worker *w)
{
	w->held = false;
	if (w->n_flight_orders)
		worker_order_step(w, ORDER_RELEASED);
	if (w->deltas)
		atp_spsc_ring_publish(w->deltas, w->flight_mark);  /* before the completions: an Ack never precedes its deltas */
	worker_release(w, w->flight, w->n_flight);
	w->local.events += w->n_flight;
	uint32_t calls = w->n_pending + w->n_flight, decayed = w->group_peak - w->group_peak / 16;
	w->group_peak = calls > decayed ? calls : decayed;
	w->released_ns = pipe_mono_ns();
	if (!w->io && w->group_peak <= HOLD_MAX) {
		w->hold_want = calls;
		w->hold_until = w->released_ns + HOLD_NS;
	}
	w->n_flight = 0;
	for (uint32_t i = 0; i < w->n_flight_orders; i++)
		atomic_fetch_sub(&w->flight_orders[i]->left, 1);
	w->n_flight_orders = 0;
	worker_publish_stats(w);
}

static void group_done(worker *w)
{
	uint64_t ns = pipe_mono_ns() - w->flight_t0;
	for (uint32_t i = 0; i < w->n_shards; i++) {
		shard *s = w->shards[i];
		if (!atp_wal_in_flight(s->wal))
			continue;
		int rc = atp_wal_flush_end(s->wal, s->write_res, s->fsync_res);
		if (rc < 0) {
			worker_fail(w, rc, "shard %u: WAL %s failed: %s; stopping, nothing more is acknowledged", s->index,
			     s->write_res < 0 || s->fsync_res == -ECANCELED ? "write" : "fdatasync", strerror(-rc));
			return;
		}
	}
	int b = 0;
	while (b < 39 && (ns >> (b + 1)))
		b++;
	w->local.fsync_ns_hist[b]++;
	w->local.fsync_ns_sum += ns;
	w->local.fsyncs++;
	for (b = 0; b < 19 && (w->n_flight >> (b + 1)); b++)
		;
	w->local.group_hist[b]++;
	for (uint32_t i = 0; i < w->n_flight_orders; i++)
		atomic_fetch_add(&w->flight_orders[i]->durable, 1);
	if (w->n_flight_orders)
		worker_order_step(w, ORDER_DURABLE);
	if (worker_gate_open(w))
		worker_group_release(w);
	else
		w->held = true;  /* worker_turn() and worker_drain() look again */
}

/* How long a wait may sleep: DOZE_MS, or until a group held back ends its wait. */
static struct __kernel_timespec wait_bound(const worker *w)
{
	struct __kernel_timespec ts = { .tv_sec = DOZE_MS / 1000, .tv_nsec = (DOZE_MS % 1000) * 1000000LL };
	if (w->hold_want && w->n_pending) {
		uint64_t now = pipe_mono_ns();
		ts = (struct __kernel_timespec){ 0, w->hold_until > now ? (long long)(w->hold_until - now) : 0 };
	}
	return ts;
}

/* Submit what is queued and sleep in the kernel until something completes or ts passes: 0 or -errno. */
static int kernel_wait(worker *w, struct __kernel_timespec ts)
{
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(&w->uring, &cqe, 1, &ts, NULL);
	return rc < 0 && rc != -ETIME && rc != -EINTR ? rc : 0;
}

/* Collect what completed; with wait, first sleep in the kernel until something does (DOZE_MS at most). */
void worker_reap(worker *w, bool wait)
{
	struct io_uring_cqe *cqe;
	if (w->io) {
		w->io->poll(w->io->ctx, w->index, wait);
		return;
	}
	if (w->lent)
		return;  /* the router's turn commits in its own thread: nothing of it is in the io_uring */
	int rc = wait ? kernel_wait(w, wait_bound(w)) : 0;
	if (rc < 0) {
		worker_fail(w, rc, "io_uring: %s", strerror(-rc));
		return;
	}
	while (io_uring_peek_cqe(&w->uring, &cqe) == 0) {
		uint64_t op = cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(&w->uring, cqe);
		if (op == BELL) {
			w->bell_armed = false;  /* rung, or cut short by a signal: re-armed at the next doze */
			continue;
		}
		assert(w->flight_ops > 0 && (op >> 1) < w->n_shards);
		shard *s = w->shards[op >> 1];
		if (!(op & 1) && res >= 0)
			atp_fault_written(s->flight_fd);
		if (op & 1 && res == 0 && !s->fault_fsync)
			atp_fault_synced(s->flight_fd);
		if (op & 1)
			s->fsync_res = s->fault_fsync ? s->fault_fsync : res < 0 ? res : 0;
		else
			s->write_res = s->fault_write ? s->fault_write : res;
		if (--w->flight_ops == 0)
			group_done(w);
	}
}

void worker_io_done(worker *w, uint32_t slot, int write_res, int fsync_res)
{
	assert(w->io && w->flight_ops >= 2 && slot < w->n_shards && atp_wal_in_flight(w->shards[slot]->wal));
	w->shards[slot]->write_res = write_res;
	w->shards[slot]->fsync_res = fsync_res;
	w->flight_ops -= 2;
	if (w->flight_ops == 0)
		group_done(w);
}

void worker_arm_bell(worker *w)
{
	if (w->bell_armed)
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->uring);
	io_uring_prep_read(sqe, w->bell_fd, &w->bell_value, sizeof(w->bell_value), 0);
	sqe->user_data = BELL;
	w->bell_armed = true;
}

/*
 * Sleep in the kernel until the router rings or the group in flight
 * completes: arm the doorbell's read, raise the flag, then look at the
 * ring once more (a push the router made before it could see the flag),
 * and wait only while it is still empty. From the flag on, the router may
 * take a turn for the worker (WORKER_LENT): awake, the worker takes itself
 * back, waiting out such a turn, before it reaps or touches anything.
 */
void worker_doze(worker *w)
{
	worker_arm_bell(w);  /* submitted by the wait below, or with the next group */
	struct __kernel_timespec bound = wait_bound(w);  /* read now: from the flag on, a lent turn may change it */
	atomic_store_explicit(&w->asleep, WORKER_ASLEEP, memory_order_release);  /* all it did, for a lent turn */
	atomic_thread_fence(memory_order_seq_cst);  /* the flag before the look: pairs with worker_ring()'s */
	int rc = 0;
	if (atp_spsc_ring_count(w->in) == 0 && !atomic_load_explicit(&w->stop, memory_order_relaxed))
		rc = kernel_wait(w, bound);  /* the io_uring and the ring's atomics only: a lent turn touches neither */
	unsigned asleep = WORKER_ASLEEP;
	while (!atomic_compare_exchange_weak_explicit(&w->asleep, &asleep, WORKER_AWAKE, memory_order_acquire,
						      memory_order_acquire) && asleep != WORKER_AWAKE) {
		asleep = WORKER_ASLEEP;
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);  /* lent: the router is applying and syncing for it (an fdatasync: 50 us steps) */
	}
	if (rc < 0)
		worker_fail(w, rc, "io_uring: %s", strerror(-rc));
	else
		worker_reap(w, false);
}

