/*
 * Whole orders (atp_engine_submit_order) on the threaded engine: 4 shards on
 * 2 workers, so that most orders span both. Concurrent orders on a few hot
 * SKUs confirm exactly the stock there is, never more, and every order
 * whole or not at all, the same on a retry; a process killed at each step of
 * an order (the test hook) recovers to the whole order or none of it, in
 * every shard, durably, and a retry under the same reservation id then
 * gets one answer; and a random day of receipts, picks, releases, per-line
 * reserves and whole orders (retries among them) gives every result and
 * every position the reference model (tests/model.h, m_order) gives.
 */
#define _GNU_SOURCE
#include "../model.h"
#include "atp/engine.h"
#include "atp/status.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A plain program, not Criterion: its crash tests fork and kill processes of their own. */
#define CHECK(cond, ...)                                                                        \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "test_orders.c:%d: failed: %s: ", __LINE__, #cond);     \
			fprintf(stderr, " " __VA_ARGS__);                                       \
			fputc('\n', stderr);                                                    \
			exit(1);                                                                \
		}                                                                               \
	} while (0)
#define cr_assert(c, ...) CHECK(c, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) CHECK((a) == (b), __VA_ARGS__)
#define cr_assert_not_null(a, ...) CHECK((a) != NULL, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CHECK((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CHECK((a) >= (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CHECK((a) <= (b), __VA_ARGS__)

#define SKUS 8
#define STOCK 10
#define MAX_SEQ 20000

static char dir[64];
static int64_t confirmed[MAX_SEQ];  /* by the test source's seq: what each line got; -1 none yet */
static int statuses[MAX_SEQ];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/atp-orders-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	for (int i = 0; i < MAX_SEQ; i++)
		confirmed[i] = -1;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void on_done(void *ctx, const atp_engine_done *d)
{
	(void)ctx;
	if (strcmp(d->source, "@t") == 0 && d->seq < MAX_SEQ) {
		confirmed[d->seq] = d->qty;
		statuses[d->seq] = d->status;
	}
}

static atp_engine *open_engine(void)
{
	atp_engine_config cfg = atp_engine_config_default();
	cfg.shards = 4;
	cfg.workers = 2;
	cfg.first_cpu = -1;
	cfg.router_cpu = -1;
	cfg.core.max_positions = 1024;
	cfg.core.max_lines = 1u << 16;
	cfg.core.max_sources = 64;
	cfg.wal.segment_bytes = 1u << 20;
	cfg.wal.buffer_bytes = 256u << 10;
	cfg.ring_bytes = 256u << 10;
	cfg.on_done = on_done;
	char err[600];
	atp_engine *e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	return e;
}

static char skus[SKUS][8];

static atp_str sku(int i)
{
	snprintf(skus[i], sizeof(skus[i]), "S%d", i);
	return atp_str_of(skus[i], strlen(skus[i]));
}

static const atp_str LOC = { "L1", 2 };

static void stock_up(atp_engine *e)
{
	for (int i = 0; i < SKUS; i++) {
		atp_event ev = { .type = ATP_EV_RECEIPT, .source = atp_str_of("wms", 3), .seq = (uint64_t)i + 1,
				 .event_id = (uint64_t)i + 1, .sku = sku(i), .location = LOC, .qty = STOCK };
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	}
	cr_assert_eq(atp_engine_sync(e), 0);
}

typedef struct order {
	char ref[16];
	uint32_t n;
	int sku[4];
	int64_t qty[4];
	uint64_t seq;  /* of its first line, as last submitted */
} order;

static uint64_t next_seq = 1;

static void make_order(order *o, int k, unsigned *rnd)
{
	snprintf(o->ref, sizeof(o->ref), "ord-%d", k);
	o->n = 2 + rand_r(rnd) % 3;
	for (uint32_t i = 0; i < o->n; i++) {
		int s;
		bool again;
		do {
			s = rand_r(rnd) % SKUS;
			again = false;
			for (uint32_t j = 0; j < i; j++)
				again |= o->sku[j] == s;
		} while (again);
		o->sku[i] = s;
		o->qty[i] = 1 + rand_r(rnd) % 3;
	}
}

static int submit_order(atp_engine *e, order *o)
{
	atp_event lines[4];
	o->seq = next_seq;
	for (uint32_t i = 0; i < o->n; i++)
		lines[i] = (atp_event){ .type = ATP_EV_RESERVE, .source = atp_str_of("@t", 2), .seq = next_seq + i,
					.event_id = next_seq + i, .sku = sku(o->sku[i]), .location = LOC,
					.ref = atp_str_of(o->ref, strlen(o->ref)), .qty = o->qty[i] };
	int rc = atp_engine_submit_order(e, lines, o->n, NULL);
	if (rc == ATP_OK)
		next_seq += o->n;
	return rc;
}

/* Whether order o's lines answered all in full (1) or all nothing (0); fails the test otherwise. */
static int outcome(const order *o)
{
	int full = 0, none = 0;
	for (uint32_t i = 0; i < o->n; i++) {
		int64_t c = confirmed[o->seq + i];
		cr_assert_eq(statuses[o->seq + i], ATP_OK, "%s line %u", o->ref, i);
		full += c == o->qty[i];
		none += c == 0;
	}
	cr_assert(full == (int)o->n || none == (int)o->n, "%s: %d of %u lines in full, %d with nothing", o->ref, full, o->n,
		  none);
	return full == (int)o->n;
}

/* Lines of o each shard holds: all of them with their qty reserved (1), or none (0); fails otherwise. */
static int held(atp_engine *e, const order *o)
{
	int have = 0;
	for (uint32_t i = 0; i < o->n; i++) {
		atp_str s = sku(o->sku[i]);
		const atp_line *ln = atp_core_find_line(atp_engine_core(e, atp_engine_shard_of(e, s)),
							atp_str_of(o->ref, strlen(o->ref)), s, LOC);
		have += ln && ln->confirmed == o->qty[i];
	}
	cr_assert(have == 0 || have == (int)o->n, "%s: %d of its %u lines held", o->ref, have, o->n);
	return have == (int)o->n;
}

static void whole_or_none_and_never_more_than_the_stock(void)
{
	atp_engine *e = open_engine();
	stock_up(e);
	enum { ORDERS = 300 };
	static order o[ORDERS];
	unsigned rnd = 7;
	int spanning = 0;
	for (int k = 0; k < ORDERS; k++) {
		make_order(&o[k], k, &rnd);
		for (uint32_t i = 1; i < o[k].n; i++)
			spanning += atp_engine_shard_of(e, sku(o[k].sku[i])) % 2 != atp_engine_shard_of(e, sku(o[k].sku[0])) % 2;
		cr_assert_eq(submit_order(e, &o[k]), ATP_OK);
		if (k % 7 == 0)
			atp_engine_poll(e);  /* orders go on while others are being decided */
	}
	cr_assert_eq(atp_engine_sync(e), 0);
	cr_assert_gt(spanning, ORDERS / 4, "orders span both workers");
	int64_t taken[SKUS] = { 0 };
	int whole = 0;
	for (int k = 0; k < ORDERS; k++) {
		int w = outcome(&o[k]);
		cr_assert_eq(held(e, &o[k]), w);
		whole += w;
		for (uint32_t i = 0; w && i < o[k].n; i++)
			taken[o[k].sku[i]] += o[k].qty[i];
	}
	cr_assert(whole > 0 && whole < ORDERS, "%d of %d orders confirmed", whole, ORDERS);
	for (int i = 0; i < SKUS; i++) {
		atp_str s = sku(i);
		const atp_position *p = atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, s)), s, LOC);
		cr_assert_leq(taken[i], STOCK, "%s: never more than the stock", skus[i]);
		cr_assert_eq(p->reserved, taken[i], "%s: exactly what whole orders took is reserved", skus[i]);
	}
	/* A retry under the same reservation id answers the first result, line by line. */
	for (int k = 0; k < ORDERS; k += 5) {
		int first = outcome(&o[k]);
		cr_assert_eq(submit_order(e, &o[k]), ATP_OK);
		cr_assert_eq(atp_engine_sync(e), 0);
		cr_assert_eq(outcome(&o[k]), first, "%s: the retry's answer", o[k].ref);
	}
	/* Malformed orders are refused with nothing queued. */
	order bad = o[0];
	bad.sku[1] = bad.sku[0];
	cr_assert_eq(submit_order(e, &bad), ATP_E_INVAL, "two lines of one position");
	cr_assert_eq(atp_engine_close(e), 0);

	/* Reopened: the same in every shard. */
	e = open_engine();
	for (int k = 0; k < ORDERS; k++)
		cr_assert_eq(held(e, &o[k]), outcome(&o[k]));
	cr_assert_eq(atp_engine_close(e), 0);
}

/* ---- against the reference model ---- */

static int64_t got_wms[MAX_SEQ];
static int got_wms_status[MAX_SEQ];

static void on_done_both(void *ctx, const atp_engine_done *d)
{
	on_done(ctx, d);
	if (strcmp(d->source, "wms") == 0 && d->seq < MAX_SEQ) {
		got_wms[d->seq] = d->qty;
		got_wms_status[d->seq] = d->status;
	}
}

static char names[3][M_SKUS][8];

static atp_str name(int kind, int i)
{
	snprintf(names[kind][i], sizeof(names[kind][i]), "%c%d", "SLR"[kind], i);
	return atp_str_of(names[kind][i], strlen(names[kind][i]));
}

static void against_the_model(void)
{
	enum { REFS = 16, STEPS = 4000 };
	static model m;
	memset(&m, 0, sizeof(m));
	static mresult want_t[MAX_SEQ], want_wms[MAX_SEQ];
	atp_engine *e = open_engine();
	atp_engine_set_on_done(e, on_done_both, NULL);
	uint64_t wms = 0, t = 0;
	unsigned rnd = 11;
	for (int k = 0; k < STEPS; k++) {
		int kind = k < M_SKUS * M_LOCS ? 0 : (int)(rand_r(&rnd) % 10);
		int sku = k < M_SKUS * M_LOCS ? k / M_LOCS : (int)(rand_r(&rnd) % M_SKUS);
		int loc = k < M_SKUS * M_LOCS ? k % M_LOCS : (int)(rand_r(&rnd) % M_LOCS);
		int ref = (int)(rand_r(&rnd) % REFS);
		int64_t qty = 1 + rand_r(&rnd) % 6;
		if (kind <= 5) {  /* an event of the WMS, or a per-line reserve of order capture */
			static const int types[6] = { ATP_EV_RECEIPT, ATP_EV_RECEIPT, ATP_EV_PICK, ATP_EV_RELEASE,
						      ATP_EV_RESERVE, ATP_EV_RESERVE };
			int type = types[kind];
			bool with_ref = type != ATP_EV_RECEIPT;
			wms++;
			atp_event ev = { .type = (uint8_t)type, .source = atp_str_of("wms", 3), .seq = wms, .event_id = wms,
					 .sku = name(0, sku), .location = name(1, loc), .qty = k < M_SKUS * M_LOCS ? 8 : qty,
					 .ref = with_ref ? name(2, ref) : (atp_str){ 0 } };
			want_wms[wms] = m_apply(&m, type, 0, wms, sku, loc, -1, ev.qty, with_ref ? ref : -1, false, 0);
			cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
			continue;
		}
		/* a whole order of 1 to 4 lines */
		int n = 1 + (int)(rand_r(&rnd) % 4), skus_[4], locs_[4];
		int64_t qtys[4];
		atp_event lines[4];
		for (int i = 0; i < n; i++) {
			bool again;
			do {
				skus_[i] = (int)(rand_r(&rnd) % M_SKUS);
				locs_[i] = (int)(rand_r(&rnd) % M_LOCS);
				again = false;
				for (int j = 0; j < i; j++)
					again |= skus_[j] == skus_[i] && locs_[j] == locs_[i];
			} while (again);
			qtys[i] = 1 + rand_r(&rnd) % 6;
			lines[i] = (atp_event){ .type = ATP_EV_RESERVE, .source = atp_str_of("@t", 2), .seq = t + 1 + (uint64_t)i,
						.event_id = t + 1 + (uint64_t)i, .sku = name(0, skus_[i]),
						.location = name(1, locs_[i]), .ref = name(2, ref), .qty = qtys[i] };
		}
		m_order(&m, 1, t + 1, n, skus_, locs_, qtys, ref, 0, &want_t[t + 1]);
		cr_assert_eq(atp_engine_submit_order(e, lines, (uint32_t)n, NULL), ATP_OK);
		t += (uint64_t)n;
		if (k % 13 == 0)
			atp_engine_poll(e);
	}
	cr_assert_eq(atp_engine_sync(e), 0);
	int whole = 0, denied = 0;
	for (uint64_t q = 1; q <= t; q++) {
		cr_assert_eq(statuses[q], want_t[q].status, "order line @t/%lu: status", (unsigned long)q);
		cr_assert_eq(confirmed[q], want_t[q].confirmed, "order line @t/%lu: confirmed %ld, the model %ld",
			     (unsigned long)q, (long)confirmed[q], (long)want_t[q].confirmed);
		whole += confirmed[q] > 0;
		denied += confirmed[q] == 0;
	}
	for (uint64_t q = 1; q <= wms; q++) {
		int64_t w = want_wms[q].confirmed ? want_wms[q].confirmed : want_wms[q].moved;
		cr_assert_eq(got_wms_status[q], want_wms[q].status, "wms/%lu: status", (unsigned long)q);
		cr_assert_eq(got_wms[q], w, "wms/%lu: %ld, the model %ld", (unsigned long)q, (long)got_wms[q], (long)w);
	}
	cr_assert(whole > 100 && denied > 100, "both outcomes tried: %d lines confirmed, %d denied", whole, denied);
	for (int i = 0; i < M_SKUS; i++)
		for (int j = 0; j < M_LOCS; j++) {
			atp_str s = name(0, i), l = name(1, j);
			const atp_position *p = atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, s)), s, l);
			const mpos *q = &m.pos[i][j];
			cr_assert(p && p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved,
				  "%s/%s: engine %ld/%ld, the model %ld/%ld", names[0][i], names[1][j], p ? (long)p->on_hand : -1L,
				  p ? (long)p->reserved : -1L, (long)q->on_hand, (long)q->reserved);
		}
	cr_assert_eq(atp_engine_close(e), 0);
}

/* ---- a crash at each step ---- */

static int kill_worker, kill_step;
static atomic_int durable_seen;

static void hook(uint32_t worker, int step)
{
	if (step == 3 && (int)worker != kill_worker)
		atomic_store(&durable_seen, 1);
	if ((int)worker != kill_worker || step != kill_step)
		return;
	if (step == 2 && kill_worker == 1)
		/* worker 1 applied its part; its write is not out yet: wait until worker 0's part is durable, then die. */
		for (int i = 0; i < 2000 && !atomic_load(&durable_seen); i++)
			usleep(1000);
	raise(SIGKILL);
}

/* A process that stocks up, then submits one spanning order and is killed at (worker, step). */
static void crash_at(int worker, int step, order *o)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		atp_engine *e = open_engine();
		stock_up(e);
		kill_worker = worker;
		kill_step = step;
		atp_engine_test_order_hook(hook);
		submit_order(e, o);
		atp_engine_sync(e);
		_exit(3);  /* not killed: the hook was never reached */
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "killed at worker %d step %d (status %d)", worker,
		  step, status);
}

static void crash_case(int worker, int step, int expect_whole)
{
	/* Four SKUs over 4 shards: both workers hold parts (checked below). */
	order o = { .ref = "crash", .n = 4, .sku = { 0, 1, 2, 3 }, .qty = { 2, 2, 2, 2 } };
	crash_at(worker, step, &o);
	atp_engine *e = open_engine();
	int spans = 0;
	for (uint32_t i = 1; i < o.n; i++)
		spans += atp_engine_shard_of(e, sku(o.sku[i])) % 2 != atp_engine_shard_of(e, sku(o.sku[0])) % 2;
	cr_assert_gt(spans, 0, "the order spans both workers");
	int whole = held(e, &o);
	if (expect_whole >= 0)
		cr_assert_eq(whole, expect_whole, "killed at worker %d step %d", worker, step);
	/* The retry: one answer, whole, durably. */
	next_seq = atp_engine_expected_seq(e, atp_str_of("@t", 2));
	cr_assert_eq(submit_order(e, &o), ATP_OK);
	cr_assert_eq(atp_engine_sync(e), 0);
	cr_assert_eq(outcome(&o), 1, "after worker %d step %d: the retry gets the whole order", worker, step);
	cr_assert_eq(held(e, &o), 1);
	for (int i = 0; i < SKUS; i++) {
		atp_str s = sku(i);
		const atp_position *p = atp_core_find(atp_engine_core(e, atp_engine_shard_of(e, s)), s, LOC);
		int64_t want = 0;
		for (uint32_t k = 0; k < o.n; k++)
			want += o.sku[k] == i ? o.qty[k] : 0;
		cr_assert_eq(p->reserved, want, "%s reserved once", skus[i]);
	}
	cr_assert_eq(atp_engine_close(e), 0);
	e = open_engine();
	cr_assert_eq(held(e, &o), 1, "durably");
	cr_assert_eq(atp_engine_close(e), 0);
}

/* Judged, nothing logged: none of it. */
static void crash_when_judged(void)
{
	crash_case(0, 1, 0);
}

/* One worker applied its part, the other's may or may not be: whole or none, never half. */
static void crash_when_one_part_applied(void)
{
	crash_case(0, 2, -1);
}

/* Worker 0's part durable, worker 1's never written: recovery cuts worker 0's shards' logs before the order. */
static void crash_when_one_part_durable(void)
{
	crash_case(1, 2, 0);
}

/* Both parts durable, completions not yet out: whole. */
static void crash_when_released(void)
{
	crash_case(0, 4, 1);
}

int main(void)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "whole_or_none_and_never_more_than_the_stock", whole_or_none_and_never_more_than_the_stock },
		{ "against_the_model", against_the_model },
		{ "crash_when_judged", crash_when_judged },
		{ "crash_when_one_part_applied", crash_when_one_part_applied },
		{ "crash_when_one_part_durable", crash_when_one_part_durable },
		{ "crash_when_released", crash_when_released },
	};
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		setup();
		next_seq = 1;
		tests[i].fn();
		teardown();
		fprintf(stderr, "test_orders: %s: ok\n", tests[i].name);
	}
	return 0;
}
