/*
 * engine_threads.c — the engine's threads for ThreadSanitizer: a simulated
 * day through 4 shards on 2 workers (the router in this thread), with
 * snapshots every 32 KiB of WAL racing ingest, then a reopen; the table
 * must equal the single-threaded core's both times. Then the same day as a
 * trickle (a few events, a pause for the workers to fall asleep), once
 * with router commits and once without: with them the router commits much
 * of it itself in the workers' place, snapshots still racing, and the
 * table (also after a reopen) and the deltas are the same. Plain C
 * (Criterion does not run under TSan). Prints "N passed, N failed".
 */
#define _GNU_SOURCE
#include "../day_fixture.h"
#include "atp/engine.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                  \
	do {                                              \
		if (cond) {                               \
			passed++;                         \
		} else {                                  \
			failed++;                         \
			fprintf(stderr, "FAIL: " __VA_ARGS__); \
			fputc('\n', stderr);              \
		}                                         \
	} while (0)

static char *day;
static size_t day_len;

static uint64_t deltas;

static void count_deltas(void *ctx, const atp_engine_delta *d, size_t n)
{
	(void)ctx;
	(void)d;
	deltas += n;
}

static atp_engine *open_engine(const char *dir, uint64_t router_commit_gap_ns)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.router_commit_gap_ns = router_commit_gap_ns;
	cfg.on_delta = count_deltas;
	cfg.shards = 4;
	cfg.workers = 2;
	cfg.first_cpu = -1;
	cfg.core = fixture_config();
	cfg.wal.segment_bytes = 256u << 10;
	cfg.wal.buffer_bytes = 64u << 10;
	cfg.snapshot_wal_bytes = 32u << 10;
	cfg.ring_bytes = 64u << 10;
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	if (!e)
		fprintf(stderr, "open: %s\n", err);
	return e;
}

/* The day in one go; or, with trickle, 1 to 12 events at a time, each handed out by a poll, made durable, then a pause. */
static void submit_day(atp_engine *e, bool trickle)
{
	atp_csv_reader *r = malloc(sizeof(*r));
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	atp_csv_open(r, day, day_len, err);
	int bad = 0;
	for (unsigned n = 0, chunk = 1; atp_csv_next(r, &ev, err) > 0; n++) {
		atp_engine_set_time(e, r->occurred_at);
		int st = atp_engine_submit(e, &ev, NULL);
		bad += st != ATP_OK && st != ATP_DUPLICATE;
		if (trickle && n % chunk == 0) {
			atp_engine_poll(e);  /* where the router commits */
			bad += atp_engine_sync(e) != 0;
			chunk = 1 + n * 7919 % 12;
			usleep(1500);
		}
	}
	free(r);
	CHECK(bad == 0, "%d events refused", bad);
	CHECK(atp_engine_sync(e) == 0, "sync");
}

static void compare(const atp_core *ref, const atp_engine *e, const char *when)
{
	const atp_table *t = atp_core_table(ref);
	uint32_t total = 0, differ = 0;
	for (uint32_t s = 0; s < atp_engine_shards(e); s++)
		total += atp_table_count(atp_core_table(atp_engine_core(e, s)));
	for (uint32_t i = 0; i < atp_table_count(t); i++) {
		const atp_position *p = atp_table_get(t, i);
		atp_str sku = atp_str_of(atp_table_sku(t, i), p->sku_len);
		atp_str loc = atp_str_of(atp_table_location(t, i), p->loc_len);
		const atp_position *q = atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, sku)), sku, loc);
		differ += !q || q->on_hand != p->on_hand || q->reserved != p->reserved || q->held != p->held ||
			  q->version != p->version;
	}
	CHECK(total == atp_table_count(t) && differ == 0, "%s: %u positions (reference %u), %u differ", when, total,
	      atp_table_count(t), differ);
}

/* The day through e (at once, or as a trickle), the tables compared with the core's; the engine's figures after it. */
static atp_engine_stats day_through(atp_engine *e, bool trickle, const atp_core *ref, const char *when)
{
	submit_day(e, trickle);
	compare(ref, e, when);
	atp_engine_stats st;
	atp_engine_stats_get(e, &st);
	return st;
}

int main(void)
{
	day = fixture_day(300, 4000, 1, &day_len);
	char dir[] = "/tmp/atp-engine-threads-XXXXXX";
	atp_core *ref = day ? fixture_reference(day, day_len) : NULL;
	if (!ref || !mkdtemp(dir))
		return 1;

	char dir2[] = "/tmp/atp-engine-trickle-XXXXXX", dir3[] = "/tmp/atp-engine-trickle-XXXXXX";
	if (!mkdtemp(dir2) || !mkdtemp(dir3))
		return 1;
	atp_engine *e = open_engine(dir, 0);
	CHECK(e != NULL, "open");
	if (e) {
		atp_engine_stats st = day_through(e, false, ref, "after the day");
		CHECK(st.snapshots > 0, "snapshots ran during ingest");
		atp_engine_abandon(e);
	}
	e = open_engine(dir, 0);
	CHECK(e != NULL, "reopen");
	if (e) {
		submit_day(e, false); /* everything again: all of it recognised as applied */
		compare(ref, e, "after a reopen and a full resend");
		CHECK(atp_engine_close(e) == 0, "close");
	}

	deltas = 0;
	e = open_engine(dir3, 0);
	CHECK(e != NULL, "open for the trickle without router commits");
	uint64_t worker_deltas = 0;
	if (e) {
		atp_engine_stats st = day_through(e, true, ref, "after the day as a trickle, without router commits");
		CHECK(st.router_commits == 0, "no router commit without router_commit_gap_ns (%lu)",
		      (unsigned long)st.router_commits);
		worker_deltas = deltas;
		CHECK(atp_engine_close(e) == 0, "close");
	}
	deltas = 0;
	e = open_engine(dir2, 1000000);
	CHECK(e != NULL, "open for the trickle");
	if (e) {
		atp_engine_stats st = day_through(e, true, ref, "after the day as a trickle");
		/* Most, on an idle machine; a loaded one may keep a worker from falling asleep in the pause. */
		printf("router commits: %lu, group commits: %lu\n", (unsigned long)st.router_commits,
		       (unsigned long)st.fsyncs);
		CHECK(st.router_commits > st.fsyncs / 10, "the router made a tenth of the group commits at least: %lu of %lu",
		      (unsigned long)st.router_commits, (unsigned long)st.fsyncs);
		CHECK(st.snapshots > 0, "snapshots ran during the trickle");
		CHECK(deltas == worker_deltas, "deltas with router commits: %lu, without: %lu", (unsigned long)deltas,
		      (unsigned long)worker_deltas);
		atp_engine_abandon(e);
	}
	e = open_engine(dir2, 1000000);
	CHECK(e != NULL, "reopen after the trickle");
	if (e) {
		compare(ref, e, "after the trickle and a reopen");
		CHECK(atp_engine_close(e) == 0, "close");
	}
	atp_core_destroy(ref);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s", dir, dir2, dir3);
	if (system(cmd) != 0)
		failed++;
	free(day);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
