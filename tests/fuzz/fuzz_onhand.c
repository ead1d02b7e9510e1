/*
 * fuzz_onhand.c — libFuzzer target: arbitrary bytes as the stock file of
 * atpctl reconcile, line by line through its header and row parser. Every
 * row accepted must be one atpd takes a COUNT of (atp_event_validate);
 * any crash, sanitizer report or broken assert is a bug.
 */
#include "onhand_csv.h"

#include "atp/limits.h"
#include "atp/status.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[4097];
	onhand_cols cols;
	bool header = true;
	for (size_t at = 0; at < size;) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = (nl ? (size_t)(nl - data) : size) - at;
		size_t take = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
		memcpy(line, data + at, take);
		line[take] = 0;
		at += len + 1;
		if (strlen(line) != take)
			continue; /* a NUL byte: fgets would have cut the line there too; not this parser's input */
		if (header) {
			if (onhand_csv_header(line, &cols) < 0)
				return 0;
			assert(cols.sku >= 0 && cols.location >= 0 && cols.on_hand >= 0 && cols.width <= ONHAND_FIELDS_MAX);
			header = false;
			continue;
		}
		onhand_row row;
		char why[160];
		if (onhand_csv_row(line, &cols, &row, why, sizeof(why)))
			continue;
		atp_event ev = { .event_id = 1, .seq = 1, .source = atp_str_of("reconcile", 9), .sku = row.sku,
				 .location = row.location, .qty = row.on_hand, .type = ATP_EV_COUNT };
		assert(atp_event_validate(&ev) == ATP_OK);
	}
	return 0;
}
