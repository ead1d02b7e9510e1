/*
 * atp/metrics_server.h — the Prometheus scrape listener, on the front
 * end's io_uring loop (atp/loop.h).
 *
 * HTTP/1.1, one request per connection: `GET /metrics` answers 200 with
 * the text exposition (format 0.0.4) the render callback writes; any other
 * path 404, any other method 405, a request head over 4 KiB 431; every
 * answer closes the connection. At most 8 scrapers at once (more are
 * closed at accept); one that does not send its request within 5 s is
 * closed. Each connection slot has one output buffer of max_bytes,
 * allocated the first time the slot serves a scrape and kept: nothing is
 * allocated per scrape. Runs in the loop's thread, like render.
 */
#ifndef ATP_METRICS_SERVER_H
#define ATP_METRICS_SERVER_H

#include "atp/loop.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write the exposition into buf (at most cap bytes, whole lines); the bytes written. */
typedef size_t (*atp_metrics_render_fn)(void *ctx, char *buf, size_t cap);

typedef struct atp_metrics_server atp_metrics_server;

/* Listen on "HOST:PORT" (port 0: any free one) and attach to the loop front. NULL with err. */
atp_metrics_server *atp_metrics_server_create(atp_loop *front, const char *listen, size_t max_bytes,
					      atp_metrics_render_fn render, void *ctx, char *err, size_t errlen);
uint16_t atp_metrics_server_port(const atp_metrics_server *m);
/* Scrapes answered (200) so far. */
uint64_t atp_metrics_server_scrapes(const atp_metrics_server *m);
/* Stop listening, close every scraper (turning the loop for at most a second), detach and free. */
void atp_metrics_server_shutdown(atp_metrics_server *m);

#ifdef __cplusplus
}
#endif

#endif
