/*
 * atp/deadletter.h — the dead-letter store: malformed events kept for a
 * person, so that the feed they came in can go on.
 *
 * One append-only file (DIR/deadletters): an 8-byte magic, then records
 * back to back, each a u32 payload length, a u32 CRC-32C of the payload,
 * the payload. An entry holds: its id (1, 2, ... in arrival order), the
 * arrival time (ms, wall clock), the source and seq, the refusal's code
 * (an ATP_E_* of atp_event_validate), the event's id as text, and the
 * event as it came (a one-event EventBatch FlatBuffer of fbs/event.fbs, so
 * that every field, valid or not, is kept). Appends are buffered until
 * atp_dlq_sync(), which writes and fdatasyncs them: only then may the
 * event's seq count as consumed (atp_engine_skip).
 *
 * Redrive: an entry's event (or a corrected copy) is applied later under
 * the internal source ATP_DLQ_SOURCE. Before it is submitted, the store
 * records, durably, that entry id goes as that source's seq S into shard k
 * (atp_dlq_mark_redrive); after a crash the redrive happened exactly when
 * shard k applied S (its mark for the source reached S), and its owner
 * unmarks it otherwise (atp_dlq_unmark: held again, redrivable). A redrive
 * the shard refused is unmarked too. Purge rewrites the file without the
 * entries chosen (a temp file, fdatasync, rename, the directory synced),
 * so a crash leaves the old store or the new one; ids are never reused.
 *
 * Opening reads every record; the first that is torn or fails its CRC
 * (what a crash mid-append leaves) ends the store: the file is cut there
 * with a log line naming the offset and the bytes dropped. Opened
 * read-only (offline tools, beside a live atpd) it changes nothing. The store is bounded (max entries):
 * atp_dlq_add() then says -ENOSPC and the caller falls back to refusing.
 * Every entry stays in memory (bounded by the same limit). Not
 * thread-safe: one owner (the router's thread in atpd).
 */
#ifndef ATP_DEADLETTER_H
#define ATP_DEADLETTER_H

#include "atp/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_dlq atp_dlq;

typedef struct atp_dlq_entry {
	uint64_t id;            /* 1, 2, ... in arrival order */
	uint64_t arrival_ms;    /* wall clock */
	uint64_t seq;
	int32_t code;           /* why: ATP_E_* */
	atp_str source;         /* these point into the store: valid as long as it */
	atp_str event_id;       /* the event's id as text ("42", "E000118075"); len 0: none */
	const uint8_t *event;   /* a one-event EventBatch */
	uint32_t event_len;
	uint32_t redrive_shard; /* with redrive_seq */
	uint64_t redrive_seq;   /* 0: held; else redriven as this seq of ATP_DLQ_SOURCE */
} atp_dlq_entry;

/* The internal source redriven events are applied under. */
#define ATP_DLQ_SOURCE "@dlq"

/* The largest event kept: a frame's limit for one event of the longest strings is far below this. */
#define ATP_DLQ_EVENT_MAX 4096u

/*
 * Open (create unless read_only) the store file at path, for at most max
 * entries. NULL with a message in err.
 */
atp_dlq *atp_dlq_open(const char *path, uint32_t max, bool read_only, char *err, size_t errlen);
void atp_dlq_close(atp_dlq *q);

/*
 * Append an entry (buffered: durable only after atp_dlq_sync). 0 with *id,
 * -ENOSPC when the store is full, -EINVAL when a field breaks its limit,
 * -ENOMEM, or -EROFS when opened read-only.
 */
int atp_dlq_add(atp_dlq *q, uint64_t arrival_ms, atp_str source, uint64_t seq, int32_t code, atp_str event_id,
		const uint8_t *event, uint32_t event_len, uint64_t *id);
/* Record that entry id is redriven as seq (of ATP_DLQ_SOURCE) into shard (buffered). 0, -ENOENT, -EINVAL, -ENOMEM. */
int atp_dlq_mark_redrive(atp_dlq *q, uint64_t id, uint64_t seq, uint32_t shard);
/* Entry id is held again (its redrive never happened, or its shard refused it) (buffered). 0, -ENOENT, -ENOMEM. */
int atp_dlq_unmark(atp_dlq *q, uint64_t id);
/*
 * Rewrite the store without the entries drop() chooses (called once per
 * entry). Nothing may be pending (sync first: else -EBUSY). The count
 * dropped, or -errno with err (the old store then stands).
 */
int atp_dlq_purge(atp_dlq *q, bool (*drop)(void *ctx, const atp_dlq_entry *e), void *ctx, char *err, size_t errlen);
/* Write and fdatasync what was added since the last sync. 0 or -errno (the store is then failed for good). */
int atp_dlq_sync(atp_dlq *q);

/* Entries, in id order: i in 0 .. count - 1. */
uint32_t atp_dlq_count(const atp_dlq *q);
const atp_dlq_entry *atp_dlq_at(const atp_dlq *q, uint32_t i);
uint32_t atp_dlq_capacity(const atp_dlq *q);
/* The entry of an id, or NULL. */
const atp_dlq_entry *atp_dlq_get(const atp_dlq *q, uint64_t id);
/* The entry of (source, seq), or NULL. */
const atp_dlq_entry *atp_dlq_find(const atp_dlq *q, atp_str source, uint64_t seq);

#ifdef __cplusplus
}
#endif

#endif
