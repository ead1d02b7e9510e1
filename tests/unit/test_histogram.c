/* The log-bucketed latency histogram of the load tools: quantiles within one bucket (12.5%). */
#include "histogram.h"

#include <criterion/criterion.h>

Test(histogram, quantiles_of_a_uniform_spread_within_a_bucket)
{
	static atp_histogram h;
	for (uint64_t v = 1; v <= 100000; v++)
		atp_hist_add(&h, v * 1000);  /* 1 us .. 100 ms in ns */
	cr_assert_eq(h.count, 100000);
	cr_assert_eq(h.max, 100000000);
	const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	for (int i = 0; i < 4; i++) {
		double exact = qs[i] * 100000 * 1000, got = (double)atp_hist_quantile(&h, qs[i]);
		cr_assert(got >= exact && got <= exact * 1.126, "q%.3f: %.0f for %.0f", qs[i], got, exact);
	}
	cr_assert_eq(atp_hist_quantile(&h, 1.0), h.max, "the top quantile is the maximum");
}

Test(histogram, small_values_and_the_empty_histogram)
{
	static atp_histogram h;
	cr_assert_eq(atp_hist_quantile(&h, 0.5), 0);
	for (uint64_t v = 0; v < 8; v++)
		atp_hist_add(&h, v);
	cr_assert_eq(atp_hist_quantile(&h, 0.5), 4);
	cr_assert_eq(atp_hist_quantile(&h, 0.99), 7);
	atp_hist_add(&h, UINT64_MAX);
	cr_assert_eq(atp_hist_index(UINT64_MAX), ATP_HIST_BUCKETS - 1);
	cr_assert_eq(atp_hist_quantile(&h, 1.0), UINT64_MAX);
}
