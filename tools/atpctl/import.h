/* import.h — what the two paths of atpctl import share (cmd_import.c, import_engine.c). */
#ifndef ATPCTL_IMPORT_H
#define ATPCTL_IMPORT_H

#include "atp/core.h"
#include "atp/engine.h"
#include "atpctl.h"
#include "csv_events.h"
#include "event_file.h"

#include <stddef.h>
#include <stdint.h>

typedef struct input {
	const char *path;
	const char *buf;
	size_t len;
} input;

/* Map in->path read-only; -1 with a message. */
int map_file(input *in);

/* The events of an input, CSV or binary (event_iter.c). */
typedef struct event_iter {
	const input *in;
	bool binary;
	bool check;                /* validate binary events (CSV rows always are) */
	bool broken;               /* a binary frame failed verification: nothing after it is readable */
	atp_csv_reader *csv;
	atp_evb_reader *evb;
	uint32_t i, n;             /* the event and count of the current frame */
	uint64_t occurred_at;      /* of the event just read */
	char where[300];           /* see iter_where() */
	char err[ATP_CSV_ERR_MAX]; /* why it was bad */
} event_iter;

/* check: validate each binary event here (else the core or engine that gets it does). */
int iter_open(event_iter *it, const input *in, bool check);
/* 1 with *ev, 0 at the end, -1 for a bad event (iter_where(), it->err; a CSV reader has moved past it). */
int iter_next(event_iter *it, atp_event *ev);
/* FILE:LINE or FILE@FRAME_OFFSET#INDEX of the event just read (formatted on demand). */
const char *iter_where(event_iter *it);
void iter_close(event_iter *it);

/* The seq already applied of a source, from which the file must continue. */
typedef uint64_t (*hwm_fn)(const void *ctx, atp_str source);

/*
 * Pass 1: every row parsed and validated, and the seq of every source
 * checked for gaps from hwm. Prints each problem as FILE:LINE: reason;
 * returns the number of bad rows.
 */
uint64_t validate(const input *in, hwm_fn hwm, const void *ctx, uint32_t max_sources, uint64_t *rows);

/* What happened, over the cores of every shard (and the duplicates an engine's router answered). */
void print_summary(const atp_core *const *cores, uint32_t n_cores, uint64_t rows, uint64_t router_duplicates,
		   double seconds);

/*
 * Replay through the durable engine in data; frozen_clock: the engine's time never moves (nothing expires);
 * sync_every: wait until each sync_every events are durable (0: only at the end).
 */
int import_engine(const input *in, const char *data, const atp_engine_config *cfg, const char *positions,
		  bool progress, bool frozen_clock, uint64_t sync_every);

#endif
