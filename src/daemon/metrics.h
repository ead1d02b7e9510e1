/*
 * metrics.h — what atpd exposes to Prometheus: every figure of the engine,
 * its cores, the event stream, the gRPC API and the channel stream, in the
 * text exposition format (version 0.0.4), rendered for the metrics
 * listener (atp/metrics_server.h) in the loop's thread, into its buffer.
 * The metric names and what they mean are listed in the README ("Metrics").
 */
#ifndef ATPD_METRICS_H
#define ATPD_METRICS_H

#include "atp/engine.h"
#include "atp/grpc_server.h"
#include "atp/hub.h"
#include "atp/metrics_server.h"
#include "atp/stream_server.h"

#include <stddef.h>
#include <stdint.h>

typedef struct atpd_metrics {
	atp_engine *e;
	atp_stream_server *srv;      /* NULL: none */
	atp_grpc_server *api;        /* NULL: none */
	struct atp_udp_server *udp;  /* NULL: none */
	struct atp_dpdk *dpdk;       /* NULL: none */
	atp_hub *hub;                /* NULL: no channel stream */
	atp_dlq *dlq;                /* NULL: no dead-letter store */
	atp_metrics_server *server;  /* the listener, for its own scrape count */
	uint64_t start_unix_ms;
	int64_t clock_offset_ms;     /* the wall clock minus atpd's time (clock.h) */
	const struct atpd_security *security;
} atpd_metrics;

/* atp_metrics_render_fn: ctx is an atpd_metrics. Whole lines; a last comment line says if cap cut it short. */
size_t atpd_metrics_render(void *ctx, char *buf, size_t cap);

#endif
