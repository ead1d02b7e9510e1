/*
 * onhand_csv.h — the stock file WMSs export for a count (atpctl reconcile):
 * a header naming at least the columns sku, location and on_hand, in any
 * order (a UTF-8 byte-order mark before it is skipped), then one position
 * per line. A field may be quoted whole ("SKU-1"), without commas or quotes
 * inside. A row is accepted only when atpd would take a COUNT of it: a sku
 * of 1..ATP_SKU_MAX and a location of 1..ATP_LOC_MAX bytes without control
 * bytes, on_hand a whole number in 0..ATP_QTY_MAX. Lines are parsed in
 * place (the caller's buffer, CR and LF already cut) and nothing is
 * allocated.
 */
#ifndef ATP_ONHAND_CSV_H
#define ATP_ONHAND_CSV_H

#include "atp/event.h"

#include <stdint.h>

#define ONHAND_FIELDS_MAX 64

typedef struct onhand_cols {
	int sku, location, on_hand;  /* field index of each */
	int width;                   /* fields of the header */
} onhand_cols;

typedef struct onhand_row {
	atp_str sku, location;       /* into the line */
	int64_t on_hand;
} onhand_row;

/* The header line: 0, or -1 when it lacks one of the three columns. */
int onhand_csv_header(char *line, onhand_cols *cols);
/* A row: NULL when accepted (row filled), else why not (into why[n], or a constant). */
const char *onhand_csv_row(char *line, const onhand_cols *cols, onhand_row *row, char *why, size_t n);

#endif
