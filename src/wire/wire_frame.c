/* wire_frame.c — the stream's length-prefixed frames split (see atp/wire_frame.h). */
#include "atp/wire_frame.h"

#include "atp/status.h"

#include <string.h>

int64_t atp_frame_split(const uint8_t *p, size_t n, uint32_t max, uint32_t *len)
{
	*len = 0;
	if (n < ATP_FRAME_HEADER)
		return 0;
	memcpy(len, p, ATP_FRAME_HEADER);  /* little-endian: the host's order (see meson.build) */
	if (*len < ATP_FRAME_MIN)
		return ATP_E_PROTOCOL;
	if (*len > max)
		return ATP_E_LIMIT;
	if (n - ATP_FRAME_HEADER < *len)
		return 0;
	return (int64_t)ATP_FRAME_HEADER + *len;
}
