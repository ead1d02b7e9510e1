/*
 * atp/wal.h — a shard's write-ahead log: fixed-size, preallocated segments.
 *
 * A segment file is named by the LSN of its first record and starts with a
 * 64-byte header (magic ATPWAL3, first LSN, size, CRC). Records follow back
 * to back, 8-aligned: u32 payload length, u32 CRC-32C of (payload, LSN
 * field), u64 LSN field, payload. The LSN field is the LSN, with bit 63 set
 * on the first record of each write. LSNs are contiguous from 1 across
 * segments; a zero length ends a segment's data (the rest is preallocated
 * zeros). The payload comes first under the CRC so that a producer can
 * checksum it before its LSN is known (atp_wal_append_crc). Segments of
 * older formats (ATPWAL2: no write-start flag; ATPWAL1: CRC of LSN then
 * payload) are still read; appends then go to a new segment.
 *
 * Opening recovers: every record after a given LSN is handed to a callback
 * in order. A torn tail is cut off with a log line: a bad record in the
 * last write of the last segment, the valid records after it all of that
 * write (within one buffer of it, none flagged as the start of a write: a
 * write is issued only once the one before is durable). A bad record with a
 * later write after it, a bad record in an older segment, or a missing
 * segment refuses the open with a message naming the file and offset. (A
 * single-copy log cannot tell damage inside the last write from a torn
 * write: that write is cut, and the log line names what it held.)
 *
 * Appending fills one of two buffers while the other is being written:
 * atp_wal_flush_begin() hands out the pending bytes for the caller to
 * write and fdatasync (the shard worker does both through its io_uring),
 * atp_wal_flush_end() takes the outcome. Not thread-safe: one owner.
 */
#ifndef ATP_WAL_H
#define ATP_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_wal atp_wal;

#define ATP_WAL_PAYLOAD_MAX 4096

typedef struct atp_wal_config {
	uint64_t segment_bytes;  /* multiple of 4096, at least 64 KiB */
	uint32_t buffer_bytes;   /* per buffer; at least one maximal record */
} atp_wal_config;

/* 64 MiB segments, 16 MiB buffers. */
atp_wal_config atp_wal_config_default(void);

typedef int (*atp_wal_replay_fn)(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len);

/*
 * Open the WAL in dir (created if absent) and replay every record with
 * LSN > after into fn (a non-zero return stops the open with an error).
 * A payload points into its segment's mapping, which lasts until the end
 * of the segment: fn is then called with payload NULL (and the segment's
 * last LSN) before the mapping goes. NULL on error, with a message in err.
 */
atp_wal *atp_wal_open(const char *dir, const atp_wal_config *cfg, uint64_t after, atp_wal_replay_fn fn, void *ctx,
		      char *err, size_t errlen);
/*
 * The same, but every record after LSN upto is cut off for good (zeroed,
 * later segments deleted, durably) before appends continue after upto:
 * recovery's cut of a whole order some other shard's log does not hold.
 */
atp_wal *atp_wal_open_upto(const char *dir, const atp_wal_config *cfg, uint64_t after, uint64_t upto,
			   atp_wal_replay_fn fn, void *ctx, char *err, size_t errlen);
void atp_wal_close(atp_wal *w);

typedef struct atp_wal_scan_info {
	uint32_t segments;
	uint64_t first_lsn;  /* of the first segment (older ones were trimmed under a snapshot); 0: none */
	uint64_t last_lsn;   /* of the last good record; first_lsn - 1 when the segments hold none */
	char cut[480];       /* what a recovery would cut ("" when nothing): a torn tail, an incomplete segment */
} atp_wal_scan_info;

/*
 * Read the WAL in dir and change nothing (verification, forensics), as
 * atp_wal_open(dir, after) would: every record with LSN > after, its CRC
 * checked, goes to fn (may be NULL) in LSN order, with the same NULL call
 * at the end of a segment; records up to after are a snapshot's and only
 * their framing is checked (after = 0: every record's CRC). The first
 * segment may start at any LSN. 0 with info filled, or -1 with the message
 * (file and offset) for which recovery would refuse to open this WAL.
 */
int atp_wal_scan(const char *dir, uint64_t after, atp_wal_replay_fn fn, void *ctx, atp_wal_scan_info *info, char *err,
		 size_t errlen);

/* The LSN of the last record appended (or recovered); 0 when none. */
uint64_t atp_wal_last_lsn(const atp_wal *w);

#define ATP_WAL_FLUSH_FIRST 1  /* the buffer or the segment is full: flush, wait, then append again */

/* Append a record (payload of 1 .. ATP_WAL_PAYLOAD_MAX bytes): 0, ATP_WAL_FLUSH_FIRST, or -errno. */
int atp_wal_append(atp_wal *w, const void *payload, size_t len);
/* The same, with payload_crc = atp_crc32c(0, payload, len) already computed (and trusted). */
int atp_wal_append_crc(atp_wal *w, const void *payload, size_t len, uint32_t payload_crc);

typedef struct atp_wal_write {
	int fd;
	uint64_t offset;
	const uint8_t *buf;
	uint32_t len;
} atp_wal_write;

/*
 * Whether records of these payload lengths (n of them) can all be appended
 * now, into the write being built, without ATP_WAL_FLUSH_FIRST: what must
 * land in one write (a whole order's part) asks first, and flushes if not.
 */
bool atp_wal_fits(const atp_wal *w, const size_t *lens, size_t n);
/* Bytes appended but not yet handed to a write. */
uint32_t atp_wal_pending(const atp_wal *w);
bool atp_wal_in_flight(const atp_wal *w);
/* Hand out the pending bytes (false when none or a write is in flight). */
bool atp_wal_flush_begin(atp_wal *w, atp_wal_write *out);
/*
 * The write and the fdatasync completed with these results (bytes written,
 * 0; or -errno). 0, or -errno: the WAL is then failed for good, because a
 * failed fsync may have dropped dirty pages and retrying cannot tell.
 */
int atp_wal_flush_end(atp_wal *w, int write_res, int fsync_res);
/* Write and fdatasync whatever is pending, synchronously (shutdown, snapshots). */
int atp_wal_sync(atp_wal *w);

/* Delete segments every record of which has LSN <= lsn (never the current one); returns how many. */
int atp_wal_trim(atp_wal *w, uint64_t lsn);
uint32_t atp_wal_segments(const atp_wal *w);

#ifdef __cplusplus
}
#endif

#endif
