/*
 * hub_feed.c — the channel hub's input side alone: engine deltas of a
 * day-like spread (100,000 SKUs x 4 locations, Zipf(1.0) popularity) fed
 * to a hub with CHANNELS channels (0: only the mirror), in chunks of 256
 * as the engine hands them over, and SUBSCRIBERS of the first channel
 * reading everything after each chunk (as the gRPC server's Subscribe
 * pulls them, into a 64 KiB buffer; nghttp2 and the socket not included).
 * Each pass makes a hub and feeds it 2^20 deltas untimed (every position
 * known, every buffer written once), then times 2^20 more: the steady
 * state. Prints ns per delta for each pass and the median; what a delta
 * costs the router's thread.
 * Usage: bench_hub_feed [CHANNELS] [PASSES] [SUBSCRIBERS]   (defaults 1, 5, 0)
 */
#include "atp/hub.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SKUS = 100000, LOCS = 4, DELTAS = 2 << 20, CHUNK = 256 };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int channels = argc > 1 ? atoi(argv[1]) : 1, passes = argc > 2 ? atoi(argv[2]) : 5;
	int n_subs = argc > 3 && channels > 0 ? atoi(argv[3]) : 0;
	atp_hub_sub **subs = calloc((size_t)n_subs + 1, sizeof(*subs));
	static uint8_t out[64 << 10];
	static char keys[SKUS * LOCS][24];
	static int64_t atp[SKUS * LOCS];
	static uint64_t version[SKUS * LOCS];
	atp_engine_delta *d = malloc(DELTAS * sizeof(*d));
	double *cdf = malloc(SKUS * sizeof(double)), sum = 0;
	for (int i = 0; i < SKUS; i++)
		cdf[i] = sum += 1.0 / (i + 1);
	uint64_t x = 88172645463325252ull, lsn = 0;
	for (int i = 0; i < DELTAS; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double u = (double)(x % 1000000007u) / 1000000007.0 * sum;
		int lo = 0, hi = SKUS - 1;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		uint32_t pos = (uint32_t)(lo * LOCS + (int)(x >> 40) % LOCS);
		if (!keys[pos][0])
			snprintf(keys[pos], sizeof(keys[pos]), "SKU-%06d%cDC%02d", lo, 0, (int)(pos % LOCS) + 1);
		int64_t next = (int64_t)((x >> 20) % 200);
		if (next == atp[pos])
			next++;
		d[i] = (atp_engine_delta){ .sku = keys[pos], .location = keys[pos] + 11, .lsn = ++lsn, .pos = pos,
					   .shard = 0, .shards = 1, .sku_len = 10, .loc_len = 4, .old_atp = atp[pos],
					   .new_atp = next, .version = ++version[pos] };
		atp[pos] = next;
	}
	double *ns = malloc((size_t)passes * sizeof(double));
	for (int p = 0; p < passes; p++) {
		atp_channel_set set = { 0 };
		char err[256];
		for (int c = 0; c < channels; c++) {
			char key[64];
			snprintf(key, sizeof(key), "channel.c%d.share", c);
			atp_channel_setting(&set, key, c % 2 ? "0.5" : "1", err, sizeof(err));
		}
		atp_hub_config cfg = atp_hub_config_default();
		cfg.max_positions = SKUS * LOCS;
		atp_hub *h = atp_hub_create(&cfg, &set, err, sizeof(err));
		static const uint8_t identity[32];
		atp_hub_start(h, 1, identity);
		for (int i = 0; i < DELTAS / 2; i += CHUNK) {
			atp_hub_on_delta(h, d + i, CHUNK);
			for (int k = 0; k < n_subs; k++) {
				if (!subs[k] && atp_hub_subscribe(h, atp_str_of("c0", 2), NULL, 0, &subs[k], err, sizeof(err)) != 0)
					return fprintf(stderr, "subscribe: %s\n", err), 1;
				while (atp_hub_read(h, subs[k], out, sizeof(out), 0))
					;
			}
		}
		atp_hub_stats st0;
		atp_hub_stats_get(h, &st0);
		uint64_t t0 = now_ns();
		for (int i = DELTAS / 2; i < DELTAS; i += CHUNK) {
			atp_hub_on_delta(h, d + i, CHUNK);
			for (int k = 0; k < n_subs; k++)
				while (atp_hub_read(h, subs[k], out, sizeof(out), 0))
					;
		}
		ns[p] = (double)(now_ns() - t0) / (DELTAS / 2);
		atp_hub_stats st;
		atp_hub_stats_get(h, &st);
		printf("pass %d: %.1f ns/delta, %lu messages, %lu sent\n", p, ns[p], (unsigned long)st.messages,
		       (unsigned long)(st.sent - st0.sent));
		for (int k = 0; k < n_subs; k++) {
			atp_hub_unsubscribe(h, subs[k]);
			subs[k] = NULL;
		}
		atp_hub_destroy(h);
	}
	qsort(ns, (size_t)passes, sizeof(double), cmp);
	printf("median: %.1f ns/delta with %d channels, %d subscribers\n", ns[passes / 2], channels, n_subs);
	free(subs);
	free(d);
	free(cdf);
	free(ns);
	return 0;
}
