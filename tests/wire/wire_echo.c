/*
 * wire_echo.c — decode a FlatBuffer with atpd's verifier and accessors and
 * build it again with atpd's builders: `wire_echo TYPE IN OUT`. The
 * compatibility test feeds it buffers made by the reference tools and reads
 * what it writes with them, so both directions are checked in one pass.
 * Exit 0, or 3 with the verifier's message when IN is refused.
 */
#include "atp/wire_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t in[ATP_WIRE_MAX_MESSAGE + 1] __attribute__((aligned(8)));
static uint8_t out[2 * ATP_WIRE_MAX_MESSAGE] __attribute__((aligned(8)));
static atp_event events[ATP_WIRE_MAX_BATCH];
static atp_wire_event_time times[ATP_WIRE_MAX_BATCH];
static atp_fb_ref refs[ATP_WIRE_MAX_BATCH];

static int echo(const char *type, size_t len, atp_fb_builder *b, atp_fb_ref *root)
{
	if (strcmp(type, "EventBatch") == 0) {
		int n = atp_wire_decode_event_batch(in, len, events, times, ATP_WIRE_MAX_BATCH);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			refs[i] = atp_wire_build_event(b, &events[i], times[i]);
		*root = atp_wire_build_event_batch(b, refs, (uint32_t)n);
		return 0;
	}
	if (strcmp(type, "Ack") == 0) {
		atp_wire_ack a;
		static atp_wire_refusal r[ATP_WIRE_MAX_REFUSED];
		int rc = atp_wire_decode_ack(in, len, &a);
		if (rc)
			return rc;
		for (uint32_t i = 0; i < a.n_refused; i++)
			r[i] = atp_wire_ack_refusal(&a, i);
		*root = atp_wire_build_ack(b, a.source, a.durable_seq, r, a.n_refused);
		return 0;
	}
	if (strcmp(type, "Hello") == 0) {
		atp_str source;
		int rc = atp_wire_decode_hello(in, len, &source);
		if (!rc)
			*root = atp_wire_build_hello(b, source);
		return rc;
	}
	if (strcmp(type, "Welcome") == 0) {
		uint64_t seq;
		int rc = atp_wire_decode_welcome(in, len, &seq);
		if (!rc)
			*root = atp_wire_build_welcome(b, seq);
		return rc;
	}
	fprintf(stderr, "wire_echo: unknown type %s\n", type);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: wire_echo TYPE IN OUT\n");
		return 2;
	}
	FILE *f = fopen(argv[2], "rb");
	if (!f) {
		perror(argv[2]);
		return 2;
	}
	size_t len = fread(in, 1, sizeof(in), f);
	fclose(f);

	atp_fb_builder b;
	atp_fb_ref root = 0;
	atp_fb_builder_init(&b, out, sizeof(out));
	int rc = echo(argv[1], len, &b, &root);
	if (rc) {
		fprintf(stderr, "wire_echo: %s refused: %s\n", argv[1], atp_fb_error_message(rc));
		return 3;
	}
	size_t size;
	const uint8_t *buf = atp_fb_finish(&b, root, NULL, &size);
	if (!buf) {
		fprintf(stderr, "wire_echo: output does not fit\n");
		return 2;
	}
	f = fopen(argv[3], "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0) {
		perror(argv[3]);
		return 2;
	}
	return 0;
}
