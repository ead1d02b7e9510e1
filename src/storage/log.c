/* log.c — levels, a sink, and repeats suppressed (atp/log.h). In storage: the lowest library that does I/O. */
#define _GNU_SOURCE
#include "atp/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REPEAT_WINDOW_NS 1000000000ull
#define REPEAT_MAX 20

static void default_sink(int level, const char *text)
{
	(void)level;
	fprintf(stderr, "atpd: %s\n", text);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atp_log_sink sink = default_sink;
static int max_level = ATP_LOG_INFO;
static const char *last_fmt;      /* the format repeating, and since when */
static uint64_t window_start;
static unsigned repeats, suppressed;

static const char *const names[] = { "error", "warn", "info", "debug" };

void atp_log_setup(atp_log_sink s, int level)
{
	sink = s ? s : default_sink;
	max_level = level;
}

int atp_log_level_of(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *atp_log_level_name(int level)
{
	return level >= 0 && level < 4 ? names[level] : "?";
}

void atp_log(int level, const char *fmt, ...)
{
	if (level > max_level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if (fmt != last_fmt || now - window_start > REPEAT_WINDOW_NS) {
		if (suppressed) {
			char note[96];
			snprintf(note, sizeof(note), "%u more of a message repeated within a second were not written", suppressed);
			sink(ATP_LOG_WARN, note);
		}
		last_fmt = fmt;
		window_start = now;
		repeats = suppressed = 0;
	}
	if (++repeats <= REPEAT_MAX)
		sink(level, text);
	else
		suppressed++;
	pthread_mutex_unlock(&lock);
}
