/*
 * atp/snapshot.h — a shard's state in one checksummed file.
 *
 * snap-<LSN>.snap holds the sources and their high-water marks, every
 * position, every remembered reservation line (closed ones in closing
 * order) and the core's time, as of the WAL record LSN, then a CRC-32C
 * of every block of it (4 KiB, larger for a state too big for 4,096
 * blocks) and a CRC-32C over the whole file: the whole says whether it is
 * intact, the blocks where it is not. Writing goes through a temp file, fsync, rename and
 * an fsync of the directory, so a crash leaves the old snapshot or the new
 * one, never a mix. The two newest snapshots are kept (and, under a WAL
 * retention, every one a replay of the retained moments needs): a newest
 * one that fails its checksum is skipped with a log line and an older one
 * used.
 */
#ifndef ATP_SNAPSHOT_H
#define ATP_SNAPSHOT_H

#include "atp/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Write c as the snapshot of lsn into dir. 0 or -errno (message in err).
 * Allocates nothing and uses no stdio, so that a child forked from a
 * multi-threaded process may call it.
 */
int atp_snapshot_write(const char *dir, const atp_core *c, uint64_t lsn, char *err, size_t errlen);

/*
 * Delete the snapshots of dir that neither recovery nor a replay of any
 * moment since keep_since_ms (wall clock, ms since the epoch) needs: all
 * older than both the second newest and the newest written by
 * keep_since_ms (its file's mtime). Returns the LSN of the oldest kept
 * that bounds them (0: nothing may go): WAL records up to it may go.
 * keep_since_ms = now keeps only the two newest.
 */
uint64_t atp_snapshot_prune(const char *dir, uint64_t keep_since_ms);

/*
 * Load the newest valid snapshot of dir into c, a core nothing was applied
 * to. *lsn gets its LSN (0 and c untouched when there is none). 0, or -1
 * with a message when a snapshot passed its checksum but not restoring.
 */
int atp_snapshot_load(const char *dir, atp_core *c, uint64_t *lsn, char *err, size_t errlen);
/*
 * Load the snapshot file path (snap-<LSN>.snap) into c, a core nothing was
 * applied to: 0 with *lsn; 1 when the file is not whole or fails its
 * checksum (c untouched; err names the damaged block and its table entry,
 * or the header, or the table and trailer, by offset); -1 when it passed
 * but does not restore. err says which.
 */
int atp_snapshot_load_file(const char *path, atp_core *c, uint64_t *lsn, char *err, size_t errlen);

typedef struct atp_snapshot_info {
	uint64_t lsn, bytes;
	uint64_t now_ms;  /* the core's time: the state is as of every record up to lsn, at this time */
	uint32_t sources, positions, open_lines, closed_lines;
} atp_snapshot_info;

/*
 * Check one snapshot file and change nothing (verification): its name,
 * magic, checksum and the LSN inside it. 0 with info, or -1 with a message.
 */
int atp_snapshot_check(const char *path, atp_snapshot_info *info, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
