/*
 * engine_router.h — the router's state (struct atp_engine) and what its
 * three files share: engine.c (open and close, routing, completions,
 * reads), engine_dir.c (the data directory: its lock, meta, identity and
 * sources files) and engine_recovery.c (each shard's snapshot and WAL
 * replayed into its core). The router's thread only, except where
 * atp/engine.h says otherwise.
 */
#ifndef ATP_ENGINE_ROUTER_H
#define ATP_ENGINE_ROUTER_H

#include "engine_internal.h"

#include "atp/sources.h"

#include <sys/stat.h>

/* Deltas handed to on_delta at once (recovery, completions). */
#define DELTA_CHUNK 256

typedef struct rsource {
	uint64_t durable;  /* every seq <= durable completed */
	uint64_t *done;    /* bit (seq % WINDOW): completed, above durable */
	uint64_t seen;     /* the engine's time at its last event since start (new, duplicate or refused); 0: none */
} rsource;

typedef struct stage {
	uint8_t *buf;
	uint32_t len;
} stage;

struct atp_engine {
	char dir[PATH_MAX - 64];
	int lock_fd;
	struct stat lock_st;   /* of DIR/LOCK, while held */
	atp_engine_config cfg;
	uint32_t n_shards, n_workers;
	shard *shards;
	worker *workers;
	stage *stages;
	atp_sources *sources;  /* name -> id; hwm = the highest seq accepted */
	rsource *rs;
	uint64_t submitted, completed;  /* frames, all kinds */
	uint64_t router_waits;          /* times the router found a worker's ring full */
	uint64_t router_commits;        /* group commits it made for a sleeping worker (push_or_commit) */
	uint64_t duplicates, gaps;      /* events the router answered itself */
	uint64_t snap_acks;
	uint64_t now;          /* the engine's time, stamped on every event */
	uint64_t *shard_now;   /* the time each shard was last sent */
	uint32_t last_source;  /* the source of the last event submitted, ATP_SOURCE_NONE before */
	bool sources_dirty;
	uint64_t sources_written_ns;
	int failed;
	char error[600];
	atp_engine_stats recovery;
	uint8_t identity[32];  /* DIR/identity */
	order_slot *orders;    /* ORDER_SLOTS meeting places of multi-worker whole orders */
	uint64_t order_next;   /* the next whole order's number: past every shard's (atp_core_order_hwm) */
};

/* The router's clock where it steers what is written: the simulator's under atp_engine_io. */
static inline uint64_t pipe_router_ns(const atp_engine *e)
{
	return e->cfg.io ? e->cfg.io->mono_ns(e->cfg.io->ctx) : pipe_mono_ns();
}

/* engine_dir.c */
/* The shard count of dir: read from dir/meta, or want written there for a new directory. 0 or -1 (err). */
int pipe_dir_shards(const char *dir, uint32_t want, uint32_t *shards, char *err, size_t errlen);
/* dir's identity (random at creation; resume tokens carry it). 0 or -1 (err). */
int pipe_dir_identity(const char *dir, uint8_t id[32], char *err, size_t errlen);
/* Take DIR/LOCK, or -1 (err) when another atpd, or this process, holds it; pipe_dir_unlock lets it go. */
int pipe_dir_lock(atp_engine *e, char *err, size_t errlen);
void pipe_dir_unlock(atp_engine *e);
/* The durable seq of every source, written atomically to DIR/sources: 0 or -errno. */
int pipe_dir_write_sources(atp_engine *e);
/* ... and read back at open (none: a new directory). 0 or -1 (err). */
int pipe_dir_read_sources(atp_engine *e, char *err, size_t errlen);

/* engine_recovery.c */
/*
 * Every shard's newest good snapshot and the WAL after it (deltas to
 * on_delta), each shard's log first cut before the first whole order some
 * other part of which is not in its shard's log. 0 or -1 (err).
 */
int pipe_recover(atp_engine *e, char *err, size_t errlen);
/* Internal ('@') sources continue after the highest seq any shard applied. 0 or -1 (err). */
int pipe_resume_internal_sources(atp_engine *e, char *err, size_t errlen);

#endif
