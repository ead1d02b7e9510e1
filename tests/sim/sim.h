/*
 * sim.h — what the simulator's two files share (sim.c: the disk, the
 * checks, crashes and restarts, one seed; sim_workload.c: the senders'
 * events and whole orders): the world's size and names, the records kept
 * to check the engine against the model, the one simulator state S, and
 * the helpers both use. Single-threaded, like the simulator.
 */
#ifndef ATP_SIM_H
#define ATP_SIM_H

#include "../../tools/lib/prng.h"
#include "../model.h"

#include "atp/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { SKUS = 8, LOCS = 3, SOURCES = 3, REFS = 12, SHARDS = 4, WORKERS = 2, MAX_OPS = 64, MAX_POS = 64 };

extern const char *const sku_names[SKUS];
extern const char *const loc_names[LOCS];
extern const char *const src_names[SOURCES];
extern const char *const ref_names[REFS];

#define STR(s) atp_str_of((s), strlen(s))

/* An event as its sender keeps it, to send again after a crash. */
typedef struct gev {
	atp_event ev;  /* strings point at the name tables */
	int src, sku, loc, to, ref;
	int order;     /* 0: an event of its own; n: the first of a whole order's n RESERVE lines; -1: a later one */
} gev;

/* A record the router sent a shard, in order: an event (src >= 0) or a tick. */
typedef struct rec {
	int src;
	uint64_t seq;
	uint64_t now;
	bool acked;
	bool deny;     /* a line of a whole order that was refused (ATP_EVF_DENY) */
	mresult want;  /* the model's result, when an event */
} rec;

/* A whole order sent: where its mark went in each of its shards' logs (to check after a restart: all or none kept). */
typedef struct sent_order {
	uint64_t seq;      /* of its first line */
	int n_parts;
	int shard[SHARDS];
	size_t mark[SHARDS];
	int lines[SHARDS];
	int applied[SHARDS];  /* of those lines, the ones not duplicates there: a duplicate changes nothing to see */
} sent_order;

/* A group's write + fdatasync handed to us, not yet completed. */
typedef struct op {
	uint32_t worker, slot;
	int fd;
	const void *buf;
	size_t len;
	uint64_t off;
} flight_op;

typedef struct sim {
	uint64_t seed;
	int step;
	bool verbose, calm;  /* calm: no crash, no fault (to tell the model from the faults) */
	atp_prng g;
	char dir[256];
	atp_engine *e;
	atp_engine_io io;
	bool deltas;
	uint64_t now;  /* the simulated clock, ms; never goes back, across restarts too */
	/* senders: hist[src][seq - 1] for seq < next */
	gev *hist[SOURCES];
	uint64_t next[SOURCES], cap[SOURCES];
	uint64_t accepted[SOURCES];  /* the router's last accepted seq, as the sender knows it */
	/* shards */
	model *m[SHARDS];            /* after every record sent to the shard */
	model *applied[SHARDS];      /* after the records its worker has applied so far */
	size_t n_applied[SHARDS];
	rec *log[SHARDS];
	size_t n_log[SHARDS], cap_log[SHARDS], acked_len[SHARDS];
	uint64_t shard_now[SHARDS];  /* the router's: time last sent to the shard */
	sent_order orders[256];     /* the newest, a ring */
	uint64_t n_orders, orders_whole, orders_denied;
	/* the disk */
	flight_op ops[MAX_OPS];
	int n_ops;
	uint64_t io_calls, dead_at;
	bool dead;
	uint32_t p_fault;  /* per million I/O calls */
	/* the channel stream, as its consumer sees it */
	bool seen[SHARDS][MAX_POS];
	int64_t seen_atp[SHARDS][MAX_POS];
	uint64_t seen_version[SHARDS][MAX_POS];
	/* what happened */
	uint64_t kills, power_cuts, faults, deaths, syncs, snapshots, acked, sent, resent_dups;
} sim;

extern sim S;

/* Reports the seed, the step and why, with the command that replays it; exits 1. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define say(...) do { if (S.verbose) { printf("[%" PRIu64 ":%d] ", S.seed, S.step); printf(__VA_ARGS__); printf("\n"); } } while (0)

static inline uint64_t below(uint64_t n)
{
	return atp_prng_below(&S.g, n);
}

static inline bool engine_down(void)
{
	return atp_engine_error(S.e) != NULL;
}

/* The core's time moves only forward, and lines lapse only when it moves (a line due already waits for that). */
static inline void model_time(model *m, uint64_t now)
{
	if (now > m->now)
		m_expire(m, now);
}

/* sim.c: the model's events, and the router's records mirrored. */
mresult model_apply(model *m, const gev *g, uint64_t now);
mresult rec_apply(model *m, const rec *r);  /* a record the log holds, applied to a model (denied or not, at its time) */
void log_rec(int k, rec r);

/* sim_workload.c: the senders. */
int sim_submit_next(int src);  /* a source's next event (or the whole order it begins), to the router and the log */
void sim_send(void);           /* one send of a random source: its next event, or an old seq, or a gap */

#endif
