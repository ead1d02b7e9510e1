/* clock.c — atpd's time: the wall clock at start, carried by the monotonic clock (see clock.h). */
#include "clock.h"

#include <time.h>

uint64_t atpd_clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t atpd_clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void atpd_clock_start(atpd_clock *c, uint64_t floor_ms, atpd_clock_read_fn wall, atpd_clock_read_fn mono)
{
	c->wall = wall ? wall : atpd_clock_wall_ms;
	c->mono = mono ? mono : atpd_clock_mono_ms;
	uint64_t w = c->wall();
	c->base_ms = w > floor_ms ? w : floor_ms;
	c->base_mono = c->mono();
}

uint64_t atpd_clock_now(const atpd_clock *c)
{
	return c->base_ms + (c->mono() - c->base_mono);
}

int64_t atpd_clock_offset_ms(const atpd_clock *c)
{
	return (int64_t)(c->wall() - atpd_clock_now(c));
}
