/*
 * mem_probe.c — what this machine's memory gives one core, for reading
 * the core benchmark's figures against.
 *
 * core_apply_batch256 waits on memory more than it computes, and the
 * VMs this project runs on differ most in memory: their DRAM latency,
 * how much of the shared L3 a guest really gets, how many misses one
 * core keeps in flight. This prints, as a markdown table:
 *   - the latency of a dependent load chasing a random cycle through
 *     arrays of 1 MiB to 256 MiB (huge pages asked for): where the
 *     latency jumps is the cache this core effectively has;
 *   - random cache lines per second with 16 independent chases through
 *     each array: the ceiling on misses per second however well prefetched;
 *   - sequential read bandwidth over the largest array's size.
 * Usage: bench_mem_probe [MAX_MIB]   (default 256, at least 1)
 * A probe, not a test: nothing is asserted.
 */
#include "../../tools/lib/prng.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { LINE_WORDS = 8, CHAINS = 16, STEPS = 2000000 };

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* n cache lines, each holding the word index of the next line of one random cycle through all of them. */
static uint64_t *make_cycle(size_t n)
{
	size_t bytes = n * 64;
	uint64_t *a = aligned_alloc(2u << 20, (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1));
	uint32_t *order = malloc(n * sizeof(uint32_t));
	if (!a || !order) {
		fprintf(stderr, "bench_mem_probe: out of memory\n");
		exit(1);
	}
	madvise(a, bytes, MADV_HUGEPAGE);
	atp_prng g;
	atp_prng_seed(&g, 1);
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = atp_prng_below(&g, i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		a[(size_t)order[i] * LINE_WORDS] = (uint64_t)order[(i + 1) % n] * LINE_WORDS;
	free(order);
	return a;
}

/* ns per load of `chains` chases, each started at a different line, STEPS loads in all. */
static double chase(const uint64_t *a, size_t n, int chains)
{
	uint64_t at[CHAINS];
	for (int k = 0; k < chains; k++)
		at[k] = (uint64_t)(n / (size_t)chains * (size_t)k) * LINE_WORDS;
	double t = now_ns();
	for (int s = 0; s < STEPS / chains; s++)
		for (int k = 0; k < chains; k++)
			at[k] = a[at[k]];
	t = now_ns() - t;
	uint64_t sum = 0;
	for (int k = 0; k < chains; k++)
		sum += at[k];
	__asm__ volatile("" : : "r"(sum));
	return t / (double)(STEPS / chains * chains);
}

int main(int argc, char **argv)
{
	size_t max_mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	if (max_mib < 1 || max_mib > 4096) {
		fprintf(stderr, "usage: bench_mem_probe [MAX_MIB 1..4096]\n");
		return 2;
	}
	printf("| array | dependent load | 16 chases: ns per line | lines/s |\n|---|---|---|---|\n");
	for (size_t mib = 1; mib <= max_mib; mib *= 2) {
		size_t n = mib << 14; /* 64-byte lines */
		uint64_t *a = make_cycle(n);
		chase(a, n, 1); /* warm: pages, TLB, the cycle's first lap */
		double one = chase(a, n, 1), many = chase(a, n, CHAINS);
		printf("| %zu MiB | %.1f ns | %.1f | %.1f M |\n", mib, one, many, 1e3 / many);
		free(a);
	}
	size_t bytes = max_mib << 20;
	uint64_t *b = malloc(bytes);
	if (!b)
		return 1;
	memset(b, 1, bytes);
	double t = now_ns();
	uint64_t sum = 0;
	for (size_t i = 0; i < bytes / 8; i++)
		sum += b[i];
	t = now_ns() - t;
	__asm__ volatile("" : : "r"(sum));
	printf("\nsequential read of %zu MiB: %.1f GB/s\n", max_mib, (double)bytes / t);
	free(b);
	return 0;
}
