/* l2_frame.c — an Ethernet frame's ARP or IPv4 UDP meaning, bounds checked (see atp/l2_frame.h). */
#include "atp/l2_frame.h"

#include <stdbool.h>
#include <string.h>

#define ETH_LEN 14
#define ARP_LEN 28
#define IP_MIN 20
#define UDP_LEN 8

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int atp_l2_parse(const uint8_t *p, uint32_t len, uint32_t my_ip, uint16_t my_port, atp_l2_udp *out)
{
	if (len < ETH_LEN)
		return ATP_L2_MALFORMED;
	uint16_t type = be16(p + 12);
	const uint8_t *l3 = p + ETH_LEN;
	uint32_t room = len - ETH_LEN;
	if (type == 0x0806) {  /* ARP: Ethernet/IPv4, a request for my_ip */
		if (room < ARP_LEN)
			return ATP_L2_MALFORMED;
		uint32_t tip;
		memcpy(&tip, l3 + 24, 4);
		bool request = be16(l3) == 1 && be16(l3 + 2) == 0x0800 && l3[4] == 6 && l3[5] == 4 && be16(l3 + 6) == 1;
		return request && tip == my_ip ? ATP_L2_ARP_REQUEST : ATP_L2_NOT_OURS;
	}
	if (type != 0x0800)
		return ATP_L2_NOT_OURS;
	if (room < IP_MIN)
		return ATP_L2_MALFORMED;
	uint32_t ihl = (uint32_t)(l3[0] & 0x0f) * 4, total = be16(l3 + 2), dst;
	if ((l3[0] >> 4) != 4 || ihl < IP_MIN || total < ihl || total > room)
		return ATP_L2_MALFORMED;
	memcpy(&dst, l3 + 16, 4);
	if (dst != my_ip || l3[9] != 17)
		return ATP_L2_NOT_OURS;
	if (be16(l3 + 6) & 0x3fff)  /* more fragments, or an offset: a fragment */
		return ATP_L2_MALFORMED;
	if (total < ihl + UDP_LEN)
		return ATP_L2_MALFORMED;
	const uint8_t *udp = l3 + ihl;
	uint16_t port;
	memcpy(&port, udp + 2, 2);
	if (port != my_port)
		return ATP_L2_NOT_OURS;
	uint32_t ulen = be16(udp + 4);
	if (ulen < UDP_LEN || ulen > total - ihl)
		return ATP_L2_MALFORMED;
	memcpy(out->src_mac, p + 6, 6);
	memcpy(&out->src_ip, l3 + 12, 4);
	memcpy(&out->src_port, udp, 2);
	out->payload = udp + UDP_LEN;
	out->len = ulen - UDP_LEN;
	return ATP_L2_UDP;
}
