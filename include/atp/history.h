/*
 * atp/history.h — every event that touched a SKU's positions, as CSV, from
 * a data directory's files: its shard replayed from the earliest moment
 * the directory retains (wal_retention_hours says how far back), each
 * event of the SKU (refused ones with their status), each lapse of a
 * reservation, and each RELEASE of a whole reservation that changed one of
 * its positions, with the position as it was right after. It reads the
 * files and changes nothing: atpctl history runs it offline, atpd's
 * Admin/History in a thread of its own beside the workers.
 */
#ifndef ATP_HISTORY_H
#define ATP_HISTORY_H

#include "atp/core.h"

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_HISTORY_HEADER                                                                        \
	"time,lsn,kind,source,seq,event_id,type,location,qty,ref,to_location,reason,status,on_hand," \
	"held,reserved,safety_stock,atp,version"

typedef struct atp_history_query {
	const char *dir;        /* the data directory */
	uint32_t shards;        /* its shard count */
	atp_core_config core;   /* at least the capacities atpd runs with */
	atp_str sku;
	atp_str location;       /* len 0: every location of the SKU */
	uint64_t since_ms;      /* rows from then on, after the positions as they stood then (kind "since") */
} atp_history_query;

typedef struct atp_history_info {
	uint64_t rows;
	uint32_t shard;
	uint64_t start_lsn;     /* the snapshot the replay began from (0: an empty state) */
	uint64_t last_lsn;
} atp_history_info;

/* The header and the rows to out. 0 with info, or -1 with err (a moment the directory does not retain, damage). */
int atp_history_write(const atp_history_query *q, FILE *out, atp_history_info *info, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
