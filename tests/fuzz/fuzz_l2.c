/*
 * fuzz_l2.c — libFuzzer target: arbitrary bytes as an Ethernet frame off
 * the DPDK port (atp/l2_frame.h). A UDP datagram it accepts must lie
 * inside the frame and name a source; anything else is a bug, as is any
 * crash or sanitizer report.
 */
#include "atp/l2_frame.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ip[4] = { 10, 77, 0, 1 }, port[2] = { 0x1c, 0xea };  /* 10.77.0.1:7402 */
	uint32_t my_ip;
	uint16_t my_port;
	memcpy(&my_ip, ip, 4);
	memcpy(&my_port, port, 2);
	atp_l2_udp u;
	int kind = atp_l2_parse(data, (uint32_t)size, my_ip, my_port, &u);
	assert(kind >= ATP_L2_NOT_OURS && kind <= ATP_L2_UDP);
	if (kind == ATP_L2_UDP)
		assert(u.payload >= data + 42 && u.payload + u.len <= data + size);
	return 0;
}
