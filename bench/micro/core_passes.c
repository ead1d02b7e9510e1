/*
 * core_passes.c — core_apply_batch256's workload in a plain C loop.
 *
 * The same day (100,000 SKUs x 4 locations, Zipf(1.0), the day's mix),
 * core and batches as bench_core.cc: batches of 256, the expiry run to each
 * batch's time before it. Pass after pass over the pre-generated events on
 * one core (each pass made fresh as the benchmark does, outside the timing);
 * prints ns/event of each pass and the median. A second view of the same
 * code outside Google Benchmark's binary (they once differed by the
 * allocator's placement of the line array: bench/README.md, "What was
 * learned"); the target is measured by bench_micro.
 * Usage: bench_core_passes [PASSES]   (default 7)
 * The timed work of a batch is run_batch(), never inlined, so that
 * callgrind can count it alone (--toggle-collect='run_batch*'; see
 * bench/README.md).
 */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BATCH = 256 };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One batch: the expiry to its time, then its events. */
static __attribute__((noinline)) void run_batch(atp_core *core, const workload *w, size_t at, atp_result *res,
						 atp_delta *deltas)
{
	size_t nd;
	while (atp_core_expire(core, workload_time(w, at), deltas, BATCH, &nd) == BATCH) {
	}
	atp_core_apply_batch(core, workload_events(w) + at, BATCH, res);
}

int main(int argc, char **argv)
{
	int passes = argc > 1 ? atoi(argv[1]) : 7;
	if (passes < 1 || passes > 100) {
		fprintf(stderr, "usage: bench_core_passes [PASSES 1..100]\n");
		return 2;
	}
	workload *w = workload_create(100000, 4, (size_t)1 << 21, 42);
	workload_set_pass(w, 0);
	atp_core *core = workload_core(w);
	static atp_result res[BATCH];
	static atp_delta deltas[BATCH];
	double ns[100];
	for (int p = 0; p < passes; p++) {
		workload_set_pass(w, (uint32_t)p);
		struct timespec t0, t1;
		size_t n = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (size_t at = 0; at + BATCH <= workload_size(w); at += BATCH, n += BATCH) {
			run_batch(core, w, at, res, deltas);
			for (size_t i = 0; i < BATCH; i++) {
				if (res[i].status != ATP_OK) {
					fprintf(stderr, "event %zu: %s\n", at + i, atp_status_name(res[i].status));
					return 1;
				}
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[p] = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
		printf("pass %d: %.1f ns/event, %.2f M events/s\n", p, ns[p], 1e3 / ns[p]);
	}
	qsort(ns, (size_t)passes, sizeof(double), cmp_double);
	double median = ns[passes / 2];
	printf("median of %d passes: %.1f ns/event, %.2f M events/s\n", passes, median, 1e3 / median);
	atp_core_destroy(core);
	workload_destroy(w);
	return 0;
}
