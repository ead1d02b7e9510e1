/*
 * atp-peers — one reservation workload against atpd, Redis and PostgreSQL,
 * so that they can be compared in one run.
 *
 * The workload is the simulated day's reservations (tools/lib/simday.h):
 * its RESERVE rows, in order, with their SKUs (Zipf popularity), locations,
 * quantities and reservation ids, client retries included, so the same
 * idempotency keys recur. Every (sku, location) starts with --stock units.
 * --threads threads, each with its own connection, take the next
 * reservations and keep --depth of them in flight on it (default 1; a
 * closed loop: one answered, the next sent):
 *   atpd      gRPC Reserve of one line (stock loaded by the caller, through
 *             the TCP event stream: `--stock-csv FILE` writes the receipts);
 *   redis     one Lua script: the idempotency key answers a retry with the
 *             first result, else DECRBY when the stock covers the qty; the
 *             server's appendfsync decides durability;
 *             --depth: calls pipelined on the connection, answered in order;
 *   postgres  one function: an idempotency row (INSERT ... ON CONFLICT DO
 *             NOTHING), then UPDATE ... SET available = available - qty
 *             WHERE available >= qty, committed with synchronous_commit on
 *             (depth 1 only).
 * Prints one line: backend, reservations/s, p50 and p99 in ms, units
 * confirmed, duplicates; with --check, that no key's stock went below 0.
 */
#define _GNU_SOURCE
#include "mono.h"
#include "csv_events.h"
#include "grpc_client.h"
#include "histogram.h"
#include "simday.h"

#include "atp/wire_api.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct resv {
	char id[ATP_REF_MAX + 1], sku[ATP_SKU_MAX + 1], loc[ATP_LOC_MAX + 1];
	int64_t qty;
} resv;

typedef struct keypos {
	char sku[ATP_SKU_MAX + 1], loc[ATP_LOC_MAX + 1];
} keypos;

static struct {
	const char *backend, *target;
	uint32_t threads, depth;
	int64_t stock;
	resv *r;
	uint64_t n, next;
	keypos *keys;
	uint64_t n_keys;
	atp_histogram hist;
	uint64_t confirmed, duplicates, failed;
} g;

static int key_cmp(const void *a, const void *b)
{
	const keypos *x = a, *y = b;
	int c = strcmp(x->sku, y->sku);
	return c ? c : strcmp(x->loc, y->loc);
}

/* The day's reservations, and every position they name. */
static int workload(const atp_simday_params *p)
{
	char *csv = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&csv, &len);
	atp_simday_summary sum;
	if (!f || atp_simday_write(p, f, &sum) < 0 || fclose(f) != 0)
		return -1;
	atp_csv_reader *rd = malloc(sizeof(*rd));
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	uint64_t cap = 1024, kcap = 1024;
	g.r = malloc(cap * sizeof(resv));
	g.keys = malloc(kcap * sizeof(keypos));
	if (!rd || !g.r || !g.keys || atp_csv_open(rd, csv, len, err) < 0)
		return -1;
	int k;
	while ((k = atp_csv_next(rd, &ev, err)) > 0) {
		if (ev.type != ATP_EV_RESERVE)
			continue;
		if (g.n_keys == kcap && !(g.keys = realloc(g.keys, (kcap *= 2) * sizeof(keypos))))
			return -1;
		keypos *q = &g.keys[g.n_keys++];
		snprintf(q->sku, sizeof(q->sku), "%.*s", (int)ev.sku.len, ev.sku.ptr);
		snprintf(q->loc, sizeof(q->loc), "%.*s", (int)ev.location.len, ev.location.ptr);
		if (g.n == cap && !(g.r = realloc(g.r, (cap *= 2) * sizeof(resv))))
			return -1;
		resv *r = &g.r[g.n++];
		snprintf(r->id, sizeof(r->id), "%.*s", (int)ev.ref.len, ev.ref.ptr);
		snprintf(r->sku, sizeof(r->sku), "%.*s", (int)ev.sku.len, ev.sku.ptr);
		snprintf(r->loc, sizeof(r->loc), "%.*s", (int)ev.location.len, ev.location.ptr);
		r->qty = ev.qty;
	}
	free(rd);
	free(csv);
	/* every position a reservation names, once */
	qsort(g.keys, g.n_keys, sizeof(keypos), key_cmp);
	uint64_t u = 0;
	for (uint64_t i = 0; i < g.n_keys; i++)
		if (!u || key_cmp(&g.keys[u - 1], &g.keys[i]) != 0)
			g.keys[u++] = g.keys[i];
	g.n_keys = u;
	return k < 0 ? -1 : 0;
}

static bool take(uint64_t *i)
{
	*i = __atomic_fetch_add(&g.next, 1, __ATOMIC_RELAXED);
	return *i < g.n;
}

static void record(atp_histogram *h, uint64_t t0, int64_t confirmed, bool duplicate, bool ok)
{
	atp_hist_add(h, atp_mono_ns() - t0);
	if (!ok)
		__atomic_fetch_add(&g.failed, 1, __ATOMIC_RELAXED);
	else if (duplicate)
		__atomic_fetch_add(&g.duplicates, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&g.confirmed, (uint64_t)confirmed, __ATOMIC_RELAXED);
}

/* ---- atpd ---- */

/* One call in flight: its start and, once its reply came, what it says. */
typedef struct atpd_call {
	atp_histogram *h;
	uint64_t t0;
	int64_t confirmed;
	bool busy, replied, duplicate;
} atpd_call;

static void atpd_reply(void *ctx, const uint8_t *msg, uint32_t len)
{
	atpd_call *k = ctx;
	int rc;
	const uint8_t *rr = atp_v1_verify(msg, len, &atp_v1_reserve_reply_rule, &rc);
	if (rr) {
		k->replied = true;
		k->confirmed = atp_v1_line_result_confirmed(atp_v1_reserve_reply_lines(rr, 0));
		k->duplicate = atp_v1_reserve_reply_duplicate(rr);
	}
}

static void atpd_done(void *ctx, int status, const char *message)
{
	(void)message;
	atpd_call *k = ctx;
	record(k->h, k->t0, k->confirmed, k->duplicate, status == 0 && k->replied);
	k->busy = false;
}

static void *run_atpd(void *arg)
{
	char err[256];
	atp_grpc_client *c = atp_grpc_client_connect(g.target, err, sizeof(err));
	atpd_call *calls = calloc(g.depth, sizeof(*calls));
	uint8_t mem[4096] __attribute__((aligned(8)));
	bool more = true;
	while (c && calls) {
		for (uint32_t s = 0; more && s < g.depth; s++) {
			uint64_t i;
			if (calls[s].busy)
				continue;
			if (!(more = take(&i)))
				break;
			const resv *r = &g.r[i];
			atp_fb_builder b;
			atp_fb_builder_init(&b, mem, sizeof(mem));
			atp_fb_ref line = atp_v1_build_reserve_line(&b, atp_str_of(r->sku, strlen(r->sku)),
								    atp_str_of(r->loc, strlen(r->loc)), r->qty);
			size_t len;
			const uint8_t *msg = atp_fb_finish(
				&b, atp_v1_build_reserve_request(&b, atp_str_of(r->id, strlen(r->id)), &line, 1, 0, false), NULL, &len);
			calls[s] = (atpd_call){ .h = arg, .t0 = atp_mono_ns(), .busy = true };
			if (atp_grpc_client_start(c, "/atp.v1.Atp/Reserve", msg, (uint32_t)len, 60000, atpd_reply, atpd_done,
						  &calls[s]) < 0) {
				record(arg, calls[s].t0, 0, false, false);
				calls[s].busy = false;
			}
		}
		if (atp_grpc_client_in_flight(c) == 0 || atp_grpc_client_pump(c, 1000) < 0)
			break;
	}
	if (!c)
		fprintf(stderr, "atp-peers: %s\n", err);
	atp_grpc_client_close(c);  /* calls still in flight on a broken connection end there, failed */
	free(calls);
	return NULL;
}

/* ---- Redis ---- */

static const char *lua =
	"local prev = redis.call('GET', KEYS[1]) "
	"if prev then return {tonumber(prev), 1} end "
	"local q = tonumber(ARGV[1]) "
	"local a = tonumber(redis.call('GET', KEYS[2]) or '0') "
	"local c = 0 "
	"if a >= q then redis.call('DECRBY', KEYS[2], q) c = q end "
	"redis.call('SET', KEYS[1], c) "
	"return {c, 0}";

static redisContext *redis_connect(void)
{
	char host[128];
	snprintf(host, sizeof(host), "%s", g.target);
	char *colon = strrchr(host, ':');
	if (!colon)
		return NULL;
	*colon = 0;
	redisContext *c = redisConnect(host, atoi(colon + 1));
	if (!c || c->err) {
		fprintf(stderr, "atp-peers: redis %s: %s\n", g.target, c ? c->errstr : "no memory");
		return NULL;
	}
	return c;
}

static void *run_redis(void *arg)
{
	atp_histogram *h = arg;
	redisContext *c = redis_connect();
	redisReply *sha = c ? redisCommand(c, "SCRIPT LOAD %s", lua) : NULL;
	uint64_t *t0 = calloc(g.depth, sizeof(uint64_t)), i;
	uint32_t head = 0, n = 0;  /* the calls sent and not answered: t0[head..head+n), answered in order */
	bool more = true;
	while (sha && sha->type == REDIS_REPLY_STRING && t0) {
		while (more && n < g.depth && (more = take(&i))) {
			const resv *r = &g.r[i];
			char idem[256], avail[160], qty[24];
			snprintf(idem, sizeof(idem), "idem:%s:%s:%s", r->id, r->sku, r->loc);
			snprintf(avail, sizeof(avail), "avail:%s:%s", r->sku, r->loc);
			snprintf(qty, sizeof(qty), "%" PRId64, r->qty);
			t0[(head + n++) % g.depth] = atp_mono_ns();
			redisAppendCommand(c, "EVALSHA %s 2 %s %s %s", sha->str, idem, avail, qty);
		}
		redisReply *x = NULL;
		if (n == 0 || redisGetReply(c, (void **)&x) != REDIS_OK)
			break;  /* done, or broken: what is unanswered is not counted */
		bool ok = x && x->type == REDIS_REPLY_ARRAY && x->elements == 2;
		record(h, t0[head], ok ? x->element[0]->integer : 0, ok && x->element[1]->integer == 1, ok);
		head = (head + 1) % g.depth;
		n--;
		freeReplyObject(x);
	}
	free(t0);
	if (sha)
		freeReplyObject(sha);
	if (c)
		redisFree(c);
	return NULL;
}

static int redis_setup(void)
{
	redisContext *c = redis_connect();
	if (!c)
		return -1;
	freeReplyObject(redisCommand(c, "FLUSHALL"));
	for (uint64_t i = 0; i < g.n_keys; i++)
		redisAppendCommand(c, "SET avail:%s:%s %" PRId64, g.keys[i].sku, g.keys[i].loc, g.stock);
	for (uint64_t i = 0; i < g.n_keys; i++) {
		void *x;
		if (redisGetReply(c, &x) != REDIS_OK)
			return -1;
		freeReplyObject(x);
	}
	redisFree(c);
	return 0;
}

static int redis_check(void)
{
	redisContext *c = redis_connect();
	int bad = 0;
	for (uint64_t i = 0; c && i < g.n_keys; i++) {
		redisReply *x = redisCommand(c, "GET avail:%s:%s", g.keys[i].sku, g.keys[i].loc);
		if (x && x->type == REDIS_REPLY_STRING && atoll(x->str) < 0)
			bad++;
		if (x)
			freeReplyObject(x);
	}
	if (c)
		redisFree(c);
	return c ? bad : -1;
}

/* ---- PostgreSQL ---- */

static const char *pg_schema =
	"SET client_min_messages = warning; DROP TABLE IF EXISTS stock, reservation; "
	"CREATE TABLE stock (sku text, loc text, available bigint NOT NULL, PRIMARY KEY (sku, loc)); "
	"CREATE TABLE reservation (id text, sku text, loc text, confirmed bigint NOT NULL, PRIMARY KEY (id, sku, loc)); "
	"CREATE OR REPLACE FUNCTION reserve(p_id text, p_sku text, p_loc text, p_qty bigint) RETURNS bigint AS $$ "
	"DECLARE c bigint; "
	"BEGIN "
	"  INSERT INTO reservation VALUES (p_id, p_sku, p_loc, 0) ON CONFLICT DO NOTHING; "
	"  IF NOT FOUND THEN "
	"    SELECT confirmed INTO c FROM reservation WHERE id = p_id AND sku = p_sku AND loc = p_loc; "
	"    RETURN -1 - c; "
	"  END IF; "
	"  UPDATE stock SET available = available - p_qty WHERE sku = p_sku AND loc = p_loc AND available >= p_qty; "
	"  IF FOUND THEN "
	"    UPDATE reservation SET confirmed = p_qty WHERE id = p_id AND sku = p_sku AND loc = p_loc; "
	"    RETURN p_qty; "
	"  END IF; "
	"  RETURN 0; "
	"END $$ LANGUAGE plpgsql";

static PGconn *pg_connect(void)
{
	PGconn *c = PQconnectdb(g.target);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "atp-peers: postgres: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static bool pg_ok(PGresult *r)
{
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}

static void *run_pg(void *arg)
{
	atp_histogram *h = arg;
	PGconn *c = pg_connect();
	uint64_t i;
	if (c && !pg_ok(PQprepare(c, "reserve", "SELECT reserve($1, $2, $3, $4)", 4, NULL))) {
		PQfinish(c);
		c = NULL;
	}
	while (c && take(&i)) {
		const resv *r = &g.r[i];
		char qty[24];
		snprintf(qty, sizeof(qty), "%" PRId64, r->qty);
		const char *v[4] = { r->id, r->sku, r->loc, qty };
		uint64_t t0 = atp_mono_ns();
		PGresult *x = PQexecPrepared(c, "reserve", 4, v, NULL, NULL, 0);
		bool ok = PQresultStatus(x) == PGRES_TUPLES_OK && PQntuples(x) == 1;
		int64_t got = ok ? atoll(PQgetvalue(x, 0, 0)) : 0;
		record(h, t0, got < 0 ? -1 - got : got, ok && got < 0, ok);
		if (!ok)
			fprintf(stderr, "atp-peers: postgres: %s", PQresultErrorMessage(x));
		PQclear(x);
	}
	PQfinish(c);
	return NULL;
}

static int pg_setup(void)
{
	PGconn *c = pg_connect();
	if (!c || !pg_ok(PQexec(c, pg_schema)) || !pg_ok(PQexec(c, "BEGIN")))
		return -1;
	char stock[24];
	snprintf(stock, sizeof(stock), "%" PRId64, g.stock);
	for (uint64_t i = 0; i < g.n_keys; i++) {
		const char *v[3] = { g.keys[i].sku, g.keys[i].loc, stock };
		if (!pg_ok(PQexecParams(c, "INSERT INTO stock VALUES ($1, $2, $3)", 3, NULL, v, NULL, NULL, 0)))
			return -1;
	}
	bool ok = pg_ok(PQexec(c, "COMMIT")) && pg_ok(PQexec(c, "VACUUM ANALYZE"));
	PQfinish(c);
	return ok ? 0 : -1;
}

static int pg_check(void)
{
	PGconn *c = pg_connect();
	if (!c)
		return -1;
	PGresult *x = PQexec(c, "SELECT count(*) FROM stock WHERE available < 0");
	int bad = PQresultStatus(x) == PGRES_TUPLES_OK ? atoi(PQgetvalue(x, 0, 0)) : -1;
	PQclear(x);
	PQfinish(c);
	return bad;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	atp_simday_params p = atp_simday_default();
	const char *stock_csv = NULL;
	bool check = false;
	uint64_t limit = UINT64_MAX;
	g.threads = 16;
	g.depth = 1;
	g.stock = 1000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--backend") == 0 && v)
			g.backend = argv[++i];
		else if (strcmp(a, "--target") == 0 && v)
			g.target = argv[++i];
		else if (strcmp(a, "--threads") == 0 && v)
			g.threads = (uint32_t)atoi(argv[++i]);
		else if (strcmp(a, "--depth") == 0 && v)
			g.depth = (uint32_t)atoi(argv[++i]);
		else if (strcmp(a, "--stock") == 0 && v)
			g.stock = atoll(argv[++i]);
		else if (strcmp(a, "--order-lines") == 0 && v)
			p.order_lines = (uint32_t)atoi(argv[++i]);
		else if (strcmp(a, "--skus") == 0 && v)
			p.skus = (uint32_t)atoi(argv[++i]);
		else if (strcmp(a, "--seed") == 0 && v)
			p.seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--limit") == 0 && v)
			limit = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--stock-csv") == 0 && v)
			stock_csv = argv[++i];
		else if (strcmp(a, "--check") == 0)
			check = true;
		else {
			fprintf(stderr, "usage: atp-peers [--seed N] [--order-lines N] [--skus N] [--stock N] [--limit N]\n"
					"         (--stock-csv FILE | --backend atpd|redis|postgres --target T [--threads N] [--depth K] [--check])\n"
					"  T: HOST:PORT (atpd's gRPC, redis) or a libpq connection string (postgres)\n");
			return 2;
		}
	}
	if (workload(&p) < 0 || g.threads < 1 || g.depth < 1 || g.depth > 1024) {
		fprintf(stderr, "atp-peers: cannot build the workload\n");
		return 1;
	}
	if (g.n > limit)
		g.n = limit;
	if (stock_csv) {  /* the stock as receipts, for atpd's TCP event stream */
		FILE *f = fopen(stock_csv, "w");
		if (!f)
			return 1;
		fprintf(f, "event_id,source,seq,type,sku,location,qty,ref,to_location,reason\n");
		for (uint64_t i = 0; i < g.n_keys; i++)
			fprintf(f, "%" PRIu64 ",stock,%" PRIu64 ",RECEIPT,%s,%s,%" PRId64 ",,,\n", i + 1, i + 1, g.keys[i].sku,
				g.keys[i].loc, g.stock);
		return fclose(f) ? 1 : 0;
	}
	void *(*run)(void *) = NULL;
	int (*setup)(void) = NULL, (*verify)(void) = NULL;
	if (g.backend && strcmp(g.backend, "atpd") == 0)
		run = run_atpd;
	else if (g.backend && strcmp(g.backend, "redis") == 0)
		run = run_redis, setup = redis_setup, verify = redis_check;
	else if (g.backend && strcmp(g.backend, "postgres") == 0)
		run = run_pg, setup = pg_setup, verify = pg_check;
	if (!run || !g.target || (run == run_pg && g.depth != 1)) {
		fprintf(stderr, "atp-peers: --backend atpd|redis|postgres and --target are needed (postgres: depth 1)\n");
		return 2;
	}
	if (setup && setup() < 0) {
		fprintf(stderr, "atp-peers: %s: cannot load the stock\n", g.backend);
		return 1;
	}
	pthread_t *t = calloc(g.threads, sizeof(pthread_t));
	atp_histogram *h = calloc(g.threads, sizeof(atp_histogram));
	uint64_t t0 = atp_mono_ns();
	for (uint32_t i = 0; i < g.threads; i++)
		pthread_create(&t[i], NULL, run, &h[i]);
	for (uint32_t i = 0; i < g.threads; i++) {
		pthread_join(t[i], NULL);
		atp_hist_merge(&g.hist, &h[i]);
	}
	double secs = (atp_mono_ns() - t0) / 1e9;
	int bad = check && verify ? verify() : 0;
	printf("%s %ux%u: %" PRIu64 " reservations in %.2f s: %.0f/s, p50 %.3f ms, p99 %.3f ms; %" PRIu64
	       " units confirmed, %" PRIu64 " duplicates, %" PRIu64 " failed%s\n",
	       g.backend, g.threads, g.depth, g.hist.count, secs, g.hist.count / secs, atp_hist_quantile(&g.hist, 0.5) / 1e6,
	       atp_hist_quantile(&g.hist, 0.99) / 1e6, g.confirmed, g.duplicates, g.failed,
	       bad > 0 ? "; OVERSOLD" : bad < 0 ? "; stock not checked" : "");
	free(t);
	free(h);
	return g.failed || bad > 0 || g.hist.count != g.n ? 1 : 0;
}
