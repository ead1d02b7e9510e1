/*
 * atp_replay.h — one shard of a data directory rebuilt offline, as of
 * any moment the directory retains (atpctl replay, atpctl history).
 *
 * A replay starts from a snapshot the shard's WAL continues (or from an
 * empty state when the WAL begins at LSN 1) and applies the WAL's records
 * one by one as the shard did (atp_engine_apply_record: expiries first,
 * then the event), up to a cut: the last record with LSN <= until_lsn and
 * time <= until_ms. Which start: the newest that the cut allows (replay),
 * or the earliest the directory holds (history). It reads what is on disk
 * and changes nothing, so it may run beside a live atpd. A cut older than
 * what the directory retains is an error naming what it does retain.
 */
#ifndef ATP_REPLAY_H
#define ATP_REPLAY_H

#include "atp/core.h"
#include "atp/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct atp_replay {
	/* In. */
	const char *dir;            /* the data directory */
	uint32_t shard;
	atp_core_config core;       /* at least the capacities atpd ran with */
	uint64_t until_ms;          /* UINT64_MAX: no cut by time */
	uint64_t until_lsn;         /* UINT64_MAX: no cut by LSN */
	bool earliest;              /* start as early as retained, not from the newest snapshot before the cut */
	/* Optional callbacks, all with ctx. After the start state is loaded (lsn 0: empty): */
	void (*on_start)(void *ctx, uint64_t lsn, const atp_core *c);
	/* Before a record is applied, and after (status: its event's, ATP_OK for a tick). */
	void (*on_before)(void *ctx, uint64_t lsn, const atp_record *rec, const atp_core *c);
	void (*on_record)(void *ctx, uint64_t lsn, const atp_record *rec, const atp_result *r, const atp_core *c);
	/* The lines a record's time expired, before its event is applied. */
	void (*on_expiry)(void *ctx, uint64_t lsn, const atp_record *rec, const atp_delta *d, size_t n,
			  const atp_core *c);
	void *ctx;
	/* Out. */
	atp_core *c;                /* the state at the cut: the caller destroys it */
	uint64_t start_lsn;         /* the snapshot's LSN, 0: an empty state */
	uint64_t last_lsn;          /* of the last record applied (start_lsn: none) */
	uint64_t last_ms;           /* its time (the snapshot's without records) */
	uint64_t records;
	uint64_t wal_last_lsn;      /* what the WAL holds */
} atp_replay;

/* 0, or -1 with a message in err. */
int atp_replay_run(atp_replay *r, char *err, size_t errlen);

/* "2026-12-06T14:02:00Z", "...T14:02:00.250Z" (UTC) or milliseconds since the epoch; false when neither. */
bool atp_parse_time_ms(const char *s, uint64_t *ms);
/* ms since the epoch as "2026-12-06T14:02:00.250Z" into out (at least 32 bytes). */
void atp_format_time_ms(uint64_t ms, char *out, size_t n);

#endif
