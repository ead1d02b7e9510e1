/*
 * import_engine.c — atpctl import --data DIR: replay an event CSV through
 * the durable engine (router, shard workers, WAL with group commit).
 *
 * Rows at or below a source's durable seq (a previous import, or one cut
 * short by a crash) are skipped; the rest are submitted in order, the
 * engine's time advancing with occurred_at. With --progress, stdout first
 * gets "recovered SOURCE SEQ" per source the data directory held (the
 * highest seq of it any shard applied), then "durable SOURCE SEQ" lines as
 * acknowledgements come in, so a test that kills the process knows what
 * was acknowledged and what came back.
 */
#include "import.h"

#include "csv_events.h"
#include "positions_csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_NAMES 64

typedef struct run {
	atp_engine *e;
	uint64_t refused;
	char *names[MAX_NAMES];  /* sources seen, for the progress lines */
	uint32_t n_names;
	double last_print;
} run;

static uint64_t engine_hwm(const void *ctx, atp_str source)
{
	char name[ATP_SOURCE_MAX + 1];
	snprintf(name, sizeof(name), "%.*s", (int)source.len, source.ptr);
	return atp_engine_durable_seq(ctx, name);
}

static void on_done(void *ctx, const atp_engine_done *d)
{
	run *r = ctx;
	if (d->status < 0) {
		r->refused++;
		fprintf(stderr, "refused: source %s seq %" PRIu64 ": %s (%s)\n", d->source, d->seq,
			atp_status_message(d->status), atp_status_name(d->status));
	}
}

static void note_source(run *r, atp_str s)
{
	for (uint32_t i = 0; i < r->n_names; i++)
		if (strlen(r->names[i]) == s.len && memcmp(r->names[i], s.ptr, s.len) == 0)
			return;
	if (r->n_names < MAX_NAMES && (r->names[r->n_names] = strndup(s.ptr, s.len)))
		r->n_names++;
}

/* Before the first submit: per source, the highest seq any shard holds (with one shard, it holds every one up to it). */
static void print_recovered(const atp_engine *e)
{
	for (uint32_t i = 0; i < atp_engine_shards(e); i++) {
		const atp_sources *ss = atp_core_sources(atp_engine_core(e, i));
		for (uint32_t k = 0; k < atp_sources_count(ss); k++) {
			const atp_source *src = atp_sources_get(ss, k);
			uint64_t max = 0;
			bool first = true;
			for (uint32_t j = 0; j < atp_engine_shards(e); j++) {
				const atp_sources *o = atp_core_sources(atp_engine_core(e, j));
				uint32_t id = atp_sources_find(o, atp_str_of(src->name, src->name_len));
				if (id == ATP_SOURCE_NONE)
					continue;
				first = first && j >= i;
				if (atp_sources_get(o, id)->hwm > max)
					max = atp_sources_get(o, id)->hwm;
			}
			if (first) /* printed once, by the first shard that knows it */
				printf("recovered %.*s %" PRIu64 "\n", (int)src->name_len, src->name, max);
		}
	}
}

static void print_durable(run *r)
{
	for (uint32_t i = 0; i < r->n_names; i++)
		printf("durable %s %" PRIu64 "\n", r->names[i], atp_engine_durable_seq(r->e, r->names[i]));
	fflush(stdout);
	r->last_print = now_seconds();
}

static int submit_all(run *r, const input *in, bool progress, bool frozen_clock, uint64_t sync_every,
		      uint64_t *skipped)
{
	event_iter it;
	atp_event ev;
	int rc;
	if (iter_open(&it, in, false) < 0)
		return -1;
	for (uint64_t n = 0; (rc = iter_next(&it, &ev)) > 0; n++) {
		if (progress) {
			note_source(r, ev.source);
			if ((n & 1023) == 0 && now_seconds() - r->last_print > 0.01) {
				atp_engine_poll(r->e);
				print_durable(r);
			}
		}
		if (!frozen_clock)
			atp_engine_set_time(r->e, it.occurred_at);
		int st = atp_engine_submit(r->e, &ev, NULL);
		if (st == 0 && sync_every && (n + 1) % sync_every == 0) {
			st = atp_engine_sync(r->e);
			if (st == 0 && progress)
				print_durable(r);
		}
		if (st == ATP_DUPLICATE) {
			(*skipped)++;
		} else if (st < 0) {
			fprintf(stderr, "%s: %s (%s)%s%s\n", iter_where(&it), atp_status_message(st), atp_status_name(st),
				st == ATP_E_IO ? ": " : "", st == ATP_E_IO ? atp_engine_error(r->e) : "");
			rc = -1;
			break;
		}
	}
	iter_close(&it);
	return rc;
}

static void print_engine(const atp_engine *e, uint64_t submitted, double seconds)
{
	atp_engine_stats s;
	struct rusage ru;
	atp_engine_stats_get(e, &s);
	getrusage(RUSAGE_SELF, &ru);
	printf("engine: %u shards; %" PRIu64 " events durable in %.3f s (%.2f M events/s, fsync on); "
	       "%" PRIu64 " group commits, %.0f events per fsync, fsync p50 %.2f ms p99 %.2f ms\n",
	       atp_engine_shards(e), submitted, seconds, submitted / seconds / 1e6, s.fsyncs,
	       s.fsyncs ? (double)s.wal_records / s.fsyncs : 0.0, atp_engine_stats_fsync_quantile(&s, 0.5) / 1e6,
	       atp_engine_stats_fsync_quantile(&s, 0.99) / 1e6);
	printf("  WAL %.1f MB in %" PRIu64 " records; %" PRIu64 " snapshots (longest worker stall %.1f ms); "
	       "recovery %" PRIu64 " records in %.3f s (tables %.3f s, snapshot %.3f s, WAL %.3f s); peak RSS %.0f MB\n",
	       s.wal_bytes / 1e6, s.wal_records, s.snapshots, s.snapshot_ns_max / 1e6, s.recovered_records,
	       s.recovery_seconds, s.recovery_table_seconds, s.recovery_snapshot_seconds, s.recovery_wal_seconds,
	       ru.ru_maxrss / 1024.0);
}

int import_engine(const input *in, const char *data, const atp_engine_config *cfg_in, const char *positions,
		  bool progress, bool frozen_clock, uint64_t sync_every)
{
	run r = { 0 };
	atp_engine_config cfg = *cfg_in;
	char err[600];
	cfg.on_done = on_done;
	cfg.ctx = &r;
	r.e = atp_engine_open(data, &cfg, err, sizeof(err));
	if (!r.e) {
		fprintf(stderr, "atpctl import: %s\n", err);
		return 1;
	}
	uint64_t rows = 0, bad, skipped = 0;
	if ((bad = validate(in, engine_hwm, r.e, cfg.core.max_sources, &rows)) > 0) {
		fprintf(stderr, "%s: %" PRIu64 " bad rows; nothing applied\n", in->path, bad);
		atp_engine_close(r.e);
		return 1;
	}
	if (progress) { /* where this run resumes: what the previous ones made durable */
		printf("resume\n");
		print_recovered(r.e);
	}
	double t0 = now_seconds();
	int rc = submit_all(&r, in, progress, frozen_clock, sync_every, &skipped);
	if (rc == 0)
		rc = atp_engine_sync(r.e);
	double seconds = now_seconds() - t0;
	if (rc == 0) {
		if (progress)
			print_durable(&r);
		const atp_core *cores[ATP_ENGINE_SHARDS_MAX];
		uint32_t n = atp_engine_shards(r.e);
		for (uint32_t i = 0; i < n; i++)
			cores[i] = atp_engine_core(r.e, i);
		print_summary(cores, n, rows, skipped, seconds);
		if (skipped)
			printf("  of which %" PRIu64 " rows at or below their source's accepted seq (duplicates, or durable "
			       "before) were acknowledged by the router and skipped\n", skipped);
		print_engine(r.e, rows - skipped, seconds);
		if (positions) {
			FILE *f = fopen(positions, "w");
			if (!f || atp_positions_csv_write_cores(cores, n, f) < 0 || fclose(f) != 0) {
				perror(positions);
				rc = 1;
			} else {
				printf("positions written to %s\n", positions);
			}
		}
	} else if (atp_engine_error(r.e)) {
		fprintf(stderr, "atpctl import: %s\n", atp_engine_error(r.e));
	}
	if (atp_engine_close(r.e) != 0)
		rc = 1;
	for (uint32_t i = 0; i < r.n_names; i++)
		free(r.names[i]);
	return rc ? 1 : r.refused ? 3 : 0;
}
