/*
 * event_file.h — the binary event file: the TCP stream's frames on disk.
 *
 * "ATPEVB1\n", then frames of a u32 little-endian length and an EventBatch
 * FlatBuffer (fbs/event.fbs) of up to 256 events. Reading verifies every
 * frame before decoding it (atp/wire_event.h), so a damaged file is
 * refused at the frame that is bad; decoded events point into the buffer.
 * It replays at the codec's speed where a CSV is parsed field by field.
 */
#ifndef ATP_EVENT_FILE_H
#define ATP_EVENT_FILE_H

#include "atp/wire_event.h"

#include <stdbool.h>
#include <stdio.h>

#define ATP_EVB_MAGIC "ATPEVB1\n"
#define ATP_EVB_BATCH 256

typedef struct atp_evb_writer {
	FILE *out;
	atp_fb_builder b;
	uint8_t *mem;
	size_t cap;
	atp_fb_ref refs[ATP_EVB_BATCH];
	uint32_t n;
	uint64_t frames;
} atp_evb_writer;

/* 0, or -1 (out of memory or a write failed). */
int atp_evb_writer_open(atp_evb_writer *w, FILE *out);
int atp_evb_write(atp_evb_writer *w, const atp_event *ev, atp_wire_event_time t);
/* Write the last frame and free the writer's memory. */
int atp_evb_writer_close(atp_evb_writer *w);

typedef struct atp_evb_reader {
	const uint8_t *buf;
	size_t len, off;
	size_t frame_off;  /* of the frame last read */
	atp_event ev[ATP_WIRE_BATCH_MAX];
	atp_wire_event_time t[ATP_WIRE_BATCH_MAX];
} atp_evb_reader;

bool atp_evb_is(const void *buf, size_t len);
void atp_evb_open(atp_evb_reader *r, const void *buf, size_t len);
/* Events of the next frame (in r->ev, r->t); 0 at the end; a negative ATP_FB_E_* (or -1: truncated) for a bad frame. */
int atp_evb_next(atp_evb_reader *r);

#endif
