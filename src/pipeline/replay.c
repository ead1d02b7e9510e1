/* atp_replay.c — one shard of a data directory rebuilt offline (see atp_replay.h). */
#define _GNU_SOURCE /* timegm */
#include "atp/replay.h"

#include "atp/engine.h"
#include "atp/snapshot.h"
#include "atp/wal.h"

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool atp_parse_time_ms(const char *s, uint64_t *ms)
{
	size_t n = strlen(s);
	if (n && strspn(s, "0123456789") == n) {
		char *end;
		*ms = strtoull(s, &end, 10);
		return n <= 19;
	}
	struct tm tm = { 0 };
	int used = 0;
	char sep;
	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &used) != 7 ||
	    (sep != 'T' && sep != ' ') || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
		return false;
	const char *p = s + used;
	unsigned frac = 0;
	if (*p == '.') {
		unsigned scale = 100;
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			frac += (unsigned)(*p - '0') * scale;
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t < 0)
		return false;
	*ms = (uint64_t)t * 1000 + frac;
	return true;
}

void atp_format_time_ms(uint64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03uZ", (unsigned)(ms % 1000));
}

typedef struct start {
	uint64_t lsn;               /* 0: an empty state */
	char path[PATH_MAX];
} start;

/*
 * Where a replay of r starts, given the WAL's first LSN (0: no segment): a
 * snapshot the WAL continues and the cut allows (the newest, or with
 * r->earliest the oldest), else an empty state if the WAL begins at 1.
 */
static int choose_start(const atp_replay *r, const char *sdir, uint64_t wal_first, start *out, char *err,
			size_t errlen)
{
	bool empty_ok = wal_first <= 1;
	uint64_t best = 0, oldest = UINT64_MAX, oldest_ms = 0;
	bool found = false;
	DIR *d = opendir(sdir);
	if (!d) {
		snprintf(err, errlen, "%s: %m", sdir);
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "snap-", 5) != 0 || len < 5 || strcmp(e->d_name + len - 5, ".snap") != 0)
			continue;
		char path[PATH_MAX], why[PATH_MAX + 128];
		atp_snapshot_info si;
		snprintf(path, sizeof(path), "%s/%s", sdir, e->d_name);
		if (atp_snapshot_check(path, &si, why, sizeof(why)) < 0) {
			fprintf(stderr, "atpctl: note: %s (not used)\n", why);
			continue;
		}
		if (wal_first && si.lsn + 1 < wal_first)
			continue; /* the WAL no longer continues it */
		if (si.lsn < oldest) {
			oldest = si.lsn;
			oldest_ms = si.now_ms;
		}
		if (si.lsn > r->until_lsn || si.now_ms > r->until_ms)
			continue;
		if (!found || (r->earliest ? si.lsn < best : si.lsn > best)) {
			best = si.lsn;
			snprintf(out->path, sizeof(out->path), "%s", path);
			found = true;
		}
	}
	closedir(d);
	if ((r->earliest || !found) && empty_ok) {
		out->lsn = 0;
		return 0;
	}
	if (found) {
		out->lsn = best;
		return 0;
	}
	char when[40];
	atp_format_time_ms(oldest_ms, when, sizeof(when));
	if (oldest == UINT64_MAX)
		snprintf(err, errlen, "shard %u: no usable snapshot and the WAL begins at lsn %" PRIu64, r->shard, wal_first);
	else
		snprintf(err, errlen,
			 "shard %u: that moment is older than what %s retains: the earliest start is the snapshot of lsn "
			 "%" PRIu64 " at %s (wal_retention_hours keeps more)",
			 r->shard, r->dir, oldest, when);
	return -1;
}

typedef struct scan {
	atp_replay *r;
	uint64_t lsn;
	const atp_record *rec;
	bool stopped;       /* by the cut */
	uint64_t bad_lsn;   /* a record atpd does not write, or a hole */
} scan;

static void expired(void *ctx, const atp_delta *d, size_t n)
{
	scan *s = ctx;
	if (s->r->on_expiry)
		s->r->on_expiry(s->r->ctx, s->lsn, s->rec, d, n, s->r->c);
}

static int step(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	scan *s = ctx;
	atp_replay *r = s->r;
	atp_record rec;
	if (!p)
		return 0;
	if (lsn > r->until_lsn) {
		s->stopped = true;
		return 1;
	}
	if (atp_record_decode(p, len, &rec) < 0 || rec.kind == ATP_REC_SNAPSHOT || lsn != r->last_lsn + 1) {
		s->bad_lsn = lsn;
		return -1;
	}
	if (rec.now > r->until_ms) {
		s->stopped = true;
		return 1;
	}
	s->lsn = lsn;
	s->rec = &rec;
	if (r->on_before)
		r->on_before(r->ctx, lsn, &rec, r->c);
	atp_result res = { 0 };
	res.status = atp_engine_apply_record(r->c, &rec, &res, expired, s);
	r->last_lsn = lsn;
	r->last_ms = rec.now;
	r->records++;
	if (r->on_record)
		r->on_record(r->ctx, lsn, &rec, &res, r->c);
	return 0;
}

int atp_replay_run(atp_replay *r, char *err, size_t errlen)
{
	char sdir[PATH_MAX], why[PATH_MAX + 512];
	atp_wal_scan_info wi;
	start st = { 0 };
	atp_engine_shard_dir(r->dir, r->shard, sdir, sizeof(sdir));
	r->c = NULL;
	r->records = 0;
	if (atp_wal_scan(sdir, UINT64_MAX, NULL, NULL, &wi, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "shard %u: %s", r->shard, why);
		return -1;
	}
	r->wal_last_lsn = wi.segments ? wi.last_lsn : 0;
	if (r->until_lsn != UINT64_MAX && r->until_lsn > r->wal_last_lsn) {
		snprintf(err, errlen, "shard %u: lsn %" PRIu64 " is beyond the WAL's last (%" PRIu64 ")", r->shard,
			 r->until_lsn, r->wal_last_lsn);
		return -1;
	}
	if (choose_start(r, sdir, wi.segments ? wi.first_lsn : 0, &st, err, errlen) < 0)
		return -1;
	r->core.sparse_seq = true; /* a shard sees a subset of each source's seqs, as in the engine */
	if (!(r->c = atp_core_create(&r->core))) {
		snprintf(err, errlen, "shard %u: no memory for a core of %u positions", r->shard, r->core.max_positions);
		return -1;
	}
	r->start_lsn = r->last_lsn = 0;
	r->last_ms = 0;
	if (st.lsn) {
		uint64_t lsn;
		if (atp_snapshot_load_file(st.path, r->c, &lsn, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "shard %u: %s", r->shard, why);
			goto destroy_core;
		}
		r->start_lsn = r->last_lsn = lsn;
		r->last_ms = atp_core_now_ms(r->c);
	}
	if (r->on_start)
		r->on_start(r->ctx, r->start_lsn, r->c);
	scan s = { .r = r };
	if (atp_wal_scan(sdir, r->start_lsn, step, &s, &wi, why, sizeof(why)) < 0 && !s.stopped) {
		if (s.bad_lsn)
			snprintf(err, errlen, "shard %u: lsn %" PRIu64 " is not the record that follows lsn %" PRIu64
				 " (or not one atpd writes)", r->shard, s.bad_lsn, r->last_lsn);
		else
			snprintf(err, errlen, "shard %u: %s", r->shard, why);
		goto destroy_core;
	}
	return 0;
destroy_core:
	atp_core_destroy(r->c);
	r->c = NULL;
	return -1;
}
