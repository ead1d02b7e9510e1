/* atpd's clock under `clock = wall` (src/daemon/clock.h): steps of the wall clock move neither its time nor expiries. */
#include "../../src/daemon/clock.h"
#include "helpers.h"

#include <criterion/criterion.h>

static uint64_t fake_wall, fake_mono;
static uint64_t read_wall(void) { return fake_wall; }
static uint64_t read_mono(void) { return fake_mono; }

#define T0 1796558400000ull /* 2026-12-06T12:00:00Z */
#define HOUR 3600000ull

Test(clock, steps_of_the_wall_clock_move_neither_the_time_nor_the_order_of_expiries)
{
	fake_wall = T0;
	fake_mono = 5000;
	atpd_clock clk;
	atpd_clock_start(&clk, 0, read_wall, read_mono);
	cr_assert_eq(atpd_clock_now(&clk), T0, "it starts at the wall clock");

	atp_core *c = small_core(16, 16, 4);
	atp_result r;
	atp_event receipt = ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 100);
	cr_assert_eq(atp_core_apply(c, &receipt, &r), ATP_OK);
	/* R1: 60 s to live, taken now; R2: 30 s, taken 10 s later: R2 lapses first, at T0 + 40 s. */
	atp_event r1 = ev_ref(ATP_EV_RESERVE, 2, "A", "DC1", 10, "R1");
	r1.expires_at = atpd_clock_now(&clk) + 60000;
	cr_assert_eq(atp_core_apply(c, &r1, &r), ATP_OK);
	fake_wall += 10000, fake_mono += 10000;
	atp_event r2 = ev_ref(ATP_EV_RESERVE, 3, "A", "DC1", 20, "R2");
	r2.expires_at = atpd_clock_now(&clk) + 30000;
	cr_assert_eq(atp_core_apply(c, &r2, &r), ATP_OK);

	atp_delta d[8];
	size_t nd;
	uint64_t prev = atpd_clock_now(&clk), lapsed_r2 = 0, lapsed_r1 = 0;
	for (int s = 11; s <= 70; s++) {
		fake_mono += 1000;
		fake_wall += 1000;
		if (s == 20)
			fake_wall -= 3 * HOUR; /* set back three hours */
		if (s == 45)
			fake_wall += 5 * HOUR; /* then forward five */
		uint64_t now = atpd_clock_now(&clk);
		cr_assert_eq(now - prev, 1000, "at second %d atpd's time moved %ld ms", s, (long)(now - prev));
		prev = now;
		atp_core_expire(c, now, d, 8, &nd);
		int64_t reserved = pos_of(c, "A", "DC1")->reserved;
		if (!lapsed_r2 && reserved == 10)
			lapsed_r2 = now;
		if (!lapsed_r1 && reserved == 0)
			lapsed_r1 = now;
	}
	cr_assert_eq(lapsed_r2, T0 + 40000, "R2 lapsed at +%ld ms", (long)(lapsed_r2 - T0));
	cr_assert_eq(lapsed_r1, T0 + 60000, "R1 lapsed at +%ld ms", (long)(lapsed_r1 - T0));
	cr_assert_eq(atpd_clock_offset_ms(&clk), (int64_t)(2 * HOUR), "the offset tells the net step");
	atp_core_destroy(c);
}

Test(clock, a_restart_never_goes_back_past_the_recovered_time)
{
	atpd_clock clk;
	fake_wall = T0 - HOUR; /* the wall clock was set back while atpd was down */
	fake_mono = 77;
	atpd_clock_start(&clk, T0, read_wall, read_mono);
	cr_assert_eq(atpd_clock_now(&clk), T0);
	cr_assert_eq(atpd_clock_offset_ms(&clk), -(int64_t)HOUR);
	fake_wall = T0 + HOUR;
	atpd_clock_start(&clk, T0, read_wall, read_mono);
	cr_assert_eq(atpd_clock_now(&clk), T0 + HOUR, "ahead of the recovered time, it takes the wall clock");
}

Test(clock, the_system_clocks)
{
	atpd_clock clk;
	atpd_clock_start(&clk, 0, NULL, NULL);
	uint64_t a = atpd_clock_now(&clk), b = atpd_clock_now(&clk);
	cr_assert_geq(b, a);
	int64_t off = atpd_clock_offset_ms(&clk);
	cr_assert(off > -1000 && off < 1000, "offset %ld ms without a step", (long)off);
}
