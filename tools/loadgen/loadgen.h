/*
 * loadgen.h — what the parts of atp-loadgen share: the day split into a
 * TCP part (WMS events, frames per source) and a gRPC part (order
 * capture's reservations and cancellations as calls), each item due at a
 * time after the start; and the gRPC driver that places the calls.
 */
#ifndef ATP_LOADGEN_H
#define ATP_LOADGEN_H

#include "histogram.h"

#include "atp/limits.h"

#include <stdbool.h>
#include <stdint.h>

enum { CALL_RESERVE, CALL_RELEASE };

typedef struct api_call {
	uint64_t due_ns;        /* after the start */
	uint8_t kind;
	bool partial;
	uint32_t need_by;  /* YYYYMMDD, 0: none */
	uint64_t ttl_ms;
	int64_t qty;
	char ref[ATP_REF_MAX + 1];
	char sku[ATP_SKU_MAX + 1];
	char loc[ATP_LOC_MAX + 1];
} api_call;

typedef struct grpc_plan {
	const char *target;     /* HOST:PORT */
	uint32_t connections, in_flight;
	bool paced;             /* latency counts from the due time (no coordinated omission) */
	uint64_t t0_ns;
	const api_call *calls;
	uint64_t n;
} grpc_plan;

typedef struct grpc_outcome {
	uint64_t done;          /* answered (any status); read by the progress line while it runs */
	uint64_t reserves, releases, duplicates, confirmed_units, not_found, errors, broken;
	uint64_t codes[17];
	atp_histogram reserve_latency, release_latency;  /* ns */
	double seconds;
} grpc_outcome;

/* Place every call of the plan (each at its due time when paced), waiting for all answers. 0, or -1. */
int grpc_drive(const grpc_plan *p, grpc_outcome *out);

#endif
