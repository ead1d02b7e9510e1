/*
 * fuzz_csv.c — libFuzzer target: arbitrary bytes as an event CSV, through
 * the reader and, for every row it accepts, through a small core. Any
 * crash, sanitizer report or broken invariant is a bug.
 */
#include "atp/core.h"
#include "csv_events.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static atp_csv_reader rd;
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = 16;
	cfg.max_lines = 16;
	cfg.max_sources = 4;
	cfg.line_retention = 10;
	atp_core *c = atp_core_create(&cfg);
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	atp_result r;
	atp_delta d[4];
	size_t nd;
	int rc;

	if (atp_csv_open(&rd, (const char *)data, size, err) == 0) {
		while ((rc = atp_csv_next(&rd, &ev, err)) != 0) {
			if (rc < 0)
				continue;
			assert(atp_event_validate(&ev) == ATP_OK);
			while (atp_core_expire(c, rd.occurred_at, d, 4, &nd) == 4)
				;
			int st = atp_core_apply(c, &ev, &r);
			assert(st == r.status && r.n_deltas <= 2);
			const atp_position *p = atp_core_find(c, ev.sku, ev.location);
			assert(st != ATP_OK || ev.type == ATP_EV_RELEASE || p != NULL);
			assert(!p || (p->held >= 0 && p->reserved >= 0 && atp_position_atp(p) >= 0));
		}
	}
	atp_core_destroy(c);
	return 0;
}
