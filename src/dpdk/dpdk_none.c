/* dpdk_none.c — atp/dpdk_port.h in an atpd built without DPDK (Meson option dpdk, libdpdk-dev absent). */
#include "atp/dpdk_port.h"

#include <stdio.h>

atp_dpdk_config atp_dpdk_config_default(void)
{
	return (atp_dpdk_config){ .udp_port = 7402, .mbufs = 8191, .queues = 1 };
}

bool atp_dpdk_available(void)
{
	return false;
}

atp_dpdk *atp_dpdk_create(atp_loop *loop, atp_udp_server *udp, const atp_dpdk_config *cfg, char *err, size_t errlen)
{
	(void)loop;
	(void)udp;
	(void)cfg;
	snprintf(err, errlen, "this atpd was built without DPDK (install libdpdk-dev, then meson setup -Ddpdk=enabled)");
	return NULL;
}

void atp_dpdk_stats_get(const atp_dpdk *d, atp_dpdk_stats *out)
{
	(void)d;
	*out = (atp_dpdk_stats){ 0 };
}

void atp_dpdk_destroy(atp_dpdk *d)
{
	(void)d;
}
