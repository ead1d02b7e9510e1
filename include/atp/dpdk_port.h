/*
 * atp/dpdk_port.h — the event stream's UDP datagrams straight from a NIC
 * queue (DPDK), for sites whose scanners and conveyors send at rates a
 * kernel socket would spend its core on. The protocol is
 * atp/udp_server.h's, and so is everything after the datagram: this
 * module only takes Ethernet frames off the port and puts answers on it.
 *
 * Run to completion in the loop's thread, which is the router (it submits
 * into the shard rings as the TCP stream does): EAL is initialised from
 * dpdk_eal (that thread becomes its main lcore, pinned by EAL), and every
 * turn of the loop polls the port's receive queue (a burst of 32), with
 * the loop never sleeping in the kernel while DPDK is on. Per frame:
 * an ARP request for dpdk_ip is answered (so a plain sender reaches
 * atpd); an IPv4 UDP datagram to dpdk_ip:dpdk_udp_port, whole (no
 * fragment), goes to the UDP server as a datagram from (MAC, IP, port);
 * everything else is counted and dropped. Answers are built in mbufs of
 * the pool (dpdk_mbufs, sized in config: nothing allocated per packet)
 * and sent in bursts at the end of the turn. dpdk_queues receive queues
 * (RSS spreads senders over them by address and port where the NIC
 * hashes UDP; net_af_packet fans out by flow itself) are polled in turn
 * by the one lcore; answers leave by queue 0. The time spent on frames is
 * counted in TSC cycles: cycles per datagram is what a core can take.
 */
#ifndef ATP_DPDK_PORT_H
#define ATP_DPDK_PORT_H

#include "atp/loop.h"
#include "atp/udp_server.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_dpdk_config {
	char eal[512];        /* EAL arguments, space-separated; "": DPDK off */
	char ip[64];          /* the IPv4 address atpd answers to on the port */
	uint32_t udp_port;
	uint32_t mbufs;       /* the pool */
	uint32_t port_id;
	uint32_t queues;      /* receive queues polled */
} atp_dpdk_config;

atp_dpdk_config atp_dpdk_config_default(void);

typedef struct atp_dpdk_stats {
	uint64_t rx, tx, arp_answered, datagrams;
	uint64_t dropped_not_ours;   /* another protocol, address or port */
	uint64_t dropped_malformed;  /* truncated headers, fragments, lengths that do not add up */
	uint64_t tx_full;            /* answers the port or the pool could not take */
	uint64_t busy_cycles;        /* TSC cycles spent on turns that had frames */
	uint64_t tsc_hz;
} atp_dpdk_stats;

typedef struct atp_dpdk atp_dpdk;

/* Whether this atpd was built with DPDK. */
bool atp_dpdk_available(void);
/* EAL up, the port configured and started, riding the loop; NULL with err. */
atp_dpdk *atp_dpdk_create(atp_loop *loop, atp_udp_server *udp, const atp_dpdk_config *cfg, char *err, size_t errlen);
void atp_dpdk_stats_get(const atp_dpdk *d, atp_dpdk_stats *out);
/* The port stopped, EAL cleaned up. */
void atp_dpdk_destroy(atp_dpdk *d);

#ifdef __cplusplus
}
#endif

#endif
