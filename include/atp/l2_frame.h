/*
 * atp/l2_frame.h — an Ethernet frame as the DPDK ingest path reads it
 * (atp/dpdk_port.h): an ARP request for our address, an IPv4 UDP datagram
 * to our address and port (whole: no fragment), or neither. Pure, no
 * DPDK: every length is checked against the frame's before it is read, so
 * it is fuzzed like the other parsers (tests/fuzz/fuzz_l2.c).
 */
#ifndef ATP_L2_FRAME_H
#define ATP_L2_FRAME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ATP_L2_NOT_OURS, ATP_L2_MALFORMED, ATP_L2_ARP_REQUEST, ATP_L2_UDP };

typedef struct atp_l2_udp {
	const uint8_t *payload;  /* the UDP payload, in the frame */
	uint32_t len;
	uint8_t src_mac[6];
	uint32_t src_ip;         /* network order */
	uint16_t src_port;       /* network order */
} atp_l2_udp;

/* What frame p[0..len) is for us (my_ip, my_port in network order); out filled for ATP_L2_UDP. */
int atp_l2_parse(const uint8_t *p, uint32_t len, uint32_t my_ip, uint16_t my_port, atp_l2_udp *out);

#ifdef __cplusplus
}
#endif

#endif
