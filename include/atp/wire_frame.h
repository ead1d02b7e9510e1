/*
 * atp/wire_frame.h — the TCP event stream's framing (fbs/event.fbs): a u32
 * little-endian length, then that many bytes, one FlatBuffer.
 *
 * Pure: no I/O, no state, no allocation. The server splits what it
 * receives with it, the clients split the Acks they read and the binary
 * event files they replay. Splitting a byte stream at any boundary, frame
 * by frame, gives the same frames (tests/unit/test_frame.c).
 */
#ifndef ATP_WIRE_FRAME_H
#define ATP_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_FRAME_HEADER 4u  /* the length */
#define ATP_FRAME_MIN 8u     /* the smallest FlatBuffer: a root offset and a table */

/*
 * The frame at the front of p[0..n), whose payload starts at p + 4:
 * *len gets its payload's length as soon as the 4 length bytes are there.
 * Returns the bytes the whole frame takes (4 + *len) once it is all
 * there; 0 while it is not (read more); ATP_E_PROTOCOL for a length under
 * ATP_FRAME_MIN, ATP_E_LIMIT for one over max (the sender is broken or
 * hostile: nothing after it can be framed).
 */
int64_t atp_frame_split(const uint8_t *p, size_t n, uint32_t max, uint32_t *len);

#ifdef __cplusplus
}
#endif

#endif
