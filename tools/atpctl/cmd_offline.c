/*
 * cmd_offline.c — atpctl verify and atpctl wal: a data directory read
 * without atpd, changing nothing.
 *
 * verify checks every snapshot's checksum and every WAL record's CRC and
 * framing, decodes every record, and checks that the newest good snapshot
 * and the WAL after it leave no hole; it prints one report per shard and
 * exits 0 (recovery would succeed; what it would cut, a torn tail, and
 * damage only in records a snapshot covers are notes), 1 (a problem,
 * named with its file and offset) or 2 (usage). wal
 * prints the records as CSV lines for forensics. Both may run beside a
 * live atpd: they read what is on disk at that moment.
 */
#include "atpctl.h"
#include "csv_events.h"

#include "atp/engine.h"
#include "atp/record.h"
#include "atp/snapshot.h"
#include "atp/wal.h"

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t data_shards(const char *dir)
{
	char err[PATH_MAX + 64];
	uint32_t n = 0;
	if (atp_engine_dir_shards(dir, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "atpctl: %s: not an atpd data directory (%s)\n", dir, err);
		return 0;
	}
	return n;
}

/* ---- verify ---- */

typedef struct verify_ctx {
	uint64_t records, events, ticks, bad_lsn;
} verify_ctx;

static int verify_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	verify_ctx *v = ctx;
	atp_record rec;
	if (!p)
		return 0;
	if (atp_record_decode(p, len, &rec) < 0 || rec.kind == ATP_REC_SNAPSHOT) {
		v->bad_lsn = lsn;
		return -1;
	}
	v->records++;
	if (rec.kind == ATP_REC_EVENT)
		v->events++;
	else
		v->ticks++;
	return 0;
}

/* Check every snapshot of a shard; *newest gets the LSN of the newest good one (0: none). Problems found. */
static int verify_snapshots(const char *sdir, uint64_t *newest)
{
	DIR *d = opendir(sdir);
	int problems = 0;
	*newest = 0;
	if (!d) {
		printf("  %s: cannot read: %m\n", sdir);
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "snap-", 5) != 0 || len < 5)
			continue;
		char path[PATH_MAX], err[PATH_MAX + 128];
		snprintf(path, sizeof(path), "%s/%s", sdir, e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
			printf("  note: %s: an unfinished snapshot (never used; the next one replaces it)\n", path);
			continue;
		}
		atp_snapshot_info si;
		if (atp_snapshot_check(path, &si, err, sizeof(err)) < 0) {
			printf("  PROBLEM: %s\n", err);
			problems++;
			continue;
		}
		printf("  %s: checksum holds: lsn %" PRIu64 ", %u sources, %u positions, %u open and %u closed lines, %" PRIu64
		       " bytes\n",
		       e->d_name, si.lsn, si.sources, si.positions, si.open_lines, si.closed_lines, si.bytes);
		if (si.lsn > *newest)
			*newest = si.lsn;
	}
	closedir(d);
	return problems;
}

/*
 * Problems found in one shard (0: every check holds). The WAL is read
 * twice: every record's CRC (damage anywhere is reported), then as
 * recovery reads it after the newest good snapshot (what decides).
 */
static int verify_shard(const char *dir, uint32_t shard)
{
	char sdir[PATH_MAX], err[PATH_MAX + 512], rerr[PATH_MAX + 512];
	atp_engine_shard_dir(dir, shard, sdir, sizeof(sdir));
	printf("shard %u (%s)\n", shard, sdir);
	uint64_t base;
	int problems = verify_snapshots(sdir, &base);
	verify_ctx all = { 0 }, rec = { 0 };
	atp_wal_scan_info wi, ri;
	int all_rc = atp_wal_scan(sdir, 0, verify_record, &all, &wi, err, sizeof(err));
	if (atp_wal_scan(sdir, base, verify_record, &rec, &ri, rerr, sizeof(rerr)) < 0) {
		if (rec.bad_lsn)
			printf("  PROBLEM: %s: the CRC holds but lsn %" PRIu64 " is not a record atpd writes\n", sdir, rec.bad_lsn);
		else
			printf("  PROBLEM: %s\n", rerr);
		return problems + 1;
	}
	if (all_rc == 0 && strcmp(wi.cut, ri.cut) == 0) {
		if (wi.segments == 0 || wi.last_lsn < wi.first_lsn)
			printf("  wal: %u segments, no records\n", wi.segments);
		else
			printf("  wal: %u segments, lsn %" PRIu64 "..%" PRIu64 ": %" PRIu64 " records (%" PRIu64 " events, %" PRIu64
			       " ticks), every CRC holds\n",
			       wi.segments, wi.first_lsn, wi.last_lsn, all.records, all.events, all.ticks);
	} else {
		/* Damage that only the snapshot's records hold: recovery does not read them, but the disk is suspect. */
		printf("  note: damage in records the newest good snapshot (lsn %" PRIu64 ") covers, which recovery does not read: %s\n",
		       base, all_rc < 0 ? err : wi.cut);
		printf("  wal: %u segments, lsn %" PRIu64 "..%" PRIu64 " as recovery reads it\n", ri.segments, ri.first_lsn,
		       ri.last_lsn);
	}
	if (ri.cut[0])
		printf("  note: %s\n", ri.cut);
	if (ri.segments && ri.first_lsn > base + 1) {
		printf("  PROBLEM: lsn %" PRIu64 "..%" PRIu64 " are in neither a good snapshot (newest: lsn %" PRIu64
		       ") nor the WAL\n",
		       base + 1, ri.first_lsn - 1, base);
		problems++;
	}
	printf("  recovery would start from %s and replay %" PRIu64 " records\n",
	       base ? "the newest good snapshot" : "an empty state", rec.records);
	return problems;
}

int cmd_verify(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: atpctl verify DIR\n", stderr);
		return 2;
	}
	uint32_t shards = data_shards(argv[1]);
	if (!shards)
		return 2;
	int problems = 0;
	for (uint32_t s = 0; s < shards; s++)
		problems += verify_shard(argv[1], s);
	printf("verify %s: %u shards, %d problem%s\n", argv[1], shards, problems, problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}

/* ---- wal ---- */

typedef struct wal_ctx {
	uint32_t shard;
	uint64_t from;
	const char *sku;
	uint64_t shown;
} wal_ctx;

/* A CSV field, quoted when it must be. */
static void put_field(atp_str s)
{
	putchar(',');
	if (s.len == 0)
		return;  /* absent: ptr may be NULL */
	if (!memchr(s.ptr, ',', s.len) && !memchr(s.ptr, '"', s.len) && !memchr(s.ptr, '\n', s.len) &&
	    !memchr(s.ptr, '\r', s.len)) {
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

/* The event's id: its number, or its key as the sender wrote it. */
static void put_event_id(const atp_event *ev)
{
	if (ev->event_key.len)
		put_field(ev->event_key);
	else
		printf(",%" PRIu64, ev->event_id);
}

static int print_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	wal_ctx *w = ctx;
	atp_record r;
	if (!p || lsn < w->from)
		return 0;
	if (atp_record_decode(p, len, &r) < 0) {
		fprintf(stderr, "atpctl wal: shard %u lsn %" PRIu64 ": the CRC holds but it is not a record\n", w->shard, lsn);
		return -1;
	}
	const atp_event *ev = &r.ev;
	if (w->sku && (r.kind != ATP_REC_EVENT || ev->sku.len != strlen(w->sku) || memcmp(ev->sku.ptr, w->sku, ev->sku.len)))
		return 0;
	if (r.kind != ATP_REC_EVENT) {
		const char *kind = r.kind == ATP_REC_TICK ? "tick" : r.kind == ATP_REC_ORDER ? "order" : "snapshot";
		printf("%u,%" PRIu64 ",%s,%" PRIu64 ",,,,,,,,,,,,,\n", w->shard, lsn, kind, r.now);
		w->shown++;
		return 0;
	}
	const char *type = atp_event_type_name(ev->type);
	printf("%u,%" PRIu64 ",event,%" PRIu64, w->shard, lsn, r.now);
	put_event_id(ev);
	put_field(ev->source);
	printf(",%" PRIu64 ",%s", ev->seq, type ? type : "?");
	put_field(ev->sku);
	put_field(ev->location);
	printf(",%" PRId64, ev->qty);
	put_field(ev->ref);
	put_field(ev->to_location);
	put_field(ev->reason);
	char date[ATP_CSV_DATE_MAX];
	printf(",%" PRIu64 ",%u,%s\n", ev->expires_at, ev->flags, atp_csv_date(ev->date, date));
	w->shown++;
	return 0;
}

int cmd_wal(int argc, char **argv)
{
	const char *dir = NULL;
	wal_ctx w = { 0 };
	int64_t only = -1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--from") == 0 && i + 1 < argc)
			w.from = opt_u64("--from", argv[++i], 0, UINT64_MAX);
		else if (strcmp(o, "--sku") == 0 && i + 1 < argc)
			w.sku = argv[++i];
		else if (strcmp(o, "--shard") == 0 && i + 1 < argc)
			only = (int64_t)opt_u64("--shard", argv[++i], 0, 1023);
		else if (o[0] != '-' && !dir)
			dir = o;
		else {
			fputs("usage: atpctl wal DIR [--from LSN] [--sku SKU] [--shard N]\n", stderr);
			return 2;
		}
	}
	if (!dir) {
		fputs("usage: atpctl wal DIR [--from LSN] [--sku SKU] [--shard N]\n", stderr);
		return 2;
	}
	uint32_t shards = data_shards(dir);
	if (!shards)
		return 2;
	if (only >= (int64_t)shards) {
		fprintf(stderr, "atpctl wal: %s has %u shards\n", dir, shards);
		return 2;
	}
	puts("shard,lsn,kind,now,event_id,source,seq,type,sku,location,qty,ref,to_location,reason,expires_at,flags,date");
	int rc = 0;
	for (uint32_t s = 0; s < shards; s++) {
		if (only >= 0 && s != (uint32_t)only)
			continue;
		char sdir[PATH_MAX], err[PATH_MAX + 256];
		atp_wal_scan_info wi;
		atp_engine_shard_dir(dir, s, sdir, sizeof(sdir));
		w.shard = s;
		if (atp_wal_scan(sdir, 0, print_record, &w, &wi, err, sizeof(err)) < 0) {
			fprintf(stderr, "atpctl wal: %s\n", err);
			rc = 1;
		} else if (wi.cut[0]) {
			fprintf(stderr, "atpctl wal: note: %s\n", wi.cut);
		}
	}
	fflush(stdout);
	fprintf(stderr, "atpctl wal: %" PRIu64 " records\n", w.shown);
	return rc;
}
