/*
 * The event loop's judgement of heavy ingest (front_busy, src/net/front.h),
 * which the channel stream's fan-out yields to: a trickle is never heavy; a
 * burst is, at once, and stays so while it lasts (also when its batches
 * fall between the loop's 10 ms windows); some windows after it ended, it
 * is over.
 */
#define _GNU_SOURCE
#include "../../src/net/front.h"
#include "atp/engine.h"
#include "atp/loop.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static atp_engine *e;
static atp_loop *l;
static int efd = -1;
static uint64_t seq;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/atp-loop-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert(efd >= 0);
	atp_engine_config cfg = atp_engine_config_default();
	cfg.first_cpu = cfg.router_cpu = -1;
	cfg.notify_fd = efd;
	char err[600];
	e = atp_engine_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	l = atp_loop_create(e, efd, err, sizeof(err));
	cr_assert_not_null(l, "%s", err);
}

static void teardown(void)
{
	atp_loop_destroy(l);
	cr_assert_eq(atp_engine_close(e), 0);
	close(efd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void receipts(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		seq++;
		atp_event ev = ev_of(ATP_EV_RECEIPT, seq, seq % 2 ? "SKU-A" : "SKU-B", "DC01", 1);
		cr_assert_eq(atp_engine_submit(e, &ev, NULL), ATP_OK);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Turn the loop for ms (each wait at most 1 ms). */
static void turn_for(uint64_t ms)
{
	for (uint64_t end = now_ms() + ms; now_ms() < end;)
		cr_assert_eq(atp_loop_run(l, 1), 0);
}

TestSuite(loop, .init = setup, .fini = teardown, .timeout = 60);

Test(loop, a_trickle_is_never_heavy_ingest)
{
	turn_for(20);
	cr_assert(!front_busy(l), "an idle loop");
	for (int i = 0; i < 30; i++) {  /* 100 events a second, for 0.3 s */
		receipts(1);
		turn_for(10);
		cr_assert(!front_busy(l), "one event every 10 ms (event %d)", i);
	}
}

Test(loop, a_burst_is_heavy_ingest_until_it_is_durable_and_over)
{
	turn_for(20);
	receipts(2000);
	cr_assert(front_busy(l), "2,000 events at once: at once");
	for (int i = 0; i < 20; i++) {  /* more of it, 10 ms apart: 400,000 a second (10,000 even if a turn took 400 ms) */
		receipts(4000);
		turn_for(10);
		cr_assert(front_busy(l), "a burst going on (%d)", i);
	}
	cr_assert_eq(atp_engine_sync(e), 0, "everything durable");
	turn_for(100);  /* ten quiet windows: the average halves in each */
	cr_assert(!front_busy(l), "a burst over: no longer heavy");
	receipts(4000);
	turn_for(10);
	cr_assert(front_busy(l), "another burst");
	usleep(100000);  /* the loop not turning: one long wait counts as the ten windows it spans */
	turn_for(1);
	cr_assert(!front_busy(l), "... over after a long wait, in one turn");
	receipts(1);
	turn_for(10);
	cr_assert(!front_busy(l), "... and one event after it does not make it so");
}
