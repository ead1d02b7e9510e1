/* mono.h — the tools' clock: CLOCK_MONOTONIC in nanoseconds. */
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

#endif
