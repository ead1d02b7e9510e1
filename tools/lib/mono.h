/* mono.h — the tools' clocks: CLOCK_MONOTONIC in nanoseconds, CLOCK_REALTIME in seconds. */
#ifndef ATP_TOOLS_MONO_H
#define ATP_TOOLS_MONO_H

#include <stdint.h>
#include <time.h>

static inline uint64_t atp_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The wall clock, s: to add up several senders' spans. */
static inline double atp_real_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
