/*
 * fuzz_wire.c — libFuzzer targets for the root types of fbs/event.fbs,
 * one per build (-DFUZZ_ROOT=1..4: EventBatch, Ack, Hello, Welcome).
 * Oracle: whatever the verifier accepts reads within the buffer, builds
 * again, and decodes again to the same values; an accepted EventBatch also
 * goes through a small core.
 */
#include "atp/core.h"
#include "atp/wire_event.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 20] __attribute__((aligned(8)));

static inline __attribute__((unused)) bool str_same(atp_str a, atp_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#if FUZZ_ROOT == 1
static atp_event ev[ATP_WIRE_BATCH_MAX], again[ATP_WIRE_BATCH_MAX];
static atp_wire_event_time tm[ATP_WIRE_BATCH_MAX];
static atp_fb_ref refs[ATP_WIRE_BATCH_MAX];

static void fuzz(const uint8_t *data, size_t size)
{
	int n = atp_wire_decode_event_batch(data, size, ev, tm, ATP_WIRE_BATCH_MAX);
	if (n < 0)
		return;
	atp_fb_builder b;
	atp_fb_builder_init(&b, out, sizeof(out));
	for (int i = 0; i < n; i++)
		refs[i] = atp_wire_build_event(&b, &ev[i], tm[i]);
	size_t len;
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_event_batch(&b, refs, (uint32_t)n), NULL, &len);
	if (!p)
		return; /* shared offsets can make the copy larger than the output room */
	assert(atp_wire_decode_event_batch(p, len, again, NULL, ATP_WIRE_BATCH_MAX) == n);
	atp_core_config cfg = atp_core_config_default();
	cfg.max_positions = 16;
	cfg.max_lines = 16;
	cfg.max_sources = 4;
	atp_core *c = atp_core_create(&cfg);
	for (int i = 0; i < n; i++) {
		assert(again[i].event_id == ev[i].event_id && again[i].seq == ev[i].seq && again[i].qty == ev[i].qty &&
		       again[i].type == ev[i].type && again[i].flags == ev[i].flags &&
		       str_same(again[i].sku, ev[i].sku) && str_same(again[i].ref, ev[i].ref) &&
		       str_same(again[i].source, ev[i].source) && str_same(again[i].reason, ev[i].reason));
		atp_result r;
		atp_core_apply(c, &ev[i], &r);
	}
	atp_core_destroy(c);
}
#elif FUZZ_ROOT == 2
static void fuzz(const uint8_t *data, size_t size)
{
	static atp_wire_refusal r[ATP_WIRE_REFUSED_MAX];
	atp_wire_ack a, a2;
	if (atp_wire_decode_ack(data, size, &a))
		return;
	for (uint32_t i = 0; i < a.n_refused; i++)
		r[i] = atp_wire_ack_refusal(&a, i);
	a.refused = r;
	atp_fb_builder b;
	size_t len;
	atp_fb_builder_init(&b, out, sizeof(out));
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_ack(&b, &a), NULL, &len);
	assert(p && atp_wire_decode_ack(p, len, &a2) == 0);
	assert(a2.durable_seq == a.durable_seq && a2.n_refused == a.n_refused && str_same(a2.source, a.source));
	assert(a2.next_seq == a.next_seq && a2.error == a.error && str_same(a2.reason, a.reason));
}
#elif FUZZ_ROOT == 3
static void fuzz(const uint8_t *data, size_t size)
{
	atp_str s, s2;
	if (atp_wire_decode_hello(data, size, &s))
		return;
	atp_fb_builder b;
	size_t len;
	atp_fb_builder_init(&b, out, sizeof(out));
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_hello(&b, s), NULL, &len);
	assert(p && (s.len == 0 || (atp_wire_decode_hello(p, len, &s2) == 0 && str_same(s, s2))));
}
#elif FUZZ_ROOT == 4
static void fuzz(const uint8_t *data, size_t size)
{
	atp_wire_welcome w, w2;
	if (atp_wire_decode_welcome(data, size, &w))
		return;
	atp_fb_builder b;
	size_t len;
	atp_fb_builder_init(&b, out, sizeof(out));
	const uint8_t *p = atp_fb_finish(&b, atp_wire_build_welcome(&b, &w), NULL, &len);
	assert(p && atp_wire_decode_welcome(p, len, &w2) == 0);
	assert(w2.durable_seq == w.durable_seq && w2.error == w.error && str_same(w2.reason, w.reason));
}
#else
#error "define FUZZ_ROOT"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The verifier must not depend on the caller's alignment: copy to an odd address. */
	uint8_t *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy + 1, data, size);
	fuzz(copy + 1, size);
	free(copy);
	return 0;
}
