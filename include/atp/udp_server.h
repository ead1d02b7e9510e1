/*
 * atp/udp_server.h — the event stream over UDP on the front end's io_uring
 * loop (a kernel socket, multishot recvmsg into the loop's provided
 * buffers): for sites that feed atpd from many scanners and conveyors,
 * each with nothing but a UDP socket. The same exactly-once contract as
 * the TCP stream (atp/stream_server.h): events apply once per (source,
 * seq), in seq order per source, and an Ack says what is durable.
 *
 * A datagram is one frame of fbs/event.fbs as on TCP: a 4-byte
 * little-endian length, then the FlatBuffer, nothing after it. At most
 * max_datagram bytes (1472 by default: an IPv4 datagram that fits a
 * 1500-byte Ethernet MTU, so it is never fragmented). A sender
 *   - sends Hello{source}; the Welcome back carries durable_seq (resend
 *     it after a timeout: a lost Hello or Welcome is normal). The Hello
 *     ties the sender's address and port to the source (a new Hello from
 *     the same address and port rebinds it);
 *   - sends EventBatch frames of consecutive seqs after durable_seq, a
 *     window of them in flight (events may also name the source
 *     themselves: then no Hello is needed);
 *   - on each Ack drops what durable_seq covers; when next_seq is below
 *     what it sent (a datagram lost or overtaken: the batch after a gap is
 *     refused ATP_E_GAP, nothing of it applied), goes back to next_seq;
 *     resends what is unacknowledged after a timeout;
 *   - paces itself by its window: an Ack comes once a batch is durable
 *     (a group commit, about a millisecond), or at once for a refusal.
 * Loss, duplication and reordering are normal: a duplicate seq is
 * answered, not applied again. atpd answers a batch as soon as it was
 * refused or wholly duplicate, else once its events are durable.
 *
 * Bad datagrams — truncated, garbage, a length that is not the
 * datagram's, oversize, a batch from an address without Hello whose
 * events do not name their source, a source not allowed (udp_sources:
 * shell patterns, never an '@' source), a peer table full, rings full —
 * are counted by reason and dropped; nothing else is disturbed. UDP
 * carries no identity: udp_sources and the network are its only guard.
 * Malformed events are refused (ATP_E_* in the Ack, the source stops at
 * them), never dead-lettered. One thread: the loop's.
 */
#ifndef ATP_UDP_SERVER_H
#define ATP_UDP_SERVER_H

#include "atp/loop.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_udp_config {
	char listen[128];          /* HOST:PORT; port 0: any free one */
	uint32_t max_datagram;     /* bytes */
	uint32_t max_peers;        /* senders (address and port) remembered */
	uint32_t peer_idle_ms;     /* a sender silent this long is forgotten */
	char sources[256];         /* comma-separated shell patterns of the sources allowed */
} atp_udp_config;

/* none, 1472 bytes, 4096 peers, 10 minutes, "*". */
atp_udp_config atp_udp_config_default(void);

enum {
	ATP_UDP_BAD_FRAME,       /* truncated, garbage, a length that is not the datagram's, or not verifying */
	ATP_UDP_BAD_SIZE,        /* over max_datagram */
	ATP_UDP_BAD_NO_HELLO,    /* a batch from an address without Hello, its events not naming their source */
	ATP_UDP_BAD_SOURCE,      /* a source not allowed, or events naming two sources */
	ATP_UDP_BAD_PEERS,       /* the peer table full */
	ATP_UDP_BAD_BUSY,        /* the engine's rings full: the sender resends */
	ATP_UDP_BAD_REASONS
};

typedef struct atp_udp_stats {
	uint64_t datagrams, hellos, batches, events, acks, welcomes;
	uint64_t dropped[ATP_UDP_BAD_REASONS];
	uint32_t peers;
} atp_udp_stats;

typedef struct atp_udp_server atp_udp_server;

/* listen "none": no kernel socket (datagrams come through atp_udp_server_input only). NULL with err. */
atp_udp_server *atp_udp_server_create(atp_loop *loop, const atp_udp_config *cfg, char *err, size_t errlen);
/*
 * How another transport (atp/dpdk_port.h) sends an answer: to the peer
 * whose address it gave atp_udp_server_input, the frame's n bytes.
 */
typedef void (*atp_udp_send_fn)(void *ctx, const void *addr, uint32_t addr_len, const uint8_t *p, size_t n);
/*
 * A datagram's payload from another transport, from a peer it names by
 * addr (at most 128 bytes, its own format: the same bytes are the same
 * peer); answers go back through send. Loop thread.
 */
void atp_udp_server_input(atp_udp_server *u, const void *addr, uint32_t addr_len, const uint8_t *d, uint32_t n,
			  atp_udp_send_fn send, void *ctx);
uint16_t atp_udp_server_port(const atp_udp_server *u);
void atp_udp_server_stats(const atp_udp_server *u, atp_udp_stats *out);
/* The name of a drop reason: "frame", "size", ... */
const char *atp_udp_drop_name(int reason);
/* Stop receiving, detach from the loop, free. */
void atp_udp_server_destroy(atp_udp_server *u);

#ifdef __cplusplus
}
#endif

#endif
