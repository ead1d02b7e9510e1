/*
 * positions_csv.h — the positions CSV: sku,location,on_hand,held,reserved,safety_stock,atp
 * one row per position ever touched, sorted by sku then location (bytewise).
 */
#ifndef ATP_POSITIONS_CSV_H
#define ATP_POSITIONS_CSV_H

#include "atp/core.h"

#include <stdio.h>

/* 0, or a negative errno when writing failed. */
int atp_positions_csv_write(const atp_core *c, FILE *out);
/* The same over the positions of several cores (the shards of an engine), merged in one order. */
int atp_positions_csv_write_cores(const atp_core *const *cores, uint32_t n_cores, FILE *out);

#endif
