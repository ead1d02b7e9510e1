/*
 * simday.h — a simulated warehouse day, written as the event CSV.
 *
 * Opening receipts, order lines on a time-of-day curve with one promotion
 * burst, reservations by order capture (source "oms") followed by picks,
 * cancellations or lapses, replenishment waves, damage and found
 * adjustments, cycle counts, QC holds, transfers and safety-stock changes
 * from the WMS (source "wms"), client retries of reservations under a new
 * seq, and at-least-once resends of rows already sent. The generator runs
 * its own core as it goes, so the WMS picks only what was confirmed, as a
 * real floor does. The output depends on the parameters and seed only.
 */
#ifndef ATP_SIMDAY_H
#define ATP_SIMDAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct atp_simday_params {
	uint64_t seed;
	uint32_t skus;
	uint32_t locations;
	uint32_t order_lines;    /* RESERVE lines over the day (retries not counted) */
	uint32_t peak_factor;    /* order rate in the burst, as a multiple of the day's average */
	uint32_t peak_minutes;   /* burst length; 0 for none */
	uint32_t peak_start_min; /* minute of the day the burst starts */
	char prefix[17];         /* before every source and SKU name: days of distinct prefixes share nothing */
	bool one_source;         /* every row from one source (PREFIXwms), so its order is one stream's */
} atp_simday_params;

typedef struct atp_simday_summary {
	uint64_t rows;
	uint64_t by_type[16];
	uint64_t resent;         /* rows sent again with the same seq */
	uint64_t retried;        /* RESERVE retried under a new seq */
	uint64_t promised;       /* RESERVE lines promised against a purchase order (a need-by day) */
} atp_simday_summary;

/* 250,000 order lines, 20,000 SKUs, 4 locations, a 2-minute burst at 50x from 12:00. */
atp_simday_params atp_simday_default(void);

/* Writes header and rows to out. 0, or a negative errno. */
int atp_simday_write(const atp_simday_params *p, FILE *out, atp_simday_summary *sum);

#endif
