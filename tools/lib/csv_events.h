/*
 * csv_events.h — the event CSV that WMS exports come in.
 *
 * Header line, then one event per line. Required columns:
 *   event_id,source,seq,type,sku,location,qty,ref,to_location,reason
 * event_id is a number (1..2^64-1, written without leading zeros) or any
 * other text of 1..ATP_EVENT_KEY_MAX bytes without control bytes, kept as
 * the event's key (E000118075, a GUID, 00042).
 * optional columns (any order, after or among them):
 *   occurred_at  the event's time in ms (drives reservation expiry on replay)
 *   ttl_ms       RESERVE: the line lapses at occurred_at + ttl_ms
 *   partial      RESERVE: 1/true allows a partial confirmation
 * Fields may be quoted ("a ""b"""); CR LF line ends are accepted; blank
 * lines are skipped. A row is at most ATP_CSV_ROW_MAX bytes.
 *
 * The reader never allocates: events point into the caller's buffer or
 * into the reader's row scratch, valid until the next call.
 */
#ifndef ATP_CSV_EVENTS_H
#define ATP_CSV_EVENTS_H

#include "atp/event.h"

#include <stddef.h>
#include <stdint.h>

#define ATP_CSV_ROW_MAX 4096
#define ATP_CSV_COLS_MAX 16
#define ATP_CSV_ERR_MAX 160

enum csv_col {
	COL_EVENT_ID, COL_SOURCE, COL_SEQ, COL_TYPE, COL_SKU, COL_LOCATION, COL_QTY,
	COL_REF, COL_TO_LOCATION, COL_REASON, COL_OCCURRED_AT, COL_TTL_MS, COL_PARTIAL, COL_DATE,
	COL_COUNT
};

typedef struct atp_csv_reader {
	const char *buf;
	size_t len;
	size_t off;
	uint64_t line;                 /* line number of the row just read (1-based) */
	int8_t col_of[ATP_CSV_COLS_MAX]; /* header position -> enum csv_col */
	uint32_t n_cols;
	bool has_col[COL_COUNT];
	uint64_t occurred_at;          /* of the row just read, 0 when the column is absent */
	char scratch[ATP_CSV_ROW_MAX];
} atp_csv_reader;

/* Parse the header. 0, or -1 with a message in err. */
int atp_csv_open(atp_csv_reader *r, const char *buf, size_t len, char err[ATP_CSV_ERR_MAX]);
/*
 * The next row as an event: 1, 0 at the end, -1 for a bad row (message in
 * err, r->line names it; the reader has moved past it). Syntax and
 * atp_event_validate() are both checked.
 */
int atp_csv_next(atp_csv_reader *r, atp_event *ev, char err[ATP_CSV_ERR_MAX]);

/* The canonical header this project writes. */
extern const char atp_csv_header[];
/* The date column: day (since 1970-01-01) as YYYY-MM-DD into out; empty for 0. Returns out. */
#define ATP_CSV_DATE_MAX 11
const char *atp_csv_date(uint32_t day, char out[ATP_CSV_DATE_MAX]);

#endif
