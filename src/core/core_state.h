/*
 * core_state.h — what an atp_core holds, for the files that make up the
 * core (core.c applies events, query.c reads, restore.c loads a snapshot).
 * Private to src/core: everyone else goes through atp/core.h.
 */
#ifndef ATP_CORE_STATE_H
#define ATP_CORE_STATE_H

#include "atp/core.h"

/* A source as an event names it: its id and entry, or ATP_SOURCE_NONE and NULL when it is new. */
typedef struct known_source {
	uint32_t id;
	atp_source *entry;  /* entries never move */
} known_source;

struct atp_core {
	atp_table *table;
	atp_lines *lines;
	atp_sources *sources;
	atp_inbound *inbound;
	uint64_t now;
	uint64_t retention;
	bool sparse_seq;
	bool no_deltas;              /* results carry no deltas (they are still counted) */
	atp_expiry_sink expiry_sink; /* where a batch's expiries send their deltas (NULL: dropped) */
	void *expiry_ctx;
	known_source recent_sources[2];  /* two sources seen lately (see source_of) */
	uint32_t recent_victim;      /* which of them a miss replaces */
	atp_core_stats stats;
};

#endif
