/* dpdk_port.c — UDP datagrams of the event stream from a DPDK port (see atp/dpdk_port.h). */
#define _GNU_SOURCE
#include "atp/dpdk_port.h"

#include "../net/front.h"
#include "atp/l2_frame.h"
#include "atp/log.h"

#include <arpa/inet.h>
#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST 32
#define RX_DESC 1024
#define TX_DESC 1024
#define EAL_ARGS_MAX 32

/* A peer as the UDP server knows it: where an answer goes back to. */
typedef struct dpdk_peer {
	uint8_t tag;          /* 'D': not a sockaddr of the kernel path */
	uint8_t mac[6];
	uint8_t pad;
	uint32_t ip;          /* network order */
	uint16_t port;        /* network order */
} dpdk_peer;

struct atp_dpdk {
	atp_loop *loop;
	atp_udp_server *udp;
	atp_dpdk_config cfg;
	uint16_t port;
	uint32_t ip;          /* network order */
	uint16_t udp_port;    /* network order */
	struct rte_ether_addr mac;
	struct rte_mempool *pool;
	struct rte_mbuf *tx[BURST];
	uint16_t n_tx;
	bool eal_up, started, attached;
	atp_dpdk_stats stats;
} __attribute__((aligned(64)));

atp_dpdk_config atp_dpdk_config_default(void)
{
	return (atp_dpdk_config){ .udp_port = 7402, .mbufs = 8191, .queues = 1 };
}

bool atp_dpdk_available(void)
{
	return true;
}

static void flush(atp_dpdk *d)
{
	if (!d->n_tx)
		return;
	uint16_t sent = rte_eth_tx_burst(d->port, 0, d->tx, d->n_tx);
	d->stats.tx += sent;
	for (uint16_t i = sent; i < d->n_tx; i++) {
		rte_pktmbuf_free(d->tx[i]);  /* the sender's timeout recovers it */
		d->stats.tx_full++;
	}
	d->n_tx = 0;
}

static void queue(atp_dpdk *d, struct rte_mbuf *m)
{
	if (d->n_tx == BURST)
		flush(d);
	d->tx[d->n_tx++] = m;
}

/* The UDP server's answer: Ethernet, IPv4 and UDP headers before it, to the peer. */
static void send_answer(void *ctx, const void *addr, uint32_t addr_len, const uint8_t *p, size_t n)
{
	atp_dpdk *d = ctx;
	const dpdk_peer *to = addr;
	size_t hdr = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr);
	struct rte_mbuf *m = addr_len == sizeof(*to) ? rte_pktmbuf_alloc(d->pool) : NULL;
	uint8_t *b = m ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(hdr + n)) : NULL;
	if (!b) {
		if (m)
			rte_pktmbuf_free(m);
		d->stats.tx_full++;
		return;
	}
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)b;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	memcpy(&eth->dst_addr, to->mac, 6);
	eth->src_addr = d->mac;
	eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	*ip = (struct rte_ipv4_hdr){ .version_ihl = 0x45, .total_length = htons((uint16_t)(sizeof(*ip) + sizeof(*udp) + n)),
				     .time_to_live = 64, .next_proto_id = IPPROTO_UDP, .src_addr = d->ip, .dst_addr = to->ip };
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	*udp = (struct rte_udp_hdr){ .src_port = d->udp_port, .dst_port = to->port,
				     .dgram_len = htons((uint16_t)(sizeof(*udp) + n)) };  /* checksum 0: none (IPv4) */
	memcpy(udp + 1, p, n);
	queue(d, m);
}

/* An ARP request for our address (atp_l2_parse said so): the mbuf turned into the reply and queued. */
static void arp_reply(atp_dpdk *d, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
	a->arp_opcode = htons(RTE_ARP_OP_REPLY);
	a->arp_data.arp_tha = a->arp_data.arp_sha;
	a->arp_data.arp_tip = a->arp_data.arp_sip;
	a->arp_data.arp_sha = d->mac;
	a->arp_data.arp_sip = d->ip;
	eth->dst_addr = eth->src_addr;
	eth->src_addr = d->mac;
	d->stats.arp_answered++;
	queue(d, m);
}

/* One frame off the port; freed (or queued as an answer) before it returns. */
static void frame(atp_dpdk *d, struct rte_mbuf *m)
{
	atp_l2_udp u;
	int kind = m->nb_segs != 1 ? ATP_L2_MALFORMED
				   : atp_l2_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), d->ip,
						  d->udp_port, &u);
	switch (kind) {
	case ATP_L2_ARP_REQUEST:
		arp_reply(d, m);
		return;
	case ATP_L2_UDP: {
		dpdk_peer from = { .tag = 'D', .ip = u.src_ip, .port = u.src_port };
		memcpy(from.mac, u.src_mac, 6);
		d->stats.datagrams++;
		atp_udp_server_input(d->udp, &from, sizeof(from), u.payload, u.len, send_answer, d);
		break;
	}
	case ATP_L2_MALFORMED:
		d->stats.dropped_malformed++;
		break;
	default:
		d->stats.dropped_not_ours++;
		break;
	}
	rte_pktmbuf_free(m);
}

/* Every turn of the loop: a burst off each queue, the answers out. */
static void after_turn(void *ctx)
{
	atp_dpdk *d = ctx;
	struct rte_mbuf *b[BURST];
	for (uint16_t q = 0; q < d->cfg.queues; q++) {
		uint16_t n = rte_eth_rx_burst(d->port, q, b, BURST);
		if (!n)
			continue;
		uint64_t t0 = rte_rdtsc();
		d->stats.rx += n;
		for (uint16_t i = 0; i < n; i++)
			frame(d, b[i]);
		flush(d);
		d->stats.busy_cycles += rte_rdtsc() - t0;
	}
	flush(d);  /* the Acks the UDP server sent this turn (it turns before us): out now, not with the next frames */
}

static void on_cqe(void *ctx, const struct io_uring_cqe *cqe)
{
	(void)ctx;
	(void)cqe;
}

void atp_dpdk_destroy(atp_dpdk *d)
{
	if (!d)
		return;
	if (d->attached)
		front_detach(d->loop, d);
	for (uint16_t i = 0; i < d->n_tx; i++)
		rte_pktmbuf_free(d->tx[i]);
	if (d->started) {
		rte_eth_dev_stop(d->port);
		rte_eth_dev_close(d->port);
	}
	if (d->pool)
		rte_mempool_free(d->pool);
	if (d->eal_up)
		rte_eal_cleanup();
	free(d);
}

atp_dpdk *atp_dpdk_create(atp_loop *loop, atp_udp_server *udp, const atp_dpdk_config *cfg, char *err, size_t errlen)
{
	atp_dpdk *d = aligned_alloc(64, sizeof(atp_dpdk));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->udp = udp;
	d->cfg = *cfg;
	d->port = (uint16_t)cfg->port_id;
	d->udp_port = htons((uint16_t)cfg->udp_port);
	struct in_addr a;
	if (inet_pton(AF_INET, cfg->ip, &a) != 1) {
		snprintf(err, errlen, "dpdk_ip '%s' is not an IPv4 address", cfg->ip);
		goto fail;
	}
	d->ip = a.s_addr;
	char args[sizeof(cfg->eal)], *argv[EAL_ARGS_MAX + 2], *save = NULL;
	int argc = 0;
	snprintf(args, sizeof(args), "%s", cfg->eal);
	argv[argc++] = (char *)"atpd";
	for (char *t = strtok_r(args, " ", &save); t && argc <= EAL_ARGS_MAX; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, errlen, "DPDK cannot initialise (EAL: %s) with dpdk_eal = %s", rte_strerror(rte_errno), cfg->eal);
		goto fail;
	}
	d->eal_up = true;
	if (!rte_eth_dev_is_valid_port(d->port)) {
		snprintf(err, errlen, "DPDK: no port %u (%u available: a --vdev or a bound NIC in dpdk_eal?)", d->port,
			 rte_eth_dev_count_avail());
		goto fail;
	}
	d->pool = rte_pktmbuf_pool_create("atpd_mbufs", cfg->mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  rte_eth_dev_socket_id(d->port));
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	int rc;
	if ((rc = rte_eth_dev_info_get(d->port, &info)) < 0 || cfg->queues < 1 || cfg->queues > info.max_rx_queues) {
		snprintf(err, errlen, "DPDK: port %u takes %u receive queues, dpdk_queues = %u", d->port,
			 rc < 0 ? 0 : info.max_rx_queues, cfg->queues);
		goto fail;
	}
	uint64_t hash = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	if (cfg->queues > 1 && hash) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = hash;
	}
	if (!d->pool) {
		snprintf(err, errlen, "DPDK: a pool of %u mbufs: %s", cfg->mbufs, rte_strerror(rte_errno));
		goto fail;
	}
	rc = rte_eth_dev_configure(d->port, (uint16_t)cfg->queues, 1, &conf);
	for (uint16_t q = 0; rc >= 0 && q < cfg->queues; q++)
		rc = rte_eth_rx_queue_setup(d->port, q, RX_DESC, rte_eth_dev_socket_id(d->port), NULL, d->pool);
	if (rc < 0 || (rc = rte_eth_tx_queue_setup(d->port, 0, TX_DESC, rte_eth_dev_socket_id(d->port), NULL)) < 0 ||
	    (rc = rte_eth_dev_start(d->port)) < 0) {
		snprintf(err, errlen, "DPDK: port %u: %s", d->port, rte_strerror(-rc));
		goto fail;
	}
	d->started = true;
	rte_eth_macaddr_get(d->port, &d->mac);
	d->stats.tsc_hz = rte_get_tsc_hz();
	front_ext ext = { .ctx = d, .on_cqe = on_cqe, .after_turn = after_turn };
	if (front_attach(loop, &ext) < 0) {
		snprintf(err, errlen, "the loop has no room for another protocol");
		goto fail;
	}
	d->attached = true;
	atp_log(ATP_LOG_INFO, "dpdk: port %u (%02x:%02x:%02x:%02x:%02x:%02x) answers %s, udp port %u; %u receive queues%s, %u mbufs",
		d->port,
		d->mac.addr_bytes[0], d->mac.addr_bytes[1], d->mac.addr_bytes[2], d->mac.addr_bytes[3],
		d->mac.addr_bytes[4], d->mac.addr_bytes[5], cfg->ip, cfg->udp_port, cfg->queues,
		conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? " (RSS)" : "", cfg->mbufs);
	return d;
fail:
	atp_dpdk_destroy(d);
	return NULL;
}

void atp_dpdk_stats_get(const atp_dpdk *d, atp_dpdk_stats *out)
{
	*out = d->stats;
}
