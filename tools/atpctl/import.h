/* import.h — what the two paths of atpctl import share (cmd_import.c, import_engine.c). */
#ifndef ATPCTL_IMPORT_H
#define ATPCTL_IMPORT_H

#include "atp/core.h"
#include "atp/engine.h"
#include "atpctl.h"

#include <stddef.h>
#include <stdint.h>

typedef struct input {
	const char *path;
	const char *buf;
	size_t len;
} input;

/* Map in->path read-only; -1 with a message. */
int map_file(input *in);

/* The seq already applied of a source, from which the file must continue. */
typedef uint64_t (*hwm_fn)(const void *ctx, atp_str source);

/*
 * Pass 1: every row parsed and validated, and the seq of every source
 * checked for gaps from hwm. Prints each problem as FILE:LINE: reason;
 * returns the number of bad rows.
 */
uint64_t validate(const input *in, hwm_fn hwm, const void *ctx, uint32_t max_sources, uint64_t *rows);

/* What happened, over the cores of every shard. */
void print_summary(const atp_core *const *cores, uint32_t n_cores, uint64_t rows, double seconds);

/* Replay through the durable engine in data. */
int import_engine(const input *in, const char *data, const atp_engine_config *cfg, const char *positions,
		  bool progress);

#endif
