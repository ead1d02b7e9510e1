/*
 * atp/crc32c.h — CRC-32C (Castagnoli), the checksum of WAL records and snapshots.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a table
 * (slicing by 8); both give the same value for the same bytes.
 */
#ifndef ATP_CRC32C_H
#define ATP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* crc of len bytes continuing from crc (start with 0). */
uint32_t atp_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same for the 8 bytes of v in little-endian order (the host's: see meson.build). */
uint32_t atp_crc32c_u64(uint32_t crc, uint64_t v);

#ifdef __cplusplus
}
#endif

#endif
