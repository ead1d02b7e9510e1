/*
 * cmd_reconcile.c — atpctl reconcile ONHAND.csv: a WMS's stock count
 * against a running atpd's positions, and with --apply the COUNT events
 * that make atpd match.
 *
 * The file has a header naming (at least) the columns sku, location and
 * on_hand, in any order, as WMSs export them; it is read as a stream (a
 * progress line on stderr with --progress or a terminal) and checked
 * whole before anything is applied: a bad row (onhand_csv.h says what
 * a good one is; and a position twice) is named by
 * FILE:LINE and nothing is applied. atpd's positions come from the Scan
 * call. The report: positions checked, matching, differing (units over
 * and under: atpd minus the file), positions only in the file, only in
 * atpd, and the largest variances.
 *
 * --apply sends one COUNT (on_hand := the file's) per differing position
 * and per position only in the file, under the source --source (default
 * "reconcile") over the TCP event stream: its seqs continue after the
 * source's durable seq (the Welcome's), and the command exits 0 only once
 * every one is durable. A second run finds nothing to apply. Positions
 * only in atpd are left alone unless --zero-missing (a WMS export may
 * leave out what it has none of). Events of other sources arriving between
 * the scan and the counts are not seen: reconcile at a quiet moment, as a
 * stock count is taken.
 */
#include "atpctl.h"
#include "onhand_csv.h"
#include "stream_client.h"

#include "atp/limits.h"
#include "atp/wire_api.h"
#include "atp/wire_event.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX (ATP_SKU_MAX + 1 + ATP_LOC_MAX)
#define BATCH 256
#define LINE_MAX_BYTES 4096

/* A position, as atpd has it and as the file has it. */
typedef struct entry {
	uint64_t hash;
	char *key;                 /* "sku\0location" in the arena */
	uint8_t sku_len, loc_len;
	bool in_atpd, in_file;
	int64_t atpd, file;        /* on_hand */
	uint64_t line;             /* the file's */
} entry;

typedef struct table {
	entry *e;
	uint64_t cap, n;           /* cap a power of two */
	char *arena;               /* the keys, in chunks (each chunk starts with the previous one's address) */
	size_t arena_used, arena_cap;
} table;

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "atpctl: out of memory\n");
		exit(1);
	}
	return p;
}

static entry *slot(table *t, uint64_t h, const char *sku, size_t sl, const char *loc, size_t ll)
{
	for (uint64_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		entry *e = &t->e[i];
		if (!e->key || (e->hash == h && e->sku_len == sl && e->loc_len == ll && memcmp(e->key, sku, sl) == 0 &&
				memcmp(e->key + sl + 1, loc, ll) == 0))
			return e;
	}
}

static char *keep_key(table *t, size_t n)
{
	if (t->arena_used + n > t->arena_cap) {
		char *c = xmalloc(1u << 20);
		memcpy(c, &t->arena, sizeof(char *));
		t->arena = c;
		t->arena_used = sizeof(char *);
		t->arena_cap = 1u << 20;
	}
	char *p = t->arena + t->arena_used;
	t->arena_used += n;
	return p;
}

static void table_free(table *t)
{
	while (t->arena) {
		char *prev;
		memcpy(&prev, t->arena, sizeof(char *));
		free(t->arena);
		t->arena = prev;
	}
	free(t->e);
}

/* The entry of (sku, loc), made if new. */
static entry *find(table *t, const char *sku, size_t sl, const char *loc, size_t ll)
{
	if ((t->n + 1) * 2 > t->cap) {
		table g = { .cap = t->cap ? t->cap * 2 : 1024 };
		g.e = xmalloc(g.cap * sizeof(entry));
		memset(g.e, 0, g.cap * sizeof(entry));
		for (uint64_t i = 0; i < t->cap; i++)
			if (t->e[i].key)
				*slot(&g, t->e[i].hash, t->e[i].key, t->e[i].sku_len, t->e[i].key + t->e[i].sku_len + 1,
				      t->e[i].loc_len) = t->e[i];
		free(t->e);
		t->e = g.e;
		t->cap = g.cap;  /* n and the keys' arena stay */
	}
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, sku, sl);
	XXH3_64bits_update(&st, "\0", 1);
	XXH3_64bits_update(&st, loc, ll);
	uint64_t h = XXH3_64bits_digest(&st);
	entry *e = slot(t, h, sku, sl, loc, ll);
	if (!e->key) {
		e->key = keep_key(t, sl + 1 + ll + 1);
		memcpy(e->key, sku, sl);
		e->key[sl] = 0;
		memcpy(e->key + sl + 1, loc, ll);
		e->key[sl + 1 + ll] = 0;
		e->hash = h;
		e->sku_len = (uint8_t)sl;
		e->loc_len = (uint8_t)ll;
		t->n++;
	}
	return e;
}

static void take_position(void *ctx, const uint8_t *p)
{
	atp_str sku = atp_v1_position_atp_sku(p), loc = atp_v1_position_atp_location(p);
	entry *e = find(ctx, sku.ptr, sku.len, loc.ptr, loc.len);
	e->in_atpd = true;
	e->atpd = atp_v1_position_atp_on_hand(p);
}

/* ---- the file ---- */

typedef struct progress {
	bool on;
	uint64_t size, rows;
	double last;
} progress;

static void show(progress *pr, uint64_t at, bool end)
{
	if (!pr->on || (!end && now_seconds() - pr->last < 0.25))
		return;
	pr->last = now_seconds();
	fprintf(stderr, "\rreconcile: %" PRIu64 " rows, %3.0f%%%s", pr->rows,
		pr->size ? 100.0 * (double)at / (double)pr->size : 100.0, end ? "\n" : "");
}

/* Every row into t; -1 after naming the bad rows (FILE:LINE: why), at most 20 of them. */
static int read_file(const char *path, table *t, progress *pr)
{
	FILE *in = fopen(path, "r");
	if (!in) {
		fprintf(stderr, "atpctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	pr->size = fstat(fileno(in), &sb) == 0 ? (uint64_t)sb.st_size : 0;
	static char line[LINE_MAX_BYTES + 2];
	onhand_cols cols;
	uint64_t lineno = 0, bad = 0, at = 0;
	while (fgets(line, sizeof(line), in)) {
		lineno++;
		size_t len = strlen(line);
		at += len;  /* bytes read, for the progress line (ftell would ask the kernel every row) */
		bool whole = len && line[len - 1] == '\n';
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		const char *why = NULL;
		char whybuf[160];
		onhand_row row;
		if (!whole && !feof(in)) {
			why = "a line longer than 4096 bytes";
			int c;
			while ((c = fgetc(in)) != EOF && c != '\n')
				;
		} else if (lineno == 1) {
			if (onhand_csv_header(line, &cols) < 0) {
				fprintf(stderr, "%s:1: the header must name the columns sku, location and on_hand\n", path);
				fclose(in);
				return -1;
			}
			continue;
		} else if (len == 0) {
			continue;
		} else if (!(why = onhand_csv_row(line, &cols, &row, whybuf, sizeof(whybuf)))) {
			entry *e = find(t, row.sku.ptr, row.sku.len, row.location.ptr, row.location.len);
			if (e->in_file) {
				snprintf(whybuf, sizeof(whybuf), "%.*s at %.*s again (first on line %" PRIu64 ")", (int)row.sku.len,
					 row.sku.ptr, (int)row.location.len, row.location.ptr, e->line);
				why = whybuf;
			} else {
				e->in_file = true;
				e->file = row.on_hand;
				e->line = lineno;
				pr->rows++;
			}
		}
		if (why && ++bad <= 20)
			fprintf(stderr, "%s:%" PRIu64 ": %s\n", path, lineno, why);
		show(pr, at, false);
	}
	show(pr, pr->size, true);
	bool err = ferror(in);
	fclose(in);
	if (err) {
		fprintf(stderr, "atpctl: %s: a read error\n", path);
		return -1;
	}
	if (lineno == 0) {
		fprintf(stderr, "%s: empty: the header must name the columns sku, location and on_hand\n", path);
		return -1;
	}
	if (bad) {
		fprintf(stderr, "%s: %" PRIu64 " bad rows; nothing compared, nothing applied\n", path, bad);
		return -1;
	}
	return 0;
}

/* ---- the report ---- */

static int by_variance(const void *a, const void *b)
{
	const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
	int64_t dx = llabs(x->atpd - x->file), dy = llabs(y->atpd - y->file);
	return (dx < dy) - (dx > dy);
}

/* Whether --apply counts e, and to what. */
static bool wants_count(const entry *e, bool zero_missing)
{
	if (e->in_file)
		return !e->in_atpd || e->atpd != e->file;
	return zero_missing && e->atpd != 0;
}

static uint64_t report(const table *t, uint32_t top, bool zero_missing)
{
	uint64_t checked = 0, matching = 0, differing = 0, only_file = 0, only_atpd = 0, over_n = 0, under_n = 0;
	int64_t over = 0, under = 0, only_file_units = 0, only_atpd_units = 0;
	uint64_t to_apply = 0;
	entry **var = xmalloc((t->n + 1) * sizeof(entry *));
	uint64_t n_var = 0;
	for (uint64_t i = 0; i < t->cap; i++) {
		entry *e = &t->e[i];
		if (!e->key)
			continue;
		to_apply += wants_count(e, zero_missing);
		if (e->in_file && e->in_atpd) {
			checked++;
			if (e->atpd == e->file) {
				matching++;
				continue;
			}
			differing++;
			var[n_var++] = e;
			if (e->atpd > e->file)
				over_n++, over += e->atpd - e->file;
			else
				under_n++, under += e->file - e->atpd;
		} else if (e->in_file) {
			only_file++;
			only_file_units += e->file;
		} else {
			only_atpd++;
			only_atpd_units += e->atpd;
		}
	}
	printf("positions checked: %" PRIu64 " (in both the file and atpd)\n", checked);
	printf("matching: %" PRIu64 "\n", matching);
	printf("differing: %" PRIu64 ": atpd over the file on %" PRIu64 " by %" PRId64 " units, under on %" PRIu64
	       " by %" PRId64 " units\n", differing, over_n, over, under_n, under);
	printf("only in the file: %" PRIu64 " (%" PRId64 " units on hand)\n", only_file, only_file_units);
	printf("only in atpd: %" PRIu64 " (%" PRId64 " units on hand)%s\n", only_atpd, only_atpd_units,
	       zero_missing ? ": counted to 0 with --apply" : "");
	if (n_var) {
		qsort(var, n_var, sizeof(entry *), by_variance);
		printf("largest variances (atpd - file):\nsku,location,atpd,file,variance\n");
		for (uint64_t i = 0; i < n_var && i < top; i++)
			printf("%s,%s,%" PRId64 ",%" PRId64 ",%+" PRId64 "\n", var[i]->key, var[i]->key + var[i]->sku_len + 1,
			       var[i]->atpd, var[i]->file, var[i]->atpd - var[i]->file);
	}
	free(var);
	return to_apply;
}

/* ---- --apply ---- */

static int flush(stream_source *src, const atp_event *ev, const atp_wire_event_time *tm, uint32_t n)
{
	static uint8_t mem[1u << 20] __attribute__((aligned(8)));
	atp_fb_ref refs[BATCH];
	atp_fb_builder fb;
	size_t len;
	atp_fb_builder_init(&fb, mem, sizeof(mem));
	for (uint32_t i = 0; i < n; i++)
		refs[i] = atp_wire_build_event(&fb, &ev[i], tm[i]);
	const uint8_t *p = atp_fb_finish(&fb, atp_wire_build_event_batch(&fb, refs, n), NULL, &len);
	return p && stream_source_add(src, p, (uint32_t)len, n, ev[n - 1].seq) == 0 ? 0 : -1;
}

static int apply(const table *t, const char *tcp, const char *source, bool zero_missing)
{
	char host[256], err[256];
	const char *colon = strrchr(tcp, ':');
	if (!colon || colon == tcp || (size_t)(colon - tcp) >= sizeof(host)) {
		fprintf(stderr, "atpctl: --tcp needs HOST:PORT, got '%s'\n", tcp);
		return 2;
	}
	memcpy(host, tcp, (size_t)(colon - tcp));
	host[colon - tcp] = 0;
	uint64_t seq;
	if (stream_durable_seq(host, colon + 1, source, &seq, err, sizeof(err)) < 0) {
		fprintf(stderr, "atpctl: %s\n", err);
		return 1;
	}
	stream_source src = { 0 };
	snprintf(src.name, sizeof(src.name), "%s", source);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, first = seq + 1;
	atp_event ev[BATCH];
	atp_wire_event_time tm[BATCH];
	uint32_t n = 0;
	for (uint64_t i = 0; i < t->cap; i++) {
		const entry *e = &t->e[i];
		if (!e->key || !wants_count(e, zero_missing))
			continue;
		seq++;
		ev[n] = (atp_event){ .event_id = seq, .seq = seq, .type = ATP_EV_COUNT, .qty = e->in_file ? e->file : 0,
				     .sku = atp_str_of(e->key, e->sku_len),
				     .location = atp_str_of(e->key + e->sku_len + 1, e->loc_len) };
		tm[n] = (atp_wire_event_time){ now_ms, 0 };
		if (++n == BATCH) {
			if (flush(&src, ev, tm, n) < 0)
				goto out_of_memory;
			n = 0;
		}
	}
	if (n && flush(&src, ev, tm, n) < 0)
		goto out_of_memory;
	stream_options o = { .host = host, .port = colon + 1, .window = 1u << 20, .timeout_s = 60 };
	stream_result r;
	int rc = stream_send(&src, 1, &o, &r);
	stream_source_free(&src);
	if (rc < 0) {
		fprintf(stderr, "atpctl: the counts were not all applied (%" PRIu64 " durable); run it again\n", r.events);
		return 1;
	}
	printf("applied: %" PRIu64 " COUNT events as source %s (seq %" PRIu64 "..%" PRIu64 "), durable; %" PRIu64
	       " refused\n", seq - first + 1, source, first, seq, r.refused);
	return r.refused ? 1 : 0;
out_of_memory:
	stream_source_free(&src);
	fprintf(stderr, "atpctl: out of memory\n");
	return 1;
}

int cmd_reconcile(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	const char *path = NULL, *tcp = getenv("ATP_TCP") ? getenv("ATP_TCP") : "127.0.0.1:7400";
	const char *source = "reconcile";
	bool do_apply = false, zero_missing = false;
	progress pr = { .on = isatty(2) };
	uint32_t top = 10;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--apply") == 0)
			do_apply = true;
		else if (strcmp(argv[i], "--zero-missing") == 0)
			zero_missing = true;
		else if (strcmp(argv[i], "--progress") == 0)
			pr.on = true;
		else if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc)
			tcp = argv[++i];
		else if (strcmp(argv[i], "--source") == 0 && i + 1 < argc)
			source = argv[++i];
		else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc)
			top = (uint32_t)opt_u64("--top", argv[++i], 0, 1000000);
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			path = NULL, argc = 0;
	}
	if (!path || !source[0] || strlen(source) > ATP_SOURCE_MAX || source[0] == '@') {
		fprintf(stderr, "usage: atpctl reconcile ONHAND.csv [--grpc HOST:PORT] [--top N] [--progress]\n"
				"         [--apply [--tcp HOST:PORT] [--source NAME] [--zero-missing]]\n"
				"  (NAME: 1..64 bytes, not starting with '@')\n");
		return 2;
	}
	table t = { 0 };
	if (grpc_scan_all(target, take_position, &t) < 0)
		return 1;
	if (read_file(path, &t, &pr) < 0)
		return 1;
	uint64_t to_apply = report(&t, top, zero_missing);
	int rc = 0;
	if (do_apply && to_apply == 0)
		printf("applied: nothing to apply\n");
	else if (do_apply)
		rc = apply(&t, tcp, source, zero_missing);
	table_free(&t);
	return rc;
}
