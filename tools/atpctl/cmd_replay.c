/*
 * cmd_replay.c — atpctl replay and atpctl history: a data directory's past,
 * offline, from its snapshots and WAL (shard_replay.h), changing nothing.
 *
 * replay rebuilds every shard as of a cut (a time, or an LSN per shard)
 * and writes the positions CSV. history replays the shard of one SKU from
 * the earliest moment the directory retains and prints, as CSV, every
 * event that touched one of its positions (refused ones too) and every
 * lapse of a reservation, each with the position as it was after it.
 * How far back both reach: wal_retention_hours.
 */
#include "atpctl.h"
#include "positions_csv.h"
#include "shard_replay.h"

#include "atp/engine.h"
#include "atp/status.h"
#include "atp/table.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shard count of a data directory, or 0 after a message. */
static uint32_t shards_of(const char *dir)
{
	char err[PATH_MAX + 64];
	uint32_t n = 0;
	if (atp_engine_dir_shards(dir, &n, err, sizeof(err)) != 0 || n == 0) {
		fprintf(stderr, "atpctl: %s: not an atpd data directory (%s)\n", dir, err);
		return 0;
	}
	return n;
}

/* --max-positions / --max-lines: the capacities of the cores the replay builds. */
static bool core_option(const char *o, const char *v, atp_core_config *cfg)
{
	if (strcmp(o, "--max-positions") == 0)
		cfg->max_positions = (uint32_t)opt_u64(o, v, 1, ATP_TABLE_CAPACITY_MAX);
	else if (strcmp(o, "--max-lines") == 0)
		cfg->max_lines = (uint32_t)opt_u64(o, v, 1, 1u << 30);
	else
		return false;
	return true;
}

/* lsn:N[,N...]: one LSN per shard (one value: every shard's). */
static bool parse_lsns(const char *s, uint64_t *lsn, uint32_t shards)
{
	uint32_t n = 0;
	for (const char *p = s; n < shards; n++) {
		char *end;
		if (*p < '0' || *p > '9')
			return false;
		lsn[n] = strtoull(p, &end, 10);
		if (*end == 0) {
			n++;
			break;
		}
		if (*end != ',')
			return false;
		p = end + 1;
	}
	if (n == 1)
		for (uint32_t i = 1; i < shards; i++)
			lsn[i] = lsn[0];
	return n == 1 || n == shards;
}

/* ---- replay ---- */

static const char replay_usage[] =
	"usage: atpctl replay DIR --until TIME|lsn:N[,N...] [--positions OUT.csv] [--max-positions N] [--max-lines N]\n"
	"  TIME: 2026-12-06T14:02:00Z (UTC) or ms since the epoch; lsn: one per shard, or one for all\n";

int cmd_replay(int argc, char **argv)
{
	const char *dir = NULL, *until = NULL, *out_path = NULL;
	atp_core_config cfg = atp_core_config_default();
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--until") == 0 && v)
			until = argv[++i];
		else if (strcmp(o, "--positions") == 0 && v)
			out_path = argv[++i];
		else if (v && core_option(o, v, &cfg))
			i++;
		else if (o[0] != '-' && !dir)
			dir = o;
		else {
			fputs(replay_usage, stderr);
			return 2;
		}
	}
	if (!dir || !until) {
		fputs(replay_usage, stderr);
		return 2;
	}
	uint32_t shards = shards_of(dir);
	if (!shards)
		return 2;
	uint64_t until_ms = UINT64_MAX, lsns[ATP_ENGINE_SHARDS_MAX];
	bool by_lsn = strncmp(until, "lsn:", 4) == 0;
	if (by_lsn ? !parse_lsns(until + 4, lsns, shards) : !parse_time_ms(until, &until_ms)) {
		fprintf(stderr, "atpctl replay: --until '%s': %s\n", until,
			by_lsn ? "lsn:N, or one LSN per shard (lsn:N,N,...)" : "not a time (2026-12-06T14:02:00Z or ms)");
		return 2;
	}
	atp_core *cores[ATP_ENGINE_SHARDS_MAX] = { 0 };
	int rc = 0;
	for (uint32_t s = 0; s < shards && rc == 0; s++) {
		shard_replay r = { .dir = dir, .shard = s, .core = cfg, .until_ms = until_ms,
				   .until_lsn = by_lsn ? lsns[s] : UINT64_MAX };
		char err[PATH_MAX + 768], when[40];
		if (shard_replay_run(&r, err, sizeof(err)) < 0) {
			fprintf(stderr, "atpctl replay: %s\n", err);
			rc = 1;
			break;
		}
		cores[s] = r.c;
		format_time_ms(r.last_ms, when, sizeof(when));
		fprintf(stderr, "atpctl replay: shard %u: from the snapshot of lsn %" PRIu64 " (0: an empty state), %" PRIu64
			" records to lsn %" PRIu64 " (%s); the WAL holds to lsn %" PRIu64 "\n",
			s, r.start_lsn, r.records, r.last_lsn, when, r.wal_last_lsn);
	}
	if (rc == 0) {
		FILE *out = out_path ? fopen(out_path, "w") : stdout;
		if (!out || atp_positions_csv_write_cores((const atp_core *const *)cores, shards, out) < 0 ||
		    (out_path && fclose(out) != 0)) {
			fprintf(stderr, "atpctl replay: %s: %m\n", out_path ? out_path : "stdout");
			rc = 1;
		}
	}
	for (uint32_t s = 0; s < shards; s++)
		if (cores[s])
			atp_core_destroy(cores[s]);
	return rc;
}

/* ---- history ---- */

typedef struct history {
	atp_str sku, location;      /* location.len 0: every location */
	uint64_t since_ms;          /* rows before are not printed; the SKU's positions as of then come first */
	bool since_shown;
	uint64_t rows;
	/* Before a RELEASE of a whole reservation: the versions of the SKU's positions, to see which it changed. */
	uint32_t n_before;
	uint32_t before_id[1024];
	uint64_t before_version[1024];
} history;

static void csv_field(atp_str s)
{
	putchar(',');
	if (s.len == 0)
		return;
	bool quote = memchr(s.ptr, ',', s.len) || memchr(s.ptr, '"', s.len);
	if (!quote) {
		fwrite(s.ptr, 1, s.len, stdout);
		return;
	}
	putchar('"');
	for (uint32_t i = 0; i < s.len; i++) {
		if (s.ptr[i] == '"')
			putchar('"');
		putchar(s.ptr[i]);
	}
	putchar('"');
}

static bool str_is(atp_str a, atp_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void state_rows(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_core *c);

/* One row: when, what, and the position (sku, loc) as it is now in c (empty buckets when it does not exist). */
static void row(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_event *ev, const char *status,
		atp_str loc, const atp_core *c)
{
	if (now < h->since_ms || (h->location.len && !str_is(loc, h->location)))
		return;
	if (!h->since_shown) {
		h->since_shown = true;
		if (h->since_ms)
			state_rows(h, h->since_ms, lsn - 1, "since", c);
	}
	char when[40];
	format_time_ms(now, when, sizeof(when));
	printf("%s,%" PRIu64 ",%s", when, lsn, kind);
	if (ev) {
		csv_field(ev->source);
		printf(",%" PRIu64, ev->seq);
		if (ev->event_key.len)
			csv_field(ev->event_key);
		else
			printf(",%" PRIu64, ev->event_id);
		const char *type = atp_event_type_name(ev->type);
		printf(",%s", type ? type : "?");
	} else {
		fputs(",,,,", stdout);
	}
	csv_field(loc);
	if (ev) {
		printf(",%" PRId64, ev->qty);
		csv_field(ev->ref);
		csv_field(ev->to_location);
		csv_field(ev->reason);
	} else {
		fputs(",,,,", stdout);
	}
	printf(",%s", status);
	const atp_position *p = atp_core_find(c, h->sku, loc);
	if (p)
		printf(",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 "\n", p->on_hand, p->held,
		       p->reserved, p->safety_stock, atp_position_atp(p), p->version);
	else
		puts(",,,,,,");
	h->rows++;
}

static atp_str loc_of(const atp_table *t, uint32_t id)
{
	const atp_position *p = atp_table_get(t, id);
	return atp_str_of(atp_table_location(t, id), p->loc_len);
}

/*
 * The SKU's positions as they stand in c: at the start of the replay
 * (kind snapshot), or, under --since, before the first row printed (kind
 * since: the state then, lsn the last record before it).
 */
static void state_rows(history *h, uint64_t now, uint64_t lsn, const char *kind, const atp_core *c)
{
	const atp_table *t = atp_core_table(c);
	uint64_t since = h->since_ms;
	h->since_ms = 0; /* these rows are of that moment */
	for (uint32_t id = atp_table_read_sku_first(t, h->sku); id != ATP_POS_NONE; id = atp_table_read_sku_next(t, id))
		row(h, now, lsn, kind, NULL, "", loc_of(t, id), c);
	h->since_ms = since;
}

static void history_start(void *ctx, uint64_t lsn, const atp_core *c)
{
	history *h = ctx;
	if (lsn && !h->since_ms) {
		h->since_shown = true;
		state_rows(h, atp_core_now_ms(c), lsn, "snapshot", c);
	}
}

static void history_before(void *ctx, uint64_t lsn, const atp_record *rec, const atp_core *c)
{
	history *h = ctx;
	(void)lsn;
	h->n_before = 0;
	if (rec->kind != ATP_REC_EVENT || !atp_event_releases_all(&rec->ev))
		return;
	const atp_table *t = atp_core_table(c);
	for (uint32_t id = atp_table_read_sku_first(t, h->sku); id != ATP_POS_NONE && h->n_before < 1024;
	     id = atp_table_read_sku_next(t, id)) {
		h->before_id[h->n_before] = id;
		h->before_version[h->n_before++] = atp_table_get(t, id)->version;
	}
}

static void history_expiry(void *ctx, uint64_t lsn, const atp_record *rec, const atp_delta *d, size_t n,
			   const atp_core *c)
{
	history *h = ctx;
	for (size_t i = 0; i < n; i++)
		if (str_is(d[i].sku, h->sku))
			row(h, rec->now, lsn, "lapse", NULL, "", d[i].location, c);
}

static void history_record(void *ctx, uint64_t lsn, const atp_record *rec, const atp_result *r, const atp_core *c)
{
	history *h = ctx;
	const atp_event *ev = &rec->ev;
	if (rec->kind != ATP_REC_EVENT)
		return;
	const char *status = r->status == ATP_OK ? "OK" : atp_status_name(r->status);
	if (str_is(ev->sku, h->sku)) {
		row(h, rec->now, lsn, "event", ev, status, ev->location, c);
		if (ev->type == ATP_EV_TRANSFER)
			row(h, rec->now, lsn, "event", ev, status, ev->to_location, c);
		return;
	}
	const atp_table *t = atp_core_table(c);
	for (uint32_t i = 0; i < h->n_before; i++) /* a RELEASE of a whole reservation: the positions it changed */
		if (atp_table_get(t, h->before_id[i])->version != h->before_version[i])
			row(h, rec->now, lsn, "event", ev, status, loc_of(t, h->before_id[i]), c);
}

static const char history_usage[] =
	"usage: atpctl history DIR SKU [LOCATION] [--since TIME] [--max-positions N] [--max-lines N]\n";

int cmd_history(int argc, char **argv)
{
	const char *args[3] = { 0 };
	int n_args = 0;
	history *h = calloc(1, sizeof(*h));
	atp_core_config cfg = atp_core_config_default();
	if (!h)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--since") == 0 && v) {
			if (!parse_time_ms(argv[++i], &h->since_ms)) {
				fprintf(stderr, "atpctl history: --since '%s': not a time (2026-12-06T14:02:00Z or ms)\n", v);
				return 2;
			}
		} else if (v && core_option(o, v, &cfg)) {
			i++;
		} else if (o[0] != '-' && n_args < 3) {
			args[n_args++] = o;
		} else {
			fputs(history_usage, stderr);
			return 2;
		}
	}
	if (n_args < 2) {
		fputs(history_usage, stderr);
		return 2;
	}
	uint32_t shards = shards_of(args[0]);
	if (!shards)
		return 2;
	h->sku = atp_str_of(args[1], strlen(args[1]));
	if (args[2])
		h->location = atp_str_of(args[2], strlen(args[2]));
	uint32_t shard = (uint32_t)(atp_sku_hash(h->sku) % shards);
	puts("time,lsn,kind,source,seq,event_id,type,location,qty,ref,to_location,reason,status,"
	     "on_hand,held,reserved,safety_stock,atp,version");
	shard_replay r = { .dir = args[0], .shard = shard, .core = cfg, .until_ms = UINT64_MAX, .until_lsn = UINT64_MAX,
			   .earliest = true, .on_start = history_start, .on_before = history_before,
			   .on_record = history_record, .on_expiry = history_expiry, .ctx = h };
	char err[PATH_MAX + 768];
	int rc = shard_replay_run(&r, err, sizeof(err));
	fflush(stdout);
	if (rc < 0) {
		fprintf(stderr, "atpctl history: %s\n", err);
	} else {
		fprintf(stderr, "atpctl history: %" PRIu64 " rows; shard %u replayed from the snapshot of lsn %" PRIu64
			" (0: an empty state) to lsn %" PRIu64 "\n",
			h->rows, shard, r.start_lsn, r.last_lsn);
		atp_core_destroy(r.c);
	}
	free(h);
	return rc < 0 ? 1 : 0;
}
