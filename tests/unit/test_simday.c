/* The simulated day: reproducible from its seed, and clean for the core. */
#include "atp/core.h"
#include "csv_events.h"
#include "simday.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atp_simday_params small_day(uint64_t seed)
{
	atp_simday_params p = atp_simday_default();
	p.seed = seed;
	p.skus = 300;
	p.locations = 3;
	p.order_lines = 6000;
	return p;
}

static char *write_day(const atp_simday_params *p, size_t *len, atp_simday_summary *sum)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	cr_assert_eq(atp_simday_write(p, f, sum), 0);
	fclose(f);
	return buf;
}

Test(simday, the_same_seed_gives_the_same_day)
{
	atp_simday_params p = small_day(7);
	atp_simday_summary s1, s2, s3;
	size_t n1, n2, n3;
	char *a = write_day(&p, &n1, &s1), *b = write_day(&p, &n2, &s2);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(a, b, n1), 0);
	p.seed = 8;
	char *c = write_day(&p, &n3, &s3);
	cr_assert(n3 != n1 || memcmp(a, c, n1) != 0, "another seed, another day");
	free(a);
	free(b);
	free(c);
}

Test(simday, the_day_replays_cleanly_with_every_kind_of_event)
{
	atp_simday_params p = small_day(3);
	atp_simday_summary sum;
	size_t len;
	char *buf = write_day(&p, &len, &sum);
	atp_csv_reader *rd = malloc(sizeof(*rd));
	char err[ATP_CSV_ERR_MAX];
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = 1000;
	cfg.max_lines = 20000;
	atp_core *c = atp_core_create(&cfg);
	atp_event ev;
	atp_result r;
	atp_delta d[64];
	size_t nd;
	int rc;

	cr_assert_eq(atp_csv_open(rd, buf, len, err), 0, "%s", err);
	while ((rc = atp_csv_next(rd, &ev, err)) != 0) {
		cr_assert_eq(rc, 1, "line %llu: %s", (unsigned long long)rd->line, err);
		while (atp_core_expire(c, rd->occurred_at, d, 64, &nd) == 64)
			;
		cr_assert_geq(atp_core_apply(c, &ev, &r), 0, "line %llu: %s", (unsigned long long)rd->line,
			      atp_status_name(r.status));
	}
	const atp_core_stats *s = atp_core_stats_get(c);
	cr_assert_eq(s->duplicates, sum.resent, "every resent row is a duplicate");
	cr_assert_eq(s->reserve_replayed, sum.retried, "every retry is answered from the first result");
	cr_assert_eq(s->applied[ATP_EV_RESERVE], p.order_lines + sum.retried);
	for (unsigned t = 1; t < ATP_EV_TYPE_COUNT; t++)
		cr_assert_gt(s->applied[t], 0, "the day has %s events", atp_event_type_name(t));
	cr_assert_gt(s->lines_expired, 0);
	cr_assert_gt(s->reserve_unfilled + s->reserve_partial, 0, "the burst runs some SKUs out");
	cr_assert_eq(atp_table_count(atp_core_table(c)), p.skus * p.locations);
	atp_core_destroy(c);
	free(rd);
	free(buf);
}

Test(simday, refuses_parameters_out_of_range)
{
	atp_simday_params p = small_day(1);
	atp_simday_summary sum;
	p.peak_minutes = 60;
	p.peak_factor = 50; /* 50 hours of orders in one hour */
	cr_assert_eq(atp_simday_write(&p, stdout, &sum), -EINVAL);
	p = small_day(1);
	p.locations = 0;
	cr_assert_eq(atp_simday_write(&p, stdout, &sum), -EINVAL);
}
