/*
 * clock.h — atpd's time under `clock = wall`: the wall clock read once, at
 * start, then carried forward by the monotonic clock.
 *
 * Reservations expire on this time and it goes into every WAL record, so
 * it must never run backward nor leap: a step of the wall clock while
 * atpd runs (an operator's `date -s`, a VM resumed, NTP stepping) moves
 * neither. It starts at the later of the wall clock and the time the data
 * directory recovered (a wall clock set back while atpd was down cannot
 * take it back either). How far the wall clock has moved away from it is
 * told (atpd_clock_offset_ms): atpd logs it and exports it as a metric; a
 * restart takes the wall clock again. CLOCK_MONOTONIC is slewed by NTP as
 * the wall clock is, so without steps the two stay within milliseconds.
 */
#ifndef ATPD_CLOCK_H
#define ATPD_CLOCK_H

#include <stdint.h>

typedef uint64_t (*atpd_clock_read_fn)(void);  /* milliseconds */

typedef struct atpd_clock {
	atpd_clock_read_fn wall, mono;
	uint64_t base_ms;       /* atpd's time at base_mono */
	uint64_t base_mono;
} atpd_clock;

/* Start at max(wall(), floor_ms); wall and mono are the clocks' readers (NULL: the system's). */
void atpd_clock_start(atpd_clock *c, uint64_t floor_ms, atpd_clock_read_fn wall, atpd_clock_read_fn mono);
/* atpd's time now, in ms since the epoch: never less than an earlier answer. */
uint64_t atpd_clock_now(const atpd_clock *c);
/* The wall clock minus atpd's time (ms): how far a step has moved the wall clock away. */
int64_t atpd_clock_offset_ms(const atpd_clock *c);
uint64_t atpd_clock_wall_ms(void);
uint64_t atpd_clock_mono_ms(void);

#endif
