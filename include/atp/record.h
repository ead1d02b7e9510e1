/*
 * atp/record.h — the compact binary form of what a shard applies.
 *
 * One encoding serves the rings (router -> shard worker) and the WAL
 * payload, so a worker appends to its WAL exactly the bytes it was handed.
 * A record is an EVENT (every field of an atp_event, strings inline, and
 * the engine's time when it was submitted: the shard expires reservations
 * due by then before applying it), a TICK (the time moved while no event
 * came), an ORDER mark (the lines of a whole order that follow it in this
 * shard: see atp_engine_submit_order) or a SNAPSHOT command (never written
 * to the WAL). Decoding checks every
 * length against the buffer and the limits of atp/limits.h; the event
 * decoded points into the record's bytes.
 */
#ifndef ATP_RECORD_H
#define ATP_RECORD_H

#include "atp/event.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum atp_record_kind {
	ATP_REC_EVENT = 1,
	ATP_REC_TICK = 2,
	ATP_REC_SNAPSHOT = 3,
	ATP_REC_ORDER = 5,  /* (4 is an EVENT with an event key, on disk) */
};

/* Shards one whole order may span (its lines: ATP_ORDER_LINES_MAX). */
#define ATP_ORDER_PARTS_MAX 64
#define ATP_ORDER_LINES_MAX 64

/*
 * An ORDER mark: the order's number (engine-wide, from 1, only increasing),
 * how many of its RESERVE lines follow it in this shard's log (in the log:
 * those not already applied, which a resend may make 0), and every
 * shard that holds a part of it (ascending). The order is whole only where
 * every part is in its shard's log: recovery keeps it nowhere otherwise.
 */
typedef struct atp_order_mark {
	uint64_t order;
	uint16_t n_lines;
	uint16_t n_parts;
	uint16_t parts[ATP_ORDER_PARTS_MAX];
} atp_order_mark;

/* The largest encoded record: header, fixed fields and every string at its limit. */
#define ATP_RECORD_MAX 448

typedef struct atp_record {
	uint8_t kind;       /* enum atp_record_kind */
	uint64_t now;       /* EVENT, TICK: the engine's time (ms); expire what is due by then first */
	atp_event ev;       /* EVENT */
	atp_order_mark order; /* ORDER */
} atp_record;

/* Bytes written to out (room for ATP_RECORD_MAX), or 0 when a string exceeds its limit. */
size_t atp_record_encode_event(const atp_event *ev, uint64_t now_ms, uint8_t *out);
size_t atp_record_encode_tick(uint64_t now_ms, uint8_t *out);
size_t atp_record_encode_snapshot(uint8_t *out);
/* 0 when the mark is out of its bounds (no part, too many, parts not ascending). */
size_t atp_record_encode_order(const atp_order_mark *m, uint64_t now_ms, uint8_t *out);

/* 0 with *rec filled, or -1 when the len bytes are not exactly one well-formed record. */
int atp_record_decode(const uint8_t *buf, size_t len, atp_record *rec);

#ifdef __cplusplus
}
#endif

#endif
