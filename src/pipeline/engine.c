/*
 * engine.c — the router side of the engine (see atp/engine.h): the data
 * directory, recovery, per-source sequencing, staging records into the
 * workers' rings and turning completions into durable seqs.
 */
#define _GNU_SOURCE
#include "engine_internal.h"
#include "atp/log.h"

#include "atp/crc32c.h"
#include "atp/snapshot.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Seqs of one source that may be accepted but not yet durable. */
#define WINDOW (1u << 20)
#define STAGE_BYTES (64u << 10)
#define STAGE_PUSH (16u << 10)
#define SOURCES_EVERY_NS 200000000u

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
};

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
		.notify_fd = -1,
	};
}

/* ---- the data directory ---- */

/* The shard count of dir: read from dir/meta, or written there for a new directory. */
static int meta_shards(const char *dir, uint32_t want, uint32_t *shards, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/meta", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		unsigned n = 0;
		int ok = fscanf(f, "atpd data 1\nshards %u\n", &n) == 1 && n >= 1 && n <= ATP_ENGINE_MAX_SHARDS;
		fclose(f);
		if (!ok) {
			atp_errf(err, errlen, "%s: not an atpd data directory file", path);
			return -1;
		}
		if (n != want)
			atp_log(ATP_LOG_INFO, "%s has %u shards (fixed at creation); using them", dir, n);
		*shards = n;
		return 0;
	}
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/meta.tmp", dir);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "atpd data 1\nshards %u\n", want) < 0 || fflush(f) || fsync(fileno(f)) ||
	    fclose(f) || rename(tmp, path)) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*shards = want;
	return 0;
}

/* The directory's identity: read from dir/identity, or drawn at random and written there (atomically). */
static int read_identity(const char *dir, uint8_t id[32], char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], hex[65] = { 0 };
	snprintf(path, sizeof(path), "%s/identity", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		bool ok = fread(hex, 1, 64, f) == 64;
		fclose(f);
		for (int i = 0; ok && i < 32; i++) {
			unsigned b;
			ok = sscanf(hex + 2 * i, "%2x", &b) == 1;
			id[i] = (uint8_t)b;
		}
		if (!ok)
			atp_errf(err, errlen, "%s: not 64 hex digits", path);
		return ok ? 0 : -1;
	}
	if (getentropy(id, 32) < 0) {
		atp_errf(err, errlen, "getentropy: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	snprintf(tmp, sizeof(tmp), "%s/identity.tmp", dir);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", hex) < 0 || fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Data directories this process holds: POSIX locks do not exclude the
 * process itself, so a second engine on one directory is refused here.
 */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	dev_t dev;
	ino_t ino;
} held[64];

/* take: record st as held (false if it already is, or the list is full); else forget it. */
static bool hold(const struct stat *st, bool take)
{
	size_t n = sizeof(held) / sizeof(held[0]), free_slot = n;
	bool ok = true;
	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < n; i++) {
		if (held[i].dev == st->st_dev && held[i].ino == st->st_ino) {
			if (take)
				ok = false;
			else
				held[i] = (struct held){ 0, 0 };
			goto out;
		}
		if (free_slot == n && held[i].dev == 0 && held[i].ino == 0)
			free_slot = i;
	}
	if (take && free_slot < n)
		held[free_slot] = (struct held){ st->st_dev, st->st_ino };
	ok = !take || free_slot < n;
out:
	pthread_mutex_unlock(&held_lock);
	return ok;
}

/*
 * A POSIX record lock on DIR/LOCK: it belongs to this process, so a
 * snapshot child forked from it does not hold it, and it goes when the
 * process dies, however it dies.
 */
static int lock_dir(atp_engine *e, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	snprintf(path, sizeof(path), "%s/LOCK", e->dir);
	e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (e->lock_fd < 0 || fstat(e->lock_fd, &e->lock_st) < 0) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!hold(&e->lock_st, true)) {
		atp_errf(err, errlen, "%s: another atpd holds this data directory (this process)", path);
		close(e->lock_fd);
		e->lock_fd = -1;
		return -1;
	}
	if (fcntl(e->lock_fd, F_SETLK, &fl) < 0) {
		atp_errf(err, errlen, "%s: %s", path,
		    errno == EACCES || errno == EAGAIN ? "another atpd holds this data directory" : strerror(errno));
		hold(&e->lock_st, false);
		close(e->lock_fd);
		e->lock_fd = -1;
		return -1;
	}
	return 0;
}

/* The router's durable seq per source, written atomically: "seq name" per line. */
static int write_sources(atp_engine *e)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/sources", e->dir);
	snprintf(tmp, sizeof(tmp), "%s/sources.tmp", e->dir);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (uint32_t i = 0; i < atp_sources_count(e->sources); i++)
		fprintf(f, "%" PRIu64 " %s\n", e->rs[i].durable, atp_sources_get(e->sources, i)->name);
	int rc = fflush(f) || fsync(fileno(f)) ? -errno : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	e->sources_dirty = false;
	e->sources_written_ns = mono_ns();
	return rc;
}

static int read_sources(atp_engine *e, char *err, size_t errlen)
{
	char path[PATH_MAX], line[256];
	snprintf(path, sizeof(path), "%s/sources", e->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/* "SEQ NAME\n": the name is the rest of the line (it may hold spaces, never a control byte). */
		char *end, *nl = strchr(line, '\n');
		uint64_t seq = strtoull(line, &end, 10);
		atp_str name = atp_str_of(end + 1, nl && end < nl ? (size_t)(nl - end - 1) : 0);
		uint32_t id;
		if (end == line || *end != ' ' || !nl || !atp_str_valid(name, ATP_SOURCE_MAX) ||
		    atp_sources_find(e->sources, name) != ATP_SOURCE_NONE ||
		    (id = atp_sources_intern(e->sources, name)) == ATP_SOURCE_NONE) {
			atp_errf(err, errlen, "%s: bad line: %s", path, line);
			fclose(f);
			return -1;
		}
		atp_sources_at(e->sources, id)->hwm = seq;
		e->rs[id].durable = seq;
	}
	fclose(f);
	return 0;
}

/* ---- recovery ---- */

/*
 * Replay gathers runs of events (their bytes stay in the segment's mapping
 * until the WAL says the segment ends) and applies each run through the
 * core's batch pipeline, every event at its own time, as the worker did; a
 * tick or the end of a segment ends a run.
 */
#define REPLAY_RUN 256

/* Deltas handed to on_delta at once (recovery). */
#define DELTA_CHUNK 256

typedef struct replay_ctx {
	atp_engine *e;
	shard *s;
	uint64_t records;
	uint64_t last_lsn;
	uint32_t n;
	int failed;
	atp_event ev[REPLAY_RUN];
	uint64_t now[REPLAY_RUN];
	uint64_t lsn[REPLAY_RUN];
	/* With on_delta: what the run's expiries gave, by event (a WAL of before ticks carried them), and the output. */
	struct { uint32_t index; atp_delta d; } *lapsed;
	size_t n_lapsed, lapsed_cap;
	uint32_t n_out;
	atp_engine_delta out[DELTA_CHUNK];
} replay_ctx;

static void replay_emit(replay_ctx *rc, const atp_delta *d, uint64_t lsn, uint32_t index)
{
	rc->out[rc->n_out++] = engine_delta(d, rc->s->index, rc->e->n_shards, lsn, index);
	if (rc->n_out == DELTA_CHUNK) {
		rc->e->cfg.on_delta(rc->e->cfg.delta_ctx, rc->out, rc->n_out);
		rc->n_out = 0;
	}
}

static void replay_deltas_done(replay_ctx *rc)
{
	if (rc->n_out)
		rc->e->cfg.on_delta(rc->e->cfg.delta_ctx, rc->out, rc->n_out);
	rc->n_out = 0;
}

/* The expiry sink of a replayed run (recovery may allocate: it is not the hot path). */
static void replay_lapsed(void *ctx, size_t index, const atp_delta *d, size_t n)
{
	replay_ctx *rc = ctx;
	if (rc->n_lapsed + n > rc->lapsed_cap) {
		size_t cap = rc->lapsed_cap ? rc->lapsed_cap * 2 : 1024;
		while (cap < rc->n_lapsed + n)
			cap *= 2;
		void *p = realloc(rc->lapsed, cap * sizeof(*rc->lapsed));
		if (!p) {
			rc->failed = -1;
			return;
		}
		rc->lapsed = p;
		rc->lapsed_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		rc->lapsed[rc->n_lapsed].index = (uint32_t)index;
		rc->lapsed[rc->n_lapsed++].d = d[i];
	}
}

/*
 * A WAL record whose CRC holds is an event the router validated before it
 * was first applied: replay applies it as the worker did, validated. With
 * on_delta, each record's deltas follow (what lapsed before it, then its
 * own), numbered as the worker numbered them.
 */
static int replay_flush(replay_ctx *rc)
{
	atp_result r[REPLAY_RUN];
	atp_event_hash h[REPLAY_RUN];
	for (uint32_t i = 0; i < rc->n; i++)
		atp_core_hash_event(&rc->ev[i], &h[i]);
	rc->n_lapsed = 0;
	atp_core_apply_batch_hashed_at(rc->s->core, rc->ev, h, rc->now, rc->n, r);
	size_t l = 0;
	for (uint32_t i = 0; i < rc->n; i++) {
		if (r[i].status != ATP_OK)
			rc->failed = -1;  /* the WAL holds only what was applied: a refusal now is damage */
		if (!rc->e->cfg.on_delta)
			continue;
		uint32_t index = 0;
		for (; l < rc->n_lapsed && rc->lapsed[l].index == i; l++)
			replay_emit(rc, &rc->lapsed[l].d, rc->lsn[i], index++);
		for (uint32_t k = 0; k < r[i].n_deltas; k++)
			replay_emit(rc, &r[i].deltas[k], rc->lsn[i], index++);
	}
	rc->n = 0;
	return rc->failed;
}

typedef struct replay_tick {
	replay_ctx *rc;
	uint64_t lsn;
	uint32_t index;
} replay_tick;

static void replay_tick_lapsed(void *ctx, const atp_delta *d, size_t n)
{
	replay_tick *t = ctx;
	for (size_t i = 0; i < n; i++)
		replay_emit(t->rc, &d[i], t->lsn, t->index++);
}

static int replay_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	replay_ctx *rc = ctx;
	atp_record rec;
	if (!p)
		return replay_flush(rc);  /* the segment is unmapped next */
	if (rc->failed || len > ATP_RECORD_MAX)
		return -1;
	if (atp_record_decode(p, len, &rec) < 0 || rec.kind == ATP_REC_SNAPSHOT)
		return -1;
	assert(lsn == rc->last_lsn + 1);  /* the WAL hands over every record after the snapshot, in LSN order (wal.c checks it too) */
	rc->last_lsn = lsn;
	rc->records++;
	if (rec.kind == ATP_REC_EVENT) {
		rc->ev[rc->n] = rec.ev;
		rc->lsn[rc->n] = lsn;
		rc->now[rc->n++] = rec.now;
		return rc->n == REPLAY_RUN ? replay_flush(rc) : 0;
	}
	atp_result r;
	if (replay_flush(rc) < 0)
		return -1;
	replay_tick t = { rc, lsn, 0 };
	bool deltas = rc->e->cfg.on_delta != NULL;
	return shard_apply(rc->s->core, &rec, &r, deltas ? replay_tick_lapsed : NULL, &t) == ATP_OK ? 0 : -1;
}

/* Every position a snapshot restored, as BASE deltas at its LSN. */
static void emit_base(replay_ctx *rc, uint64_t lsn)
{
	const atp_table *t = atp_core_table(rc->s->core);
	for (uint32_t id = 0; id < atp_table_count(t); id++) {
		const atp_position *p = atp_table_get(t, id);
		int64_t atp = atp_position_atp(p);
		atp_delta d = { .sku = atp_str_of(atp_table_sku(t, id), p->sku_len),
				.location = atp_str_of(atp_table_location(t, id), p->loc_len),
				.old_atp = atp, .new_atp = atp, .version = p->version, .pos = id };
		rc->out[rc->n_out] = engine_delta(&d, rc->s->index, rc->e->n_shards, lsn, 0);
		rc->out[rc->n_out++].kind = ATP_DELTA_BASE;
		if (rc->n_out == DELTA_CHUNK)
			replay_deltas_done(rc);
	}
	replay_deltas_done(rc);
}

static int open_shard(atp_engine *e, shard *s, char *err, size_t errlen)
{
	snprintf(s->dir, sizeof(s->dir), "%s/shard-%03u", e->dir, s->index);
	if (mkdir(s->dir, 0755) < 0 && errno != EEXIST) {
		atp_errf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	uint64_t t0 = mono_ns();
	s->core = atp_core_create(&e->cfg.core);
	if (!s->core) {
		atp_errf(err, errlen, "shard %u: cannot allocate the core", s->index);
		return -1;
	}
	uint64_t t1 = mono_ns(), lsn;
	if (atp_snapshot_load(s->dir, s->core, &lsn, err, errlen) < 0)
		return -1;
	uint64_t t2 = mono_ns();
	replay_ctx *rc = calloc(1, sizeof(*rc));
	if (!rc) {
		atp_errf(err, errlen, "out of memory");
		return -1;
	}
	rc->e = e;
	rc->s = s;
	rc->last_lsn = lsn;
	if (e->cfg.on_delta) {
		/* The channel stream takes the state at the snapshot, then regenerates every delta after it. */
		emit_base(rc, lsn);
		atp_core_set_expiry_sink(s->core, replay_lapsed, rc);
	} else {
		atp_core_set_deltas(s->core, false);  /* nobody takes them */
	}
	s->wal = atp_wal_open(s->dir, &e->cfg.wal, lsn, replay_record, rc, err, errlen);
	if (s->wal && replay_flush(rc) < 0) {
		atp_errf(err, errlen, "shard %u: a WAL record that was applied once is refused in replay", s->index);
		atp_wal_close(s->wal);
		s->wal = NULL;
	}
	if (e->cfg.on_delta)
		replay_deltas_done(rc);
	atp_core_set_expiry_sink(s->core, NULL, NULL);
	uint64_t records = rc->records;
	free(rc->lapsed);
	free(rc);
	atp_core_set_deltas(s->core, true);
	if (!s->wal)
		return -1;
	uint64_t t3 = mono_ns();
	e->recovery.recovered_records += records;
	e->recovery.recovery_table_seconds += (t1 - t0) / 1e9;
	e->recovery.recovery_snapshot_seconds += (t2 - t1) / 1e9;
	e->recovery.recovery_wal_seconds += (t3 - t2) / 1e9;
	if (lsn || records)
		atp_log(ATP_LOG_INFO, "shard %u recovered: snapshot of lsn %" PRIu64 " (%.3f s), %" PRIu64
				" WAL records replayed (%.3f s), %u positions; tables allocated in %.3f s",
			s->index, lsn, (t2 - t1) / 1e9, records, (t3 - t2) / 1e9, atp_table_count(atp_core_table(s->core)),
			(t1 - t0) / 1e9);
	return 0;
}

/*
 * An internal source (its name starts with '@': the engine's own API)
 * never resends an event, so after a crash it continues past the highest
 * seq any shard applied, not from the router's durable seq, which lags
 * (an event lost with the crash is simply never acknowledged).
 */
static int resume_internal_sources(atp_engine *e, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < e->n_shards; i++) {
		const atp_sources *ss = atp_core_sources(e->shards[i].core);
		for (uint32_t k = 0; k < atp_sources_count(ss); k++) {
			const atp_source *src = atp_sources_get(ss, k);
			if (src->name[0] != '@')
				continue;
			atp_str name = atp_str_of(src->name, src->name_len);
			uint32_t id = atp_sources_find(e->sources, name);
			if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(e->sources, name)) == ATP_SOURCE_NONE) {
				atp_errf(err, errlen, "too many sources");
				return -1;
			}
			atp_source *r = atp_sources_at(e->sources, id);
			if (src->hwm > r->hwm)
				r->hwm = e->rs[id].durable = src->hwm;
		}
	}
	return 0;
}

/* ---- open and close ---- */

static void destroy(atp_engine *e)
{
	for (uint32_t i = 0; e->workers && i < e->n_workers; i++) {
		worker *w = &e->workers[i];
		worker_join(w);
		atp_ring_destroy(w->in);
		atp_ring_destroy(w->out);
		atp_ring_destroy(w->deltas);
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
	if (e->lock_fd >= 0) {
		hold(&e->lock_st, false);
		close(e->lock_fd);
	}
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
		w->notify_fd = e->cfg.notify_fd;
		w->shards_total = e->n_shards;
		pthread_mutex_init(&w->stats_lock, NULL);
		w->in = atp_ring_create_mirrored(e->cfg.ring_bytes, 1);
		w->out = atp_ring_create(GROUP_MAX * 2, sizeof(completion));
		if (e->cfg.on_delta && !(w->deltas = atp_ring_create(DELTA_RING, sizeof(atp_engine_delta)))) {
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
	if (cfg->shards < 1 || cfg->shards > ATP_ENGINE_MAX_SHARDS || cfg->workers < 1 ||
	    cfg->workers > ATP_ENGINE_MAX_WORKERS || cfg->ring_bytes < (64u << 10) ||
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
	uint64_t t0 = mono_ns();
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST)) {
		atp_errf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (lock_dir(e, err, errlen) < 0 || meta_shards(dir, cfg->shards, &e->n_shards, err, errlen) < 0 ||
	    read_identity(dir, e->identity, err, errlen) < 0)
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
	if (!e->shards || !e->workers || !e->stages || !e->shard_now || !e->sources || !e->rs) {
		atp_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (read_sources(e, err, errlen) < 0)
		goto fail;
	for (uint32_t i = 0; i < e->n_shards; i++) {
		e->shards[i].index = i;
		if (open_shard(e, &e->shards[i], err, errlen) < 0)
			goto fail;
		if (e->cfg.on_recovered)
			e->cfg.on_recovered(e->cfg.recovered_ctx, i, e->n_shards, e->recovery.recovered_records);
	}
	if (resume_internal_sources(e, err, errlen) < 0)
		goto fail;
	e->recovery.recovery_seconds = (mono_ns() - t0) / 1e9;
	if (start_workers(e, err, errlen) < 0)
		goto fail;
	if (cfg->router_cpu >= 0)
		pin_thread(cfg->router_cpu, "the router");
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
		atp_engine_done d = { atp_sources_get(e->sources, c->rsrc)->name, c->seq, c->status, c->flags, c->qty };
		e->cfg.on_done(e->cfg.ctx, &d);
	}
}

/* A worker's published deltas to on_delta, where they lie in the ring (taken before its completions, which they precede). */
static void collect_deltas(atp_engine *e, worker *w)
{
	const void *d;
	uint32_t k;
	while ((k = atp_ring_peek(w->deltas, &d)) > 0) {
		k = k < DELTA_CHUNK ? k : DELTA_CHUNK;
		e->cfg.on_delta(e->cfg.delta_ctx, d, k);
		atp_ring_consume(w->deltas, k);
	}
}

static size_t collect(atp_engine *e)
{
	completion c[256];
	size_t total = 0;
	for (uint32_t i = 0; i < e->n_workers; i++) {
		uint32_t k;
		if (e->workers[i].deltas)
			collect_deltas(e, &e->workers[i]);
		while ((k = atp_ring_pop(e->workers[i].out, c, 256)) > 0) {
			/* The deltas published before these completions are visible now: they go first. */
			if (e->workers[i].deltas)
				collect_deltas(e, &e->workers[i]);
			for (uint32_t j = 0; j < k; j++)
				complete(e, &c[j]);
			total += k;
		}
	}
	if (e->sources_dirty && mono_ns() - e->sources_written_ns > SOURCES_EVERY_NS)
		write_sources(e);
	return total;
}

/* Push worker i's staged frames into its ring, collecting completions while it is full. */
static int push_stage(atp_engine *e, uint32_t i)
{
	stage *st = &e->stages[i];
	unsigned round = 0;
	if (!st->len)
		return 0;
	while (!atp_ring_push_all(e->workers[i].in, st->buf, st->len)) {
		if (engine_failed(e))
			return ATP_E_IO;
		e->router_waits += round == 0;
		worker_ring(&e->workers[i]);
		if (!collect(e))
			backoff(&round);
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
		const atp_ring *in = e->workers[i].in;
		if ((uint64_t)atp_ring_capacity(in) - atp_ring_count(in) < e->stages[i].len + need)
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

static int submit(atp_engine *e, const atp_event *ev, uint32_t s, const atp_event_hash *hash, uint64_t *expected)
{
	if (engine_failed(e))
		return ATP_E_IO;
	int rc = atp_event_validate(ev);
	if (rc)
		return rc;
	uint32_t id = e->last_source;
	const atp_source *last = id == ATP_SOURCE_NONE ? NULL : atp_sources_get(e->sources, id);
	if (!last || last->name_len != ev->source.len || memcmp(last->name, ev->source.ptr, ev->source.len) != 0) {
		id = atp_sources_find(e->sources, ev->source);
		if (id == ATP_SOURCE_NONE && (id = atp_sources_intern(e->sources, ev->source)) == ATP_SOURCE_NONE)
			return ATP_E_SOURCES_FULL;
		e->last_source = id; /* events mostly come in runs of one source: skip the hash next time */
	}
	atp_source *src = atp_sources_at(e->sources, id);
	rsource *r = &e->rs[id];
	r->seen = e->now ? e->now : 1;
	if (expected)
		*expected = src->hwm + 1;
	if (ev->seq <= src->hwm) {
		e->duplicates++;
		return ATP_DUPLICATE;
	}
	if (ev->seq > src->hwm + 1) {
		e->gaps++;
		return ATP_E_GAP;
	}
	if (!r->done && !(r->done = calloc(WINDOW / 64, sizeof(uint64_t))))
		return ATP_E_NOMEM;
	for (unsigned round = 0; ev->seq - r->durable >= WINDOW;) {
		if (flush_stages(e) < 0)
			return ATP_E_IO;
		if (!collect(e))
			backoff(&round);
	}
	uint8_t *rec = stage_reserve(e, s);
	if (!rec)
		return ATP_E_IO;
	if ((rc = stage_commit(e, s, id, atp_record_encode_event(ev, e->now, rec), hash)) < 0)
		return rc;
	e->shard_now[s] = e->now;
	src->hwm = ev->seq;
	if (expected)
		*expected = ev->seq + 1;
	return ATP_OK;
}

uint64_t atp_engine_now(const atp_engine *e)
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
	flush_stages(e);
	return collect(e);
}

int atp_engine_sync(atp_engine *e)
{
	if (send_time(e) < 0 || flush_stages(e) < 0)
		return ATP_E_IO;
	for (unsigned round = 0; e->completed < e->submitted;) {
		if (engine_failed(e))
			return ATP_E_IO;
		if (!collect(e))
			backoff(&round);
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
	if (rc == 0 && write_sources(e) < 0) {
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
	if (!sku.len || sku.len > ATP_SKU_MAX)
		return 0;
	const atp_table *t = atp_core_table(e->shards[atp_engine_shard_of(e, sku)].core);
	size_t n = 0;
	for (uint32_t id = atp_table_sku_first(t, sku); id != ATP_POS_NONE; id = atp_table_sku_next(t, id), n++) {
		if (n >= max)
			continue;
		/* Insert in location order (a SKU has a handful of locations). */
		atp_engine_position p;
		position_of(t, id, &p);
		size_t j = n;
		for (; j > 0 && atp_str_cmp(out[j - 1].location, p.location) > 0; j--)
			out[j] = out[j - 1];
		out[j] = p;
	}
	return n;
}

uint32_t atp_engine_positions(const atp_engine *e, uint32_t index)
{
	return atp_table_published(atp_core_table(e->shards[index].core));
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
	out->duplicates = e->duplicates;
	out->gaps = e->gaps;
	for (uint32_t i = 0; i < e->n_workers; i++) {
		out->ring_bytes += atp_ring_count(e->workers[i].in);
		out->ring_capacity += atp_ring_capacity(e->workers[i].in);
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
