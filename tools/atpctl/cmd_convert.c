/*
 * cmd_convert.c — atpctl convert IN.csv OUT.evb: an event CSV (validated as
 * a whole first, as import does) into the binary event file, in batches
 * of 256 events.
 */
#include "import.h"

#include "csv_events.h"
#include "event_file.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t no_hwm(const void *ctx, atp_str source)
{
	(void)ctx;
	(void)source;
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: atpctl convert IN.csv OUT.evb\n");
		return 2;
	}
	input in = { .path = argv[1] };
	uint64_t rows = 0;
	if (map_file(&in) < 0)
		return 1;
	if (validate(&in, no_hwm, NULL, 1u << 16, &rows) > 0) {
		fprintf(stderr, "%s: bad rows; nothing converted\n", in.path);
		return 1;
	}
	FILE *out = fopen(argv[2], "wb");
	atp_csv_reader *r = malloc(sizeof(*r));
	atp_evb_writer w;
	char err[ATP_CSV_ERR_MAX];
	atp_event ev;
	int rc = !out || !r || atp_evb_writer_open(&w, out) < 0 || atp_csv_open(r, in.buf, in.len, err) < 0;
	while (!rc && atp_csv_next(r, &ev, err) > 0) {
		uint64_t ttl = ev.expires_at ? ev.expires_at - r->occurred_at : 0;
		rc = atp_evb_write(&w, &ev, (atp_wire_event_time){ r->occurred_at, ttl }) < 0;
	}
	if (out) {
		rc |= atp_evb_writer_close(&w) < 0;
		rc |= fclose(out) != 0;
	}
	free(r);
	if (rc) {
		perror(argv[2]);
		return 1;
	}
	fprintf(stderr, "convert: %" PRIu64 " events in %" PRIu64 " frames -> %s\n", rows, w.frames, argv[2]);
	return 0;
}
