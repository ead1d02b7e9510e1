/*
 * atp/engine.h — the durable engine: a router, shard workers, WALs, snapshots.
 *
 * A data directory holds a fixed number of shards (chosen when it is
 * created); the shard of an event is atp_sku_hash(sku) % shards, so every
 * location of a SKU lives in one shard. Each shard has its own core, WAL
 * and snapshots; each worker thread owns the shards i with i % workers ==
 * its index, is the only writer of their tables, and may be pinned to a CPU.
 *
 * The caller's thread is the router (the front end): atp_engine_submit()
 * checks the source's seq (contiguous from 1, per source), encodes the
 * event into the owning worker's SPSC ring, and returns; a full ring makes
 * it wait (backpressure), never drops. A worker applies what it pops,
 * appends every applied event to its shard's WAL and commits in groups
 * through its own io_uring: while one write + fdatasync is in flight the
 * next group builds. Only once the fsync covering an event has completed
 * does its completion (status, confirmed quantity) come back to the
 * router, which then advances the source's durable seq: every seq at or
 * below it is applied and durable, or was refused.
 *
 * Guarantees:
 *   - exactly once per source across crashes: the durable seq of each
 *     source survives (a lower bound of it, at worst); after a restart the
 *     sender resumes at durable_seq + 1 and shards recognise what they
 *     already applied (per shard, a source's seqs only increase);
 *   - recovery: newest valid snapshot per shard plus the WAL after it; the
 *     state equals the state before the crash minus unacknowledged events;
 *   - a source whose name starts with '@' is internal (the engine's own
 *     API: it never resends): after a crash its seq continues past the
 *     highest any shard applied;
 *   - a failed write or fsync stops the engine for good (every call then
 *     returns ATP_E_IO with a message): never a retry of fsync.
 * One router thread calls everything, except atp_engine_read(), which any
 * thread may call.
 */
#ifndef ATP_ENGINE_H
#define ATP_ENGINE_H

#include "atp/core.h"
#include "atp/record.h"
#include "atp/wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_ENGINE_SHARDS_MAX 256
#define ATP_ENGINE_WORKERS_MAX 64

typedef struct atp_engine_done {
	const char *source;  /* NUL-terminated; valid during the callback */
	uint64_t seq;
	int status;          /* ATP_OK, ATP_DUPLICATE or a refusal */
	uint32_t flags;      /* ATP_RF_* of the result */
	int64_t qty;         /* RESERVE: confirmed; RELEASE: released; PICK: reservation consumed; HOLD/UNHOLD: moved */
	uint32_t date;       /* RESERVE confirmed against inbound supply: the day it is promised for (atp/inbound.h) */
} atp_engine_done;

typedef void (*atp_engine_done_fn)(void *ctx, const atp_engine_done *d);

/*
 * A change of a position's ATP, as the channel stream takes it: only once
 * the WAL record that caused it is durable. Its place in the stream is
 * (shard, lsn, index): lsn is the record's, index counts the record's
 * deltas from 0 (a tick that expires many lines has many), so per shard
 * places only increase, and replaying the WAL gives every delta again
 * with the same place and values.
 * A BASE delta is a position as a snapshot restored it (old_atp = new_atp,
 * lsn = the snapshot's): recovery gives one per restored position before
 * the deltas of the WAL after the snapshot.
 */
enum atp_engine_delta_kind { ATP_DELTA_CHANGE = 0, ATP_DELTA_BASE = 1 };

typedef struct atp_engine_delta {
	const char *sku;       /* NUL-terminated, in the shard's table: valid as long as the engine */
	const char *location;
	uint64_t lsn;
	uint32_t index;
	uint32_t pos;          /* the position's id in its shard */
	uint16_t shard;
	uint8_t sku_len, loc_len;
	uint8_t kind;          /* enum atp_engine_delta_kind */
	uint8_t pad;
	uint16_t shards;       /* the engine's shard count: the stream's partitions */
	int64_t old_atp, new_atp;
	uint64_t version;      /* the position's, after the change */
} atp_engine_delta;

/* Deltas in per-shard order (shards interleave); n >= 1. */
typedef void (*atp_engine_delta_fn)(void *ctx, const atp_engine_delta *d, size_t n);

/*
 * For the deterministic simulator (tests/sim) only: with io in the config,
 * atp_engine_open() starts no thread and no io_uring. The workers run
 * when the router's thread turns them (atp_engine_turn(), and wherever
 * the router would wait for a worker); a group's write + fdatasync of a
 * shard goes to io->submit (slot: the shard's place in its worker), and
 * io->poll answers each with atp_engine_io_done(), in whatever order and
 * turn the simulator chooses (wait: the worker cannot go on without one).
 * Snapshots are then written in the worker's turn, not by a child.
 */
typedef struct atp_engine_io {
	void *ctx;
	void (*submit)(void *ctx, uint32_t worker, uint32_t slot, int fd, const void *buf, size_t len, uint64_t off);
	void (*poll)(void *ctx, uint32_t worker, bool wait);
	uint64_t (*mono_ns)(void *ctx);  /* the simulated clock, in place of CLOCK_MONOTONIC where it steers (the sources file's cadence) */
} atp_engine_io;

typedef struct atp_engine_config {
	uint32_t shards;            /* of a new data directory; an existing one keeps its own */
	uint32_t workers;           /* threads; at most shards */
	int first_cpu;              /* worker i pinned to CPU (first_cpu + i) % CPUs; -1: not pinned */
	int router_cpu;             /* atp_engine_open() pins the calling thread (the router) here; -1: not */
	atp_core_config core;       /* per shard */
	atp_wal_config wal;
	uint64_t snapshot_wal_bytes;  /* a shard snapshots once its WAL grew this much; 0: only on command */
	uint64_t wal_retention_ms;  /* keep snapshots and WAL so that every moment this far back can be replayed; 0: what recovery needs */
	uint32_t ring_bytes;        /* router -> worker ring, power of two */
	/*
	 * A few frames for a worker that sleeps and released its last group
	 * this long ago or more are applied and made durable by the router
	 * itself, in atp_engine_poll(): a trickle costs no thread wake-ups,
	 * and the caller waits for that fdatasync. 0: never.
	 */
	uint64_t router_commit_gap_ns;
	atp_engine_done_fn on_done; /* optional: every durable completion, in seq order per shard */
	void *ctx;
	int notify_fd;              /* optional (-1: none): an eventfd the workers write to when completions wait */
	/*
	 * Optional: every durable delta, from atp_engine_open() (recovery: the
	 * snapshot's BASE deltas, then the WAL's) and then from the calls that
	 * collect completions, in the router's thread. Without it workers keep
	 * no deltas.
	 */
	atp_engine_delta_fn on_delta;
	void *delta_ctx;
	/* Optional: after each shard recovered in atp_engine_open() (for a supervisor's status line). */
	void (*on_recovered)(void *ctx, uint32_t shard, uint32_t shards, uint64_t records);
	void *recovered_ctx;
	const atp_engine_io *io;    /* NULL but in the simulator (above) */
} atp_engine_config;

/*
 * 1 shard, the router on CPU 0 and 1 worker on CPU 1, default core and WAL,
 * snapshots every 256 MiB of WAL, 4 MiB rings, router commits after 2 ms.
 */
atp_engine_config atp_engine_config_default(void);

typedef struct atp_engine atp_engine;

/* With io: one turn of every worker; whether any applied a record. */
bool atp_engine_turn(atp_engine *e);
/* With io: the write (bytes written, or -errno) and fdatasync (0 or -errno) io->submit was given for worker's slot. */
void atp_engine_io_done(atp_engine *e, uint32_t worker, uint32_t slot, int write_res, int fsync_res);

/* Create or open the data directory, lock it, recover every shard and start the workers. NULL with err. */
atp_engine *atp_engine_open(const char *dir, const atp_engine_config *cfg, char *err, size_t errlen);

/*
 * Submit one event. ATP_OK: queued (its completion comes later);
 * ATP_DUPLICATE: seq already accepted, nothing queued; ATP_E_GAP: seq
 * beyond the next expected (*expected gets it); another ATP_E_* when the
 * event is malformed (its seq is not consumed); ATP_E_IO when the engine
 * has failed.
 */
int atp_engine_submit(atp_engine *e, const atp_event *ev, uint64_t *expected);
/*
 * The same to a named shard: the shard of ev's SKU (else ATP_E_INVAL), or
 * any shard for a RELEASE of a whole reservation (atp_event_releases_all),
 * which belongs to every shard and which atp_engine_submit() refuses
 * (ATP_E_SKU): its sender submits it to each shard, under a seq of its own.
 */
int atp_engine_submit_to(atp_engine *e, const atp_event *ev, uint32_t shard, uint64_t *expected);
/*
 * Submit a whole order: n RESERVE lines (1 .. ATP_ORDER_LINES_MAX of
 * atp/record.h) of one source with contiguous seqs from lines[0].seq, one
 * ref, distinct positions, without ATP_EVF_PARTIAL: every line is
 * confirmed in full, or none is (each line's completion says so: confirmed
 * qty, or 0; a line that already exists, a retry, answers its first
 * result, as with atp_engine_submit, and denies the order's new lines).
 *
 * How, without a lock: the lines go to their shards behind an ORDER mark
 * naming every shard of the order. Each worker holding parts judges them
 * when it reaches the order (nothing after it in its ring is applied
 * first); workers meet in a slot (engine_internal.h), then each logs and
 * applies its part whole or denied (ATP_EVF_DENY). No other reservation
 * ever sees stock held by an order that then fails: nothing is held
 * before the decision. A worker releases the completions and deltas of a
 * group holding a part only once every part is durable, so after a crash
 * either every part is in its shard's log, or recovery cuts each log
 * before the order (nothing after it there was acknowledged): the order is
 * then unknown everywhere, and a retry under the same ref runs anew.
 *
 * Returns as atp_engine_submit for the first line's seq (ATP_DUPLICATE,
 * ATP_E_GAP: nothing queued); ATP_E_INVAL when the lines break a rule above.
 * A resend that resumes inside an order (the source's durable seq fell
 * between two lines, so the order is whole in its shards) goes as the order
 * of its lines above the source's high-water mark; ATP_DUPLICATE when none is.
 */
int atp_engine_submit_order(atp_engine *e, const atp_event *lines, uint32_t n, uint64_t *expected);
/*
 * Tests only: fn is called at each step of a whole order in each worker
 * (1 judged, 2 applied, 3 durable, 4 about to release), in the worker's thread; a
 * crash test kills the process there. NULL: none.
 */
void atp_engine_test_order_hook(void (*fn)(uint32_t worker, int step));
/*
 * Consume seq of source without an event: the event was dead-lettered
 * (atp/deadletter.h), durably, before this call. The seq is checked as
 * atp_engine_submit() checks it (ATP_OK, ATP_DUPLICATE, ATP_E_GAP with
 * *expected; ATP_E_IO once failed). No shard sees it: it is complete at
 * once, reported to on_done with status `code` (a refusal whose seq is
 * consumed), and durable as soon as every earlier seq of the source is.
 * After a restart the durable seq may end just before it (the shards only
 * hold the events around it): the store's owner then skips it again.
 */
int atp_engine_skip(atp_engine *e, atp_str source, uint64_t seq, int code, uint64_t *expected);
/*
 * Whether `events` more events of any shards can be submitted now without
 * waiting for a worker: a front end that must not block asks before it
 * submits a batch, and stops reading the batch's socket while it is false.
 */
bool atp_engine_can_take(const atp_engine *e, uint32_t events);
/*
 * The engine's time moved to now (an earlier now is ignored). Each event
 * submitted carries it, and its shard first expires the reservations due
 * by then; atp_engine_sync() brings the shards no event reached up to it.
 * Logged with the events, so replay repeats every expiry.
 */
void atp_engine_set_time(atp_engine *e, uint64_t now_ms);
/* The engine's time (the latest atp_engine_set_time). */
uint64_t atp_engine_now_ms(const atp_engine *e);
/* Bring every shard to the engine's time now (expiring what is due), without waiting. 0 or ATP_E_IO. */
int atp_engine_advance(atp_engine *e);
/* Replace the completion callback (a front end created after the engine). */
void atp_engine_set_on_done(atp_engine *e, atp_engine_done_fn fn, void *ctx);
/* Hand staged records to the workers and collect completions; returns how many completions. */
size_t atp_engine_poll(atp_engine *e);
/* Wait until everything submitted is durable. 0 or ATP_E_IO. */
int atp_engine_sync(atp_engine *e);
/* Every shard writes a snapshot now (after everything submitted is durable). 0 or ATP_E_IO. */
int atp_engine_snapshot(atp_engine *e);
/* Drain, sync, snapshot, stop the workers, release the directory. 0, or ATP_E_IO if anything failed. */
int atp_engine_close(atp_engine *e);
/* Stop the workers without a final snapshot (tests of recovery); the directory stays as a crash would leave it. */
void atp_engine_abandon(atp_engine *e);

/* Frames the router has taken so far (events, API calls, orders, of every source): how busy it is. */
uint64_t atp_engine_frames(const atp_engine *e);
/* The seq the router expects next from source (its high-water mark + 1; 1 when unknown). */
uint64_t atp_engine_expected_seq(const atp_engine *e, atp_str source);
/* The highest seq of source such that it and every earlier one are durable or refused; 0 when unknown. */
uint64_t atp_engine_durable_seq(const atp_engine *e, const char *source);
/*
 * A data directory read without opening it (offline tools): its shard
 * count from its meta file, 0; 1 when it has none (not a data directory,
 * or not yet one); -1 when that cannot be read or is not atpd's (err says
 * which). And the directory of one shard: its WAL segments and snapshots.
 */
int atp_engine_dir_shards(const char *dir, uint32_t *shards, char *err, size_t errlen);
void atp_engine_shard_dir(const char *dir, uint32_t index, char *out, size_t n);

/*
 * The sources known (ids 0 .. n-1, the engine's '@' ones too): one's name,
 * its durable seq in *durable, and in *seen the engine's time (ms; the wall
 * clock's under atpd's clock = wall) when its last event was submitted
 * since start, new, duplicate or refused (0: none since start).
 */
uint32_t atp_engine_source_count(const atp_engine *e);
const char *atp_engine_source_at(const atp_engine *e, uint32_t id, uint64_t *durable, uint64_t *seen);
/* The failure message once the engine has failed, else NULL. */
const char *atp_engine_error(const atp_engine *e);

uint32_t atp_engine_shards(const atp_engine *e);
/*
 * The data directory's identity: 32 random bytes written when it was
 * created (or first opened by a version that had none), never changed:
 * tells a directory from another (the channel stream's resume tokens).
 */
void atp_engine_identity(const atp_engine *e, uint8_t out[32]);
uint32_t atp_engine_shard_of(const atp_engine *e, atp_str sku);
/*
 * The position (sku, location) as its shard last applied it (durable or
 * not yet): from any thread, without locks and without going through the
 * rings, never torn. false when it does not exist; out NULL: whether it
 * exists only (cheaper: the position itself is not read).
 */
bool atp_engine_read(const atp_engine *e, atp_str sku, atp_str location, atp_position_view *out);
/* A position as a reader sees it: the key points into the engine's table and lives as long as it. */
typedef struct atp_engine_position {
	atp_str sku;
	atp_str location;
	atp_position_view v;
} atp_engine_position;

/*
 * Every location of sku (any thread, lock-free, each position never torn),
 * in location order: fills up to max, returns how many there are.
 */
size_t atp_engine_read_sku(const atp_engine *e, atp_str sku, atp_engine_position *out, size_t max);
/* The same with each position's inbound curve (atp/inbound.h) in curves[i]: what GetAtpProfile reads. */
size_t atp_engine_read_sku_inbound(const atp_engine *e, atp_str sku, atp_engine_position *out,
				   atp_inbound_curve *curves, size_t max);
/* Any thread: the positions of a shard published so far, ids 0 .. n-1; one of them, or just its key. */
uint32_t atp_engine_positions(const atp_engine *e, uint32_t shard);
void atp_engine_read_id(const atp_engine *e, uint32_t shard, uint32_t id, atp_engine_position *out);
void atp_engine_key(const atp_engine *e, uint32_t shard, uint32_t id, atp_str *sku, atp_str *location);

/* A shard's core: read it only after atp_engine_sync() and before the next submit. */
const atp_core *atp_engine_core(const atp_engine *e, uint32_t shard);

typedef struct atp_engine_stats {
	uint64_t events;          /* completions */
	uint64_t wal_records;
	uint64_t wal_bytes;
	uint64_t fsyncs;          /* group commits */
	uint64_t fsync_ns_hist[40]; /* fsync latency: bucket i counts [2^i, 2^(i+1)) ns */
	uint64_t fsync_ns_sum;
	uint64_t group_hist[20];  /* events per group commit: bucket i counts [2^i, 2^(i+1)) (GROUP_MAX is 2^18) */
	uint64_t snapshots;
	uint64_t snapshot_ns_max; /* longest stall of a worker by a snapshot */
	uint64_t snapshot_unix_ms; /* wall time of the newest snapshot written since start, 0: none */
	uint64_t recovered_records;
	double recovery_seconds;  /* all of opening: the parts below, and the rest (sources, workers) */
	double recovery_table_seconds;     /* allocating the shards' tables (their hash slots are faulted in) */
	double recovery_snapshot_seconds;  /* loading snapshots */
	double recovery_wal_seconds;       /* scanning and replaying the WALs */
	/* The shards' cores, summed, as of each worker's last group commit (recovery included). */
	atp_core_stats core;
	uint64_t wal_segments;    /* segment files held now */
	uint64_t lines_used;      /* reservation lines held: open, and closed ones still remembered */
	uint64_t lines_open;
	uint64_t lines_capacity;
	uint64_t positions_capacity;
	/* The router's side. */
	uint64_t router_waits;    /* times it found a worker's ring full and waited */
	uint64_t router_commits;  /* group commits it made for a sleeping worker (router_commit_gap_ns) */
	uint64_t duplicates;      /* events at or below their source's high-water mark, answered without a shard */
	uint64_t gaps;            /* events past it + 1, refused */
	uint64_t ring_bytes;      /* in the workers' rings now, not yet taken */
	uint64_t ring_capacity;
} atp_engine_stats;

/* The deltas of the lines a record's time expired, in order (atp_core_expire's). */
typedef void (*atp_engine_expiry_fn)(void *ctx, const atp_delta *d, size_t n);
/*
 * What a shard does with a decoded record (workers, recovery and offline
 * replays alike): first expire what is due by its time (the deltas to fn,
 * if not NULL), then apply its event. ATP_OK, or the event's status.
 */
int atp_engine_apply_record(atp_core *core, const atp_record *rec, atp_result *r, atp_engine_expiry_fn fn, void *ctx);

/* Totals over all workers, as each published them after its last group commit (any time, router thread). */
void atp_engine_stats_get(const atp_engine *e, atp_engine_stats *out);
/* The latency under which a fraction q of the fsyncs completed, in ns (from the histogram: an upper bound). */
uint64_t atp_engine_stats_fsync_quantile(const atp_engine_stats *s, double q);

#ifdef __cplusplus
}
#endif

#endif
