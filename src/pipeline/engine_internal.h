/*
 * engine_internal.h — what the router (engine.c) and the shard workers
 * (worker.c) share: the shards, the workers and the messages between them.
 *
 * Router -> worker: a mirrored byte ring (read in place) of records, each
 * a frame_header then an atp_record encoding (atp/record.h). Worker ->
 * router: a ring of completions, released only once the fsync covering them
 * has completed.
 */
#ifndef ATP_ENGINE_INTERNAL_H
#define ATP_ENGINE_INTERNAL_H

#include "atp/core.h"
#include "atp/engine.h"
#include "atp/record.h"
#include "atp/ring.h"
#include "atp/wal.h"

#include <liburing.h>
#include <limits.h>
#include <stdalign.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define CACHE_LINE 64

typedef struct frame_header {
	uint16_t len;    /* of the record after the header */
	uint8_t shard;   /* engine-wide shard index */
	uint8_t pad;
	uint32_t rsrc;   /* the router's id of the event's source; a DONE_* marker otherwise */
	uint32_t crc;    /* atp_crc32c(0, record, len): the WAL's checksum, started by the router */
	uint32_t pad2;
	atp_event_hash hash;  /* an event's keys' hashes (atp_core_hash_event); zeros otherwise */
} frame_header;

/* Deltas a worker's ring holds (64 bytes each). */
#define DELTA_RING (1u << 18)

#define DONE_TICK UINT32_MAX
#define DONE_SNAPSHOT (UINT32_MAX - 1)

/*
 * Where the workers holding parts of one whole order meet (an order whose
 * shards belong to more than one worker; atp_engine_submit_order). The
 * router fills it before the order's frames go out and reuses it only once
 * left is 0. Each worker, on reaching the order: posts whether its part
 * fits (refused, arrived), waits for arrived == workers, applies its part
 * whole or denied; once its part is durable, counts durable; releases the
 * group's completions and deltas only once durable == workers (so nothing
 * that followed the order is acknowledged before every part is on disk),
 * then counts left down.
 */
#define ORDER_SLOTS 1024u
typedef struct order_slot {
	alignas(CACHE_LINE) atomic_uint arrived;
	atomic_uint refused;
	atomic_uint durable;
	atomic_uint left;
	uint32_t workers;
	uint64_t order;
} order_slot;

/* Multi-worker orders one group commit may hold. */
#define GROUP_ORDERS 64u

/* Steps of a whole order where a test may crash the process (atp_engine_test_order_hook). */
enum order_step { ORDER_JUDGED = 1, ORDER_APPLIED, ORDER_DURABLE, ORDER_RELEASED };
extern void (*pipe_order_hook)(uint32_t worker, int step);

typedef struct completion {
	uint32_t rsrc;
	int32_t status;
	uint64_t seq;
	int64_t qty;     /* atp_engine_done.qty */
	uint32_t flags;
	uint32_t date;   /* atp_engine_done.date */
} completion;

typedef struct shard {
	uint32_t index;
	char dir[PATH_MAX - 64];
	atp_core *core;
	atp_wal *wal;
	uint64_t wal_bytes;    /* appended since the last snapshot */
	bool snap_due;         /* by size */
	bool snap_command;     /* by a SNAPSHOT record: acknowledge when written */
	pid_t snap_child;      /* the process writing this shard's snapshot, 0 when none */
	int write_res, fsync_res;
	int fault_write, fault_fsync;  /* results a test's fault plan puts in place of the reaped ones (0: none) */
	int flight_fd;                 /* the segment the group in flight writes */
} shard;

/* Capacity of a worker's completion lists: events in one group commit at most. */
#define GROUP_MAX (1u << 18)

typedef struct worker {
	struct atp_engine *engine;
	uint32_t index;
	int cpu;               /* -1: not pinned */
	int notify_fd;         /* written (a u64 1) after completions are released; -1: none */
	pthread_t thread;
	bool started;
	atp_spsc_ring *in;          /* bytes of frames */
	atp_spsc_ring *out;         /* completions */
	atp_spsc_ring *deltas;      /* atp_engine_delta, staged as records are logged, published once durable; NULL: none kept */
	uint64_t flight_mark;  /* the deltas of the group in flight end here (atp_spsc_ring_staged) */
	uint32_t shards_total; /* the engine's shards (a delta carries the count) */
	uint32_t workers_total; /* the engine's workers, */
	struct worker *peers;   /* ... all of them: under the simulator, a held worker moves the others' groups on */
	struct io_uring uring;
	bool uring_ready;
	const atp_engine_io *io;    /* the simulator's, in place of the io_uring; NULL: none */
	shard **shards;
	uint32_t n_shards;
	completion *pending;   /* of the group being built */
	completion *flight;    /* of the group being written */
	uint32_t n_pending, n_flight;
	uint32_t flight_ops;   /* CQEs still expected for the group in flight */
	uint64_t flight_t0;
	uint32_t hold_want;    /* the next group waits for this many completions (worker_commit.c), */
	uint64_t hold_until;   /* ... until then at most (pipe_mono_ns) */
	uint32_t group_peak;   /* pending + released at recent releases, decaying: the calls in flight */
	uint64_t released_ns;  /* when the last group was released (pipe_mono_ns) */
	bool lent;             /* the router is taking a turn for the worker (worker_turn_lent) */
	bool snap_owed;        /* a lent turn stopped for a snapshot: the worker's next turn writes it */
	uint64_t snapshot_bound; /* a shard snapshots once its WAL grew this much (0: never by size) */
	order_slot *orders;    /* the engine's ORDER_SLOTS */
	uint64_t judged;       /* the whole order this worker judged its part of, until it applies it (0: none) */
	bool judged_fits;
	bool held;             /* the group in flight is durable, its release waits for other workers' parts */
	uint32_t n_pending_orders, n_flight_orders;
	order_slot *pending_orders[GROUP_ORDERS];  /* multi-worker orders with a part in the group being built */
	order_slot *flight_orders[GROUP_ORDERS];   /* ... in the group being written */
	uint64_t wal_retention_ms; /* the engine's: snapshots and WAL kept for replays */
	/* Read by the router; on a line apart from the counters above, which the worker writes per record. */
	alignas(CACHE_LINE) atomic_bool stop;  /* set by worker_join, then the doorbell rung */
	atomic_int failed;     /* -errno, set once */
	char error[512];       /* written before failed is set */
	pthread_mutex_t stats_lock;
	atp_engine_stats stats;  /* published under stats_lock after every group */
	atp_engine_stats local;
	int bell_fd;           /* the doorbell: an eventfd the worker reads through its io_uring while it sleeps */
	bool bell_armed;       /* that read is queued */
	uint64_t bell_value;   /* where it lands */
	/*
	 * WORKER_ASLEEP while the worker sleeps or is about to, with nothing in
	 * its ring; worker_ring() makes it WORKER_AWAKE and rings the doorbell,
	 * or the router takes the worker's turn itself (WORKER_LENT, then
	 * WORKER_ASLEEP again). The worker, awake, takes itself back (ASLEEP
	 * to AWAKE) before it touches its state. On a line of its own: the
	 * router reads it after every push.
	 */
	alignas(CACHE_LINE) atomic_uint asleep;
} worker;

enum { WORKER_AWAKE, WORKER_ASLEEP, WORKER_LENT };

/* The delta of the ring and of recovery: d of a record at lsn of shard (of shards), the index-th of that record. */
atp_engine_delta pipe_engine_delta(const atp_delta *d, uint32_t shard_index, uint32_t shards, uint64_t lsn, uint32_t index);

/*
 * Waiting for the other side of a ring: spin with pause for the first
 * rounds (the other thread is on its own core and about to answer), then
 * sleep briefly, so that an idle engine does not burn a core. *round counts
 * the rounds of one wait; reset it to 0 when the wait is over.
 */
void pipe_backoff(unsigned *round);

/*
 * The router, after pushing into w->in (and worker_join, after setting
 * stop): wakes the worker if it sleeps. A fence and a load of a line the
 * worker rarely writes when it does not; an eventfd write when it does.
 */
void worker_ring(worker *w);

void pipe_pin_thread(int cpu, const char *who);

/* worker.c, for worker_orders.c: the apply path's steps a whole order shares (the worker's thread). */
void worker_fail(worker *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool worker_failed(const worker *w);
/* The worker's shard of engine-wide index, or NULL. */
shard *worker_shard(worker *w, uint32_t index);
/* Append a record whose checksum is known (draining the group first when the WAL says so). */
void worker_append(worker *w, shard *s, const uint8_t *rec, size_t len, uint32_t crc);
/* A tick record logged, then the shard's time moved to now (the lapses' deltas staged under its LSN). */
void worker_tick_logged(worker *w, shard *s, const uint8_t *tick, size_t len, uint32_t crc, uint64_t now);
/* Log and complete what the core did with one record (an applied one to the WAL, its deltas staged). */
void worker_settle(worker *w, shard *s, const uint8_t *p, uint16_t len, uint32_t crc, completion c, uint64_t now,
		   bool moved, const atp_result *res);
/* Wait until nothing is in flight, pending or held: every applied record durable and released. */
void worker_drain(worker *w);
void worker_order_step(const worker *w, int step);
/* worker_orders.c: the order whose first frame starts buf, applied: its frames' bytes; 0 while it cannot be yet. */
size_t worker_take_order(worker *w, const uint8_t *buf, size_t have);

/* worker_commit.c: the group commit (the worker's thread). */
/* Write + fdatasync every shard's pending bytes as one group (none: release what waits at once). */
void worker_start_group(worker *w);
/* Collect what completed; with wait, first sleep in the kernel until something does. */
void worker_reap(worker *w, bool wait);
/* Whether every worker's part of the group's whole orders is durable (always, without orders). */
bool worker_gate_open(const worker *w);
/* The group in flight is durable, and every part of its orders: its deltas and completions go out. */
void worker_group_release(worker *w);
/* Sleep until the router rings or the group in flight completes. */
void worker_doze(worker *w);
/* Queue the doorbell's read unless it is queued (the next io_uring_enter submits it). */
void worker_arm_bell(worker *w);
/* Hand completions to the router, waiting while its ring is full. */
void worker_release(worker *w, const completion *c, uint32_t n);
/* worker.c, for worker_commit.c: wake the router's loop; publish the worker's figures. */
void worker_notify(const worker *w);
/* Wait a round for the router to take from a ring it consumes (pipe_backoff; in a lent turn, collect). */
void worker_wait_router(worker *w, unsigned *round);
void worker_publish_stats(worker *w);

int worker_start(worker *w);
/* One turn of the loop: apply a bite of the ring (or snapshot), start a group, reap; whether frames were applied. */
bool worker_turn(worker *w);
/*
 * The router's turn for a worker it holds at WORKER_LENT: the bytes it
 * just pushed applied and made durable in the router's thread; false, with
 * nothing done, unless the worker is quiescent, its ring holds those bytes
 * only and its last group was released gap_ns ago or more.
 */
bool worker_turn_lent(worker *w, uint32_t bytes, uint64_t gap_ns);
/* The router's collect (engine.c), for a lent turn that finds a ring to the router full. */
size_t pipe_collect(struct atp_engine *e);
/* The simulator's answer to a group op (atp_engine_io). */
void worker_io_done(worker *w, uint32_t slot, int write_res, int fsync_res);
void worker_join(worker *w);
uint64_t pipe_mono_ns(void);

#endif
