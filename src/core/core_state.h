/*
 * core_state.h — what an atp_core holds, for the files that make up the
 * core (core_create.c makes one, core.c applies events, core_expiry.c
 * expires reservation lines, query.c reads, restore.c loads a snapshot).
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

/*
 * The inbound side of an applied event (core_inbound.c, atp/inbound.h),
 * after its position is written: a SUPPLY, a RECEIPT naming a supply, a
 * RESERVE promised against supply (a new line at slot, promised for
 * slot->promise), a RELEASE of a promised line (slot->id). Each returns the
 * change of the position's reserved that the replan made (the pool), for
 * the caller to write back, and puts what it did into r.
 */
typedef struct core_line_slot {
	uint32_t id;       /* the line, or ATP_LINE_NONE */
	uint32_t where;    /* a new line's slot (atp_lines_find_where) */
	uint64_t hash;
	uint32_t promise;  /* the day a new line is promised for */
} core_line_slot;
int64_t core_commit_inbound(atp_core *c, const atp_event *ev, unsigned type, uint32_t pos, const core_line_slot *slot,
			    atp_result *r);
/* Promised line `line` at pos released: its promise goes, then the line closes. */
int64_t core_release_promised(atp_core *c, uint32_t pos, uint32_t line, atp_result *r);

/* A delta into r for position id when its ATP went from old_atp to new_atp (nothing when it did not; counted). */
void core_emit_change(atp_core *c, uint32_t id, int64_t old_atp, int64_t new_atp, uint32_t source, uint64_t seq,
		      atp_result *r);
/* Advance to now before event index of a batch, expiring every line due; their deltas go to the sink, if any. */
void core_expire_until(atp_core *c, uint64_t now, size_t index);

#endif
