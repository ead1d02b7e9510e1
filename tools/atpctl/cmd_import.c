/*
 * cmd_import.c — atpctl import: validate an event CSV as a whole, then
 * replay it through the ATP core (or, with --data, through the durable
 * engine: import_engine.c) and report what happened.
 */
#include "import.h"

#include "csv_events.h"
#include "positions_csv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int map_file(input *in)
{
	int fd = open(in->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(in->path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	in->len = (size_t)st.st_size;
	in->buf = in->len ? mmap(NULL, in->len, PROT_READ, MAP_PRIVATE, fd, 0) : "";
	close(fd);
	if (in->buf == MAP_FAILED) {
		perror(in->path);
		return -1;
	}
	return 0;
}

static uint64_t core_hwm(const void *core, atp_str source)
{
	return atp_core_hwm(core, source);
}

uint64_t validate(const input *in, hwm_fn hwm, const void *ctx, uint32_t max_sources, uint64_t *rows)
{
	atp_sources *expect = atp_sources_create(max_sources);
	event_iter it;
	atp_event ev;
	uint64_t bad = 0;
	int rc;

	if (!expect || iter_open(&it, in, true) < 0) {
		atp_sources_destroy(expect);
		return 1;
	}
	*rows = 0;
	while ((rc = iter_next(&it, &ev)) != 0) {
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", iter_where(&it), it.err);
			bad++;
			if (it.broken)
				break;
			continue;
		}
		(*rows)++;
		uint32_t id = atp_sources_find(expect, ev.source);
		if (id == ATP_SOURCE_NONE) {
			id = atp_sources_intern(expect, ev.source);
			if (id == ATP_SOURCE_NONE) {
				fprintf(stderr, "%s: more sources than the limit of %u\n", iter_where(&it),
					atp_sources_capacity(expect));
				bad++;
				continue;
			}
			atp_sources_at(expect, id)->hwm = hwm(ctx, ev.source);
		}
		atp_source *s = atp_sources_at(expect, id);
		if (ev.seq > s->hwm + 1) {
			fprintf(stderr, "%s: seq %" PRIu64 " of source '%s' leaves a gap: expected %" PRIu64 "\n",
				iter_where(&it), ev.seq, s->name, s->hwm + 1);
			bad++;
		} else if (ev.seq == s->hwm + 1) {
			s->hwm = ev.seq;
		}
	}
	iter_close(&it);
	atp_sources_destroy(expect);
	return bad;
}

/* Pass 2: apply every event in order, advancing the core's clock with occurred_at. */
static int replay(const input *in, atp_core *core, bool frozen_clock)
{
	event_iter it;
	atp_delta deltas[256];
	atp_event ev;
	atp_result res;
	size_t nd;
	int rc;

	if (iter_open(&it, in, false) < 0)
		return -1;
	while ((rc = iter_next(&it, &ev)) > 0) {
		if (!frozen_clock && it.occurred_at > atp_core_now_ms(core))
			while (atp_core_expire(core, it.occurred_at, deltas, 256, &nd) == 256)
				;
		int st = atp_core_apply(core, &ev, &res);
		if (st < 0) {
			fprintf(stderr, "%s: refused: %s (%s)\n", iter_where(&it), atp_status_message(st), atp_status_name(st));
			rc = -1;
			break;
		}
	}
	iter_close(&it);
	return rc;
}

/* The stats of several cores added up (every field is a uint64_t counter). */
static atp_core_stats sum_stats(const atp_core *const *cores, uint32_t n)
{
	_Static_assert(sizeof(atp_core_stats) % sizeof(uint64_t) == 0, "stats are uint64_t counters");
	atp_core_stats sum = { 0 };
	uint64_t *d = (uint64_t *)&sum;
	for (uint32_t k = 0; k < n; k++) {
		const uint64_t *s = (const uint64_t *)atp_core_stats_get(cores[k]);
		for (size_t i = 0; i < sizeof(sum) / sizeof(uint64_t); i++)
			d[i] += s[i];
	}
	return sum;
}

void print_summary(const atp_core *const *cores, uint32_t n_cores, uint64_t rows, uint64_t router_duplicates,
		   double seconds)
{
	atp_core_stats sum = sum_stats(cores, n_cores);
	sum.duplicates += router_duplicates;
	const atp_core_stats *s = &sum;
	uint64_t applied = 0;
	uint32_t open_lines = 0;
	for (uint32_t k = 0; k < n_cores; k++)
		open_lines += atp_lines_open_count(atp_core_lines(cores[k]));

	for (unsigned i = 1; i < ATP_EV_TYPE_COUNT; i++)
		applied += s->applied[i];
	printf("replayed %" PRIu64 " rows in %.3f s (%.2f M rows/s, parse + apply): %" PRIu64
	       " applied, %" PRIu64 " duplicates acknowledged, %" PRIu64 " refused\n",
	       rows, seconds, rows / seconds / 1e6, applied, s->duplicates, s->refused + s->gaps);
	printf("  by type:");
	for (unsigned i = 1; i < ATP_EV_TYPE_COUNT; i++)
		printf(" %s %" PRIu64, atp_event_type_name(i), s->applied[i]);
	printf("\nreservations: %" PRIu64 " lines confirmed whole, %" PRIu64 " partially, %" PRIu64
	       " unfilled, %" PRIu64 " retries answered from the first result\n",
	       s->reserve_full, s->reserve_partial, s->reserve_unfilled, s->reserve_replayed);
	printf("  units: %" PRIu64 " requested, %" PRIu64 " confirmed, %" PRIu64 " picked against a line, %" PRIu64
	       " released, %" PRIu64 " expired (%" PRIu64 " lines); %u lines still open\n",
	       s->reserve_units_requested, s->reserve_units_confirmed, s->units_consumed, s->units_released,
	       s->units_expired, s->lines_expired, open_lines);
	printf("  promised against inbound supply: %" PRIu64 " lines, %" PRIu64 " opened as their supply came\n",
	       s->promises_made, s->promises_opened);
	printf("exceptions: %" PRIu64 " events drove on_hand negative, %" PRIu64
	       " left reservations short of stock; cycle-count variance %" PRIu64 " units;\n"
	       "  late or cancelled supply: %" PRIu64 " promises moved past their need-by day, %" PRIu64 " withdrawn\n",
	       s->negative_events, s->short_events, s->count_variance_abs, s->promises_late, s->promises_withdrawn);

	int64_t on_hand = 0, held = 0, reserved = 0, safety = 0, atp = 0;
	uint32_t stockouts = 0, negative = 0, n = 0, capacity = 0;
	size_t memory = 0;
	for (uint32_t k = 0; k < n_cores; k++) {
		const atp_table *t = atp_core_table(cores[k]);
		for (uint32_t i = 0; i < atp_table_count(t); i++) {
			const atp_position *p = atp_table_get(t, i);
			on_hand += p->on_hand;
			held += p->held;
			reserved += p->reserved;
			safety += p->safety_stock;
			atp += atp_position_atp(p);
			stockouts += atp_position_atp(p) == 0;
			negative += p->on_hand < 0;
		}
		n += atp_table_count(t);
		capacity += atp_table_capacity(t);
		memory += atp_table_memory(t);
	}
	printf("ATP: %u positions, on_hand %" PRId64 ", held %" PRId64 ", reserved %" PRId64 ", safety %" PRId64
	       ", atp %" PRId64 "; %u positions at zero ATP, %u with negative on_hand\n",
	       n, on_hand, held, reserved, safety, atp, stockouts, negative);
	printf("deltas: %" PRIu64 " ATP changes for the channel stream; position table: %.1f MB at a capacity of %u\n",
	       s->deltas, memory / 1e6, capacity);
}

int cmd_import(int argc, char **argv)
{
	atp_engine_config ecfg = atp_engine_config_default();
	atp_core_config cfg = atp_core_config_default();
	const char *positions = NULL, *data = NULL;
	bool progress = false, frozen_clock = false;
	uint64_t sync_every = 0;
	input in = { 0 };

	for (int i = 1; i < argc;) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (o[0] != '-' && !in.path) {
			in.path = o;
			i++;
			continue;
		}
		if (strcmp(o, "--progress") == 0 || strcmp(o, "--frozen-clock") == 0) {
			*(o[2] == 'p' ? &progress : &frozen_clock) = true;
			i++;
			continue;
		}
		if (strcmp(o, "--positions") == 0 && v)
			positions = v;
		else if (strcmp(o, "--data") == 0 && v)
			data = v;
		else if (strcmp(o, "--shards") == 0)
			ecfg.shards = (uint32_t)opt_u64(o, v, 1, ATP_ENGINE_SHARDS_MAX);
		else if (strcmp(o, "--workers") == 0)
			ecfg.workers = (uint32_t)opt_u64(o, v, 1, ATP_ENGINE_WORKERS_MAX);
		else if (strcmp(o, "--snapshot-mb") == 0 || strcmp(o, "--snapshot-kb") == 0)
			ecfg.snapshot_wal_bytes = opt_u64(o, v, 0, 1u << 30) << (o[11] == 'm' ? 20 : 10);
		else if (strcmp(o, "--segment-mb") == 0 || strcmp(o, "--segment-kb") == 0)
			ecfg.wal.segment_bytes = o[10] == 'm' ? opt_u64(o, v, 1, 1u << 12) << 20 : opt_u64(o, v, 64, 1u << 22) << 10;
		else if (strcmp(o, "--sync-every") == 0)
			sync_every = opt_u64(o, v, 1, UINT32_MAX);
		else if (strcmp(o, "--max-positions") == 0)
			cfg.max_positions = (uint32_t)opt_u64(o, v, 1, ATP_TABLE_CAPACITY_MAX);
		else if (strcmp(o, "--max-lines") == 0)
			cfg.max_lines = (uint32_t)opt_u64(o, v, 1, 1u << 30);
		else {
			fprintf(stderr, "atpctl import: unexpected argument '%s'\n", o);
			return 2;
		}
		i += 2;
	}
	if (!in.path) {
		fprintf(stderr, "atpctl import: which file?\n");
		return 2;
	}
	if (data) {
		if (ecfg.wal.buffer_bytes > ecfg.wal.segment_bytes / 4)
			ecfg.wal.buffer_bytes = (uint32_t)(ecfg.wal.segment_bytes / 4);
		ecfg.core.max_positions = cfg.max_positions;
		ecfg.core.max_lines = cfg.max_lines;
		return map_file(&in) < 0 ? 1 : import_engine(&in, data, &ecfg, positions, progress, frozen_clock, sync_every);
	}
	atp_core *core = atp_core_create(&cfg);
	if (!core) {
		fprintf(stderr, "atpctl import: cannot allocate the core\n");
		return 1;
	}
	int rc = 1;
	uint64_t rows = 0, bad;
	if (map_file(&in) < 0)
		goto out;
	if ((bad = validate(&in, core_hwm, core, cfg.max_sources, &rows)) > 0) {
		fprintf(stderr, "%s: %" PRIu64 " bad rows; nothing applied\n", in.path, bad);
		goto out;
	}
	double t0 = now_seconds();
	if (replay(&in, core, frozen_clock) < 0)
		goto out;
	const atp_core *cores[1] = { core };
	print_summary(cores, 1, rows, 0, now_seconds() - t0);
	const atp_sources *src = atp_core_sources(core);
	for (uint32_t i = 0; i < atp_sources_count(src); i++)
		printf("source %s: applied through seq %" PRIu64 "\n", atp_sources_get(src, i)->name,
		       atp_sources_get(src, i)->hwm);
	if (positions) {
		FILE *f = fopen(positions, "w");
		if (!f || atp_positions_csv_write(core, f) < 0 || fclose(f) != 0) {
			perror(positions);
			goto out;
		}
		printf("positions written to %s\n", positions);
	}
	rc = 0;
out:
	atp_core_destroy(core);
	return rc;
}
