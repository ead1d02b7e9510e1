/*
 * fuzz_record.c — libFuzzer target for the record codec (atp/record.h),
 * the bytes of the rings and of every WAL payload. Oracle: whatever
 * decodes encodes back to exactly the same bytes, and a decoded event
 * goes through a small core without harm.
 */
#include "atp/core.h"
#include "atp/record.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static atp_core *core;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atp_record rec;
	if (atp_record_decode(data, size, &rec) < 0)
		return 0;
	uint8_t again[ATP_RECORD_MAX];
	size_t n = rec.kind == ATP_REC_EVENT  ? atp_record_encode_event(&rec.ev, rec.now, again)
		   : rec.kind == ATP_REC_TICK ? atp_record_encode_tick(rec.now, again)
					      : atp_record_encode_snapshot(again);
	assert(n == size && memcmp(again, data, size) == 0);
	if (rec.kind == ATP_REC_EVENT) {
		if (!core) {
			atp_core_config cfg = atp_core_config_default();
			cfg.max_positions = 64;
			cfg.max_lines = 64;
			cfg.max_sources = 4;
			cfg.sparse_seq = true;
			core = atp_core_create(&cfg);
		}
		atp_result r;
		atp_core_apply(core, &rec.ev, &r);
	}
	return 0;
}
