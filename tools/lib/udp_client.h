/*
 * udp_client.h — the sending side of the event stream over UDP (see
 * atp/udp_server.h for the protocol): `atpctl send --udp`.
 *
 * The sources' frames are stream_client.h's (encoded once, up front);
 * each frame must fit one datagram. One socket per source, one poll()
 * loop: Hello until a Welcome says where to start, then a window of
 * frames in flight; an Ack drops what it covers as durable and, after a
 * refused gap, sends again from next_seq; what stays unacknowledged for
 * timeout_ms goes again. For tests it can lose a share of its datagrams
 * and hold back others until the next has gone (reordering). Ordered
 * sending (a frame waiting for another source) as stream_send() does.
 * Returns 0 once every frame's events are acknowledged as durable; -1 on
 * a refusal other than a gap (printed), or no progress for give_up_s.
 */
#ifndef ATP_UDP_CLIENT_H
#define ATP_UDP_CLIENT_H

#include "stream_client.h"

typedef struct udp_options {
	const char *host, *port;
	uint32_t window;       /* frames in flight per source */
	uint32_t timeout_ms;   /* unacknowledged this long: sent again */
	double give_up_s;      /* without any progress */
	uint32_t max_datagram; /* a frame longer than this is refused before anything is sent */
	uint32_t drop_pct;     /* tests: datagrams lost on purpose, in % */
	uint32_t reorder_pct;  /* tests: datagrams held back until the next one went, in % */
	uint64_t seed;
} udp_options;

int udp_send(stream_source *sources, uint32_t n, const udp_options *o, stream_result *r);

#endif
