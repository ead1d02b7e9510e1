/*
 * day_fixture.h — a small simulated day in memory and its reference table
 * (the day through the single-threaded core, as atpctl import replays it),
 * for the tests that hold the engine against the core.
 */
#ifndef ATP_TEST_DAY_FIXTURE_H
#define ATP_TEST_DAY_FIXTURE_H

#include "../tools/lib/csv_events.h"
#include "../tools/lib/simday.h"
#include "atp/core.h"

#include <stdio.h>
#include <stdlib.h>

/* Positions, lines and sources enough for the fixture's days. */
static inline atp_core_config fixture_config(void)
{
	atp_core_config c = atp_core_config_default();
	c.max_positions = 4096;
	c.max_lines = 1u << 16;
	c.max_sources = 8;
	return c;
}

/* The day's CSV (malloc'ed, *len bytes), or NULL. */
static inline char *fixture_day(uint32_t skus, uint32_t order_lines, uint64_t seed, size_t *len)
{
	char *day = NULL;
	FILE *f = open_memstream(&day, len);
	atp_simday_params p = atp_simday_default();
	atp_simday_summary sum;
	p.skus = skus;
	p.locations = 3;
	p.order_lines = order_lines;
	p.seed = seed;
	int rc = f ? atp_simday_write(&p, f, &sum) : -1;
	if (f)
		fclose(f);
	if (rc) {
		free(day);
		return NULL;
	}
	return day;
}

/* The day through a plain core; NULL if a row is bad or refused. */
static inline atp_core *fixture_reference(const char *day, size_t len)
{
	atp_core_config cfg = fixture_config();
	atp_core *c = atp_core_create(&cfg);
	atp_csv_reader *r = malloc(sizeof(*r));
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	atp_result res;
	atp_delta d[64];
	size_t nd;
	int rc = !c || !r || atp_csv_open(r, day, len, err) < 0 ? -1 : 1;
	while (rc > 0 && (rc = atp_csv_next(r, &ev, err)) > 0) {
		if (r->occurred_at > atp_core_now_ms(c))
			while (atp_core_expire(c, r->occurred_at, d, 64, &nd) == 64)
				;
		if (atp_core_apply(c, &ev, &res) < 0)
			rc = -1;
	}
	free(r);
	if (rc < 0) {
		atp_core_destroy(c);
		return NULL;
	}
	return c;
}

#endif
