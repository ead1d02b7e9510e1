/*
 * cmd_replay.c — atpctl replay and atpctl history: a data directory's past,
 * offline, from its snapshots and WAL (atp_replay.h), changing nothing.
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
#include "atp/history.h"
#include "atp/replay.h"
#include "atp/wire_api.h"

#include "atp/engine.h"
#include "atp/status.h"
#include "atp/table.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
	uint32_t shards = data_shards(dir);
	if (!shards)
		return 2;
	uint64_t until_ms = UINT64_MAX, lsns[ATP_ENGINE_SHARDS_MAX];
	bool by_lsn = strncmp(until, "lsn:", 4) == 0;
	if (by_lsn ? !parse_lsns(until + 4, lsns, shards) : !atp_parse_time_ms(until, &until_ms)) {
		fprintf(stderr, "atpctl replay: --until '%s': %s\n", until,
			by_lsn ? "lsn:N, or one LSN per shard (lsn:N,N,...)" : "not a time (2026-12-06T14:02:00Z or ms)");
		return 2;
	}
	atp_core *cores[ATP_ENGINE_SHARDS_MAX] = { 0 };
	int rc = 0;
	for (uint32_t s = 0; s < shards && rc == 0; s++) {
		atp_replay r = { .dir = dir, .shard = s, .core = cfg, .until_ms = until_ms,
				   .until_lsn = by_lsn ? lsns[s] : UINT64_MAX };
		char err[PATH_MAX + 768], when[40];
		if (atp_replay_run(&r, err, sizeof(err)) < 0) {
			fprintf(stderr, "atpctl replay: %s\n", err);
			rc = 1;
			break;
		}
		cores[s] = r.c;
		atp_format_time_ms(r.last_ms, when, sizeof(when));
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

static const char history_usage[] =
	"usage: atpctl history DIR SKU [LOCATION] [--since TIME] [--max-positions N] [--max-lines N]\n"
	"       atpctl history [--grpc HOST:PORT] SKU [LOCATION] [--since TIME]   (a running atpd: Admin/History)\n";

/* Admin/History: the same CSV, computed by the running atpd from its data directory. */
static int history_from_atpd(const char *target, const atp_history_query *q)
{
	static uint8_t mem[1u << 16] __attribute__((aligned(8)));
	atp_fb_builder b;
	size_t len;
	const uint8_t *r;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *msg = atp_fb_finish(&b, atp_v1_build_history_request(&b, q->sku, q->location, q->since_ms), NULL, &len);
	uint8_t *reply = grpc_unary(target, "/atp.v1.Admin/History", msg, len, &atp_v1_history_reply_rule, &r);
	if (!reply)
		return 1;
	uint32_t n;
	const uint8_t *csv = atp_v1_history_reply_csv(r, &n);
	fwrite(csv, 1, n, stdout);
	fflush(stdout);
	if (atp_v1_history_reply_truncated(r))
		fprintf(stderr, "atpctl history: the reply was cut at %u bytes: narrow it (a LOCATION, --since) or run it "
			"offline on the data directory\n", n);
	free(reply);
	return 0;
}

int cmd_history(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	const char *args[3] = { 0 };
	int n_args = 0;
	atp_history_query q = { .core = atp_core_config_default() };
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--since") == 0 && v) {
			if (!atp_parse_time_ms(argv[++i], &q.since_ms)) {
				fprintf(stderr, "atpctl history: --since '%s': not a time (2026-12-06T14:02:00Z or ms)\n", v);
				return 2;
			}
		} else if (v && core_option(o, v, &q.core)) {
			i++;
		} else if (o[0] != '-' && n_args < 3) {
			args[n_args++] = o;
		} else {
			fputs(history_usage, stderr);
			return 2;
		}
	}
	struct stat st;
	bool offline = n_args >= 1 && stat(args[0], &st) == 0 && S_ISDIR(st.st_mode);
	if (n_args < (offline ? 2 : 1) || (!offline && n_args > 2)) {
		fputs(history_usage, stderr);
		return 2;
	}
	const char **key = offline ? args + 1 : args;
	q.sku = atp_str_of(key[0], strlen(key[0]));
	if (key[1])
		q.location = atp_str_of(key[1], strlen(key[1]));
	if (!offline)
		return history_from_atpd(target, &q);
	q.dir = args[0];
	if (!(q.shards = data_shards(args[0])))
		return 2;
	char err[PATH_MAX + 768];
	atp_history_info info;
	int rc = atp_history_write(&q, stdout, &info, err, sizeof(err));
	fflush(stdout);
	if (rc < 0) {
		fprintf(stderr, "atpctl history: %s\n", err);
		return 1;
	}
	fprintf(stderr, "atpctl history: %" PRIu64 " rows; shard %u replayed from the snapshot of lsn %" PRIu64
		" (0: an empty state) to lsn %" PRIu64 "\n", info.rows, info.shard, info.start_lsn, info.last_lsn);
	return 0;
}
